"""The Fast DDS profile of the nodes' own processes: a shared-memory segment that holds their outputs.

Fast DDS's default shared-memory segment is 512 KB, so every depth image, colour image and cloud of
a real camera leaves the node in fragments; a reader that falls behind loses some, and the reliable
repair then holds the topic for seconds (the depth node in its own process at 1242x375: p50 87 ms,
p95 2.0 s from image to depth and cloud). Each participant writes its samples into its own segment,
so a larger one in the nodes' processes (``config/fastdds_nodes.xml``) carries their outputs whole
and leaves every peer as it is: drivers and viewers on default settings still share shared memory
and UDP with the nodes (unlike ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``, which must be set on both
sides).

The profile is applied only where the user has configured nothing: another RMW, a profiles file of
their own (named by the environment or ``DEFAULT_FASTDDS_PROFILES.xml`` in the working folder),
builtin transports chosen by name, a discovery server, ``SKIP_DEFAULT_XML_FILE`` or
``MONODEPTH2_DDS_PROFILE=0`` leave Fast DDS alone. It must be in the environment before the
process's first participant exists (before ``rclpy.init``).
Only the processes that publish images and clouds take it (the depth node, ``monodepth2 run``), and
only where ``/dev/shm`` has room for it four times over: Fast DDS creates the segment as a sparse
file, so a small ``/dev/shm`` (64 MB in a default Docker container) would fail when the segment
fills, not when it is made. Plain Python, no ROS import.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from monodepth2_ros.ros.launch_plan import config_path

__all__ = [
    "PROFILE_FILE",
    "PROFILES_VARIABLE",
    "TRANSPORTS_VARIABLE",
    "OPT_OUT_VARIABLE",
    "SEGMENT_BYTES",
    "DdsProfileChoice",
    "choose_dds_profile",
    "apply_dds_profile",
    "describe_dds_setting",
]

PROFILE_FILE = "fastdds_nodes.xml"
PROFILES_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
TRANSPORTS_VARIABLE = "FASTDDS_BUILTIN_TRANSPORTS"
RMW_VARIABLE = "RMW_IMPLEMENTATION"
OPT_OUT_VARIABLE = "MONODEPTH2_DDS_PROFILE"
# Fast DDS also loads this file from the working folder when no profiles file is named.
WORKING_FOLDER_PROFILES = "DEFAULT_FASTDDS_PROFILES.xml"
# Other signs of a Fast DDS set up by hand: a discovery server, or XML loading turned off.
USER_SETUP_VARIABLES = ("ROS_DISCOVERY_SERVER", "SKIP_DEFAULT_XML_FILE")
_FAST_DDS_RMW_PREFIX = "rmw_fastrtps"
SEGMENT_BYTES = 32 * 1024 * 1024  # config/fastdds_nodes.xml's segment_size
# Free /dev/shm the profile needs: room for a few such segments (say two node processes) and the rest.
SHARED_MEMORY_NEEDED = 4 * SEGMENT_BYTES
SHARED_MEMORY_FOLDER = Path("/dev/shm")
_MIB = 1024 * 1024


def _free_shared_memory(folder: Path = SHARED_MEMORY_FOLDER) -> int | None:
    """Free bytes in ``folder`` (None where there is no such folder, e.g. not Linux)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


@dataclass(frozen=True)
class DdsProfileChoice:
    """The profile to put in the environment (None: leave Fast DDS as it is) and why, for the log."""

    path: Path | None
    reason: str


def choose_dds_profile(
    environ: MutableMapping[str, str],
    working_folder: Path | None = None,
    profile: Path | None = None,
    free_shared_memory: Callable[[], int | None] = _free_shared_memory,
) -> DdsProfileChoice:
    """What :func:`apply_dds_profile` would do in ``environ`` (reads, never writes).

    Args:
        working_folder: where Fast DDS would look for ``DEFAULT_FASTDDS_PROFILES.xml`` (None: the
            current folder).
        profile: the package's profile file (None: ``config/fastdds_nodes.xml``).
        free_shared_memory: free bytes in ``/dev/shm`` (None: unknown, the profile is not taken).
    """
    rmw = environ.get(RMW_VARIABLE, "")
    if rmw and not rmw.startswith(_FAST_DDS_RMW_PREFIX):
        return DdsProfileChoice(None, f"{RMW_VARIABLE}={rmw}: not Fast DDS")
    if environ.get(OPT_OUT_VARIABLE, "").strip() == "0":
        return DdsProfileChoice(None, f"{OPT_OUT_VARIABLE}=0")
    if environ.get(PROFILES_VARIABLE):
        return DdsProfileChoice(None, f"{PROFILES_VARIABLE}={environ[PROFILES_VARIABLE]} (yours)")
    for variable in (TRANSPORTS_VARIABLE, *USER_SETUP_VARIABLES):
        if environ.get(variable):
            return DdsProfileChoice(None, f"{variable}={environ[variable]} (yours)")
    if ((working_folder or Path.cwd()) / WORKING_FOLDER_PROFILES).is_file():
        return DdsProfileChoice(None, f"{WORKING_FOLDER_PROFILES} in the working folder (yours)")
    path = profile if profile is not None else config_path(PROFILE_FILE)
    if not path.is_file():
        return DdsProfileChoice(None, f"{PROFILE_FILE} not installed")
    free = free_shared_memory()
    if free is None or free < SHARED_MEMORY_NEEDED:
        room = "no /dev/shm" if free is None else f"{free // _MIB} MB free in /dev/shm"
        needed = SHARED_MEMORY_NEEDED // _MIB
        return DdsProfileChoice(None, f"{room}: Fast DDS's 512 KB segment kept (give /dev/shm {needed} MB)")
    return DdsProfileChoice(path, f"{path.name}: 32 MB shared-memory segment for the outputs")


def apply_dds_profile(environ: MutableMapping[str, str] | None = None) -> DdsProfileChoice:
    """Name the nodes' profile in ``environ`` (default ``os.environ``) unless the user configured Fast DDS."""
    environ = os.environ if environ is None else environ
    choice = choose_dds_profile(environ)
    if choice.path is not None:
        environ[PROFILES_VARIABLE] = str(choice.path)
    return choice


def describe_dds_setting(environ: MutableMapping[str, str] | None = None) -> str:
    """The Fast DDS configuration in effect, for the diagnostics: the profiles file or the builtin transports."""
    environ = os.environ if environ is None else environ
    rmw = environ.get(RMW_VARIABLE, "") or "default RMW"
    if environ.get(PROFILES_VARIABLE):
        return f"{rmw}; {PROFILES_VARIABLE}={environ[PROFILES_VARIABLE]}"
    return f"{rmw}; {TRANSPORTS_VARIABLE}={environ.get(TRANSPORTS_VARIABLE) or 'DEFAULT'}"
