"""Images, cameras and any other topic from ROS 1 and ROS 2 bags, without ROS.

Accepted inputs (one or several, mixed): a rosbag2 folder (``metadata.yaml`` + sqlite3 or MCAP
files), a lone ``.mcap`` or ``.db3`` file, a ROS 1 ``.bag`` file, or a folder of split bags
(``.bag``/``.mcap``/``.db3`` files or rosbag2 sub-folders, e.g. what a crashed recorder leaves).
Each bag is read with ``rosbags.highlevel.AnyReader`` (read-only: sqlite databases are opened
immutable, other files ``rb``) and all of them are merged in bag-time order.

Damage handling: a bag that cannot be opened is a :class:`DatasetError`, except an MCAP file
(truncated, no footer, cut chunk), whose intact records are read by scanning, with a
:class:`DamagedInputWarning`; a bag that breaks while being read stops there with the same
warning naming the file and how many messages were read. Undecodable messages are skipped,
counted (``BagImageStream.skipped``) and logged.
"""

from __future__ import annotations

import heapq
import logging
import warnings
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from monodepth2_ros.data.camera import CameraModel, UncalibratedCameraError
from monodepth2_ros.data.frame import DamagedInputWarning, Frame
from monodepth2_ros.data.image_codec import compressed_to_rgb, image_to_rgb, is_colour_encoding
from monodepth2_ros.data.mcap_salvage import McapScan, iter_mcap_messages, scan_mcap
from monodepth2_ros.data.paths import natural_key
from monodepth2_ros.data.stamps import header_stamp_ns
from monodepth2_ros.data.undistort import Undistorter
from monodepth2_ros.errors import DatasetError, MissingInputError

__all__ = [
    "IMAGE_TYPE",
    "COMPRESSED_IMAGE_TYPE",
    "CAMERA_INFO_TYPE",
    "BAG_SUFFIXES",
    "TopicInfo",
    "BagMessage",
    "BagImageStream",
    "list_topics",
    "iter_messages",
    "SerializedMessage",
    "iter_serialized",
    "resolve_bag_paths",
    "is_bag_path",
    "camera_info_topic_for",
]

_LOG = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
_IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)

ROS1_SUFFIX = ".bag"
MCAP_SUFFIX = ".mcap"
SQLITE_SUFFIX = ".db3"
BAG_SUFFIXES = (ROS1_SUFFIX, MCAP_SUFFIX, SQLITE_SUFFIX)
ROSBAG2_METADATA = "metadata.yaml"

