"""Backend discovery and ``backend="auto"``: the best available engine for a model.

Order for ``auto``: TensorRT (when an engine for this model, size and GPU exists, see
``vsvsr build``), ONNX Runtime on CUDA, PyTorch on CUDA, OpenVINO on the CPU (bf16 where the
CPU has it; 3-7x ONNX Runtime's fp32 there, docs/openvino.md), ONNX Runtime on the CPU. Probing CUDA
never imports torch on a machine without a CUDA driver, so the CPU filter path stays free of
PyTorch.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
from dataclasses import dataclass
from functools import cache

from vsvsr.errors import BackendUnavailableError, ModelFileError
from vsvsr.models.registry import ModelFiles, resolve_model
from vsvsr.runtime.engine import Engine

log = logging.getLogger(__name__)

BACKENDS = ("tensorrt", "ort-cuda", "torch-cuda", "openvino", "ort", "torch")
ALIASES = {"ort-cpu": "ort", "onnxruntime": "ort", "torch-cpu": "torch", "pytorch": "torch",
           "trt": "tensorrt", "cuda": "torch-cuda", "ov": "openvino", "openvino-cpu": "openvino"}


@dataclass(frozen=True)
class BackendStatus:
    """Whether one backend can run here, and why not when it cannot."""

    name: str
    available: bool
    detail: str


@cache
def _cuda_driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@cache
def backend_status() -> tuple[BackendStatus, ...]:
    """Probe every backend once per process."""
    out = [_tensorrt_status()]
    if _has("onnxruntime"):
        from vsvsr.runtime.ort_backend import ort_providers

        has_cuda = "CUDAExecutionProvider" in ort_providers()
        out.append(BackendStatus("ort-cuda", has_cuda and _cuda_driver_present(),
                                 "CUDA execution provider" if has_cuda
                                 else "onnxruntime has no CUDA provider (install onnxruntime-gpu)"))
        out.append(BackendStatus("ort", True, "CPU execution provider"))
    else:
        out.append(BackendStatus("ort-cuda", False, "onnxruntime is not installed"))
        out.append(BackendStatus("ort", False, "onnxruntime is not installed"))
    out.append(_openvino_status())
    if not _has("torch"):
        out.append(BackendStatus("torch-cuda", False, "torch is not installed (pip install 'vsvsr[train]')"))
        out.append(BackendStatus("torch", False, "torch is not installed (pip install 'vsvsr[train]')"))
    else:
        if _cuda_driver_present():
            import torch

            ok = bool(torch.cuda.is_available())
            name = torch.cuda.get_device_name(0) if ok else "torch sees no CUDA device"
        else:
            ok, name = False, "no CUDA driver (libcuda.so.1) on this machine"
        out.append(BackendStatus("torch-cuda", ok, name))
        out.append(BackendStatus("torch", True, "PyTorch on the CPU"))
    order = {n: i for i, n in enumerate(BACKENDS)}
    return tuple(sorted(out, key=lambda s: order[s.name]))


def _tensorrt_status() -> BackendStatus:
    if not _has("tensorrt"):
        return BackendStatus("tensorrt", False, "the 'tensorrt' package is not installed "
                             "(pip install 'vsvsr[tensorrt]')")
    if not _has("cupy"):
        return BackendStatus("tensorrt", False, "TensorRT's device buffers need CuPy "
                             "(pip install 'vsvsr[cuda]')")
    from vsvsr.runtime.gpu_info import query_gpu

    gpu = query_gpu()
    if gpu is None:
        return BackendStatus("tensorrt", False, "no NVIDIA GPU / CUDA driver visible")
    return BackendStatus("tensorrt", True, f"{gpu.name}, sm{gpu.compute_capability}; engines "
                         "from 'vsvsr build'")


def _openvino_status() -> BackendStatus:
    if not _has("openvino"):
        return BackendStatus("openvino", False, "the 'openvino' package is not installed "
                             "(pip install openvino)")
    try:
        from vsvsr.runtime.openvino_backend import choose_precision, openvino_version

        choice = choose_precision("auto")
        return BackendStatus("openvino", True, f"OpenVINO {openvino_version()} CPU, "
                             f"{choice.precision} ({choice.reason})")
    except Exception as exc:  # a broken install: report it, let auto pass over it
        cause = exc.__cause__ or exc
        why = " ".join(str(cause).split())[:300]
        return BackendStatus("openvino", False, f"OpenVINO is installed but does not load "
                             f"({why}); reinstall it: pip install --force-reinstall openvino")


def normalize_backend(name: str) -> str:
    name = ALIASES.get(name.lower(), name.lower())
    if name != "auto" and name not in BACKENDS:
        raise BackendUnavailableError(
            f"unknown backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")
    return name


def pick_backend(requested: str, files: ModelFiles, *, skip: tuple[str, ...] = ()) -> str:
    """Resolve ``requested`` (possibly ``auto``) to a backend that can run ``files``."""
    requested = normalize_backend(requested)
    status = {s.name: s for s in backend_status()}
    if requested != "auto":
        st = status[requested]
        if not st.available:
            raise BackendUnavailableError(f"backend {requested!r} is not available here: "
                                          f"{st.detail}; use backend='auto' to pick one")
        return requested
    for name in BACKENDS:
        needs = files.pth if name.startswith("torch") else files.onnx
        if needs is not None and status[name].available and name not in skip:
            return name
    raise BackendUnavailableError(
        f"no backend can run model {files.name!r} here: "
        + "; ".join(f"{s.name}: {s.detail}" for s in status.values() if not s.available))


def _open_tensorrt(files: ModelFiles, size: tuple[int, int] | None) -> Engine:
    if size is None:
        raise BackendUnavailableError("backend 'tensorrt' needs the input size to pick an "
                                      "engine; it is known inside vsvsr.recurrent")
    if files.onnx is None:
        raise ModelFileError(f"model {files.name!r} has no .onnx file, which TensorRT needs")
    from vsvsr.runtime.ort_backend import read_onnx_descriptor
    from vsvsr.runtime.tensorrt_backend import open_tensorrt_engine

    return open_tensorrt_engine(files, read_onnx_descriptor(files.onnx), size)


#: Backends that run bf16 (OpenVINO's inference precision; PyTorch's CPU autocast).
BF16_BACKENDS = ("openvino", "torch")


def check_precision(precision: str, backend: str,
                    bf16_backends: tuple[str, ...] = BF16_BACKENDS) -> None:
    """``precision`` is ``auto``, ``bf16`` or ``f32``; ``bf16`` only on ``bf16_backends``
    (OpenVINO and PyTorch on the CPU for models; OpenVINO alone for overfit packs)."""
    from vsvsr.runtime.openvino_backend import PRECISIONS

    if precision not in PRECISIONS:
        raise BackendUnavailableError(f"unknown precision {precision!r}; choose one of "
                                      f"{', '.join(PRECISIONS)}")
    if precision == "bf16" and backend not in bf16_backends:
        names = " and ".join(f"'{b}'" for b in bf16_backends)
        noun = "backends" if len(bf16_backends) > 1 else "backend"
        raise BackendUnavailableError(f"precision='bf16' runs on {noun} {names} only, not "
                                      f"{backend!r}; use backend='openvino' (or 'auto')")


def open_engine(model: str | os.PathLike[str], backend: str = "auto", *, threads: int = 0,
                size: tuple[int, int] | None = None, precision: str = "auto") -> Engine:
    """Load ``model`` (built-in name or file) on ``backend`` and return its engine.

    Args:
        size: the LR input (width, height), which TensorRT engines are built for (OpenVINO
            compiles for it at once).
        precision: ``auto``, ``bf16`` or ``f32``: OpenVINO's inference precision (auto: bf16
            on a CPU with native bf16); the PyTorch CPU backend runs bf16 autocast only when
            ``bf16`` is named (auto keeps it the fp32 reference); the others run their own.
    """
    files = resolve_model(model)
    try:
        return _open_engine(files, backend, threads=threads, size=size, precision=precision)
    except ModelFileError as exc:
        other = files.sibling
        if other is None or str(other) not in str(exc):
            raise
        alt = "torch" if files.given == files.pth else "ort"
        raise ModelFileError(
            f"{exc} [the model you passed is {files.given}; vsvsr opened {other}, the "
            f"{other.suffix} file beside it, for this backend: fix or remove {other}, or pass "
            f"backend='{alt}' to run {files.given} itself]") from exc


def _open_engine(files: ModelFiles, backend: str, *, threads: int,
                 size: tuple[int, int] | None, precision: str) -> Engine:
    from vsvsr.runtime.engine_manifest import EngineNotFoundError

    requested = normalize_backend(backend)
    name = pick_backend(requested, files)
    check_precision(precision, name)
    if name == "tensorrt":
        try:
            engine = _open_tensorrt(files, size)
            engine.model_sha256 = files.sha256
            log.info("vsvsr: model %s on backend %s", files.name, engine.backend)
            return engine
        except (EngineNotFoundError, BackendUnavailableError) as exc:
            if requested != "auto":
                raise
            log.warning("vsvsr: no TensorRT engine used (%s); trying the next backend", exc)
            name = pick_backend("auto", files, skip=("tensorrt",))
    if name.startswith("torch"):
        if files.pth is None:
            raise ModelFileError(f"model {files.name!r} has no .pth file, which the PyTorch "
                                 "backend needs; use backend='ort'")
        engine: Engine
        if name == "torch-cuda" and size is not None and _has("cupy"):
            # fp16 + CUDA graphs on the shared device buffers (VSVSR_TORCH_FP32=1: fp32)
            from vsvsr.runtime.torch_cuda_backend import open_torch_cuda_engine

            engine = open_torch_cuda_engine(files.pth, size,
                                            fp16=os.environ.get("VSVSR_TORCH_FP32") != "1")
        else:
            from vsvsr.runtime.torch_backend import TorchEngine

            # The PyTorch backend is the reference: fp32 unless bf16 is asked for by name.
            engine = TorchEngine(files.pth, device="cuda" if name == "torch-cuda" else "cpu",
                                 threads=threads, precision="bf16" if precision == "bf16"
                                 else "f32")
    else:
        if files.onnx is None:
            raise ModelFileError(f"model {files.name!r} has no .onnx file, which backend "
                                 f"{name!r} needs; export it (plugin_build.export_onnx) or use "
                                 "backend='torch'")
        if name == "openvino":
            from vsvsr.runtime.openvino_backend import OpenVinoEngine, OvSettings

            engine = OpenVinoEngine(files.onnx, size=size, settings=OvSettings(
                precision=precision, threads=threads))
            engine.model_sha256 = files.sha256
            log.info("vsvsr: model %s on %s", files.name, engine.describe())
            _say_which_file(files, engine)
            return engine
        if name == "ort-cuda" and size is not None and _has("cupy"):
            # ONNX Runtime CUDA on the shared device buffers (the filter's GPU frame path)
            from vsvsr.runtime.ort_cuda_backend import open_ort_cuda_engine

            engine = open_ort_cuda_engine(files.onnx, size, threads=threads)
        else:
            from vsvsr.runtime.ort_backend import OrtEngine

            engine = OrtEngine(files.onnx, device="cuda" if name == "ort-cuda" else "cpu",
                               threads=threads)
    engine.model_sha256 = files.sha256
    log.info("vsvsr: model %s on backend %s", files.name, engine.backend)
    _say_which_file(files, engine)
    return engine


def _say_which_file(files: ModelFiles, engine: Engine) -> None:
    """A user who passed one file may be running its sibling: say so (``-v`` shows it)."""
    other = files.sibling
    runs_pth = engine.backend.startswith("torch")
    if other is not None and (other == files.pth) == runs_pth:
        log.info("vsvsr: you passed %s; backend %s runs %s beside it", files.given,
                 engine.backend, other)
