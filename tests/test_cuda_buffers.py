"""The double-buffered frame pipeline (source-format frames in, output-format frames out),
driven through the TensorRT stand-in and the fake CUDA device: its output equals the NumPy
reference chain (colour conversion, ONNX Runtime recurrence, colour conversion) with frames
submitted ahead of collection, across a reset."""

# ruff: noqa: F811  (pytest fixtures imported from _trt_fixtures are parameters here)
from __future__ import annotations

import numpy as np
import pytest
import synth
from _trt_fixtures import fake_device, fake_gpu, standin  # noqa: F401

from plugin_build.trt_build import build_engines
from vsvsr.models.registry import resolve_model
from vsvsr.runtime.color_kernels import FrameFormat, from_model_ref, split_planes, to_model_ref
from vsvsr.runtime.cuda_buffers import FramePipeline
from vsvsr.runtime.engine_key import BuildOptions
from vsvsr.runtime.ort_backend import OrtEngine, read_onnx_descriptor
from vsvsr.runtime.tensorrt_backend import open_tensorrt_engine

W, H = 32, 24
IN = FrameFormat(yuv=True, bits=8, ssw=1, ssh=1, matrix=1)
OUT = FrameFormat(yuv=True, bits=10, ssw=1, ssh=1, matrix=1)


def test_pipeline_matches_the_reference_chain(tmp_path, random_model, standin, fake_gpu,
                                              fake_device) -> None:
    import fake_cuda

    build_engines(str(random_model), BuildOptions(sizes=((W, H),), precision="fp32"),
                  tmp_path / "e", echo=lambda m: None)
    engine = open_tensorrt_engine(resolve_model(str(random_model)),
                                  read_onnx_descriptor(random_model), (W, H), device=fake_device,
                                  options=BuildOptions(sizes=((W, H),), precision="fp32"),
                                  dirs=[tmp_path / "e"])
    rgb = synth.make_frames(6, H, W, cuts=(3,))
    frames = [from_model_ref(f[None], IN) for f in rgb]  # YUV420P8 source frames
    resets = [True, False, False, True, False, False]
    # Reference: NumPy colour conversion around a plain ONNX Runtime recurrence.
    ort = OrtEngine(random_model, threads=1)
    ref, state, prev = [], None, None
    for frame, reset in zip(frames, resets, strict=True):
        lr = to_model_ref(frame, IN, W, H)
        if reset:
            state, prev, step = np.zeros((1, *engine.tensor("state").shape[1:]), np.float32), lr, 0
        out = ort.run({"lr": lr, "lr_prev": prev, "state": state,
                       "step": np.full((1, 1, 1, 1), step, np.float32)})
        state, prev, step = out["state_out"], lr, step + 1
        ref.append(from_model_ref(out["sr"], OUT))
    # The pipeline, two frames in flight.
    pipe = FramePipeline(engine, IN, OUT)
    got, tickets, dstate, step = [], [], None, 0
    for frame, reset in zip(frames, resets, strict=True):
        if reset:
            dstate, step = engine.new_state(H, W), 0
        tickets.append(pipe.submit(split_planes(frame, IN, W, H), dstate, step, reset=reset))
        step += 1
        if len(tickets) == 2:
            got.append(pipe.collect(tickets.pop(0)))
    got.append(pipe.collect(tickets.pop(0)))
    for g, r in zip(got, ref, strict=True):
        flat = np.concatenate([p.reshape(-1) for p in g])
        assert flat.dtype == np.uint16 and int(np.abs(flat.astype(int) - r.astype(int)).max()) <= 1
    assert fake_cuda.STATS["unpinned_copies"] == 0 and fake_cuda.STATS["default_stream_work"] == 0
    with pytest.raises(RuntimeError, match="uncollected"):
        for _ in range(3):
            pipe.submit(split_planes(frames[0], IN, W, H), dstate, 0, reset=True)


def test_gpu_bench_script_runs_on_the_fake_device(tmp_path, random_model, standin, fake_gpu,
                                                  fake_device, monkeypatch) -> None:
    """scripts/gpu_bench.py's measuring code, on the stand-ins (its numbers mean nothing here)."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "scripts" / "gpu_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    build_engines(str(random_model), BuildOptions(sizes=((W, H),), precision="fp16"),
                  tmp_path / "e", echo=lambda m: None)

    def fake_open(backend, model, size, fp16):
        return open_tensorrt_engine(resolve_model(str(random_model)),
                                    read_onnx_descriptor(random_model), size, device=fake_device,
                                    options=BuildOptions(sizes=(size,), precision="fp16"),
                                    dirs=[tmp_path / "e"])

    monkeypatch.setattr(bench, "open_engine", fake_open)
    row = bench.bench_case("tensorrt", "random-x2", (W, H), True, frames=4, warmup=2)
    assert row["out"] == f"{2 * W}x{2 * H}" and row["fps"] > 0 and row["compute_ms"] > 0
    assert row["convert_ms"] > 0 and row["infer_ms"] > 0 and 0 < row["transfer_share"] < 1
    assert row["bytes_in"] == W * H * 3 // 2 * 2  # 10-bit 4:2:0: 1.5 samples of 2 bytes
    assert "| tensorrt | random-x2 | fp16 |" in bench.markdown({"gpu": "x", "date": "d", "rows": [row]})
