#!/usr/bin/env bash
# Create (when missing) the virtual environment and install everything into it; idempotent.
#
#   scripts/setup_env.sh [VENV_DIR]      (default: .venv)
#
# With a sourced ROS 2 (rclpy importable), the venv sees the system packages and the ROS wheels are
# not installed; otherwise the ROS 2 rclpy + message wheels come from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
python="${PYTHON:-python3}"

system_ros=0
if "$python" -c "import rclpy" >/dev/null 2>&1; then
  system_ros=1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtual environment $venv"
  if [ "$system_ros" = 1 ]; then
    "$python" -m venv --system-site-packages "$venv"
  else
    "$python" -m venv "$venv"
  fi
fi

stamp="$venv/.monodepth2_ros-installed"
fingerprint=$(cat requirements.txt requirements-ros.txt setup.py | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
  exit 0
fi

pip=("$venv/bin/python" -m pip --disable-pip-version-check)
echo "installing into $venv (torch, ROS 2 wheels, the package) ..."
"${pip[@]}" install -q --upgrade pip
"${pip[@]}" install -q -r requirements.txt
if [ "$system_ros" = 0 ]; then
  "${pip[@]}" install -q -r requirements-ros.txt
fi
"${pip[@]}" install -q --no-deps -e .
echo "$fingerprint" > "$stamp"
echo "environment ready: $venv"
