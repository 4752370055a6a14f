"""Feed a GPU engine the clip's own frames: upload native planes, convert on the device.

:class:`DeviceFrameStepper` is the recurrent runner's stepper for the GPU backends'
frame path. Frames are :class:`NativeFrame` (the source planes as VapourSynth gives them);
each step goes through a :class:`vsvsr.runtime.cuda_buffers.FramePipeline`: one upload in the
source format, colour conversion and the network on the device with the state kept there,
one download in the output format. Steps are *submitted* and *finished* separately, so the
runner can keep two frames in flight (the upload of frame n+1 overlapping the network on n
and the download of n-1); results come back in submission order through callbacks.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vsvsr.errors import ModelFileError, NonFiniteError
from vsvsr.runtime.color_kernels import FrameFormat
from vsvsr.runtime.cuda_buffers import FramePipeline
from vsvsr.runtime.device_engine import DeviceEngine, DeviceState


@dataclass(eq=False)
class NativeFrame:
    """One frame in its own format: its planes (host copies), and its number in the clip."""

    n: int
    planes: tuple[np.ndarray, ...]
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The model input it becomes, ``(1, 3, H, W)`` (what the runner reads sizes from)."""
        return (1, 3, self.height, self.width)

    def digest(self) -> str:
        """A short hash of the samples, tying a saved state to its clip."""
        h = hashlib.sha256()
        for p in self.planes:
            h.update(np.ascontiguousarray(p).tobytes())
        return h.hexdigest()[:32]


class DeviceFrameStepper:
    """The runner's stepper over a :class:`FramePipeline` (see the module docstring)."""

    pipelined = True

    def __init__(self, engine: DeviceEngine, in_fmt: FrameFormat, out_fmt: FrameFormat, *,
                 slots: int = 2) -> None:
        d = engine.descriptor
        if not d.recurrent or not engine.recurrent:
            raise ModelFileError(f"model {d.name!r} is not recurrent; vsvsr.recurrent needs a "
                                 "recurrent model such as rvsr-x2")
        self.engine = engine
        self.scale = d.scale
        self.state_channels = d.state_channels
        self.out_fmt = out_fmt
        self.pipeline = FramePipeline(engine, in_fmt, out_fmt, slots=slots)
        #: (serial, pipeline ticket, callback) of submitted steps, oldest first
        self._inflight: deque[tuple[int, int, Callable[[tuple[np.ndarray, ...]], None]]] = deque()
        self._slots = slots
        self._serial = 0

    def zero_state(self, height: int, width: int) -> DeviceState:
        return self.engine.new_state(height, width)

    def submit(self, lr: NativeFrame, lr_prev: NativeFrame, state: Any, step: int,
               on_done: Callable[[tuple[np.ndarray, ...]], None]) -> tuple[int, DeviceState]:
        """Queue one step; ``on_done(planes)`` gets the output frame's planes when it is
        finished. Returns (the ticket for :meth:`finish`, the state after the step: the same
        device state, advanced in stream order, or the upload of a saved host state).
        ``lr_prev`` being the same frame as ``lr`` marks a reset point."""
        if isinstance(state, np.ndarray):  # a saved state, loaded from disk
            state = self.engine.state_from_host(state)
        if len(self._inflight) >= self._slots:
            self._finish_oldest()
        reset = lr_prev is lr or lr_prev.n == lr.n
        ticket = self.pipeline.submit(list(lr.planes), state, step, reset=reset, frame_id=lr.n,
                                      prev_id=None if reset else lr_prev.n,
                                      prev_planes=None if reset else list(lr_prev.planes))
        self._serial += 1
        self._inflight.append((self._serial, ticket, on_done))
        return self._serial, state

    def finish(self, serial: int) -> None:
        """Wait for every step up to ``serial`` (in order), handing each to its callback."""
        while self._inflight and self._inflight[0][0] <= serial:
            self._finish_oldest()

    def finish_all(self) -> None:
        while self._inflight:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        _, ticket, on_done = self._inflight.popleft()
        planes = tuple(self.pipeline.collect(ticket))
        if self.out_fmt.is_float and not all(np.isfinite(p).all() for p in planes):
            raise NonFiniteError(f"model {self.engine.descriptor.name!r} produced NaN/inf on "
                                 f"backend {self.engine.backend}; the model file is broken or "
                                 "the backend misbehaves: try backend='ort'")
        on_done(planes)
