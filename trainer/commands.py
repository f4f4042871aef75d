"""What each `python -m trainer` subcommand does: one handler per subcommand, named run_SUBCOMMAND.

A handler takes the parsed arguments, calls the importable function that does the work, prints its outcome
and returns the exit code. The work's modules are imported inside the handler, so `--help` and the other
subcommands do not pay for them. `launch` re-enters the command line and lives in trainer/cli.py.
"""
from __future__ import annotations

import argparse
import json
import sys

from .cli_options import UsageError, check_model_choice, chosen_models, fail, zoo_root
from .config import TrainConfig


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The argparse namespace -> TrainConfig (only known fields)."""
    fields = TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["extra"] = {"tensorboard": not args.no_tensorboard}
    return TrainConfig(**values)


def print_selection_check(check: dict) -> None:
    """The ranking's selection check, in words."""
    print(f"\nSelection check ({check['rounds']} random halvings of the validation lesions, each half choosing "
          f"once among {check['combinations']} combinations):")
    print(f"  the chosen combination scores {check['chosen_on_own_half']:.3f} on the half that chose it and "
          f"{check['chosen_on_other_half']:.3f} on the other half (optimism {check['optimism']:+.3f})")
    print(f"  the reference {check['reference']} scores {check['reference_on_other_half']:.3f} there: held-out gain "
          f"{check['held_out_gain']:+.3f} (sd {check['held_out_gain_sd']:.3f} over {check['choices']} choices)")
    print("  chosen most often: " + "; ".join(f"{combo} ({n}x)" for combo, n in check["most_chosen"]))


def run_prepare(args: argparse.Namespace) -> int:
    """A download or labelled folder -> DATA_DIR/NAME; a folder that cannot be written is a usage error."""
    import errno
    import logging

    from .prepare import prepare
    from .sources import PrepareError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        folder = prepare(args.source, args.fmt, args.name, args.data_dir, args.max_side, args.skip_bad,
                         args.overwrite, args.seed, args.ground_truth, args.metadata)
    except PrepareError as exc:
        return fail(exc)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        return fail(f"cannot write there ({exc}); pass --data-dir with a folder you can write to")
    print(json.loads((folder / "dataset.json").read_text())["classes"])
    print(folder)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .train import run

    folder = run(config_from_args(args))
    if folder:
        print(folder)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_model

    metrics = evaluate_model(args.model_id, args.data_dir, zoo_root(args), args.bootstrap)
    print(json.dumps({k: {m: metrics[k][m] for m in ("accuracy", "balanced_accuracy", "macro_f1")}
                      for k in ("validation", "test")}, indent=2))
    return 0


def run_tune(args: argparse.Namespace) -> int:
    from .tune import tune

    best = tune(args.architecture, args.dataset, data_dir=args.data_dir, max_trials=args.max_trials,
                epochs=args.epochs, limit_per_class=args.limit_per_class, directory=args.directory,
                sizes=[int(s) for s in args.sizes.split(",")], color_constancy=args.color_constancy,
                label_smoothing=args.label_smoothing, initial_points=args.initial_points,
                head_epochs=args.head_epochs)
    print(json.dumps(best, indent=2))
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate_model

    result = calibrate_model(args.model_id, zoo_root(args), args.bootstrap)
    print(json.dumps({"temperature": result["temperature"], "test": {k: v for k, v in result["test"].items()
                                                                      if k.startswith(("ece", "nll"))},
                      "abstention": {k: result["abstention"][k] for k in ("threshold", "coverage", "test")}},
                     indent=2))
    return 0


def run_clinical(args: argparse.Namespace) -> int:
    """One summary line per model; a model that vanished meanwhile is skipped (exit 2 unless --all)."""
    from model_zoo import store
    from model_zoo.zoo import ModelUnavailable

    from .clinical import clinical_for_model, summary_line

    root = zoo_root(args)
    check_model_choice(args)
    if not 0 < args.coverage < 1:
        raise UsageError("--coverage must be between 0 and 1")
    missing = 0
    for model_id in chosen_models(args, lambda: [f.name for f in store.model_folders(root)]):
        try:
            result = clinical_for_model(model_id, root, args.bootstrap, args.coverage)
        except (ModelUnavailable, FileNotFoundError) as exc:   # e.g. deleted by someone else meanwhile
            print(f"skipped {model_id}: {exc}", file=sys.stderr)
            missing += 1
            continue
        print(summary_line(model_id, result), flush=True)
    return 2 if missing and not args.all else 0


