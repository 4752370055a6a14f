"""Which frames and which part of them a comparison report shows, and getting those frames.

The report shows a few frames per sequence: with ground truth the worst, median and best by a
model's Y-PSNR (then more, spread over the ranks); without it, frames evenly spaced in time.
Of each, one square crop where the models differ most from bicubic (the detail they add or
lose), aligned to the scale so the LR input crop matches exactly.

:func:`capture_frames` runs each model again over the LR up to the last chosen frame and keeps
only the chosen outputs: the runs are deterministic, so memory stays flat on long sequences
at the cost of at most one more pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from vsvsr.evaluation.metrics import y601
from vsvsr.evaluation.models import NO_OPTIONS, RunOptions, Upscaler

#: Side of the crops, HR px (smaller frames are shown whole).
DEFAULT_CROP = 192


def choose_by_psnr(psnr: Sequence[float], count: int) -> list[tuple[int, str]]:
    """Frame indices with a reason: ``worst``, ``median``, ``best``, then further frames at
    evenly spaced ranks (``rank k/n``), without repeats, ordered by frame."""
    n = len(psnr)
    if n == 0 or count < 1:
        return []
    order = sorted(range(n), key=lambda i: (psnr[i], i))
    picks: dict[int, str] = {}
    for rank, why in ((0, "worst"), ((n - 1) // 2, "median"), (n - 1, "best")):
        if len(picks) < count:
            picks.setdefault(order[rank], why)
    for r in np.linspace(0, n - 1, num=min(count, n)).round().astype(int):
        if len(picks) >= count:
            break
        picks.setdefault(order[int(r)], f"rank {int(r) + 1}/{n}")
    return sorted(picks.items())


def choose_evenly(frames: int, count: int) -> list[tuple[int, str]]:
    """``count`` frame indices spread evenly from the first to the last."""
    if frames < 1 or count < 1:
        return []
    idx = sorted({int(i) for i in np.linspace(0, frames - 1, num=min(count, frames)).round()})
    return [(i, f"frame {i + 1}/{frames}") for i in idx]


def capture_frames(upscalers: Sequence[Upscaler], lr: Sequence[np.ndarray],
                   indices: Iterable[int], options: RunOptions = NO_OPTIONS) \
        -> dict[str, dict[int, np.ndarray]]:
    """Each upscaler's SR frames at ``indices`` (label -> index -> frame), run from frame 0 as
    in the evaluation (recurrent models need their history)."""
    want = sorted(set(indices))
    out: dict[str, dict[int, np.ndarray]] = {}
    if not want:
        return {up.label: {} for up in upscalers}
    last = want[-1]
    for up in upscalers:
        keep: dict[int, np.ndarray] = {}
        stream = up.run(lr[:last + 1], options)
        try:
            for t, sr in enumerate(stream):
                if t in want:
                    keep[t] = sr
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        out[up.label] = keep
    return out


def crop_box(base: np.ndarray, others: Sequence[np.ndarray], size: int, align: int = 1) \
        -> tuple[int, int, int, int]:
    """(x, y, w, h) of the ``size`` square where ``others`` differ most from ``base`` in luma
    (summed absolute difference); the frame's most detailed square when they never differ.
    Corners and sides are multiples of ``align`` (the scale) where the frame allows."""
    h, w = base.shape[:2]
    side_w = max(align, min(size, w) // align * align)
    side_h = max(align, min(size, h) // align * align)
    yb = y601(base)
    if others:
        energy = sum(np.abs(y601(o) - yb) for o in others)
    else:
        energy = np.zeros_like(yb)
    if not np.any(energy):
        gy, gx = np.gradient(yb)
        energy = np.abs(gx) + np.abs(gy)
    integral = np.zeros((h + 1, w + 1))
    integral[1:, 1:] = np.cumsum(np.cumsum(energy, axis=0), axis=1)
    step = max(align, (min(side_w, side_h) // 8) // align * align)
    ys = np.arange(0, h - side_h + 1, step)
    xs = np.arange(0, w - side_w + 1, step)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    sums = (integral[yy + side_h, xx + side_w] - integral[yy, xx + side_w]
            - integral[yy + side_h, xx] + integral[yy, xx])
    iy, ix = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(xs[ix]), int(ys[iy]), side_w, side_h
