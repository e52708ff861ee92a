"""Reading frames and cameras from bags, image folders and KITTI drives (no torch, no ROS).

The message conversions are duck-typed on the fields rclpy and rosbags messages share, so the
ROS nodes use the same code as the offline readers.
"""

from monodepth2_ros.data.bag_reader import (
    BagImageStream,
    BagMessage,
    TopicInfo,
    camera_info_topic_for,
    iter_messages,
    iter_serialized,
    SerializedMessage,
    list_topics,
    resolve_bag_paths,
)
from monodepth2_ros.data.camera import (
    DISTORTION_MODELS,
    CameraModel,
    UncalibratedCameraError,
    load_camera_file,
    load_camera_yaml,
    load_intrinsics_text,
    save_camera_yaml,
)
from monodepth2_ros.data.folder_reader import (
    FolderImageStream,
    ImageFileStream,
    read_image_file,
)
from monodepth2_ros.data.frame import DamagedInputWarning, Frame, ImageStream
from monodepth2_ros.data.image_codec import (
    RGB_ENCODINGS,
    compressed_to_rgb,
    depth_image_to_metres,
    image_to_array,
    image_to_rgb,
    rgb_to_compressed,
    rgb_to_image_fields,
)
from monodepth2_ros.data.kitti import KittiRawStream, find_kitti_drive
from monodepth2_ros.data.sources import SourceKind, detect_source_kind, open_stream
from monodepth2_ros.data.undistort import Undistorter

__all__ = [
    "BagImageStream",
    "BagMessage",
    "TopicInfo",
    "camera_info_topic_for",
    "iter_messages",
    "iter_serialized",
    "SerializedMessage",
    "list_topics",
    "resolve_bag_paths",
    "DISTORTION_MODELS",
    "CameraModel",
    "UncalibratedCameraError",
    "load_camera_file",
    "load_camera_yaml",
    "load_intrinsics_text",
    "save_camera_yaml",
    "FolderImageStream",
    "ImageFileStream",
    "read_image_file",
    "DamagedInputWarning",
    "Frame",
    "ImageStream",
    "RGB_ENCODINGS",
    "compressed_to_rgb",
    "depth_image_to_metres",
    "image_to_array",
    "image_to_rgb",
    "rgb_to_compressed",
    "rgb_to_image_fields",
    "KittiRawStream",
    "find_kitti_drive",
    "SourceKind",
    "detect_source_kind",
    "open_stream",
    "Undistorter",
]
