"""``vsvsr train ...``: train a model; every argument goes to ``vsvsr.training``.

Needs PyTorch (``pip install 'vsvsr[train]'``). ``vsvsr train --help`` shows the trainer's
options.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence

from vsvsr.errors import MissingDependencyError

NAME = "train"
HELP = "train an RVSR model (needs PyTorch; see 'vsvsr train --help')"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Nothing to parse: the trainer parses its own arguments."""


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """(global options + 'train', trainer arguments) when the command is ``train``."""
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            return (list(argv[: i + 1]), list(argv[i + 1:])) if arg == NAME else None
    return None


def _train_main():  # noqa: ANN202
    if importlib.util.find_spec("torch") is None:
        raise MissingDependencyError("vsvsr train needs PyTorch, which is not installed: "
                                     "pip install 'vsvsr[train]'")
    import vsvsr.training as training

    fn = getattr(training, "train_main", None)
    if fn is None:  # the entry point lives in vsvsr.training.__main__ until it is re-exported
        from vsvsr.training.__main__ import train_main as fn
    return fn


def run(args: argparse.Namespace) -> int:
    return int(_train_main()(list(getattr(args, "train_argv", []))) or 0)
