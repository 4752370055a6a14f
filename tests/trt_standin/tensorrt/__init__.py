"""A stand-in for the ``tensorrt`` Python package (tests only), backed by ONNX Runtime.

It implements the subset of the TensorRT 10 Python API that vsvsr uses, with TensorRT's
rules, so that the real build and runtime code runs unchanged on a machine without a GPU:

- build: ``Builder``, ``create_network`` (flags, ``STRONGLY_TYPED``), ``OnnxParser`` with
  per-node errors for unsupported operators, ``IBuilderConfig`` (memory pool limit, flags,
  optimization level, hardware compatibility, timing cache), optimization profiles checked
  like TensorRT does (every dynamic input needs min/opt/max in every profile, in range, of the
  right rank) and ``build_serialized_network`` returning ``None`` on failure. The "plan" is a
  header (TensorRT version, I/O, profiles, flags) plus the ONNX bytes.
- run: ``Runtime.deserialize_cuda_engine`` (``None`` for another version's plan), name-based
  I/O queries, ``IExecutionContext.set_input_shape`` (checked against the profile),
  ``set_tensor_address`` and ``execute_async_v3``. Execution reads the inputs from the raw
  device pointers through ``fake_cuda`` (a pointer outside a live allocation is an illegal
  address), runs the ONNX in ONNX Runtime and writes the outputs to their pointers. Work goes
  on the given stream, so CUDA-graph capture records it and replays re-read memory. An input
  and an output bound to overlapping memory give NaN outputs: TensorRT's result there is
  undefined, and the stand-in makes that visible.
- TensorRT 11 mode (``VSVSR_TRT_STANDIN_VERSION=11.x``): no ``BuilderFlag.FP16``/``BF16``,
  ``ITensor.dtype`` read-only, ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` is 0 and
  ignored (every network is strongly typed), no ``ICudaEngine.device_memory_size``.
  From 10.12 (``VSVSR_TRT_STANDIN_VERSION=10.13.x``) the ``ITensor.dtype`` setter and the
  FP16/BF16 flags emit ``DeprecationWarning``.
- Strict where TensorRT is: ``IOptimizationProfile.set_shape`` raises on inconsistent shapes,
  ``add_optimization_profile`` returns -1 for an empty profile, ``set_timing_cache`` returns
  False for another version's cache, a USER_MANAGED context runs only with
  ``set_device_memory``, and CUDA graphs follow the context's device-side parameters (see
  :class:`IExecutionContext`).

Test hooks (environment, read at build time): ``VSVSR_TRT_STANDIN_BUILD_DELAY`` (seconds the
build sleeps, to overlap two builds), ``VSVSR_TRT_STANDIN_BUILD_LOG`` (a file that gets one JSON
line per build), ``VSVSR_TRT_STANDIN_FAIL_BUILD`` (make ``build_serialized_network`` fail).
"""

from __future__ import annotations

import enum
import json
import os
import time
import warnings
from typing import Any

import fake_cuda
import numpy as np
import onnx
import onnxruntime as ort

MAGIC = b"VSVSR-TRT-STANDIN\n"
__version__ = os.environ.get("VSVSR_TRT_STANDIN_VERSION", "10.8.0.43")
_MAJOR, _MINOR = (int(x) for x in __version__.split(".")[:2])
#: TensorRT 10.12 deprecated the weak-typing API (``ITensor.dtype`` setter, FP16/BF16 flags).
_WEAK_TYPING_DEPRECATED = (_MAJOR, _MINOR) >= (10, 12)

