"""Write a synthetic drive as a ROS bag (rosbag2 MCAP or SQLite 3, or ROS 1) with ground truth.

Topics (all messages of one frame share the frame's stamp)::

    /camera/image_raw            sensor_msgs/msg/Image       rgb8, frame camera_optical
    /camera/camera_info          sensor_msgs/msg/CameraInfo  K, P (P[3] = 0), D (plumb_bob), R = I
    /camera/right/image_raw      sensor_msgs/msg/Image       with stereo, frame camera_right_optical
    /camera/right/camera_info    sensor_msgs/msg/CameraInfo  with stereo, P[3] = -fx * baseline
    /ground_truth/depth          sensor_msgs/msg/Image       32FC1 metres, NaN where nothing is hit
    /ground_truth/odom           nav_msgs/msg/Odometry       odom -> base_link, twist in base_link (full
                                                             3-D for drones and hands)
    /tf                          tf2_msgs/msg/TFMessage      odom -> base_link per frame
    /tf_static                   tf2_msgs/msg/TFMessage      base_link -> camera_optical (and the
                                                             right camera), once, transient local
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from monodepth2_ros.errors import ConfigError, DatasetError

from .config import SynthConfig
from .drive import SynthFrame, SyntheticDrive

__all__ = [
    "write_drive_bag",
    "rotation_to_quaternion",
    "STORAGE_FORMATS",
    "TOPIC_IMAGE",
    "TOPIC_CAMERA_INFO",
    "TOPIC_RIGHT_IMAGE",
    "TOPIC_RIGHT_CAMERA_INFO",
    "TOPIC_DEPTH",
    "TOPIC_ODOM",
    "TOPIC_TF",
    "TOPIC_TF_STATIC",
    "FRAME_ODOM",
    "FRAME_BASE",
    "FRAME_CAMERA",
    "FRAME_RIGHT_CAMERA",
]

STORAGE_FORMATS = ("mcap", "sqlite3", "rosbag1")

TOPIC_IMAGE = "/camera/image_raw"
TOPIC_CAMERA_INFO = "/camera/camera_info"
TOPIC_RIGHT_IMAGE = "/camera/right/image_raw"
TOPIC_RIGHT_CAMERA_INFO = "/camera/right/camera_info"
TOPIC_DEPTH = "/ground_truth/depth"
TOPIC_ODOM = "/ground_truth/odom"
TOPIC_TF = "/tf"
TOPIC_TF_STATIC = "/tf_static"

FRAME_ODOM = "odom"
FRAME_BASE = "base_link"
FRAME_CAMERA = "camera_optical"
FRAME_RIGHT_CAMERA = "camera_right_optical"

_IMAGE = "sensor_msgs/msg/Image"
_CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
_ODOMETRY = "nav_msgs/msg/Odometry"
_TF_MESSAGE = "tf2_msgs/msg/TFMessage"
_ROSBAG2_VERSION = 8  # the metadata version ROS 2 Humble's rosbag2 still reads
_TF_MESSAGE_DEFINITION = "geometry_msgs/TransformStamped[] transforms"


def rotation_to_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """(3, 3) rotation matrix -> unit quaternion ``(x, y, z, w)`` with ``w >= 0`` (Shepperd's method)."""
    m = np.asarray(R, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    candidates = np.array([trace, m[0, 0], m[1, 1], m[2, 2]])
    largest = int(np.argmax(candidates))
    if largest == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    elif largest == 1:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s])
    elif largest == 2:
        s = 2.0 * np.sqrt(1.0 - m[0, 0] + m[1, 1] - m[2, 2])
        q = np.array([(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s])
    else:
        s = 2.0 * np.sqrt(1.0 - m[0, 0] - m[1, 1] + m[2, 2])
        q = np.array([(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s])
    q /= np.linalg.norm(q)
    if q[3] < 0.0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])


