"""``monodepth2 bench``: every inference backend side by side with eager fp32, on this machine."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from monodepth2_ros.ros.stage_profile import DEPTH_STAGES
from monodepth2_ros.tools.backend_bench import (
    QUICK_SETTINGS,
    BenchReport,
    BenchSettings,
    parse_candidates,
    run_bench,
)
from monodepth2_ros.inference.device import resolve_device

__all__ = ["register", "run", "format_table"]

EXAMPLES = """examples:
  monodepth2 bench                                  all backends here, 640x192, random weights
  monodepth2 bench --quick --json bench.json        a few runs at 96x64: every column in seconds
  monodepth2 bench --weights ~/models/mono_640x192 --backends onnxruntime:int8,eager_optimized:bf16
  monodepth2 bench --backends compile:bf16          torch.compile too (slow to build on a CPU)
  monodepth2 bench --soak 30 --soak-out soak        both nodes under a 30 Hz camera for 30 minutes
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="compare inference backends: latency, throughput, accuracy, hardware limit",
        description=(
            "Depth and pose network latency (p50/p95, batch 1) and throughput for each backend x "
            "precision, with eager fp32 measured in the same run; accuracy against eager fp32 on a "
            "rendered synthetic drive; the depth node's end-to-end latency; FLOPs over device peak."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint folder (default: random weights)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backends", default=None, help="comma list of backend[:precision] (default: all that run here)")
    parser.add_argument("--height", type=int, default=None, help="network height without --weights (192)")
    parser.add_argument("--width", type=int, default=None, help="network width without --weights (640)")
    parser.add_argument("--batch", type=int, default=None, help="throughput batch (8)")
    parser.add_argument("--runs", type=int, default=None, help="measured calls per backend (10)")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured calls per backend (2)")
    parser.add_argument("--accuracy-frames", type=int, default=None, help="synthetic frames of the accuracy check (4)")
    parser.add_argument("--node-frames", type=int, default=None, help="frames of the node benchmark, 0 to skip (20)")
    parser.add_argument("--node-all", action="store_true", help="node benchmark for every row the node can run, not only eager fp32")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch and onnxruntime (current)")
    parser.add_argument("--quick", action="store_true", help="few runs at 96x64, for CI: every column, in seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument(
        "--soak", type=float, default=None, metavar="MINUTES",
        help="instead: soak depth_node + pose_node with a 640x480 30 Hz camera for MINUTES (see README, Reliability)",
    )  # fmt: skip
    parser.add_argument("--soak-out", type=Path, default=Path("soak_output"), help="folder of the soak's JSON, plot and logs")
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> BenchSettings:
    base = QUICK_SETTINGS if args.quick else BenchSettings()
    overrides = {
        "height": args.height,
        "width": args.width,
        "throughput_batch": args.batch,
        "runs": args.runs,
        "warmup": args.warmup,
        "accuracy_frames": args.accuracy_frames,
        "node_frames": args.node_frames,
        "threads": args.threads,
        "node_rows": True if args.node_all else None,
    }
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _number(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


_COLUMNS = (
    # header, width, row -> text
    ("backend precision", 22, lambda r: r.label),
    ("setup s", 7, lambda r: _number(r.setup_s, ".1f")),
    ("depth p50", 9, lambda r: _number(r.depth_p50_ms, ".1f")),
    ("p95", 7, lambda r: _number(r.depth_p95_ms, ".1f")),
    ("pose p50", 8, lambda r: _number(r.pose_p50_ms, ".1f")),
    ("p95", 7, lambda r: _number(r.pose_p95_ms, ".1f")),
    ("depth/s", 7, lambda r: _number(r.depth_throughput, ".1f")),
    ("pose/s", 7, lambda r: _number(r.pose_throughput, ".1f")),
    ("speedup", 7, lambda r: _number(r.depth_speedup, ".2f")),
    ("abs_rel", 7, lambda r: _number(r.abs_rel, ".4f")),
    ("d_abs_rel", 9, lambda r: _number(r.abs_rel_change, "+.5f")),
    ("max_d_disp", 10, lambda r: _number(r.max_disp_diff, ".2e")),
    ("max_d_pose", 10, lambda r: _number(r.max_pose_diff, ".2e")),
    ("limit ms", 8, lambda r: _number(r.limit_ms, ".2f")),
    ("%peak", 6, lambda r: _number(None if r.peak_fraction is None else 100 * r.peak_fraction, ".1f")),
    ("node p50", 8, lambda r: _number(r.node_p50_ms, ".1f")),
    ("p95", 7, lambda r: _number(r.node_p95_ms, ".1f")),
)


def format_table(report: BenchReport) -> str:
    """The side-by-side table (times in ms, throughput per second), then the notes of each row."""
    lines = [
        f"machine: {report.machine}; torch {report.torch_version}; onnxruntime {report.onnxruntime}",
        f"network {report.width}x{report.height}, latency batch 1 ({report.runs} runs), throughput batch "
        f"{report.throughput_batch}; depth {report.depth_gflops:.2f} GFLOP, pose {report.pose_gflops:.2f} GFLOP",
        "peak: " + "; ".join(
            f"{p.precision} {_number(p.theoretical_gflops, '.0f')} GFLOP/s theoretical, "
            f"{_number(p.measured_gflops, '.0f')} measured" for p in report.peaks
        ),
    ]
    for result in report.baseline_latency:
        lines.append(
            f"{result.name:32} {result.device:8} {result.width:>4}x{result.height:<4} {result.batch:>5} "
            f"{result.p50_ms:8.2f} {result.p95_ms:8.2f}"
        )
    lines.append("")
    lines.append(" ".join(f"{header:>{width}}" if i else f"{header:<{width}}" for i, (header, width, _) in enumerate(_COLUMNS)))
    for row in report.rows:
        cells = [fn(row) for _, _, fn in _COLUMNS]
        lines.append(" ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, (_, w, _)) in enumerate(zip(cells, _COLUMNS))))
    lines.extend(format_stage_table(report))
    lines.append("")
    for row in report.rows:
        notes = [n for n in (row.note, row.node_note and f"node: {row.node_note}") if n]
        if notes:
            lines.append(f"{row.label}: {'; '.join(notes)}")
    lines.extend(f"note: {note}" for note in report.notes)
    lines.append(f"inductor cache: {report.inductor_cache_dir}")
    return "\n".join(lines)


def format_stage_table(report: BenchReport) -> list[str]:
    """The depth node's time per stage (p50 ms) for each row the node ran, beside the bare network.

    ``node`` is publish-to-arrival of depth + points (one frame in flight); ``bare`` is
    ``DepthEstimator.estimate`` on the same frames in the same run; ``x bare`` their ratio; ``in Hz``
    the highest input rate served without a drop or a growing latency.
    """
    rows = [row for row in report.rows if row.node_stages_ms]
    if not rows:
        return []
    columns = [*DEPTH_STAGES, "node", "bare", "x bare", "in Hz"]
    widths = [max(len(name), 7) for name in columns]
    lines = ["", "depth node per stage, p50 ms (" + rows[0].node_note + "):"]
    lines.append(f"{'backend precision':<22} " + " ".join(f"{name:>{w}}" for name, w in zip(columns, widths)))
    for row in rows:
        stages = row.node_stages_ms or {}
        ratio = row.node_p50_ms / row.node_model_p50_ms if row.node_p50_ms and row.node_model_p50_ms else None
        cells = [_number(stages.get(name), ".1f") for name in DEPTH_STAGES] + [
            _number(row.node_p50_ms, ".1f"),
            _number(row.node_model_p50_ms, ".1f"),
            _number(ratio, ".2f"),
            _number(row.node_sustained_hz, ".2f"),
        ]
        lines.append(f"{row.label:<22} " + " ".join(f"{cell:>{w}}" for cell, w in zip(cells, widths)))
    return lines


def _progress(line: str) -> None:
    if sys.stderr.isatty():
        print(f"... {line}", file=sys.stderr)


def _run_soak(args: argparse.Namespace) -> int:
    from monodepth2_ros.tools.soak import SoakSettings, run_soak

    settings = SoakSettings(minutes=args.soak, weights=str(args.weights) if args.weights else None)
    result = run_soak(settings, args.soak_out, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(result["summary"], indent=2))
    return 0 if result["summary"]["passed"] else 1


def run(args: argparse.Namespace) -> int:
    if args.soak is not None:
        return _run_soak(args)
    device = resolve_device(args.device)
    candidates = parse_candidates(args.backends) if args.backends else None
    report = run_bench(args.weights, device, candidates, _settings(args), progress=_progress)
    print(format_table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2))
    return 0

