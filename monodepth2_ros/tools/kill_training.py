"""Kill-anywhere training: SIGKILL ``monodepth2 train`` at random instants and run the same command again.

On a small synthetic bag, one run goes uninterrupted (the reference); another is killed ``kills``
times, each time re-run with the very same command, then left to finish. The kill instants cycle
through three kinds: while the frame cache is being built, while a checkpoint is being written (the
moment a staging folder appears), and at a uniformly random time. After every kill the script checks
that

* every checkpoint folder on disk (``last/``, ``previous/``, ``best/``) loads, and the run has a
  resume point;
* the steps lost (logged before the kill, beyond the resume point) are at most one checkpoint
  interval;
* no staging or temporary folder is left behind once the next run has started writing;

and at the end that the final model equals the reference's (largest absolute difference of any
weight). A last run makes the checkpoint writer fail with ENOSPC (a patched ``torch.save``, as a full
disk does) and checks for a clear error with the last good checkpoint intact.

``python -m monodepth2_ros.tools.kill_training --kills 20 --out kill_output`` writes
``kill_output/kill_training.json``.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["KillSettings", "run_kill_training", "main"]

KILL_KINDS = ("cache", "checkpoint", "random")
_POLL_S = 0.002
_RUN_TIMEOUT_S = 1800.0
_ENOSPC_AFTER_SAVES = 7  # the first checkpoint (5 files) completes, the second fails part-way


@dataclass(frozen=True)
class KillSettings:
    """One kill-anywhere experiment.

    Attributes:
        kills: SIGKILLs to deliver before the run may finish.
        frames: frames of the synthetic drive (10 Hz).
        max_steps, checkpoint_interval, batch_size, height, width, seed: the training command's.
        precision: fp32 by default, so that equality with the reference is exact on a CPU.
        check_enospc: also run the full-disk check.
    """

    kills: int = 20
    frames: int = 24
    max_steps: int = 160
    checkpoint_interval: int = 4
    batch_size: int = 2
    height: int = 64
    width: int = 96
    seed: int = 7
    precision: str = "fp32"
    check_enospc: bool = True
    rng_seed: int = 0


def train_command(settings: KillSettings, bag: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "monodepth2_ros", "train", "--bag", str(bag), "--out", str(run_dir),
        "--height", str(settings.height), "--width", str(settings.width),
        "--batch-size", str(settings.batch_size), "--num-workers", "0", "--device", "cpu",
        "--precision", settings.precision, "--seed", str(settings.seed),
        "--max-steps", str(settings.max_steps), "--checkpoint-interval", str(settings.checkpoint_interval),
        "--set", "runtime.log_interval=1",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # the line being written when the process was killed
            pass
    return records


def _steps_of_last_attempt(run_dir: Path) -> list[int]:
    """Train steps logged since the latest start (after its resume record, if any)."""
    records = _records(run_dir)
    starts = [i for i, r in enumerate(records) if r.get("kind") == "resume"]
    tail = records[starts[-1] + 1 :] if starts else records
    return [int(r["step"]) for r in tail if r.get("kind") == "train"]


def _leftovers(run_dir: Path) -> list[str]:
    """Hidden staging and temporary folders in the run folder and its cache."""
    found = [p for p in run_dir.glob(".*") if p.is_dir()]
    cache = run_dir / "cache"
    if cache.is_dir():
        found += [p for p in cache.glob(".*") if p.is_dir()]
    return sorted(str(p.relative_to(run_dir)) for p in found)


def _in_cache_build(run_dir: Path) -> bool:
    cache = run_dir / "cache"
    return cache.is_dir() and any(p.name.startswith(".") for p in cache.iterdir())


def _cache_built(run_dir: Path) -> bool:
    cache = run_dir / "cache"
    return cache.is_dir() and any((p / "info.json").is_file() for p in cache.iterdir() if not p.name.startswith("."))


def _staging_names(run_dir: Path) -> set[str]:
    """Staging and temporary folders of checkpoint writes in the run folder."""
    try:
        names = os.listdir(run_dir)
    except FileNotFoundError:
        return set()
    return {name for name in names if name.startswith((".last.staging", "..last.staging", ".best."))}


def _run_until_killed(command: list[str], run_dir: Path, kind: str, delay_s: float) -> tuple[str, float]:
    """Start ``command``; SIGKILL it when ``kind``'s moment comes. Returns (what happened, seconds)."""
    start = time.monotonic()
    left_by_the_last_kill = _staging_names(run_dir)  # a write in progress is a new one
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while process.poll() is None:
            elapsed = time.monotonic() - start
            if kind == "cache" and _in_cache_build(run_dir):
                time.sleep(delay_s)
                break
            if kind == "cache" and _cache_built(run_dir):  # built before a poll saw it: kill right after
                break
            if kind == "checkpoint" and _staging_names(run_dir) - left_by_the_last_kill:
                time.sleep(delay_s)
                break
            if kind == "random" and elapsed >= delay_s:
                break
            if elapsed > _RUN_TIMEOUT_S:
                break
            time.sleep(_POLL_S)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return "killed", time.monotonic() - start
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.returncode != 0:
            raise RuntimeError(f"training exited with {process.returncode}:\n{stderr[-3000:]}")
        return "finished", time.monotonic() - start
    finally:
        if process.stderr:
            process.stderr.close()


