"""Frame and sequence quality measures, in the conventions of the video SR papers.

* **Y-PSNR** and **Y-SSIM**: 8-bit RGB -> BT.601 luma (``16 + 65.481 R + 128.553 G + 24.966 B``
  with R, G, B in [0, 1], as Matlab's ``rgb2ycbcr``), ``scale`` pixels cropped from every
  border, peak 255. SSIM is Wang et al.'s with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, L = 255, averaged over the *valid* window positions (BasicSR's
  ``calculate_ssim``: ``cv2.filter2D`` then ``[5:-5, 5:-5]``).
* **tOF** (TecoGAN, Chu et al. 2020, ``metrics.py`` of thunil/TecoGAN): for each pair of
  consecutive frames, Farneback optical flow of the output and of the ground truth on
  grayscale frames (``cv2.COLOR_RGB2GRAY``; ``calcOpticalFlowFarneback(prev, cur, None, 0.5,
  3, 15, 3, 5, 1.2, 0)``); both flow fields are centre-cropped as TecoGAN's ``crop_8x8`` does;
  the pair's value is the mean over pixels of the Euclidean length of the flow difference
  vector, ``mean(sqrt((u_out - u_gt)^2 + (v_out - v_gt)^2))`` (TecoGAN's comment calls it an
  "l1 vector norm"; the code takes the 2-norm per pixel and the mean over pixels, and so do
  we). The sequence's tOF is the mean over all pairs, in HR pixels, **not** multiplied by 10
  as the TecoGAN paper's tables are, and without TecoGAN's two skipped frames at each end.
  Lower is better: 0 means the output moves exactly like the ground truth.

NumPy only (no SciPy); OpenCV is imported only by the tOF functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vsvsr.utils.lazy import lazy_import

#: PSNR reported for identical frames (keeps the JSON summary finite).
PSNR_CAP = 100.0

#: SSIM constants (Wang et al. 2004): window, its sigma, and (K1 L)^2, (K2 L)^2 with L = 255.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255.0) ** 2
SSIM_C2 = (0.03 * 255.0) ** 2

#: TecoGAN's Farneback settings: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags.
FARNEBACK_ARGS = (0.5, 3, 15, 3, 5, 1.2, 0)


def y601(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in [16, 235] of an (H, W, 3) uint8 (or 0-255 float) RGB image."""
    x = rgb.astype(np.float64) / 255.0
    return 16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def _crop(a: np.ndarray, border: int) -> np.ndarray:
    return a[border:-border, border:-border] if border else a


def _check_pair(func: str, test: np.ndarray, ref: np.ndarray) -> None:
    if test.shape != ref.shape:
        raise ValueError(f"{func}: shapes differ: {test.shape} vs {ref.shape}")


