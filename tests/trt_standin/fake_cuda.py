"""A NumPy stand-in for :class:`vsvsr.runtime.cuda_device.CupyDevice` (tests only).

It behaves like a GPU where the tests can see mistakes:

- device arrays are opaque objects (no ``__array__``), so backend code that touches device
  memory with NumPy fails here as it would with CuPy;
- fresh device memory is filled with NaN (or 0xAB bytes), so a state buffer nobody zeroed
  poisons the output instead of happening to be zero;
- every pointer handed to the TensorRT stand-in is looked up among the live allocations, so a
  host pointer, a stale buffer or a too-small buffer is an error;
- **work is queued, not run**: each stream is a FIFO that runs only when something waits for
  it (``synchronize``, ``sync_event``, or another stream's ``wait_event`` that is itself being
  run), and then only as far as needed. So a missing event between two streams shows as a
  copy that reads memory before the producer wrote it, as it can on a GPU;
- an upload from a pinned host buffer checks, when it finally runs, that the host buffer still
  holds what it held when the copy was queued: a buffer rewritten while its copy was in flight
  (no event waited on) is a :class:`FakeCudaError`;
- work on a stream is recorded instead of queued while the stream is being captured, and a
  graph replays the recorded work, reading memory at replay time, as a CUDA graph does;
- copies from or to host memory that is not pinned are counted (they would not overlap);
- a failed capture leaves a sticky error (as CUDA's ``cudaErrorStreamCaptureInvalidated``
  does) that the next call reports unless :meth:`FakeDevice.capture` cleared it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_handles = itertools.count(0x7000)
_seq = itertools.count(1)  #: global order of queued operations, across streams
#: base pointer -> FakeArray, for every live device allocation
_ALLOCS: dict[int, FakeArray] = {}
_STREAMS: dict[int, FakeStream] = {}
STATS = {"default_stream_work": 0, "unpinned_copies": 0, "graph_launches": 0, "captures": 0,
         "stale_graph_replays": 0, "sticky_errors_cleared": 0}
#: Operations in the order they ran: (stream handle, label); tests read it.
TRACE: list[tuple[int, str]] = []


class FakeCudaError(RuntimeError):
    """What a real GPU would report as an illegal address or a misuse."""


class FakeArray:
    """A device allocation: shape, dtype, nbytes and a pointer, but no host access."""

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._mem = np.empty(self.shape, self.dtype)
        if self.dtype.kind == "f":
            self._mem.fill(np.nan)
        else:
            self._mem.view(np.uint8).fill(0xAB)
        self.nbytes = self._mem.nbytes
        self.ptr = int(self._mem.ctypes.data) if self._mem.size else id(self)
        _ALLOCS[self.ptr] = self

    def free(self) -> None:
        _ALLOCS.pop(self.ptr, None)


def view(ptr: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Device memory at ``ptr`` as a NumPy array, if it lies inside one live allocation."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dt.itemsize
    for base, arr in _ALLOCS.items():
        if base <= ptr and ptr + nbytes <= base + arr.nbytes:
            flat = arr._mem.reshape(-1).view(np.uint8)[ptr - base:ptr - base + nbytes]
            return flat.view(dt).reshape(shape)
    raise FakeCudaError(f"illegal address: {nbytes} bytes at {ptr:#x} are not inside any live "
                        "device allocation (a host pointer, a freed buffer or a buffer too small)")


@dataclass
class FakeStream:
    handle: int = field(default_factory=lambda: next(_handles))
    capturing: list[Callable[[], None]] | None = None
    queue: deque = field(default_factory=deque)  #: (seq, label, work) not yet run

    def __post_init__(self) -> None:
        _STREAMS[self.handle] = self


@dataclass
class FakeGraph:
    work: list[Callable[[], None]]
    stream_handle: int


@dataclass
class FakeEvent:
    #: (stream handle, seq of the record marker) of the latest ``record``; None: never recorded
    mark: tuple[int, int] | None = None
    recorded: bool = False  #: whether the latest record has run


def is_capturing(handle: int) -> bool:
    stream = _STREAMS.get(handle)
    return stream is not None and stream.capturing is not None


def enqueue(handle: int, work: Callable[[], None], label: str = "work") -> int:
    """Queue ``work`` on stream ``handle`` (or record it while the stream captures); returns
    its sequence number. The legacy default stream (0) waits for every stream, then runs."""
    if handle == 0:
        STATS["default_stream_work"] += 1
        for s in list(_STREAMS.values()):
            drain(s.handle)
        TRACE.append((0, label))
        work()
        return next(_seq)
    stream = _STREAMS.get(handle)
    if stream is None:
        raise FakeCudaError(f"invalid resource handle: no stream {handle:#x}")
    if stream.capturing is not None:
        stream.capturing.append(work)
        return -1
    seq = next(_seq)
    stream.queue.append((seq, label, work))
    return seq


def drain(handle: int, upto: int | None = None) -> None:
    """Run stream ``handle``'s queued work in order, up to sequence ``upto`` (all if None)."""
    stream = _STREAMS.get(handle)
    if stream is None:
        return
    while stream.queue and (upto is None or stream.queue[0][0] <= upto):
        _, label, work = stream.queue.popleft()
        TRACE.append((handle, label))
        work()