# Last name of an image_transport sub-topic (``/cam/image_raw/compressed``): not the image name.
_TRANSPORT_NAMES = ("compressed", "compressedDepth", "theora", "zstd", "ffmpeg", "h264", "foxglove")
_CAMERA_INFO_NAME = "camera_info"
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag (summed over all given bags)."""

    name: str
    msgtype: str
    count: int


class BagMessage(NamedTuple):
    """A deserialised message; ``stamp_ns`` is the bag (receive) time, the header has its own."""

    topic: str
    stamp_ns: int
    msg: Any


class SerializedMessage(NamedTuple):
    """A message as ROS 2 middleware carries it: CDR bytes (ROS 1 payloads are converted)."""

    topic: str
    stamp_ns: int
    msgtype: str
    cdr: bytes


class _RawMessage(NamedTuple):
    stamp_ns: int
    topic: str
    msgtype: str
    data: Any  # serialised bytes / memoryview
    source: _Source


class _Source(Protocol):
    """One bag file or rosbag2 folder, opened."""

    path: Path
    topics: dict[str, TopicInfo]

    def messages(self, topics: Collection[str]) -> Iterator[_RawMessage]: ...

    def deserialize(self, data: Any, msgtype: str) -> Any: ...

    def to_cdr(self, data: Any, msgtype: str) -> bytes: ...


# --------------------------------------------------------------------------------------------
# Paths


def _bags_in_folder(folder: Path) -> list[Path]:
    """The bags a folder holds: itself (rosbag2), its bag files, or its rosbag2 sub-folders."""
    if (folder / ROSBAG2_METADATA).is_file():
        return [folder]
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix in BAG_SUFFIXES]
    subfolders = [p for p in folder.iterdir() if p.is_dir() and (p / ROSBAG2_METADATA).is_file()]
    return sorted(files, key=natural_key) + sorted(subfolders, key=natural_key)


def is_bag_path(path: str | Path) -> bool:
    """Whether ``path`` is a bag file, a rosbag2 folder or a folder holding bags."""
    path = Path(path)
    if path.is_file():
        return path.suffix in BAG_SUFFIXES or path.name == ROSBAG2_METADATA
    return path.is_dir() and bool(_bags_in_folder(path))


def resolve_bag_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """Expand the user's inputs to the bags to open (files or rosbag2 folders), without duplicates."""
    inputs = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not inputs:
        raise DatasetError("no bag given; expected one or more bag files or folders")
    resolved: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise MissingInputError(f"bag {path} does not exist")
        if path.is_file():
            if path.name == ROSBAG2_METADATA:
                found = [path.parent]
            elif path.suffix in BAG_SUFFIXES:
                found = [path]
            else:
                raise DatasetError(
                    f"{path} is not a bag: expected a {', '.join(BAG_SUFFIXES)} file or a folder"
                )
        else:
            found = _bags_in_folder(path)
            if not found:
                raise DatasetError(
                    f"folder {path} holds no bag: expected {ROSBAG2_METADATA}, "
                    f"{'/'.join('*' + s for s in BAG_SUFFIXES)} files or rosbag2 sub-folders"
                )
        for bag in found:
            if bag.resolve() not in {p.resolve() for p in resolved}:
                resolved.append(bag)
    return resolved


# --------------------------------------------------------------------------------------------
# Sources


@lru_cache(maxsize=2)
def _default_typestore(ros1: bool) -> Typestore:
    """Types for bags that embed no message definitions (read-only use: safe to share)."""
    return get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)


def _warn_damage(path: Path, count: int, err: BaseException) -> None:
    warnings.warn(
        f"{path}: stopped after {count} messages, the file is truncated or corrupt: {err}",
        DamagedInputWarning,
        stacklevel=2,
    )


class _ReaderSource:
    """A bag that rosbags opens normally."""

    def __init__(self, path: Path, reader: AnyReader) -> None:
        self.path = path
        self._reader = reader
        self.topics = {
            name: TopicInfo(name, info.msgtype or "(mixed types)", int(info.msgcount))
            for name, info in reader.topics.items()
        }

    def messages(self, topics: Collection[str]) -> Iterator[_RawMessage]:
        connections = [c for c in self._reader.connections if c.topic in topics]
        if not connections:  # an empty filter would mean "all topics" to rosbags
            return
        count = 0
        try:
            for connection, stamp, data in self._reader.messages(connections=connections):
                count += 1
                yield _RawMessage(int(stamp), connection.topic, connection.msgtype, data, self)
        except Exception as err:  # whatever the storage layer raises means damaged data
            _warn_damage(self.path, count, err)

    def deserialize(self, data: Any, msgtype: str) -> Any:
        return self._reader.deserialize(data, msgtype)

    def to_cdr(self, data: Any, msgtype: str) -> bytes:
        if self.path.suffix == ROS1_SUFFIX:
            return bytes(self._reader.typestore.ros1_to_cdr(data, msgtype))
        return bytes(data)


