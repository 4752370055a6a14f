"""ONNX export matches PyTorch, for random nets and for the shipped models, on real frames."""

from __future__ import annotations

import re

import numpy as np
import pytest
import synth

from plugin_build.export_onnx import check_against_torch
from vsvsr.models.registry import BUILTIN_MODELS, resolve_model
from vsvsr.runtime.ort_backend import read_onnx_descriptor
from vsvsr.runtime.torch_backend import TorchEngine


def frames_pair(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Two consecutive real frames when ../shared/data is present, else synthetic ones."""
    frames = synth.real_frames(2, h, w) or synth.make_frames(2, h, w)
    return frames[1][None], frames[0][None]


def check(onnx_path, h: int = 36, w: int = 52) -> None:
    engine = TorchEngine(onnx_path.with_suffix(".pth"), threads=1)
    c = engine.descriptor.state_channels
    rng = np.random.default_rng(0)
    rand = [rng.random((1, 3, h, w), dtype=np.float32) for _ in range(2)]
    state = rng.random((1, c, h, w), dtype=np.float32)
    assert check_against_torch(engine._net, onnx_path, *rand, state, 3.0).worst < 1e-4
    cur, prev = frames_pair(h, w)
    # A realistic state: the one the network itself produces after a few frames.
    st = np.zeros((1, c, h, w), np.float32)
    for step in range(3):
        st = engine.run({"lr": cur, "lr_prev": prev, "state": st,
                         "step": np.full((1, 1, 1, 1), step, np.float32)})["state_out"]
    assert check_against_torch(engine._net, onnx_path, cur, prev, st, 3.0).worst < 1e-4


def test_random_model_export_matches_torch(random_model, random_model_x4, random_flow_model) -> None:
    check(random_model)
    check(random_model_x4)
    check(random_flow_model)  # GridSample + dynamic-size grids, odd sizes below
    check(random_flow_model, h=23, w=41)


def test_gated_model_export_matches_torch_and_suits_tensorrt(random_gated_model) -> None:
    """rvsrg: pyramid flow (AveragePool, Resize), bicubic GridSample, the in-graph bicubic
    upscale and antialiased downscale convs: ORT equals PyTorch, odd sizes included, and the
    ONNX passes the TensorRT-friendliness check that ``vsvsr build`` runs."""
    from plugin_build.onnx_check import check_onnx

    check(random_gated_model)
    check(random_gated_model, h=23, w=41)
    report = check_onnx(random_gated_model)
    assert report.ok, report.problems


def test_flow_model_warps_with_its_flow(random_flow_model) -> None:
    """The exported flow path is live: moving the previous frame changes the output."""
    from vsvsr.runtime.ort_backend import OrtEngine

    engine = OrtEngine(random_flow_model, threads=1)
    c = engine.descriptor.state_channels
    cur, prev = frames_pair(24, 32)
    state = np.random.default_rng(1).random((1, c, 24, 32), dtype=np.float32)
    step = np.ones((1, 1, 1, 1), np.float32)
    a = engine.run({"lr": cur, "lr_prev": prev, "state": state, "step": step})["sr"]
    b = engine.run({"lr": cur, "lr_prev": np.roll(prev, 3, axis=3), "state": state,
                    "step": step})["sr"]
    assert float(np.abs(a - b).max()) > 1e-3


@pytest.mark.parametrize("name", BUILTIN_MODELS.names())
def test_shipped_model_files_agree(name: str) -> None:
    files = resolve_model(name)
    assert files.onnx is not None and files.pth is not None, "shipped models need both files"
    desc = read_onnx_descriptor(files.onnx)
    assert desc == TorchEngine(files.pth, threads=1).descriptor
    assert desc.name == name and desc.recurrent
    assert desc.scale == int(re.search(r"-x(\d)", name).group(1))  # rvsr-x4, rvsr-x2-real
    check(files.onnx)
