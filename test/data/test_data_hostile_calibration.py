"""A calibration claiming an impossible image size is refused before anything of that size exists."""

from __future__ import annotations

import resource

import pytest

from monodepth2_ros.data.camera import CameraModel, load_camera_yaml
from monodepth2_ros.errors import DatasetError

ROS_YAML = """image_width: {width}
image_height: {height}
camera_name: cam
camera_matrix:
  rows: 3
  cols: 3
  data: [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.1, 0.01, 0.0, 0.0, 0.0]
"""

OPENCV_YAML = """%YAML:1.0
---
image_width: {width}
image_height: {height}
camera_matrix: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 500., 0., 320., 0., 500., 240., 0., 0., 1. ]
"""


@pytest.mark.parametrize("template", [ROS_YAML, OPENCV_YAML], ids=["ros", "opencv"])
@pytest.mark.parametrize("width, height", [(10**9, 10**9), (640, 10**9), (40_000, 40_000)])
def test_a_calibration_yaml_claiming_a_huge_image_is_refused(tmp_path, template, width, height):
    path = tmp_path / "camera.yaml"
    path.write_text(template.format(width=width, height=height))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DatasetError, match=rf"{path}.*claims {width}x{height} pixels"):
        load_camera_yaml(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


def test_a_size_written_as_1e9_text_is_refused_too(tmp_path):
    path = tmp_path / "camera.yaml"
    path.write_text(ROS_YAML.format(width="1e9", height="1e9"))
    with pytest.raises(DatasetError, match=str(path)):
        load_camera_yaml(path)


def test_a_real_camera_size_still_loads(tmp_path):
    path = tmp_path / "camera.yaml"
    path.write_text(ROS_YAML.format(width=4096, height=3072))
    assert load_camera_yaml(path).width == 4096


def test_camera_info_with_a_huge_size_is_refused():
    with pytest.raises(DatasetError, match="claims"):
        CameraModel(width=2**32 - 1, height=480, K=[[500, 0, 320], [0, 500, 240], [0, 0, 1]])
