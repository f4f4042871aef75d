"""Evaluation metrics: they live in model_zoo/metrics.py, so the app scores its quick custom models (which it
fits without the trainer) with the same code and the same metrics.json format."""
from model_zoo.metrics import (CI_LEVEL, N_BOOTSTRAP, SEED, _accuracy, _balanced_accuracy, _macro_f1,  # noqa: F401
                               bootstrap_ci, compute_metrics, specificity_per_class)
