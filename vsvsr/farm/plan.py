"""Chunk planning: group scenes into chunks of about N frames that start at reset points.

A recurrent model's output for a frame depends only on the frames since its reset point
(frame 0, a scene change, a user cut), so a chunk that starts at a reset point computes
exactly the frames one continuous run would. A scene longer than the chunk limit has no
reset point to split at: it stays whole (exact), or, with ``warmup``, it is split and each
later piece starts ``warmup`` frames early from a fresh state (approximate, and reported).
Plain Python, no VapourSynth or Ray.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from vsvsr.errors import VsvsrError

log = logging.getLogger(__name__)


class PlanError(VsvsrError, ValueError):
    """Chunking options that cannot work (e.g. a chunk limit below one frame)."""


@dataclass(kw_only=True, frozen=True)
class Chunk:
    """Output frames ``[start, end)``, encoded into one file by one task.

    Attributes:
        index: position in the output (chunks are joined in index order).
        start, end: the frame range, ``end`` exclusive.
        exact: True when ``start`` is a reset point (or the start of the requested range), so
            the frames equal a continuous run's; False for a mid-scene piece warmed up from
            ``start - warmup``.
    """

    index: int
    start: int
    end: int
    exact: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise PlanError(f"Chunk {self.index}: bad range [{self.start}, {self.end})")

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(kw_only=True, frozen=True)
class Plan:
    """The chunks and what the planner had to say about long scenes."""

    chunks: tuple[Chunk, ...]
    long_scenes: tuple[tuple[int, int], ...] = ()  #: scenes longer than the limit, [a, b)

    @property
    def approximate(self) -> tuple[Chunk, ...]:
        return tuple(c for c in self.chunks if not c.exact)


def scenes(resets: Sequence[int], start: int, end: int) -> list[tuple[int, int]]:
    """The scenes ``[a, b)`` covering ``[start, end)``, split at the reset points inside it."""
    cuts = sorted({r for r in resets if start < r < end})
    bounds = [start, *cuts, end]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def plan_chunks(resets: Sequence[int], start: int, end: int, chunk_frames: int, *,
                warmup: int | None = None) -> Plan:
    """Group the scenes of ``[start, end)`` into chunks of at most ``chunk_frames`` frames.

    Consecutive scenes are packed greedily; a scene longer than ``chunk_frames`` gets a chunk
    of its own, split into pieces of ``chunk_frames`` only when ``warmup`` is given (those
    pieces are marked inexact). Each long scene is logged as a warning.
    """
    if chunk_frames < 1:
        raise PlanError(f"--chunk-frames must be at least 1, got {chunk_frames}")
    if not 0 <= start < end:
        raise PlanError(f"empty frame range [{start}, {end})")
    ranges: list[tuple[int, int, bool]] = []
    long_scenes: list[tuple[int, int]] = []
    cur: list[int] | None = None  # [a, b] of the chunk being filled
    for a, b in scenes(resets, start, end):
        if b - a > chunk_frames:
            if cur is not None:
                ranges.append((cur[0], cur[1], True))
                cur = None
            long_scenes.append((a, b))
            if warmup is None:
                log.warning("vsvsr farm: the scene at frames %d-%d has %d frames, more than "
                            "--chunk-frames %d, and no reset point inside: its chunk is as long "
                            "as the scene (pass --warmup K to split it, approximately)",
                            a, b - 1, b - a, chunk_frames)
                ranges.append((a, b, True))
            else:
                log.warning("vsvsr farm: the scene at frames %d-%d has %d frames, more than "
                            "--chunk-frames %d: split with --warmup %d, so the first frames "
                            "after each split are approximate", a, b - 1, b - a, chunk_frames,
                            warmup)
                for s in range(a, b, chunk_frames):
                    ranges.append((s, min(b, s + chunk_frames), s == a))
            continue
        if cur is not None and b - cur[0] <= chunk_frames:
            cur[1] = b
        else:
            if cur is not None:
                ranges.append((cur[0], cur[1], True))
            cur = [a, b]
    if cur is not None:
        ranges.append((cur[0], cur[1], True))
    chunks = tuple(Chunk(index=i, start=a, end=b, exact=exact)
                   for i, (a, b, exact) in enumerate(ranges))
    return Plan(chunks=chunks, long_scenes=tuple(long_scenes))
