"""What the TensorRT build and run sides share: the lazy import and a logger into ``logging``."""

from __future__ import annotations

import logging
import threading
from types import ModuleType
from typing import Any

from vsvsr.runtime.engine_key import trt_major, trt_version_tuple
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger("vsvsr.tensorrt")

#: One logger per ``tensorrt`` module (tests swap stand-in modules; a real process has one).
_LOGGERS: dict[int, Any] = {}
_LOGGERS_LOCK = threading.Lock()


def load_tensorrt(feature: str = "the TensorRT backend") -> ModuleType:
    """``import tensorrt`` or a :class:`MissingDependencyError` that says how to install it."""
    return lazy_import("tensorrt", feature)


def tensorrt_version(trt: ModuleType) -> str:
    return str(getattr(trt, "__version__", "0"))


def is_strongly_typed_only(trt: ModuleType) -> bool:
    """Whether vsvsr builds strongly typed networks (precision from a converted ONNX).

    TensorRT 11 dropped the FP16/BF16 builder flags and the ``ITensor.dtype`` setter; 10.12
    deprecated both (each use warns). So from 10.12 on the strongly typed path is used too,
    and late 10.x and 11.x build the same way.
    """
    return trt_version_tuple(tensorrt_version(trt)) >= (10, 12) \
        or trt_major(tensorrt_version(trt)) >= 11 or not hasattr(trt.BuilderFlag, "FP16")


class ErrorWindow:
    """The errors the shared logger records while one operation runs (``errors``)."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._start = logger.error_count()

    @property
    def errors(self) -> list[str]:
        return self._logger.errors_since(self._start)

    def text(self, default: str = "no error was logged") -> str:
        return " | ".join(self.errors) or default


def trt_logger(trt: ModuleType) -> Any:
    """The process's one ``trt.ILogger``: forwards to :mod:`logging`, keeps recent errors.

    TensorRT reports failures through the logger and returns ``None``/``False``, so each
    operation opens an :class:`ErrorWindow` and reports the errors logged since. VERBOSE
    messages (each a Python call under the GIL) are dropped first thing unless DEBUG
    logging is on. The error list is bounded; concurrent operations may see each other's
    errors in their window (TensorRT's logger is global too).
    """
    with _LOGGERS_LOCK:
        logger = _LOGGERS.get(id(trt))
        if logger is None:
            logger = _LOGGERS[id(trt)] = _make_logger(trt)
        return logger


def _make_logger(trt: ModuleType) -> Any:
    class _Logger(trt.ILogger):  # type: ignore[misc, name-defined]
        MAX_KEPT = 256

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self._errors: list[str] = []
            self._dropped = 0  # errors discarded from the front of the list
            self._lock = threading.Lock()

        def log(self, severity: Any, msg: str) -> None:
            sev = int(severity)
            if sev >= 4:  # VERBOSE: by far the most messages
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s", msg)
                return
            if sev <= 1:  # INTERNAL_ERROR, ERROR
                with self._lock:
                    self._errors.append(msg)
                    if len(self._errors) > self.MAX_KEPT:
                        del self._errors[0]
                        self._dropped += 1
                log.error("%s", msg)
            elif sev == 2:
                log.warning("%s", msg)
            else:
                log.info("%s", msg)

        def error_count(self) -> int:
            with self._lock:
                return self._dropped + len(self._errors)

        def errors_since(self, start: int) -> list[str]:
            with self._lock:
                return list(self._errors[max(0, start - self._dropped):])

    return _Logger()
