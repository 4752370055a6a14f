"""PyTorch backend: runs the network from its ``.pth`` checkpoint (CPU or CUDA).

It is the reference the other backends are checked against, and the path for GPUs without
TensorRT. Only this module (and training) imports torch.

On the CPU it runs in fp32 (``precision="f32"``, the reference) or, asked for, in bf16: the
training's autocast + channels_last (:mod:`vsvsr.training.precision`), weights kept fp32,
inputs and outputs float32 either way; bf16 is refused on a CPU without native bf16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import BackendUnavailableError, ModelFileError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.runtime.engine import Engine, TensorSpec
from vsvsr.utils.lazy import lazy_import


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a vsvsr ``.pth`` model file (descriptor, arch, config, state_dict)."""
    torch = lazy_import("torch", "the PyTorch backend")
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        # Not PyTorch's own text: it suggests weights_only=False (running code from the file)
        # and filing a PyTorch issue, which is wrong advice for a damaged model file.
        raise ModelFileError(
            f"{p}: not a readable vsvsr .pth model file: {_why_unreadable(p, exc)}; re-export "
            "it with 'vsvsr export' (a built-in model: reinstall vsvsr), or use its .onnx "
            "with backend='ort'") from exc
    missing = {"descriptor", "arch", "config", "state_dict"} - set(data)
    if missing:
        raise ModelFileError(f"{p}: not a vsvsr model file (missing {sorted(missing)})")
    return data


def _why_unreadable(path: Path, exc: Exception) -> str:
    """What a .pth that ``torch.load(weights_only=True)`` refused is, in a few words."""
    import pickle
    import zipfile

    if path.stat().st_size == 0:
        return "the file is empty"
    if not zipfile.is_zipfile(path):
        return ("it is not a PyTorch zip archive (damaged, truncated, or another kind of file)")
    if isinstance(exc, pickle.UnpicklingError):
        return ("it holds Python objects other than weights and plain values, which vsvsr "
                "model files never contain and vsvsr does not run")
    return f"its archive is damaged ({type(exc).__name__})"


class TorchEngine(Engine):
    """A PyTorch module in eval mode, fed and read as NumPy arrays."""

    def __init__(self, path: str | Path, *, device: str = "cpu", threads: int = 0,
                 precision: str = "f32") -> None:
        from vsvsr.nets.arch_registry import build_net

        data = load_checkpoint(path)
        descriptor = ModelDescriptor.from_json(data["descriptor"], source=str(path))
        net = build_net(data["arch"], data["config"])
        net.load_state_dict(data["state_dict"])
        self._setup(net, descriptor, device=device, threads=threads, precision=precision)
        self.path = Path(path)

    @classmethod
    def from_net(cls, net: Any, descriptor: ModelDescriptor, *, device: str = "cpu",
                 threads: int = 0, precision: str = "f32") -> TorchEngine:
        """An engine around an in-memory network (e.g. a training checkpoint's)."""
        engine = cls.__new__(cls)
        engine._setup(net, descriptor, device=device, threads=threads, precision=precision)
        engine.path = None
        return engine

    def _setup(self, net: Any, descriptor: ModelDescriptor, *, device: str, threads: int,
               precision: str) -> None:
        torch = lazy_import("torch", "the PyTorch backend")
        from vsvsr.training.precision import PrecisionError, memory_format, resolve_precision

        super().__init__(descriptor)
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("backend 'torch-cuda' needs a CUDA GPU visible to "
                                          "PyTorch; use backend='torch' or 'ort'")
        if device == "cuda" and precision == "bf16":
            raise BackendUnavailableError("precision='bf16' runs the PyTorch backend on the CPU "
                                          "only; use backend='torch' or precision='f32'")
        try:
            resolved = "fp32" if device == "cuda" else resolve_precision(precision)
        except PrecisionError as exc:
            raise BackendUnavailableError(str(exc)) from exc
        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        self._device = torch.device(device)
        self._autocast_precision = resolved
        self._format = memory_format(resolved)
        self._net = net.eval().to(self._device, memory_format=self._format)
        #: ``bf16`` or ``f32`` (the runtime's names, as OpenVINO's engine reports them).
        self.precision = "bf16" if resolved == "bf16" else "f32"
        self.backend = f"torch-{device}"
        d = self.descriptor
        f32 = np.dtype(np.float32)
        self.inputs = (TensorSpec("lr", (1, 3, None, None), f32),
                        TensorSpec("lr_prev", (1, 3, None, None), f32),
                        TensorSpec("state", (1, d.state_channels, None, None), f32),
                        TensorSpec("step", (1, 1, 1, 1), f32))
        self.outputs = (TensorSpec("sr", (1, 3, None, None), f32),
                         TensorSpec("state_out", (1, d.state_channels, None, None), f32))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from vsvsr.training.precision import autocast

        torch = self._torch
        args = [torch.from_numpy(feeds[s.name]).to(self._device, memory_format=self._format)
                for s in self.inputs]
        with torch.inference_mode(), autocast(self._autocast_precision):
            outs = self._net(*args)
        return {s.name: o.float().cpu().contiguous().numpy()
                for s, o in zip(self.outputs, outs, strict=True)}

    def close(self) -> None:
        self._net = None
