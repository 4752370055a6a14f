"""The CUDA calls vsvsr makes, behind one small interface, implemented with CuPy.

Everything the GPU backends do to memory and streams goes through a :class:`Device`: device
arrays, pinned host arrays, asynchronous copies, events, stream capture into CUDA graphs and
the colour kernels. :class:`CupyDevice` is the real one. The tests drive the same backend code
through a NumPy stand-in with the same methods (``tests/trt_standin/fake_cuda.py``), so the
order of copies, bindings and graph replays is checked on machines without a GPU.

Raw device pointers (``ptr``) are what TensorRT's ``set_tensor_address`` takes; CuPy arrays
also convert to PyTorch tensors without a copy (``__cuda_array_interface__``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

# cudaMemcpyKind
_H2D, _D2H, _D2D = 1, 2, 3


class Device(Protocol):
    """What the GPU backends need from CUDA; see :class:`CupyDevice` for the meaning."""

    name: str

    def new_stream(self) -> Any: ...
    def stream_handle(self, stream: Any) -> int: ...
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any: ...
    def ptr(self, array: Any) -> int: ...
    def pinned_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray: ...
    def upload(self, dst: Any, src: np.ndarray, stream: Any) -> None: ...
    def download(self, dst: np.ndarray, src: Any, stream: Any) -> None: ...
    def copy(self, dst: Any, src: Any, stream: Any) -> None: ...
    def zero(self, dst: Any, stream: Any) -> None: ...
    def new_event(self) -> Any: ...
    def record(self, event: Any, stream: Any) -> None: ...
    def wait_event(self, stream: Any, event: Any) -> None: ...
    def sync_event(self, event: Any) -> None: ...
    def synchronize(self, stream: Any) -> None: ...
    def capture(self, stream: Any, enqueue: Any) -> Any | None: ...
    def launch(self, graph: Any, stream: Any) -> None: ...
    def host_launch(self, stream: Any, fn: Any) -> None: ...
    def clear_error(self) -> None: ...
    def kernels(self) -> Any: ...


class CupyDevice:
    """The current CUDA device through CuPy (``pip install 'vsvsr[cuda]'``).

    Copies use ``cudaMemcpyAsync`` on raw pointers so they are asynchronous whenever the host
    side is pinned (:meth:`pinned_empty`); every call takes the stream explicitly and never
    uses the legacy default stream, which would serialize the whole device.
    """

    def __init__(self, index: int = 0) -> None:
        self.cp = lazy_import("cupy", "the CUDA frame buffers")
        self._dev = self.cp.cuda.Device(index)
        self._dev.use()
        props = self.cp.cuda.runtime.getDeviceProperties(index)
        name = props["name"]
        self.name = name.decode() if isinstance(name, bytes) else str(name)
        self._kernels = None

    # -- streams and memory ---------------------------------------------------------------------
    def new_stream(self) -> Any:
        return self.cp.cuda.Stream(non_blocking=True)

    def stream_handle(self, stream: Any) -> int:
        return int(stream.ptr)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.cp.empty(shape, dtype=dtype)

    def ptr(self, array: Any) -> int:
        return int(array.data.ptr)

    def pinned_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A page-locked host array: the only kind of host memory copies can overlap with."""
        dt = np.dtype(dtype)
        n = int(np.prod(shape))
        mem = self.cp.cuda.alloc_pinned_memory(max(1, n * dt.itemsize))
        return np.frombuffer(mem, dt, n).reshape(shape)  # .base keeps the pinned block alive

    def _memcpy(self, dst_ptr: int, src_ptr: int, nbytes: int, kind: int, stream: Any) -> None:
        self.cp.cuda.runtime.memcpyAsync(dst_ptr, src_ptr, nbytes, kind, stream.ptr)

    def upload(self, dst: Any, src: np.ndarray, stream: Any) -> None:
        _same_size(dst, src)
        self._memcpy(self.ptr(dst), _host_ptr(src), src.nbytes, _H2D, stream)

    def download(self, dst: np.ndarray, src: Any, stream: Any) -> None:
        _same_size(src, dst)
        self._memcpy(_host_ptr(dst), self.ptr(src), dst.nbytes, _D2H, stream)

    def copy(self, dst: Any, src: Any, stream: Any) -> None:
        _same_size(dst, src)
        self._memcpy(self.ptr(dst), self.ptr(src), src.nbytes, _D2D, stream)

    def zero(self, dst: Any, stream: Any) -> None:
        self.cp.cuda.runtime.memsetAsync(self.ptr(dst), 0, dst.nbytes, stream.ptr)

    # -- ordering -------------------------------------------------------------------------------
    def new_event(self) -> Any:
        return self.cp.cuda.Event(disable_timing=True)

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def wait_event(self, stream: Any, event: Any) -> None:
        stream.wait_event(event)

    def sync_event(self, event: Any) -> None:
        event.synchronize()

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    # -- CUDA graphs ----------------------------------------------------------------------------
    def capture(self, stream: Any, enqueue: Any) -> Any | None:
        """Capture what ``enqueue()`` puts on ``stream`` into a graph; ``None`` if that fails.

        The caller has already run ``enqueue`` once outside capture (lazy initialization
        inside TensorRT or cuDNN is not capturable). A failed capture leaves CUDA's sticky
        error state set (e.g. ``cudaErrorStreamCaptureInvalidated``), which the next CUDA call
        would report as its own failure: it is cleared here (``cudaGetLastError``, as trtexec
        does) before the caller falls back to plain enqueues.
        """
        try:
            stream.begin_capture()
        except Exception as exc:  # older driver or CuPy: run without graphs
            log.info("CUDA graph capture unavailable (%s); running without graphs", exc)
            self.clear_error()
            return None
        try:
            enqueue()
        except Exception as exc:
            log.info("CUDA graph capture failed (%s); running without graphs", exc)
            try:
                stream.end_capture()
            except Exception:  # the capture is invalidated already
                pass
            self.clear_error()
            return None
        try:
            return stream.end_capture()
        except Exception as exc:
            log.info("CUDA graph capture failed at the end (%s); running without graphs", exc)
            self.clear_error()
            return None

    def clear_error(self) -> None:
        """``cudaGetLastError``: read and reset the sticky error of this thread."""
        try:
            code = self.cp.cuda.runtime.getLastError()
        except Exception as exc:  # a CuPy without the call: nothing more can be done here
            log.debug("cudaGetLastError unavailable: %s", exc)
            return
        if code:
            log.info("cleared CUDA error %s left by the failed capture", code)

    def host_launch(self, stream: Any, fn: Any) -> None:
        """Call a library that launches its GPU work on ``stream`` itself (ONNX Runtime with
        a user compute stream); on a real device that is a plain call now."""
        fn()

    def launch(self, graph: Any, stream: Any) -> None:
        graph.launch(stream)

    def kernels(self) -> Any:
        """The colour-conversion kernels (compiled on first use)."""
        if self._kernels is None:
            from vsvsr.runtime.color_kernels import CupyColorKernels

            self._kernels = CupyColorKernels(self.cp)
        return self._kernels


def _host_ptr(array: np.ndarray) -> int:
    if not array.flags.c_contiguous:
        raise ValueError("host side of a CUDA copy must be C-contiguous")
    return int(array.ctypes.data)


def _same_size(a: Any, b: Any) -> None:
    if a.nbytes != b.nbytes:
        raise ValueError(f"CUDA copy between {a.nbytes} and {b.nbytes} bytes")
