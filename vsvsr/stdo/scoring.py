"""Per-patch Y-PSNR of an upscale against its HR frame (what STDO's chunks are cut on).

The general model runs on the *whole* LR frame and the PSNR is measured per HR patch, so each
patch is scored with its real context (the paper super-resolved each patch alone with zero
padding and shaved ``scale + 4`` px). Both frames are 8-bit, as a delivered video is: a patch
the model reproduces exactly (flat black bars) has an MSE of 0 and an infinite PSNR, which
:func:`vsvsr.stdo.chunking.quantile_chunks` handles.
"""

from __future__ import annotations

import numpy as np

from vsvsr.evaluation.metrics import y601
from vsvsr.stdo.grid import PatchGrid


def patch_sq_error(test: np.ndarray, ref: np.ndarray, grid: PatchGrid, scale: int) -> np.ndarray:
    """(rows, cols) mean squared Y error of each HR patch; frames are (H, W, 3) uint8."""
    if test.shape != ref.shape:
        raise ValueError(f"patch_sq_error: shapes differ: {test.shape} vs {ref.shape}")
    if test.shape[:2] != (grid.height * scale, grid.width * scale):
        raise ValueError(f"patch_sq_error: frame {test.shape[1]}x{test.shape[0]} is not the "
                         f"grid's HR size {grid.width * scale}x{grid.height * scale}")
    err = (y601(test) - y601(ref)) ** 2
    ys, xs = grid.ys(scale), grid.xs(scale)
    sums = np.add.reduceat(np.add.reduceat(err, ys[:-1], axis=0), xs[:-1], axis=1)
    area = np.outer(np.diff(ys), np.diff(xs))
    return sums / area


def mse_to_psnr(mse: np.ndarray) -> np.ndarray:
    """PSNR (dB, peak 255) of mean squared errors; ``inf`` where the error is exactly 0."""
    mse = np.asarray(mse, np.float64)
    with np.errstate(divide="ignore"):
        return np.where(mse > 0, 10.0 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-300)), np.inf)


def patch_psnr(test: np.ndarray, ref: np.ndarray, grid: PatchGrid, scale: int) -> np.ndarray:
    """(rows, cols) Y-PSNR of each HR patch of ``test`` against ``ref`` (uint8 HWC)."""
    return mse_to_psnr(patch_sq_error(test, ref, grid, scale))


def frame_y_psnr(test: np.ndarray, ref: np.ndarray) -> float:
    """Full-frame Y-PSNR (no border shaved: seams and edges count), capped at 100 dB."""
    mse = float(np.mean((y601(test) - y601(ref)) ** 2))
    return 100.0 if mse == 0 else min(100.0, 10.0 * float(np.log10(255.0 ** 2 / mse)))


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] (any range: clamped) -> (H, W, 3) uint8, rounded."""
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0).copy()
