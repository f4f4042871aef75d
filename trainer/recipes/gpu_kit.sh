#!/usr/bin/env bash
# Pack what a GPU machine with JAX but without TensorFlow (or network) needs to fit HAM10000 models:
# Keras' wheels (Python 3.12), the ImageNet weights, and the train and validation images only; the test
# split stays on this machine. Then run trainer/recipes/gpu_fit.sh there and --resume here (README,
# "A GPU machine without TensorFlow"). Usage: bash trainer/recipes/gpu_kit.sh [KIT_DIR]   (default .devkit)
set -euo pipefail
cd "$(dirname "$0")/../.."
KIT=${1:-.devkit}
DATA=${DERMLAB_DATA_DIR:-../shared/data}
WEIGHTS=${DERMLAB_WEIGHTS_DIR:-../shared/weights}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$KIT/whl" "$KIT/weights" "$KIT/data"
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$KIT/whl" \
  keras==3.15.1 namex==0.1.0 optree==0.20.0
cp "$WEIGHTS"/efficientnet_lite0_imagenet_no_top.h5 "$WEIGHTS"/mobilenet_v2_1.0_224_imagenet_no_top.h5 "$KIT/weights/"
PYTHONPATH=. $PY - "$DATA" "$KIT/data" <<'PYTHON'
import shutil, sys
from pathlib import Path

from trainer.data import read_split

source, target = Path(sys.argv[1]) / "ham10000", Path(sys.argv[2]) / "ham10000"
rows = read_split("ham10000").query("split in ['train', 'val']")
for path in rows["path"]:
    (target / path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / path, target / path)
print(f"{len(rows)} train and validation images in {target}")
PYTHON
du -sh "$KIT"
