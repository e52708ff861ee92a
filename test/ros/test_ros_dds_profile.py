"""The nodes' Fast DDS profile: applied only where the user configured nothing, and big enough."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from monodepth2_ros.inference.pointcloud import POINT_STEP
from monodepth2_ros.ros.dds_profile import (
    OPT_OUT_VARIABLE,
    PROFILES_VARIABLE,
    SEGMENT_BYTES,
    TRANSPORTS_VARIABLE,
    apply_dds_profile,
    choose_dds_profile,
    describe_dds_setting,
)
from monodepth2_ros.ros.launch_plan import config_path

NAMESPACE = {"dds": "http://www.eprosima.com"}
ROOMY = lambda: 1 << 40  # noqa: E731  (free bytes in /dev/shm: plenty)


def test_with_nothing_configured_the_package_profile_is_chosen(tmp_path):
    for environ in ({}, {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}, {"RMW_IMPLEMENTATION": "rmw_fastrtps_dynamic_cpp"}):
        choice = choose_dds_profile(environ, working_folder=tmp_path, free_shared_memory=ROOMY)
        assert choice.path == config_path("fastdds_nodes.xml") and choice.path.is_file()


@pytest.mark.parametrize(
    "environ, reason",
    [
        ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, "not Fast DDS"),
        ({OPT_OUT_VARIABLE: "0"}, OPT_OUT_VARIABLE),
        ({PROFILES_VARIABLE: "/robot/dds.xml"}, "/robot/dds.xml (yours)"),
        ({TRANSPORTS_VARIABLE: "LARGE_DATA"}, "LARGE_DATA (yours)"),
        ({"ROS_DISCOVERY_SERVER": "127.0.0.1:11811"}, "ROS_DISCOVERY_SERVER=127.0.0.1:11811 (yours)"),
        ({"SKIP_DEFAULT_XML_FILE": "1"}, "SKIP_DEFAULT_XML_FILE=1 (yours)"),
    ],
)
def test_a_users_own_configuration_is_left_alone(tmp_path, environ, reason):
    before = dict(environ)
    choice = choose_dds_profile(environ, working_folder=tmp_path)
    assert choice.path is None and reason in choice.reason
    assert environ == before


def test_a_profiles_file_in_the_working_folder_counts_as_the_users(tmp_path):
    (tmp_path / "DEFAULT_FASTDDS_PROFILES.xml").write_text("<dds/>")
    choice = choose_dds_profile({}, working_folder=tmp_path)
    assert choice.path is None and "working folder" in choice.reason


def test_a_missing_profile_file_changes_nothing(tmp_path):
    choice = choose_dds_profile({}, working_folder=tmp_path, profile=tmp_path / "gone.xml")
    assert choice.path is None and "not installed" in choice.reason


def test_a_small_or_missing_dev_shm_keeps_fast_dds_defaults(tmp_path):
    for free, reason in ((64 * 1024 * 1024, "64 MB free in /dev/shm"), (None, "no /dev/shm")):
        choice = choose_dds_profile({}, working_folder=tmp_path, free_shared_memory=lambda free=free: free)
        assert choice.path is None and reason in choice.reason
    enough = choose_dds_profile({}, working_folder=tmp_path, free_shared_memory=lambda: 4 * SEGMENT_BYTES)
    assert enough.path is not None


def test_apply_names_the_profile_in_the_environment_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if choose_dds_profile({}).path is None:
        pytest.skip("this machine's /dev/shm is too small for the profile")
    environ: dict[str, str] = {}
    choice = apply_dds_profile(environ)
    assert environ == {PROFILES_VARIABLE: str(choice.path)}
    assert describe_dds_setting(environ).endswith(f"{PROFILES_VARIABLE}={choice.path}")
    assert apply_dds_profile(environ).path is None  # now it is configured: applying again changes nothing
    assert describe_dds_setting({}) == "default RMW; FASTDDS_BUILTIN_TRANSPORTS=DEFAULT"


def test_the_profile_keeps_udp_and_its_segment_holds_a_camera_frames_outputs():
    root = ET.parse(config_path("fastdds_nodes.xml")).getroot()
    descriptors = {
        item.findtext("dds:transport_id", namespaces=NAMESPACE): item
        for item in root.iterfind(".//dds:transport_descriptor", NAMESPACE)
    }
    participant = root.find(".//dds:participant", NAMESPACE)
    assert participant.get("is_default_profile") == "true"
    used = [item.text for item in participant.iterfind(".//dds:userTransports/dds:transport_id", NAMESPACE)]
    assert sorted(descriptors[name].findtext("dds:type", namespaces=NAMESPACE) for name in used) == ["SHM", "UDPv4"]
    kinds = {name: descriptors[name].findtext("dds:type", namespaces=NAMESPACE) for name in used}
    shm = next(descriptors[name] for name in used if kinds[name] == "SHM")
    segment = int(shm.findtext("dds:segment_size", namespaces=NAMESPACE))
    assert segment == SEGMENT_BYTES  # the size the /dev/shm check plans for
    width, height = 1242, 375  # KITTI: cloud (16-byte points), depth 32FC1 and colour bgr8 of one frame
    outputs = width * height * (POINT_STEP + 4 + 3)
    assert segment >= 2 * outputs  # this frame's and the next one's
