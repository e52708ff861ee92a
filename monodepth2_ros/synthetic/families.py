"""The scene families of the synthetic world and the split the default model is trained on.

Every drive is named by ``(family, seed)``. ``"random"`` draws the family from the seed, so a list
of seeds alone spans every family. The split keeps two things away from training for evaluation:
held-back seeds of every family (seeds ending in 9) and one whole family (``yard``), never trained on.
"""

from __future__ import annotations

import numpy as np

from monodepth2_ros.errors import ConfigError

__all__ = [
    "FAMILIES",
    "FAMILY_CHOICES",
    "TRAINING_FAMILIES",
    "HELD_OUT_FAMILY",
    "HELD_OUT_SEED_DIGIT",
    "resolve_family",
    "is_held_out",
    "training_drives",
    "held_out_drives",
]

# Order matters: ``resolve_family("random", seed)`` indexes this tuple.
FAMILIES = ("street", "indoor", "warehouse", "tabletop", "yard")
FAMILY_CHOICES = FAMILIES + ("random",)
HELD_OUT_FAMILY = "yard"
TRAINING_FAMILIES = tuple(f for f in FAMILIES if f != HELD_OUT_FAMILY)
HELD_OUT_SEED_DIGIT = 9  # seeds whose last decimal digit is 9 are evaluation drives only


def resolve_family(family: str, seed: int) -> str:
    """The concrete family of a drive: ``family`` itself, or the seed's draw for ``"random"``."""
    if family not in FAMILY_CHOICES:
        raise ConfigError(f"synthetic family {family!r} is unknown; expected one of {', '.join(FAMILY_CHOICES)}")
    if family != "random":
        return family
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xFA4]))
    return FAMILIES[int(rng.integers(0, len(FAMILIES)))]


def is_held_out(family: str, seed: int) -> bool:
    """True for drives the default model must never be trained on (evaluation only)."""
    return resolve_family(family, seed) == HELD_OUT_FAMILY or abs(int(seed)) % 10 == HELD_OUT_SEED_DIGIT


def training_drives(count_per_family: int, first_seed: int = 0) -> list[tuple[str, int]]:
    """``count_per_family`` training ``(family, seed)`` pairs of every training family, held-back seeds skipped."""
    candidates = range(first_seed, first_seed + 2 * count_per_family + 10)
    seeds = [s for s in candidates if abs(s) % 10 != HELD_OUT_SEED_DIGIT]
    return [(family, seed) for family in TRAINING_FAMILIES for seed in seeds[:count_per_family]]


def held_out_drives(count_per_family: int, first_seed: int = 0) -> list[tuple[str, int]]:
    """Evaluation drives: held-back seeds of every family, and ordinary seeds of the held-out family."""
    held_seeds = [first_seed + 10 * k + HELD_OUT_SEED_DIGIT for k in range(count_per_family)]
    drives = [(family, seed) for family in FAMILIES for seed in held_seeds]
    ordinary = [first_seed + k for k in range(count_per_family) if abs(first_seed + k) % 10 != HELD_OUT_SEED_DIGIT]
    drives += [(HELD_OUT_FAMILY, seed) for seed in ordinary]
    return drives
