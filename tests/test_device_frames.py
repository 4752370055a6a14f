"""The filter's GPU frame path (issue 16, part 1), through the TensorRT stand-in and the NumPy
device: the clip's own planes are uploaded once, converted by the device colour kernels,
run with the state on the device, and downloaded once in the output format.

- equal to the NumPy reference chain (colour reference -> ONNX Runtime recurrence -> colour
  reference) to one code value, and to the CPU-converted path (``backend="ort"``, resize)
  within the colour kernels' stated bound, for YUV420P8, YUV420P10, YUV444P16 and RGB24 in
  and out, under any request order (out of order, parallel);
- the same through ``ort-cuda``'s device executor (ONNX Runtime on bound pointers);
- two frames in flight (read-ahead), and an upload buffer is never rewritten while its copy
  is in flight: the fake device runs queued work lazily in event order and checks it.
"""

# ruff: noqa: F811  (pytest fixtures imported from _trt_fixtures are parameters here)
from __future__ import annotations

import numpy as np
import pytest
import synth
import vapoursynth as vs
from _trt_fixtures import fake_device, fake_gpu, standin  # noqa: F401

from plugin_build.trt_build import build_engines
from vsvsr.runtime.color_kernels import FrameFormat, from_model_ref, split_planes, to_model_ref
from vsvsr.runtime.engine_key import BuildOptions
from vsvsr.runtime.ort_backend import OrtEngine

W, H = 32, 24
N = 6
CUTS = (3,)
#: (VapourSynth format, device FrameFormat, largest difference from the CPU-converted path in
#: code values). 4:4:4 and RGB: the kernels agree with resize to rounding (1 code, plus float
#: noise of the two backends); 4:2:0: bilinear/triangle chroma against resize's bicubic, which
#: the kernels state as within 0.01 of full scale on smooth content (plus a code of rounding).
FORMATS = {
    "YUV420P8": (vs.YUV420P8, FrameFormat(yuv=True, bits=8, ssw=1, ssh=1, matrix=1), 4),
    "YUV420P10": (vs.YUV420P10, FrameFormat(yuv=True, bits=10, ssw=1, ssh=1, matrix=1), 12),
    "YUV444P16": (vs.YUV444P16, FrameFormat(yuv=True, bits=16, matrix=1), 2),
    "RGB24": (vs.RGB24, FrameFormat(yuv=False, bits=8), 1),
}


@pytest.fixture
def trt_backend(tmp_path, random_model, standin, fake_gpu, fake_device, monkeypatch):
    """backend='tensorrt' for the filter: stand-in, fake GPU and device, an fp32 engine."""
    from vsvsr.runtime import select, tensorrt_backend

    engines = tmp_path / "engines"
    build_engines(str(random_model), BuildOptions(sizes=((W, H),), precision="fp32"), engines,
                  echo=lambda m: None)
    monkeypatch.setenv("VSVSR_TRT_PRECISION", "fp32")
    monkeypatch.setattr(tensorrt_backend, "default_device", lambda: fake_device)
    monkeypatch.setattr(tensorrt_backend, "engine_dirs", lambda: [engines])
    monkeypatch.setattr(select, "_tensorrt_status",
                        lambda: select.BackendStatus("tensorrt", True, "stand-in"))
    select.backend_status.cache_clear()
    yield fake_device
    select.backend_status.cache_clear()


def _planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.concatenate([np.array(frame[p]).reshape(-1) for p in range(frame.format.num_planes)])


def _reference(model, clip: vs.VideoNode, fmt: FrameFormat) -> list[np.ndarray]:
    """The colour reference around a sequential ONNX Runtime recurrence (resets at cuts)."""
    ort = OrtEngine(model, threads=1)
    c = ort.descriptor.state_channels
    out, state, prev, step = [], None, None, 0
    for n in range(clip.num_frames):
        frame = clip.get_frame(n)
        lr = to_model_ref(_planes(frame), fmt, W, H)
        if n == 0 or int(frame.props.get("_SceneChangePrev", 0)):
            state, prev, step = np.zeros((1, c, H, W), np.float32), lr, 0
        res = ort.run({"lr": lr, "lr_prev": prev, "state": state,
                       "step": np.full((1, 1, 1, 1), step, np.float32)})
        state, prev, step = res["state_out"], lr, step + 1
        out.append(from_model_ref(res["sr"], fmt).astype(np.int64))
    return out


