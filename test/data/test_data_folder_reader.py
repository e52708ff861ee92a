"""Image folders, KITTI raw drives and source dispatch."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from monodepth2_ros.data import open_stream
from monodepth2_ros.data.camera import CameraModel, save_camera_yaml
from monodepth2_ros.data.folder_reader import FolderImageStream, read_image_file, stamps_from_names
from monodepth2_ros.data.kitti import KittiRawStream, find_kitti_drive
from monodepth2_ros.data.sources import SourceKind, detect_source_kind
from monodepth2_ros.errors import ConfigError, DatasetError, MissingInputError

H, W = 12, 16
K_TEXT = "20 0 7.5\n0 21 5.5\n0 0 1\n"


def rgb_image(i: int) -> np.ndarray:
    v, u = np.mgrid[0:H, 0:W]
    return np.stack(
        [(u * 9 + i) % 256, (v * 11 + 2 * i) % 256, np.full_like(u, 40 + i)], -1
    ).astype(np.uint8)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def image_folder(tmp_path: Path, names: list[str], calibration: str | None = "K.txt") -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, name in enumerate(names):
        write_rgb(folder / name, rgb_image(i))
    if calibration == "K.txt":
        (folder / "K.txt").write_text(K_TEXT)
    return folder


def test_folder_frames_come_in_natural_order_with_rate_stamps(tmp_path):
    folder = image_folder(tmp_path, ["frame_1.png", "frame_2.png", "frame_10.png"])
    stream = FolderImageStream(folder, rate_hz=20)
    frames = list(stream)
    assert [Path(f.source).name for f in frames] == ["frame_1.png", "frame_2.png", "frame_10.png"]
    assert [f.stamp_ns for f in frames] == [0, 50_000_000, 100_000_000]
    assert [f.index for f in frames] == [0, 1, 2] and stream.skipped == 0
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.rgb, rgb_image(i))
        assert frame.camera.K[0, 0] == 20.0 and (frame.camera.width, frame.camera.height) == (W, H)
        assert frame.frame_id == "camera" and frame.topic == ""


def test_image_kinds_are_all_converted_to_rgb8(tmp_path):
    rgb = rgb_image(3)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    cv2.imwrite(str(tmp_path / "deep.png"), rgb[..., ::-1].astype(np.uint16) * 257)
    cv2.imwrite(
        str(tmp_path / "alpha.png"), np.dstack([rgb[..., ::-1], np.full((H, W), 9, np.uint8)])
    )
    cv2.imwrite(str(tmp_path / "image.bmp"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "image.tiff"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "image.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
    np.testing.assert_array_equal(
        read_image_file(tmp_path / "grey.png"), np.repeat(grey[..., None], 3, -1)
    )
    for name in ("deep.png", "alpha.png", "image.bmp", "image.tiff"):
        decoded = read_image_file(tmp_path / name)
        assert decoded.dtype == np.uint8 and decoded.shape == (H, W, 3)
        np.testing.assert_array_equal(decoded, rgb)
    assert np.abs(read_image_file(tmp_path / "image.jpg").astype(int) - rgb).mean() < 4


def test_non_image_files_are_skipped_with_a_warning(tmp_path, caplog):
    folder = image_folder(tmp_path, ["a.png", "b.png"])
    (folder / "notes.csv").write_text("x")
    (folder / "readme.md").write_text("x")
    with caplog.at_level(logging.WARNING, logger="monodepth2_ros.data.folder_reader"):
        stream = FolderImageStream(folder)
    assert len(stream) == 2
    assert "skipped 2 non-image file(s): notes.csv, readme.md" in caplog.text


def test_unreadable_image_files_are_skipped_and_counted(tmp_path, caplog):
    folder = image_folder(tmp_path, ["0.png", "1.png", "2.png"])
    (folder / "1.png").write_bytes(b"not a png")
    stream = FolderImageStream(folder)
    with caplog.at_level(logging.WARNING, logger="monodepth2_ros.data.folder_reader"):
        frames = list(stream)
    assert [f.index for f in frames] == [0, 2] and stream.skipped == 1
    assert "1.png" in caplog.text


@pytest.mark.parametrize(
    "names, expected",
    [
        (
            ["1700000000123456789.png", "1700000000223456789.png"],
            [1700000000123456789, 1700000000223456789],
        ),
        (
            ["1317384588.915486.png", "1317384589.01.png"],
            [1317384588915486000, 1317384589010000000],
        ),
        (["1700000000.png", "1700000001.png"], [1700000000 * 10**9, 1700000001 * 10**9]),
        (
            ["1700000000123.png", "1700000000223.png"],
            [1700000000123 * 10**6, 1700000000223 * 10**6],
        ),
        (["000000.png", "000001.png"], None),  # frame numbers, not times
        (["left_1.png", "left_2.png"], None),
    ],
)
def test_stamps_are_read_from_numeric_file_names(names, expected):
    assert stamps_from_names([Path(n) for n in names]) == expected


def test_timestamp_named_files_are_ordered_by_time(tmp_path):
    # Name order (natural: fraction 5 before 25) differs from time order (.25 s before .5 s).
    names = ["1700000001.5.png", "1700000001.25.png", "1700000000.75.png"]
    folder = image_folder(tmp_path, names)
    frames = list(FolderImageStream(folder))
    assert [Path(f.source).name for f in frames] == [
        "1700000000.75.png",
        "1700000001.25.png",
        "1700000001.5.png",
    ]
    assert [f.stamp_ns for f in frames] == [
        1700000000750000000,
        1700000001250000000,
        1700000001500000000,
    ]


def test_calibration_yaml_in_the_folder_is_found(tmp_path):
    folder = image_folder(tmp_path, ["a.png"], calibration=None)
    camera = CameraModel(width=W, height=H, K=np.array([[19.0, 0, 7.5], [0, 19.0, 5.5], [0, 0, 1]]))
    save_camera_yaml(camera, folder / "front_camera.yaml")
    (folder / "other.yaml").write_text(
        "exposure: 3\n"
    )  # a YAML without camera_matrix is not a candidate
    assert FolderImageStream(folder).camera.K[0, 0] == 19.0


def test_several_calibration_yamls_are_ambiguous(tmp_path):
    folder = image_folder(tmp_path, ["a.png"], calibration=None)
    camera = CameraModel(width=W, height=H, K=np.array([[19.0, 0, 7.5], [0, 19.0, 5.5], [0, 0, 1]]))
    save_camera_yaml(camera, folder / "a.yaml")
    save_camera_yaml(camera, folder / "b.yaml")
    with pytest.raises(DatasetError, match=r"several calibration files in .*a.yaml, b.yaml"):
        FolderImageStream(folder)


def test_missing_calibration_says_what_was_expected(tmp_path):
    folder = image_folder(tmp_path, ["a.png"], calibration=None)
    with pytest.raises(
        DatasetError,
        match=r"no camera calibration in .*camera_info.yaml, calibration.yaml, "
        r"a \*.yaml with camera_matrix, K.txt or calib.txt",
    ):
        FolderImageStream(folder)
    assert list(FolderImageStream(folder, require_camera_info=False))[0].camera is None


def test_explicit_calibration_file_and_camera_model_are_used(tmp_path):
    folder = image_folder(tmp_path, ["a.png"], calibration=None)
    k_file = tmp_path / "intrinsics.txt"
    k_file.write_text("22 22 7.5 5.5")
    assert FolderImageStream(folder, camera=k_file).camera.K[0, 0] == 22.0
    model = CameraModel(width=W, height=H, K=np.array([[23.0, 0, 7.5], [0, 23.0, 5.5], [0, 0, 1]]))
    assert FolderImageStream(folder, camera=model).camera is model


def test_calibration_for_another_image_size_is_an_error(tmp_path):
    folder = image_folder(tmp_path, ["a.png"], calibration=None)
    model = CameraModel(
        width=640, height=480, K=np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    )
    with pytest.raises(
        DatasetError, match=r"a.png is 16x12 but the camera calibration is for 640x480"
    ):
        list(FolderImageStream(folder, camera=model))


def test_folder_without_images_is_refused(tmp_path):
    (tmp_path / "K.txt").write_text(K_TEXT)
    with pytest.raises(DatasetError, match=r"no image files in .*expected .png, .jpg"):
        FolderImageStream(tmp_path)


def test_missing_folder_is_a_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match=r"image folder .*nope does not exist"):
        FolderImageStream(tmp_path / "nope")


def test_non_positive_rate_is_a_config_error(tmp_path):
    folder = image_folder(tmp_path, ["a.png"])
    with pytest.raises(ConfigError, match=r"rate_hz must be positive, got 0"):
        FolderImageStream(folder, rate_hz=0)


def test_undistorting_a_folder_uses_the_yaml_distortion(tmp_path):
    folder = image_folder(tmp_path, ["a.png"], calibration=None)
    camera = CameraModel(
        width=W,
        height=H,
        K=np.array([[12.0, 0, 7.5], [0, 12.0, 5.5], [0, 0, 1]]),
        D=np.array([-0.3, 0.1, 0, 0, 0]),
        distortion_model="plumb_bob",
    )
    save_camera_yaml(camera, folder / "camera_info.yaml")
    stream = FolderImageStream(folder, undistort=True)
    (frame,) = list(stream)
    assert not frame.camera.is_distorted and not np.array_equal(frame.rgb, rgb_image(0))


# -- KITTI ------------------------------------------------------------------------------------

KITTI_CALIB = (
    "calib_time: 09-Jan-2012 13:57:47\n"
    "S_rect_02: 1.600000e+01 1.200000e+01\n"
    "P_rect_02: 1.800000e+01 0.000000e+00 7.400000e+00 4.485728e+01 0.000000e+00 1.800000e+01 "
    "5.600000e+00 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03\n"
)


def kitti_drive(tmp_path: Path, frames: int = 3, calib: bool = True) -> Path:
    date = tmp_path / "2011_09_26"
    drive = date / "2011_09_26_drive_0001_sync"
    data = drive / "image_02" / "data"
    data.mkdir(parents=True)
    for i in range(frames):
        write_rgb(data / f"{i:010d}.png", rgb_image(i))
    stamps = [f"2011-09-26 13:02:25.{964389445 + i * 1000:09d}" for i in range(frames)]
    (drive / "image_02" / "timestamps.txt").write_text("\n".join(stamps) + "\n")
    if calib:
        (date / "calib_cam_to_cam.txt").write_text(KITTI_CALIB)
    return drive


def test_kitti_drive_frames_have_timestamps_and_rectified_camera(tmp_path):
    drive = kitti_drive(tmp_path)
    stream = KittiRawStream(drive)
    frames = list(stream)
    assert len(frames) == 3 and stream.drive.camera == "02"
    base = 1317042145 * 10**9 + 964389445  # 2011-09-26 13:02:25 UTC
    assert [f.stamp_ns for f in frames] == [base, base + 1000, base + 2000]
    np.testing.assert_array_equal(frames[2].rgb, rgb_image(2))
    camera = frames[0].camera
    np.testing.assert_allclose(camera.K, [[18.0, 0, 7.4], [0, 18.0, 5.6], [0, 0, 1]])
    assert (camera.width, camera.height) == (16, 12) and frames[0].frame_id == "kitti_camera_02"


def test_kitti_drive_is_found_from_its_image_folders(tmp_path):
    drive = kitti_drive(tmp_path)
    for path in (drive, drive / "image_02", drive / "image_02" / "data"):
        found = find_kitti_drive(path)
        assert found is not None and found.drive == drive and found.camera == "02"
    assert find_kitti_drive(tmp_path) is None


def test_kitti_timestamp_count_must_match_the_images(tmp_path):
    drive = kitti_drive(tmp_path)
    (drive / "image_02" / "timestamps.txt").write_text("2011-09-26 13:02:25.964389445\n")
    with pytest.raises(DatasetError, match=r"has 1 timestamps for 3 images"):
        KittiRawStream(drive)


def test_kitti_without_calibration_says_where_it_was_expected(tmp_path):
    drive = kitti_drive(tmp_path, calib=False)
    with pytest.raises(
        DatasetError,
        match=r"no calib_cam_to_cam.txt for KITTI drive .* expected it in .*2011_09_26",
    ):
        KittiRawStream(drive)


# -- dispatch ---------------------------------------------------------------------------------


def test_open_stream_dispatches_on_the_path_kind(tmp_path):
    drive = kitti_drive(tmp_path)
    folder = image_folder(tmp_path, ["a.png"])
    assert detect_source_kind(drive) is SourceKind.KITTI
    assert detect_source_kind(folder) is SourceKind.FOLDER
    assert isinstance(open_stream(drive), KittiRawStream)
    assert isinstance(open_stream(folder, rate_hz=5), FolderImageStream)


def test_open_stream_refuses_options_that_do_not_apply(tmp_path):
    folder = image_folder(tmp_path, ["a.png"])
    with pytest.raises(
        ConfigError, match=r"option\(s\) image_topic do not apply to .* a folder source"
    ):
        open_stream(folder, image_topic="/camera/image_raw")


def test_open_stream_on_something_else_says_what_is_expected(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"is not an image source: expected a bag"):
        open_stream(tmp_path)
    with pytest.raises(MissingInputError):
        open_stream(tmp_path / "missing")
