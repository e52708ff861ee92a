"""``python -m monodepth2_ros.training ARGS`` = ``monodepth2 train ARGS``; the form torchrun launches.

Example::

    torchrun --nproc_per_node 2 -m monodepth2_ros.training --bag drive.mcap --out runs/ddp
"""

from __future__ import annotations

import sys

from monodepth2_ros.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