def _smooth_frames() -> list[np.ndarray]:
    """Smooth moving colour gradients (the content the kernels' 4:2:0 bound is stated for,
    as in tests/test_cuda_color.py), a new pattern after the cut."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    out = []
    for n in range(N):
        k, t = (1, n - CUTS[0]) if n >= CUTS[0] else (0, n)
        a = 0.7 * t + 3.0 * k
        out.append(np.stack([0.5 + 0.3 * np.sin((xx + a) / (7 + 2 * k)),
                             0.5 + 0.3 * np.cos((yy + 0.5 * a) / 5),
                             0.4 + 0.2 * np.sin((xx + yy + a) / 9)]).astype(np.float32))
    return out


def _clip(vs_format: int, *, smooth: bool = False) -> vs.VideoNode:
    frames = _smooth_frames() if smooth else synth.make_frames(N, H, W, cuts=CUTS)
    return synth.array_clip(frames, fmt=vs_format, scene_props=CUTS)


def _inner(planes: list[np.ndarray]) -> np.ndarray:
    """Every plane without its 4-sample border (where resize and the kernels clamp apart)."""
    return np.concatenate([p[4:-4, 4:-4].reshape(-1) for p in planes])


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_gpu_frame_path_equals_reference_and_cpu_path(name, random_model, trt_backend) -> None:
    import vsvsr

    vs_format, fmt, bound = FORMATS[name]
    for smooth in (False, True):
        clip = _clip(vs_format, smooth=smooth)
        gpu = vsvsr.recurrent(clip, str(random_model), "tensorrt")
        cpu = vsvsr.recurrent(clip, str(random_model), "ort")
        assert gpu.format.id == clip.format.id == cpu.format.id and gpu.width == 2 * W
        ref = _reference(random_model, clip, fmt)
        worst_ref = worst_cpu = 0
        for n in (5, 2, 0, 4, 1, 3, 5):  # out of order: cursor switches, read-ahead, cache
            frame = gpu.get_frame(n)
            got = _planes(frame).astype(np.int64)
            worst_ref = max(worst_ref, int(np.abs(got - ref[n]).max()))
            if smooth:
                a = _inner([np.array(frame[p]) for p in range(3)]).astype(np.int64)
                b = _inner([np.array(cpu.get_frame(n)[p]) for p in range(3)]).astype(np.int64)
                worst_cpu = max(worst_cpu, int(np.abs(a - b).max()))
        assert worst_ref <= 1, worst_ref  # the device path is the reference chain, exactly
    assert worst_cpu <= bound, worst_cpu


def test_parallel_requests_and_two_frames_in_flight(random_model, trt_backend) -> None:
    import vsvsr

    vs_format, fmt, _ = FORMATS["YUV420P10"]
    clip = _clip(vs_format)
    ref = _reference(random_model, clip, fmt)
    gpu = vsvsr.recurrent(clip, str(random_model), "tensorrt")
    futures = [gpu.get_frame_async(n) for n in range(N)]  # vspipe-style, all at once
    for n, fut in enumerate(futures):
        assert int(np.abs(_planes(fut.result()).astype(np.int64) - ref[n]).max()) <= 1
    seq = vsvsr.recurrent(clip, str(random_model), "tensorrt")
    for n in range(N):
        seq.get_frame(n)
    from vsvsr.vs.recurrent_filter import _LIVE_RUNNERS

    runner = max(_LIVE_RUNNERS, key=lambda r: r.stats.readahead_hits)
    # sequential requests: frame n+1 was submitted before frame n was waited for (except
    # at the cut, a reset point, which is never read ahead)
    assert runner.stats.readahead_hits == N - 2
    assert runner.stepper.pipeline.stats["prev_uploads"] == 0  # each frame crossed once


def test_upload_buffer_is_not_rewritten_while_its_copy_is_in_flight(random_model, trt_backend,
                                                                    monkeypatch) -> None:
    """Cursor switches upload the previous frame through the same slot first: without the
    wait for that slot's upload event the host would overwrite the pinned buffer before the
    copy ran; the fake device's lazy streams catch it."""
    import fake_cuda

    import vsvsr
    from vsvsr.runtime.cuda_buffers import FramePipeline

    vs_format, fmt, _ = FORMATS["YUV420P8"]
    clip = synth.array_clip(synth.make_frames(N, H, W), fmt=vs_format)
    ref = _reference(random_model, clip, fmt)
    # 3: cursor A runs 0..3 (and reads 4 ahead); 0: evicted, so cursor B restarts at 0 (and
    # reads 1 ahead); 5: A continues from 4, whose frame is no longer on the device.
    order = (3, 0, 5)
    gpu = vsvsr.recurrent(clip, str(random_model), "tensorrt", cache_frames=1)
    for n in order:
        assert int(np.abs(_planes(gpu.get_frame(n)).astype(np.int64) - ref[n]).max()) <= 1
    from vsvsr.vs.recurrent_filter import _LIVE_RUNNERS

    assert max(r.stepper.pipeline.stats["prev_uploads"] for r in _LIVE_RUNNERS
               if hasattr(r.stepper, "pipeline")) >= 1
    original = FramePipeline._upload

    def no_wait(self, slot, planes, dst):  # the upload without waiting for the slot's event
        self.device.sync_event = lambda event: None
        try:
            original(self, slot, planes, dst)
        finally:
            del self.device.sync_event

    monkeypatch.setattr(FramePipeline, "_upload", no_wait)
    broken = vsvsr.recurrent(clip, str(random_model), "tensorrt", cache_frames=1)
    with pytest.raises(vs.Error, match="rewritten while its upload was in flight"):
        for n in order:
            broken.get_frame(n)
    assert fake_cuda.STATS["unpinned_copies"] == 0


