"""Which score should refuse "not a dermoscopy image" once the residual threshold only warns? No PH² here.

For each committed model with a detector, five candidate scores on its penultimate features, each thresholded at
the 99.5th percentile of the validation split (so at most 1 in 200 validation dermoscopy images is refused):

- residual: the residual norm of model_zoo.ood (the score that now flags "unlike the training images");
- vim: ViM's full score, alpha x residual - energy (Wang et al. 2022, alpha from the training features);
- energy: minus the log-sum-exp of the logits;
- relative: residual / feature norm (chosen; model_zoo.ood.SubspaceResidualDetector.relative_scores);
- relative_centred: residual / norm of the centred features.

It reports AUROC against validation and the refused share on the FIT half of the non-dermoscopy set (the
even-numbered images of trainer/ood_images.py: the half the choice was made on) and on the held-out odd half,
plus the share of test dermoscopy refused.

    python benchmarks/ood_refusal_scores.py [MODEL_ID ...] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _split_features(model, split: str, directory) -> tuple[np.ndarray, np.ndarray]:
    from trainer.data import load_images
    from trainer.evaluate import card_selection
    from trainer.ood import _features

    rows = card_selection(model.card, split, directory)
    return _features(model, load_images(model.card["dataset"], rows, model.input_size, directory, model.classes).images)


def candidate_scores(model, train: np.ndarray) -> dict:
    """name -> function(features) -> score (higher = less like dermoscopy)."""
    from scipy.special import logsumexp

    detector = model.ood_detector
    with np.load(Path(model.folder) / "head.npz") as head:            # the dense layers after the features
        layers = [(head[f"kernel_{i}"], head[f"bias_{i}"]) for i in range(sum(k.startswith("kernel_") for k in head))]
        activations = [str(a) for a in head["activations"]]

    def logits(f: np.ndarray) -> np.ndarray:
        for i, (kernel, bias) in enumerate(layers):
            f = f @ kernel + bias
            f = np.maximum(f, 0.0) if i < len(activations) and activations[i] == "relu" else f
        return f

    alpha = np.mean(np.max(logits(train), axis=1)) / np.mean(detector.scores(train))
    return {
        "residual": detector.scores,
        "vim": lambda f: alpha * detector.scores(f) - logsumexp(logits(f), axis=1),
        "energy": lambda f: -logsumexp(logits(f), axis=1),
        "relative": detector.relative_scores,
        "relative_centred": lambda f: detector.scores(f) / np.linalg.norm(f - detector.mean, axis=1),
    }


def compare(model_id: str, data_dir=None) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    import model_zoo
    from model_zoo.preprocessing import prepare_image
    from trainer.data import resolve_data_dir
    from trainer.ood import _features, held_out
    from trainer.ood_images import build_ood_images

    directory = resolve_data_dir(data_dir)
    model = model_zoo.load(model_id)
    train, val, test = (_split_features(model, s, directory) for s in ("train", "val", "test"))
    others = build_ood_images()
    ood = _features(model, np.stack([prepare_image(i, model.input_size) for i in others.values()]))
    fit = ~held_out(list(others))
    rows = []
    for name, score in candidate_scores(model, train).items():
        sv, so, st = score(val), score(ood), score(test)
        threshold = np.quantile(sv, 0.995)
        rows.append({"model": model_id, "score": name,
                     "auroc_val_vs_fit_half": roc_auc_score(np.r_[np.zeros(len(sv)), np.ones(fit.sum())],
                                                            np.r_[sv, so[fit]]),
                     "fit_half_refused": float(np.mean(so[fit] > threshold)),
                     "held_out_half_refused": float(np.mean(so[~fit] > threshold)),
                     "test_dermoscopy_refused": float(np.mean(st > threshold))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_ids", nargs="*", default=["ensemble_224_cc_ham10000", "efficientnet_lite0_ham10000",
                                                         "mobilenet_v2_ham10000", "efficientnet_lite0_224_isic_9class",
                                                         "custom_cnn_isic_9class"])
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    print("| model | score | AUROC val vs fit half | fit half refused | held-out half refused | test dermoscopy refused |")
    print("|---|---|---|---|---|---|")
    for model_id in args.model_ids:
        for r in compare(model_id, args.data_dir):
            print(f"| `{r['model']}` | {r['score']} | {r['auroc_val_vs_fit_half']:.3f} | {r['fit_half_refused']:.0%} "
                  f"| {r['held_out_half_refused']:.0%} | {r['test_dermoscopy_refused']:.1%} |", flush=True)


if __name__ == "__main__":
    main()