def y_psnr(test: np.ndarray, ref: np.ndarray, border: int = 0) -> float:
    """PSNR (dB) of the BT.601 luma of ``test`` against ``ref``, ``border`` px cropped."""
    _check_pair("y_psnr", test, ref)
    a, b = _crop(y601(test), border), _crop(y601(ref), border)
    mse = float(np.mean((a - b) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10.0 * math.log10(255.0 ** 2 / mse))


def mean_y_psnr(tests: Sequence[np.ndarray], refs: Sequence[np.ndarray],
                border: int = 0) -> tuple[float, list[float]]:
    """The mean over frames of :func:`y_psnr`, and the per-frame values."""
    if len(tests) != len(refs):
        raise ValueError(f"mean_y_psnr: {len(tests)} frames against {len(refs)} references")
    per = [y_psnr(t, r, border) for t, r in zip(tests, refs, strict=True)]
    return float(np.mean(per)), per


def gaussian_kernel(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalized 1-D Gaussian (``cv2.getGaussianKernel(size, sigma)``)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x ** 2) / (2.0 * sigma ** 2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable correlation with ``outer(kernel, kernel)``, valid positions only."""
    k = len(kernel)
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ kernel
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ kernel


def ssim_luma(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two 2-D float images in [0, 255] (mean of the SSIM map over valid windows)."""
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(f"ssim: image {a.shape[1]}x{a.shape[0]} is smaller than the "
                         f"{SSIM_WINDOW}x{SSIM_WINDOW} SSIM window")
    g = gaussian_kernel()
    mu1, mu2 = _filter_valid(a, g), _filter_valid(b, g)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = _filter_valid(a * a, g) - mu1_sq
    s2 = _filter_valid(b * b, g) - mu2_sq
    s12 = _filter_valid(a * b, g) - mu12
    ssim_map = ((2 * mu12 + SSIM_C1) * (2 * s12 + SSIM_C2)) / (
        (mu1_sq + mu2_sq + SSIM_C1) * (s1 + s2 + SSIM_C2))
    return float(ssim_map.mean())


def y_ssim(test: np.ndarray, ref: np.ndarray, border: int = 0) -> float:
    """SSIM of the BT.601 luma of ``test`` against ``ref``, ``border`` px cropped first.

    Raises:
        ValueError: shapes differ, or the cropped frame is smaller than the 11x11 window.
    """
    _check_pair("y_ssim", test, ref)
    return ssim_luma(_crop(y601(test), border), _crop(y601(ref), border))


def _cv2():  # noqa: ANN202  (a module)
    return lazy_import("cv2", "the tOF metric (vsvsr eval)")


def _tecogan_crop(flow: np.ndarray) -> np.ndarray:
    """TecoGAN's ``crop_8x8``: a centred crop to multiples of 32 with >= 8 px trimmed per side
    (the whole field when the frame is too small for that)."""
    out = flow
    for axis in (0, 1):
        n = flow.shape[axis]
        keep = (n // 32) * 32
        while keep > n - 16:
            keep -= 32
        if keep > 0:
            start = (n - keep) // 2
            out = out[start:start + keep] if axis == 0 else out[:, start:start + keep]
    return out


def farneback_flow(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Farneback flow (H, W, 2) from RGB uint8 frame ``prev`` to ``cur``, TecoGAN's settings."""
    cv2 = _cv2()
    g0 = cv2.cvtColor(np.ascontiguousarray(prev), cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(np.ascontiguousarray(cur), cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(g0, g1, None, *FARNEBACK_ARGS)


def flow_difference(flow_test: np.ndarray, flow_ref: np.ndarray) -> float:
    """One pair's tOF: mean over (TecoGAN-cropped) pixels of ``|flow_test - flow_ref|_2``."""
    d = _tecogan_crop(flow_test).astype(np.float64) - _tecogan_crop(flow_ref)
    return float(np.sqrt((d * d).sum(axis=-1)).mean())


def tof(test_frames: Sequence[np.ndarray], ref_frames: Sequence[np.ndarray]) -> \
        tuple[float, list[float]]:
    """TecoGAN tOF (see the module docstring) of uint8 RGB sequences, in HR px; lower is better.

    Returns:
        (the mean over the ``T - 1`` consecutive pairs, the per-pair values; pair ``i`` is
        frames ``i`` -> ``i + 1``).

    Raises:
        ValueError: fewer than two frames, different lengths or shapes.
    """
    if len(test_frames) != len(ref_frames):
        raise ValueError(f"tof: {len(test_frames)} frames against {len(ref_frames)} references")
    if len(test_frames) < 2:
        raise ValueError("tof: needs at least two frames (it measures frame-to-frame motion)")
    per = []
    for i in range(1, len(test_frames)):
        _check_pair("tof", test_frames[i], ref_frames[i])
        per.append(flow_difference(farneback_flow(test_frames[i - 1], test_frames[i]),
                                   farneback_flow(ref_frames[i - 1], ref_frames[i])))
    return float(np.mean(per)), per
