"""The TensorRT runtime backend, driven through the stand-in ``tensorrt`` and the fake CUDA
device: outputs equal ONNX Runtime's, the state stays on the device in two swapped buffers,
CUDA graphs are captured per parity and replayed, and the harness itself catches a wrong
binding, an aliased state buffer or a missing swap."""

# ruff: noqa: F811  (pytest fixtures imported from _trt_fixtures are parameters here)
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import synth
from _trt_fixtures import GPU, fake_device, fake_gpu, recurrent_feeds, standin, standin_trt11  # noqa: F401

from plugin_build.trt_build import build_engines
from vsvsr.errors import ClipFormatError, ModelFileError, NonFiniteError
from vsvsr.models.registry import resolve_model
from vsvsr.recurrence.stepper import RecurrentStepper
from vsvsr.runtime import device_engine
from vsvsr.runtime.engine_key import BuildOptions
from vsvsr.runtime.engine_manifest import EngineMismatchError, EngineNotFoundError
from vsvsr.runtime.ort_backend import OrtEngine, read_onnx_descriptor
from vsvsr.runtime.tensorrt_backend import deserialize, open_tensorrt_engine

W, H = 32, 24


def build(model: Path, out: Path, *, precision: str = "fp32", size=(W, H)) -> Path:
    build_engines(str(model), BuildOptions(sizes=(size,), precision=precision), out,
                  echo=lambda m: None)
    return out


def open_trt(model: Path, engines: Path, device, *, precision: str = "fp32", size=(W, H),
             **kw):
    files = resolve_model(str(model))
    return open_tensorrt_engine(files, read_onnx_descriptor(model), size, device=device,
                                options=BuildOptions(sizes=(size,), precision=precision),
                                dirs=[engines], **kw)


def run_sequence(stepper: RecurrentStepper, frames: list[np.ndarray]) -> list[np.ndarray]:
    """The filter's recurrence: reset at frame 0, previous frame = current frame there."""
    state = stepper.zero_state(H, W)
    prev, outs = frames[0], []
    for i, lr in enumerate(frames):
        sr, state = stepper.step(lr, prev, state, i)
        outs.append(sr.copy())
        prev = lr
    return outs


@pytest.fixture
def frames() -> list[np.ndarray]:
    return [f[None] for f in synth.make_frames(7, H, W, cuts=(4,))]


@pytest.fixture
def engines(tmp_path, random_model, standin, fake_gpu) -> Path:
    return build(random_model, tmp_path / "engines")


def test_run_matches_onnx_runtime(random_model, engines, fake_device) -> None:
    trt_engine = open_trt(random_model, engines, fake_device)
    ort_engine = OrtEngine(random_model, threads=1)
    feeds = recurrent_feeds(np.random.default_rng(0), trt_engine.descriptor.state_channels, H, W, 3)
    got, ref = trt_engine.run(feeds), ort_engine.run(feeds)
    assert set(got) == {"sr", "state_out"}
    for name in ref:
        assert got[name].shape == ref[name].shape
        np.testing.assert_allclose(got[name], ref[name], atol=1e-5)
    assert [s.name for s in trt_engine.inputs] == ["lr", "lr_prev", "state", "step"]
    trt_engine.close()


def test_state_stays_on_device_ping_pong_and_graphs_replay(random_model, engines, fake_device,
                                                           frames) -> None:
    import fake_cuda

    engine = open_trt(random_model, engines, fake_device)
    got = run_sequence(RecurrentStepper(engine), frames)
    ref = run_sequence(RecurrentStepper(OrtEngine(random_model, threads=1)), frames)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, atol=1e-5)
    # One context per state parity: bound once, one plain run, one capture; replays after.
    assert engine.stats == {"plain": 2, "captured": 2, "replayed": len(frames) - 2,
                            "contexts": 3}
    assert fake_cuda.STATS["stale_graph_replays"] == 0
    assert fake_cuda.STATS["default_stream_work"] == 0
    assert fake_cuda.STATS["unpinned_copies"] == 0
    # The state never left the device: only 'sr' was downloaded per step, and np.asarray of
    # the state (what saved states use) is the reference state.
    state = RecurrentStepper(engine).zero_state(H, W)
    sr, state = RecurrentStepper(engine).step(frames[0], frames[0], state, 0)
    ref_state = OrtEngine(random_model, threads=1).run({
        "lr": frames[0], "lr_prev": frames[0], "state": np.zeros_like(np.asarray(state)),
        "step": np.zeros((1, 1, 1, 1), np.float32)})["state_out"]
    np.testing.assert_allclose(np.asarray(state), ref_state, atol=1e-5)


