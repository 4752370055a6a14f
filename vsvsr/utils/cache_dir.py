"""The user cache folder vsvsr writes to (TensorRT engines, OpenVINO's compiled models)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(*parts: str) -> Path:
    """``$VSVSR_CACHE_DIR/<parts>``, else ``$XDG_CACHE_HOME/vsvsr/<parts>`` (``~/.cache``).

    Not created here: the writer creates what it needs.
    """
    root = os.environ.get("VSVSR_CACHE_DIR")
    if root:
        return Path(root).joinpath(*parts)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg, "vsvsr").joinpath(*parts)