def run_external(args: argparse.Namespace) -> int:
    """One summary line per model; exit 2 on a model that cannot be scored."""
    from model_zoo.zoo import ModelUnavailable

    from .external import ExternalError, external_for_model, external_models, summary_line

    root = zoo_root(args)
    failed = 0
    for model_id in chosen_models(args, lambda: external_models(root)):
        try:
            result = external_for_model(model_id, args.dataset, args.data_dir, root, args.bootstrap,
                                        True if args.fov_crop else None)
        except (ExternalError, ModelUnavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(summary_line(model_id, result), flush=True)
    return 2 if failed else 0


def run_subgroups(args: argparse.Namespace) -> int:
    from .subgroups import subgroups_for_model

    result = subgroups_for_model(args.model_id, args.data_dir, zoo_root(args))
    if result is None:
        return fail("subgroups exist for HAM10000 and ISIC 9-class models, and for prepared datasets whose "
                    "manifest records sex, age or body site")
    for column, groups in result.items():
        for name, row in groups.items():
            print(f"{column:12s} {name:26s} n={row['n']:4d} bal.acc={row['balanced_accuracy']:.3f}"
                  f"{' (small)' if row['small'] else ''}")
    return 0


def run_ood(args: argparse.Namespace) -> int:
    from .ood import fit_ood_for_model

    result = fit_ood_for_model(args.model_id, args.data_dir, zoo_root(args))
    print(json.dumps({k: v for k, v in result.items() if k not in ("accepted_ood", "ood_kinds")}, indent=2))
    print("non-dermoscopy images accepted:", ", ".join(result["accepted_ood"]) or "none")
    return 0


def run_ensemble(args: argparse.Namespace) -> int:
    """--rank: score the members' combinations (and check the choice); otherwise build and publish one."""
    from model_zoo.zoo import ModelUnavailable

    from .ensemble import EnsembleError, check_ranking, create_ensemble, rank_combinations

    members = [m for m in args.members.split(",") if m]
    try:
        if args.rank:
            for row in rank_combinations(members, zoo_root(args)):
                recall = row["val_melanoma_recall"]
                print(f"{row['val_balanced_accuracy']:.3f}  melanoma recall "
                      f"{'n/a' if recall is None else f'{recall:.3f}'}  {' + '.join(row['members'])}"
                      f"{'' if row['one_input_size'] else '  (mixed input sizes: cannot be built)'}")
            if args.check_against:
                print_selection_check(check_ranking(members, [m for m in args.check_against.split(",") if m],
                                                    zoo_root(args)))
            return 0
        if not args.model_id:
            raise EnsembleError("--model-id is required to build an ensemble.")
        folder = create_ensemble(members, args.model_id, args.display_name,
                                 args.data_dir, zoo_root(args), args.set_default, args.bootstrap)
    except (EnsembleError, ModelUnavailable) as exc:
        return fail(exc)
    print(folder)
    return 0


def run_tta(args: argparse.Namespace) -> int:
    from .tta import measure_tta

    result = measure_tta(args.model_id, args.data_dir, zoo_root(args))
    for name, row in result.items():
        print(f"{name:6s} balanced accuracy {row['balanced_accuracy']:.3f}  accuracy {row['accuracy']:.3f}  "
              f"macro-F1 {row['macro_f1']:.3f}  ECE {row['ece']:.3f}  NLL {row['nll']:.3f}")
    return 0


def run_metadata(args: argparse.Namespace) -> int:
    from .metadata import fit_metadata_for_model

    result = fit_metadata_for_model(args.model_id, args.data_dir, zoo_root(args), args.bootstrap)
    print(f"alpha {result['alpha']:.1f} (chosen on validation), T {result['temperature']:.3f}; details alone: "
          f"validation balanced accuracy {result['details_only_val_balanced_accuracy']:.3f}")
    for split in ("validation", "test"):
        print(f"{split}: balanced accuracy with patient details {result[split]['balanced_accuracy']:.3f}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from model_zoo.zoo import ModelUnavailable

    from .export import ExportError, export_litert

    try:
        entry = export_litert(args.model_id, zoo_root(args), args.data_dir)
    except (ExportError, ModelUnavailable) as exc:
        return fail(exc)
    print(json.dumps(entry, indent=2))
    return 0


def run_quality(args: argparse.Namespace) -> int:
    from .quality import run_quality as choose_thresholds

    record = choose_thresholds(args.data_dir, hair_model=args.hair_model)
    print(json.dumps({k: record[k] for k in ("thresholds", "tail_share", "test", "external", "hair_removal")
                      if k in record}, indent=2))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .report import write_results

    print(write_results(Path(args.output), zoo_root(args)))
    return 0


def run_splits(args: argparse.Namespace) -> int:
    from .data import write_splits

    for path in write_splits(args.data_dir):
        print(path)
    return 0


def run_examples(args: argparse.Namespace) -> int:
    from .examples import DEFAULT_OUT, ExamplesError, write_examples

    try:
        summary = write_examples(args.data_dir, args.per_class, args.seed, args.out or DEFAULT_OUT)
    except ExamplesError as exc:
        return fail(exc)
    print(json.dumps(summary, indent=2))
    return 0


def run_list(args: argparse.Namespace) -> int:
    import model_zoo

    from .architectures import get_spec, list_architectures

    print("Architectures:")
    for name in list_architectures():
        spec = get_spec(name)
        print(f"  {name:20s} {spec.input_size}px  {spec.description}")
    print("Zoo models:")
    for card in model_zoo.list_models(zoo_root(args)):
        bal = card.get("headline", {}).get("test_balanced_accuracy")
        print(f"  {card['id']:32s} {card.get('dataset', ''):12s} test bal.acc {bal if bal is None else round(bal, 3)}  [{card['status']}]")
    return 0


def run_set_default(args: argparse.Namespace) -> int:
    from model_zoo import store

    store.set_default_model(args.model_id, zoo_root(args))
    return 0
