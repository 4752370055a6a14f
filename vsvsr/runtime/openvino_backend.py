"""OpenVINO backend: the CPU path, in bf16 where the CPU has AMX-BF16 or AVX512-BF16.

The ONNX file is read once; for each input size the model is reshaped to that size and
compiled (static shapes run faster than dynamic ones on the CPU plugin), with OpenVINO's model
cache in the user cache folder (:func:`vsvsr.utils.cache_dir.user_cache_dir`), so a second
run loads the compiled blob instead of compiling again.

Precision (``precision=``): ``f32``, ``bf16``, or ``auto`` = bf16 where the CPU has AMX-BF16
or AVX512-BF16 (read from ``/proc/cpuinfo`` and confirmed by OpenVINO's
``OPTIMIZATION_CAPABILITIES``), f32 elsewhere. bf16 on a CPU without it is refused: OpenVINO
would emulate it slowly. Inputs and outputs stay float32 either way.

A recurrent model's state lives in two host buffers used ping-pong (the ``state`` input bound
to one, ``state_out`` to the other, swapped each step: :class:`HostState`), so a step copies no
state; inputs are bound to the caller's arrays and outputs written straight into fresh arrays.
A stateless model (overfit packs) can run ``streams`` CPU streams with one infer request each,
shared by the caller's threads. Output is a pure function of the inputs for a given precision,
thread count and stream count (the filters' exactness rests on that; the tests check it).
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import BackendUnavailableError, ClipFormatError, ModelFileError
from vsvsr.models.descriptor import ONNX_METADATA_KEY, ModelDescriptor
from vsvsr.runtime.engine import Engine, TensorSpec
from vsvsr.utils.cache_dir import user_cache_dir
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "f32")
#: /proc/cpuinfo flags that give the CPU native bf16 arithmetic, and their usual names.
BF16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}
STATE_IN, STATE_OUT = "state", "state_out"
#: Compiled sizes kept per engine (the overfit filter's patch mode uses a few crop sizes).
MAX_COMPILED = 16


def _ov() -> Any:
    return lazy_import("openvino", "the OpenVINO backend")


def openvino_version() -> str:
    return str(_ov().get_version()).split("-")[0]


@cache
def core() -> Any:
    """The process's one ``openvino.Core`` (it owns the plugins; creating it is not free)."""
    return _ov().Core()


def cache_folder() -> Path:
    """Where OpenVINO's compiled-model cache goes (``…/vsvsr/openvino``)."""
    return user_cache_dir("openvino")


