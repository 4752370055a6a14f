"""Decode each training video once into a memory-mapped uint8 cache, and find its shot cuts.

Decoding the 20 shared clips took about two minutes and 3 GB of memory at every start of a
run (not counted in its time budget). Here each source is decoded once (by
:func:`~vsvsr.training.video_source.load_sequence`, so the frames are exactly those of a direct
decode) into ``video/<name>-<key>.npy`` in the user cache folder
(:func:`~vsvsr.utils.cache_dir.user_cache_dir`), written atomically; later runs map the file
read-only, so the page cache shares it between runs and the resident memory is only what the
sampler touches. The key hashes the source's path, size and modification time, the shrink
factor and :data:`CACHE_VERSION`, so a changed source or setting never reads a stale cache.

Shot cuts are found on the cached frames (:func:`find_cuts`), so that training windows never
span two shots.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vsvsr.utils.atomic import atomic_write
from vsvsr.utils.cache_dir import user_cache_dir

log = logging.getLogger(__name__)

#: Bump when the decoded contents for the same key would change (decoder, shrink, layout).
CACHE_VERSION = 1
#: A frame starts a new shot when its luma differs from the previous frame's by more than this
#: (mean absolute difference of quarter-size luma, 0..1) ...
CUT_ABSOLUTE = 0.10
#: ... or by more than this many times the typical difference around it (and > CUT_FLOOR):
#: catches cuts between similar-looking dark shots that an absolute threshold misses.
CUT_RELATIVE = 5.0
CUT_FLOOR = 0.03
#: Frames on each side that define "the typical difference around it".
CUT_WINDOW = 12


def _fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """Size plus a hash of the first and last ``chunk`` bytes: what identifies a source file.

    Content, not times or absolute paths: a data folder copied afresh to a new machine (new
    modification times, another mount point) keeps its cache, which took minutes to build.
    """
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as fh:
        h.update(fh.read(chunk))
        if size > chunk:
            fh.seek(max(chunk, size - chunk))
            h.update(fh.read(chunk))
    return f"{size}:{h.hexdigest()[:16]}"


def _key(path: Path, presize: int) -> str:
    if path.is_dir():  # a frame folder: its files' names and fingerprints
        ident = "|".join(sorted(f"{p.name}:{_fingerprint(p, 1 << 16)}"
                                for p in path.iterdir() if p.is_file()))
    else:
        ident = _fingerprint(path)
    text = f"v{CACHE_VERSION}|{path.name}|{ident}|presize={presize}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedSequence:
    """One decoded source: frames (T, 3, H, W) uint8, memory-mapped, and its shot starts."""

    path: Path
    frames: np.ndarray
    cuts: tuple[int, ...]  #: indices t where frame t starts a new shot (never 0)
    #: the cache entry's name (source name, content fingerprint and shrink factor hashed): what
    #: caches derived from these frames key on (the pre-degraded variants); "" when unknown
    key: str = ""

    @property
    def shots(self) -> list[tuple[int, int]]:
        """[start, end) frame ranges of the shots, in order."""
        bounds = [0, *self.cuts, self.frames.shape[0]]
        return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]

    @property
    def nbytes(self) -> int:
        return int(self.frames.nbytes)


def cached_sequence(path: str | Path, *, presize: int, cache_dir: Path | None = None
                    ) -> CachedSequence:
    """The frames of ``path`` shrunk by ``presize``, decoded now or mapped from the cache."""
    from vsvsr.training.video_source import load_sequence

    src = Path(path)
    if not src.exists():
        raise FileNotFoundError(f"cached_sequence: {src} does not exist")
    folder = cache_dir / "video" if cache_dir is not None else user_cache_dir("video")
    target = folder / f"{src.stem}-{_key(src, presize)}.npy"
    if not target.is_file():
        frames = load_sequence(src, presize=presize, max_frames=None).numpy()
        with atomic_write(target) as fh:
            np.save(fh, frames, allow_pickle=False)
        log.info("cached %s: %d frames, %.1f MB in %s", src.name, frames.shape[0],
                 frames.nbytes / 1e6, target)
    try:
        frames = np.load(target, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:  # damaged: decode again rather than fail the run
        log.warning("video cache %s is unreadable (%s); decoding again", target, exc)
        target.unlink(missing_ok=True)
        return cached_sequence(src, presize=presize, cache_dir=cache_dir)
    return CachedSequence(path=src, frames=frames, cuts=find_cuts(frames), key=target.stem)


def luma_differences(frames: np.ndarray) -> np.ndarray:
    """Mean |luma_t - luma_{t-1}| (0..1) on quarter-size frames; element 0 is 0."""
    t = frames.shape[0]
    out = np.zeros(t, dtype=np.float64)
    prev = None
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(3, 1, 1)
    for i in range(t):
        small = np.asarray(frames[i, :, ::4, ::4], dtype=np.float32)
        y = (small * weights).sum(0) / 255.0
        if prev is not None:
            out[i] = float(np.abs(y - prev).mean())
        prev = y
    return out


def find_cuts(frames: np.ndarray) -> tuple[int, ...]:
    """Frames that start a new shot: a luma jump far above the usual frame-to-frame change."""
    diff = luma_differences(frames)
    cuts = []
    for i in range(1, len(diff)):
        lo, hi = max(1, i - CUT_WINDOW), min(len(diff), i + CUT_WINDOW + 1)
        around = np.concatenate([diff[lo:i], diff[i + 1:hi]])
        typical = float(np.median(around)) if around.size else 0.0
        if diff[i] > CUT_ABSOLUTE or (diff[i] > CUT_FLOOR and diff[i] > CUT_RELATIVE * typical):
            cuts.append(i)
    return tuple(cuts)


def as_tensor(frames: np.ndarray) -> torch.Tensor:
    """A torch view of (a slice of) cached frames, copied out of the read-only map."""
    return torch.from_numpy(np.ascontiguousarray(frames))
