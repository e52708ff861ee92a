"""Evaluation reports: JSON figures, Markdown tables and PNG plots.

Every file is written atomically (a temporary file in the target folder, then ``os.replace``), so
a reader never sees half a report. Plots use matplotlib's object API with the Agg canvas and never
touch pyplot's global state, so they are safe in any process (nodes, workers, tests).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monodepth2_ros.evaluation.colorize import colorize_depth
from monodepth2_ros.evaluation.plot_plane import motion_plane
from monodepth2_ros.evaluation.depth_metrics import (
    METRIC_NAMES,
    DepthMetrics,
    resize_depth_via_disparity,
)

__all__ = [
    "DEPTH_METRIC_HEADERS",
    "DEFAULT_MAX_ABS_REL",
    "write_text_atomic",
    "write_bytes_atomic",
    "write_json",
    "to_jsonable",
    "markdown_table",
    "depth_metrics_table",
    "plot_trajectories",
    "plot_depth_panels",
]

# Column headers of the paper's depth table, in METRIC_NAMES order.
DEPTH_METRIC_HEADERS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "δ<1.25", "δ<1.25²", "δ<1.25³")

# Top of the abs-rel error colour scale in the depth panels (errors above saturate).
DEFAULT_MAX_ABS_REL = 0.5

_DPI = 100
_PANEL_WIDTH_IN = 4.0
_TRAJECTORY_SIZE_IN = (6.0, 6.0)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from dataclasses, numpy scalars/arrays, paths and mappings.

    Non-finite floats become ``None`` (JSON has no NaN); tuples become lists.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        as_dict = getattr(value, "as_dict", None)
        return to_jsonable(as_dict() if callable(as_dict) else dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically (values converted by :func:`to_jsonable`).

    Raises:
        TypeError: a value that JSON cannot hold.
    """
    text = json.dumps(to_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False)
    write_text_atomic(path, text + "\n")


def _format_cell(value: Any, float_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return float_format.format(float(value))
    return str(value).replace("|", "\\|")


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    headers: Sequence[str] | None = None,
    float_format: str = "{:.3f}",
) -> str:
    """A GitHub-flavoured Markdown table, one row per mapping.

    Args:
        rows: the rows; a missing key or ``None`` gives an empty cell.
        columns: keys to show, in order.
        headers: header text per column (default: the keys).
        float_format: ``str.format`` pattern for floats; other values use ``str``.
    Returns:
        the table, lines joined by newlines, with a trailing newline. Numeric columns are
        right-aligned (``---:``) when every present value is a number.
    """
    headers = list(columns) if headers is None else list(headers)
    if len(headers) != len(columns):
        raise ValueError(f"{len(headers)} headers for {len(columns)} columns")
    numeric = [
        all(
            isinstance(row.get(key), (int, float, np.number)) and not isinstance(row.get(key), bool)
            for row in rows
            if row.get(key) is not None
        )
        and any(row.get(key) is not None for row in rows)
        for key in columns
    ]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if is_numeric else "---" for is_numeric in numeric) + "|",
    ]
    for row in rows:
        lines.append(
            "| " + " | ".join(_format_cell(row.get(key), float_format) for key in columns) + " |"
        )
    return "\n".join(lines) + "\n"


def depth_metrics_table(
    rows: Sequence[tuple[str, DepthMetrics | Mapping[str, float]]],
    name_header: str = "method",
    float_format: str = "{:.3f}",
) -> str:
    """The paper's depth table, one row per model or baseline.

    Columns: ``name | abs_rel | sq_rel | rmse | rmse_log | δ<1.25 | δ<1.25² | δ<1.25³``.

    Args:
        rows: ``(name, metrics)`` per model or baseline; metrics as :class:`DepthMetrics` or a
            mapping with the keys of :data:`~.depth_metrics.METRIC_NAMES`.
    """
    table_rows: list[dict[str, Any]] = []
    for name, metrics in rows:
        values = metrics.as_dict() if isinstance(metrics, DepthMetrics) else dict(metrics)
        table_rows.append({"name": name, **{key: values.get(key) for key in METRIC_NAMES}})
    return markdown_table(
        table_rows,
        ("name", *METRIC_NAMES),
        headers=(name_header, *DEPTH_METRIC_HEADERS),
        float_format=float_format,
    )


def _save_figure(figure: Any, path: str | os.PathLike[str]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())


def _xyz(name: str, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, 3) array, got shape {points.shape}")
    return points


