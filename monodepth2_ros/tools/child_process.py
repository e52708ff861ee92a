"""Child processes of the tools (nodes, camera publishers): stopped the way a terminal stops them."""

from __future__ import annotations

import signal
import subprocess

__all__ = ["stop_process"]


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """Ctrl-C ``process`` (a node shuts down cleanly on SIGINT), kill it after ``timeout_s``; its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)
