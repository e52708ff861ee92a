"""Camera models: CameraInfo conversion, calibration files, undistortion."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from monodepth2_ros.data.camera import (
    CameraModel,
    UncalibratedCameraError,
    load_camera_file,
    load_camera_yaml,
    load_intrinsics_text,
    save_camera_yaml,
)
from monodepth2_ros.data.undistort import Undistorter
from monodepth2_ros.errors import DatasetError, MissingInputError

K_VALUES = [500.0, 0.0, 320.5, 0.0, 510.0, 240.25, 0.0, 0.0, 1.0]
D_VALUES = [-0.28, 0.07, 0.001, -0.0005, 0.0]
P_VALUES = [480.0, 0.0, 318.0, 0.0, 0.0, 490.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def camera_info(**overrides) -> SimpleNamespace:
    fields = dict(
        header=SimpleNamespace(frame_id="cam_optical", stamp=SimpleNamespace(sec=1, nanosec=2)),
        width=640,
        height=480,
        distortion_model="plumb_bob",
        k=list(K_VALUES),
        d=list(D_VALUES),
        r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
        p=list(P_VALUES),
        binning_x=0,
        binning_y=0,
        roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False),
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_camera_info_fields_are_read():
    camera = CameraModel.from_camera_info(camera_info())
    assert (camera.width, camera.height, camera.frame_id) == (640, 480, "cam_optical")
    np.testing.assert_array_equal(camera.K, np.reshape(K_VALUES, (3, 3)))
    np.testing.assert_array_equal(camera.D, D_VALUES)
    np.testing.assert_array_equal(camera.rectified_K(), np.reshape(P_VALUES, (3, 4))[:, :3])
    assert camera.distortion_model == "plumb_bob" and camera.is_distorted
    assert camera.K.dtype == np.float64 and not camera.K.flags.writeable


def test_ros1_upper_case_camera_info_from_rosbags_types_is_read():
    store = get_typestore(Stores.ROS1_NOETIC)
    types = store.types
    msg = types["sensor_msgs/msg/CameraInfo"](
        header=types["std_msgs/msg/Header"](
            seq=0, stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="left"
        ),
        height=480,
        width=640,
        distortion_model="plumb_bob",
        D=np.array(D_VALUES),
        K=np.array(K_VALUES),
        R=np.eye(3).ravel(),
        P=np.array(P_VALUES),
        binning_x=0,
        binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )
    camera = CameraModel.from_camera_info(msg)
    assert camera.frame_id == "left"
    np.testing.assert_array_equal(camera.K.ravel(), K_VALUES)


def test_all_zero_k_is_an_uncalibrated_camera():
    with pytest.raises(
        UncalibratedCameraError, match=r"'cam_optical'.*uncalibrated: K\[0\] \(fx\) is 0"
    ):
        CameraModel.from_camera_info(camera_info(k=[0.0] * 9, d=[], p=[0.0] * 12))


def test_uncalibrated_camera_error_is_a_dataset_error():
    assert issubclass(UncalibratedCameraError, DatasetError)


@pytest.mark.parametrize("field, index", [("k", 2), ("p", 0), ("d", 1)])
def test_nan_or_inf_in_camera_info_is_refused(field, index):
    values = {"k": list(K_VALUES), "p": list(P_VALUES), "d": list(D_VALUES)}[field]
    values[index] = float("nan") if field != "d" else float("inf")
    with pytest.raises(DatasetError, match=r"holds NaN or Inf"):
        CameraModel.from_camera_info(camera_info(**{field: values}))


def test_wrong_coefficient_count_for_the_model_is_refused():
    with pytest.raises(
        DatasetError, match=r"distortion model 'equidistant' with 5 coefficients; expected 4"
    ):
        CameraModel.from_camera_info(camera_info(distortion_model="equidistant"))


def test_unknown_distortion_model_with_coefficients_lists_supported_models():
    with pytest.raises(DatasetError, match=r"unsupported distortion model 'radtan8'.*'plumb_bob'"):
        CameraModel.from_camera_info(camera_info(distortion_model="radtan8"))


def test_zero_coefficients_mean_no_distortion():
    camera = CameraModel.from_camera_info(camera_info(d=[0.0] * 5))
    assert not camera.is_distorted
    assert (
        CameraModel(
            width=4, height=4, K=np.eye(3), D=np.zeros(5), distortion_model=""
        ).distortion_model
        == ""
    )


def test_binned_camera_info_is_refused():
    with pytest.raises(DatasetError, match=r"binning \(2, 2\)"):
        CameraModel.from_camera_info(camera_info(binning_x=2, binning_y=2))


def test_roi_camera_info_is_refused():
    roi = SimpleNamespace(x_offset=10, y_offset=0, width=320, height=240, do_rectify=True)
    with pytest.raises(
        DatasetError, match=r"region of interest \(x, y, w, h\) = \(10, 0, 320, 240\)"
    ):
        CameraModel.from_camera_info(camera_info(roi=roi))


def test_zero_image_size_is_refused():
    with pytest.raises(DatasetError, match=r"image size 0x480"):
        CameraModel.from_camera_info(camera_info(width=0))


def test_normalized_k_follows_the_pixel_centre_convention():
    camera = CameraModel.from_camera_info(camera_info())
    expected = np.array(
        [
            [500.0 / 640, 0.0, (320.5 + 0.5) / 640],
            [0.0, 510.0 / 480, (240.25 + 0.5) / 480],
            [0, 0, 1],
        ]
    )
    np.testing.assert_allclose(camera.normalized_K(), expected)


def test_k_for_size_scales_focal_lengths_and_pixel_centres():
    camera = CameraModel.from_camera_info(camera_info())
    K = camera.K_for_size(240, 320)  # half size: a pixel centre c maps to (c + 0.5) / 2 - 0.5
    np.testing.assert_allclose(K, [[250.0, 0, 160.0], [0, 255.0, 119.875], [0, 0, 1]])
    np.testing.assert_allclose(camera.K_for_size(480, 640), camera.K)


def test_rectified_k_falls_back_to_k_without_p():
    camera = CameraModel.from_camera_info(camera_info(p=[0.0] * 12))
    assert camera.P is None
    np.testing.assert_array_equal(camera.rectified_K(), camera.K)


def test_equal_cameras_compare_and_hash_equal():
    first = CameraModel.from_camera_info(camera_info())
    second = CameraModel.from_camera_info(camera_info())
    other = CameraModel.from_camera_info(camera_info(d=[0.0] * 5))
    assert first == second and hash(first) == hash(second)
    assert first != other
    assert len({first, second, other}) == 2


# -- calibration files ------------------------------------------------------------------------

ROS_CALIBRATION_YAML = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [500.0, 0.0, 320.5, 0.0, 510.0, 240.25, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.28, 0.07, 0.001, -0.0005, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [480.0, 0.0, 318.0, 0.0, 0.0, 490.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_ros_camera_calibration_yaml_is_read(tmp_path):
    path = tmp_path / "camera_info.yaml"
    path.write_text(ROS_CALIBRATION_YAML)
    camera = load_camera_yaml(path, frame_id="cam_optical")
    assert camera == CameraModel.from_camera_info(camera_info())


def test_camera_yaml_round_trip_is_exact(tmp_path):
    camera = CameraModel(
        width=1242,
        height=375,
        K=np.array([[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]]),
        D=np.array([1e-5, -2.5e-7, 1.0 / 3.0, 0.0, 7e20]),
        distortion_model="plumb_bob",
        P=np.array([[700.0, 0, 600.0, -0.1], [0, 700.0, 170.0, 0], [0, 0, 1, 0]]),
        frame_id="left",
    )
    path = save_camera_yaml(camera, tmp_path / "calibration.yaml")
    assert load_camera_yaml(path, frame_id="left") == camera


def test_pinhole_camera_yaml_round_trip_keeps_no_p(tmp_path):
    camera = CameraModel(
        width=64, height=48, K=np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    )
    loaded = load_camera_yaml(save_camera_yaml(camera, tmp_path / "c.yaml"), frame_id="")
    assert loaded == camera and loaded.P is None and not loaded.is_distorted


def test_opencv_filestorage_yaml_is_read(tmp_path):
    path = tmp_path / "opencv.yaml"
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", 640)
    storage.write("image_height", 480)
    storage.write("camera_matrix", np.reshape(K_VALUES, (3, 3)))
    storage.write("distortion_coefficients", np.reshape(D_VALUES, (1, 5)))
    storage.write("distortion_model", "plumb_bob")
    storage.release()
    camera = load_camera_yaml(path)
    np.testing.assert_allclose(camera.K.ravel(), K_VALUES)
    np.testing.assert_allclose(camera.D, D_VALUES)


def test_yaml_without_camera_matrix_says_what_is_expected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("image_width: 640\nimage_height: 480\n")
    with pytest.raises(
        DatasetError, match=r"bad.yaml: missing key\(s\) camera_matrix; expected a ROS camera"
    ):
        load_camera_yaml(path)


def test_yaml_matrix_with_wrong_size_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        ROS_CALIBRATION_YAML.replace("data: [500.0, 0.0, 320.5,", "data: [500.0, 320.5,")
    )
    with pytest.raises(DatasetError, match=r"camera_matrix declares 3x3 but holds 8 values"):
        load_camera_yaml(path)


def test_missing_calibration_file_is_a_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match=r"nope.yaml does not exist"):
        load_camera_yaml(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "500 0 320.5\n0 510 240.25\n0 0 1\n",
        "# intrinsics\n500, 0, 320.5, 0, 510, 240.25, 0, 0, 1",
        "500 510 320.5 240.25",
        "K: 500 0 320.5 0 510 240.25 0 0 1",
    ],
)
def test_plain_k_text_files_are_read(tmp_path, text):
    path = tmp_path / "K.txt"
    path.write_text(text)
    np.testing.assert_allclose(load_intrinsics_text(path).K.ravel(), K_VALUES)
    camera = load_camera_file(path, image_size=(480, 640))
    assert (camera.height, camera.width) == (480, 640) and not camera.is_distorted


KITTI_CALIB = """\
calib_time: 09-Jan-2012 13:57:47
corner_dist: 9.950000e-02
S_02: 1.392000e+03 5.120000e+02
K_02: 9.597910e+02 0.000000e+00 6.960217e+02 0.000000e+00 9.569251e+02 2.241806e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_02: -3.691481e-01 1.968681e-01 1.353473e-03 5.677587e-04 -6.770705e-02
S_rect_02: 1.242000e+03 3.750000e+02
P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03
"""


def test_kitti_calib_cam_to_cam_gives_rectified_k_and_size(tmp_path):
    path = tmp_path / "calib_cam_to_cam.txt"
    path.write_text(KITTI_CALIB)
    camera = load_camera_file(path)
    assert (camera.width, camera.height) == (1242, 375)
    np.testing.assert_allclose(
        camera.K, [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]]
    )
    assert not camera.is_distorted


def test_text_without_image_size_needs_one(tmp_path):
    path = tmp_path / "K.txt"
    path.write_text("500 0 320 0 500 240 0 0 1")
    with pytest.raises(
        DatasetError, match=r"gives no image size; pass the images' \(height, width\)"
    ):
        load_camera_file(path)


def test_text_with_wrong_number_count_says_what_is_expected(tmp_path):
    path = tmp_path / "K.txt"
    path.write_text("1 2 3 4 5 6 7")
    with pytest.raises(DatasetError, match=r"holds 7 numbers; expected 9 \(K, 3x3\)"):
        load_intrinsics_text(path)


# -- undistortion -----------------------------------------------------------------------------

SQUARE = 10  # pixels per checkerboard square
SMALL_K = np.array([[60.0, 0.0, 39.5], [0.0, 60.0, 31.5], [0.0, 0.0, 1.0]])


def checkerboard(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The ideal (pinhole) view of a soft-edged checkerboard at any pixel coordinates.

    Sinusoidal edges keep bilinear resampling error small, so differences measure geometry.
    """
    pattern = np.sin(np.pi * u / SQUARE) * np.sin(np.pi * v / SQUARE)
    return np.rint(127.5 + 127.5 * pattern).astype(np.uint8)


