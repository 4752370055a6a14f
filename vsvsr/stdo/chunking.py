"""PSNR quantile chunks (STDO) and the data-aware sampling fractions of JSTDO.

All patches of the whole video are ranked by the general model's PSNR and cut into ``k``
chunks of equal size (sizes differ by at most one when ``k`` does not divide the count).
Chunk 0 holds the lowest PSNR, i.e. the hardest, richest-texture patches.

Two cases the paper's code does not handle are defined here:

* **infinite PSNR** (the general model reproduces the patch exactly, e.g. flat black bars):
  ranked above every finite value, so such patches land in the last (easiest) chunk;
* **ties**: equal PSNRs are ordered by their flat index (frame, row, column), so the split is
  deterministic and the chunks stay exactly equal-sized even when a tie straddles a boundary.

NaN is refused: it means a broken score, not an easy patch.
"""

from __future__ import annotations

import numpy as np

from vsvsr.errors import VsvsrError


class ChunkingError(VsvsrError, ValueError):
    """Scores or settings the chunking cannot use."""


def quantile_chunks(psnr: np.ndarray, k: int) -> np.ndarray:
    """Chunk labels (uint8, same shape as ``psnr``) from ``k`` equal-size PSNR quantiles."""
    scores = np.asarray(psnr, dtype=np.float64)
    if not 1 <= k <= 255:
        raise ChunkingError(f"chunks must be between 1 and 255, got {k}")
    if scores.size < k:
        raise ChunkingError(f"{scores.size} patches cannot fill {k} chunks; use fewer chunks "
                            "or a finer grid")
    if np.isnan(scores).any():
        raise ChunkingError("the patch PSNRs contain NaN; the scoring is broken")
    if np.isneginf(scores).any():
        raise ChunkingError("the patch PSNRs contain -inf; the scoring is broken")
    flat = scores.ravel()
    # np.lexsort: last key is primary. +inf sorts after every finite value by itself; the
    # index key makes ties (inf included) deterministic.
    order = np.lexsort((np.arange(flat.size), flat))
    labels = np.empty(flat.size, np.uint8)
    for chunk, members in enumerate(np.array_split(order, k)):
        labels[members] = chunk
    return labels.reshape(scores.shape)


def default_fractions(k: int) -> tuple[float, ...]:
    """JSTDO's sampling fraction per chunk: 1 for chunk 0, 0 for the last, linear between.

    The paper keeps all of chunk 0, none of the last chunk and "decreasing" fractions between
    without publishing them; linear is the simplest reading (k=4: 1, 2/3, 1/3, 0). With k=1
    the one chunk is kept whole. With k=2 nothing lies between: half the patches are used.
    """
    if k < 1:
        raise ChunkingError(f"chunks must be >= 1, got {k}")
    if k == 1:
        return (1.0,)
    return tuple(1.0 - i / (k - 1) for i in range(k))


def parse_fractions(text: str, k: int) -> tuple[float, ...]:
    """``"1,0.6,0.3,0"`` -> a validated tuple of ``k`` fractions."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ChunkingError(f"bad fractions {text!r}: give {k} comma-separated numbers") from None
    return check_fractions(values, k)


def check_fractions(fractions: tuple[float, ...], k: int) -> tuple[float, ...]:
    if len(fractions) != k:
        raise ChunkingError(f"{len(fractions)} fractions given for {k} chunks; give one per chunk")
    if any(not 0.0 <= f <= 1.0 for f in fractions):
        raise ChunkingError(f"fractions must lie in [0, 1], got {fractions}")
    if fractions[0] <= 0.0:
        raise ChunkingError("the first (hardest) chunk must be sampled: fraction > 0")
    return tuple(float(f) for f in fractions)


def jstdo_selection(labels: np.ndarray, fractions: tuple[float, ...], seed: int = 0) -> np.ndarray:
    """Boolean mask of the patches JSTDO trains on: ``round(f * size)`` of each chunk at random."""
    k = len(fractions)
    rng = np.random.default_rng(seed)
    flat = labels.ravel()
    keep = np.zeros(flat.size, bool)
    for chunk, frac in enumerate(check_fractions(fractions, k)):
        members = np.flatnonzero(flat == chunk)
        n = int(round(frac * members.size))
        if n:
            keep[rng.choice(members, size=n, replace=False)] = True
    return keep.reshape(labels.shape)


def time_segments(frames: int, segments: int) -> np.ndarray:
    """Segment index per frame for the time-division baseline: ``segments`` equal runs."""
    if not 1 <= segments <= min(frames, 255):
        raise ChunkingError(f"{segments} time segments for {frames} frames: need 1..{frames}")
    return (np.arange(frames) * segments // frames).astype(np.uint8)
