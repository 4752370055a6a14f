"""ONNX Runtime on CUDA over the device engine's buffers: the ``ort-cuda`` frame path.

For GPUs without TensorRT and without a CUDA PyTorch: ONNX Runtime's CUDA execution provider
runs the model on the :class:`DeviceEngine`'s device buffers through an ``IOBinding`` (raw
device pointers, no copies) on the engine's own stream (``user_compute_stream``), and the
run does not synchronize at its end (``disable_synchronize_execution_providers``), so the
colour kernels, the network and the copies queue on one stream like TensorRT's. CUDA graphs
are not used (ONNX Runtime's own graph mode needs fixed bindings per session): plain runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import BackendUnavailableError
from vsvsr.runtime.cuda_device import Device
from vsvsr.runtime.device_engine import DeviceEngine, IOTensor
from vsvsr.runtime.engine_key import model_input_shapes
from vsvsr.runtime.ort_backend import _descriptor_of, open_session, ort_providers
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

_NP = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16)}


class OrtDeviceExecutor:
    """An ONNX Runtime session run on bound device pointers (see the module docstring).

    ``device_type`` is ``"cuda"`` on a GPU; the tests' NumPy device binds host pointers as
    ``"cpu"`` and runs the same code through ONNX Runtime's CPU provider.
    """

    def __init__(self, session: Any, device: Device, descriptor: Any,
                 input_shapes: dict[str, tuple[int, ...]], *, device_type: str = "cuda") -> None:
        self.ort = lazy_import("onnxruntime", "the ONNX Runtime CUDA backend")
        self.session, self.device, self.device_type = session, device, device_type
        s = descriptor.scale
        h, w = input_shapes["lr"][2:]
        out_shapes = {"sr": (1, 3, h * s, w * s), "state_out": input_shapes.get("state")}
        tensors = [IOTensor(a.name, tuple(input_shapes[a.name]), _NP.get(a.type, np.dtype(np.float32)),
                            True) for a in session.get_inputs()]
        tensors += [IOTensor(a.name, tuple(out_shapes[a.name]), _NP.get(a.type, np.dtype(np.float32)),
                             False) for a in session.get_outputs()]
        self.tensors = tuple(tensors)
        self._spec = {t.name: t for t in tensors}
        self._ptrs: dict[str, int] = {}
        self._options = self.ort.RunOptions()
        self._options.add_run_config_entry("disable_synchronize_execution_providers", "1")

    def clone(self) -> OrtDeviceExecutor:
        other = object.__new__(OrtDeviceExecutor)
        other.__dict__.update(self.__dict__)
        other._ptrs = {}
        return other

    def bind(self, name: str, array: Any) -> None:
        self._ptrs[name] = self.device.ptr(array)

    def enqueue(self, stream: Any) -> None:
        binding = self.session.io_binding()  # the pointers bound now, as TensorRT takes them
        for name, ptr in self._ptrs.items():
            t = self._spec[name]
            bind = binding.bind_input if t.is_input else binding.bind_output
            bind(name, self.device_type, 0, t.dtype, list(t.shape), ptr)
        self.device.host_launch(stream, lambda: self.session.run_with_iobinding(
            binding, self._options))

    def capture(self, stream: Any) -> Any | None:
        return None  # plain runs (see the module docstring)

    def launch(self, graph: Any, stream: Any) -> None:  # pragma: no cover - never captured
        raise RuntimeError("ONNX Runtime runs are not captured into graphs")

    def close(self) -> None:
        self._ptrs.clear()


def open_ort_cuda_engine(onnx: str | Path, size: tuple[int, int], *, device: Device | None = None,
                         device_type: str = "cuda", threads: int = 0) -> DeviceEngine:
    """The ONNX model on ONNX Runtime's CUDA provider over device buffers at LR ``size``."""
    if device is None:
        from vsvsr.runtime.cuda_device import CupyDevice

        device = CupyDevice()
    stream = device.new_stream()
    if device_type == "cuda":
        if "CUDAExecutionProvider" not in ort_providers():
            raise BackendUnavailableError("backend 'ort-cuda' needs onnxruntime-gpu with a CUDA "
                                          "GPU; install onnxruntime-gpu or use backend='ort'")
        providers: list[Any] = [("CUDAExecutionProvider", {
            "user_compute_stream": str(device.stream_handle(stream)),
            "has_user_compute_stream": "1"}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    session = open_session(onnx, providers=providers, threads=threads)
    descriptor = _descriptor_of(session, onnx)
    executor = OrtDeviceExecutor(session, device, descriptor,
                                 model_input_shapes(descriptor, size), device_type=device_type)
    engine = DeviceEngine(descriptor, executor, device, backend="ort-cuda", use_graphs=False,
                          stream=stream)
    engine.path = Path(onnx)  # type: ignore[attr-defined]
    return engine
