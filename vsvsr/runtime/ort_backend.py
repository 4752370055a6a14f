"""ONNX Runtime backend: the CPU path every machine has, and CUDA where onnxruntime-gpu is."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vsvsr.errors import BackendUnavailableError, ModelFileError
from vsvsr.models.descriptor import ONNX_METADATA_KEY, ModelDescriptor
from vsvsr.runtime.engine import Engine, TensorSpec
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

_ORT_DTYPES = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16),
               "tensor(int64)": np.dtype(np.int64), "tensor(int32)": np.dtype(np.int32)}


def _ort():
    return lazy_import("onnxruntime", "the ONNX Runtime backend")


def ort_providers() -> list[str]:
    """Execution providers this onnxruntime build offers (empty when it is not installed)."""
    try:
        return list(_ort().get_available_providers())
    except ImportError:
        return []


def read_onnx_descriptor(path: str | Path) -> ModelDescriptor:
    """Read the vsvsr descriptor from an ONNX file's metadata (ONNX Runtime only, no onnx)."""
    sess = open_session(path, providers=["CPUExecutionProvider"], threads=1)
    return _descriptor_of(sess, path)


def _descriptor_of(sess, path: str | Path) -> ModelDescriptor:
    meta = sess.get_modelmeta().custom_metadata_map
    if ONNX_METADATA_KEY not in meta:
        raise ModelFileError(
            f"{path}: this ONNX file has no '{ONNX_METADATA_KEY}' metadata, so vsvsr does not "
            "know its scale and state; export it with vsvsr (plugin_build.export_onnx)"
        )
    return ModelDescriptor.from_json(meta[ONNX_METADATA_KEY], source=str(path))


def open_session(path: str | Path, *, providers: list[str], threads: int = 0):
    """Create an InferenceSession with clear errors for a missing or corrupt file."""
    ort = _ort()
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist; check the path or use a built-in "
                             "model name (see 'vsvsr models')")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Spinning worker threads fight VapourSynth's threads for the cores: measured 1.7x slower
    # at 2 threads on a busy 2-core machine, and no faster on an idle one.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(p), sess_options=opts, providers=providers)
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidProtobuf, ...)
        raise ModelFileError(f"{p}: ONNX Runtime cannot load this model ({exc}); the file is "
                             "corrupt or not an ONNX model: re-export or re-download it") from exc


class OrtEngine(Engine):
    """An ONNX Runtime session; ``device="cuda"`` needs the CUDA execution provider."""

    def __init__(self, path: str | Path, *, device: str = "cpu", threads: int = 0) -> None:
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort_providers():
                raise BackendUnavailableError(
                    "backend 'ort-cuda' needs onnxruntime-gpu with a CUDA GPU; "
                    "install onnxruntime-gpu or use backend='ort'")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise BackendUnavailableError(f"OrtEngine: unknown device {device!r}; use 'cpu' or 'cuda'")
        self._sess = open_session(path, providers=providers, threads=threads)
        super().__init__(_descriptor_of(self._sess, path))
        self.backend = f"ort-{device}"
        self.path = Path(path)

        def spec(arg) -> TensorSpec:
            shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
            return TensorSpec(arg.name, shape, _ORT_DTYPES.get(arg.type, np.dtype(np.float32)))

        self.inputs = tuple(spec(a) for a in self._sess.get_inputs())
        self.outputs = tuple(spec(a) for a in self._sess.get_outputs())
        self._out_names = [o.name for o in self.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._out_names, self._sess.run(self._out_names, feeds), strict=True))

    def close(self) -> None:
        self._sess = None