def distorted_checkerboard(camera: CameraModel) -> np.ndarray:
    """What the distorting camera sees of the ideal board: sample it where each raw pixel looks."""
    v, u = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    points = np.stack([u.ravel(), v.ravel()], axis=-1).reshape(-1, 1, 2)
    if camera.distortion_model == "equidistant":
        ideal = cv2.fisheye.undistortPoints(points, camera.K, camera.D, P=camera.K)
    else:
        ideal = cv2.undistortPoints(points, camera.K, camera.D, P=camera.K)
    ideal = ideal.reshape(camera.height, camera.width, 2)
    grey = checkerboard(ideal[..., 0], ideal[..., 1])
    return np.repeat(grey[..., None], 3, axis=-1)


def mismatch(image: np.ndarray, reference: np.ndarray, margin: int = 4) -> float:
    """Mean absolute grey difference over the interior (0..255)."""
    inner = (slice(margin, -margin), slice(margin, -margin))
    return float(np.mean(np.abs(image[inner].astype(float) - reference[inner])))


@pytest.mark.parametrize(
    "model, coefficients",
    [
        ("plumb_bob", [-0.35, 0.12, 0.0, 0.0, 0.0]),
        ("rational_polynomial", [-0.3, 0.1, 0, 0, 0, 0.02, 0, 0]),
        ("equidistant", [0.15, -0.05, 0.01, 0.0]),
    ],
)
def test_undistortion_straightens_a_distorted_checkerboard(model, coefficients):
    camera = CameraModel(
        width=80, height=64, K=SMALL_K, D=np.array(coefficients), distortion_model=model
    )
    raw = distorted_checkerboard(camera)
    undistorter = Undistorter(camera)
    undistorted = undistorter(raw)
    # The board as an ideal pinhole camera with the output intrinsics sees it.
    out_K = undistorter.camera.K
    v, u = np.mgrid[0:64, 0:80].astype(np.float64)
    ideal = checkerboard(
        (u - out_K[0, 2]) * SMALL_K[0, 0] / out_K[0, 0] + SMALL_K[0, 2],
        (v - out_K[1, 2]) * SMALL_K[1, 1] / out_K[1, 1] + SMALL_K[1, 2],
    )
    ideal = np.repeat(ideal[..., None], 3, axis=-1)
    assert mismatch(raw, ideal) > 10  # the distortion is visible
    assert mismatch(undistorted, ideal) < 3
    if model == "equidistant":
        reference = cv2.fisheye.undistortImage(raw, camera.K, camera.D, Knew=out_K)
    else:
        reference = cv2.undistort(raw, camera.K, camera.D)
        np.testing.assert_array_equal(out_K, SMALL_K)  # no P: the output keeps K
    assert mismatch(undistorted, reference) < 1
    assert not undistorter.camera.is_distorted and undistorter.camera.distortion_model == ""


