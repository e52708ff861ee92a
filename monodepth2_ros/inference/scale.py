"""Where the metric scale of a depth map comes from: small strategy objects, one per mode.

A Monodepth2 network predicts depth up to an unknown factor (mono training) or in units of its
stereo baseline (stereo training). A :class:`ScaleSource` turns network units into metres. Fixed
sources simply hold a number; estimating sources (the camera-height and odometry modes of the pose
work) watch each frame through :meth:`ScaleSource.observe` and update their estimate. Adding a mode
means writing one subclass and one :func:`register_scale_mode` call; the node and the CLI look
modes up by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.model.checkpoint import CheckpointInfo
from monodepth2_ros.model.constants import STEREO_SCALE

__all__ = [
    "ScaleRequest",
    "ScaleSource",
    "CheckpointScale",
    "UnitScale",
    "FixedScale",
    "StereoScale",
    "scale_modes",
    "register_scale_mode",
    "make_scale_source",
]


@dataclass(frozen=True)
class ScaleRequest:
    """What a scale source may be built from.

    Attributes:
        mode: a registered mode name (see :func:`scale_modes`).
        factor: metres per network unit for the ``fixed`` mode.
        info: the checkpoint the depth comes from (stereo-trained or not).
    """

    mode: str
    factor: float = 1.0
    info: CheckpointInfo = CheckpointInfo()


class ScaleSource(ABC):
    """Metres per network depth unit, possibly refined frame by frame."""

    mode: str = ""

    @property
    @abstractmethod
    def scale(self) -> float:
        """The current factor (> 0) that multiplies network depth."""

    @property
    def is_metric(self) -> bool:
        """Whether ``scale`` makes depth metric (False for raw, relative network units)."""
        return True

    def observe(self, depth_units: torch.Tensor, K: np.ndarray) -> None:
        """See one frame before its scale is read. Fixed sources ignore it.

        Args:
            depth_units: (1, 1, H, W) depth in network units (scale 1), on the inference device.
            K: (3, 3) intrinsics of that depth map, pixels.
        """
        del depth_units, K

    def describe(self) -> str:
        """A short human-readable summary for logs and diagnostics."""
        return f"{self.mode} ({self.scale:.4g} m/unit)"


class UnitScale(ScaleSource):
    """Raw network units (relative depth): the scale is 1."""

    mode = "none"

    @property
    def scale(self) -> float:
        return 1.0

    @property
    def is_metric(self) -> bool:
        return False


class FixedScale(ScaleSource):
    """A user-given factor, e.g. measured once against a known distance."""

    mode = "fixed"

    def __init__(self, factor: float) -> None:
        if not (np.isfinite(factor) and factor > 0):
            raise ConfigError(f"scale_factor must be a positive finite number for scale_mode 'fixed', got {factor}")
        self._factor = float(factor)

    @property
    def scale(self) -> float:
        return self._factor


class StereoScale(ScaleSource):
    """Stereo-trained checkpoints: network units are tenths of KITTI's 0.54 m baseline."""

    mode = "stereo"

    @property
    def scale(self) -> float:
        return STEREO_SCALE


class CheckpointScale(ScaleSource):
    """What the checkpoint implies: stereo scale when it was trained with stereo, else relative."""

    mode = "auto"

    def __init__(self, info: CheckpointInfo) -> None:
        self._stereo = bool(info.use_stereo)

    @property
    def scale(self) -> float:
        return STEREO_SCALE if self._stereo else 1.0

    @property
    def is_metric(self) -> bool:
        return self._stereo


_FACTORIES: dict[str, Callable[[ScaleRequest], ScaleSource]] = {
    CheckpointScale.mode: lambda request: CheckpointScale(request.info),
    UnitScale.mode: lambda request: UnitScale(),
    FixedScale.mode: lambda request: FixedScale(request.factor),
    StereoScale.mode: lambda request: StereoScale(),
}



def scale_modes() -> tuple[str, ...]:
    """The registered mode names, in registration order."""
    return tuple(_FACTORIES)


def register_scale_mode(mode: str, factory: Callable[[ScaleRequest], ScaleSource]) -> None:
    """Make a new scale mode available to :func:`make_scale_source` (and so to the nodes)."""
    if mode in _FACTORIES:
        raise ConfigError(f"scale mode {mode!r} is already registered")
    _FACTORIES[mode] = factory


def make_scale_source(request: ScaleRequest) -> ScaleSource:
    """Build the source of ``request.mode``.

    Raises:
        ConfigError: unknown mode, or a value the mode cannot use (e.g. a non-positive factor).
    """
    factory = _FACTORIES.get(request.mode)
    if factory is None:
        raise ConfigError(f"unknown scale_mode {request.mode!r}; expected one of {', '.join(_FACTORIES)}")
    return factory(request)
