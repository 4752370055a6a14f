"""What the TensorRT build and run sides share: the lazy import and a logger into ``logging``."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from vsvsr.runtime.engine_key import trt_major
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger("vsvsr.tensorrt")


def load_tensorrt(feature: str = "the TensorRT backend") -> ModuleType:
    """``import tensorrt`` or a :class:`MissingDependencyError` that says how to install it."""
    return lazy_import("tensorrt", feature)


def tensorrt_version(trt: ModuleType) -> str:
    return str(getattr(trt, "__version__", "0"))


def is_strongly_typed_only(trt: ModuleType) -> bool:
    """TensorRT 11 dropped the FP16/BF16 builder flags: precision must come from the ONNX."""
    return trt_major(tensorrt_version(trt)) >= 11 or not hasattr(trt.BuilderFlag, "FP16")


def make_logger(trt: ModuleType) -> Any:
    """A ``trt.ILogger`` that forwards to :mod:`logging` and keeps the errors it saw.

    The errors are what a failed build or deserialization reports to the user
    (``logger.errors``), since TensorRT only returns ``None``.
    """

    class _Logger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            sev = int(severity)
            if sev <= 1:  # INTERNAL_ERROR, ERROR
                self.errors.append(msg)
                log.error("%s", msg)
            elif sev == 2:
                log.warning("%s", msg)
            elif sev == 3:
                log.info("%s", msg)
            else:
                log.debug("%s", msg)

    return _Logger()
