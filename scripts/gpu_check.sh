#!/usr/bin/env bash
# The GPU check: every CUDA path once, in at most 8 minutes; writes OUT_DIR/gpu_check.json and
# OUT_DIR/gpu_check.md (one row per check), plus bench.json / node_bench.json when those ran.
#
#   scripts/gpu_check.sh [OUT_DIR]        (default: gpu_check_out)
#
# Runs from a fresh clone. Python, first that exists: $PYTHON; .venv/bin/python; a python3 that
# already has torch (GPU machine images); else scripts/setup_env.sh creates .venv (needs PyPI).
# On a machine without network, wheels of the missing packages in .whl/ (e.g. rosbags and its
# dependencies, `pip download -d .whl ...` elsewhere) are installed from there first.
# Without a CUDA device it stops at once with "no CUDA device" (exit 2).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check_out}"

if [ ! -e /dev/nvidiactl ] && [ ! -e /dev/nvidia0 ] && [ ! -e /proc/driver/nvidia/version ] \
  && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; }; then
  echo "gpu_check: no CUDA device (no NVIDIA driver: /dev/nvidiactl, /dev/nvidia0, /proc/driver/nvidia/version are missing)" >&2
  exit 2
fi

if [ -n "${PYTHON:-}" ]; then
  python="$PYTHON"
elif [ -x .venv/bin/python ]; then
  python=.venv/bin/python
elif command -v python3 >/dev/null 2>&1 && python3 -c "import torch" >/dev/null 2>&1; then
  python=python3
else
  scripts/setup_env.sh .venv || { echo "gpu_check: could not create .venv (scripts/setup_env.sh)" >&2; exit 1; }
  python=.venv/bin/python
fi

modules="torch torchvision numpy cv2 yaml tqdm rosbags onnx"
missing=$("$python" - $modules <<'PY'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ] && compgen -G ".whl/*.whl" >/dev/null; then
  echo "gpu_check: installing $missing from .whl/"
  site="${TMPDIR:-/tmp}/monodepth2_gpu_check_site"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
    && export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  missing=$("$python" - $modules <<'PY'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
PY
)
fi
if [ -n "$missing" ]; then
  echo "gpu_check: $python lacks: $missing (pip install -r requirements.txt, or put their wheels in .whl/)" >&2
  exit 1
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$python" -m monodepth2_ros.tools.gpu_check --out "$out"
