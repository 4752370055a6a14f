"""Pre-degraded real-video shots: each shot through the real-world pipeline once, K times.

Encoding with ffmpeg per batch would dominate a training step (about 23 ms of CPU per LR frame
for blur, resize, noise and H.264 together, ``docs/real-world.md``). So before training, every
usable shot of every training video gets ``variants`` degraded versions: the HR frames (cropped
to a multiple of the scale) go WHOLE through
:func:`~vsvsr.training.degrade_pipeline.degrade_sequence` with a spec drawn from the
configured ranges, so the codec sees the full frames and the shot's real motion. The results
are uint8 (T, h, w, 3) files in the degradation cache (``degrade/`` beside ``video/`` in the
user cache folder, :mod:`~vsvsr.training.degrade_cache`), memory-mapped afterwards; a later run
with the same videos, ranges, seed and scale encodes nothing. The sampler
(:class:`~vsvsr.training.video_source.VideoClipSampler`) then cuts an LR window out of a random
variant at exactly the crop of its HR window.

Each variant's seed (of its spec and its noise) hashes the ranges' ``seed``, the source's cache
key, the shot and the variant number, so it does not depend on the run's seed, on the order of
the work, or on the other videos.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from vsvsr.training.degrade_cache import DegradeCache, frames_digest
from vsvsr.training.degrade_ranges import DegradeConfig
from vsvsr.training.degrade_spec import DegradeSpec

log = logging.getLogger(__name__)

#: Measured CPU per LR frame of the whole pre-degradation (7.0 ms at x2, 8.1 ms at x4 over the
#: 18 training videos, docs/real-world.md): the start-up estimate that is logged.
CPU_MS_PER_FRAME = 8.0
#: A shot's variants: one (T, h, w, 3) uint8 array (memory-mapped) per variant.
Variants = list[np.ndarray]


def variant_seed(seed: int, source: str, first: int, end: int, k: int) -> int:
    """The seed of variant ``k`` of frames ``[first, end)`` of ``source`` (a stable hash)."""
    text = f"{seed}|{source}|{first}|{end}|{k}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def variant_spec(config: DegradeConfig, seed: int) -> DegradeSpec:
    """The spec of the variant with ``seed``: one draw from the ranges."""
    return config.sample(np.random.default_rng(seed))


def hr_frames(frames: np.ndarray | torch.Tensor, first: int, end: int, scale: int) -> np.ndarray:
    """Frames ``[first, end)`` of a (T, 3, H, W) sequence as (n, H', W', 3) uint8, H' and W'
    cropped (bottom/right) to multiples of ``scale``: what the LR variants are made from."""
    h, w = (frames.shape[2] // scale) * scale, (frames.shape[3] // scale) * scale
    window = frames[first:end, :, :h, :w]
    arr = window.numpy() if isinstance(window, torch.Tensor) else np.asarray(window)
    return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))


def predegrade_shots(frames: Sequence[np.ndarray | torch.Tensor],
                     shots: Sequence[tuple[int, int, int]], keys: Sequence[str | None],
                     config: DegradeConfig, *, scale: int, cache: DegradeCache,
                     workers: int = 1) -> list[Variants]:
    """``config.variants`` degraded LR versions of every shot, from the cache or made now.

    Args:
        frames: the sequences, uint8 (T, 3, H, W) (tensors or memory maps).
        shots: (sequence index, first frame, end frame) of each shot to degrade.
        keys: per sequence, a name that identifies its frames (the video cache entry's); None
            hashes the shot's frames instead.
        config: the ranges the specs are drawn from, ``variants`` and ``seed``.
        scale: the downscale factor.
        cache: where the variants are stored.
        workers: shots degraded at once (each runs torch on one thread and one ffmpeg).

    Returns:
        per shot, ``config.variants`` arrays (n, H' / scale, W' / scale, 3) uint8, read-only.
    """
    start = time.monotonic()
    plan = []  # (shot, variant, source key, seed, spec)
    for j, (i, a, b) in enumerate(shots):
        src = (f"{keys[i]}:{a}:{b}" if keys[i]
               else frames_digest(hr_frames(frames[i], a, b, scale)))
        for k in range(config.variants):
            seed = variant_seed(config.seed, src, a, b, k)
            plan.append((j, k, src, seed, variant_spec(config, seed)))
    todo = [p for p in plan if not cache.path(cache.key(p[2], p[4], scale=scale,
                                                        seed=p[3])).is_file()]
    if todo:
        frames_todo = sum(shots[p[0]][2] - shots[p[0]][1] for p in todo)
        log.info("pre-degrading %d of %d shot variants (%d LR frames) at x%d with %d worker(s): "
                 "about %.0f CPU minutes (%.0f ms per frame measured at x2 and x4, "
                 "docs/real-world.md); cached for later runs", len(todo), len(plan),
                 frames_todo, scale, workers, frames_todo * CPU_MS_PER_FRAME / 60e3,
                 CPU_MS_PER_FRAME)
    out: list[list[np.ndarray | None]] = [[None] * config.variants for _ in shots]
    lock = threading.Lock()
    encoded = [0]

    def one(item: tuple[int, int, str, int, DegradeSpec]) -> None:
        j, k, src, seed, spec = item
        i, a, b = shots[j]
        h, w = frames[i].shape[2] // scale, frames[i].shape[3] // scale
        lr = cache.cached(src, spec, scale=scale, seed=seed, shape=(b - a, h, w, 3), mmap=True)
        if lr is None:
            lr = cache.degrade(hr_frames(frames[i], a, b, scale), spec, scale=scale, seed=seed,
                               source_key=src, mmap=True)
            with lock:
                encoded[0] += b - a
        out[j][k] = lr

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(one, plan))
    finally:
        torch.set_num_threads(threads)
    size = sum(v.nbytes for row in out for v in row if v is not None)
    log.info("pre-degraded video: %d shots x %d variants at x%d, %d frames encoded now, "
             "%.1f s, %.1f MB of variants in %s", len(shots), config.variants, scale, encoded[0],
             time.monotonic() - start, size / 1e6, cache.root)
    return [[v for v in row if v is not None] for row in out]
