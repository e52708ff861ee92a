"""Entry point of the ``monodepth2`` command.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its parser and
sets ``func`` (``args -> exit status``). Library errors are reported here, once, as one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from monodepth2_ros import __version__
from monodepth2_ros.errors import InsufficientDataError, MissingInputError, Monodepth2Error

__all__ = ["main", "build_parser", "SUBCOMMAND_MODULES"]

# Subcommand modules, in the order ``--help`` lists them. A module that is not there yet is skipped.
SUBCOMMAND_MODULES = (
    "infer",
    "fetch_weights",
    "synth",
    "evaluate",
    "train",
    "export",
    "bench",
    "play",
    "demo",
    "run",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # also argparse's status for usage errors, and ours for missing or insufficient input


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monodepth2",
        description="Self-supervised monocular depth and odometry (Monodepth2) for ROS 2 robots.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"monodepth2_ros.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"monodepth2_ros.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except (MissingInputError, InsufficientDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Monodepth2Error as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
