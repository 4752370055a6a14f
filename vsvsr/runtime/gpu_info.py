"""What GPU this is: name, compute capability and driver, asked of CUDA and NVML directly.

Engine keys need these facts (a TensorRT plan runs only on the architecture and TensorRT
version it was built for). They come from the CUDA driver API (``libcuda.so.1``) and NVML
(``libnvidia-ml.so.1``) through ctypes, so no Python GPU package is needed and nothing parses
``nvidia-smi`` output. On a machine without a driver :func:`query_gpu` returns ``None``.
"""

from __future__ import annotations

import ctypes
import logging
import re
from dataclasses import dataclass
from functools import cache

log = logging.getLogger(__name__)

_CU_ATTR_CC_MAJOR = 75  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
_CU_ATTR_CC_MINOR = 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR


@dataclass(kw_only=True, frozen=True)
class GpuInfo:
    """The facts about one GPU that decide whether an engine built elsewhere runs on it."""

    name: str  #: e.g. "NVIDIA H100 80GB HBM3"
    compute_capability: str  #: "major.minor", e.g. "9.0"
    driver: str  #: NVIDIA driver version (e.g. "550.54.15"), or "cuda-12040" without NVML
    index: int = 0

    @property
    def slug(self) -> str:
        """The name as a file-name part: ``nvidia-h100-80gb-hbm3``."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "gpu"

    @property
    def sm(self) -> str:
        """``sm90`` for compute capability 9.0."""
        return "sm" + self.compute_capability.replace(".", "")


def _check(lib_call: int, what: str) -> None:
    if lib_call != 0:
        raise OSError(f"{what} failed with CUDA error {lib_call}")


def _cuda_facts(index: int) -> tuple[str, str, int]:
    cuda = ctypes.CDLL("libcuda.so.1")
    _check(cuda.cuInit(0), "cuInit")
    dev = ctypes.c_int()
    _check(cuda.cuDeviceGet(ctypes.byref(dev), index), "cuDeviceGet")
    name = ctypes.create_string_buffer(256)
    _check(cuda.cuDeviceGetName(name, 256, dev), "cuDeviceGetName")
    major, minor, version = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    _check(cuda.cuDeviceGetAttribute(ctypes.byref(major), _CU_ATTR_CC_MAJOR, dev), "cc major")
    _check(cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CU_ATTR_CC_MINOR, dev), "cc minor")
    _check(cuda.cuDriverGetVersion(ctypes.byref(version)), "cuDriverGetVersion")
    return name.value.decode(errors="replace"), f"{major.value}.{minor.value}", version.value


def _nvml_driver() -> str | None:
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() != 0:
            return None
        buf = ctypes.create_string_buffer(96)
        ok = nvml.nvmlSystemGetDriverVersion(buf, 96) == 0
        nvml.nvmlShutdown()
        return buf.value.decode() if ok else None
    except (OSError, AttributeError):
        return None


@cache
def query_gpu(index: int = 0) -> GpuInfo | None:
    """The GPU at ``index``, or ``None`` where there is no CUDA driver or device."""
    try:
        name, cc, cuda_version = _cuda_facts(index)
    except (OSError, AttributeError) as exc:
        log.debug("no CUDA GPU: %s", exc)
        return None
    driver = _nvml_driver() or f"cuda-{cuda_version}"
    return GpuInfo(name=name, compute_capability=cc, driver=driver, index=index)
