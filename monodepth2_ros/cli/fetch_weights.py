"""``monodepth2 fetch-weights``: download an official Monodepth2 release into a folder."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.inference.weights import (
    ACCEPT_LICENSE_ENV,
    OFFICIAL_RELEASES,
    OFFICIAL_WEIGHTS_NOTICE,
    fetch_weights,
    license_accepted,
)

__all__ = ["register", "run"]

EXAMPLES = f"""examples:
  monodepth2 fetch-weights mono+stereo_640x192 --dest ~/models/mono+stereo_640x192 --accept-license
  {ACCEPT_LICENSE_ENV}=1 monodepth2 fetch-weights mono_640x192 --dest models/mono_640x192 --force

licence:
{OFFICIAL_WEIGHTS_NOTICE}
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fetch-weights",
        help="download an official Monodepth2 checkpoint (checksum-verified)",
        description="Download an official Monodepth2 release, verify its MD5 and unzip it atomically. The weights "
        "are under Niantic's non-commercial licence: accept it with --accept-license or "
        f"{ACCEPT_LICENSE_ENV}=1.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=sorted(OFFICIAL_RELEASES), metavar="NAME",
                        help="release name: " + ", ".join(OFFICIAL_RELEASES))
    parser.add_argument("--dest", required=True, help="folder to unpack the checkpoint into")
    parser.add_argument("--force", action="store_true", help="replace an existing destination")
    parser.add_argument("--accept-license", action="store_true",
                        help=f"accept Niantic's non-commercial Monodepth2 licence (or set {ACCEPT_LICENSE_ENV}=1)")
    parser.add_argument("--url", help=argparse.SUPPRESS)  # mirrors and tests
    parser.add_argument("--md5", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(OFFICIAL_WEIGHTS_NOTICE)
    if not license_accepted(args.accept_license):
        raise ConfigError(
            f"not downloading {args.name}: its licence was not accepted; if your use is non-commercial, "
            f"run again with --accept-license (or set {ACCEPT_LICENSE_ENV}=1)"
        )
    with tqdm(unit="B", unit_scale=True, desc=args.name, leave=False) as bar:

        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        dest = fetch_weights(args.name, args.dest, force=args.force, url=args.url, md5=args.md5, progress=progress)
    print(f"{args.name} -> {dest}")
    return 0
