"""The few error types the library raises; the CLI and the nodes turn them into one-line reports."""

__all__ = [
    "Monodepth2Error",
    "CheckpointError",
    "DatasetError",
    "ConfigError",
    "MissingInputError",
    "InsufficientDataError",
]


class Monodepth2Error(Exception):
    """Base of every error this package raises on purpose."""


class MissingInputError(Monodepth2Error, FileNotFoundError):
    """A file or folder the user named does not exist (CLI exit status 2)."""


class CheckpointError(Monodepth2Error):
    """A checkpoint file is missing, unreadable or does not fit the network."""


class DatasetError(Monodepth2Error):
    """Input data (bag, folder, image message) cannot be read as asked."""


class ConfigError(Monodepth2Error):
    """A configuration value or file is invalid."""


class InsufficientDataError(DatasetError):
    """The input reads, but does not hold what the task needs (too few moving frames, no
    camera_info); the message says what was found and what is needed (CLI exit status 2)."""
