"""Reading the intact part of a damaged MCAP file (no footer, cut chunk, bad checksum).

A recorder that crashes or a copy that is cut short leaves an MCAP file without its summary and
footer, which ``rosbags`` refuses to open. The records before the damage are still valid, so this
module walks them in file order (schemas, channels, messages, chunks) and stops at the first record
that is cut or does not check out. Every size is checked against the bytes left before reading,
so a corrupt length can neither allocate huge buffers nor loop.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from rosbags.rosbag2.storage_mcap import decompress as decompress_chunk

__all__ = ["McapChannel", "McapScan", "scan_mcap", "iter_mcap_messages"]

MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_HEADER = 0x01
_OP_FOOTER = 0x02
_OP_SCHEMA = 0x03
_OP_CHANNEL = 0x04
_OP_MESSAGE = 0x05
_OP_CHUNK = 0x06
_OP_DATA_END = 0x0F
_RECORD_HEAD = struct.Struct("<BQ")  # opcode, content length
_MESSAGE_HEAD = struct.Struct("<HIQQ")  # channel id, sequence, log time, publish time
_CHUNK_HEAD = struct.Struct("<QQQI")  # start time, end time, uncompressed size, crc32
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
# Messages held back to put slightly out-of-order log times back in order.
_REORDER_WINDOW = 8


class McapDamage(Exception):
    """Where and why the walk stopped; internal, reported by the caller as a warning."""


@dataclass(frozen=True)
class McapChannel:
    """One channel (topic) of the file, with its message type and schema text."""

    id: int
    topic: str
    msgtype: str
    message_encoding: str
    schema_encoding: str
    schema_data: str


@dataclass
class McapScan:
    """Result of walking a file: its channels, message counts and where it broke (None = intact)."""

    path: Path
    channels: dict[int, McapChannel] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    damage: str | None = None

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())


class _Cursor:
    """Bounded little-endian reads from a byte string."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise McapDamage(f"{self.what} is shorter than its fields say")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: struct.Struct) -> tuple[int, ...]:
        return fmt.unpack(self.take(fmt.size))

    def string(self) -> str:
        (size,) = self.unpack(_U32)
        try:
            return self.take(size).decode()
        except UnicodeDecodeError as err:
            raise McapDamage(f"{self.what} holds invalid UTF-8") from err

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)


def _records(stream: BinaryIO, size: int, what: str) -> Iterator[tuple[int, bytes]]:
    """(opcode, content) of each record until ``size`` bytes, the footer or the data end."""
    position = stream.tell()
    while position < size:
        head = stream.read(_RECORD_HEAD.size)
        if len(head) < _RECORD_HEAD.size:
            raise McapDamage(f"{what} ends inside a record header at byte {position}")
        opcode, length = _RECORD_HEAD.unpack(head)
        left = size - position - _RECORD_HEAD.size
        if length > left:
            raise McapDamage(
                f"record 0x{opcode:02x} at byte {position} needs {length} bytes, "
                f"{what} has {left} left"
            )
        content = stream.read(length)
        if len(content) < length:
            raise McapDamage(f"{what} ends inside a record at byte {position}")
        if opcode in (_OP_FOOTER, _OP_DATA_END):
            return
        yield opcode, content
        position += _RECORD_HEAD.size + length


def _chunk_records(content: bytes) -> Iterator[tuple[int, bytes]]:
    cursor = _Cursor(content, "chunk record")
    _, _, uncompressed_size, crc = cursor.unpack(_CHUNK_HEAD)
    compression = cursor.string()
    (compressed_size,) = cursor.unpack(_U64)
    compressed = cursor.take(compressed_size)
    try:
        raw = decompress_chunk(compressed, compression, uncompressed_size, crc)
    except Exception as err:  # third-party codecs raise their own types: all mean a bad chunk
        raise McapDamage(f"chunk does not decompress or check out: {err}") from err
    yield from _records(BytesIO(raw), len(raw), "chunk")


def _walk(path: Path) -> Iterator[tuple[int, bytes]]:
    """Every schema/channel/message record of the file in order, chunks opened; raises McapDamage."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        if stream.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
            raise McapDamage("the file does not start with the MCAP magic")
        for opcode, content in _records(stream, size, "the file"):
            if opcode == _OP_CHUNK:
                yield from _chunk_records(content)
            elif opcode in (_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE):
                yield opcode, content
            # Other records (header, indexes, attachments, metadata, extensions) carry no messages.


def scan_mcap(path: Path) -> McapScan:
    """Walk ``path`` once to learn its channels and count the messages before any damage."""
    scan = McapScan(path=path)
    schemas: dict[int, tuple[str, str, str]] = {}
    try:
        for opcode, content in _walk(path):
            cursor = _Cursor(content, f"record 0x{opcode:02x}")
            if opcode == _OP_SCHEMA:
                (schema_id,) = cursor.unpack(_U16)
                schemas[schema_id] = (cursor.string(), cursor.string(), cursor.string())
            elif opcode == _OP_CHANNEL:
                channel_id, schema_id = cursor.unpack(_U16) + cursor.unpack(_U16)
                name, encoding, data = schemas.get(schema_id, ("", "", ""))
                topic = cursor.string()
                scan.channels[channel_id] = McapChannel(
                    channel_id, topic, name, cursor.string(), encoding, data
                )
                scan.counts.setdefault(channel_id, 0)
            else:
                (channel_id,) = cursor.unpack(_U16)
                if channel_id in scan.channels:
                    scan.counts[channel_id] += 1
    except McapDamage as err:
        scan.damage = str(err)
    except OSError as err:
        scan.damage = f"read error: {err}"
    return scan


def iter_mcap_messages(path: Path, channel_ids: set[int]) -> Iterator[tuple[int, int, bytes]]:
    """(channel id, log time ns, CDR payload) of the intact messages, in time order.

    Messages are written in receive order; a small reorder window absorbs local disorder without
    holding the file in memory. Stops silently at the damage :func:`scan_mcap` reported.
    """
    window: list[tuple[int, int, int, bytes]] = []  # (log time, arrival, channel, payload)
    arrival = 0
    try:
        for opcode, content in _walk(path):
            if opcode != _OP_MESSAGE:
                continue
            cursor = _Cursor(content, "message record")
            channel_id, _, log_time, _ = cursor.unpack(_MESSAGE_HEAD)
            if channel_id not in channel_ids:
                continue
            heapq.heappush(window, (log_time, arrival, channel_id, cursor.rest()))
            arrival += 1
            if len(window) > _REORDER_WINDOW:
                stamp, _, channel, payload = heapq.heappop(window)
                yield channel, stamp, payload
    except (McapDamage, OSError):
        pass  # already reported by scan_mcap
    while window:
        stamp, _, channel, payload = heapq.heappop(window)
        yield channel, stamp, payload