def test_rgbs_output_from_yuv_and_the_cpu_escape_hatch(random_model, trt_backend,
                                                       monkeypatch) -> None:
    import vsvsr

    clip = _clip(vs.YUV444P16)
    gpu = vsvsr.recurrent(clip, str(random_model), "tensorrt", output_format="RGBS")
    cpu = vsvsr.recurrent(clip, str(random_model), "ort", output_format="RGBS")
    frame = gpu.get_frame(2)
    assert frame.format.id == vs.RGBS and int(frame.props["_Matrix"]) == 0
    np.testing.assert_allclose(synth.planes_of(frame), synth.planes_of(cpu.get_frame(2)),
                               atol=1e-4)
    monkeypatch.setenv("VSVSR_DEVICE_FRAMES", "0")
    from vsvsr.vs.recurrent_filter import _LIVE_RUNNERS

    before = set(map(id, _LIVE_RUNNERS))
    host = vsvsr.recurrent(clip, str(random_model), "tensorrt", output_format="RGBS")
    (runner,) = [r for r in _LIVE_RUNNERS if id(r) not in before]
    assert not getattr(runner.stepper, "pipelined", False)
    np.testing.assert_allclose(synth.planes_of(host.get_frame(2)), synth.planes_of(frame),
                               atol=1e-4)


def test_ort_cuda_device_executor_runs_the_frame_path(random_model, standin, fake_device,
                                                      monkeypatch) -> None:
    """``ort-cuda``'s executor (ONNX Runtime on bound device pointers), on the NumPy device:
    bound as host pointers to ONNX Runtime's CPU provider, the same code otherwise."""
    import vsvsr
    import vsvsr.vs.recurrent_filter as rf
    from vsvsr.runtime.ort_cuda_backend import open_ort_cuda_engine

    monkeypatch.setattr(rf, "open_engine",
                        lambda model, backend, threads=0, size=None, precision="auto":
                        open_ort_cuda_engine(model, size, device=fake_device, device_type="cpu",
                                             threads=1))
    vs_format, fmt, _ = FORMATS["YUV420P10"]
    clip = _clip(vs_format)
    ref = _reference(random_model, clip, fmt)
    gpu = vsvsr.recurrent(clip, str(random_model), "ort-cuda")
    for n in (4, 0, 5, 1, 2, 3):
        assert int(np.abs(_planes(gpu.get_frame(n)).astype(np.int64) - ref[n]).max()) <= 1


def test_saved_state_continues_exactly_on_the_frame_path(tmp_path, random_model,
                                                         trt_backend) -> None:
    import gc

    import vsvsr

    clip = synth.array_clip(synth.make_frames(N, H, W), fmt=vs.YUV420P8)
    ref = _reference(random_model, clip, FORMATS["YUV420P8"][1])
    first = vsvsr.recurrent(clip, str(random_model), "tensorrt", state_dir=tmp_path / "s")
    for n in range(3):
        first.get_frame(n)
    from vsvsr.vs.recurrent_filter import _save_all_states

    _save_all_states()
    del first
    gc.collect()
    assert list((tmp_path / "s").glob("state_*.vsvsrstate"))
    second = vsvsr.recurrent(clip, str(random_model), "tensorrt", state_dir=tmp_path / "s")
    got = _planes(second.get_frame(4)).astype(np.int64)
    assert int(np.abs(got - ref[4]).max()) <= 1


def test_gpu_bench_filter_measure_runs_on_the_stand_ins(random_model, trt_backend) -> None:
    """scripts/gpu_bench.py's filter end-to-end measure (numbers mean nothing here)."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "scripts" / "gpu_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fmt = bench.FMT
    src = [[p.copy() for p in split_planes(from_model_ref(f[None], fmt), fmt, W, H)]
           for f in synth.make_frames(3, H, W)]
    row = bench.filter_case("tensorrt", str(random_model), src, W, H, 5, engine_fps=100.0)
    assert row["filter_fps"] > 0 and row["filter_ratio"] == row["filter_fps"] / 100.0