def drain_all() -> None:
    for s in list(_STREAMS.values()):
        drain(s.handle)


def reset_trace() -> None:
    TRACE.clear()


class FakeDevice:
    """Same methods as ``CupyDevice``; memory is host memory behind opaque arrays."""

    name = "Fake CUDA device (NumPy)"

    def __init__(self, *, capture_works: bool = True) -> None:
        self.capture_works = capture_works
        self._pinned: set[int] = set()
        self._sticky: str | None = None  #: a CUDA error not yet read with cudaGetLastError

    def _check_sticky(self) -> None:
        if self._sticky is not None:
            raise FakeCudaError(f"sticky CUDA error from an earlier call: {self._sticky} "
                                "(clear it with cudaGetLastError after a failed capture)")

    def new_stream(self) -> FakeStream:
        return FakeStream()

    def stream_handle(self, stream: FakeStream) -> int:
        return stream.handle

    def empty(self, shape: tuple[int, ...], dtype: Any) -> FakeArray:
        return FakeArray(shape, dtype)

    def ptr(self, array: FakeArray) -> int:
        if not isinstance(array, FakeArray):
            raise FakeCudaError(f"not a device array: {type(array).__name__}")
        return array.ptr

    def pinned_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        arr = np.empty(shape, dtype)
        self._pinned.add(int(arr.ctypes.data))
        return arr

    def _check_host(self, arr: np.ndarray) -> None:
        if not isinstance(arr, np.ndarray) or not arr.flags.c_contiguous:
            raise FakeCudaError("host side of a copy must be a C-contiguous NumPy array")
        if int(arr.ctypes.data) not in self._pinned:
            STATS["unpinned_copies"] += 1

    def upload(self, dst: FakeArray, src: np.ndarray, stream: FakeStream) -> None:
        self._check_sticky()
        self._check_host(src)
        _check_size(dst, src)
        ptr, shape, dtype = self.ptr(dst), dst.shape, dst.dtype
        queued = src.tobytes()  # what the host meant to send when it queued the copy

        def work() -> None:
            if src.tobytes() != queued:
                raise FakeCudaError(
                    f"host buffer at {int(src.ctypes.data):#x} was rewritten while its upload "
                    "was in flight: wait for the copy's event before reusing the buffer")
            np.copyto(view(ptr, shape, dtype), src.reshape(shape).view(dtype))

        enqueue(stream.handle, work, "upload")

    def download(self, dst: np.ndarray, src: FakeArray, stream: FakeStream) -> None:
        self._check_sticky()
        self._check_host(dst)
        _check_size(dst, src)
        ptr, shape, dtype = self.ptr(src), src.shape, src.dtype
        enqueue(stream.handle, lambda: np.copyto(dst.reshape(shape).view(dtype),
                                                 view(ptr, shape, dtype)), "download")

    def copy(self, dst: FakeArray, src: FakeArray, stream: FakeStream) -> None:
        self._check_sticky()
        _check_size(dst, src)
        d, s = (self.ptr(dst), dst.shape, dst.dtype), (self.ptr(src), src.shape, src.dtype)
        enqueue(stream.handle, lambda: np.copyto(view(*d), view(*s).view(d[2]).reshape(d[1])),
                "copy")

    def zero(self, dst: FakeArray, stream: FakeStream) -> None:
        self._check_sticky()
        ptr, shape, dtype = self.ptr(dst), dst.shape, dst.dtype
        enqueue(stream.handle, lambda: view(ptr, shape, dtype).fill(0), "zero")

    def new_event(self) -> FakeEvent:
        return FakeEvent()

    def record(self, event: FakeEvent, stream: FakeStream) -> None:
        if stream.capturing is not None:
            raise FakeCudaError("event record inside a capture: not used by vsvsr")
        event.recorded = False
        seq = enqueue(stream.handle, lambda: setattr(event, "recorded", True), "record")
        event.mark = (stream.handle, seq)

    def wait_event(self, stream: FakeStream, event: FakeEvent) -> None:
        """Later work on ``stream`` waits for the event's latest record (at call time)."""
        if event.mark is None:
            return  # never recorded: CUDA treats it as complete
        other, seq = event.mark
        enqueue(stream.handle, lambda: drain(other, seq), "wait")

    def sync_event(self, event: FakeEvent) -> None:
        if event.mark is not None:
            drain(*event.mark)

    def synchronize(self, stream: FakeStream) -> None:
        if stream.capturing is not None:
            raise FakeCudaError("synchronize on a stream that is capturing (illegal in CUDA)")
        drain(stream.handle)

    def capture(self, stream: FakeStream, fn: Callable[[], None]) -> FakeGraph | None:
        self._check_sticky()
        if not self.capture_works:
            # What a failed capture leaves behind on a GPU: an error code that the next CUDA
            # call would report, unless the caller clears it (vsvsr's capture does).
            self._sticky = "cudaErrorStreamCaptureUnsupported"
            self.clear_error()
            return None
        stream.capturing = []
        try:
            fn()
        except Exception:  # as CupyDevice: an invalidated capture, the error cleared
            self._sticky = "cudaErrorStreamCaptureInvalidated"
            self.clear_error()
            return None
        finally:
            work, stream.capturing = stream.capturing, None
        STATS["captures"] += 1
        return FakeGraph(work, stream.handle)

    def clear_error(self) -> None:
        """``cudaGetLastError``: read and clear the sticky error."""
        if self._sticky is not None:
            STATS["sticky_errors_cleared"] += 1
        self._sticky = None

    def launch(self, graph: FakeGraph, stream: FakeStream) -> None:
        self._check_sticky()
        STATS["graph_launches"] += 1
        for w in graph.work:
            enqueue(stream.handle, w, "graph")

    def host_launch(self, stream: FakeStream, fn: Callable[[], None]) -> None:
        """A library call that launches its GPU work on ``stream`` (ONNX Runtime with a user
        stream): on the fake device the call itself runs when the stream gets there."""
        self._check_sticky()
        enqueue(stream.handle, fn, "library")

    def kernels(self) -> Any:
        from vsvsr.runtime.color_kernels import NumpyColorKernels

        return NumpyColorKernels(view_fn=view, enqueue_fn=enqueue, handle_fn=self.stream_handle,
                                 ptr_fn=self.ptr)


def _check_size(a: Any, b: Any) -> None:
    if a.nbytes != b.nbytes:
        raise FakeCudaError(f"copy between {a.nbytes} and {b.nbytes} bytes")
