"""The arguments of each `python -m trainer` subcommand: one builder per subcommand, named SUBCOMMAND_args.

A builder gets `add`, which makes the subcommand's parser under the name trainer/cli.py's table gives it, and
adds the arguments. Modules that are slow to import (architectures: TensorFlow) are imported inside the builder
that needs them, so importing this module stays cheap.
"""
from __future__ import annotations

import argparse
from typing import Callable

from model_zoo.datadir import DATASETS

from .cli_options import add_common, add_model_choice

AddParser = Callable[..., argparse.ArgumentParser]

DATASET_HELP = "isic_9class, ham10000, or the name of a dataset made by `python -m trainer prepare` (in --data-dir)"


def _one_model(add: AddParser, help: str, description: str):
    """A subcommand that works on one zoo model: MODEL_ID and the common options."""
    p = add(help=help, description=description)
    p.add_argument("model_id")
    add_common(p)
    return p


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
    """A share 0..1, refused while parsing (not after the images are decoded).

    Named _share on purpose: argparse names the type in "invalid _share value: 'x'".
    """
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, not {text}")
    return value


def prepare_args(add: AddParser) -> None:
    from .sources import FORMATS

    p = add(help="turn a public download or any labelled folder into a dataset to train on",
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


def train_args(add: AddParser) -> None:
    from .architectures import list_architectures

    p = add(help="train a model and publish it to the zoo",
            description="Train an architecture on a dataset; evaluates on validation and test and "
                        "writes the model folder to the zoo atomically.")
    p.add_argument("--architecture", "-a", required=True, choices=list_architectures())
    p.add_argument("--dataset", "-d", required=True, type=_dataset, help=DATASET_HELP)
    p.add_argument("--model-id", help="zoo folder name (default: ARCHITECTURE_DATASET)")
    p.add_argument("--display-name")
    add_common(p)
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


def launch_args(add: AddParser) -> None:
    p = add(help="train on several workers (MultiWorkerMirroredStrategy via TF_CONFIG)",
            description="Set TF_CONFIG and run a train command as one worker of a cluster (--index, on "
                        "each host), or start every worker on this machine (--local N, or --workers "
                        "with only localhost). Worker 0 is the chief and alone publishes to the zoo.",
            epilog="example: python -m trainer launch --local 2 -- train -a custom_cnn -d isic_9class")
    p.add_argument("--workers", help="comma-separated HOST:PORT of every worker, the same list on every host")
    p.add_argument("--local", type=int, metavar="N", help="N workers on localhost, on free ports")
    p.add_argument("--index", type=int, help="this host's position in --workers (0 = chief); omit to start all "
                                             "workers here (localhost only)")
    p.add_argument("train_command", nargs=argparse.REMAINDER, help="-- train ARGS...")


def evaluate_args(add: AddParser) -> None:
    p = _one_model(add, "re-evaluate a zoo model (metrics.json, predictions.csv)",
                   "Recompute a zoo model's validation and test metrics from the data.")
    p.add_argument("--bootstrap", type=int, default=1000)


def tune_args(add: AddParser) -> None:
    p = add(help="KerasTuner search scored on validation only",
            description="Hyperparameter search (learning rate, dropout, dense width, image size, "
                        "unfrozen depth) with KerasTuner; scored on the validation split. Pretrained "
                        "backbones train the head first (--head-epochs), then fine-tune for --epochs.")
    p.add_argument("--architecture", "-a", required=True)
    p.add_argument("--dataset", "-d", required=True, type=_dataset, help=DATASET_HELP)
    add_common(p)
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


def calibrate_args(add: AddParser) -> None:
    p = add(help="fit temperature, abstention and melanoma thresholds on validation",
            description="From a zoo model's saved validation predictions: temperature scaling, an "
                        "abstention threshold and a melanoma operating point; measured once on test.")
    p.add_argument("model_id")
    p.add_argument("--zoo-dir")
    p.add_argument("--bootstrap", type=int, default=1000)


def clinical_args(add: AddParser) -> None:
    p = add(help="clinical views from saved predictions: PR curves, benign vs malignant, "
                 "per-class and lesion-level CIs, conformal sets",
            description="From zoo models' predictions.csv (no network is run): precision-recall curves, "
                        "benign-versus-malignant AUROC and operating points, per-class bootstrap intervals "
                        "(by lesion where lesion ids exist) and split conformal prediction sets fitted on "
                        "validation; stored in metrics.json[\"clinical\"]. card.json is not touched.")
    add_model_choice(p, "every model in the zoo")
    p.add_argument("--zoo-dir")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--coverage", type=float, default=0.90, help="conformal target coverage (default 0.90)")


def external_args(add: AddParser) -> None:
    from .external import EXTERNAL_SETS, N_BOOTSTRAP

    p = add(help="score models once on an external test set (PH², another clinic)",
            description="Run each model on PH² through model_zoo.diagnosis (LiteRT, as the app serves it) "
                        "and store melanoma-vs-nevus AUROC, the shipped melanoma alert, argmax recall, "
                        "abstention and the dermoscopy check's outcome by diagnosis in "
                        "metrics.json[\"external\"]. Nothing is fitted on the set.")
    add_model_choice(p, "every zoo model with the HAM10000 classes")
    p.add_argument("--dataset", default="ph2", choices=EXTERNAL_SETS)
    p.add_argument("--data-dir", help="folder holding ph2/ (default: $DERMLAB_DATA_DIR, then ../shared/data)")
    p.add_argument("--zoo-dir")
    p.add_argument("--bootstrap", type=int, default=N_BOOTSTRAP)
    p.add_argument("--fov-crop", action="store_true",
                   help="cut each image to its dermatoscope's round field first (stored as DATASET+fov_crop)")


def subgroups_args(add: AddParser) -> None:
    _one_model(add, "test metrics by subgroup: sex, age band, body site (HAM10000); image source (9-class)",
               "Per-subgroup test metrics with counts and CIs, stored in metrics.json.")


def ood_args(add: AddParser) -> None:
    _one_model(add, "fit and evaluate the 'not a dermoscopy image' detector",
               "Residual (ViM-style) detector on training features: 'unlike training' and 'not "
               "dermoscopy' thresholds on validation, AUROC on the dermoscopy test split vs a "
               "built-in set of non-dermoscopy images.")


def ensemble_args(add: AddParser) -> None:
    p = add(help="join zoo models into an ensemble, published as a zoo model of its own",
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
    add_common(p)


def tta_args(add: AddParser) -> None:
    _one_model(add, "measure test-time augmentation against plain prediction on test",
               "Test metrics and calibration with and without 8-view test-time augmentation.")


def metadata_args(add: AddParser) -> None:
    p = _one_model(add, "fit the patient-details model (age, sex, site) fused with a HAM10000 model",
                   "Logistic regression on the training split's metadata, pooled with the image "
                   "model's probabilities; the fusion weight and temperature are chosen on validation.")
    p.add_argument("--bootstrap", type=int, default=1000)


def export_args(add: AddParser) -> None:
    p = _one_model(add, "write model.tflite: serve the model without TensorFlow (LiteRT)",
                   "Convert a zoo model to LiteRT with its probabilities, features and Grad-CAM "
                   "class maps; checked against Keras on validation images before it is published.")


def quality_args(add: AddParser) -> None:
    p = add(help="choose the image-quality gate's thresholds on validation; judge hair removal",
            description="Measure sharpness, exposure and size of the validation and test images, choose "
                        "thresholds on validation, count test images flagged; write "
                        "model_zoo/quality_thresholds.json (trainer/quality.py).")
    p.add_argument("--data-dir")
    p.add_argument("--hair-model", help="zoo model for the hair-removal check (default: the app's default model)")


def report_args(add: AddParser) -> None:
    p = add(help="write docs/results.md from the zoo's metrics",
            description="Regenerate docs/results.md from every zoo model's card and metrics.json.")
    p.add_argument("--zoo-dir")
    p.add_argument("--output", default="docs/results.md")


def splits_args(add: AddParser) -> None:
    p = add(help="regenerate trainer/splits/*.csv from the data manifests",
            description="Rewrite the saved splits (deterministic, fixed seed).")
    p.add_argument("--data-dir")


def examples_args(add: AddParser) -> None:
    p = add(help="write the bundled example cases (assets/examples) from the test splits",
            description="Draw a few test-split images per class of each dataset at random (fixed seed), "
                        "copy them byte for byte with manifest.csv and LICENSE.md, and replace the "
                        "examples folder atomically; refused if it would exceed 3 MB.")
    p.add_argument("--data-dir", help="folder holding isic_9class/ and ham10000/ (default: $DERMLAB_DATA_DIR, then ../shared/data)")
    p.add_argument("--per-class", type=int, default=4, help="images per class and dataset (all of a class that has fewer)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", help="the examples folder (default: assets/examples in the repository)")


def list_args(add: AddParser) -> None:
    p = add(help="list architectures and zoo models", description="List architectures and zoo models.")
    p.add_argument("--zoo-dir")


def set_default_args(add: AddParser) -> None:
    p = add(help="choose the app's default model", description="Set zoo.json's default model.")
    p.add_argument("model_id")
    p.add_argument("--zoo-dir")
