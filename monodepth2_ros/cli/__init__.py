"""The ``monodepth2`` command: one entry point, one module per subcommand."""