def plot_trajectories(
    gt_xyz: np.ndarray | None,
    pred_xyz: np.ndarray,
    path: str | os.PathLike[str],
    title: str = "",
    labels: tuple[str, str] = ("ground truth", "prediction"),
    frame: str = "auto",
) -> Any:
    """Aligned trajectories drawn in the plane their motion spans (equal aspect), as PNG.

    Args:
        gt_xyz: (N, 3) ground-truth positions, metres, or None to draw the prediction alone.
        pred_xyz: (M, 3) predicted positions (aligned to the ground truth first, if any).
        path: output ``.png``.
        title: figure title.
        labels: legend entries for ground truth and prediction.
        frame: the plane (see :func:`~monodepth2_ros.evaluation.plot_plane.motion_plane`): ``auto``
            (principal axes of the ground truth, else of the prediction), ``optical`` (x-z) or
            ``z_up`` (x-y). The axis labels say which directions are drawn.
    Returns:
        The matplotlib Figure (its lines hold the plotted plane coordinates).
    A circle marks each trajectory's start.
    """
    from matplotlib.figure import Figure

    pred_xyz = _xyz("pred_xyz", pred_xyz)
    if gt_xyz is not None:
        gt_xyz = _xyz("gt_xyz", gt_xyz)
    plane = motion_plane(gt_xyz if gt_xyz is not None else pred_xyz, frame)
    figure = Figure(figsize=_TRAJECTORY_SIZE_IN)
    axes = figure.add_subplot(1, 1, 1)
    if gt_xyz is not None:
        gt_2d = plane.project(gt_xyz)
        axes.plot(gt_2d[:, 0], gt_2d[:, 1], color="black", linewidth=1.5, label=labels[0])
        axes.plot(gt_2d[0, 0], gt_2d[0, 1], "o", color="black", markersize=7)
    pred_2d = plane.project(pred_xyz)
    axes.plot(pred_2d[:, 0], pred_2d[:, 1], color="tab:red", linewidth=1.2, label=labels[1])
    axes.plot(pred_2d[0, 0], pred_2d[0, 1], "o", color="tab:red", markersize=5, label="start")
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_xlabel(plane.labels[0])
    axes.set_ylabel(plane.labels[1])
    axes.grid(True, linewidth=0.5, alpha=0.5)
    axes.legend(loc="best")
    if title:
        axes.set_title(title)
    _save_figure(figure, path)
    return figure


def _as_display_image(image: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """An image ready for ``imshow`` (uint8 as is, floats in [0, 1] or [0, 255]) and its value range."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        if np.nanmax(image, initial=0.0) > 1.0:
            image = image / 255.0
        image = np.clip(image, 0.0, 1.0)
    value_range = (
        {"vmin": 0.0, "vmax": 255.0 if image.dtype == np.uint8 else 1.0} if image.ndim == 2 else {}
    )
    return image, value_range


def _abs_rel_map(pred_depth: np.ndarray, gt_depth: np.ndarray) -> np.ndarray:
    """|pred - gt| / gt at pixels with valid ground truth, NaN elsewhere; pred resized to gt's size."""
    gt = np.asarray(gt_depth, dtype=np.float64)
    pred = resize_depth_via_disparity(pred_depth, gt.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(gt) & (gt > 0)
        return np.where(valid, np.abs(pred - gt) / gt, np.nan)


def plot_depth_panels(
    rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    path: str | os.PathLike[str],
    cmap: str = "magma",
    max_abs_rel: float = DEFAULT_MAX_ABS_REL,
    title: str = "",
) -> None:
    """Qualitative figure, one row per frame: image | predicted depth | abs-rel error map.

    The depth panel is :func:`~.colorize.colorize_depth` on inverse depth with a 5-95 percentile
    range. The error panel shows ``|pred - gt| / gt`` where ground truth is valid (grey elsewhere),
    from 0 to ``max_abs_rel``; pass the prediction as evaluated (median-scaled if it was).

    Args:
        rows: ``(rgb, pred_depth, gt_depth)`` per frame: rgb (H, W, 3) uint8 or float in [0, 1];
            pred_depth (h, w) > 0; gt_depth (H', W') or None. For the error map the prediction is
            resized through disparity to the ground truth's size.
        path: output ``.png``.
        cmap: depth colormap (one of :data:`~.colorize.COLORMAPS`).
        max_abs_rel: top of the error colour scale.
        title: figure title.
    """
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("plot_depth_panels needs at least one row")
    aspect = max(np.asarray(pred).shape[0] / np.asarray(pred).shape[1] for _, pred, _ in rows)
    row_height = max(_PANEL_WIDTH_IN * aspect, 1.0) + 0.4
    figure = Figure(figsize=(3 * _PANEL_WIDTH_IN + 1.0, row_height * len(rows)))
    grid = figure.subplots(len(rows), 3, squeeze=False)
    error_image = None
    for index, (rgb, pred_depth, gt_depth) in enumerate(rows):
        image_axes, depth_axes, error_axes = grid[index]
        display, value_range = _as_display_image(rgb)
        image_axes.imshow(display, cmap="gray", **value_range)
        depth_axes.imshow(colorize_depth(np.asarray(pred_depth), cmap=cmap, inverse=True))
        if gt_depth is None:
            error_axes.text(
                0.5, 0.5, "no ground truth", ha="center", va="center", transform=error_axes.transAxes
            )
        else:
            error = np.ma.masked_invalid(_abs_rel_map(pred_depth, gt_depth))
            error_image = error_axes.imshow(
                error, cmap="inferno", vmin=0.0, vmax=max_abs_rel, interpolation="nearest"
            )
            error_axes.set_facecolor("0.6")  # grey where there is no ground truth
            mean = float(error.mean()) if error.count() else float("nan")
            error_axes.set_xlabel(f"mean abs rel {mean:.3f}")
        for axes in (image_axes, depth_axes, error_axes):
            axes.set_xticks([])
            axes.set_yticks([])
        if index == 0:
            image_axes.set_title("image")
            depth_axes.set_title("predicted depth (inverse)")
            error_axes.set_title("abs rel error")
    if error_image is not None:
        figure.colorbar(
            error_image, ax=grid[:, 2].tolist(), fraction=0.04, pad=0.02, label="|pred - gt| / gt"
        )
    if title:
        figure.suptitle(title)
    _save_figure(figure, path)