# -- precision ------------------------------------------------------------------------------------
def read_cpu_flags(path: str | os.PathLike[str] = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags from ``/proc/cpuinfo`` (None where there is no such file)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


@cache
def _cpu_flags() -> frozenset[str] | None:
    return read_cpu_flags()


@cache
def cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU (e.g. ``BF16``, ``FP32``)."""
    return tuple(str(c) for c in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


@dataclass(frozen=True)
class PrecisionChoice:
    """The inference precision an engine uses, and why (``vsvsr info`` shows both)."""

    precision: str  #: ``bf16`` or ``f32``
    reason: str


def choose_precision(requested: str = "auto", *, flags: frozenset[str] | None | str = "probe",
                     capabilities: tuple[str, ...] | None = None) -> PrecisionChoice:
    """Resolve ``requested`` (``auto``/``bf16``/``f32``) on this CPU.

    ``flags`` and ``capabilities`` default to this machine's (tests pass others).

    Raises:
        BackendUnavailableError: an unknown precision, or ``bf16`` on a CPU without native bf16.
    """
    if requested not in PRECISIONS:
        raise BackendUnavailableError(f"unknown precision {requested!r}; choose one of "
                                      f"{', '.join(PRECISIONS)}")
    if requested == "f32":
        return PrecisionChoice("f32", "asked for (precision='f32')")
    cpu = _cpu_flags() if isinstance(flags, str) else flags
    caps = cpu_capabilities() if capabilities is None else capabilities
    ov_bf16 = "BF16" in caps
    if cpu is None:  # no /proc/cpuinfo (not Linux): OpenVINO's word alone
        native, has = ["bf16 per OpenVINO (no /proc/cpuinfo to confirm)"], ov_bf16
    else:
        native = [name for flag, name in BF16_FLAGS.items() if flag in cpu]
        has = bool(native) and ov_bf16
    if has:
        why = f"the CPU has {' and '.join(native)}"
        return PrecisionChoice("bf16", why if requested == "auto" else f"asked for; {why}")
    lacks = ("OpenVINO does not list BF16 in the CPU's capabilities" if native else
             "the CPU has neither AMX-BF16 nor AVX512-BF16")
    if requested == "bf16":
        raise BackendUnavailableError(
            f"precision='bf16' needs a CPU with native bf16, but {lacks} (OpenVINO would "
            "emulate it, slower than f32); use precision='f32' or 'auto'")
    return PrecisionChoice("f32", lacks)


# -- settings -------------------------------------------------------------------------------------
@dataclass(kw_only=True, frozen=True)
class OvSettings:
    """How an :class:`OpenVinoEngine` compiles and runs its model."""

    #: ``auto``, ``bf16`` or ``f32`` (see :func:`choose_precision`).
    precision: str = "auto"
    #: Inference threads in all (0: OpenVINO's choice, every core).
    threads: int = 0
    #: CPU streams, each with its own infer request (stateless models; 1 for recurrent ones).
    streams: int = 1
    #: OpenVINO's model cache folder; None: :func:`cache_folder`.
    cache_dir: Path | None = None
    #: False: compile without the model cache.
    use_cache: bool = True

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BackendUnavailableError(f"OvSettings: precision must be one of "
                                          f"{', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("threads", "streams"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"OvSettings: {name} must be a whole number >= 0, got {value!r}")
        if self.streams < 1:
            raise ValueError(f"OvSettings: streams must be >= 1, got {self.streams}")


# -- reading --------------------------------------------------------------------------------------
def _onnx_nodes(model: str | bytes) -> list[tuple[str, str]]:
    """(node name, ``domain.op_type``) of every node, when the optional ``onnx`` package is
    there (only for error messages)."""
    try:
        import onnx
    except ImportError:
        return []
    try:
        proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model)
    except Exception:
        return []
    return [(n.name, f"{n.domain}.{n.op_type}" if n.domain else n.op_type)
            for n in proto.graph.node]


def unconverted_nodes(model: str | bytes, message: str) -> list[str]:
    """The nodes OpenVINO's error ``message`` says it cannot convert, by name where the
    ``onnx`` package can tell (``'name' (op type)``), else by op type."""
    types: list[str] = []
    for line in message.splitlines():
        if "No conversion rule found for operations:" in line:
            types += [t.strip() for t in line.split(":", 1)[1].split(",") if t.strip()]
        elif line.strip().startswith("-- ") and " with a message:" in line:
            types.append(line.strip()[3:].split(" with a message:")[0].strip())
    types = list(dict.fromkeys(types))
    named = [f"{name!r} ({kind})" for name, kind in _onnx_nodes(model) if kind in types and name]
    return named or types


def read_ov_model(model: str | os.PathLike[str] | bytes, source: str) -> Any:
    """``openvino.Model`` of an ONNX file or in-memory ONNX bytes, with clear errors."""
    if not isinstance(model, bytes):
        p = Path(model)
        if not p.is_file():
            raise ModelFileError(f"model file {p} does not exist; check the path or use a "
                                 "built-in model name (see 'vsvsr models')")
        model = str(p)
    try:
        return core().read_model(io.BytesIO(model) if isinstance(model, bytes) else model)
    except Exception as exc:
        nodes = unconverted_nodes(model, str(exc))
        if nodes:
            raise ModelFileError(
                f"{source}: OpenVINO {openvino_version()} cannot convert the node(s) "
                f"{', '.join(nodes)}; run this model with backend='ort' (ONNX Runtime)") from exc
        raise ModelFileError(f"{source}: OpenVINO cannot read this model ({_first_line(exc)}); "
                             "the file is corrupt or not an ONNX model: re-export it, or try "
                             "backend='ort'") from exc


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return "; ".join(lines[:3])[:400] if lines else type(exc).__name__


def _descriptor(model: Any, source: str) -> ModelDescriptor:
    key = ["framework", ONNX_METADATA_KEY]
    if not model.has_rt_info(key):
        raise ModelFileError(
            f"{source}: this ONNX file has no '{ONNX_METADATA_KEY}' metadata, so vsvsr does not "
            "know its scale and state; export it with vsvsr (plugin_build.export_onnx)")
    return ModelDescriptor.from_json(model.get_rt_info(key).astype(str), source=source)


# -- running --------------------------------------------------------------------------------------
class HostState:
    """A recurrent state as two host buffers used ping-pong; ``current`` is the live half.

    ``np.asarray(state)`` gives a copy of the live half (for saved states).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.buffers = (np.zeros(shape, np.float32), np.zeros(shape, np.float32))
        self.parity = 0

    @property
    def current(self) -> np.ndarray:
        return self.buffers[self.parity]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.buffers[0].shape

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.current.copy()
        return out if dtype is None else out.astype(dtype)


class _Compiled:
    """One compiled size: the compiled model and a pool of infer requests (one per stream)."""

    def __init__(self, compiled: Any, requests: int) -> None:
        self.compiled = compiled
        #: None for the dynamic-shape compile: outputs are read back after each run
        self.out_shapes = None if any(o.get_partial_shape().is_dynamic for o in compiled.outputs) \
            else {o.get_any_name(): tuple(int(d) for d in o.get_shape()) for o in compiled.outputs}
        self._free = [compiled.create_infer_request() for _ in range(requests)]
        self._cv = threading.Condition()

    def take(self) -> Any:
        with self._cv:
            while not self._free:
                self._cv.wait()
            return self._free.pop()

    def give(self, request: Any) -> None:
        with self._cv:
            self._free.append(request)
            self._cv.notify()


class OpenVinoEngine(Engine):
    """One ONNX model on OpenVINO's CPU plugin (see the module doc).

    Args:
        model: an ONNX file, or ONNX bytes (the overfit packs' members).
        size: LR (width, height) to compile for now. Without it, each input size is compiled
            on first use (``vsvsr eval``: one size per sequence); with it, other sizes (the
            overfit filter's crops) share one dynamic-shape compile, so a stream of odd sizes
            neither recompiles nor fills the model cache.
        settings: precision, threads, streams, cache.
        source: the name used in messages (default: the path).
    """

    backend = "openvino"

    def __init__(self, model: str | os.PathLike[str] | bytes, *, size: tuple[int, int] | None = None,
                 settings: OvSettings | None = None, source: str = "") -> None:
        self.settings = settings or OvSettings()
        source = source or (str(model) if not isinstance(model, bytes) else "ONNX model")
        self.choice = choose_precision(self.settings.precision)
        self._model = read_ov_model(model, source)
        super().__init__(_descriptor(self._model, source))
        self.source = source
        self.path = None if isinstance(model, bytes) else Path(model)
        self.precision = self.choice.precision
        self.recurrent = {STATE_IN, STATE_OUT} <= {t.get_any_name() for t in
                                                     [*self._model.inputs, *self._model.outputs]}
        if self.recurrent and self.settings.streams > 1:
            raise ModelFileError(f"model {self.descriptor.name!r} is recurrent: its frames "
                                 "depend on each other in order, so it runs on one stream")
        self._lock = threading.Lock()
        self._compiled: OrderedDict[tuple, _Compiled] = OrderedDict()

        def spec(port: Any) -> TensorSpec:
            shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
            return TensorSpec(port.get_any_name(), shape, np.dtype(np.float32))

        self.inputs = tuple(spec(p) for p in self._model.inputs)
        self.outputs = tuple(spec(p) for p in self._model.outputs)
        self._in_names = [s.name for s in self.inputs]
        self._model_inputs = self.inputs  # the file's own (partly dynamic) shapes
        self._dynamic_rest = size is not None
        if size is not None:
            shapes = self._shapes_for(size)
            self._get(shapes)
            self.inputs = tuple(TensorSpec(s.name, shapes[s.name], s.dtype) for s in self.inputs)
            out = self._compiled[self._key(shapes)].out_shapes
            self.outputs = tuple(TensorSpec(s.name, out[s.name], s.dtype) for s in self.outputs)

    def describe(self) -> str:
        return (f"openvino ({self.precision}, {self.choice.reason}): {self.descriptor.name} "
                f"(x{self.descriptor.scale})")

    # -- compiling ----------------------------------------------------------------------------------
    def _shapes_for(self, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
        w, h = size
        out = {}
        for s in self.inputs:
            if len(s.shape) != 4:
                raise ModelFileError(f"{self.source}: input {s.name!r} is not NCHW")
            dims = list(s.shape)
            if s.name != "step":
                dims[2], dims[3] = h, w
            out[s.name] = tuple(1 if d is None else d for d in dims)
        return out

    @staticmethod
    def _key(shapes: dict[str, tuple[int, ...]]) -> tuple:
        return tuple(sorted(shapes.items()))

    def config(self) -> dict[str, Any]:
        """The CPU plugin properties this engine compiles with."""
        s = self.settings
        cfg: dict[str, Any] = {"INFERENCE_PRECISION_HINT": self.precision,
                               "NUM_STREAMS": s.streams,
                               # VapourSynth's own threads share the cores: threads pinned to
                               # a core cannot move off a busy one (as ORT's no-spinning)
                               "ENABLE_CPU_PINNING": False}
        if s.threads:
            cfg["INFERENCE_NUM_THREADS"] = s.threads
        if s.use_cache:
            folder = s.cache_dir or cache_folder()
            folder.mkdir(parents=True, exist_ok=True)
            cfg["CACHE_DIR"] = str(folder)
        return cfg

    def _get(self, shapes: dict[str, tuple[int, ...]]) -> _Compiled:
        key = self._key(shapes)
        with self._lock:
            hit = self._compiled.get(key)
            if hit is None and self._dynamic_rest and self._compiled:
                key = ("dynamic",)
                hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
                return hit
            model = self._model.clone()
            config = self.config()
            if key == ("dynamic",):
                config.pop("CACHE_DIR", None)  # one compile per process; nothing to reuse
            try:
                if key != ("dynamic",):
                    model.reshape({name: list(shape) for name, shape in shapes.items()})
                compiled = core().compile_model(model, "CPU", config)
            except Exception as exc:
                raise ModelFileError(
                    f"{self.source}: OpenVINO {openvino_version()} cannot compile this model "
                    f"for input shapes {shapes} ({_first_line(exc)}); run it with "
                    "backend='ort' (ONNX Runtime)") from exc
            hit = _Compiled(compiled, self.settings.streams)
            self._compiled[key] = hit
            while len(self._compiled) > MAX_COMPILED:
                self._compiled.popitem(last=False)  # (with a size given, never the first)
            log.info("openvino: compiled %s for %s (%s, %d stream(s), cache %s)",
                     self.descriptor.name, shapes.get("lr"), self.precision,
                     self.settings.streams, "loaded" if self.loaded_from_cache(hit) else "miss")
            return hit

    @staticmethod
    def loaded_from_cache(compiled: _Compiled) -> bool:
        try:
            return bool(compiled.compiled.get_property("LOADED_FROM_CACHE"))
        except Exception:  # older OpenVINO: no such property
            return False

    def compiled_for(self, size: tuple[int, int]) -> _Compiled:
        """The compiled model for LR (width, height), compiling it if needed."""
        return self._get(self._shapes_for(size))

    # -- the Engine interface ------------------------------------------------------------------------
    def _feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self._in_names if n not in feeds]
        if missing:
            raise KeyError(f"openvino: {self.descriptor.name!r} needs the inputs {missing}")
        for spec in self._model_inputs:
            if not spec.matches(np.empty(feeds[spec.name].shape, np.float32)):
                raise ClipFormatError(f"openvino: input {spec.name!r} of "
                                      f"{self.descriptor.name!r} has shape "
                                      f"{tuple(feeds[spec.name].shape)}; the model takes "
                                      f"{spec.shape} (None: any size)")
        return {n: np.ascontiguousarray(feeds[n], np.float32) for n in self._in_names}

    def _infer(self, feeds: dict[str, np.ndarray], bind: dict[str, np.ndarray] | None = None
               ) -> dict[str, np.ndarray]:
        """Run with ``feeds`` bound as inputs; outputs go to ``bind`` or to fresh arrays."""
        ov = _ov()
        feeds = self._feeds(feeds)
        compiled = self._get({n: a.shape for n, a in feeds.items()})
        outs: dict[str, np.ndarray] = {}
        if compiled.out_shapes is not None:
            outs = {n: np.empty(shape, np.float32) for n, shape in compiled.out_shapes.items()}
            outs.update(bind or {})
        request = compiled.take()
        try:
            for name, arr in (*feeds.items(), *outs.items()):
                request.set_tensor(name, ov.Tensor(arr, shared_memory=True))
            request.infer()
            if compiled.out_shapes is None:  # dynamic shapes: copy out of OpenVINO's memory
                outs = {o.get_any_name(): np.array(request.get_tensor(o).data, np.float32)
                        for o in compiled.compiled.outputs}
                for name, target in (bind or {}).items():
                    np.copyto(target, outs[name])
        finally:
            compiled.give(request)
        return outs

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._infer(feeds)

    # -- the recurrent state kept in place (see RecurrentStepper) ----------------------------------
    def new_state(self, height: int, width: int) -> HostState:
        """A zero state (a reset)."""
        return HostState((1, self.descriptor.state_channels, height, width))

    def state_from_host(self, array: np.ndarray) -> HostState:
        """A saved state as a :class:`HostState`."""
        shape = tuple(array.shape)
        if len(shape) != 4 or shape[1] != self.descriptor.state_channels:
            raise ClipFormatError(f"openvino: a state of shape {shape} does not fit "
                                  f"{self.descriptor.name!r}")
        state = HostState(shape)
        np.copyto(state.current, array, casting="same_kind")
        return state

    def step_device(self, feeds: dict[str, np.ndarray], state: HostState) -> np.ndarray:
        """One recurrent step, ``state`` advanced in place (its halves swap); returns ``sr``."""
        out = self._infer({**feeds, STATE_IN: state.current},
                          bind={STATE_OUT: state.buffers[1 - state.parity]})
        state.parity ^= 1
        return out["sr"]

    def close(self) -> None:
        with self._lock:
            self._compiled.clear()
