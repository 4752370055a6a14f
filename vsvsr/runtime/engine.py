"""The one engine interface every backend implements.

An engine runs one exported network: named input tensors in, named output tensors out, as
NumPy arrays. Engines are context managers (open on construction, ``close`` releases sessions
and device memory) so the filter and the CLI can scope them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from vsvsr.models.descriptor import ModelDescriptor


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (``None`` for a dynamic axis) and NumPy dtype of one engine tensor."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    def matches(self, array: np.ndarray) -> bool:
        if array.ndim != len(self.shape) or array.dtype != self.dtype:
            return False
        return all(d is None or d == a for d, a in zip(self.shape, array.shape, strict=True))


class Engine(abc.ABC):
    """One loaded network on one backend."""

    #: Short backend name, e.g. ``"ort-cpu"``; shown by ``vsvsr info`` and in logs.
    backend: str = ""

    def __init__(self, descriptor: ModelDescriptor) -> None:
        self.descriptor = descriptor
        #: SHA-256 of the model's weights file; set by :func:`vsvsr.runtime.select.open_engine`
        #: and recorded in saved states so a state is never loaded into other weights.
        self.model_sha256 = ""

    #: The network's input and output tensors; each backend sets them when it loads.
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the network once. Every input must be given, as a C-contiguous array."""

    def close(self) -> None:  # noqa: B027  (optional hook: most backends hold nothing to free)
        """Release sessions and memory. Idempotent."""

    def describe(self) -> str:
        return f"{self.backend}: {self.descriptor.name} (x{self.descriptor.scale})"

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
