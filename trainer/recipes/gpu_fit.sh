#!/usr/bin/env bash
# On a GPU machine with JAX but no TensorFlow: fit four HAM10000 models in parallel on one GPU with Keras'
# JAX backend, from the kit that gpu_kit.sh packs. Each run stops cleanly by --max-minutes and is tarred
# into $OUT; publish each here with the same arguments (below) plus --resume and --run-dir pointing at it.
# Usage: OUT=/some/dir bash trainer/recipes/gpu_fit.sh [KIT_DIR]   (default .devkit)
# DATASET=NAME fits a prepared dataset packed by DATASET=NAME gpu_kit.sh (model ids end in _NAME); EXTRA adds or
# overrides options (e.g. EXTRA="--input-size 384" for full-resolution images; the last value given wins).
DATASET=${DATASET:-ham10000}
KIT=${1:-.devkit}
OUT=${OUT:?set OUT to a folder for the results}
KERAS_BACKEND=jax python3 -c "import keras" 2>/dev/null || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$KIT"/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax XLA_PYTHON_CLIENT_MEM_FRACTION=0.2 PYTHONUNBUFFERED=1
nvidia-smi -L; python3 -c "import jax, keras; print(jax.__version__, keras.__version__, jax.devices())"
COMMON="-d $DATASET --input-size 224 --color-constancy --augment default --label-smoothing 0.1 --head-epochs 2
  --learning-rate 1e-3 --fine-tune-learning-rate 3e-4 --fine-tune-fraction 1.0 --early-stopping-patience 8
  --batch-size 32 --epochs 20 --data-dir $KIT/data --imagenet-weights $KIT/weights --no-tensorboard
  --verbose 2 --max-minutes ${MAX_MINUTES:-7} ${EXTRA:-}"
fit() {
  id=$1; shift
  timeout "${HARD_S:-570}" python3 -m trainer train --model-id "$id" --run-dir "/tmp/runs/$id" $COMMON "$@" > "$OUT/$id.log" 2>&1
  echo "$id exit $?"
  tar -C /tmp/runs -cf "$OUT/$id.tar" --exclude='backup_*' "$id"
}
(while sleep 45; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done) &
fit efficientnet_lite0_224_gpu_$DATASET -a efficientnet_lite0 &
fit mobilenet_v2_224_gpu_$DATASET -a mobilenet_v2 &
fit efficientnet_lite0_224_gpu_mixup_$DATASET -a efficientnet_lite0 --mix mixup &
fit efficientnet_lite0_224_gpu_balsamp_$DATASET -a efficientnet_lite0 --balance sampling &
wait %2 %3 %4 %5; kill %1
for f in "$OUT"/*.log; do echo "== $f"; grep -E "val_bal|INFO trainer|rror" "$f" | tail -6; done
ls -la "$OUT"
