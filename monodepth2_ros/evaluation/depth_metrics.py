"""The KITTI / Eigen depth metrics and the per-frame protocol of Monodepth2's depth evaluation.

The protocol (Eigen et al. 2014, as used by Monodepth2 for its tables), per frame:

1. resize the prediction to the ground truth's size *through disparity* (bilinear on ``1/depth``,
   then inverted), because the network's output is a disparity and interpolating depth would bias
   the edges of near objects towards the far side;
2. keep pixels whose ground truth is finite and inside ``(min_depth, max_depth)`` (exclusive);
3. optionally keep only the Garg crop (the central-lower part of a KITTI frame);
4. optionally scale the prediction by ``median(gt) / median(pred)`` (monocular models have no
   metric scale);
5. clamp the prediction to ``[min_depth, max_depth]``;
6. compute the seven metrics; a dataset's figure is the *mean over frames* of the per-frame metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from monodepth2_ros.errors import DatasetError

__all__ = [
    "DEFAULT_MIN_DEPTH",
    "DEFAULT_MAX_DEPTH",
    "METRIC_NAMES",
    "DepthMetrics",
    "FrameDepthResult",
    "DepthSummary",
    "DepthEvaluation",
    "compute_depth_metrics",
    "evaluate_depth_frame",
    "garg_crop_mask",
    "resize_depth_via_disparity",
]

# The evaluation range of the KITTI Eigen split (metres).
DEFAULT_MIN_DEPTH = 1e-3
DEFAULT_MAX_DEPTH = 80.0

# The paper's column order.
METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")

# delta < 1.25 ** k for k = 1, 2, 3.
_DELTA_BASE = 1.25

# Garg et al. (ECCV 2016) crop as fractions of the ground-truth image size: rows, then columns.
_GARG_CROP_ROWS = (0.40810811, 0.99189189)
_GARG_CROP_COLS = (0.03594771, 0.96405229)


@dataclass(frozen=True)
class DepthMetrics:
    """The seven standard depth metrics (lower is better except for ``a1..a3``).

    Attributes:
        abs_rel: mean |gt - pred| / gt.
        sq_rel: mean (gt - pred)^2 / gt, metres.
        rmse: sqrt(mean (gt - pred)^2), metres.
        rmse_log: sqrt(mean (ln gt - ln pred)^2).
        a1, a2, a3: fraction of pixels with max(gt/pred, pred/gt) < 1.25, 1.25^2, 1.25^3.
    """

    abs_rel: float
    sq_rel: float
    rmse: float
    rmse_log: float
    a1: float
    a2: float
    a3: float

    def as_dict(self) -> dict[str, float]:
        """The metrics keyed by :data:`METRIC_NAMES`, in the paper's order."""
        return {name: float(getattr(self, name)) for name in METRIC_NAMES}


@dataclass(frozen=True)
class FrameDepthResult:
    """One evaluated frame.

    Attributes:
        metrics: the frame's metrics after masking, scaling and clamping.
        scale_ratio: ``median(gt) / median(pred)`` over the valid pixels, computed always and applied
            only when median scaling is on (for a metric model it shows how far off its scale is).
        valid_pixels: number of pixels that entered the metrics.
    """

    metrics: DepthMetrics
    scale_ratio: float
    valid_pixels: int


@dataclass(frozen=True)
class DepthSummary:
    """A dataset's figures: per-frame metrics averaged over frames, and the scale-ratio spread.

    Attributes:
        metrics: mean over frames of each metric.
        num_frames: frames evaluated.
        scale_ratio_median: median of the per-frame ``median(gt)/median(pred)`` ratios.
        scale_ratio_std: standard deviation (population) of those ratios.
        scale_ratio_std_normalized: ``std(ratios / median)``, the figure the paper prints.
        median_scaling: whether the ratios were applied to the predictions.
    """

    metrics: DepthMetrics
    num_frames: int
    scale_ratio_median: float
    scale_ratio_std: float
    scale_ratio_std_normalized: float
    median_scaling: bool

    def as_dict(self) -> dict[str, float | int | bool]:
        """Flat dict for JSON: the metrics followed by the counts and scale figures."""
        out: dict[str, float | int | bool] = dict(self.metrics.as_dict())
        out.update(
            num_frames=self.num_frames,
            scale_ratio_median=self.scale_ratio_median,
            scale_ratio_std=self.scale_ratio_std,
            scale_ratio_std_normalized=self.scale_ratio_std_normalized,
            median_scaling=self.median_scaling,
        )
        return out