#: What this stand-in's parser accepts (the ONNX ops vsvsr models use and TensorRT parses).
SUPPORTED_OPS = {
    "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Conv",
    "ConvTranspose", "Concat", "Slice", "Split", "Shape", "Gather", "Reshape", "Transpose",
    "Squeeze", "Unsqueeze", "Constant", "ConstantOfShape", "Resize", "DepthToSpace",
    "SpaceToDepth", "GridSample", "Cast", "Pow", "Sqrt", "Min", "Max", "ReduceMean", "Expand",
    "Identity", "Floor", "Equal", "Where", "Range", "Neg", "Abs", "Exp", "Erf", "Pad",
    "AveragePool", "MaxPool", "MatMul", "Softmax", "Greater", "Less", "Not", "And",
}


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = _Severity
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (_Severity.INTERNAL_ERROR, _Severity.ERROR,
                                                     _Severity.WARNING, _Severity.INFO,
                                                     _Severity.VERBOSE)

    def __init__(self) -> None:
        pass

    def log(self, severity: _Severity, msg: str) -> None:  # pragma: no cover - overridden
        pass


class Logger(ILogger):
    def __init__(self, min_severity: _Severity = _Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = min_severity

    def log(self, severity: _Severity, msg: str) -> None:
        if severity <= self.min_severity:
            print(f"[TRT standin] {severity.name}: {msg}")


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    BF16 = 7
    INT64 = 8


float32, float16, bfloat16, int32, int64 = (DataType.FLOAT, DataType.HALF, DataType.BF16,
                                            DataType.INT32, DataType.INT64)
_NP = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT32: np.int32,
       DataType.INT64: np.int64, DataType.INT8: np.int8, DataType.BOOL: np.bool_}
_FROM_ONNX = {onnx.TensorProto.FLOAT: DataType.FLOAT, onnx.TensorProto.FLOAT16: DataType.HALF,
              onnx.TensorProto.INT32: DataType.INT32, onnx.TensorProto.INT64: DataType.INT64,
              onnx.TensorProto.BFLOAT16: DataType.BF16}


def nptype(dtype: DataType) -> type:
    if dtype not in _NP:
        raise TypeError(f"no NumPy type for {dtype!r}")
    return _NP[dtype]


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    TACTIC_DRAM = 4


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