def test_saved_state_is_uploaded_and_continues_exactly(random_model, engines, fake_device,
                                                       frames) -> None:
    engine = open_trt(random_model, engines, fake_device)
    stepper = RecurrentStepper(engine)
    ort = RecurrentStepper(OrtEngine(random_model, threads=1))
    host_state = np.random.default_rng(3).uniform(-1, 1, np.asarray(stepper.zero_state(H, W)).shape)
    host_state = host_state.astype(np.float32)
    a, _ = stepper.step(frames[1], frames[0], host_state, 5)
    b, _ = ort.step(frames[1], frames[0], host_state, 5)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_graph_capture_failure_falls_back_to_plain_enqueue(random_model, engines, frames) -> None:
    import fake_cuda

    engine = open_trt(random_model, engines, fake_cuda.FakeDevice(capture_works=False))
    got = run_sequence(RecurrentStepper(engine), frames)
    ref = run_sequence(RecurrentStepper(OrtEngine(random_model, threads=1)), frames)
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(ref), atol=1e-5)
    assert engine.stats["captured"] == 0 and engine.stats["plain"] == len(frames)


# -- the harness catches the mistakes it is there for -----------------------------------------
class _AliasedState(device_engine.DeviceEngine):
    """Binds the same buffer as state input and state_out (what TensorRT warns against)."""

    def _execute(self, pair, parity):
        a = self._pairs[pair][parity]
        self._bind_io(self.executor, pair, parity)
        self.executor.bind("state", a)
        self.executor.bind("state_out", a)
        self.executor.enqueue(self.stream)


class _NoSwap(device_engine.DeviceEngine):
    """Runs the step but forgets to swap the halves: the next step reads the old state."""

    def step_device(self, feeds, state):
        sr = super().step_device(feeds, state)
        state.parity ^= 1
        return sr


class _SwappedInputs(device_engine.DeviceEngine):
    """Binds lr and lr_prev the wrong way round."""

    def _bind_io(self, ctx, pair, parity):
        super()._bind_io(ctx, pair, parity)
        ctx.bind("lr", self._buf["lr_prev"])
        ctx.bind("lr_prev", self._buf["lr"])


@pytest.mark.parametrize("broken", [_AliasedState, _NoSwap, _SwappedInputs])
def test_harness_fails_a_broken_backend(random_model, engines, fake_device, frames, monkeypatch,
                                        broken) -> None:
    import vsvsr.runtime.tensorrt_backend as backend

    monkeypatch.setattr(backend, "DeviceEngine", broken)
    engine = open_trt(random_model, engines, fake_device)
    ref = run_sequence(RecurrentStepper(OrtEngine(random_model, threads=1)), frames)
    try:
        got = run_sequence(RecurrentStepper(engine), frames)
    except NonFiniteError:
        return  # the aliased state: undefined in TensorRT, NaN in the stand-in
    assert max(float(np.abs(g - r).max()) for g, r in zip(got, ref, strict=True)) > 1e-3


# -- precision ------------------------------------------------------------------------------------
def test_fp16_engine_has_fp16_io_and_stays_close(tmp_path, random_model, standin, fake_gpu,
                                                 fake_device, frames) -> None:
    engines = build(random_model, tmp_path / "e16", precision="fp16")
    engine = open_trt(random_model, engines, fake_device, precision="fp16")
    assert engine.tensor("lr").dtype == np.float16 and engine.tensor("state").dtype == np.float16
    assert engine.tensor("step").dtype == np.float32
    got = run_sequence(RecurrentStepper(engine), frames)
    ref = run_sequence(RecurrentStepper(OrtEngine(random_model, threads=1)), frames)
    assert max(float(np.abs(g - r).max()) for g, r in zip(got, ref, strict=True)) < 2e-2


def test_trt11_strongly_typed_engine_runs(tmp_path, random_flow_model, standin_trt11, fake_gpu,
                                          frames) -> None:
    import fake_cuda

    engines = build(random_flow_model, tmp_path / "e11", precision="fp16")
    engine = open_trt(random_flow_model, engines, fake_cuda.FakeDevice(), precision="fp16")
    got = run_sequence(RecurrentStepper(engine), frames)
    ref = run_sequence(RecurrentStepper(OrtEngine(random_flow_model, threads=1)), frames)
    assert max(float(np.abs(g - r).max()) for g, r in zip(got, ref, strict=True)) < 3e-2


# -- finding, refusing, building on first use -------------------------------------------------------
def test_missing_engine_says_how_to_build_it(tmp_path, random_model, standin, fake_gpu,
                                             fake_device, capsys) -> None:
    with pytest.raises(EngineNotFoundError, match=r"vsvsr build --model random-x2 --size 32x24"):
        open_trt(random_model, tmp_path / "none", fake_device)
    engine = open_trt(random_model, tmp_path / "auto", fake_device, build_missing=True)
    assert "building the TensorRT engine for random-x2 at 32x24" in capsys.readouterr().err
    assert engine.run(recurrent_feeds(np.random.default_rng(1),
                                      engine.descriptor.state_channels, H, W))["sr"].shape == (1, 3, 48, 64)


