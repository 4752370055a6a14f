"""A disk cache of degraded sequences, so training is not bound by ffmpeg.

One ``.npy`` file (uint8, (T, h, w, 3)) per (source, spec, scale, seed), named by the SHA-256
of those plus the pipeline version and the ffmpeg version line (a new encoder build may make
other bits). Files are written atomically, so concurrent data-loader workers can share a
folder: the worst case is that two of them compute the same entry and the last rename wins
with identical bytes. Nothing is ever evicted; delete the folder to reclaim the space
(``docs/real-world.md`` gives the size per clip).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from vsvsr.training.degrade_pipeline import PIPELINE_VERSION, degrade_sequence
from vsvsr.training.degrade_spec import DegradeSpec
from vsvsr.utils.atomic import atomic_write

log = logging.getLogger(__name__)


def frames_digest(frames: np.ndarray) -> str:
    """SHA-256 of the frames' shape and bytes: a source key when the caller has none."""
    arr = np.ascontiguousarray(frames)
    h = hashlib.sha256(f"{arr.dtype}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


class DegradeCache:
    """:func:`degrade_sequence` behind a folder of ``.npy`` files.

    Args:
        root: the cache folder (created on the first write).
        ffmpeg: the ffmpeg binary (default: the one vsvsr finds).
    """

    def __init__(self, root: str | os.PathLike[str], *, ffmpeg: str | None = None) -> None:
        from vsvsr.encode.ffmpeg import ffmpeg_version, find_ffmpeg

        self.root = Path(root)
        self.ffmpeg = ffmpeg or find_ffmpeg()
        self._ffmpeg_version = ffmpeg_version(self.ffmpeg)
        self.hits = 0
        self.misses = 0

    def key(self, source_key: str, spec: DegradeSpec, *, scale: int, seed: int) -> str:
        """The entry's name: a hash of everything that decides its bytes."""
        ident = json.dumps({"source": source_key, "spec": spec.canonical(), "scale": scale,
                            "seed": seed, "pipeline": PIPELINE_VERSION,
                            "ffmpeg": self._ffmpeg_version}, sort_keys=True)
        return hashlib.sha256(ident.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def cached(self, source_key: str, spec: DegradeSpec, *, scale: int, seed: int,
               shape: tuple[int, int, int, int], mmap: bool = False) -> np.ndarray | None:
        """The stored entry if it exists and holds ``shape`` ((T, h, w, 3) uint8), else None.

        Never computes anything, so a caller can skip preparing the source frames on a hit.
        ``mmap`` maps the file read-only instead of reading it.
        """
        path = self.path(self.key(source_key, spec, scale=scale, seed=int(seed)))
        if not path.is_file():
            return None
        try:
            cached = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("degrade cache: %s is unreadable (%s); computing it again", path, exc)
            return None
        if cached.shape == tuple(shape) and cached.dtype == np.uint8:
            self.hits += 1
            return cached
        log.warning("degrade cache: %s holds %s %s, expected %s; computing it again "
                    "(a source_key reused for other frames?)", path, cached.dtype,
                    cached.shape, tuple(shape))
        return None

    def degrade(self, frames: np.ndarray, spec: DegradeSpec, *, scale: int, seed: int,
                source_key: str | None = None, mmap: bool = False) -> np.ndarray:
        """The degraded sequence, from the cache or computed and stored.

        Args:
            frames: as for :func:`degrade_sequence` ((T, H, W, 3) uint8).
            source_key: what identifies ``frames`` (e.g. ``"clip.mkv:120:32:crop"``); it must
                change whenever the frames do. None hashes the frames themselves (safe, and
                about a millisecond per megabyte).
            seed: an int (a generator has no stable identity to key on).
            mmap: return the entry memory-mapped read-only (training keeps many of them).
        """
        if not isinstance(seed, (int, np.integer)):
            raise TypeError(f"DegradeCache.degrade: seed must be an int, got {type(seed).__name__}")
        arr = np.asarray(frames)
        src = source_key if source_key is not None else frames_digest(arr)
        expected = (arr.shape[0], arr.shape[1] // scale, arr.shape[2] // scale, 3)
        hit = self.cached(src, spec, scale=scale, seed=int(seed), shape=expected, mmap=mmap)
        if hit is not None:
            return hit
        self.misses += 1
        lr = degrade_sequence(arr, spec, scale=scale, seed=int(seed), ffmpeg=self.ffmpeg)
        path = self.path(self.key(src, spec, scale=scale, seed=int(seed)))
        with atomic_write(path, "wb") as fh:
            np.save(fh, lr, allow_pickle=False)
        return np.load(path, mmap_mode="r", allow_pickle=False) if mmap else lr
