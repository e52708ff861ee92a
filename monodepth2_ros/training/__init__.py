"""Self-supervised training of Monodepth2 on rosbags and image folders (no ROS needed).

``train(config, run_dir)`` runs or resumes a run; the pieces are importable on their own:
configuration (:mod:`.config`), frame cache and sample selection (:mod:`.frame_cache`,
:mod:`.samples`), datasets and batches (:mod:`.dataset`, :mod:`.batch`, :mod:`.augment`), networks
(:mod:`.networks`), the objective (:mod:`.objective`), the loop (:mod:`.trainer`) and the run
folder (:mod:`.run_dir`). ``python -m monodepth2_ros.training`` is ``monodepth2 train`` (for torchrun).
"""

from monodepth2_ros.training.batch import Batch, Sample, collate_samples
from monodepth2_ros.training.config import (
    AugmentConfig,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RuntimeConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from monodepth2_ros.training.networks import MonodepthModel, Predictions, build_model
from monodepth2_ros.training.objective import LossTerms, compute_losses, losses_from_predictions
from monodepth2_ros.training.run_dir import RunPaths
from monodepth2_ros.training.samples import SampleCounts
from monodepth2_ros.training.trainer import Trainer, TrainResult, train

__all__ = [
    "Batch",
    "Sample",
    "collate_samples",
    "AugmentConfig",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RuntimeConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
    "MonodepthModel",
    "Predictions",
    "build_model",
    "LossTerms",
    "compute_losses",
    "losses_from_predictions",
    "RunPaths",
    "SampleCounts",
    "Trainer",
    "TrainResult",
    "train",
]
