from types import SimpleNamespace

from monodepth2_ros.data.stamps import header_stamp_ns, stamp_to_ns


def test_ros2_and_ros1_stamps_convert_to_the_same_nanoseconds():
    assert stamp_to_ns(SimpleNamespace(sec=12, nanosec=345)) == 12_000_000_345
    assert stamp_to_ns(SimpleNamespace(secs=12, nsecs=345)) == 12_000_000_345


def test_header_stamp_falls_back_when_missing_or_zero():
    header = SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0))
    assert header_stamp_ns(SimpleNamespace(header=header), fallback=7) == 7
    assert header_stamp_ns(SimpleNamespace(), fallback=9) == 9
    stamped = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=2)))
    assert header_stamp_ns(stamped, fallback=9) == 1_000_000_002
