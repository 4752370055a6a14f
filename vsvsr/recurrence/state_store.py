"""Saved recurrent states (``state_dir=``): let separately run chunks continue exactly.

A state file holds the state *after* frame k, the step number frame k+1 gets, and what it
belongs to: the model's weights hash, scale, LR size and a hash of input frame k (so a state
from another clip is refused, not silently used). Files are named ``state_<k>.vsvsrstate``,
written atomically, and validated on load; a mismatch is an error naming the fix.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import StateFileError
from vsvsr.utils.atomic import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_NAME = re.compile(r"^state_(\d{8,})\.vsvsrstate$")


@dataclass(frozen=True)
class StateKey:
    """What a saved state must match to be loaded."""

    model_name: str
    model_sha256: str
    scale: int
    width: int  #: LR width
    height: int  #: LR height
    state_channels: int


def frame_hash(frame: Any) -> str:
    """A short hash of an input frame's samples, to tie a saved state to its clip: the
    model-RGB array, or a native frame of the GPU frame path (its own ``digest``)."""
    if not isinstance(frame, np.ndarray):
        return frame.digest()
    return hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest()[:32]


class StateStore:
    """A folder of saved states for one (model, clip size) pairing."""

    def __init__(self, directory: str | Path, key: StateKey) -> None:
        self.directory = Path(directory)
        self.key = key
        self.directory.mkdir(parents=True, exist_ok=True)
        # Listed once: the runner asks on every cache miss; our own saves update it.
        self._frames = sorted(int(m.group(1)) for e in self.directory.iterdir()
                              if (m := _NAME.match(e.name)))

    def path(self, k: int) -> Path:
        return self.directory / f"state_{k:08d}.vsvsrstate"

    def latest_before(self, n: int) -> int | None:
        """The largest frame index k < n with a saved state, or None."""
        i = bisect.bisect_left(self._frames, n)
        return self._frames[i - 1] if i > 0 else None

    def save(self, k: int, state: np.ndarray, step: int, input_hash: str) -> Path:
        meta = {"format": FORMAT_VERSION, "frame": k, "step": step, "input_hash": input_hash,
                "key": asdict(self.key)}
        path = self.path(k)
        with atomic_write(path) as fh:
            np.savez(fh, state=state, meta=np.array(json.dumps(meta)))
        if k not in self._frames:
            bisect.insort(self._frames, k)
        log.info("vsvsr: saved state after frame %d to %s", k, path)
        return path

    def load(self, k: int, input_hash: str) -> tuple[np.ndarray, int]:
        """Load the state after frame k; returns (state, next step number)."""
        path = self.path(k)
        fix = f"delete {path} (or use a separate state_dir for each model and clip)"
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                state = np.ascontiguousarray(data["state"], dtype=np.float32)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise StateFileError(f"vsvsr.recurrent: state file {path} is unreadable or "
                                 f"truncated ({exc}); {fix}") from exc
        if meta.get("format") != FORMAT_VERSION:
            raise StateFileError(f"vsvsr.recurrent: state file {path} has format "
                                 f"{meta.get('format')}, expected {FORMAT_VERSION}; {fix}")
        saved = StateKey(**meta["key"])
        for field, label in (("model_sha256", "model weights"), ("scale", "scale"),
                             ("width", "width"), ("height", "height"),
                             ("state_channels", "state channels")):
            if getattr(saved, field) != getattr(self.key, field):
                raise StateFileError(
                    f"vsvsr.recurrent: state file {path} belongs to another {label} "
                    f"(saved for model {saved.model_name!r} x{saved.scale} at "
                    f"{saved.width}x{saved.height}; this filter runs {self.key.model_name!r} "
                    f"x{self.key.scale} at {self.key.width}x{self.key.height}); {fix}")
        expected_shape = (1, self.key.state_channels, self.key.height, self.key.width)
        if state.shape != expected_shape:
            raise StateFileError(f"vsvsr.recurrent: state file {path} holds shape {state.shape}, "
                                 f"expected {expected_shape}; {fix}")
        if meta["input_hash"] != input_hash:
            raise StateFileError(f"vsvsr.recurrent: state file {path} was saved for another clip "
                                 f"(input frame {k} differs); {fix}")
        if not np.isfinite(state).all():
            raise StateFileError(f"vsvsr.recurrent: state file {path} contains NaN/inf; {fix}")
        return state, int(meta["step"])
