"""One parameter table: the node's declarations, config/depth.yaml and the docs table agree."""

from __future__ import annotations

import pytest
import yaml
from ros_harness import REPO, ROS_PARAMETER_TYPES, depth_node

from monodepth2_ros.errors import ConfigError
from monodepth2_ros.evaluation.colorize import COLORMAPS
from monodepth2_ros.inference.scale import scale_modes
from monodepth2_ros.ros.parameters import (
    COLORMAP_NAMES,
    DepthNodeParameters,
    parameter_specs,
    parameters_markdown_table,
)


def test_params_yaml_holds_exactly_the_declared_defaults_with_their_types():
    document = yaml.safe_load((REPO / "config" / "depth.yaml").read_text())
    values = document["/**"]["ros__parameters"]
    expected = {spec.name: spec.default for spec in parameter_specs()}
    assert values == expected
    assert {name: type(value) for name, value in values.items()} == {n: type(v) for n, v in expected.items()}


def test_docs_table_is_the_generated_parameter_table():
    docs = (REPO / "README.md").read_text()
    assert parameters_markdown_table() in docs
    for spec in parameter_specs():
        assert f"| `{spec.name}` |" in docs


def test_choices_follow_the_colormaps_and_scale_modes_of_the_library():
    specs = {spec.name: spec for spec in parameter_specs()}
    assert COLORMAP_NAMES == COLORMAPS
    assert specs["colormap"].choices == COLORMAPS
    assert specs["scale_mode"].choices == scale_modes()
    assert {"none", "fixed", "stereo"} <= set(scale_modes())


def test_node_declares_every_parameter_with_its_descriptor(graph, tiny_checkpoint):
    node = depth_node(graph, tiny_checkpoint)
    specs = parameter_specs()
    declared = set(node.list_parameters([], 0).names) - {"use_sim_time", "start_type_description_service"}
    assert declared == {spec.name for spec in specs}
    descriptors = node.describe_parameters([spec.name for spec in specs])
    for spec, descriptor in zip(specs, descriptors):
        assert descriptor.type == ROS_PARAMETER_TYPES[spec.type_name], spec.name
        assert descriptor.read_only == spec.read_only, spec.name
        assert descriptor.description == spec.description
        if spec.bounds is not None:
            numeric = descriptor.integer_range or descriptor.floating_point_range
            assert (numeric[0].from_value, numeric[0].to_value) == pytest.approx(spec.bounds), spec.name
        if spec.name not in ("weights", "device"):
            assert node.get_parameter(spec.name).value == spec.default, spec.name
    assert {"weights", "device", "precision"} <= {spec.name for spec in specs if spec.read_only}


def test_the_params_yaml_loads_through_the_ros_parser(graph, tiny_checkpoint, tmp_path):
    custom = tmp_path / "depth.yaml"
    text = (REPO / "config" / "depth.yaml").read_text()
    custom.write_text(text.replace("cloud_stride: 1", "cloud_stride: 3").replace("max_depth: 100.0", "max_depth: 80.0"))
    node = depth_node(graph, tiny_checkpoint)
    from monodepth2_ros.ros.depth_node import DepthNode

    second = graph.add(
        DepthNode(
            node_name="depth_from_yaml",
            namespace=graph.namespace,
            context=graph.context,
            estimator=node.estimator,
            cli_args=["--ros-args", "--params-file", str(custom)],
        )
    )
    assert second.parameters.cloud_stride == 3
    assert second.parameters.max_depth == 80.0
    assert second.parameters.weights == ""  # the file's default: the bundled model


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_depth": 5.0, "max_depth": 1.0}, "min_depth .* smaller than max_depth"),
        ({"color_min": 9.0, "color_max": 2.0}, "color_min .* smaller than color_max"),
        ({"colormap": "rainbow"}, "colormap.*one of magma"),
        ({"cloud_stride": 0}, r"cloud_stride.*\[1, 16\]"),
        ({"cloud_stride": 2.0}, "cloud_stride.*integer"),
        ({"publish_depth": "yes"}, "publish_depth.*bool"),
        ({"max_depth": float("nan")}, "max_depth.*within"),
        ({"nonsense": 1}, "unknown depth node parameter"),
    ],
)
def test_invalid_values_are_refused_with_the_parameter_named(values, message):
    with pytest.raises(ConfigError, match=message):
        DepthNodeParameters.from_mapping(values)


def test_integers_are_accepted_for_double_parameters():
    params = DepthNodeParameters.from_mapping({"max_depth": 80, "scale_factor": 2})
    assert params.max_depth == 80.0 and isinstance(params.max_depth, float)
    assert params.inference_config().scale == 1.0


def test_a_params_file_value_of_the_wrong_type_stops_the_node_at_start(graph, tiny_checkpoint, tmp_path):
    from monodepth2_ros.ros.depth_node import DepthNode

    params = tmp_path / "bad.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    weights: {tiny_checkpoint}\n    max_depth: 80\n")
    with pytest.raises(ConfigError, match="parameter 'max_depth'.*double.*decimal point"):
        DepthNode(context=graph.context, namespace=graph.namespace, cli_args=["--ros-args", "--params-file", str(params)])
    inconsistent = tmp_path / "inconsistent.yaml"
    inconsistent.write_text(f"/**:\n  ros__parameters:\n    weights: {tiny_checkpoint}\n    min_depth: 50.0\n    max_depth: 20.0\n")
    with pytest.raises(ConfigError, match="min_depth"):
        DepthNode(context=graph.context, namespace=graph.namespace, cli_args=["--ros-args", "--params-file", str(inconsistent)])