def _check_checkpoints(run_dir: Path) -> dict[str, Any]:
    """Every checkpoint folder on disk loads; the run has a resume point (and which step)."""
    from monodepth2_ros.errors import Monodepth2Error
    from monodepth2_ros.model.checkpoint import load_checkpoint
    from monodepth2_ros.training.run_dir import RunPaths, find_resume_point

    result: dict[str, Any] = {"folders": {}, "unloadable": []}
    for name in ("last", "previous", "best"):
        folder = run_dir / name
        if not folder.exists():
            continue
        try:
            load_checkpoint(folder)
            result["folders"][name] = "loads"
        except Monodepth2Error as err:
            result["folders"][name] = f"fails: {err}"
            result["unloadable"].append(name)
    try:
        point = find_resume_point(RunPaths(run_dir))
        result["resume_step"] = None if point is None else int(point.state["step"])
        result["resume_folder"] = None if point is None else point.folder.name
    except Monodepth2Error as err:
        result["resume_step"], result["resume_error"] = None, str(err)
    return result


def _timings(run_dir: Path, launched: float, total_s: float, steps: int) -> tuple[float, float]:
    """(seconds from launch to the first step, seconds a step) of a finished run, from its metrics."""
    times = [float(r["time"]) for r in _records(run_dir) if r.get("kind") == "train" and "time" in r]
    if len(times) < 2:
        return 0.5 * total_s, 0.5 * total_s / max(steps, 1)
    return max(0.0, times[0] - launched), (times[-1] - times[0]) / (len(times) - 1)


def _state(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in sorted(folder.glob("*.pth")):
        for key, value in torch.load(file, map_location="cpu", weights_only=True).items():
            if isinstance(value, torch.Tensor):
                tensors[f"{file.name}:{key}"] = value
    return tensors


def _max_difference(a: Path, b: Path) -> float:
    left, right = _state(a), _state(b)
    if left.keys() != right.keys():
        return float("inf")
    return max(float((left[k].double() - right[k].double()).abs().max()) if left[k].numel() else 0.0 for k in left)


def _enospc_check(settings: KillSettings, bag: Path, run_dir: Path) -> dict[str, Any]:
    """Train with a ``torch.save`` that fails with ENOSPC on its 7th call (inside the second checkpoint)."""
    command = [sys.executable, "-m", "monodepth2_ros.tools.kill_training", "--enospc-child", "--"] + train_command(
        settings, bag, run_dir
    )[3:]
    finished = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=_RUN_TIMEOUT_S)
    error_lines = [line for line in finished.stderr.splitlines() if line.startswith("error:")]
    checks = _check_checkpoints(run_dir)
    return {
        "exit_code": finished.returncode,
        "error": error_lines[-1] if error_lines else finished.stderr[-2000:],
        "last_loads": checks["folders"].get("last") == "loads",
        "resume_step": checks.get("resume_step"),
        "leftovers": _leftovers(run_dir),
        "ok": finished.returncode == 1
        and bool(error_lines)
        and "No space left on device" in error_lines[-1]
        and checks["folders"].get("last") == "loads"
        and checks.get("resume_step") == settings.checkpoint_interval
        and not [p for p in _leftovers(run_dir) if not p.startswith("cache")],
    }


def _enospc_child(train_args: list[str]) -> int:
    """``monodepth2 train`` with a checkpoint writer that runs out of space (run in a subprocess)."""
    from monodepth2_ros.cli.main import main as cli_main
    from monodepth2_ros.model import checkpoint

    real_save = checkpoint.torch.save
    calls = {"n": 0}

    def failing_save(obj, target, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= _ENOSPC_AFTER_SAVES:
            if hasattr(target, "write"):
                target.write(b"\0" * 4096)  # a partly written file, as a full disk leaves
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, target, *args, **kwargs)

    checkpoint.torch.save = failing_save
    return cli_main(train_args)