def test_undistorted_camera_uses_p_when_given():
    P = np.array([[55.0, 0, 40.0, 0], [0, 56.0, 32.0, 0], [0, 0, 1, 0]])
    camera = CameraModel(
        width=80,
        height=64,
        K=SMALL_K,
        D=np.array([-0.3, 0.1, 0, 0, 0]),
        distortion_model="plumb_bob",
        P=P,
        frame_id="f",
    )
    undistorter = Undistorter(camera)
    np.testing.assert_array_equal(undistorter.camera.K, P[:, :3])
    assert undistorter.camera.frame_id == "f"


def test_undistorter_output_size_scales_the_camera():
    camera = CameraModel(
        width=80,
        height=64,
        K=SMALL_K,
        D=np.array([-0.3, 0.1, 0, 0, 0]),
        distortion_model="plumb_bob",
    )
    undistorter = Undistorter(camera, output_size=(32, 40))
    out = undistorter(distorted_checkerboard(camera))
    assert out.shape == (32, 40, 3)
    np.testing.assert_allclose(
        undistorter.camera.K, CameraModel(width=80, height=64, K=SMALL_K).K_for_size(32, 40)
    )


def test_undistorter_builds_maps_once(monkeypatch):
    calls = []
    original = cv2.initUndistortRectifyMap
    monkeypatch.setattr(cv2, "initUndistortRectifyMap", lambda *a: calls.append(1) or original(*a))
    camera = CameraModel(
        width=80,
        height=64,
        K=SMALL_K,
        D=np.array([-0.3, 0.1, 0, 0, 0]),
        distortion_model="plumb_bob",
    )
    undistorter = Undistorter(camera)
    image = distorted_checkerboard(camera)
    for _ in range(3):
        undistorter(image)
    assert len(calls) == 1


def test_undistorter_without_distortion_returns_the_image():
    camera = CameraModel(width=80, height=64, K=SMALL_K)
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    assert Undistorter(camera)(image) is image


def test_undistorter_refuses_an_image_of_another_size():
    camera = CameraModel(width=80, height=64, K=SMALL_K)
    with pytest.raises(
        DatasetError, match=r"image of size 40x32 given to an undistorter for 80x64"
    ):
        Undistorter(camera)(np.zeros((32, 40, 3), np.uint8))
