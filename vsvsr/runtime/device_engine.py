"""A network that runs on the GPU with its tensors in device buffers: the part the TensorRT
and PyTorch CUDA backends share.

An *executor* (a TensorRT execution context, or a PyTorch module) runs the network on tensors
bound by name to device buffers. :class:`DeviceEngine` owns those buffers and:

- keeps a recurrent model's state on the device as a :class:`DeviceState`: two buffers used
  ping-pong, the state input bound to one and ``state_out`` to the other, swapped each step,
  so the same buffer is never both input and output;
- replays CUDA graphs with **one executor (execution context) per graph**: each (state pair,
  parity) gets its own context (:meth:`Executor.clone`, sharing the activation memory, which
  is safe on one stream), bound once, run once plainly (lazy initialization and TensorRT's
  update of its device-side tensor parameters are not capturable), captured once and replayed
  afterwards. A graph bakes in its context's addresses and parameters, so a context is never
  rebound once captured (NVIDIA's guidance; trtexec and NVIDIA's multi-graph code do the
  same). When capture fails it falls back to plain enqueues on one context, rebound per call;
- stages host data through pinned buffers, and runs everything on its own non-default stream.

It also implements the plain :class:`Engine` interface (NumPy in, NumPy out) on top.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vsvsr.errors import ClipFormatError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.runtime.cuda_device import Device
from vsvsr.runtime.engine import Engine, TensorSpec

log = logging.getLogger(__name__)

STATE_IN, STATE_OUT = "state", "state_out"


@dataclass(frozen=True)
class IOTensor:
    """One bound tensor of an executor: concrete shape, NumPy dtype, input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    is_input: bool


class Executor(Protocol):
    """Runs the network on bound device buffers (TensorRT context, PyTorch module)."""

    tensors: tuple[IOTensor, ...]

    def bind(self, name: str, array: Any) -> None: ...
    def enqueue(self, stream: Any) -> None: ...
    def capture(self, stream: Any) -> Any | None: ...
    def launch(self, graph: Any, stream: Any) -> None: ...
    def clone(self) -> Executor:
        """Another executor of the same network (a new context, nothing bound), sharing what
        can be shared on one stream (weights, activation memory)."""
        ...
    def close(self) -> None: ...


class DeviceState:
    """A recurrent state that lives on the GPU: a buffer pair and which half is current.

    ``np.asarray(state)`` downloads it (for saving); the runner otherwise never looks inside.
    """

    def __init__(self, engine: DeviceEngine, pair: int) -> None:
        self._engine = weakref.ref(engine)
        self.pair = pair
        self.parity = 0
        weakref.finalize(self, engine._release_pair, pair)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("the engine of this state was closed")
        host = engine.state_to_host(self)
        return host if dtype is None else host.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        engine = self._engine()
        return engine.tensor(STATE_IN).shape if engine is not None else ()


