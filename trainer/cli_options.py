"""Options and checks that several `python -m trainer` subcommands share, written once so they read alike.

Kept free of the trainer's heavy modules (TensorFlow, pandas): the parsers and the handlers both import it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

MODEL_CHOICE_ERROR = "name MODEL_IDs or pass --all (not both)"


class UsageError(Exception):
    """A command line that parsed but cannot run; main() prints 'error: MESSAGE' and exits with 2."""


def add_common(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --zoo-dir with the help most subcommands give them."""
    parser.add_argument("--data-dir", help="folder holding isic_9class/, ham10000/ and prepared datasets (default: $DERMLAB_DATA_DIR, then ../shared/data)")
    parser.add_argument("--zoo-dir", help="model zoo folder (default: $DERMLAB_ZOO, then model_zoo/models)")


def add_model_choice(parser: argparse.ArgumentParser, all_help: str) -> None:
    """`MODEL_ID... | --all`: the subcommands that may run over the whole zoo (see `chosen_models`)."""
    parser.add_argument("model_ids", nargs="*", metavar="MODEL_ID")
    parser.add_argument("--all", action="store_true", help=all_help)


def check_model_choice(args: argparse.Namespace) -> None:
    """Exactly one of MODEL_IDs and --all; checked before the zoo is listed or other values are judged."""
    if args.all == bool(args.model_ids):
        raise UsageError(MODEL_CHOICE_ERROR)


def chosen_models(args: argparse.Namespace, every: Callable[[], Iterable[str]]) -> list[str]:
    """The MODEL_IDs as named, or `every()` model with --all."""
    check_model_choice(args)
    return list(every()) if args.all else list(args.model_ids)


def zoo_root(args: argparse.Namespace) -> Optional[Path]:
    """--zoo-dir as a Path; None leaves the zoo's own default ($DERMLAB_ZOO, then model_zoo/models)."""
    return Path(args.zoo_dir) if args.zoo_dir else None


def fail(message: object) -> int:
    """Say why a command stopped, the way argparse does, and give its exit code (2)."""
    print(f"error: {message}", file=sys.stderr)
    return 2