if _MAJOR >= 11:  # no EXPLICIT_BATCH; STRONGLY_TYPED is bit 0 and ignored (always strongly typed)
    NetworkDefinitionCreationFlag = enum.IntEnum(  # type: ignore[misc]  # noqa: F811
        "NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 0})


class ExecutionContextAllocationStrategy(enum.IntEnum):
    STATIC = 0
    ON_PROFILE_CHANGE = 1
    USER_MANAGED = 2


class HardwareCompatibilityLevel(enum.IntEnum):
    NONE = 0
    AMPERE_PLUS = 1
    SAME_COMPUTE_CAPABILITY = 2


class BuilderFlag(enum.IntEnum):
    FP16 = 0
    INT8 = 1
    DEBUG = 2
    GPU_FALLBACK = 3
    REFIT = 5
    VERSION_COMPATIBLE = 14
    BF16 = 17


if _MAJOR >= 11:  # TensorRT 11 removed the weak-typing precision flags
    BuilderFlag = enum.IntEnum("BuilderFlag", {  # type: ignore[misc]  # noqa: F811
        "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 5, "VERSION_COMPATIBLE": 14})


def _log(logger: ILogger, severity: _Severity, msg: str) -> None:
    logger.log(severity, msg)


# -- build -------------------------------------------------------------------------------------
class ITensor:
    def __init__(self, name: str, shape: tuple[int, ...], dtype: DataType) -> None:
        self.name, self.shape, self._dtype = name, shape, dtype
        self.is_network_input = False

    @property
    def dtype(self) -> DataType:
        return self._dtype

    if _MAJOR < 11:  # TensorRT 11: read-only (networks are strongly typed)
        @dtype.setter
        def dtype(self, value: DataType) -> None:
            if _WEAK_TYPING_DEPRECATED:
                warnings.warn("ITensor.dtype setter is deprecated since TensorRT 10.12; use a "
                              "strongly typed network", DeprecationWarning, stacklevel=2)
            self._dtype = value


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.onnx_bytes: bytes | None = None
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []

    def get_flag(self, flag: NetworkDefinitionCreationFlag) -> bool:
        if _MAJOR >= 11:
            return True  # the only flag left, STRONGLY_TYPED, is always on
        return bool(self.flags & (1 << int(flag)))

    @property
    def strongly_typed(self) -> bool:
        return _MAJOR >= 11 or self.get_flag(NetworkDefinitionCreationFlag.STRONGLY_TYPED)

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    @property
    def num_layers(self) -> int:
        return 0 if self.onnx_bytes is None else len(onnx.load_from_string(self.onnx_bytes).graph.node)

    def get_input(self, i: int) -> ITensor:
        return self._inputs[i]

    def get_output(self, i: int) -> ITensor:
        return self._outputs[i]


class ParserError:
    def __init__(self, code: int, desc: str, node: int = -1, node_name: str = "",
                 op: str = "") -> None:
        self._code, self._desc, self._node, self._name, self._op = code, desc, node, node_name, op

    def code(self) -> int:
        return self._code

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._name

    def node_operator(self) -> str:
        return self._op

    def __str__(self) -> str:
        return f"In node {self._node} with name: {self._name} and operator: {self._op} " \
               f"(code {self._code}): {self._desc}"


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        self.network, self.logger = network, logger
        self._errors: list[ParserError] = []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, i: int) -> ParserError:
        return self._errors[i]

    def clear_errors(self) -> None:
        self._errors = []

    def parse(self, model: bytes, path: str | None = None) -> bool:
        try:
            m = onnx.load_from_string(bytes(model))
        except Exception as exc:
            self._errors.append(ParserError(1, f"Failed to parse ONNX model: {exc}"))
            return False
        opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
        for i, node in enumerate(m.graph.node):
            if node.op_type not in SUPPORTED_OPS or node.domain not in ("", "ai.onnx"):
                self._errors.append(ParserError(
                    8, f"No importer registered for op: {node.op_type}. Attempting to import as "
                    "plugin. ... Plugin not found, are the plugin name, version, and namespace "
                    "correct?", i, node.name, node.op_type))
            if node.op_type == "GridSample" and opset < 16:
                self._errors.append(ParserError(8, "GridSample needs opset 16 or later", i,
                                                node.name, node.op_type))
        if self._errors:
            return False
        init = {t.name for t in m.graph.initializer}

        def tensor(v: Any) -> ITensor:
            t = v.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
            return ITensor(v.name, dims, _FROM_ONNX.get(t.elem_type, DataType.FLOAT))

        self.network._inputs = [tensor(v) for v in m.graph.input if v.name not in init]
        for t in self.network._inputs:
            t.is_network_input = True
        self.network._outputs = [tensor(v) for v in m.graph.output]
        self.network.onnx_bytes = bytes(model)
        return True


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002
        """As TensorRT's binding: RuntimeError when the three shapes are inconsistent."""
        lo, mid, hi = tuple(min), tuple(opt), tuple(max)
        if any(d < 0 for d in lo):
            raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
        if len(mid) != len(lo) or any(a > b for a, b in zip(lo, mid, strict=True)):
            raise RuntimeError("Shape provided for opt is inconsistent with other shapes.")
        if len(hi) != len(lo) or any(b > c for b, c in zip(mid, hi, strict=True)):
            raise RuntimeError("Shape provided for max is inconsistent with other shapes.")
        self.shapes[name] = (lo, mid, hi)

    def get_shape(self, name: str) -> list[tuple[int, ...]]:
        return list(self.shapes.get(name, ()))


class ITimingCache:
    def __init__(self, data: bytes) -> None:
        loaded = json.loads(data.decode()) if data else {}
        self.version: str = loaded.pop("__trt_version__", __version__)
        self.entries: dict[str, str] = loaded

    def serialize(self) -> bytes:
        return json.dumps({**self.entries, "__trt_version__": self.version},
                          sort_keys=True).encode()

    def combine(self, other: ITimingCache, ignore_mismatch: bool) -> bool:
        self.entries.update(other.entries)
        return True


class IBuilderConfig:
    def __init__(self, logger: ILogger | None = None) -> None:
        self.logger = logger
        self.flags: set[int] = set()
        self.pool_limits: dict[MemoryPoolType, int] = {}
        self.builder_optimization_level = 3
        self.hardware_compatibility_level = HardwareCompatibilityLevel.NONE
        self.profiles: list[IOptimizationProfile] = []
        self._cache: ITimingCache | None = None

    def set_flag(self, flag: BuilderFlag) -> None:
        if _WEAK_TYPING_DEPRECATED and flag.name in ("FP16", "BF16"):
            warnings.warn(f"BuilderFlag.{flag.name} is deprecated since TensorRT 10.12; use a "
                          "strongly typed network", DeprecationWarning, stacklevel=2)
        self.flags.add(int(flag))

    def get_flag(self, flag: BuilderFlag) -> bool:
        return int(flag) in self.flags

    def set_memory_pool_limit(self, pool: MemoryPoolType, size: int) -> None:
        if size < 0:
            raise ValueError("pool size must be >= 0")
        self.pool_limits[pool] = int(size)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        """-1 for an invalid profile (one with no input set, as TensorRT checks)."""
        if not profile.shapes:
            if self.logger is not None:
                _log(self.logger, _Severity.ERROR, "IBuilderConfig::addOptimizationProfile: "
                     "Error Code 3: API Usage Error (Parameter check failed, condition: "
                     "profile->isValid())")
            return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self.profiles)

    def create_timing_cache(self, serialized: bytes) -> ITimingCache:
        return ITimingCache(bytes(serialized))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        """False (and the cache not used) for a cache of another TensorRT/device."""
        if cache.version != __version__ and not ignore_mismatch:
            if self.logger is not None:
                _log(self.logger, _Severity.ERROR, "IBuilderConfig::setTimingCache: Error Code "
                     "3: API Usage Error (timing cache mismatch: it was created by TensorRT "
                     f"{cache.version} on another device or version)")
            return False
        self._cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self._cache


class IHostMemory(bytes):
    @property
    def nbytes(self) -> int:
        return len(self)


class Builder:
    def __init__(self, logger: ILogger) -> None:
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig(self.logger)

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def _error(self, msg: str) -> None:
        _log(self.logger, _Severity.ERROR, msg)

    def build_serialized_network(self, network: INetworkDefinition,
                                 config: IBuilderConfig) -> IHostMemory | None:
        if network.onnx_bytes is None:
            self._error("Network must have at least one output")
            return None
        if os.environ.get("VSVSR_TRT_STANDIN_FAIL_BUILD"):
            self._error("standin: build failure requested (VSVSR_TRT_STANDIN_FAIL_BUILD)")
            return None
        strongly = network.strongly_typed
        weak_flags = {int(getattr(BuilderFlag, n)) for n in ("FP16", "BF16") if hasattr(BuilderFlag, n)}
        if strongly and config.flags & weak_flags:
            self._error("IBuilderConfig::setFlag: Error Code 3: API Usage Error (FP16/BF16 flags "
                        "cannot be set on a strongly typed network)")
            return None
        dynamic = [t for t in network._inputs if -1 in t.shape]
        if dynamic and not config.profiles:
            self._error("Network has dynamic or shape inputs, but no optimization profile has "
                        "been defined.")
            return None
        io = []
        for p_index, profile in enumerate(config.profiles):
            for t in network._inputs:
                if t.name not in profile.shapes:
                    if -1 in t.shape:
                        self._error(f"Optimization profile {p_index} is missing values for "
                                    f"dynamic input '{t.name}'")
                        return None
                    continue
                lo, opt, hi = profile.shapes[t.name]
                if not (len(lo) == len(opt) == len(hi) == len(t.shape)):
                    self._error(f"{t.name}: profile dims have the wrong rank (network has "
                                f"{len(t.shape)})")
                    return None
                for d, a, b, c in zip(t.shape, lo, opt, hi, strict=True):
                    if not (0 <= a <= b <= c) or (d != -1 and not a == b == c == d):
                        self._error(f"{t.name}: profile {lo}/{opt}/{hi} does not satisfy "
                                    f"min <= opt <= max or the static dims {t.shape}")
                        return None
        for t in network._inputs:
            shapes = [list(map(list, p.shapes.get(t.name, (t.shape,) * 3))) for p in config.profiles] \
                or [[list(t.shape)] * 3]
            io.append({"name": t.name, "mode": "input", "dtype": int(t.dtype), "shape": list(t.shape),
                       "profiles": shapes})
        for t in network._outputs:
            io.append({"name": t.name, "mode": "output", "dtype": int(t.dtype),
                       "shape": list(t.shape)})
        cache = config.get_timing_cache()
        entries_in = len(cache.entries) if cache is not None else -1
        delay = float(os.environ.get("VSVSR_TRT_STANDIN_BUILD_DELAY", "0") or 0)
        if delay:
            time.sleep(delay)
        if cache is not None:
            import hashlib

            cache.entries[hashlib.sha256(network.onnx_bytes).hexdigest()[:16]] = "tactics"
        log_path = os.environ.get("VSVSR_TRT_STANDIN_BUILD_LOG")
        if log_path:
            with open(log_path, "a") as fh:
                fh.write(json.dumps({"pid": os.getpid(), "timing_cache_entries_in": entries_in,
                                     "flags": sorted(config.flags), "strongly_typed": strongly,
                                     "opt_level": config.builder_optimization_level,
                                     "workspace": config.pool_limits.get(MemoryPoolType.WORKSPACE),
                                     "hw_compat": int(config.hardware_compatibility_level),
                                     "io": io}) + "\n")
        header = json.dumps({"trt_version": __version__, "io": io, "flags": sorted(config.flags),
                             "strongly_typed": strongly}).encode()
        return IHostMemory(MAGIC + len(header).to_bytes(8, "little") + header + network.onnx_bytes)


# -- run ---------------------------------------------------------------------------------------
class Runtime:
    def __init__(self, logger: ILogger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: Any) -> ICudaEngine | None:
        blob = bytes(data)
        if not blob.startswith(MAGIC):
            _log(self.logger, _Severity.ERROR, "IRuntime::deserializeCudaEngine: Error Code 1: "
                 "Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed.)")
            return None
        n = int.from_bytes(blob[len(MAGIC):len(MAGIC) + 8], "little")
        header = json.loads(blob[len(MAGIC) + 8:len(MAGIC) + 8 + n])
        if header["trt_version"] != __version__:
            _log(self.logger, _Severity.ERROR, "IRuntime::deserializeCudaEngine: Error Code 6: "
                 f"The engine plan file is not compatible with this version of TensorRT, expecting "
                 f"library version {__version__} got {header['trt_version']}, please rebuild.")
            return None
        return ICudaEngine(header, blob[len(MAGIC) + 8 + n:], self.logger)


class ICudaEngine:
    # pybind11 objects take no new attributes; neither does the stand-in.
    __slots__ = ("_io", "_order", "onnx_bytes", "logger", "header")

    def __init__(self, header: dict, onnx_bytes: bytes, logger: ILogger) -> None:
        self._io = {t["name"]: t for t in header["io"]}
        self._order = [t["name"] for t in header["io"]]
        self.onnx_bytes = onnx_bytes
        self.logger = logger
        self.header = header

    @property
    def num_io_tensors(self) -> int:
        return len(self._order)

    @property
    def num_optimization_profiles(self) -> int:
        first = next(t for t in self._io.values() if t["mode"] == "input")
        return len(first["profiles"])

    @property
    def device_memory_size_v2(self) -> int:
        return 1 << 16

    if _MAJOR < 11:  # gone in TensorRT 11
        @property
        def device_memory_size(self) -> int:
            return 1 << 16

    def get_tensor_name(self, i: int) -> str:
        return self._order[i]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        t = self._io.get(name)
        if t is None:
            return TensorIOMode.NONE
        return TensorIOMode.INPUT if t["mode"] == "input" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType(self._io[name]["dtype"])

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        t = self._io[name]
        if t["mode"] == "input":
            lo, _, hi = t["profiles"][0]
            return tuple(a if a == b else -1 for a, b in zip(lo, hi, strict=True))
        return tuple(t["shape"])

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        return [tuple(s) for s in self._io[name]["profiles"][profile_index]]

    def create_execution_context(
            self, strategy: ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy.STATIC
    ) -> IExecutionContext:
        return IExecutionContext(self, ExecutionContextAllocationStrategy(strategy))


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class IExecutionContext:
    """What matters for CUDA graphs is modelled as TensorRT does it: ``execute_async_v3`` puts
    the bound tensor addresses into the context's own device-side parameters (on the stream)
    and the kernels read them from there when they run. So a graph captured from a context
    reads whatever that context's parameters hold *at replay*: a graph replayed after the
    context was rebound and enqueued for other buffers computes on those other buffers
    (flagged, outputs NaN, ``fake_cuda.STATS['stale_graph_replays']``); and an enqueue under
    capture right after ``set_tensor_address`` changed a binding is refused (the parameter
    update is lazy work that is not capturable): run one plain enqueue first, as trtexec does.
    """

    __slots__ = ("engine", "_shapes", "_addresses", "_sess", "_out_shape_cache", "executions",
                 "_params", "_params_queued", "strategy", "_memory")

    def __init__(self, engine: ICudaEngine,
                 strategy: ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy.STATIC
                 ) -> None:
        self.engine = engine
        self.strategy = strategy
        self._memory: tuple[int, int] | None = None
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._addresses: dict[str, int] = {}
        self._params: dict[str, int] = {}  #: device-side parameters, as the last run wrote them
        self._params_queued: dict[str, int] | None = None  #: what the last plain enqueue wrote
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self._sess = ort.InferenceSession(engine.onnx_bytes, sess_options=opts,
                                          providers=["CPUExecutionProvider"])
        self._out_shape_cache: dict[tuple, dict[str, tuple[int, ...]]] = {}
        self.executions = 0

    def set_device_memory(self, memory: int, size: int) -> None:
        """Activation memory for a USER_MANAGED context (TensorRT 10.1+ spelling)."""
        need = self.engine.device_memory_size_v2
        if size < need:
            raise RuntimeError(f"IExecutionContext::setDeviceMemoryV2: size {size} is smaller "
                               f"than the engine's device_memory_size_v2 {need}")
        fake_cuda.view(int(memory), (int(size),), np.uint8)  # must be live device memory
        self._memory = (int(memory), int(size))

    def _error(self, msg: str) -> None:
        _log(self.engine.logger, _Severity.ERROR, msg)

    def set_input_shape(self, name: str, shape: Any) -> bool:
        t = self.engine._io.get(name)
        shape = tuple(int(s) for s in shape)
        if t is None or t["mode"] != "input":
            self._error(f"IExecutionContext::setInputShape: {name!r} is not an input tensor")
            return False
        lo, _, hi = t["profiles"][0]
        if len(shape) != len(lo) or any(not a <= s <= b for s, a, b in zip(shape, lo, hi, strict=True)):
            self._error(f"IExecutionContext::setInputShape: Error Code 3: API Usage Error "
                        f"(shape {shape} of {name} is outside the profile {tuple(lo)}..{tuple(hi)})")
            return False
        self._shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        t = self.engine._io[name]
        if t["mode"] == "input":
            return self._shapes.get(name, self.engine.get_tensor_shape(name))
        shapes = self._output_shapes()
        return shapes[name] if shapes is not None else tuple(t["shape"])

    def _input_shapes(self) -> dict[str, tuple[int, ...]] | None:
        out = {}
        for name, t in self.engine._io.items():
            if t["mode"] != "input":
                continue
            static = self.engine.get_tensor_shape(name)
            shape = self._shapes.get(name, static if -1 not in static else None)
            if shape is None:
                return None
            out[name] = shape
        return out

    def _output_shapes(self) -> dict[str, tuple[int, ...]] | None:
        ins = self._input_shapes()
        if ins is None:
            return None
        key = tuple(sorted(ins.items()))
        if key not in self._out_shape_cache:
            feeds = {n: np.zeros(s, self._ort_dtype(n)) for n, s in ins.items()}
            outs = self._sess.run(None, feeds)
            names = [o.name for o in self._sess.get_outputs()]
            self._out_shape_cache[key] = {n: o.shape for n, o in zip(names, outs, strict=True)}
        return self._out_shape_cache[key]

    def _ort_dtype(self, name: str) -> Any:
        arg = next(a for a in self._sess.get_inputs() + self._sess.get_outputs() if a.name == name)
        return np.float16 if arg.type == "tensor(float16)" else np.float32

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        if name not in self.engine._io:
            self._error(f"IExecutionContext::setTensorAddress: {name!r} is not a tensor of "
                        "this engine")
            return False
        self._addresses[name] = int(ptr)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def execute_async_v3(self, stream_handle: int) -> bool:
        ins = self._input_shapes()
        if ins is None:
            self._error("IExecutionContext::enqueueV3: Error Code 3: API Usage Error (not all "
                        "input shapes are specified)")
            return False
        missing = [n for n in self.engine._order if n not in self._addresses]
        if missing:
            self._error(f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error (tensor "
                        f"addresses not set for {missing})")
            return False
        if self.strategy == ExecutionContextAllocationStrategy.USER_MANAGED and self._memory is None:
            self._error("IExecutionContext::enqueueV3: Error Code 3: API Usage Error (a "
                        "USER_MANAGED context needs set_device_memory before enqueue)")
            return False
        handle = int(stream_handle)
        capturing = fake_cuda.is_capturing(handle)
        bound = dict(self._addresses)
        if capturing and bound != self._params_queued:
            self._error("IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime (operation not "
                        "permitted when stream is capturing: the tensor addresses changed since "
                        "the last enqueue, and updating them is not capturable; run one enqueueV3 "
                        "outside capture after setTensorAddress)")
            return False
        outs = self._output_shapes()
        assert outs is not None
        shapes = {**ins, **outs}
        dtypes = {n: nptype(self.engine.get_tensor_dtype(n)) for n in self.engine._order}
        names = [o.name for o in self._sess.get_outputs()]
        nbytes = {n: int(np.prod(shapes[n])) * np.dtype(dtypes[n]).itemsize for n in shapes}

        def write_params() -> None:
            self._params = dict(bound)

        def work() -> None:
            addresses = self._params  # read when the kernels run, as TensorRT's kernels do
            # A graph whose context now holds other bindings, or was rebound since capture
            # (the caller expects the new addresses; the graph still has the old ones).
            stale = capturing and (addresses != bound or self._addresses != bound)
            if stale:  # the graph's context now holds other bindings: undefined, made visible
                fake_cuda.STATS["stale_graph_replays"] += 1
            ranges = {n: (addresses[n], addresses[n] + nbytes[n]) for n in shapes}
            feeds = {n: fake_cuda.view(addresses[n], shapes[n], dtypes[n]).astype(self._ort_dtype(n))
                     for n in ins}
            results = self._sess.run(None, feeds)
            aliased = any(_overlap(ranges[i], ranges[o]) for i in ins for o in names)
            for n, value in zip(names, results, strict=True):
                dst = fake_cuda.view(addresses[n], shapes[n], dtypes[n])
                if aliased or stale:
                    dst.fill(np.nan)  # undefined in TensorRT; made visible here
                else:
                    dst[...] = value.astype(dtypes[n])
            self.executions += 1

        if not capturing:
            self._params_queued = bound
            fake_cuda.enqueue(handle, write_params, "trt-params")
        fake_cuda.enqueue(handle, work, "trt-enqueue")
        return True
