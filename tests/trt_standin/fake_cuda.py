"""A NumPy stand-in for :class:`vsvsr.runtime.cuda_device.CupyDevice` (tests only).

It behaves like a GPU where the tests can see mistakes:

- device arrays are opaque objects (no ``__array__``), so backend code that touches device
  memory with NumPy fails here as it would with CuPy;
- fresh device memory is filled with NaN (or 0xAB bytes), so a state buffer nobody zeroed
  poisons the output instead of happening to be zero;
- every pointer handed to the TensorRT stand-in is looked up among the live allocations, so a
  host pointer, a stale buffer or a too-small buffer is an error;
- work on a stream is recorded instead of run while the stream is being captured, and a graph
  replays the recorded work, reading memory at replay time, as a CUDA graph does;
- copies from or to host memory that is not pinned are counted (they would not overlap).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_handles = itertools.count(0x7000)
#: base pointer -> FakeArray, for every live device allocation
_ALLOCS: dict[int, FakeArray] = {}
_STREAMS: dict[int, FakeStream] = {}
STATS = {"default_stream_work": 0, "unpinned_copies": 0, "graph_launches": 0, "captures": 0}


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

    def __post_init__(self) -> None:
        _STREAMS[self.handle] = self


@dataclass
class FakeGraph:
    work: list[Callable[[], None]]
    stream_handle: int


@dataclass
class FakeEvent:
    recorded: bool = False


def enqueue(handle: int, work: Callable[[], None]) -> None:
    """Run ``work`` on stream ``handle`` (or record it while the stream captures)."""
    if handle == 0:
        STATS["default_stream_work"] += 1
    stream = _STREAMS.get(handle)
    if stream is not None and stream.capturing is not None:
        stream.capturing.append(work)
    else:
        work()


class FakeDevice:
    """Same methods as ``CupyDevice``; memory is host memory behind opaque arrays."""

    name = "Fake CUDA device (NumPy)"

    def __init__(self, *, capture_works: bool = True) -> None:
        self.capture_works = capture_works
        self._pinned: set[int] = set()

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
        self._check_host(src)
        _check_size(dst, src)
        ptr, shape, dtype = self.ptr(dst), dst.shape, dst.dtype
        enqueue(stream.handle, lambda: np.copyto(view(ptr, shape, dtype),
                                                 src.reshape(shape).view(dtype)))

    def download(self, dst: np.ndarray, src: FakeArray, stream: FakeStream) -> None:
        self._check_host(dst)
        _check_size(dst, src)
        ptr, shape, dtype = self.ptr(src), src.shape, src.dtype
        enqueue(stream.handle, lambda: np.copyto(dst.reshape(shape).view(dtype),
                                                 view(ptr, shape, dtype)))

    def copy(self, dst: FakeArray, src: FakeArray, stream: FakeStream) -> None:
        _check_size(dst, src)
        d, s = (self.ptr(dst), dst.shape, dst.dtype), (self.ptr(src), src.shape, src.dtype)
        enqueue(stream.handle, lambda: np.copyto(view(*d), view(*s).view(d[2]).reshape(d[1])))

    def zero(self, dst: FakeArray, stream: FakeStream) -> None:
        ptr, shape, dtype = self.ptr(dst), dst.shape, dst.dtype
        enqueue(stream.handle, lambda: view(ptr, shape, dtype).fill(0))

    def new_event(self) -> FakeEvent:
        return FakeEvent()

    def record(self, event: FakeEvent, stream: FakeStream) -> None:
        enqueue(stream.handle, lambda: setattr(event, "recorded", True))

    def wait_event(self, stream: FakeStream, event: FakeEvent) -> None:
        pass

    def sync_event(self, event: FakeEvent) -> None:
        pass

    def synchronize(self, stream: FakeStream) -> None:
        if stream.capturing is not None:
            raise FakeCudaError("synchronize on a stream that is capturing (illegal in CUDA)")

    def capture(self, stream: FakeStream, fn: Callable[[], None]) -> FakeGraph | None:
        if not self.capture_works:
            return None
        stream.capturing = []
        try:
            fn()
        finally:
            work, stream.capturing = stream.capturing, None
        STATS["captures"] += 1
        return FakeGraph(work, stream.handle)

    def launch(self, graph: FakeGraph, stream: FakeStream) -> None:
        STATS["graph_launches"] += 1
        for w in graph.work:
            enqueue(stream.handle, w)

    def kernels(self) -> Any:
        from vsvsr.runtime.color_kernels import NumpyColorKernels

        return NumpyColorKernels(view_fn=view, enqueue_fn=enqueue, handle_fn=self.stream_handle,
                                 ptr_fn=self.ptr)


def _check_size(a: Any, b: Any) -> None:
    if a.nbytes != b.nbytes:
        raise FakeCudaError(f"copy between {a.nbytes} and {b.nbytes} bytes")
