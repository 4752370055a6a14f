"""User cut lists: frames where the recurrence must restart, read from a text file.

A cut list makes ``vsvsr upscale --cuts`` and ``vsvsr farm --cuts`` reset the recurrence at
the same frames (the filter sees them as ``_SceneChangePrev = 1``), so their outputs agree and
the farm may start a chunk at any cut. Plain Python: no VapourSynth needed to read or check one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vsvsr.errors import VsvsrError


class CutListError(VsvsrError, ValueError):
    """A cut list that cannot be read, is not increasing, or lies outside the clip."""


def read_cut_list(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """Frame numbers from ``path``: whole numbers separated by spaces, commas or new lines;
    ``#`` starts a comment. They must be strictly increasing (a sorted list without repeats).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CutListError(f"cut list {p}: cannot read it ({exc.strerror or exc})") from exc
    cuts: list[int] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for token in re.split(r"[\s,]+", line.split("#", 1)[0].strip()):
            if not token:
                continue
            if not token.isdigit():
                raise CutListError(f"cut list {p}, line {lineno}: {token!r} is not a frame "
                                   "number (whole numbers >= 0, one per line or comma-separated)")
            cuts.append(int(token))
    check_increasing(cuts, str(p))
    return tuple(cuts)


def check_increasing(cuts: tuple[int, ...] | list[int], where: str) -> None:
    """Refuse an unsorted list or one with repeats, naming the first offending pair."""
    for a, b in zip(cuts, cuts[1:], strict=False):
        if b <= a:
            raise CutListError(f"cut list {where}: frames must be strictly increasing, but {b} "
                               f"follows {a}; sort the list and remove repeats")
    if cuts and cuts[0] < 0:
        raise CutListError(f"cut list {where}: frame {cuts[0]} is negative")


def check_in_range(cuts: tuple[int, ...], num_frames: int, where: str) -> None:
    """Refuse cuts at or past the clip's end."""
    if cuts and cuts[-1] >= num_frames:
        raise CutListError(f"cut list {where}: frame {cuts[-1]} is outside the clip, which has "
                           f"{num_frames} frames (0..{num_frames - 1})")