class DeviceEngine(Engine):
    """One executor with its device buffers, stream and CUDA graphs (see the module doc)."""

    def __init__(self, descriptor: ModelDescriptor, executor: Executor, device: Device, *,
                 backend: str, use_graphs: bool = True, stream: Any = None) -> None:
        super().__init__(descriptor)
        self.backend = backend
        self.device = device
        self.executor = executor
        self._io = {t.name: t for t in executor.tensors}
        self.recurrent = STATE_IN in self._io and STATE_OUT in self._io
        #: its own non-default stream (given when the executor must know it up front)
        self.stream = stream if stream is not None else device.new_stream()
        self._lock = threading.RLock()
        self._buf = {t.name: device.empty(t.shape, t.dtype) for t in executor.tensors
                     if t.name not in (STATE_IN, STATE_OUT)}
        self._host = {t.name: device.pinned_empty(t.shape, t.dtype) for t in executor.tensors}
        self._pairs: list[tuple[Any, Any]] = []
        self._free: list[int] = []
        self._graphs: dict[tuple[int, int], Any] = {}
        #: (pair, parity) -> the executor its graph was captured from, bound once
        self._contexts: dict[tuple[int, int], Executor] = {}
        self._graphs_ok = use_graphs
        self._warm = False
        self.stats = {"plain": 0, "captured": 0, "replayed": 0, "contexts": 1}
        f32 = np.dtype(np.float32)
        self.inputs = tuple(TensorSpec(t.name, t.shape, f32) for t in executor.tensors if t.is_input)
        self.outputs = tuple(TensorSpec(t.name, t.shape, f32) for t in executor.tensors
                             if not t.is_input)

    def tensor(self, name: str) -> IOTensor:
        return self._io[name]

    # -- state pairs ------------------------------------------------------------------------------
    def _take_pair(self) -> int:
        if self._free:
            return self._free.pop()
        t = self._io[STATE_IN]
        if self._io[STATE_OUT].shape != t.shape or self._io[STATE_OUT].dtype != t.dtype:
            raise ClipFormatError(f"{self.descriptor.name}: state and state_out differ "
                                  f"({t.shape} vs {self._io[STATE_OUT].shape})")
        self._pairs.append((self.device.empty(t.shape, t.dtype), self.device.empty(t.shape, t.dtype)))
        return len(self._pairs) - 1

    def _release_pair(self, pair: int) -> None:
        with self._lock:
            if pair < len(self._pairs) and pair not in self._free:
                self._free.append(pair)

    def new_state(self, height: int, width: int) -> DeviceState:
        """A zero state (a reset) on the device."""
        self._check_lr_size(height, width)
        with self._lock:
            state = DeviceState(self, self._take_pair())
            self.device.zero(self._pairs[state.pair][0], self.stream)
            return state

    def state_from_host(self, array: np.ndarray) -> DeviceState:
        """Upload a saved state."""
        t = self._io[STATE_IN]
        if tuple(array.shape) != t.shape:
            raise ClipFormatError(f"{self.descriptor.name}: state of shape {array.shape} does "
                                  f"not fit this engine's {t.shape}")
        with self._lock:
            state = DeviceState(self, self._take_pair())
            host = self._host[STATE_IN]
            self.device.synchronize(self.stream)  # the staging buffer may still be in use
            np.copyto(host, array, casting="same_kind")
            self.device.upload(self._pairs[state.pair][0], host, self.stream)
            self.device.synchronize(self.stream)
            return state

    def state_to_host(self, state: DeviceState) -> np.ndarray:
        with self._lock:
            host = self._host[STATE_OUT]
            self.device.download(host, self._pairs[state.pair][state.parity], self.stream)
            self.device.synchronize(self.stream)
            return host.astype(np.float32)

    # -- running ----------------------------------------------------------------------------------
    def _check_lr_size(self, height: int, width: int) -> None:
        shape = self._io["lr"].shape
        if (shape[2], shape[3]) != (height, width):
            raise ClipFormatError(
                f"{self.backend}: the engine for {self.descriptor.name!r} is built for "
                f"{shape[3]}x{shape[2]}, not {width}x{height}; build one for this size "
                f"(vsvsr build --model {self.descriptor.name} --size {width}x{height})")

    def _execute(self, pair: int | None, parity: int) -> None:
        """Enqueue one network run; with a state, ``pair[parity]`` in, the other half out."""
        key = (-1 if pair is None else pair, parity)
        if self._graphs_ok:
            graph = self._graphs.get(key)
            if graph is not None:
                self._contexts[key].launch(graph, self.stream)
                self.stats["replayed"] += 1
                return
            self._run_and_capture(key, pair, parity)
            return
        self._bind_io(self.executor, pair, parity)  # plain mode: one context, rebound per call
        self.executor.enqueue(self.stream)
        self.stats["plain"] += 1

    def _bind_io(self, ctx: Executor, pair: int | None, parity: int) -> None:
        """Bind every tensor of ``ctx``: the shared buffers and, with a state, the pair's
        halves (``parity`` in, the other out: never the same buffer)."""
        for name, arr in self._buf.items():
            ctx.bind(name, arr)
        if pair is not None:
            ctx.bind(STATE_IN, self._pairs[pair][parity])
            ctx.bind(STATE_OUT, self._pairs[pair][1 - parity])

    def _run_and_capture(self, key: tuple[int, int], pair: int | None, parity: int) -> None:
        """First run of ``key``: a context of its own, bound once, one plain run (this
        frame's result), then the capture of its next runs; graphs off for good if the
        capture fails."""
        ctx = self.executor.clone()
        self._bind_io(ctx, pair, parity)
        ctx.enqueue(self.stream)
        self.stats["plain"] += 1
        self.stats["contexts"] += 1
        graph = ctx.capture(self.stream)
        if graph is None:
            log.info("%s: CUDA graphs unavailable; plain enqueues from now on", self.backend)
            self._graphs_ok = False
            ctx.close()
            self.stats["contexts"] -= 1
            for other in self._contexts.values():
                other.close()
            self._contexts.clear()
            self._graphs.clear()
            return  # this frame ran (plainly) already
        self._contexts[key] = ctx
        self._graphs[key] = graph
        self.stats["captured"] += 1

    def _stage_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        for name, value in feeds.items():
            if name in (STATE_IN,):
                continue
            t = self._io.get(name)
            if t is None or not t.is_input:
                raise KeyError(f"{self.backend}: {name!r} is not an input of "
                               f"{self.descriptor.name!r}")
            if tuple(value.shape) != t.shape:
                raise ClipFormatError(f"{self.backend}: input {name} has shape {value.shape}; "
                                      f"the engine is built for {t.shape}")
            np.copyto(self._host[name], value, casting="same_kind")
            self.device.upload(self._buf[name], self._host[name], self.stream)

    def _collect(self, names: list[str]) -> dict[str, np.ndarray]:
        for name in names:
            self.device.download(self._host[name], self._buf[name], self.stream)
        self.device.synchronize(self.stream)
        return {name: self._host[name].astype(np.float32) for name in names}

    def step_device(self, feeds: dict[str, np.ndarray], state: DeviceState) -> np.ndarray:
        """One recurrent step with the state kept on the device; returns ``sr`` (float32).

        ``state`` advances in place (its current half flips).
        """
        with self._lock:
            self.device.synchronize(self.stream)  # staging buffers are free again
            self._stage_inputs(feeds)
            self._execute(state.pair, state.parity)
            state.parity ^= 1
            return self._collect(["sr"])["sr"]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The plain Engine interface: every input from the host, every output to the host."""
        with self._lock:
            self.device.synchronize(self.stream)
            self._stage_inputs(feeds)
            pair = None
            if self.recurrent:
                state = self.state_from_host(feeds[STATE_IN])
                pair, parity = state.pair, state.parity
                self._execute(pair, parity)
                out = self._collect([n for n in self._buf if not self._io[n].is_input])
                host = self._host[STATE_OUT]
                self.device.download(host, self._pairs[pair][1 - parity], self.stream)
                self.device.synchronize(self.stream)
                out[STATE_OUT] = host.astype(np.float32)
                return out
            self._execute(pair, 0)
            return self._collect([n for n in self._buf if not self._io[n].is_input])

    def close(self) -> None:
        with self._lock:
            if self.executor is not None:
                self.device.synchronize(self.stream)
                self._graphs.clear()
                for ctx in self._contexts.values():
                    ctx.close()
                self._contexts.clear()
                self.executor.close()
                self.executor = None  # type: ignore[assignment]
                self._buf.clear()
                self._pairs.clear()
