"""Frames on the GPU: one upload in the source format, one download in the output format,
double-buffered so copies overlap the network.

:class:`FramePipeline` feeds one recurrence (one :class:`DeviceState`) of a
:class:`DeviceEngine` with frames in their own format. Per frame:

    upload stream   host planes -> pinned slot -> device slot          (frame n+1)
    compute stream  lr -> lr_prev (device copy); to_model kernel -> lr; network;
                    from_model kernel -> device out slot                (frame n)
    download stream device out slot -> pinned slot                     (frame n-1)

Events order the streams; each slot's pinned and device buffers are reused only after the
copy that last used them finished. A caller that submits frame n+1 before collecting frame n
(:meth:`submit` / :meth:`collect`) gets the overlap; the previous LR frame stays on the device,
so each frame crosses the bus once each way. When the frame on the device is not the previous
frame of this step (the runner switched cursors, or continued from a saved state), the caller
passes that frame's planes and they are uploaded and converted into ``lr_prev`` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vsvsr.runtime.color_kernels import FrameFormat, split_planes
from vsvsr.runtime.device_engine import DeviceEngine, DeviceState


@dataclass
class _Slot:
    pin_in: np.ndarray
    dev_in: Any
    pin_step: np.ndarray
    pin_out: np.ndarray
    dev_out: Any
    uploaded: Any
    converted: Any
    downloaded: Any
    pending: bool = False


class FramePipeline:
    """Source-format frames in, output-format frames out, for one recurrent state."""

    def __init__(self, engine: DeviceEngine, in_fmt: FrameFormat, out_fmt: FrameFormat, *,
                 slots: int = 2) -> None:
        if not engine.recurrent:
            raise ValueError("FramePipeline drives a recurrent engine")
        self.engine, self.device = engine, engine.device
        self.in_fmt, self.out_fmt = in_fmt, out_fmt
        _, _, self.height, self.width = engine.tensor("lr").shape
        _, _, self.out_height, self.out_width = engine.tensor("sr").shape
        dev = self.device
        self.upload_stream, self.download_stream = dev.new_stream(), dev.new_stream()
        n_in = in_fmt.frame_elements(self.width, self.height)
        n_out = out_fmt.frame_elements(self.out_width, self.out_height)
        self._slots = [_Slot(pin_in=dev.pinned_empty((n_in,), in_fmt.dtype),
                             dev_in=dev.empty((n_in,), in_fmt.dtype),
                             pin_step=dev.pinned_empty((1, 1, 1, 1), engine.tensor("step").dtype),
                             pin_out=dev.pinned_empty((n_out,), out_fmt.dtype),
                             dev_out=dev.empty((n_out,), out_fmt.dtype),
                             uploaded=dev.new_event(), converted=dev.new_event(),
                             downloaded=dev.new_event())
                       for _ in range(slots)]
        self._next = 0
        self.kernels = dev.kernels()
        #: Which source frame the device's ``lr`` buffer holds (the caller's id), if any.
        self.resident: object = None
        self.stats = {"frames": 0, "prev_uploads": 0}

    def _upload(self, slot: _Slot, planes: list[np.ndarray], dst: Any) -> None:
        """Source planes -> the slot's pinned and device buffers -> model RGB in ``dst``."""
        dev, compute = self.device, self.engine.stream
        dev.sync_event(slot.uploaded)  # its pinned input is free again
        for d, src in zip(split_planes(slot.pin_in, self.in_fmt, self.width, self.height),
                          planes, strict=True):
            np.copyto(d, src)
        dev.upload(slot.dev_in, slot.pin_in, self.upload_stream)
        dev.record(slot.uploaded, self.upload_stream)
        dev.wait_event(compute, slot.uploaded)
        self.kernels.to_model(slot.dev_in, dst, self.in_fmt, self.width, self.height, compute)

    def submit(self, planes: list[np.ndarray], state: DeviceState, step: int, *,
               reset: bool, frame_id: object = None, prev_id: object = None,
               prev_planes: list[np.ndarray] | None = None) -> int:
        """Queue one frame; returns the ticket for :meth:`collect`.

        ``reset`` marks a reset point (the previous frame is the frame itself), as the
        recurrent runner does at frame 0 and scene changes; ``state`` should then be fresh.
        Otherwise the previous frame is the one on the device, unless ``prev_id`` says it is
        another (ids are the caller's, e.g. frame numbers; ``None``: trust the device), whose
        ``prev_planes`` are then uploaded.
        """
        idx = self._next
        slot = self._slots[idx]
        if slot.pending:
            raise RuntimeError(f"frame slot {idx} still holds an uncollected frame; collect it "
                               f"first (at most {len(self._slots)} frames in flight)")
        self._next = (idx + 1) % len(self._slots)
        dev, eng, compute = self.device, self.engine, self.engine.stream
        lr, lr_prev = eng._buf["lr"], eng._buf["lr_prev"]
        if not reset:
            if prev_id is None or prev_id == self.resident:
                dev.copy(lr_prev, lr, compute)  # the previous frame, still on the device
            else:
                if prev_planes is None:
                    raise ValueError("the previous frame is not on the device: pass its planes")
                self._upload(slot, prev_planes, lr_prev)
                self.stats["prev_uploads"] += 1
        self._upload(slot, planes, lr)
        if reset:
            dev.copy(lr_prev, lr, compute)
        self.resident = frame_id
        slot.pin_step[...] = step  # its last upload ran before this slot's last download
        dev.upload(eng._buf["step"], slot.pin_step, compute)
        with eng._lock:
            eng._execute(state.pair, state.parity)
            state.parity ^= 1
        dev.wait_event(compute, slot.downloaded)  # its device output is free again
        self.kernels.from_model(eng._buf["sr"], slot.dev_out, self.out_fmt, self.out_width,
                                self.out_height, compute)
        dev.record(slot.converted, compute)
        dev.wait_event(self.download_stream, slot.converted)
        dev.download(slot.pin_out, slot.dev_out, self.download_stream)
        dev.record(slot.downloaded, self.download_stream)
        slot.pending = True
        self.stats["frames"] += 1
        return idx

    def collect(self, ticket: int) -> list[np.ndarray]:
        """The output planes of a submitted frame (waits for its download)."""
        slot = self._slots[ticket]
        self.device.sync_event(slot.downloaded)
        slot.pending = False
        return [p.copy() for p in split_planes(slot.pin_out, self.out_fmt, self.out_width,
                                               self.out_height)]
