"""Command line: `python -m trainer {prepare,train,evaluate,tune,calibrate,...,export,report,examples,list,set-default} --help`.

Each subcommand parses its arguments into plain values and calls an importable function.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from .config import TrainConfig
from .data import DATASETS, DataError
from .warm_start import WarmStartError


DATASET_HELP = "isic_9class, ham10000, or the name of a dataset made by `python -m trainer prepare` (in --data-dir)"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder holding isic_9class/, ham10000/ and prepared datasets (default: $DERMLAB_DATA_DIR, then ../shared/data)")
    parser.add_argument("--zoo-dir", help="model zoo folder (default: $DERMLAB_ZOO, then model_zoo/models)")


def _train_parser(sub) -> None:
    from .architectures import list_architectures

    p = sub.add_parser("train", help="train a model and publish it to the zoo",
                       description="Train an architecture on a dataset; evaluates on validation and test and "
                                   "writes the model folder to the zoo atomically.")
    p.add_argument("--architecture", "-a", required=True, choices=list_architectures())
    p.add_argument("--dataset", "-d", required=True, type=_dataset, help=DATASET_HELP)
    p.add_argument("--model-id", help="zoo folder name (default: ARCHITECTURE_DATASET)")
    p.add_argument("--display-name")
    _add_common(p)
    p.add_argument("--run-dir", help="checkpoints, logs, TensorBoard (default: runs/MODEL_ID)")
    p.add_argument("--imagenet-weights", default="auto",
                   help="'auto' (../shared/weights, else keras download if online), a folder, 'imagenet', or 'none'")
    p.add_argument("--input-size", type=int, help="square input side in pixels (default: the architecture's)")
    p.add_argument("--batch-size", type=int, default=32, help="per replica")
    p.add_argument("--head-epochs", type=int, default=3, help="phase 1, frozen backbone (pretrained models)")
    p.add_argument("--epochs", type=int, default=10, help="phase 2 fine-tuning, or all epochs from scratch")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--fine-tune-learning-rate", type=float, default=1e-4)
    p.add_argument("--fine-tune-fraction", type=float, default=0.5, help="share of backbone layers unfrozen in phase 2")
    p.add_argument("--lr-schedule", choices=("cosine", "plateau"), default="cosine")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--loss", choices=("crossentropy", "focal"), default="crossentropy",
                   help="focal: Keras' categorical focal loss, which down-weights images the model already gets right")
    p.add_argument("--focal-gamma", type=float, default=2.0, help="focal loss focusing parameter (0 = cross-entropy)")
    p.add_argument("--dropout", type=float)
    p.add_argument("--dense-units", type=int)
    p.add_argument("--augment", choices=("none", "fast", "fast_light", "fast_strong", "light", "default", "strong"),
                   default="fast", help="fast*: fused transforms (default); light/default/strong: the same with Keras layers")
    p.add_argument("--balance", choices=("none", "class_weight", "sampling"), default="class_weight")
    p.add_argument("--mix", choices=("none", "mixup", "cutmix"), default="none",
                   help="mix pairs of training images and their labels per batch (MixUp or CutMix)")
    p.add_argument("--hair", type=_share, default=0.0, metavar="P",
                   help="draw dark hair-like strands over a share P (0..1) of the training images")
    p.add_argument("--device-shift", type=_share, default=0.0, metavar="P",
                   help="give a share P (0..1) of the training images another dermatoscope's look: round field "
                        "with dark corners, vignetting, bubbles, blur, scale, colour cast (augment.DeviceShift)")
    p.add_argument("--fov-crop", action="store_true",
                   help="cut images to the dermatoscope's round field of view (the app then does the same)")
    p.add_argument("--color-constancy", action="store_true",
                   help="shades-of-grey colour constancy inside the model (mobilenet_v2, efficientnet_lite0, ...)")
    p.add_argument("--early-stopping-patience", type=int, default=6)
    p.add_argument("--include-label-conflicts", action="store_true", help="train on isic_9class images flagged label_conflict")
    p.add_argument("--extra-train", choices=DATASETS,
                   help="add this dataset's images to training, relabelled; lesions of the validation and test "
                        "splits left out (isic_9class: ham10000)")
    p.add_argument("--extra-per-class", type=int, help="at most N extra images per class")
    p.add_argument("--exclude-lesions-of", choices=DATASETS,
                   help="leave out of training every lesion that this dataset holds out for validation and test, "
                        "so the model can start a model for it with --init-from")
    p.add_argument("--init-from", metavar="MODEL_ID",
                   help="start from the backbone of this zoo model (same architecture) instead of ImageNet's; "
                        "it must be trained on --dataset itself or with --exclude-lesions-of DATASET")
    p.add_argument("--limit-per-class", type=int, help="use at most N images per class and split (quick runs)")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_float16 (fast on recent GPUs)")
    p.add_argument("--fit-only", action="store_true",
                   help="fit and keep the best weights in --run-dir, but do not evaluate or publish (implied on "
                        "Keras' jax/torch backend): finish with the same command plus --resume where TensorFlow is")
    p.add_argument("--max-minutes", type=float,
                   help="stop training cleanly (best weights kept) before this many minutes are spent "
                        "(Model.fit runs; not the multi-worker loop)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--set-default", action="store_true", help="make this the app's default model")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--no-tensorboard", action="store_true")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    p.add_argument("--notes", default="")


def _prepare_parser(sub) -> None:
    from .sources import FORMATS

    p = sub.add_parser("prepare", help="turn a public download or any labelled folder into a dataset to train on",
                       description="Check SOURCE (columns, labels, images that cannot be opened, metadata rows "
                                   "without an image, empty or one-image classes), remove exact duplicates, make "
                                   "grouped, stratified train/validation/test splits and write DATA_DIR/NAME "
                                   "atomically. Then: python -m trainer train -a ARCH -d NAME --data-dir DATA_DIR.",
                       epilog="formats: ham10000 = HAM10000_metadata.csv + HAM10000_images_part_1/ and _part_2/; "
                              "isic_9class = the Kaggle 'Skin cancer ISIC' Train/<class>/ and Test/<class>/; "
                              "isic_challenge = images + a one-hot ground-truth CSV (image,MEL,NV,...) + an optional "
                              "metadata CSV; folders = one folder per class.")
    p.add_argument("source", help="the downloaded (unzipped) folder")
    p.add_argument("--format", "-f", required=True, choices=list(FORMATS), dest="fmt")
    p.add_argument("--name", "-n", required=True, help="the new dataset's name (not isic_9class, ham10000 or ph2)")
    p.add_argument("--max-side", type=int, help="reduce images whose longer side is larger to N px (JPEG); "
                                                "default: copy every image byte for byte")
    p.add_argument("--data-dir", help="where to write NAME/ (default: $DERMLAB_DATA_DIR, then ../shared/data)")
    p.add_argument("--ground-truth", help="isic_challenge: the one-hot CSV (default: the *GroundTruth*.csv in SOURCE)")
    p.add_argument("--metadata", help="isic_challenge: the metadata CSV (default: the *Metadata*.csv in SOURCE, if any)")
    p.add_argument("--skip-bad", action="store_true", help="leave out images that cannot be opened and metadata rows "
                                                           "without an image (listed in skipped.csv) instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="replace an existing prepared dataset of that name")
    p.add_argument("--seed", type=int, default=42, help="seed of the split")


def _dataset(text: str) -> str:
    """A built-in dataset or a name a prepared one can have; whether it exists is checked with the data folder."""
    from model_zoo.datadir import NAME_PATTERN, test_only_problem

    problem = test_only_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    if text in DATASETS or NAME_PATTERN.match(text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is neither {' nor '.join(DATASETS)} nor a prepared dataset's name")


def _share(text: str) -> float:
    """A share 0..1, refused while parsing (not after the images are decoded)."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, not {text}")
    return value


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The argparse namespace -> TrainConfig (only known fields)."""
    fields = TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["extra"] = {"tensorboard": not args.no_tensorboard}
    return TrainConfig(**values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Train and evaluate dermoscopy classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)
    _prepare_parser(sub)
    _train_parser(sub)

    p = sub.add_parser("launch", help="train on several workers (MultiWorkerMirroredStrategy via TF_CONFIG)",
                       description="Set TF_CONFIG and run a train command as one worker of a cluster (--index, on "
                                   "each host), or start every worker on this machine (--local N, or --workers "
                                   "with only localhost). Worker 0 is the chief and alone publishes to the zoo.",
                       epilog="example: python -m trainer launch --local 2 -- train -a custom_cnn -d isic_9class")
    p.add_argument("--workers", help="comma-separated HOST:PORT of every worker, the same list on every host")
    p.add_argument("--local", type=int, metavar="N", help="N workers on localhost, on free ports")
    p.add_argument("--index", type=int, help="this host's position in --workers (0 = chief); omit to start all "
                                             "workers here (localhost only)")
    p.add_argument("train_command", nargs=argparse.REMAINDER, help="-- train ARGS...")

    p = sub.add_parser("evaluate", help="re-evaluate a zoo model (metrics.json, predictions.csv)",
                       description="Recompute a zoo model's validation and test metrics from the data.")
    p.add_argument("model_id")
    _add_common(p)
    p.add_argument("--bootstrap", type=int, default=1000)

    p = sub.add_parser("tune", help="KerasTuner search scored on validation only",
                       description="Hyperparameter search (learning rate, dropout, dense width, image size, "
                                   "unfrozen depth) with KerasTuner; scored on the validation split. Pretrained "
                                   "backbones train the head first (--head-epochs), then fine-tune for --epochs.")
    p.add_argument("--architecture", "-a", required=True)
    p.add_argument("--dataset", "-d", required=True, type=_dataset, help=DATASET_HELP)
    _add_common(p)
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--limit-per-class", type=int, help="training images per class (validation stays whole)")
    p.add_argument("--directory", default="runs/tuner")
    p.add_argument("--sizes", default="128,160,192", help="comma-separated input sizes to try")
    p.add_argument("--color-constancy", action="store_true", help="shades-of-grey layer, as in train")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--head-epochs", type=int, default=1, help="frozen-backbone epochs before each trial's fine-tuning")
    p.add_argument("--initial-points", type=int, help="random trials before the Bayesian ones "
                                                       "(default: KerasTuner's, 3 per hyperparameter)")

    p = sub.add_parser("calibrate", help="fit temperature, abstention and melanoma thresholds on validation",
                       description="From a zoo model's saved validation predictions: temperature scaling, an "
                                   "abstention threshold and a melanoma operating point; measured once on test.")
    p.add_argument("model_id")
    p.add_argument("--zoo-dir")
    p.add_argument("--bootstrap", type=int, default=1000)

    p = sub.add_parser("clinical", help="clinical views from saved predictions: PR curves, benign vs malignant, "
                                        "per-class and lesion-level CIs, conformal sets",
                       description="From zoo models' predictions.csv (no network is run): precision-recall curves, "
                                   "benign-versus-malignant AUROC and operating points, per-class bootstrap intervals "
                                   "(by lesion where lesion ids exist) and split conformal prediction sets fitted on "
                                   "validation; stored in metrics.json[\"clinical\"]. card.json is not touched.")
    p.add_argument("model_ids", nargs="*", metavar="MODEL_ID")
    p.add_argument("--all", action="store_true", help="every model in the zoo")
    p.add_argument("--zoo-dir")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--coverage", type=float, default=0.90, help="conformal target coverage (default 0.90)")

    from .external import add_parser as add_external

    add_external(sub)

    p = sub.add_parser("subgroups", help="test metrics by subgroup: sex, age band, body site (HAM10000); image source (9-class)",
                       description="Per-subgroup test metrics with counts and CIs, stored in metrics.json.")
    p.add_argument("model_id")
    _add_common(p)

    p = sub.add_parser("ood", help="fit and evaluate the 'not a dermoscopy image' detector",
                       description="Residual (ViM-style) detector on training features: 'unlike training' and 'not "
                                   "dermoscopy' thresholds on validation, AUROC on the dermoscopy test split vs a "
                                   "built-in set of non-dermoscopy images.")
    p.add_argument("model_id")
    _add_common(p)

    p = sub.add_parser("ensemble", help="join zoo models into an ensemble, published as a zoo model of its own",
                       description="Average the logits of several zoo models of one dataset (same classes and input "
                                   "size); evaluate, calibrate and fit the OOD detector like a trained model.")
    p.add_argument("members", help="comma-separated zoo model ids; an ensemble counts as its members")
    p.add_argument("--model-id", help="the new zoo folder (required unless --rank)")
    p.add_argument("--rank", action="store_true",
                   help="build nothing: score every combination of the members on validation, best first")
    p.add_argument("--check-against", metavar="REFERENCE",
                   help="with --rank: comma-separated members of a reference ensemble; estimate, on halves of the "
                        "validation lesions, how much of the ranking winner's lead over it is real")
    p.add_argument("--display-name")
    p.add_argument("--set-default", action="store_true")
    p.add_argument("--bootstrap", type=int, default=1000)
    _add_common(p)

    p = sub.add_parser("tta", help="measure test-time augmentation against plain prediction on test",
                       description="Test metrics and calibration with and without 8-view test-time augmentation.")
    p.add_argument("model_id")
    _add_common(p)

    p = sub.add_parser("metadata", help="fit the patient-details model (age, sex, site) fused with a HAM10000 model",
                       description="Logistic regression on the training split's metadata, pooled with the image "
                                   "model's probabilities; the fusion weight and temperature are chosen on validation.")
    p.add_argument("model_id")
    _add_common(p)
    p.add_argument("--bootstrap", type=int, default=1000)

    p = sub.add_parser("export", help="write model.tflite: serve the model without TensorFlow (LiteRT)",
                       description="Convert a zoo model to LiteRT with its probabilities, features and Grad-CAM "
                                   "class maps; checked against Keras on validation images before it is published.")
    p.add_argument("model_id")
    _add_common(p)

    p = sub.add_parser("quality", help="choose the image-quality gate's thresholds on validation; judge hair removal",
                       description="Measure sharpness, exposure and size of the validation and test images, choose "
                                   "thresholds on validation, count test images flagged; write "
                                   "model_zoo/quality_thresholds.json (trainer/quality.py).")
    p.add_argument("--data-dir")
    p.add_argument("--hair-model", help="zoo model for the hair-removal check (default: the app's default model)")

    p = sub.add_parser("report", help="write docs/results.md from the zoo's metrics",
                       description="Regenerate docs/results.md from every zoo model's card and metrics.json.")
    p.add_argument("--zoo-dir")
    p.add_argument("--output", default="docs/results.md")

    p = sub.add_parser("splits", help="regenerate trainer/splits/*.csv from the data manifests",
                       description="Rewrite the saved splits (deterministic, fixed seed).")
    p.add_argument("--data-dir")

    p = sub.add_parser("examples", help="write the bundled example cases (assets/examples) from the test splits",
                       description="Draw a few test-split images per class of each dataset at random (fixed seed), "
                                   "copy them byte for byte with manifest.csv and LICENSE.md, and replace the "
                                   "examples folder atomically; refused if it would exceed 3 MB.")
    p.add_argument("--data-dir", help="folder holding isic_9class/ and ham10000/ (default: $DERMLAB_DATA_DIR, then ../shared/data)")
    p.add_argument("--per-class", type=int, default=4, help="images per class and dataset (all of a class that has fewer)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", help="the examples folder (default: assets/examples in the repository)")

    p = sub.add_parser("list", help="list architectures and zoo models", description="List architectures and zoo models.")
    p.add_argument("--zoo-dir")

    p = sub.add_parser("set-default", help="choose the app's default model", description="Set zoo.json's default model.")
    p.add_argument("model_id")
    p.add_argument("--zoo-dir")
    return parser


def print_selection_check(check: dict) -> None:
    """The ranking's selection check, in words."""
    print(f"\nSelection check ({check['rounds']} random halvings of the validation lesions, each half choosing "
          f"once among {check['combinations']} combinations):")
    print(f"  the chosen combination scores {check['chosen_on_own_half']:.3f} on the half that chose it and "
          f"{check['chosen_on_other_half']:.3f} on the other half (optimism {check['optimism']:+.3f})")
    print(f"  the reference {check['reference']} scores {check['reference_on_other_half']:.3f} there: held-out gain "
          f"{check['held_out_gain']:+.3f} (sd {check['held_out_gain_sd']:.3f} over {check['choices']} choices)")
    print("  chosen most often: " + "; ".join(f"{combo} ({n}x)" for combo, n in check["most_chosen"]))