def compute_depth_metrics(gt: np.ndarray, pred: np.ndarray) -> DepthMetrics:
    """The seven metrics of already-masked depths.

    Args:
        gt: (N,) ground-truth depths, metres, all > 0.
        pred: (N,) predicted depths in the same units, all > 0.
    Raises:
        ValueError: shapes differ, are not 1-D, or are empty.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.ndim != 1 or gt.shape != pred.shape:
        raise ValueError(
            f"expected two 1-D arrays of one length, got gt {gt.shape} and pred {pred.shape}"
        )
    if gt.size == 0:
        raise ValueError("cannot compute depth metrics of zero pixels")
    ratio = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    log_diff = np.log(gt) - np.log(pred)
    return DepthMetrics(
        abs_rel=float(np.mean(np.abs(diff) / gt)),
        sq_rel=float(np.mean(diff**2 / gt)),
        rmse=float(np.sqrt(np.mean(diff**2))),
        rmse_log=float(np.sqrt(np.mean(log_diff**2))),
        a1=float(np.mean(ratio < _DELTA_BASE)),
        a2=float(np.mean(ratio < _DELTA_BASE**2)),
        a3=float(np.mean(ratio < _DELTA_BASE**3)),
    )


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of the Garg crop, the central-lower part of a KITTI frame.

    Rows ``int(0.40810811 H) : int(0.99189189 H)``, columns ``int(0.03594771 W) : int(0.96405229 W)``:
    the fractions of the KITTI Eigen protocol, bounds truncated towards zero, ends exclusive.
    """
    mask = np.zeros((height, width), dtype=bool)
    top, bottom = (int(fraction * height) for fraction in _GARG_CROP_ROWS)
    left, right = (int(fraction * width) for fraction in _GARG_CROP_COLS)
    mask[top:bottom, left:right] = True
    return mask