def _salvage_typestore(scan: McapScan) -> Typestore:
    """Types from the file's own schemas, else the ROS 2 defaults."""
    types: dict[str, Any] = {}
    separator = "=" * 80 + "\n"
    try:
        for channel in scan.channels.values():
            if channel.schema_encoding == "ros2msg" and channel.schema_data:
                types.update(get_types_from_msg(channel.schema_data, channel.msgtype))
            elif channel.schema_encoding in ("ros2idl", "omgidl") and channel.schema_data:
                parts = channel.schema_data.split(separator)[1:] or [channel.schema_data]
                for part in parts:
                    types.update(
                        get_types_from_idl(
                            part.split("\n", 1)[-1] if part.startswith("IDL: ") else part
                        )
                    )
        if types:
            store = get_typestore(Stores.EMPTY)
            store.register(types)
            return store
    except Exception as err:  # a broken schema: fall back to the standard definitions
        _LOG.warning(
            "%s: cannot use the file's message definitions (%s); using ROS 2 Humble's",
            scan.path,
            err,
        )
    return _default_typestore(False)


class _McapSalvageSource:
    """The intact part of an MCAP file rosbags cannot open."""

    def __init__(self, scan: McapScan) -> None:
        self.path = scan.path
        self._channels = scan.channels
        topics: dict[str, TopicInfo] = {}
        for channel_id, channel in scan.channels.items():
            count = scan.counts.get(channel_id, 0)
            previous = topics.get(channel.topic)
            topics[channel.topic] = TopicInfo(
                channel.topic, channel.msgtype, count + (previous.count if previous else 0)
            )
        self.topics = topics
        self._typestore = _salvage_typestore(scan)

    def messages(self, topics: Collection[str]) -> Iterator[_RawMessage]:
        ids = {
            cid
            for cid, channel in self._channels.items()
            if channel.topic in topics and channel.message_encoding == "cdr"
        }
        if not ids:
            return
        for channel_id, stamp, payload in iter_mcap_messages(self.path, ids):
            channel = self._channels[channel_id]
            yield _RawMessage(stamp, channel.topic, channel.msgtype, payload, self)

    def deserialize(self, data: Any, msgtype: str) -> Any:
        return self._typestore.deserialize_cdr(data, msgtype)

    def to_cdr(self, data: Any, msgtype: str) -> bytes:
        return bytes(data)  # only CDR channels are salvaged


@lru_cache(maxsize=16)
def _salvaged_file(mcap: Path, size: int, mtime_ns: int, reason: str) -> _McapSalvageSource | None:
    """Scan one damaged MCAP file, warning once per file version (size and mtime key the cache)."""
    scan = scan_mcap(mcap)
    if scan.message_count == 0:
        return None
    damage = f"damaged: {scan.damage}" if scan.damage else "no damage found by scanning"
    warnings.warn(
        f"{mcap}: rosbags cannot open it ({reason}); {damage}; read {scan.message_count} "
        "messages up to the damage",
        DamagedInputWarning,
        stacklevel=2,
    )
    return _McapSalvageSource(scan)


def _salvage(path: Path, err: BaseException) -> list[_Source]:
    """Sources for the readable part of the MCAP files at ``path`` (none if there are none)."""
    if path.is_dir():
        mcaps = sorted(path.glob(f"*{MCAP_SUFFIX}"), key=natural_key)
    else:
        mcaps = [path] if path.suffix == MCAP_SUFFIX else []
    sources: list[_Source] = []
    for mcap in mcaps:
        stat = mcap.stat()
        source = _salvaged_file(mcap.resolve(), stat.st_size, stat.st_mtime_ns, str(err))
        if source is not None:
            sources.append(source)
    return sources


def _open_error(path: Path, err: BaseException) -> DatasetError:
    reason = str(err) or type(err).__name__
    if isinstance(err, PermissionError):
        hint = "no permission to read it"
    elif "not indexed" in reason or "index looks damaged" in reason:
        hint = "a ROS 1 bag cut short; `rosbag reindex` can repair it"
    elif "malformed" in reason or "not a database" in reason:
        hint = "the sqlite database is truncated or corrupt"
    else:
        hint = "the file may be truncated, corrupt or not a bag"
    return DatasetError(f"cannot read bag {path}: {reason} ({hint})")