class _MessageFactory:
    """Builds message objects of one typestore (ROS 2 Humble or ROS 1 Noetic field names)."""

    def __init__(self, typestore, ros1: bool) -> None:
        self.ts = typestore
        self.ros1 = ros1
        self.types = typestore.types

    def time(self, stamp_ns: int):
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)

    def header(self, stamp_ns: int, frame_id: str, seq: int = 0):
        cls = self.types["std_msgs/msg/Header"]
        if self.ros1:
            return cls(seq=seq, stamp=self.time(stamp_ns), frame_id=frame_id)
        return cls(stamp=self.time(stamp_ns), frame_id=frame_id)

    def image(self, header, pixels: np.ndarray, encoding: str):
        height, width = pixels.shape[:2]
        data = np.ascontiguousarray(pixels).view(np.uint8).reshape(-1)
        return self.types[_IMAGE](
            header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
            step=data.size // height, data=data,
        )

    def camera_info(self, header, height: int, width: int, K: np.ndarray, D: np.ndarray, P: np.ndarray):
        roi = self.types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        fields = {
            "d": np.asarray(D, dtype=np.float64),
            "k": np.asarray(K, dtype=np.float64).reshape(9),
            "r": np.eye(3).reshape(9),
            "p": np.asarray(P, dtype=np.float64).reshape(12),
        }
        if self.ros1:
            fields = {name.upper(): value for name, value in fields.items()}
        return self.types[_CAMERA_INFO](
            header=header, height=height, width=width, distortion_model="plumb_bob",
            binning_x=0, binning_y=0, roi=roi, **fields,
        )

    def transform(self, T: np.ndarray):
        x, y, z, w = rotation_to_quaternion(T[:3, :3])
        return self.types["geometry_msgs/msg/Transform"](
            translation=self.types["geometry_msgs/msg/Vector3"](x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
            rotation=self.types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        )

    def tf_message(self, transforms: list[tuple[int, str, str, np.ndarray]], seq: int = 0):
        stamped = [
            self.types["geometry_msgs/msg/TransformStamped"](
                header=self.header(stamp, parent, seq), child_frame_id=child, transform=self.transform(T)
            )
            for stamp, parent, child, T in transforms
        ]
        return self.types[_TF_MESSAGE](transforms=stamped)

    def odometry(self, header, T_odom_base: np.ndarray, speed: float, yaw_rate: float, twist=None):
        t = self.types
        x, y, z, w = rotation_to_quaternion(T_odom_base[:3, :3])
        pose = t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=float(T_odom_base[0, 3]), y=float(T_odom_base[1, 3]),
                                                  z=float(T_odom_base[2, 3])),
            orientation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        )
        linear, angular = twist if twist is not None else ((speed, 0.0, 0.0), (0.0, 0.0, yaw_rate))
        twist = t["geometry_msgs/msg/Twist"](
            linear=t["geometry_msgs/msg/Vector3"](x=float(linear[0]), y=float(linear[1]), z=float(linear[2])),
            angular=t["geometry_msgs/msg/Vector3"](x=float(angular[0]), y=float(angular[1]), z=float(angular[2])),
        )
        return t[_ODOMETRY](
            header=header,
            child_frame_id=FRAME_BASE,
            pose=t["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
            twist=t["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)),
        )


class _BagSink:
    """One interface over the rosbag2 and rosbag1 writers: connections by topic, serialised writes."""

    def __init__(self, path: Path, storage: str) -> None:
        from rosbags.typesys import Stores, get_typestore, get_types_from_msg

        self.storage = storage
        self.ros1 = storage == "rosbag1"
        if self.ros1:
            from rosbags.rosbag1 import Writer as Writer1

            typestore = get_typestore(Stores.ROS1_NOETIC)
            if _TF_MESSAGE not in typestore.fielddefs:  # Noetic's store lacks tf2_msgs
                typestore.register(get_types_from_msg(_TF_MESSAGE_DEFINITION, _TF_MESSAGE))
            self.writer = Writer1(path)
        else:
            from rosbags.rosbag2 import StoragePlugin, Writer as Writer2

            typestore = get_typestore(Stores.ROS2_HUMBLE)
            plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
            self.writer = Writer2(path, version=_ROSBAG2_VERSION, storage_plugin=plugin)
        self.typestore = typestore
        self.messages = _MessageFactory(typestore, self.ros1)
        self.connections: dict[str, object] = {}

    def open(self) -> None:
        self.writer.open()

    def add(self, topic: str, msgtype: str, latched: bool = False) -> None:
        if self.ros1:
            self.connections[topic] = self.writer.add_connection(
                topic, msgtype, typestore=self.typestore, latching=1 if latched else None
            )
            return
        self.connections[topic] = self.writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=[_qos(latched)]
        )

    def write(self, topic: str, msgtype: str, message, stamp_ns: int) -> None:
        if self.ros1:
            data = self.typestore.serialize_ros1(message, msgtype)
        else:
            data = self.typestore.serialize_cdr(message, msgtype)
        self.writer.write(self.connections[topic], stamp_ns, data)

    def close(self) -> None:
        self.writer.close()


def _qos(latched: bool):
    """The QoS rosbag2 records for a topic: reliable, and transient local for latched ones."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    infinite = QosTime(2147483647, 4294967295)  # rmw's "default/infinite" duration
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=1 if latched else 10,
        reliability=QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
        deadline=infinite,
        lifespan=infinite,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=infinite,
        avoid_ros_namespace_conventions=False,
    )


def _writer_errors() -> tuple[type[Exception], ...]:
    from rosbags.rosbag1 import WriterError as Writer1Error
    from rosbags.rosbag2 import WriterError as Writer2Error
    from rosbags.serde import SerdeError

    return (Writer1Error, Writer2Error, SerdeError)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_drive_bag(
    config: SynthConfig,
    out_path: str | Path,
    storage: str = "mcap",
    *,
    overwrite: bool = False,
    on_frame: Callable[[SynthFrame], None] | None = None,
    drive: SyntheticDrive | None = None,
) -> Path:
    """Render the drive of ``config`` and write it with ground truth as a bag.

    Args:
        config: what to render.
        out_path: the bag: a folder for rosbag2 (``mcap``, ``sqlite3``), a ``.bag`` file for ``rosbag1``.
        storage: ``"mcap"``, ``"sqlite3"`` or ``"rosbag1"``.
        overwrite: replace an existing ``out_path`` instead of refusing.
        on_frame: called after each frame is written (progress reporting).
        drive: an already built :class:`SyntheticDrive` of ``config`` to reuse.
    Returns:
        The path of the bag written.
    Raises:
        ConfigError: unknown storage, a ROS 1 path not ending in ``.bag``, ``out_path`` exists
            and ``overwrite`` is false, or ``drive`` renders another configuration.
        DatasetError: the bag cannot be written (the partial output is removed).
    """
    path = Path(out_path)
    if storage not in STORAGE_FORMATS:
        raise ConfigError(f"bag storage {storage!r} is unknown; expected one of {', '.join(STORAGE_FORMATS)}")
    if storage == "rosbag1" and path.suffix != ".bag":
        raise ConfigError(f"ROS 1 bag path {path} must end in .bag (readers tell the formats apart by it)")
    if drive is not None and drive.config != config:
        raise ConfigError(f"the drive given renders {drive.config}, not the requested {config}")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise ConfigError(f"{path} exists already; use --force (overwrite=True) to replace it")
    drive = drive if drive is not None else SyntheticDrive(config)
    _remove(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = _BagSink(path, storage)
        sink.open()
        _write_frames(sink, drive, on_frame)
        sink.close()
    except (OSError, *_writer_errors()) as err:
        _remove(path)
        raise DatasetError(f"cannot write the {storage} bag {path}: {err}") from err
    except BaseException:
        _remove(path)  # no half-written bag left behind (errors, Ctrl-C)
        raise
    return path


def _write_frames(sink: _BagSink, drive: SyntheticDrive, on_frame: Callable[[SynthFrame], None] | None) -> None:
    config = drive.config
    msgs = sink.messages
    stereo = config.stereo
    sink.add(TOPIC_TF_STATIC, _TF_MESSAGE, latched=True)
    sink.add(TOPIC_TF, _TF_MESSAGE)
    sink.add(TOPIC_ODOM, _ODOMETRY)
    sink.add(TOPIC_CAMERA_INFO, _CAMERA_INFO)
    sink.add(TOPIC_IMAGE, _IMAGE)
    sink.add(TOPIC_DEPTH, _IMAGE)
    if stereo:
        sink.add(TOPIC_RIGHT_CAMERA_INFO, _CAMERA_INFO)
        sink.add(TOPIC_RIGHT_IMAGE, _IMAGE)

    first_stamp = drive.stamp_ns(0)
    static = [(first_stamp, FRAME_BASE, FRAME_CAMERA, drive.T_base_camera)]
    if stereo:
        static.append((first_stamp, FRAME_BASE, FRAME_RIGHT_CAMERA, drive.T_base_camera @ drive.T_left_right))
    sink.write(TOPIC_TF_STATIC, _TF_MESSAGE, msgs.tf_message(static), first_stamp)

    K, D = drive.K, drive.D
    P_left = drive.camera.projection_matrix(0.0)
    P_right = drive.camera.projection_matrix(config.baseline_m)
    height, width = config.height, config.width
    for frame in drive.iter_frames():
        stamp, seq = frame.stamp_ns, frame.index
        sink.write(TOPIC_TF, _TF_MESSAGE,
                   msgs.tf_message([(stamp, FRAME_ODOM, FRAME_BASE, frame.T_odom_base)], seq), stamp)
        sink.write(TOPIC_ODOM, _ODOMETRY,
                   msgs.odometry(msgs.header(stamp, FRAME_ODOM, seq), frame.T_odom_base, frame.speed, frame.yaw_rate,
                                 frame.twist),
                   stamp)
        camera_header = msgs.header(stamp, FRAME_CAMERA, seq)
        sink.write(TOPIC_CAMERA_INFO, _CAMERA_INFO, msgs.camera_info(camera_header, height, width, K, D, P_left), stamp)
        sink.write(TOPIC_IMAGE, _IMAGE, msgs.image(camera_header, frame.rgb, "rgb8"), stamp)
        depth = frame.depth.astype("<f4", copy=False)
        sink.write(TOPIC_DEPTH, _IMAGE, msgs.image(camera_header, depth, "32FC1"), stamp)
        if stereo:
            right_header = msgs.header(stamp, FRAME_RIGHT_CAMERA, seq)
            sink.write(TOPIC_RIGHT_CAMERA_INFO, _CAMERA_INFO,
                       msgs.camera_info(right_header, height, width, K, D, P_right), stamp)
            sink.write(TOPIC_RIGHT_IMAGE, _IMAGE, msgs.image(right_header, frame.right_rgb, "rgb8"), stamp)
        if on_frame is not None:
            on_frame(frame)
