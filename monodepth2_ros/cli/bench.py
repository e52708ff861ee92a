"""``monodepth2 bench``: latency figures of the networks on this machine."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from monodepth2_ros.inference.benchmark import network_latency

__all__ = ["register", "run"]

EXAMPLES = """examples:
  monodepth2 bench                       depth + pose networks, 640x192, batch 1, eager fp32
  monodepth2 bench --runs 50 --json bench.json
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure network latency on this machine",
        description="Median and p95 latency of the depth and pose networks (eager PyTorch).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    parser.set_defaults(func=run)


def _machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def run(args: argparse.Namespace) -> int:
    rows = [
        network_latency(net, args.height, args.width, args.batch, args.device, "fp32", warmup=args.warmup, runs=args.runs)
        for net in ("depth", "pose")
    ]
    print(f"machine: {_machine()}, torch {torch.__version__}")
    print(f"{'configuration':32} {'device':8} {'size':>9} {'batch':>5} {'p50 ms':>8} {'p95 ms':>8}")
    for row in rows:
        print(f"{row.name:32} {row.device:8} {row.width:>4}x{row.height:<4} {row.batch:>5} {row.p50_ms:8.2f} {row.p95_ms:8.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": _machine(), "rows": [r.as_dict() for r in rows]}, indent=2))
    return 0
