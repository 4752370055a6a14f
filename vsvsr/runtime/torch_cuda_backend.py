"""PyTorch CUDA backend for GPUs without TensorRT: fp16, CUDA graphs, the same device buffers.

The network runs from its ``.pth`` in fp16 (or fp32) on tensors that *are* the
:class:`DeviceEngine`'s CuPy buffers (``torch.as_tensor`` over ``__cuda_array_interface__``,
no copy), on the engine's own stream (``torch.cuda.ExternalStream``). So the state ping-pong,
pinned staging and graph-per-parity logic are the TensorRT backend's, and only the executor
differs: a forward pass whose results are copied into the bound output buffers, captured with
``torch.cuda.graph`` after one plain run.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import BackendUnavailableError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.runtime.cuda_device import Device
from vsvsr.runtime.device_engine import DeviceEngine, IOTensor
from vsvsr.runtime.engine_key import model_input_shapes
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

FP16_MAX = 65504.0


class TorchCudaExecutor:
    """A PyTorch module run on bound CuPy buffers (see the module docstring)."""

    def __init__(self, net: Any, device: Device, input_shapes: dict[str, tuple[int, ...]], *,
                 fp16: bool = True) -> None:
        torch = lazy_import("torch", "the PyTorch CUDA backend")
        if not torch.cuda.is_available():
            raise BackendUnavailableError("backend 'torch-cuda' needs a CUDA GPU visible to "
                                          "PyTorch; use backend='ort'")
        self.torch, self.device = torch, device
        self.dtype = torch.float16 if fp16 else torch.float32
        self.net = net.eval().to("cuda", dtype=self.dtype)
        self.input_names = list(input_shapes)
        np_dtype = np.dtype(np.float16 if fp16 else np.float32)
        with torch.inference_mode():
            zeros = [torch.zeros(s, device="cuda", dtype=self.dtype) for s in input_shapes.values()]
            outs = self.net(*zeros)
        outs = outs if isinstance(outs, tuple) else (outs,)
        self.output_names = ["sr", "state_out"][:len(outs)]
        tensors = [IOTensor(n, tuple(s), np.dtype(np.float32) if n == "step" else np_dtype, True)
                   for n, s in input_shapes.items()]
        tensors += [IOTensor(n, tuple(o.shape), np_dtype, False)
                    for n, o in zip(self.output_names, outs, strict=True)]
        self.tensors = tuple(tensors)
        self._bound: dict[str, Any] = {}

    def clone(self) -> TorchCudaExecutor:
        """Another executor on the same module (the weights are shared), nothing bound: the
        :class:`DeviceEngine` keeps one per captured graph, as for TensorRT."""
        other = copy.copy(self)
        other._bound = {}
        return other

    def bind(self, name: str, array: Any) -> None:
        self._bound[name] = self.torch.as_tensor(array, device="cuda")  # shares the memory

    def _forward(self) -> None:
        t = self._bound
        args = []
        for name in self.input_names:
            x = t[name]
            if name == "step":  # a frame counter: clamp before it meets fp16
                x = x.clamp(max=FP16_MAX).to(self.dtype)
            args.append(x)
        with self.torch.inference_mode():
            outs = self.net(*args)
        outs = outs if isinstance(outs, tuple) else (outs,)
        for name, value in zip(self.output_names, outs, strict=True):
            t[name].copy_(value)

    def _torch_stream(self, stream: Any) -> Any:
        return self.torch.cuda.ExternalStream(self.device.stream_handle(stream))

    def enqueue(self, stream: Any) -> None:
        with self.torch.cuda.stream(self._torch_stream(stream)):
            self._forward()

    def capture(self, stream: Any) -> Any | None:
        torch = self.torch
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self._torch_stream(stream)):
                self._forward()
            return graph
        except Exception as exc:  # capture is best effort; plain enqueues still work
            log.info("torch CUDA graph capture failed (%s)", exc)
            return None

    def launch(self, graph: Any, stream: Any) -> None:
        with self.torch.cuda.stream(self._torch_stream(stream)):
            graph.replay()

    def close(self) -> None:
        self._bound.clear()
        self.net = None  # this clone's reference only; the others keep theirs


def open_torch_cuda_engine(pth: str | Path, size: tuple[int, int], *, fp16: bool = True,
                           device: Device | None = None, use_graphs: bool = True) -> DeviceEngine:
    """The ``.pth`` model on the GPU at LR ``size`` (width, height)."""
    from vsvsr.nets.arch_registry import build_net
    from vsvsr.runtime.torch_backend import load_checkpoint

    data = load_checkpoint(pth)
    descriptor = ModelDescriptor.from_json(data["descriptor"], source=str(pth))
    net = build_net(data["arch"], data["config"])
    net.load_state_dict(data["state_dict"])
    if device is None:
        from vsvsr.runtime.cuda_device import CupyDevice

        device = CupyDevice()
    executor = TorchCudaExecutor(net, device, model_input_shapes(descriptor, size), fp16=fp16)
    engine = DeviceEngine(descriptor, executor, device, backend="torch-cuda",
                          use_graphs=use_graphs)
    engine.path = Path(pth)  # type: ignore[attr-defined]
    return engine
