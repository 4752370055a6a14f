"""The recurrent runner: exact output for any request order, with bounded memory.

Output n is a pure function of the input frames from n's *reset point* (frame 0, or the last
scene change at or before n) up to n. The runner keeps a few cursors ``(position, state)`` and
a small cache of finished outputs; a request is served from the cache, by advancing the
nearest cursor at or behind it, by continuing from a saved state (``state_dir``), or by a new
cursor at its reset point. So any frame can be recomputed exactly after a seek, an eviction or
a second request, whatever order and thread count the host uses.

``warmup`` trades exactness for seek speed: a new cursor starts at most ``warmup`` frames
before the request, from a fresh state, so frames after such a seek are approximate.

A *pipelined* stepper (the GPU frame path, :class:`vsvsr.recurrence.device_stepper.
DeviceFrameStepper`) takes steps with ``submit`` and hands results back later: a multi-step
advance keeps two frames in flight, and with ``readahead`` the step after a request is
submitted before the request's own result is waited for (unless it is a reset point), so the
next request's frame is on its way while the host writes this one out. Output is unchanged:
every step is the same function of the same frames, in the same order per cursor.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vsvsr.recurrence.state_store import StateStore, frame_hash
from vsvsr.recurrence.stepper import RecurrentStepper

log = logging.getLogger(__name__)


class FrameSource(Protocol):
    """Where the runner gets LR frames: (1, 3, H, W) float32 in [0, 1], and reset flags."""

    num_frames: int

    def fetch(self, n: int) -> tuple[np.ndarray, bool]:
        """Frame n and whether the recurrence must restart at n (a scene change)."""
        ...


@dataclass
class _Cursor:
    pos: int  #: last frame computed (start - 1 before the first step)
    state: np.ndarray  #: state after ``pos``
    prev: np.ndarray  #: input frame ``pos`` (the next step's previous frame)
    step: int  #: step number the next frame gets
    start: int  #: first frame this cursor computed or will compute
    exact: bool  #: False when it began from a warm-up restart
    tick: int = 0


@dataclass
class RunnerStats:
    """Counters that tests and benchmarks read to see the runner's work."""

    steps: int = 0
    cache_hits: int = 0
    new_cursors: int = 0
    states_loaded: int = 0
    states_saved: int = 0
    readahead_hits: int = 0