def test_engine_of_another_tensorrt_is_refused(random_model, engines, standin, fake_device,
                                               monkeypatch) -> None:
    from vsvsr.runtime.engine_manifest import EngineManifest

    (manifest,) = engines.glob("*.json")
    man = EngineManifest.read(manifest)
    monkeypatch.setattr(standin, "__version__", "10.9.0.1")
    with pytest.raises(EngineMismatchError, match="TensorRT version: engine 10.8.0.43, wanted 10.9.0.1"):
        open_trt(random_model, engines, fake_device, engine_path=engines / man.engine_file)
    with pytest.raises(EngineMismatchError, match="cannot load .*not compatible with this version"):
        deserialize(standin, engines / man.engine_file, man.key)


def test_frame_of_another_size_is_refused(random_model, engines, fake_device) -> None:
    engine = open_trt(random_model, engines, fake_device)
    with pytest.raises(ClipFormatError, match="built for 32x24, not 40x24"):
        engine.new_state(24, 40)


# -- stateless models on several streams --------------------------------------------------------
def _stateless_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from vsvsr.models.descriptor import ONNX_METADATA_KEY, ModelDescriptor

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.2, (12, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["lr", "w"], ["f"], pads=[1, 1, 1, 1]),
             helper.make_node("DepthToSpace", ["f"], ["sr"], blocksize=2)]
    graph = helper.make_graph(
        nodes, "still", [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, [1, 3, "sh", "sw"])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    entry = model.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = ModelDescriptor(name="still-x2", arch="overfit", scale=2, recurrent=False).to_json()
    onnx.save(model, str(path))
    return path


def test_stateless_model_runs_on_several_streams(tmp_path, random_model, standin, fake_gpu,
                                                 fake_device) -> None:
    model = _stateless_model(tmp_path / "still-x2.onnx")
    engines = build(model, tmp_path / "e")
    pool = open_trt(model, engines, fake_device, streams=3)
    ref = OrtEngine(model, threads=1)
    rng = np.random.default_rng(0)
    inputs = [rng.random((1, 3, H, W), dtype=np.float32) for _ in range(12)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = pool.run({"lr": inputs[i]})["sr"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, x in enumerate(inputs):
        np.testing.assert_allclose(results[i], ref.run({"lr": x})["sr"], atol=1e-5)
    assert len({e.stream.handle for e in pool._all}) == 3
    with pytest.raises(ModelFileError, match="recurrent"):
        open_trt(random_model, engines, fake_device, streams=2)


# -- the filter on the TensorRT backend ------------------------------------------------------------
@pytest.fixture
def trt_available(tmp_path, random_model, standin, fake_gpu, fake_device, monkeypatch):
    """backend='tensorrt' usable by the filter: stand-in, fake GPU and device, an fp32 engine."""
    from vsvsr.runtime import select, tensorrt_backend

    engines = build(random_model, tmp_path / "filter-engines")
    monkeypatch.setenv("VSVSR_ENGINE_DIR", str(engines))
    monkeypatch.setenv("VSVSR_TRT_PRECISION", "fp32")
    monkeypatch.setattr(tensorrt_backend, "default_device", lambda: fake_device)
    monkeypatch.setattr(tensorrt_backend, "engine_dirs", lambda: [engines])
    monkeypatch.setattr(select, "_tensorrt_status",
                        lambda: select.BackendStatus("tensorrt", True, "stand-in"))
    select.backend_status.cache_clear()
    yield engines
    select.backend_status.cache_clear()


def test_filter_on_tensorrt_equals_ort_in_any_order(random_model, trt_available, tmp_path) -> None:
    import vsvsr

    clip = synth.array_clip(synth.make_frames(6, H, W, cuts=(3,)))
    trt = vsvsr.recurrent(clip, str(random_model), "tensorrt", output_format="RGBS",
                          state_dir=tmp_path / "states")
    ort = vsvsr.recurrent(clip, str(random_model), "ort", output_format="RGBS")
    for n in (5, 2, 0, 4, 1, 3):  # out of order: new cursors, each with its device state
        np.testing.assert_allclose(synth.planes_of(trt.get_frame(n)),
                                   synth.planes_of(ort.get_frame(n)), atol=1e-5)
    auto = vsvsr.recurrent(clip, str(random_model), "auto", output_format="RGBS")
    np.testing.assert_allclose(synth.planes_of(auto.get_frame(2)),
                               synth.planes_of(ort.get_frame(2)), atol=1e-5)


def test_auto_falls_back_when_no_engine_fits(random_model, trt_available, monkeypatch,
                                             caplog) -> None:
    from vsvsr.runtime.select import open_engine

    engine = open_engine(str(random_model), "auto", size=(40, 24))  # no engine for this size
    assert engine.backend in ("openvino", "ort-cpu")  # the CPU's best
    assert "no TensorRT engine used" in caplog.text and "--size 40x24" in caplog.text
    with pytest.raises(EngineNotFoundError):
        open_engine(str(random_model), "tensorrt", size=(40, 24))
