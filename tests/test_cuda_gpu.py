"""GPU checks (``-m gpu``, run by scripts/gpu_check.sh on a CUDA machine; skipped elsewhere).

- the CUDA colour kernels against the NumPy reference;
- CuPy device basics: pinned async round trips, a captured and replayed graph;
- the PyTorch CUDA backend (fp32 and fp16, CUDA graphs) against ONNX Runtime on real frames
  (camera motion over the bundled scikit-image photographs), and fp16 against fp32;
- the frame pipeline on the GPU against the reference chain;
- the filter end to end on ``torch-cuda`` against ``ort`` (when VapourSynth is installed).

Set ``VSVSR_GPU_REPORT=file.json`` to record the measured errors.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from vsvsr.runtime.color_kernels import FrameFormat, from_model_ref, split_planes, to_model_ref

pytestmark = pytest.mark.gpu


def _cupy():
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception as exc:  # no driver
        pytest.skip(f"no CUDA device ({exc})")
    return cp


def _record(name: str, values: dict) -> None:
    path = os.environ.get("VSVSR_GPU_REPORT")
    if not path:
        return
    data = json.load(open(path)) if os.path.exists(path) else {}
    data[name] = values
    with open(path, "w") as fh:
        json.dump(data, fh, indent=2)


def real_frames(n: int, w: int, h: int) -> list[np.ndarray]:
    """(1, 3, h, w) float32 frames of camera motion over a real photograph."""
    from vsvsr.sample.clip import SampleSpec, render_hr_frames

    spec = SampleSpec(width=w, height=h, frames_per_scene=n, photos=("astronaut",))
    return [np.ascontiguousarray(f.transpose(2, 0, 1)[None], np.float32) / 255
            for f in render_hr_frames(spec)]


# -- kernels and device -----------------------------------------------------------------------------
FORMATS = [
    FrameFormat(yuv=True, bits=8, ssw=1, ssh=1, matrix=1),
    FrameFormat(yuv=True, bits=10, ssw=1, ssh=1, matrix=9, chroma_location=2),
    FrameFormat(yuv=True, bits=10, ssw=1, ssh=0, matrix=1, full_range=True, chroma_location=1),
    FrameFormat(yuv=True, bits=16, matrix=6),
    FrameFormat(yuv=False, bits=8),
    FrameFormat(yuv=False, bits=16, is_float=True),
    FrameFormat(yuv=False, bits=32, is_float=True),
]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{'yuv' if f.yuv else 'rgb'}{f.bits}-{f.ssw}{f.ssh}")
@pytest.mark.parametrize("model_dtype", [np.float32, np.float16])
def test_cuda_kernels_match_the_reference(fmt: FrameFormat, model_dtype) -> None:
    cp = _cupy()
    from vsvsr.runtime.cuda_device import CupyDevice

    dev = CupyDevice()
    kernels, stream = dev.kernels(), dev.new_stream()
    w, h = 1920 // 4 + 3, 1080 // 4 + 1  # odd sizes: edges and partial blocks
    rng = np.random.default_rng(0)
    if fmt.is_float:
        frame = rng.random(fmt.frame_elements(w, h)).astype(fmt.dtype)
    else:
        frame = rng.integers(0, 1 << fmt.bits, fmt.frame_elements(w, h)).astype(fmt.dtype)
    src = cp.asarray(frame)
    model = cp.empty((1, 3, h, w), model_dtype)
    kernels.to_model(src, model, fmt, w, h, stream)
    out = cp.empty(fmt.frame_elements(w, h), fmt.dtype)
    kernels.from_model(model, out, fmt, w, h, stream)
    stream.synchronize()
    ref_model = to_model_ref(frame, fmt, w, h, model_dtype)
    tol = 2e-3 if model_dtype == np.float16 else 2e-6
    np.testing.assert_allclose(cp.asnumpy(model).astype(np.float32),
                               ref_model.astype(np.float32), atol=tol)
    ref_out = from_model_ref(cp.asnumpy(model), fmt)
    diff = np.abs(cp.asnumpy(out).astype(np.float64) - ref_out.astype(np.float64))
    assert diff.max() <= (1e-3 if fmt.is_float else 1)  # one code value: float rounding at .5


def test_cupy_device_copies_and_graphs() -> None:
    _cupy()
    from vsvsr.runtime.cuda_device import CupyDevice

    dev = CupyDevice()
    s = dev.new_stream()
    assert dev.stream_handle(s) != 0
    host = dev.pinned_empty((4, 1000), np.float32)
    host[...] = np.arange(4000, dtype=np.float32).reshape(4, 1000)
    a, b = dev.empty((4, 1000), np.float32), dev.empty((4, 1000), np.float32)
    dev.upload(a, host, s)
    graph = dev.capture(s, lambda: dev.copy(b, a, s))
    assert graph is not None
    dev.launch(graph, s)
    back = dev.pinned_empty((4, 1000), np.float32)
    dev.download(back, b, s)
    dev.synchronize(s)
    np.testing.assert_array_equal(back, host)


# -- PyTorch CUDA backend ---------------------------------------------------------------------------
def _sequence(step_fn, zero, frames):
    state, prev, out = zero, frames[0], []
    for i, lr in enumerate(frames):
        sr, state = step_fn(lr, prev, state, i)
        out.append(np.array(sr, np.float32))
        prev = lr
    return out


@pytest.mark.parametrize("model", ["rvsr-x2", "rvsr-x4"])
def test_torch_cuda_matches_ort_and_fp16_stays_close(model: str) -> None:
    _cupy()
    pytest.importorskip("torch")
    from vsvsr.models.registry import resolve_model
    from vsvsr.recurrence.stepper import RecurrentStepper
    from vsvsr.runtime.ort_backend import OrtEngine
    from vsvsr.runtime.torch_cuda_backend import open_torch_cuda_engine

    files = resolve_model(model)
    w, h = 320, 180
    frames = real_frames(8, w, h)
    ref_step = RecurrentStepper(OrtEngine(files.onnx))
    ref = _sequence(ref_step.step, ref_step.zero_state(h, w), frames)
    errors = {}
    for fp16 in (False, True):
        engine = open_torch_cuda_engine(files.pth, (w, h), fp16=fp16)
        stepper = RecurrentStepper(engine)
        got = _sequence(stepper.step, stepper.zero_state(h, w), frames)
        err = [float(np.abs(g - r).max()) for g, r in zip(got, ref, strict=True)]
        mean = float(np.mean([np.abs(g - r).mean() for g, r in zip(got, ref, strict=True)]))
        errors["fp16" if fp16 else "fp32"] = {"max_abs": max(err), "mean_abs": mean,
                                              "graphs": dict(engine.stats)}
        assert engine.stats["captured"] == 2 and engine.stats["replayed"] == len(frames) - 2
        assert max(err) < (3e-2 if fp16 else 5e-3), err  # fp32 convs may use TF32
        engine.close()
    _record(f"torch_cuda_vs_ort_{model}", errors)


def test_frame_pipeline_on_the_gpu_matches_the_reference_chain() -> None:
    _cupy()
    pytest.importorskip("torch")
    from vsvsr.models.registry import resolve_model
    from vsvsr.runtime.cuda_buffers import FramePipeline
    from vsvsr.runtime.ort_backend import OrtEngine
    from vsvsr.runtime.torch_cuda_backend import open_torch_cuda_engine

    fin = FrameFormat(yuv=True, bits=10, ssw=1, ssh=1, matrix=1)
    fout = FrameFormat(yuv=True, bits=10, ssw=1, ssh=1, matrix=1)
    files = resolve_model("rvsr-x2")
    w, h = 320, 180
    frames = [from_model_ref(f, fin) for f in real_frames(6, w, h)]
    ort = OrtEngine(files.onnx)
    c = ort.descriptor.state_channels
    ref, state, prev = [], np.zeros((1, c, h, w), np.float32), None
    for i, frame in enumerate(frames):
        lr = to_model_ref(frame, fin, w, h)
        prev = lr if prev is None else prev
        out = ort.run({"lr": lr, "lr_prev": prev, "state": state,
                       "step": np.full((1, 1, 1, 1), i, np.float32)})
        state, prev = out["state_out"], lr
        ref.append(from_model_ref(out["sr"], fout))
    engine = open_torch_cuda_engine(files.pth, (w, h), fp16=False)
    pipe = FramePipeline(engine, fin, fout)
    dstate = engine.new_state(h, w)
    tickets, got = [], []
    for i, frame in enumerate(frames):
        tickets.append(pipe.submit(split_planes(frame, fin, w, h), dstate, i, reset=i == 0))
        if len(tickets) == 2:
            got.append(pipe.collect(tickets.pop(0)))
    got.append(pipe.collect(tickets.pop(0)))
    worst = max(int(np.abs(np.concatenate([p.reshape(-1) for p in g]).astype(int)
                           - r.astype(int)).max()) for g, r in zip(got, ref, strict=True))
    _record("frame_pipeline_vs_reference_10bit_codes", {"max_abs": worst})
    assert worst <= 8  # TF32 convolutions: a few 10-bit code values at most


def test_filter_on_torch_cuda_matches_ort() -> None:
    _cupy()
    pytest.importorskip("torch")
    vs = pytest.importorskip("vapoursynth")
    import vsvsr
    from vsvsr.sample.clip import array_clip

    w, h = 320, 180
    frames = [(f[0].transpose(1, 2, 0) * 255).round().astype(np.uint8) for f in real_frames(6, w, h)]
    clip = array_clip(frames)
    gpu = vsvsr.recurrent(clip, "rvsr-x2", "torch-cuda", output_format="RGBS")
    cpu = vsvsr.recurrent(clip, "rvsr-x2", "ort", output_format="RGBS")
    worst = 0.0
    for n in (5, 0, 3, 4, 1, 2):
        a = np.stack([np.asarray(gpu.get_frame(n)[p]) for p in range(3)])
        b = np.stack([np.asarray(cpu.get_frame(n)[p]) for p in range(3)])
        worst = max(worst, float(np.abs(a - b).max()))
    _record("filter_torch_cuda_vs_ort_rgbs", {"max_abs": worst, "vapoursynth": vs.__version__
                                              if hasattr(vs, "__version__") else "?"})
    assert worst < 3e-2  # fp16 by default


def test_filter_gpu_frame_path_on_torch_cuda_matches_the_reference_chain() -> None:
    """The filter's GPU frame path (native YUV420P10 in and out) on a real GPU, requested out
    of order, against the colour reference around an ONNX Runtime recurrence."""
    _cupy()
    pytest.importorskip("torch")
    vs = pytest.importorskip("vapoursynth")
    import vsvsr
    from vsvsr.models.registry import resolve_model
    from vsvsr.runtime.ort_backend import OrtEngine

    fmt = FrameFormat(yuv=True, bits=10, ssw=1, ssh=1, matrix=1)
    w, h = 320, 180
    frames = [from_model_ref(f, fmt) for f in real_frames(6, w, h)]
    blank = vs.core.std.BlankClip(width=w, height=h, format=vs.YUV420P10, length=6, keep=True)

    def fill(n, f):
        out = f.copy()
        for p, plane in enumerate(split_planes(frames[n], fmt, w, h)):
            np.asarray(out[p])[...] = plane
        out.props["_Matrix"] = 1
        return out

    clip = blank.std.ModifyFrame(blank, fill)
    ort = OrtEngine(resolve_model("rvsr-x2").onnx)
    c = ort.descriptor.state_channels
    ref, state, prev = [], np.zeros((1, c, h, w), np.float32), None
    for i, frame in enumerate(frames):
        lr = to_model_ref(frame, fmt, w, h)
        prev = lr if prev is None else prev
        out = ort.run({"lr": lr, "lr_prev": prev, "state": state,
                       "step": np.full((1, 1, 1, 1), i, np.float32)})
        state, prev = out["state_out"], lr
        ref.append(from_model_ref(out["sr"], fmt).astype(int))
    os.environ["VSVSR_TORCH_FP32"] = "1"
    try:
        sr = vsvsr.recurrent(clip, "rvsr-x2", "torch-cuda")
        worst = 0
        for n in (5, 0, 3, 4, 1, 2):
            f = sr.get_frame(n)
            got = np.concatenate([np.asarray(f[p]).reshape(-1) for p in range(3)]).astype(int)
            worst = max(worst, int(np.abs(got - ref[n]).max()))
    finally:
        del os.environ["VSVSR_TORCH_FP32"]
    _record("filter_gpu_frame_path_vs_reference_10bit_codes", {"max_abs": worst})
    assert worst <= 8  # TF32 convolutions: a few 10-bit code values at most
