"""TensorRT backend: find (or build) the engine for this GPU and run it on device buffers.

The engine is found through the manifests in the engine folders (:func:`engine_dirs`), by the
full :class:`EngineKey` of this model, size, precision, TensorRT version and GPU; an engine
built elsewhere is refused with the differences named. With ``build_missing`` (or
``VSVSR_TRT_BUILD=1``) a missing engine is built on first use, which is announced because it
takes minutes. Running: one execution context whose I/O is bound by name with
``set_tensor_address`` and run with ``execute_async_v3`` on the engine's own stream (see
:class:`vsvsr.runtime.device_engine.DeviceEngine` for the state ping-pong and CUDA graphs).
Stateless models (overfit packs) can run several contexts on several streams
(:class:`StreamPool`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from vsvsr.errors import BackendUnavailableError, ModelFileError, VsvsrError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.models.registry import ModelFiles
from vsvsr.runtime.cuda_device import Device
from vsvsr.runtime.device_engine import DeviceEngine, IOTensor
from vsvsr.runtime.engine import Engine, TensorSpec
from vsvsr.runtime.engine_key import BuildOptions, EngineKey, model_input_shapes
from vsvsr.runtime.engine_manifest import (
    EngineManifest,
    EngineMismatchError,
    EngineNotFoundError,
    find_engine,
    manifest_of,
    rebuild_hint,
    verify_engine,
)
from vsvsr.runtime.gpu_info import GpuInfo, query_gpu
from vsvsr.runtime.trt_common import (
    ErrorWindow,
    is_strongly_typed_only,
    load_tensorrt,
    tensorrt_version,
    trt_logger,
)
from vsvsr.utils.cache_dir import user_cache_dir

log = logging.getLogger(__name__)


class TrtRuntimeError(VsvsrError, RuntimeError):
    """TensorRT refused a call at run time (shape, address or enqueue); TensorRT's errors
    are in the message."""


def engine_dirs() -> list[Path]:
    """Where engines are looked for: ``$VSVSR_ENGINE_DIR``, ``./engines``, the user cache
    (``…/vsvsr/engines``, :func:`vsvsr.utils.cache_dir.user_cache_dir`)."""
    dirs = []
    if os.environ.get("VSVSR_ENGINE_DIR"):
        dirs.append(Path(os.environ["VSVSR_ENGINE_DIR"]))
    dirs.append(Path("engines"))
    dirs.append(user_cache_dir("engines"))
    return dirs


def default_device() -> Device:
    """The CUDA device the GPU backends use (CuPy)."""
    from vsvsr.runtime.cuda_device import CupyDevice

    return CupyDevice()


class _SharedMemory:
    """The activation memory all contexts of one :class:`DeviceEngine` share (one stream)."""

    def __init__(self, device: Device, size: int) -> None:
        self.size = max(int(size), 1)
        self.array = device.empty((self.size,), np.uint8)
        self.ptr = device.ptr(self.array)


class TrtExecutor:
    """One TensorRT execution context with every I/O tensor bound by name.

    Contexts are created ``USER_MANAGED`` (TensorRT 10+) and pointed at one block of
    activation memory that :meth:`clone` shares: a :class:`DeviceEngine` keeps one context
    per captured CUDA graph, all on its one stream, so they never run at the same time.
    """

    def __init__(self, trt: ModuleType, engine: Any, device: Device,
                 input_shapes: dict[str, tuple[int, ...]], logger: Any,
                 runtime: Any = None, memory: _SharedMemory | None = None) -> None:
        self.trt, self.engine, self.device, self.logger = trt, engine, device, logger
        self.runtime = runtime  # TensorRT needs the IRuntime alive while its engine is
        self.input_shapes = input_shapes
        window = ErrorWindow(logger)
        self.memory = memory
        self.context = self._create_context()
        if self.context is None:
            raise TrtRuntimeError("TensorRT could not create an execution context: "
                                  + window.text())
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        missing = set(inputs) ^ set(input_shapes)
        if missing:
            raise EngineMismatchError(f"the engine's inputs {sorted(inputs)} are not the "
                                      f"model's {sorted(input_shapes)}; rebuild the engine")
        for name in inputs:
            if not self.context.set_input_shape(name, input_shapes[name]):
                raise TrtRuntimeError(f"TensorRT refused shape {input_shapes[name]} for input "
                                      f"{name!r}: " + window.text())
        tensors = []
        for name in names:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise TrtRuntimeError(f"TensorRT left the shape of {name!r} unresolved ({shape})")
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            tensors.append(IOTensor(name, shape, dtype, name in inputs))
        self.tensors = tuple(tensors)

    def _create_context(self) -> Any:
        strategy = getattr(self.trt, "ExecutionContextAllocationStrategy", None)
        if strategy is None:  # before TensorRT 10: the context allocates its own memory
            return self.engine.create_execution_context()
        context = self.engine.create_execution_context(strategy.USER_MANAGED)
        if context is None:
            return None
        size = getattr(self.engine, "device_memory_size_v2", None)
        if size is None:  # TensorRT 10.0
            size = self.engine.device_memory_size
        if self.memory is None or self.memory.size < size:
            self.memory = _SharedMemory(self.device, size)
        if hasattr(context, "set_device_memory"):  # 10.1+
            context.set_device_memory(self.memory.ptr, int(size))
        else:
            context.device_memory = self.memory.ptr
        return context

    def clone(self) -> TrtExecutor:
        return TrtExecutor(self.trt, self.engine, self.device, self.input_shapes, self.logger,
                           self.runtime, self.memory)

    def bind(self, name: str, array: Any) -> None:
        window = ErrorWindow(self.logger)
        if not self.context.set_tensor_address(name, self.device.ptr(array)):
            raise TrtRuntimeError(f"TensorRT refused the address of {name!r}: " + window.text())

    def enqueue(self, stream: Any) -> None:
        window = ErrorWindow(self.logger)
        if not self.context.execute_async_v3(self.device.stream_handle(stream)):
            raise TrtRuntimeError("TensorRT execute_async_v3 failed: " + window.text())

    def capture(self, stream: Any) -> Any | None:
        return self.device.capture(stream, lambda: self.enqueue(stream))

    def launch(self, graph: Any, stream: Any) -> None:
        self.device.launch(graph, stream)

    def close(self) -> None:
        self.context = None  # context before engine before runtime, as TensorRT requires
        self.engine = None
        self.runtime = None


def want_key(trt: ModuleType, descriptor: ModelDescriptor, files_sha256: str,
             size: tuple[int, int], options: BuildOptions, gpu: GpuInfo) -> EngineKey:
    """The key of the engine this machine needs for ``descriptor`` at LR ``size``."""
    return EngineKey.make(descriptor=descriptor, model_sha256=files_sha256,
                          profile=(size, size, size), options=options,
                          trt_version=tensorrt_version(trt), gpu=gpu,
                          strongly_typed=is_strongly_typed_only(trt))


def locate_engine(trt: ModuleType, files: ModelFiles, descriptor: ModelDescriptor,
                  size: tuple[int, int], options: BuildOptions, gpu: GpuInfo, *,
                  engine_path: str | Path | None = None, build_missing: bool = False,
                  dirs: list[Path] | None = None) -> tuple[Path, EngineManifest]:
    """The engine file for this model and size on this machine (see the module doc)."""
    want = want_key(trt, descriptor, files.sha256, size, options, gpu)
    if engine_path is not None:
        return verify_engine(manifest_of(engine_path), want)
    dirs = dirs if dirs is not None else engine_dirs()
    errors = []
    for d in dirs:
        try:
            return find_engine(d, want)
        except EngineNotFoundError as exc:
            errors.append(str(exc))
    if not build_missing and os.environ.get("VSVSR_TRT_BUILD", "") not in ("1", "yes", "true"):
        raise EngineNotFoundError(errors[0] if len(dirs) == 1 else
                                  f"no TensorRT engine for {descriptor.name!r} at "
                                  f"{size[0]}x{size[1]} in {', '.join(map(str, dirs))}; build it "
                                  f"with: {rebuild_hint(want)} (or set VSVSR_TRT_BUILD=1 to "
                                  "build on first use)")
    from plugin_build.trt_build import build_one, validated_onnx

    out = dirs[0] if os.environ.get("VSVSR_ENGINE_DIR") or dirs[0] != Path("engines") else dirs[-1]
    print(f"vsvsr: building the TensorRT engine for {descriptor.name} at {size[0]}x{size[1]} "
          f"({options.precision}) in {out}; this takes a few minutes, once", file=sys.stderr)
    onnx_path, _, _ = validated_onnx(files, out)
    built = build_one(trt, onnx_path, want, options, out, gpu=gpu,
                      echo=lambda m: print(m, file=sys.stderr))
    return verify_engine(built.manifest, want)


def deserialize(trt: ModuleType, engine_path: Path, key: EngineKey) -> tuple[Any, Any, Any]:
    """(ICudaEngine, logger, IRuntime); a plan TensorRT cannot load is an
    :class:`EngineMismatchError`. The runtime must outlive the engine: keep it."""
    logger = trt_logger(trt)
    window = ErrorWindow(logger)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise EngineMismatchError(
            f"TensorRT {tensorrt_version(trt)} cannot load {engine_path} ("
            + window.text("no reason given")
            + f"); rebuild it with: {rebuild_hint(key)}")
    return engine, logger, runtime


def open_tensorrt_engine(files: ModelFiles, descriptor: ModelDescriptor, size: tuple[int, int],
                         *, options: BuildOptions | None = None, device: Device | None = None,
                         engine_path: str | Path | None = None, build_missing: bool = False,
                         use_graphs: bool = True, dirs: list[Path] | None = None,
                         gpu: GpuInfo | None = None, streams: int = 1) -> DeviceEngine | StreamPool:
    """Load the TensorRT engine of ``files`` for LR ``size`` (width, height).

    ``streams > 1`` (stateless models only) gives a :class:`StreamPool` of that many
    execution contexts, one stream each, over one deserialized engine.
    """
    if streams > 1 and descriptor.recurrent:
        raise ModelFileError(f"model {descriptor.name!r} is recurrent: its frames depend on each "
                             "other in order, so it runs on one stream (streams=1)")
    trt = load_tensorrt()
    gpu = gpu or query_gpu()
    if gpu is None:
        raise BackendUnavailableError("backend 'tensorrt' needs an NVIDIA GPU with its driver; "
                                      "none is visible here: use backend='ort'")
    options = options or BuildOptions(sizes=(size,), precision=os.environ.get(
        "VSVSR_TRT_PRECISION", "fp16"))
    path, manifest = locate_engine(trt, files, descriptor, size, options, gpu,
                                   engine_path=engine_path, build_missing=build_missing, dirs=dirs)
    engine, logger, runtime = deserialize(trt, path, manifest.key)
    device = device or default_device()
    shapes = model_input_shapes(descriptor, size)
    engines = [DeviceEngine(descriptor, TrtExecutor(trt, engine, device, shapes, logger, runtime),
                            device, backend="tensorrt", use_graphs=use_graphs)
               for _ in range(streams)]
    for e in engines:
        e.path = path  # type: ignore[attr-defined]
    log.info("vsvsr: TensorRT engine %s (%d stream(s))", path, streams)
    return engines[0] if streams == 1 else StreamPool(engines)


class StreamPool(Engine):
    """Several contexts of one stateless engine, each on its own stream, shared by threads.

    For the stateless (overfit) models: VapourSynth asks for frames from several threads at
    once, and each thread takes a free context, so copies and compute of different frames
    overlap on the GPU.
    """

    def __init__(self, engines: list[DeviceEngine]) -> None:
        if not engines:
            raise ValueError("StreamPool needs at least one engine")
        if any(e.recurrent for e in engines):
            raise ModelFileError("a recurrent model keeps one state in order: it runs on one "
                                 "stream; StreamPool is for stateless models")
        super().__init__(engines[0].descriptor)
        self.backend = engines[0].backend
        self._free = list(engines)
        self._all = list(engines)
        self._cv = threading.Condition()
        self.inputs: tuple[TensorSpec, ...] = engines[0].inputs
        self.outputs: tuple[TensorSpec, ...] = engines[0].outputs

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._cv:
            while not self._free:
                self._cv.wait()
            engine = self._free.pop()
        try:
            return engine.run(feeds)
        finally:
            with self._cv:
                self._free.append(engine)
                self._cv.notify()

    def close(self) -> None:
        for e in self._all:
            e.close()
