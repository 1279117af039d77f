#!/usr/bin/env bash
# Create the separate virtual environment for the Ultralytics baseline
# (benchmarks/ultralytics_baseline.py). It is kept apart from the project's own
# venv so that Ultralytics/torch never leak into `edge`.
#
# Usage: benchmarks/ultralytics-env.sh [VENV_DIR]   (default: benchmarks/.venv-ultralytics)
#
# All versions are pinned in ONE pip command. torch==2.13.0 resolves to the local
# CPU-only wheel (torch-2.13.0+cpu in the pip find-links directory); left unpinned,
# pip would pull a newer CUDA torch plus GBs of nvidia-* CUDA packages.
# The available torchvision 0.28.0 is a CUDA build: its compiled `nms` op does not
# load with CPU torch; ultralytics_baseline.py works around that in the harness.
# onnxruntime is not an Ultralytics dependency; it is pinned to the version the `edge`
# venv uses so both sides run the same ONNX Runtime (else Ultralytics would try to
# pip-install it at run time).
# Re-running on an existing venv is quick: pip finds everything already satisfied.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/.venv-ultralytics}"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi

"$venv/bin/python" -m pip install --quiet \
    "ultralytics==8.4.190" "torch==2.13.0" "torchvision==0.28.0" "onnxruntime==1.32.0" shapely lap

"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import sys

print("python", sys.version.split()[0])
for name in ("ultralytics", "torch", "torchvision", "onnxruntime", "opencv-python",
             "numpy", "shapely", "lap"):
    try:
        print(name, md.version(name))
    except md.PackageNotFoundError:
        print(name, "(not installed)")
PY