def _open_source(path: Path, stack: ExitStack) -> list[_Source]:
    try:
        reader = AnyReader([path], default_typestore=_default_typestore(path.suffix == ROS1_SUFFIX))
        reader.open()
    except Exception as err:  # rosbags, apsw and OS errors alike mean "cannot open this bag"
        salvaged = _salvage(path, err)
        if salvaged:
            return salvaged
        raise _open_error(path, err) from err
    stack.callback(reader.close)
    return [_ReaderSource(path, reader)]


@contextmanager
def _opened(paths: Sequence[Path]) -> Iterator[list[_Source]]:
    with ExitStack() as stack:
        yield [source for path in paths for source in _open_source(path, stack)]


@contextmanager
def _merged(sources: Sequence[_Source], topics: Collection[str]) -> Iterator[Iterator[_RawMessage]]:
    """Messages of ``topics`` from all sources in bag-time order; closes the readers' cursors."""
    generators = [s.messages(topics) for s in sources if any(t in s.topics for t in topics)]
    try:
        yield heapq.merge(*generators, key=lambda message: message.stamp_ns)
    finally:
        for generator in generators:
            generator.close()


def _all_topics(sources: Iterable[_Source]) -> dict[str, TopicInfo]:
    topics: dict[str, TopicInfo] = {}
    for source in sources:
        for info in source.topics.values():
            previous = topics.get(info.name)
            count = info.count + (previous.count if previous else 0)
            topics[info.name] = TopicInfo(
                info.name, previous.msgtype if previous else info.msgtype, count
            )
    return dict(sorted(topics.items()))


def _topic_listing(topics: dict[str, TopicInfo]) -> str:
    if not topics:
        return "  (no topics)"
    return "\n".join(f"  {t.name} [{t.msgtype}] {t.count} messages" for t in topics.values())


def _first_message(sources: Sequence[_Source], topic: str) -> _RawMessage | None:
    with _merged(sources, {topic}) as messages:
        return next(messages, None)


# --------------------------------------------------------------------------------------------
# Public reading functions


def list_topics(paths: str | Path | Sequence[str | Path]) -> list[TopicInfo]:
    """Every topic of the bags with its type and message count, sorted by name."""
    with _opened(resolve_bag_paths(paths)) as sources:
        return list(_all_topics(sources).values())


def iter_messages(
    paths: str | Path | Sequence[str | Path], topics: str | Collection[str]
) -> Iterator[BagMessage]:
    """Deserialised messages of ``topics`` in bag-time order (for ground truth, odometry, ...).

    Messages that cannot be deserialised are skipped with a logged warning.

    Raises:
        DatasetError: a topic is not in the bags (the message lists those that are).
    """
    bag_paths = resolve_bag_paths(paths)
    wanted = {topics} if isinstance(topics, str) else set(topics)
    available = {t.name: t for t in list_topics(bag_paths)}
    missing = sorted(wanted - available.keys())
    if missing:
        raise DatasetError(
            f"topic(s) {', '.join(missing)} not in {_names(bag_paths)}; its topics:\n"
            + _topic_listing(available)
        )
    return _iter_deserialized(bag_paths, wanted)


def iter_serialized(
    paths: str | Path | Sequence[str | Path], topics: Collection[str] | None = None
) -> Iterator[SerializedMessage]:
    """Messages as CDR bytes in bag-time order, for replaying a bag without deserialising it.

    Args:
        topics: the topics to read; None reads every topic.
    """
    bag_paths = resolve_bag_paths(paths)
    wanted = set(topics) if topics is not None else {t.name for t in list_topics(bag_paths)}
    with _opened(bag_paths) as sources, _merged(sources, wanted) as messages:
        for raw in messages:
            try:
                cdr = raw.source.to_cdr(raw.data, raw.msgtype)
            except Exception as err:  # a corrupt ROS 1 payload
                _LOG.warning("%s: skipped unconvertible %s message: %s", raw.source.path, raw.topic, err)
                continue
            yield SerializedMessage(raw.topic, raw.stamp_ns, raw.msgtype, cdr)


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)


