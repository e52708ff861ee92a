"""TrainConfig: the YAML defaults, strict keys, typed overrides, recording and the resume check."""

from __future__ import annotations

import pytest
import yaml

from monodepth2_ros.errors import ConfigError, MissingInputError
from monodepth2_ros.training.config import (
    DEFAULT_CONFIG_FILE,
    TrainConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    save_config,
)
from monodepth2_ros.training.run_dir import RunPaths
from monodepth2_ros.training.trainer import reconcile_config


def test_packaged_train_yaml_lists_every_key_with_the_dataclass_defaults():
    written = yaml.safe_load(DEFAULT_CONFIG_FILE.read_text())
    assert written == config_to_dict(TrainConfig())


def test_defaults_are_the_papers_settings():
    config = load_config()
    assert (config.optim.lr, config.optim.batch_size, config.optim.epochs) == (1e-4, 12, 20)
    assert config.optim.lr_decay_epoch == 15 and config.optim.lr_decay_factor == 0.1
    assert (config.data.width, config.data.height) == (640, 192)
    assert (config.loss.min_depth, config.loss.max_depth, config.loss.scales) == (0.1, 100.0, 4)
    assert (config.loss.ssim_weight, config.loss.smoothness_weight) == (0.85, 1e-3)
    assert config.model.frame_ids == (0, -1, 1)
    assert (config.augment.brightness, config.augment.hue, config.augment.flip_probability) == (0.2, 0.1, 0.5)


def test_unknown_key_names_the_key_and_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'optim\.learning_rate'; valid keys of 'optim': lr, epochs"):
        apply_overrides(TrainConfig(), ["optim.learning_rate=1e-3"])
    path = tmp_path / "bad.yaml"
    path.write_text("loss:\n  automsk: false\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown config key 'loss\.automsk'.*automask"):
        load_config(path)
    path.write_text("trainer:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="unknown config section 'trainer'"):
        load_config(path)


def test_overrides_are_parsed_as_typed_yaml():
    config = apply_overrides(
        TrainConfig(),
        ["optim.lr=2e-4", "model.frame_ids=[0, -2, 2]", "loss.automask=false", "data.image_topic=/cam/image", "optim.max_steps=7"],
    )
    assert config.optim.lr == pytest.approx(2e-4)
    assert config.model.frame_ids == (0, -2, 2)
    assert config.loss.automask is False
    assert config.data.image_topic == "/cam/image"
    assert config.optim.max_steps == 7
    assert apply_overrides(config, ["optim.max_steps=null"]).optim.max_steps is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.epochs=2.5", r"optim\.epochs is 2\.5 \(float\); expected int"),
        ("loss.automask=maybe", r"loss\.automask is 'maybe' \(str\); expected bool"),
        ("data.height=100", r"data\.height is 100; expected a positive multiple of 32"),
        ("model.pose=twin", r"model\.pose is 'twin'; expected one of \['separate', 'shared', 'posecnn'\]"),
        ("model.frame_ids=[1, 0]", r"model\.frame_ids is \[1, 0\]; expected a list starting with 0"),
        ("model.stereo=mono+stereo", r"data\.right_image_topic is not set"),
        ("optim.lr", r"not of the form section\.key=value"),
    ],
)
def test_invalid_values_are_config_errors_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TrainConfig(), [override])


def test_missing_config_file_is_a_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_recorded_config_reads_back_equal(tmp_path):
    config = apply_overrides(TrainConfig(), ["data.bags=[a.mcap, b.bag]", "loss.reprojection=avg", "model.num_layers=50"])
    path = save_config(config, tmp_path / "run" / "config.yaml")
    assert load_config(path) == config


def test_resume_refuses_other_training_settings_but_accepts_more_epochs(tmp_path):
    paths = RunPaths(tmp_path)
    recorded = apply_overrides(TrainConfig(), ["data.bags=[drive.mcap]"])
    save_config(recorded, paths.config)
    changed = apply_overrides(recorded, ["optim.lr=5e-4", "loss.automask=false"])
    assert reconcile_config(paths, changed) == changed  # no checkpoint yet: a corrected re-run is fine
    (paths.last).mkdir()
    longer = apply_overrides(recorded, ["optim.epochs=30", "runtime.num_workers=0", "runtime.device=cpu"])
    assert reconcile_config(paths, longer) == longer
    with pytest.raises(ConfigError, match=r"trained with other settings: loss\.automask \(True -> False\), optim\.lr"):
        reconcile_config(paths, changed)
