"""Fixtures for the TensorRT tests: the stand-in ``tensorrt`` module, a fake GPU, engines.

``standin`` puts ``tests/trt_standin`` on ``sys.path`` for one test only (never globally) and
imports a fresh stand-in; ``fake_gpu`` makes :func:`vsvsr.runtime.gpu_info.query_gpu` report a
GPU. Import what a test module needs: ``from _trt_fixtures import standin, fake_gpu, ...``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from vsvsr.runtime.gpu_info import GpuInfo

STANDIN = Path(__file__).resolve().parent / "trt_standin"
GPU = GpuInfo(name="NVIDIA Stand-in GPU", compute_capability="8.9", driver="560.35.03")


def _forget_standin() -> None:
    for name in ("tensorrt", "fake_cuda"):
        sys.modules.pop(name, None)


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The stand-in ``tensorrt`` (TensorRT 10 unless ``VSVSR_TRT_STANDIN_VERSION`` is set)."""
    _forget_standin()
    monkeypatch.syspath_prepend(str(STANDIN))
    import tensorrt

    assert tensorrt.__file__.startswith(str(STANDIN)), "a real tensorrt shadows the stand-in"
    yield tensorrt
    _forget_standin()


@pytest.fixture
def standin_trt11(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The stand-in in TensorRT 11 mode: strongly typed only, no FP16/BF16 builder flags."""
    monkeypatch.setenv("VSVSR_TRT_STANDIN_VERSION", "11.0.0.1")
    _forget_standin()
    monkeypatch.syspath_prepend(str(STANDIN))
    import tensorrt

    yield tensorrt
    _forget_standin()


@pytest.fixture
def standin_trt10_13(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The stand-in as TensorRT 10.13: FP16/BF16 flags and the ``ITensor.dtype`` setter
    still exist but are deprecated (each use warns)."""
    monkeypatch.setenv("VSVSR_TRT_STANDIN_VERSION", "10.13.0.35")
    _forget_standin()
    monkeypatch.syspath_prepend(str(STANDIN))
    import tensorrt

    yield tensorrt
    _forget_standin()


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> GpuInfo:
    """Make every ``query_gpu`` report :data:`GPU`."""
    import plugin_build.trt_build as trt_build
    import vsvsr.runtime.gpu_info as gpu_info
    import vsvsr.runtime.tensorrt_backend as trt_backend

    for module in (gpu_info, trt_build, trt_backend):
        monkeypatch.setattr(module, "query_gpu", lambda index=0: GPU)
    return GPU


@pytest.fixture
def fake_device(standin: ModuleType):  # noqa: ARG001  (fake_cuda is importable with the stand-in)
    import fake_cuda

    for key in fake_cuda.STATS:
        fake_cuda.STATS[key] = 0
    fake_cuda.reset_trace()
    return fake_cuda.FakeDevice()


def recurrent_feeds(rng: np.random.Generator, c: int, h: int, w: int,
                    step: float = 0.0) -> dict[str, np.ndarray]:
    return {"lr": rng.random((1, 3, h, w), dtype=np.float32),
            "lr_prev": rng.random((1, 3, h, w), dtype=np.float32),
            "state": rng.uniform(-1, 1, (1, c, h, w)).astype(np.float32),
            "step": np.full((1, 1, 1, 1), step, np.float32)}