def resize_depth_via_disparity(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a depth map to ``size = (H, W)`` by bilinear interpolation of its disparity ``1/depth``.

    This is the official protocol's resize (``cv2.resize`` with ``INTER_LINEAR``, pixel-centre aligned).
    Depths must be > 0; the result is float64.
    """
    depth = np.asarray(depth, dtype=np.float64)
    height, width = size
    if depth.shape == (height, width):
        return depth.copy()
    disparity = 1.0 / depth
    resized = cv2.resize(disparity, (width, height), interpolation=cv2.INTER_LINEAR)
    return 1.0 / resized


def evaluate_depth_frame(
    gt_depth: np.ndarray,
    pred_depth: np.ndarray,
    min_depth: float = DEFAULT_MIN_DEPTH,
    max_depth: float = DEFAULT_MAX_DEPTH,
    median_scaling: bool = True,
    garg_crop: bool = False,
) -> FrameDepthResult:
    """Evaluate one predicted depth map against its ground truth (see the module doc for the steps).

    Args:
        gt_depth: (H, W) ground-truth depth, metres; NaN, inf, 0 or negative mark missing pixels
            (sparse LiDAR ground truth is fine).
        pred_depth: (h, w) predicted depth, > 0 everywhere; resized through disparity to (H, W) if
            its size differs.
        min_depth, max_depth: ground truth is valid strictly inside this range, and the (scaled)
            prediction is clamped to it.
        median_scaling: multiply the prediction by ``median(gt) / median(pred)`` first.
        garg_crop: restrict to the Garg crop of the ground-truth frame.
    Raises:
        ValueError: the arrays are not 2-D, or the prediction is not finite and positive.
        DatasetError: no ground-truth pixel is valid.
    """
    gt_depth = np.asarray(gt_depth, dtype=np.float64)
    pred_depth = np.asarray(pred_depth, dtype=np.float64)
    if gt_depth.ndim != 2 or pred_depth.ndim != 2:
        raise ValueError(
            f"expected 2-D (H, W) depth maps, got gt {gt_depth.shape} and pred {pred_depth.shape}"
        )
    if not np.all(np.isfinite(pred_depth) & (pred_depth > 0)):
        bad = int(np.count_nonzero(~(np.isfinite(pred_depth) & (pred_depth > 0))))
        raise ValueError(f"predicted depth must be finite and > 0, found {bad} pixels that are not")
    pred_depth = resize_depth_via_disparity(pred_depth, gt_depth.shape)

    with np.errstate(invalid="ignore"):
        mask = np.isfinite(gt_depth) & (gt_depth > min_depth) & (gt_depth < max_depth)
    if garg_crop:
        mask &= garg_crop_mask(*gt_depth.shape)
    valid_pixels = int(np.count_nonzero(mask))
    if valid_pixels == 0:
        raise DatasetError(
            f"ground-truth depth map {gt_depth.shape} has no pixel inside ({min_depth}, {max_depth}) m"
            + (" within the Garg crop" if garg_crop else "")
        )
    gt = gt_depth[mask]
    pred = pred_depth[mask]

    scale_ratio = float(np.median(gt) / np.median(pred))
    if median_scaling:
        pred = pred * scale_ratio
    pred = np.clip(pred, min_depth, max_depth)
    return FrameDepthResult(compute_depth_metrics(gt, pred), scale_ratio, valid_pixels)


class DepthEvaluation:
    """Accumulates frames of one dataset and summarises them the way the paper does.

    Example::

        evaluation = DepthEvaluation(median_scaling=True)
        for gt, pred in frames:
            evaluation.add(gt, pred)
        print(evaluation.summary().metrics.abs_rel)
    """

    def __init__(
        self,
        min_depth: float = DEFAULT_MIN_DEPTH,
        max_depth: float = DEFAULT_MAX_DEPTH,
        median_scaling: bool = True,
        garg_crop: bool = False,
    ) -> None:
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.median_scaling = median_scaling
        self.garg_crop = garg_crop
        self._results: list[FrameDepthResult] = []

    @property
    def results(self) -> tuple[FrameDepthResult, ...]:
        """The frames evaluated so far, in order."""
        return tuple(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def add(self, gt_depth: np.ndarray, pred_depth: np.ndarray) -> FrameDepthResult:
        """Evaluate one frame with this evaluation's settings (see :func:`evaluate_depth_frame`)."""
        result = evaluate_depth_frame(
            gt_depth,
            pred_depth,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            median_scaling=self.median_scaling,
            garg_crop=self.garg_crop,
        )
        self._results.append(result)
        return result

    def add_result(self, result: FrameDepthResult) -> None:
        """Record a frame evaluated elsewhere (e.g. in a worker)."""
        self._results.append(result)

    def summary(self) -> DepthSummary:
        """Mean of the per-frame metrics and the scale ratios' median and spread.

        Raises:
            DatasetError: no frame has been added.
        """
        if not self._results:
            raise DatasetError("no frame was evaluated, so there is no depth summary to report")
        table = np.array(
            [[getattr(r.metrics, name) for name in METRIC_NAMES] for r in self._results],
            dtype=np.float64,
        )
        mean = DepthMetrics(
            **{name: float(v) for name, v in zip(METRIC_NAMES, table.mean(axis=0), strict=True)}
        )
        ratios = np.array([r.scale_ratio for r in self._results], dtype=np.float64)
        median = float(np.median(ratios))
        return DepthSummary(
            metrics=mean,
            num_frames=len(self._results),
            scale_ratio_median=median,
            scale_ratio_std=float(np.std(ratios)),
            scale_ratio_std_normalized=float(np.std(ratios / median)),
            median_scaling=self.median_scaling,
        )
