"""model_zoo.history_views: history.csv as training curves, phase starts and the kept epoch."""
from __future__ import annotations

from model_zoo import history_views


def test_history_long_and_phase_starts():
    history = [
        {"epoch": 1.0, "phase": "head", "loss": 1.2, "val_loss": 1.1, "accuracy": 0.5, "val_accuracy": 0.55,
         "balanced_accuracy": 0.4, "val_balanced_accuracy": 0.45, "learning_rate": 0.001},
        {"epoch": 2.0, "phase": "head", "loss": 1.0, "val_loss": "", "accuracy": 0.6, "val_accuracy": 0.6},
        {"epoch": 3.0, "phase": "finetune", "loss": 0.8, "val_loss": 0.9, "accuracy": 0.7, "val_accuracy": 0.65},
    ]
    rows = history_views.history_long(history)
    assert {r["Metric"] for r in rows} == {"Loss", "Accuracy", "Balanced accuracy"}
    assert {r["Set"] for r in rows} == {"training", "validation"}
    assert not any(r["Epoch"] == 2 and r["Metric"] == "Loss" and r["Set"] == "validation" for r in rows)
    assert len(rows) == 6 + 3 + 4
    assert history_views.phase_starts(history) == [{"Epoch": 2.5, "Phase": "finetune"}]
    assert history_views.history_long([]) == [] and history_views.phase_starts([]) == []


def test_best_epoch_maps_the_phase_epoch_to_the_history_numbering():
    history = [{"epoch": float(i), "phase": "head" if i <= 3 else "finetune"} for i in range(1, 8)]
    assert history_views.best_epoch(history, {"phase": "finetune", "epoch": 2, "value": 0.6}) == 5
    assert history_views.best_epoch(history, {"phase": "head", "epoch": 3}) == 3
    assert history_views.best_epoch(history, {"phase": "finetune", "epoch": 9}) is None
    assert history_views.best_epoch(history, None) is None and history_views.best_epoch([], {"phase": "head", "epoch": 1}) is None