def _iter_deserialized(paths: Sequence[Path], topics: Collection[str]) -> Iterator[BagMessage]:
    with _opened(paths) as sources, _merged(sources, topics) as messages:
        for raw in messages:
            try:
                msg = raw.source.deserialize(raw.data, raw.msgtype)
            except Exception as err:  # corrupt payload: rosbags raises several types
                _LOG.warning(
                    "%s: skipped undecodable %s message at %d ns: %s",
                    raw.source.path,
                    raw.topic,
                    raw.stamp_ns,
                    err,
                )
                continue
            yield BagMessage(raw.topic, raw.stamp_ns, msg)


def camera_info_topic_for(image_topic: str) -> str:
    """The ``camera_info`` beside an image topic.

    ``/cam/image_raw`` and ``/cam/image_raw/compressed`` both give ``/cam/camera_info``.
    """
    parts = image_topic.rstrip("/").split("/")
    if len(parts) > 1 and parts[-1] in _TRANSPORT_NAMES:
        parts = parts[:-1]
    namespace = "/".join(parts[:-1])
    if not namespace and image_topic.startswith("/"):
        return f"/{_CAMERA_INFO_NAME}"
    return f"{namespace}/{_CAMERA_INFO_NAME}" if namespace else _CAMERA_INFO_NAME


@dataclass
class _IterationState:
    """What one pass over a bag carries from message to message."""

    camera: CameraModel | None
    undistorter: Undistorter | None = None
    index: int = 0
    reported: set[str] = field(default_factory=set)