class RecurrentRunner:
    """Serve output frames of a recurrent model in any order; thread-safe."""

    def __init__(self, stepper: RecurrentStepper | Any, source: FrameSource, *,
                 max_cursors: int = 4, cache_frames: int = 16, warmup: int | None = None,
                 store: StateStore | None = None, readahead: bool = True) -> None:
        if max_cursors < 1:
            raise ValueError(f"max_cursors must be >= 1, got {max_cursors}")
        if cache_frames < 1:
            raise ValueError(f"cache_frames must be >= 1, got {cache_frames}")
        if warmup is not None and warmup < 0:
            raise ValueError(f"warmup must be >= 0 or None, got {warmup}")
        self.stepper = stepper
        self.source = source
        self.max_cursors = max_cursors
        self.cache_frames = cache_frames
        self.warmup = warmup
        self.store = store
        self.stats = RunnerStats()
        self._lock = threading.RLock()
        self._cursors: list[_Cursor] = []
        self._outputs: OrderedDict[int, np.ndarray] = OrderedDict()
        self._inputs: OrderedDict[int, tuple[np.ndarray, bool]] = OrderedDict()
        self._resets: dict[int, bool] = {}
        self._tick = 0
        self._saved: set[int] = set()
        self._pipelined = bool(getattr(stepper, "pipelined", False))
        self.readahead = readahead and self._pipelined
        self._pending: dict[int, int] = {}  #: frame -> ticket of a submitted, unfinished step

    # -- public -------------------------------------------------------------------------------
    def get(self, n: int) -> np.ndarray:
        """The SR output of frame n, shape (1, 3, sH, sW)."""
        if not 0 <= n < self.source.num_frames:
            raise IndexError(f"frame {n} out of range [0, {self.source.num_frames})")
        with self._lock:
            out = self._outputs.get(n)
            if out is not None:
                self._outputs.move_to_end(n)
                self.stats.cache_hits += 1
                return out
            if n in self._pending:  # read ahead by the previous request
                self.stats.readahead_hits += 1
                for cursor in [c for c in self._cursors if c.pos == n][:1]:
                    self._touch(cursor)
                    self._read_ahead(cursor)
                return self._finish(n)
            cursor = self._cursor_for(n)
            result = None
            while cursor.pos < n:
                result = self._advance(cursor)
            if not self._pipelined:
                assert result is not None  # _cursor_for only returns cursors behind n
                return result
            if self.readahead:
                self._read_ahead(cursor)
            return self._finish(n)

    def save_states(self) -> None:
        """Save the state at the end of every exact cursor's range (``state_dir`` only)."""
        if self.store is None:
            return
        with self._lock:
            for c in self._cursors:
                if c.exact and c.pos >= c.start and c.pos not in self._saved:
                    self.store.save(c.pos, c.state, c.step, frame_hash(c.prev))
                    self._saved.add(c.pos)
                    self.stats.states_saved += 1

    # -- internals ----------------------------------------------------------------------------
    def _fetch(self, k: int) -> tuple[np.ndarray, bool]:
        item = self._inputs.get(k)
        if item is None:
            item = self.source.fetch(k)
            self._inputs[k] = item
            if len(self._inputs) > 8:
                self._inputs.popitem(last=False)
        self._resets[k] = item[1] or k == 0
        return item

    def _is_reset(self, k: int) -> bool:
        if k == 0:
            return True
        flag = self._resets.get(k)
        return self._fetch(k)[1] if flag is None else flag

    def _cursor_for(self, n: int) -> _Cursor:
        behind = [c for c in self._cursors if c.pos < n]
        best = max(behind, key=lambda c: (c.pos, c.exact), default=None)
        best_pos = best.pos if best is not None else -1
        saved = self.store.latest_before(n) if self.store is not None else None
        use_saved = saved is not None and saved > best_pos
        floor = (saved if use_saved else best_pos) + 1
        if self.warmup is not None:
            floor = max(floor, n - self.warmup)
        for k in range(n, floor - 1, -1):  # newest first: the reset nearest to n wins
            if self._is_reset(k):
                return self._new_cursor(k, exact=True)
        if use_saved and floor == saved + 1:
            return self._load_cursor(saved)
        if best is not None and floor == best_pos + 1:
            self._touch(best)
            return best
        log.debug("vsvsr: warm-up restart at %d for frame %d (approximate)", floor, n)
        return self._new_cursor(floor, exact=False)

    def _new_cursor(self, start: int, *, exact: bool) -> _Cursor:
        frame = self._fetch(start)[0]
        h, w = frame.shape[2:]
        cursor = _Cursor(pos=start - 1, state=self.stepper.zero_state(h, w), prev=frame,
                         step=0, start=start, exact=exact)
        self.stats.new_cursors += 1
        return self._add(cursor)

    def _load_cursor(self, k: int) -> _Cursor:
        assert self.store is not None
        frame = self._fetch(k)[0]
        state, step = self.store.load(k, frame_hash(frame))
        self._saved.add(k)
        self.stats.states_loaded += 1
        log.info("vsvsr: continuing from the saved state after frame %d", k)
        return self._add(_Cursor(pos=k, state=state, prev=frame, step=step, start=k + 1,
                                 exact=True))

    def _add(self, cursor: _Cursor) -> _Cursor:
        if len(self._cursors) >= self.max_cursors:
            victim = min(self._cursors, key=lambda c: c.tick)
            self._cursors.remove(victim)
        self._cursors.append(cursor)
        self._touch(cursor)
        return cursor

    def _touch(self, cursor: _Cursor) -> None:
        self._tick += 1
        cursor.tick = self._tick

    def _finish(self, n: int) -> Any:
        ticket = self._pending.get(n)
        if ticket is not None:
            self.stepper.finish(ticket)  # its callback stores the output
        return self._outputs[n]

    def _read_ahead(self, cursor: _Cursor) -> None:
        k = cursor.pos + 1
        if k < self.source.num_frames and k not in self._outputs and k not in self._pending \
                and not self._is_reset(k):
            self._advance(cursor)

    def _store(self, k: int, sr: Any) -> None:
        self._pending.pop(k, None)
        self._outputs[k] = sr
        self._outputs.move_to_end(k)
        while len(self._outputs) > self.cache_frames:
            self._outputs.popitem(last=False)

    def _advance(self, cursor: _Cursor) -> Any:
        k = cursor.pos + 1
        frame = self._fetch(k)[0]
        sr = None
        if self._pipelined:
            ticket, cursor.state = self.stepper.submit(
                frame, cursor.prev, cursor.state, cursor.step,
                lambda out, k=k: self._store(k, out))
            self._pending[k] = ticket
        else:
            sr, cursor.state = self.stepper.step(frame, cursor.prev, cursor.state, cursor.step)
            self._store(k, sr)
        cursor.pos, cursor.prev, cursor.step = k, frame, cursor.step + 1
        self.stats.steps += 1
        # Another cursor now at the same place with the same kind of history is redundant.
        for other in [c for c in self._cursors if c is not cursor and c.pos == k
                      and c.exact == cursor.exact]:
            self._cursors.remove(other)
        return sr
