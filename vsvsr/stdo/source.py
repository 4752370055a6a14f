"""The HR video an overfit pack is made from, and its LR version.

HR frames come from a folder of images or a video file (decoded by vsvsr's ffmpeg), or from a
list of uint8 frames; they are cropped to a multiple of the scale and degraded with the
project's standard resize, rounded to 8 bits (:func:`vsvsr.evaluation.data.degrade`), exactly
as ``vsvsr eval`` does. The content hash is the SHA-256 of the HR frames as 8-bit RGB.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsvsr.evaluation.data import crop_to_multiple, degrade, load_frames, load_video


@dataclass
class OverfitSource:
    """HR and LR frames ((H, W, 3) uint8) of one video."""

    name: str
    hr: list[np.ndarray]
    lr: list[np.ndarray]
    scale: int

    @property
    def frames(self) -> int:
        return len(self.hr)

    @property
    def lr_size(self) -> tuple[int, int]:
        return self.lr[0].shape[1], self.lr[0].shape[0]

    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update(f"{self.frames}x{self.hr[0].shape}".encode())
        for f in self.hr:
            h.update(np.ascontiguousarray(f).tobytes())
        return h.hexdigest()


def load_source(source: str | os.PathLike[str] | Sequence[np.ndarray], scale: int, *,
                max_frames: int | None = None, name: str | None = None) -> OverfitSource:
    """HR frames from a folder, a video file or a list, and their LR frames."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        hr = load_frames(p, max_frames) if p.is_dir() else load_video(p, max_frames)
        name = name or p.stem
    else:
        hr = [np.ascontiguousarray(f, np.uint8) for f in source][:max_frames]
        name = name or "frames"
    hr = crop_to_multiple(hr, scale)
    return OverfitSource(name=name, hr=hr, lr=degrade(hr, scale), scale=scale)
