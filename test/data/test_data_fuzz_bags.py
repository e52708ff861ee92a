"""Byte-level corruption of sqlite3, MCAP and ROS 1 bags (hypothesis): a clear DatasetError or the
readable frames, never another exception, never a hang.

``MONODEPTH2_FUZZ_EXAMPLES`` sets the cases per format (the README's figures: a run with 1000).
"""

from __future__ import annotations

import os
import shutil
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monodepth2_ros.data.bag_reader import BagImageStream, iter_messages, list_topics
from monodepth2_ros.data.frame import DamagedInputWarning
from monodepth2_ros.errors import DatasetError
from monodepth2_ros.synthetic.bag import write_drive_bag
from monodepth2_ros.synthetic.config import SynthConfig

EXAMPLES = int(os.environ.get("MONODEPTH2_FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
HANG_S = 30
FORMATS = {"mcap": "drive", "sqlite3": "drive", "rosbag1": "drive.bag"}
DATA_SUFFIX = {"mcap": ".mcap", "sqlite3": ".db3", "rosbag1": ".bag"}


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_bags")
    config = SynthConfig(frames=3, width=32, height=24)
    return {fmt: write_drive_bag(config, root / fmt / name, fmt) for fmt, name in FORMATS.items()}


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang(f"reading a corrupted bag took more than {HANG_S} s")


def _data_file(bag: Path, fmt: str) -> Path:
    return bag if bag.is_file() else next(bag.glob(f"*{DATA_SUFFIX[fmt]}"))


@st.composite
def corruptions(draw, size: int):
    """Overwritten byte runs, zeroed ranges and a truncation, as a recorder crash or a bad disk leaves."""
    edits = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("overwrite"), st.integers(0, size - 1), st.binary(min_size=1, max_size=16)),
                st.tuples(st.just("zero"), st.integers(0, size - 1), st.integers(1, 4096)),
                st.tuples(st.just("flip"), st.integers(0, size - 1), st.integers(1, 255)),
            ),
            min_size=1,
            max_size=6,
        )
    )
    truncate = draw(st.one_of(st.none(), st.integers(0, size - 1)))
    return edits, truncate


def _corrupt(data: bytes, edits, truncate) -> bytes:
    buffer = bytearray(data)
    for kind, offset, value in edits:
        if kind == "overwrite":
            buffer[offset : offset + len(value)] = value
        elif kind == "zero":
            buffer[offset : offset + value] = bytes(len(buffer[offset : offset + value]))
        else:
            buffer[offset] ^= value
    return bytes(buffer[:truncate] if truncate is not None else buffer)


def _read_everything(bag: Path) -> int:
    """What a user's commands do with a bag: list it, stream its frames, read every topic."""
    topics = list_topics(bag)
    frames = 0
    try:
        stream = BagImageStream(bag, require_camera_info=False)
    except DatasetError:
        stream = None
    if stream is not None:
        for frame in stream:
            assert frame.rgb.ndim == 3 and frame.rgb.shape[2] == 3 and frame.rgb.dtype == np.uint8
            frames += 1
    for topic in topics:
        for _ in iter_messages(bag, topic.name):
            pass
    return frames


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_intact_bags_read_completely(bags, fmt):
    assert _read_everything(bags[fmt]) == 3


@pytest.mark.parametrize("fmt", list(FORMATS))
@FUZZ
@given(data=st.data())
def test_a_corrupted_bag_reads_its_intact_part_or_raises_dataset_error(bags, tmp_path_factory, fmt, data):
    original = bags[fmt]
    source_file = _data_file(original, fmt)
    edits, truncate = data.draw(corruptions(source_file.stat().st_size))
    case_root = tmp_path_factory.mktemp("case")
    bag = case_root / original.name
    if original.is_dir():
        shutil.copytree(original, bag)
    target = _data_file(bag, fmt) if original.is_dir() else bag
    target.write_bytes(_corrupt(source_file.read_bytes(), edits, truncate))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedInputWarning)
            _read_everything(bag)
    except DatasetError as err:
        assert str(err)  # a message for the user
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        shutil.rmtree(case_root, ignore_errors=True)
