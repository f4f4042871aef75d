#!/usr/bin/env bash
# Pack what a GPU machine with JAX but without TensorFlow (or network) needs to fit HAM10000 models:
# Keras' wheels (Python 3.12), the ImageNet weights, and the train and validation images only; the test
# split stays on this machine. Then run trainer/recipes/gpu_fit.sh there and --resume here (docs/training.md,
# "A GPU machine without TensorFlow"). Usage: bash trainer/recipes/gpu_kit.sh [KIT_DIR]   (default .devkit)
# DATASET=NAME packs a prepared dataset instead (python -m trainer prepare; e.g. the full-resolution HAM10000,
# docs/training.md), its split.csv and dataset.json with it.
set -euo pipefail
cd "$(dirname "$0")/../.."
KIT=${1:-.devkit}
DATA=${DERMLAB_DATA_DIR:-../shared/data}
WEIGHTS=${DERMLAB_WEIGHTS_DIR:-../shared/weights}
PY=${PYTHON:-.venv/bin/python}
DATASET=${DATASET:-ham10000}
mkdir -p "$KIT/whl" "$KIT/weights" "$KIT/data"
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$KIT/whl" \
  keras==3.15.1 namex==0.1.0 optree==0.20.0
cp "$WEIGHTS"/efficientnet_lite0_imagenet_no_top.h5 "$WEIGHTS"/mobilenet_v2_1.0_224_imagenet_no_top.h5 "$KIT/weights/"
PYTHONPATH=. $PY - "$DATA" "$KIT/data" "$DATASET" <<'PYTHON'
import shutil, sys
from pathlib import Path

from trainer.data import read_split

dataset = sys.argv[3]
source, target = Path(sys.argv[1]) / dataset, Path(sys.argv[2]) / dataset
rows = read_split(dataset, sys.argv[1]).query("split in ['train', 'val']")
for path in rows["path"]:
    (target / path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / path, target / path)
for name in ("split.csv", "dataset.json"):        # a prepared dataset's split travels with it (test images stay)
    if (source / name).is_file():
        shutil.copy2(source / name, target / name)
print(f"{len(rows)} train and validation images in {target}")
PYTHON
du -sh "$KIT"
