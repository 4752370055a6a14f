"""Where the project's shared data (training photos, real evaluation clips) is on this machine.

Looked up, in order: the ``VSVSR_SHARED_DATA`` environment variable; ``../shared/data`` beside
the repository root of a source checkout. Never an absolute path of some machine: a user's
checkout without the folder gets an error that says what to pass instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from vsvsr.errors import VsvsrError

#: The environment variable that names the shared data folder (the one holding ``real/``,
#: ``train_images/``, ``train_videos/``).
ENV_VAR = "VSVSR_SHARED_DATA"
#: The repository root when vsvsr runs from a source checkout (it holds ``setup.py``).
_REPO_ROOT = Path(__file__).resolve().parents[2]


class SharedDataError(VsvsrError, FileNotFoundError):
    """No shared data folder here; the message says what to pass instead."""


def checkout_data_dir() -> Path | None:
    """``../shared/data`` beside the repository root, when vsvsr runs from a checkout."""
    if not (_REPO_ROOT / "setup.py").is_file():
        return None  # an installed package: there is no repository to be beside
    return _REPO_ROOT.parent / "shared" / "data"


def shared_data_root() -> Path | None:
    """The shared data folder, or None when this machine has none.

    Raises:
        SharedDataError: ``VSVSR_SHARED_DATA`` is set but is not a folder (a typo should not
            read as "no data").
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        root = Path(env).expanduser()
        if not root.is_dir():
            raise SharedDataError(f"{ENV_VAR}={env} is not a folder; point it at the shared "
                                  "data folder (the one holding real/ and train_images/)")
        return root
    beside = checkout_data_dir()
    return beside if beside is not None and beside.is_dir() else None


def shared_data_dir(name: str, *, what: str, instead: str) -> Path:
    """The folder ``name`` (e.g. ``"real"``) of the shared data, or an error saying what to pass.

    Args:
        what: who needs it, for the message (e.g. ``"vsvsr eval"``).
        instead: the option(s) that give the data explicitly (e.g. ``"--frames DIR"``).
    """
    root = shared_data_root()
    if root is not None and (root / name).is_dir():
        return root / name
    where = f"{root / name} does not exist" if root is not None else "no shared data folder here"
    raise SharedDataError(
        f"{what}: {where}; pass {instead}, or set {ENV_VAR} to the shared data folder (the one "
        f"holding {name}/) or put it at ../shared/data beside the repository")


def portable_path(path: str | Path) -> str:
    """``path`` as reports should record it: below the shared data folder, as
    ``../shared/data/...`` (how a checkout finds it), so no report names a machine's absolute
    location; anything else unchanged."""
    p = Path(path)
    try:
        root = shared_data_root()
    except SharedDataError:
        root = None
    if root is not None and p.is_absolute():
        try:
            return str(Path("../shared/data") / p.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)
