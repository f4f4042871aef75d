"""Command line: `python -m trainer {prepare,train,evaluate,tune,calibrate,...,export,report,examples,list,set-default} --help`.

COMMANDS maps each subcommand to the builder of its arguments (trainer/parsers.py) and the handler that runs it
(trainer/commands.py); main() parses and dispatches through it. Each handler parses nothing itself: it passes
plain values to an importable function.
"""
from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable, Optional, Sequence

from . import commands, parsers
from .cli_options import UsageError, fail
from .commands import config_from_args
from .data import DataError
from .warm_start import WarmStartError

__all__ = ["COMMANDS", "build_parser", "config_from_args", "main"]   # config_from_args: how tests build a TrainConfig

Handler = Callable[[argparse.Namespace], int]


def _launch(args: argparse.Namespace) -> int:
    """With --index, this host's worker: the train command re-enters main() in this process (hence here, not in
    commands.py); without, every worker is started on localhost."""
    from .launch import launch, plan

    try:
        workers, command = plan(args.train_command, args.workers, args.local, args.index)
    except ValueError as exc:
        return fail(exc)
    return launch(workers, command, args.index, main)


COMMANDS: dict[str, tuple[Callable[[parsers.AddParser], None], Handler]] = {
    "prepare": (parsers.prepare_args, commands.run_prepare),
    "train": (parsers.train_args, commands.run_train),
    "launch": (parsers.launch_args, _launch),
    "evaluate": (parsers.evaluate_args, commands.run_evaluate),
    "tune": (parsers.tune_args, commands.run_tune),
    "calibrate": (parsers.calibrate_args, commands.run_calibrate),
    "clinical": (parsers.clinical_args, commands.run_clinical),
    "external": (parsers.external_args, commands.run_external),
    "subgroups": (parsers.subgroups_args, commands.run_subgroups),
    "ood": (parsers.ood_args, commands.run_ood),
    "ensemble": (parsers.ensemble_args, commands.run_ensemble),
    "tta": (parsers.tta_args, commands.run_tta),
    "metadata": (parsers.metadata_args, commands.run_metadata),
    "export": (parsers.export_args, commands.run_export),
    "quality": (parsers.quality_args, commands.run_quality),
    "report": (parsers.report_args, commands.run_report),
    "splits": (parsers.splits_args, commands.run_splits),
    "examples": (parsers.examples_args, commands.run_examples),
    "list": (parsers.list_args, commands.run_list),
    "set-default": (parsers.set_default_args, commands.run_set_default),
}


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand of COMMANDS, in its order (the order `--help` lists them in)."""
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Train and evaluate dermoscopy classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _) in COMMANDS.items():
        add_arguments(functools.partial(sub.add_parser, name))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse, run the subcommand's handler, and turn the errors a user can fix into 'error: ...' and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except (DataError, FileNotFoundError, WarmStartError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