def _clinical(args: argparse.Namespace) -> int:
    """`clinical MODEL_ID... | --all`: one summary line per model; a model that vanished meanwhile is skipped."""
    from pathlib import Path

    from model_zoo import store
    from model_zoo.zoo import ModelUnavailable

    from .clinical import clinical_for_model, summary_line

    root = Path(args.zoo_dir) if args.zoo_dir else None
    if args.all == bool(args.model_ids):
        print("error: name MODEL_IDs or pass --all (not both)", file=sys.stderr)
        return 2
    if not 0 < args.coverage < 1:
        print("error: --coverage must be between 0 and 1", file=sys.stderr)
        return 2
    model_ids = [f.name for f in store.model_folders(root)] if args.all else args.model_ids
    missing = 0
    for model_id in model_ids:
        try:
            result = clinical_for_model(model_id, root, args.bootstrap, args.coverage)
        except (ModelUnavailable, FileNotFoundError) as exc:   # e.g. deleted by someone else meanwhile
            print(f"skipped {model_id}: {exc}", file=sys.stderr)
            missing += 1
            continue
        print(summary_line(model_id, result), flush=True)
    return 2 if missing and not args.all else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (DataError, FileNotFoundError, WarmStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.command == "prepare":
        import errno
        import logging

        from .prepare import prepare
        from .sources import PrepareError

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            folder = prepare(args.source, args.fmt, args.name, args.data_dir, args.max_side, args.skip_bad,
                             args.overwrite, args.seed, args.ground_truth, args.metadata)
        except PrepareError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            print(f"error: cannot write there ({exc}); pass --data-dir with a folder you can write to",
                  file=sys.stderr)
            return 2
        print(json.loads((folder / "dataset.json").read_text())["classes"])
        print(folder)
        return 0
    if args.command == "train":
        from .train import run

        folder = run(config_from_args(args))
        if folder:
            print(folder)
        return 0
    if args.command == "launch":
        from .launch import launch, plan

        try:
            workers, command = plan(args.train_command, args.workers, args.local, args.index)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return launch(workers, command, args.index)
    if args.command == "evaluate":
        from .evaluate import evaluate_model

        metrics = evaluate_model(args.model_id, args.data_dir, Path(args.zoo_dir) if args.zoo_dir else None, args.bootstrap)
        print(json.dumps({k: {m: metrics[k][m] for m in ("accuracy", "balanced_accuracy", "macro_f1")}
                          for k in ("validation", "test")}, indent=2))
        return 0
    if args.command == "tune":
        from .tune import tune

        best = tune(args.architecture, args.dataset, data_dir=args.data_dir, max_trials=args.max_trials,
                    epochs=args.epochs, limit_per_class=args.limit_per_class, directory=args.directory,
                    sizes=[int(s) for s in args.sizes.split(",")], color_constancy=args.color_constancy,
                    label_smoothing=args.label_smoothing, initial_points=args.initial_points,
                    head_epochs=args.head_epochs)
        print(json.dumps(best, indent=2))
        return 0
    if args.command == "calibrate":
        from .calibrate import calibrate_model

        result = calibrate_model(args.model_id, Path(args.zoo_dir) if args.zoo_dir else None, args.bootstrap)
        print(json.dumps({"temperature": result["temperature"], "test": {k: v for k, v in result["test"].items()
                                                                          if k.startswith(("ece", "nll"))},
                          "abstention": {k: result["abstention"][k] for k in ("threshold", "coverage", "test")}},
                         indent=2))
        return 0
    if args.command == "clinical":
        return _clinical(args)
    if args.command == "external":
        from .external import run_cli

        return run_cli(args)
    if args.command == "subgroups":
        from .subgroups import subgroups_for_model

        result = subgroups_for_model(args.model_id, args.data_dir, Path(args.zoo_dir) if args.zoo_dir else None)
        if result is None:
            print("error: subgroups exist for HAM10000 and ISIC 9-class models, and for prepared datasets whose "
                  "manifest records sex, age or body site", file=sys.stderr)
            return 2
        for column, groups in result.items():
            for name, row in groups.items():
                print(f"{column:12s} {name:26s} n={row['n']:4d} bal.acc={row['balanced_accuracy']:.3f}"
                      f"{' (small)' if row['small'] else ''}")
        return 0
    if args.command == "ood":
        from .ood import fit_ood_for_model

        result = fit_ood_for_model(args.model_id, args.data_dir, Path(args.zoo_dir) if args.zoo_dir else None)
        print(json.dumps({k: v for k, v in result.items() if k not in ("accepted_ood", "ood_kinds")}, indent=2))
        print("non-dermoscopy images accepted:", ", ".join(result["accepted_ood"]) or "none")
        return 0
    if args.command == "ensemble":
        from model_zoo.zoo import ModelUnavailable

        from .ensemble import EnsembleError, check_ranking, create_ensemble, rank_combinations

        members = [m for m in args.members.split(",") if m]
        try:
            if args.rank:
                for row in rank_combinations(members, Path(args.zoo_dir) if args.zoo_dir else None):
                    recall = row["val_melanoma_recall"]
                    print(f"{row['val_balanced_accuracy']:.3f}  melanoma recall "
                          f"{'n/a' if recall is None else f'{recall:.3f}'}  {' + '.join(row['members'])}"
                          f"{'' if row['one_input_size'] else '  (mixed input sizes: cannot be built)'}")
                if args.check_against:
                    print_selection_check(check_ranking(members, [m for m in args.check_against.split(",") if m],
                                                        Path(args.zoo_dir) if args.zoo_dir else None))
                return 0
            if not args.model_id:
                raise EnsembleError("--model-id is required to build an ensemble.")
            folder = create_ensemble(members, args.model_id, args.display_name,
                                     args.data_dir, Path(args.zoo_dir) if args.zoo_dir else None, args.set_default,
                                     args.bootstrap)
        except (EnsembleError, ModelUnavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(folder)
        return 0
    if args.command == "tta":
        from .tta import measure_tta

        result = measure_tta(args.model_id, args.data_dir, Path(args.zoo_dir) if args.zoo_dir else None)
        for name, row in result.items():
            print(f"{name:6s} balanced accuracy {row['balanced_accuracy']:.3f}  accuracy {row['accuracy']:.3f}  "
                  f"macro-F1 {row['macro_f1']:.3f}  ECE {row['ece']:.3f}  NLL {row['nll']:.3f}")
        return 0
    if args.command == "metadata":
        from .metadata import fit_metadata_for_model

        result = fit_metadata_for_model(args.model_id, args.data_dir, Path(args.zoo_dir) if args.zoo_dir else None,
                                        args.bootstrap)
        print(f"alpha {result['alpha']:.1f} (chosen on validation), T {result['temperature']:.3f}; details alone: "
              f"validation balanced accuracy {result['details_only_val_balanced_accuracy']:.3f}")
        for split in ("validation", "test"):
            print(f"{split}: balanced accuracy with patient details {result[split]['balanced_accuracy']:.3f}")
        return 0
    if args.command == "export":
        from model_zoo.zoo import ModelUnavailable

        from .export import ExportError, export_litert

        try:
            entry = export_litert(args.model_id, Path(args.zoo_dir) if args.zoo_dir else None, args.data_dir)
        except (ExportError, ModelUnavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(entry, indent=2))
        return 0
    if args.command == "quality":
        from .quality import run_quality

        record = run_quality(args.data_dir, hair_model=args.hair_model)
        print(json.dumps({k: record[k] for k in ("thresholds", "tail_share", "test", "external", "hair_removal")
                          if k in record}, indent=2))
        return 0
    if args.command == "report":
        from .report import write_results

        print(write_results(Path(args.output), Path(args.zoo_dir) if args.zoo_dir else None))
        return 0
    if args.command == "splits":
        from .data import write_splits

        for path in write_splits(args.data_dir):
            print(path)
        return 0
    if args.command == "examples":
        from .examples import DEFAULT_OUT, ExamplesError, write_examples

        try:
            summary = write_examples(args.data_dir, args.per_class, args.seed, args.out or DEFAULT_OUT)
        except ExamplesError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(summary, indent=2))
        return 0
    if args.command == "list":
        import model_zoo

        from .architectures import get_spec, list_architectures

        print("Architectures:")
        for name in list_architectures():
            spec = get_spec(name)
            print(f"  {name:20s} {spec.input_size}px  {spec.description}")
        print("Zoo models:")
        for card in model_zoo.list_models(Path(args.zoo_dir) if args.zoo_dir else None):
            bal = card.get("headline", {}).get("test_balanced_accuracy")
            print(f"  {card['id']:32s} {card.get('dataset', ''):12s} test bal.acc {bal if bal is None else round(bal, 3)}  [{card['status']}]")
        return 0
    if args.command == "set-default":
        from model_zoo import store

        store.set_default_model(args.model_id, Path(args.zoo_dir) if args.zoo_dir else None)
        return 0
    raise AssertionError(args.command)
