"""Plot a training run's curve from its ``metrics.jsonl``: training loss, validation loss and abs_rel.

    python scripts/plot_training_curve.py RUN_DIR monodepth2_ros/weights/synthetic_streets_320x96/training_curve.png

The model card of the bundled model shows this plot; any run folder of ``monodepth2 train`` works.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from monodepth2_ros.training.run_dir import METRICS_FILE  # noqa: E402


def read_records(run_dir: Path) -> list[dict]:
    with open(run_dir / METRICS_FILE, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a monodepth2 train --out folder")
    parser.add_argument("out", type=Path, help="PNG to write")
    args = parser.parse_args()
    records = read_records(args.run_dir)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    best = [r for r in records if r.get("kind") == "best"]
    if not train:
        raise SystemExit(f"{args.run_dir / METRICS_FILE} has no training records yet")

    fig, (loss_ax, depth_ax) = plt.subplots(1, 2, figsize=(11, 3.6))
    loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.8, label="training loss")
    if val and "loss" in val[0]:
        loss_ax.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="validation loss")
    elif val and "score" in val[0]:  # a guarded fine-tune (--init): its validation score and photometric error
        loss_ax.plot([r["step"] for r in val], [r["score"] for r in val], "o-", label="validation score (guarded)")
        loss_ax.plot([r["step"] for r in val], [r["photometric"] for r in val], "s-", label="validation photometric")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("photometric + smoothness loss")
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)
    if val and "abs_rel" in val[0]:
        depth_ax.plot([r["step"] for r in val], [r["abs_rel"] for r in val], "o-", label="abs_rel (median-scaled)")
        depth_ax.plot([r["step"] for r in val], [r["a1"] for r in val], "s-", label="δ<1.25")
        if best:
            depth_ax.axvline(best[-1]["step"], color="grey", ls="--", lw=0.8, label=f"best (step {best[-1]['step']})")
        depth_ax.set_xlabel("step")
        depth_ax.set_title("validation depth vs. ground truth")
        depth_ax.legend()
        depth_ax.grid(alpha=0.3)
    else:
        depth_ax.set_axis_off()
        depth_ax.text(0.5, 0.5, "no ground-truth depth in validation", ha="center")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"{len(train)} training and {len(val)} validation records -> {args.out}")


if __name__ == "__main__":
    main()
