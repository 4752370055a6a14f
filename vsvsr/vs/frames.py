"""Frame <-> NumPy: zero-copy plane views in, one fused clamp-and-copy out."""

from __future__ import annotations

import numpy as np
import vapoursynth as vs

from vsvsr.errors import NonFiniteError


def read_rgb(frame: vs.VideoFrame, *, n: int, func: str) -> np.ndarray:
    """An RGBS frame as a (1, 3, H, W) float32 array clamped to [0, 1].

    Limited-range YUV converts to RGB values outside [0, 1]; the models were trained on
    [0, 1], so the clamp belongs here. NaN/inf are refused rather than passed to the model.
    """
    out = np.empty((1, 3, frame.height, frame.width), np.float32)
    for p in range(3):
        np.clip(np.asarray(frame[p]), 0.0, 1.0, out=out[0, p])
    if not np.isfinite(out).all():
        raise NonFiniteError(f"{func}: input frame {n} contains NaN or infinity; fix the source "
                             "(e.g. clamp it with core.std.Expr) before super-resolution")
    return out


def write_rgb(frame: vs.VideoFrame, sr: np.ndarray) -> None:
    """Write a (1, 3, sH, sW) array into a writable RGBS/RGBH frame, clamped to [0, 1]."""
    for p in range(3):
        plane = np.asarray(frame[p])
        if plane.dtype == np.float32:
            np.clip(sr[0, p], 0.0, 1.0, out=plane)
        else:
            plane[...] = np.clip(sr[0, p], 0.0, 1.0)
