#!/usr/bin/env bash
# The exact commands that produced the committed zoo models (CPU, 2 cores; times in each card).
# Usage: bash trainer/recipes/zoo.sh [--data-dir DIR] [--zoo-dir DIR]   (extra flags go to every run)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}

$PY -m trainer train -a mobilenet_v2 -d ham10000 --model-id mobilenet_v2_ham10000 \
  --display-name "MobileNetV2 (ImageNet, fine-tuned) - HAM10000 7-class" \
  --input-size 192 --head-epochs 2 --epochs 12 --fine-tune-fraction 0.7 --fine-tune-learning-rate 3e-4 \
  --label-smoothing 0.1 --augment default --batch-size 32 --set-default --verbose 2 "$@"

$PY -m trainer train -a custom_cnn -d isic_9class --model-id custom_cnn_isic_9class \
  --display-name "Custom CNN (from scratch) - ISIC 9-class" \
  --input-size 128 --epochs 25 --learning-rate 1e-3 --early-stopping-patience 6 --augment default --batch-size 32 --verbose 2 "$@"

# added on 2026-11-27 (EfficientNet-Lite0: 72 min on 2 CPU cores; the ensemble: a few minutes, no training)
$PY -m trainer train -a efficientnet_lite0 -d ham10000 --model-id efficientnet_lite0_ham10000 \
  --display-name "EfficientNet-Lite0 (ImageNet, fine-tuned) - HAM10000 7-class" \
  --input-size 192 --head-epochs 2 --epochs 12 --fine-tune-fraction 0.7 --fine-tune-learning-rate 3e-4 \
  --label-smoothing 0.1 --augment default --batch-size 32 --verbose 2 "$@"

# The same day these two were joined into `ensemble_ham10000` (192 px; `trainer ensemble`), exported for LiteRT and
# made the default, until the 224 px ensemble below (also 2026-11-27). Superseded on validation by
# ensemble_224_cc_ham10000, it has since left the zoo to keep the repository small.

# 2026-11-27: patient details (age, sex, site) fused with each HAM10000 model; seconds each, no training
for model in mobilenet_v2_ham10000 efficientnet_lite0_ham10000; do
  $PY -m trainer metadata "$model" "$@"
done

# 2026-11-27: the default model. Two members at 224 px, trained with --augment fast (each about 50-85 min on
# 2 CPU cores), ranked on validation, joined, exported for LiteRT. The members stay outside the repository
# (use --zoo-dir to keep them elsewhere); the ensemble file holds their weights.
$PY -m trainer train -a efficientnet_lite0 -d ham10000 --model-id efficientnet_lite0_224_ham10000 \
  --display-name "EfficientNet-Lite0 (ImageNet, fine-tuned, 224 px) - HAM10000 7-class" \
  --input-size 224 --head-epochs 2 --epochs 12 --fine-tune-fraction 0.7 --fine-tune-learning-rate 3e-4 \
  --label-smoothing 0.1 --augment fast --batch-size 32 --verbose 2 "$@"

$PY -m trainer train -a mobilenet_v2 -d ham10000 --model-id mobilenet_v2_224_cc_ham10000 \
  --display-name "MobileNetV2 (ImageNet, fine-tuned, 224 px, colour constancy) - HAM10000 7-class" \
  --input-size 224 --head-epochs 2 --epochs 12 --fine-tune-fraction 0.7 --fine-tune-learning-rate 3e-4 \
  --label-smoothing 0.1 --augment fast --batch-size 32 --color-constancy --verbose 2 "$@"

$PY -m trainer ensemble efficientnet_lite0_224_ham10000,mobilenet_v2_224_cc_ham10000 --model-id ensemble_224_cc_ham10000 \
  --display-name "Ensemble: EfficientNet-Lite0 + MobileNetV2 (colour constancy) at 224 px - HAM10000 7-class" "$@"
$PY -m trainer metadata ensemble_224_cc_ham10000 "$@"
$PY -m trainer export ensemble_224_cc_ham10000 "$@"
$PY -m trainer set-default ensemble_224_cc_ham10000 "$@"

# 2026-11-28: the 9-class model, replacing MobileNetV2 at 192 px (validation balanced accuracy 0.733 against 0.637;
# 41 min on 2 CPU cores shared with another training). Early stopping ended it at fine-tuning epoch 14.
$PY -m trainer train -a efficientnet_lite0 -d isic_9class --model-id efficientnet_lite0_224_isic_9class \
  --display-name "EfficientNet-Lite0 (ImageNet, fine-tuned, 224 px) - ISIC 9-class" \
  --input-size 224 --head-epochs 3 --epochs 15 --fine-tune-fraction 0.7 --fine-tune-learning-rate 3e-4 \
  --label-smoothing 0.1 --augment fast --batch-size 32 --max-minutes 45 --verbose 2 "$@"

# LiteRT for every committed model (model.tflite: probabilities, OOD features, the CAM layers' feature maps; head.npz:
# the dense layers after them), so the app serves predictions and Grad-CAM, Grad-CAM++ and Score-CAM without
# TensorFlow. Each export is checked against Keras and tf-keras-vis before it is published. A few minutes each.
for model in custom_cnn_isic_9class efficientnet_lite0_224_isic_9class mobilenet_v2_ham10000 efficientnet_lite0_ham10000 \
             ensemble_224_cc_ham10000; do
  $PY -m trainer export "$model" "$@"
done