class BagImageStream:
    """RGB frames of one image topic of one or several bags, with their camera.

    Args:
        paths: bag file(s) or folder(s), see the module docstring.
        image_topic: ``Image`` or ``CompressedImage`` topic; by default the only colour image topic
            (depth images, ``32FC1``/``16UC1``/compressedDepth, are not candidates).
        camera_info_topic: by default the ``camera_info`` sibling of the image topic.
        undistort: undistort every image; frames then carry the pinhole camera of the output.
        require_camera_info: raise when there is no usable camera_info; when False frames may
            have ``camera=None``.

    Each frame gets the latest camera_info at or before it in bag time; frames before the first
    camera_info get that first one. Iterating again re-reads the bags.
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        image_topic: str | None = None,
        camera_info_topic: str | None = None,
        undistort: bool = False,
        require_camera_info: bool = True,
    ) -> None:
        self.paths = resolve_bag_paths(paths)
        self.undistort = bool(undistort)
        self.require_camera_info = bool(require_camera_info) or self.undistort
        self.skipped = 0
        with _opened(self.paths) as sources:
            topics = _all_topics(sources)
            self.image_topic = self._select_image_topic(sources, topics, image_topic)
            self._length = topics[self.image_topic].count
            self.camera_info_topic = self._select_info_topic(topics, camera_info_topic)
            self._first_camera = self._read_first_camera(sources)
        self._camera = (
            Undistorter(self._first_camera).camera
            if self.undistort and self._first_camera is not None
            else self._first_camera
        )

    @property
    def camera(self) -> CameraModel | None:
        """The camera of the first frames (after undistortion when undistorting)."""
        return self._camera

    @property
    def recorded_camera(self) -> CameraModel | None:
        """The camera of the first frames as recorded (before undistortion)."""
        return self._first_camera

    def __len__(self) -> int:
        """Image messages on the topic (undecodable ones are skipped when iterating)."""
        return self._length

    def __repr__(self) -> str:
        return (
            f"BagImageStream({_names(self.paths)}, image_topic={self.image_topic!r}, "
            f"camera_info_topic={self.camera_info_topic!r}, {self._length} images)"
        )

    # -- topic selection ----------------------------------------------------------------------

    def _select_image_topic(
        self, sources: Sequence[_Source], topics: dict[str, TopicInfo], requested: str | None
    ) -> str:
        where = _names(self.paths)
        if requested is not None:
            if requested not in topics:
                raise DatasetError(
                    f"image topic {requested!r} is not in {where}; its topics:\n"
                    + _topic_listing(topics)
                )
            if topics[requested].msgtype not in _IMAGE_TYPES:
                raise DatasetError(
                    f"topic {requested!r} in {where} is a {topics[requested].msgtype}; expected "
                    f"{' or '.join(_IMAGE_TYPES)}"
                )
            return requested
        candidates = [t.name for t in topics.values() if t.msgtype in _IMAGE_TYPES and t.count > 0]
        if len(candidates) > 1:
            candidates = [name for name in candidates if self._is_colour_topic(sources, name)]
        if len(candidates) == 1:
            return candidates[0]
        problem = (
            "no colour image topic" if not candidates else f"{len(candidates)} colour image topics"
        )
        raise DatasetError(
            f"{problem} in {where}; pass image_topic= one of the Image/CompressedImage topics. "
            "Its topics:\n" + _topic_listing(topics)
        )

    @staticmethod
    def _is_colour_topic(sources: Sequence[_Source], topic: str) -> bool:
        """Whether the topic's first message is a colour image (not depth); True when unsure."""
        raw = _first_message(sources, topic)
        if raw is None:
            return True
        try:
            msg = raw.source.deserialize(raw.data, raw.msgtype)
        except Exception:  # unreadable first message: keep the topic as a candidate
            return True
        if raw.msgtype == COMPRESSED_IMAGE_TYPE:
            return "compresseddepth" not in str(msg.format).lower()
        return is_colour_encoding(str(msg.encoding))

    def _select_info_topic(self, topics: dict[str, TopicInfo], requested: str | None) -> str | None:
        where = _names(self.paths)
        info_topics = {n: t for n, t in topics.items() if t.msgtype == CAMERA_INFO_TYPE}
        name = requested if requested is not None else camera_info_topic_for(self.image_topic)
        info = topics.get(name)
        if info is not None and info.msgtype != CAMERA_INFO_TYPE:
            raise DatasetError(
                f"topic {name!r} in {where} is a {info.msgtype}; expected {CAMERA_INFO_TYPE}"
            )
        if info is not None and info.count > 0:
            return name
        problem = (
            f"camera_info topic {name!r} has no messages"
            if info
            else f"no camera_info topic {name!r}"
        )
        if not self.require_camera_info:
            _LOG.info("%s in %s; frames will have no camera", problem, where)
            return None
        raise DatasetError(
            f"{problem} in {where} for image topic {self.image_topic!r}"
            + (" (needed to undistort)" if self.undistort else "")
            + "; pass camera_info_topic= one of the CameraInfo topics, or "
            "require_camera_info=False. "
            "CameraInfo topics:\n" + _topic_listing(info_topics)
        )

    def _read_first_camera(self, sources: Sequence[_Source]) -> CameraModel | None:
        if self.camera_info_topic is None:
            return None
        raw = _first_message(sources, self.camera_info_topic)
        if raw is None:  # the count said there were messages, but none could be read
            if self.require_camera_info:
                raise DatasetError(
                    f"no readable message on {self.camera_info_topic!r} in {_names(self.paths)}"
                )
            return None
        try:
            msg = raw.source.deserialize(raw.data, raw.msgtype)
            return CameraModel.from_camera_info(msg)
        except UncalibratedCameraError as err:
            if self.require_camera_info:
                raise UncalibratedCameraError(
                    f"{raw.source.path} {self.camera_info_topic}: {err}"
                ) from err
            _LOG.warning(
                "%s %s: %s; frames will have no camera",
                raw.source.path,
                self.camera_info_topic,
                err,
            )
        except DatasetError as err:
            if self.require_camera_info:
                raise DatasetError(f"{raw.source.path} {self.camera_info_topic}: {err}") from err
            _LOG.warning(
                "%s %s: %s; frames will have no camera",
                raw.source.path,
                self.camera_info_topic,
                err,
            )
        except Exception as err:  # rosbags deserialisation failure
            if self.require_camera_info:
                raise DatasetError(
                    f"{raw.source.path} {self.camera_info_topic}: cannot deserialise "
                    f"CameraInfo: {err}"
                ) from err
        return None

    # -- iteration ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        self.skipped = 0
        topics = {self.image_topic}
        if self.camera_info_topic is not None:
            topics.add(self.camera_info_topic)
        state = _IterationState(camera=self._first_camera)
        # Images wait until bag time moves on, so a camera_info with the same stamp applies to them.
        pending: list[_RawMessage] = []
        with _opened(self.paths) as sources, _merged(sources, topics) as messages:
            for raw in messages:
                if pending and raw.stamp_ns > pending[0].stamp_ns:
                    yield from self._frames(pending, state)
                    pending.clear()
                if raw.topic == self.camera_info_topic:
                    state.camera = self._updated_camera(raw, state.camera, state.reported)
                else:
                    pending.append(raw)
            yield from self._frames(pending, state)

    def _frames(self, images: Sequence[_RawMessage], state: _IterationState) -> Iterator[Frame]:
        for raw in images:
            index = state.index
            state.index += 1
            decoded = self._decode(raw, index)
            if decoded is None:
                continue
            msg, rgb = decoded
            camera = frame_camera = state.camera
            if camera is not None and (camera.height, camera.width) != rgb.shape[:2]:
                raise DatasetError(
                    f"{raw.source.path}: image {index} on {self.image_topic} is "
                    f"{rgb.shape[1]}x{rgb.shape[0]} but its camera_info ({self.camera_info_topic}) "
                    f"is for {camera.width}x{camera.height} (width x height)"
                )
            if self.undistort and camera is not None:
                if state.undistorter is None or state.undistorter.source != camera:
                    state.undistorter = Undistorter(camera)
                rgb = state.undistorter(rgb)
                frame_camera = state.undistorter.camera
            header = getattr(msg, "header", None)
            frame_id = str(getattr(header, "frame_id", "") or (camera.frame_id if camera else ""))
            yield Frame(
                stamp_ns=header_stamp_ns(msg) or raw.stamp_ns,
                rgb=rgb,
                camera=frame_camera,
                frame_id=frame_id,
                topic=raw.topic,
                index=index,
                source=str(raw.source.path),
            )

    def _decode(self, raw: _RawMessage, index: int) -> tuple[Any, Any] | None:
        """(message, RGB) of an image message, or None (counted, logged) when it cannot be read."""
        try:
            msg = raw.source.deserialize(raw.data, raw.msgtype)
        except Exception as err:  # corrupt payload: rosbags raises several types
            self._skip(raw, index, f"cannot deserialise: {err}")
            return None
        try:
            rgb = (
                compressed_to_rgb(msg)
                if raw.msgtype == COMPRESSED_IMAGE_TYPE
                else image_to_rgb(msg)
            )
        except DatasetError as err:
            self._skip(raw, index, str(err))
            return None
        return msg, rgb

    def _skip(self, raw: _RawMessage, index: int, reason: str) -> None:
        self.skipped += 1
        _LOG.warning(
            "%s: skipped image %d on %s at %d ns: %s",
            raw.source.path,
            index,
            raw.topic,
            raw.stamp_ns,
            reason,
        )

    def _updated_camera(
        self, raw: _RawMessage, current: CameraModel | None, reported: set[str]
    ) -> CameraModel | None:
        """The camera of a new camera_info, or ``current`` when it is unusable (logged once)."""
        try:
            return CameraModel.from_camera_info(raw.source.deserialize(raw.data, raw.msgtype))
        except Exception as err:  # DatasetError or a deserialisation failure: keep the last camera
            reason = str(err)
            if reason not in reported:
                reported.add(reason)
                _LOG.warning(
                    "%s: ignored camera_info on %s at %d ns: %s",
                    raw.source.path,
                    raw.topic,
                    raw.stamp_ns,
                    reason,
                )
            return current