def run_kill_training(settings: KillSettings, out: str | Path, bag: str | Path | None = None, progress=lambda line: None) -> dict[str, Any]:
    """The experiment; writes ``out/kill_training.json`` and returns its content."""
    from monodepth2_ros.synthetic.bag import write_drive_bag
    from monodepth2_ros.synthetic.config import SynthConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if bag is None:
        bag = out / "drive"
        if not bag.exists():
            write_drive_bag(SynthConfig(frames=settings.frames, width=128, height=96, seed=settings.seed), bag, "mcap")
    bag = Path(bag)
    rng = random.Random(settings.rng_seed)

    reference_dir, killed_dir = out / "reference", out / "killed"
    started = time.monotonic()
    launched = time.time()
    _, reference_s = _run_until_killed(train_command(settings, bag, reference_dir), reference_dir, "none", 0.0)
    startup_s, step_s = _timings(reference_dir, launched, reference_s, settings.max_steps)
    progress(f"reference run: {reference_s:.0f} s ({startup_s:.0f} s to the first step, then {step_s:.2f} s a step)")
    # A random kill falls anywhere from the start to about twice the steps one attempt should add,
    # so that 'kills' kills fit into the run, with more than a checkpoint interval between most.
    steps_per_kill = max(settings.checkpoint_interval + 1, settings.max_steps // max(settings.kills, 1))
    horizon = startup_s + 2 * steps_per_kill * step_s

    command = train_command(settings, bag, killed_dir)
    attempts: list[dict[str, Any]] = []
    for index in range(settings.kills):
        kind = KILL_KINDS[index % len(KILL_KINDS)]
        if kind == "cache" and _cache_built(killed_dir):
            kind = "random"
        delay = rng.uniform(0.0, 0.05) if kind != "random" else rng.uniform(0.0, horizon)
        what, seconds = _run_until_killed(command, killed_dir, kind, delay)
        steps = _steps_of_last_attempt(killed_dir)
        checks = _check_checkpoints(killed_dir)
        resume = checks.get("resume_step") or 0
        lost = max(steps) - resume if steps else 0
        attempt = {
            "kill": index + 1,
            "kind": kind,
            "outcome": what,
            "after_s": round(seconds, 2),
            "last_logged_step": max(steps) if steps else None,
            "resume_step": checks.get("resume_step"),
            "resume_folder": checks.get("resume_folder"),
            "steps_lost": lost,
            "folders": checks["folders"],
            "unloadable": checks["unloadable"],
            "leftovers": _leftovers(killed_dir),
            "resume_error": checks.get("resume_error"),
        }
        attempt["ok"] = not checks["unloadable"] and "resume_error" not in checks and lost <= settings.checkpoint_interval
        attempts.append(attempt)
        progress(
            f"kill {index + 1:2d} ({kind:10s}) after {seconds:5.1f} s: {what}; logged {attempt['last_logged_step']}, "
            f"resume at {attempt['resume_step']} from {attempt['resume_folder']}, lost {lost}; {'ok' if attempt['ok'] else 'FAILED'}"
        )
        if what == "finished":
            break
    final, final_s = _run_until_killed(command, killed_dir, "none", 0.0)
    final_state = torch.load(killed_dir / "last" / "training_state.pt", weights_only=True)
    difference = _max_difference(reference_dir / "last", killed_dir / "last")
    leftovers_at_end = _leftovers(killed_dir)
    progress(f"final run {final_s:.0f} s; largest weight difference from the reference {difference:.3g}")
    result: dict[str, Any] = {
        "settings": asdict(settings),
        "reference_s": round(reference_s, 1),
        "reference_startup_s": round(startup_s, 1),
        "reference_step_s": round(step_s, 3),
        "random_kill_horizon_s": round(horizon, 1),
        "kills_delivered": sum(a["outcome"] == "killed" for a in attempts),
        "kills_survived": sum(a["outcome"] == "killed" and a["ok"] for a in attempts),
        "max_steps_lost": max((a["steps_lost"] for a in attempts), default=0),
        "final_step": int(final_state["step"]),
        "max_weight_difference": difference,
        "equal_to_reference": difference == 0.0,
        "leftovers_at_end": leftovers_at_end,
        "attempts": attempts,
    }
    if settings.check_enospc:
        result["enospc"] = _enospc_check(settings, bag, out / "enospc")
        progress(f"ENOSPC: {result['enospc']['error']}; last/ loads: {result['enospc']['last_loads']}")
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["passed"] = (
        all(a["ok"] for a in attempts)
        and result["final_step"] == settings.max_steps
        and difference <= 1e-6
        and not leftovers_at_end
        and (not settings.check_enospc or result["enospc"]["ok"])
    )
    (out / "kill_training.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--enospc-child"]:
        return _enospc_child(argv[2:] if argv[1:2] == ["--"] else argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--out", default="kill_output")
    parser.add_argument("--bag", default=None, help="train on this bag instead of a synthetic drive")
    parser.add_argument("--frames", type=int, default=24, help="frames of the synthetic drive")
    parser.add_argument("--max-steps", type=int, default=160)
    parser.add_argument("--checkpoint-interval", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rng-seed", type=int, default=0, help="seed of the kill instants")
    parser.add_argument("--no-enospc", action="store_true", help="skip the full-disk check")
    options = parser.parse_args(argv)
    settings = KillSettings(
        kills=options.kills,
        frames=options.frames,
        max_steps=options.max_steps,
        checkpoint_interval=options.checkpoint_interval,
        seed=options.seed,
        rng_seed=options.rng_seed,
        check_enospc=not options.no_enospc,
    )
    result = run_kill_training(settings, options.out, options.bag, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps({k: v for k, v in result.items() if k != "attempts"}, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
