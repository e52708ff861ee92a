"""Training throughput (triplets per second) of one optimiser step, per speed setting, side by side.

A step is what the trainer does per batch: depth network on the target, pose network on the two
(source, target) pairs, the full Monodepth2 loss, backward and an Adam update. Inputs are random
textured tensors already on the device, so the figure is the compute throughput (data loading is
excluded; the frame cache makes it cheap anyway).

Example::

    python -m monodepth2_ros.tools.training_bench --sizes 640x192 320x96 --batch-size 4 --steps 3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from monodepth2_ros.inference.device import autocast_context, resolve_device, resolve_precision
from monodepth2_ros.training.batch import Batch
from monodepth2_ros.training.config import LossConfig, ModelConfig
from monodepth2_ros.training.networks import build_model
from monodepth2_ros.training.objective import compute_losses, losses_from_predictions

__all__ = [
    "BenchSetting",
    "ThroughputRow",
    "DEFAULT_SETTINGS",
    "DEFAULT_SIZES",
    "training_throughput",
    "run_training_bench",
    "format_table",
    "main",
]


@dataclass(frozen=True)
class BenchSetting:
    """One way to run a training step."""

    name: str
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast)
    channels_last: bool = False
    compile: str = "none"  # torch.compile: none | loss | all (see RuntimeConfig.compile)


DEFAULT_SETTINGS = (
    BenchSetting("eager fp32"),
    BenchSetting("eager bf16", precision="bf16"),
    BenchSetting("bf16 channels_last", precision="bf16", channels_last=True),
    BenchSetting("bf16 compile loss", precision="bf16", compile="loss"),
    BenchSetting("bf16 compile all", precision="bf16", compile="all"),
)
DEFAULT_SIZES = ((192, 640), (96, 320))  # (height, width): the paper's size and a small one


@dataclass(frozen=True)
class ThroughputRow:
    """Figures of one setting at one size.

    Attributes:
        setting: the setting's name.
        height, width, batch: the step's input size.
        device: where it ran.
        steps: timed steps (after the warm-up).
        first_step_s: the first warm-up step (includes torch.compile's compilation).
        seconds_per_step: median of the timed steps.
        triplets_per_s: ``batch / seconds_per_step``.
    """

    setting: str
    height: int
    width: int
    batch: int
    device: str
    steps: int
    first_step_s: float
    seconds_per_step: float
    triplets_per_s: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _textured_batch(batch_size: int, height: int, width: int, device: torch.device) -> Batch:
    """Smooth random textures (the loss is not degenerate) as a batch of triplets."""
    generator = torch.Generator().manual_seed(0)
    low = torch.rand(batch_size * 3, 3, max(height // 8, 1), max(width // 8, 1), generator=generator)
    frames = torch.nn.functional.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)
    frames = frames.view(batch_size, 3, 3, height, width).to(device)
    focal = 0.58 * width
    K = torch.tensor([[focal, 0.0, (width - 1) / 2], [0.0, 1.92 * focal * height / width, (height - 1) / 2], [0, 0, 1.0]])
    return Batch(
        target=frames[:, 0],
        sources=frames[:, 1:],
        target_aug=frames[:, 0],
        sources_aug=frames[:, 1:],
        K=K.expand(batch_size, 3, 3).to(device),
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_throughput(
    height: int,
    width: int,
    batch_size: int,
    setting: BenchSetting,
    steps: int = 3,
    warmup: int = 2,
    device: str = "cpu",
    num_layers: int = 18,
) -> ThroughputRow:
    """Time ``steps`` training steps after ``warmup`` untimed ones.

    Raises:
        ConfigError: an unknown device or a precision the device cannot run.
    """
    torch_device = resolve_device(device)
    precision = resolve_precision(setting.precision, torch_device)
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_layers=num_layers)).to(torch_device)
    if setting.channels_last:
        model.to(memory_format=torch.channels_last)
    nets = torch.compile(model) if setting.compile == "all" else model
    loss_fn = torch.compile(losses_from_predictions) if setting.compile in ("loss", "all") else losses_from_predictions
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    scaler = torch.amp.GradScaler(torch_device.type, enabled=precision == "fp16")
    batch = _textured_batch(batch_size, height, width, torch_device)
    if setting.channels_last:
        batch = batch.to(torch_device, channels_last=True)
    loss_config = LossConfig()

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(torch_device, precision):
            terms = compute_losses(nets, batch, loss_config, loss_fn)
        scaler.scale(terms.total).backward()
        scaler.step(optimizer)
        scaler.update()
        _synchronize(torch_device)
        return time.perf_counter() - start

    durations = [step() for _ in range(max(warmup, 1))]
    first = durations[0]
    timed = sorted(step() for _ in range(steps))
    median = timed[len(timed) // 2]
    return ThroughputRow(
        setting=setting.name,
        height=height,
        width=width,
        batch=batch_size,
        device=str(torch_device),
        steps=steps,
        first_step_s=first,
        seconds_per_step=median,
        triplets_per_s=batch_size / median,
    )


def run_training_bench(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batch_size: int = 4,
    settings: Sequence[BenchSetting] = DEFAULT_SETTINGS,
    steps: int = 3,
    warmup: int = 2,
    device: str = "cpu",
) -> list[ThroughputRow]:
    """Every setting at every size, in one process (same machine state for all rows)."""
    return [
        training_throughput(height, width, batch_size, setting, steps=steps, warmup=warmup, device=device)
        for height, width in sizes
        for setting in settings
    ]


def machine_description(device: str = "cpu") -> str:
    torch_device = resolve_device(device)
    if torch_device.type == "cuda":
        return torch.cuda.get_device_name(torch_device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def format_table(rows: Sequence[ThroughputRow]) -> str:
    """A plain-text table, one row per setting and size, with the speed-up over the first setting."""
    lines = [f"{'setting':28} {'size':>9} {'batch':>5} {'s/step':>8} {'triplets/s':>10} {'speed-up':>8} {'1st step s':>10}"]
    baseline: dict[tuple[int, int], float] = {}
    for row in rows:
        base = baseline.setdefault((row.height, row.width), row.triplets_per_s)
        lines.append(
            f"{row.setting:28} {row.width:>4}x{row.height:<4} {row.batch:>5} {row.seconds_per_step:8.3f} "
            f"{row.triplets_per_s:10.2f} {row.triplets_per_s / base:7.2f}x {row.first_step_s:10.1f}"
        )
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        return int(height), int(width)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x192") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monodepth2_ros.tools.training_bench",
        description="Training throughput (triplets/s) per speed setting, side by side.",
    )
    parser.add_argument("--sizes", nargs="+", type=_size, default=[(h, w) for h, w in DEFAULT_SIZES], metavar="WxH")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per row (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--settings", nargs="+", default=[s.name for s in DEFAULT_SETTINGS], help="names of DEFAULT_SETTINGS to run"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    by_name = {s.name: s for s in DEFAULT_SETTINGS}
    unknown = [name for name in args.settings if name not in by_name]
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; choose from {list(by_name)}")
    print(f"machine: {machine_description(args.device)}, torch {torch.__version__}", flush=True)
    rows = []
    for height, width in args.sizes:
        for name in args.settings:
            row = training_throughput(height, width, args.batch_size, by_name[name], args.steps, args.warmup, args.device)
            rows.append(row)
            print(f"  measured {name} at {width}x{height}: {row.triplets_per_s:.2f} triplets/s", flush=True)
    print(format_table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine_description(args.device), "rows": [r.as_dict() for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
