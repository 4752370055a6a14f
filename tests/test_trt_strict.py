"""The TensorRT path against what real TensorRT and CUDA do where the stand-ins used to be
lenient (issue 19): each test here fails on the code (or the stand-in) before the fix.

- CUDA graphs: one execution context per graph, each bound once and run plainly before its
  capture; the stand-in refuses a capture right after a rebinding and flags a graph replayed
  after its context was rebound (TensorRT's kernels read the context's device-side
  parameters when they run);
- USER_MANAGED contexts sharing one activation block;
- dynamic engines found for any size in their range; hardware-compatible engines on another
  GPU; no driver or GPU name in the key; old manifests refused with the rebuild command;
- build: ``set_shape`` raises on inconsistent shapes, an empty profile is -1 (a static
  network gets none), a mismatched timing cache is refused, 10.12+ builds strongly typed
  without deprecated calls, TensorRT 11's ``STRONGLY_TYPED`` is bit 0 and ignored and
  ``ITensor.dtype`` read-only;
- one logger whose errors are sliced per operation, VERBOSE dropped first thing;
- the fake device runs queued work lazily, so missing cross-stream ordering and a host buffer
  reused while its copy is in flight are caught; a failed capture's sticky error is cleared;
- the fp16 conversion of a ``ConstantOfShape`` without ``value``.
"""

# ruff: noqa: F811  (pytest fixtures imported from _trt_fixtures are parameters here)
from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import synth
from _trt_fixtures import (  # noqa: F401
    GPU,
    fake_device,
    fake_gpu,
    standin,
    standin_trt10_13,
    standin_trt11,
)

from plugin_build.trt_build import TrtBuildError, build_engines, build_plan, timing_cache_path
from vsvsr.errors import NonFiniteError
from vsvsr.models.registry import file_sha256, resolve_model
from vsvsr.recurrence.stepper import RecurrentStepper
from vsvsr.runtime import device_engine
from vsvsr.runtime.engine_key import BuildOptions, EngineKey
from vsvsr.runtime.engine_manifest import EngineNotFoundError, StaleManifestError, find_engine
from vsvsr.runtime.ort_backend import OrtEngine, read_onnx_descriptor
from vsvsr.runtime.tensorrt_backend import open_tensorrt_engine

W, H = 32, 24


def build(model: Path, out: Path, **opts) -> Path:
    opts.setdefault("sizes", ((W, H),))
    opts.setdefault("precision", "fp32")
    build_engines(str(model), BuildOptions(**opts), out, echo=lambda m: None)
    return out


def open_trt(model: Path, engines: Path, device, *, size=(W, H), precision="fp32", **kw):
    return open_tensorrt_engine(resolve_model(str(model)), read_onnx_descriptor(model), size,
                                device=device, dirs=[engines],
                                options=BuildOptions(sizes=(size,), precision=precision), **kw)


def run_sequence(engine, frames):
    stepper = RecurrentStepper(engine)
    h, w = frames[0].shape[2:]
    state, prev, outs = stepper.zero_state(h, w), frames[0], []
    for i, lr in enumerate(frames):
        sr, state = stepper.step(lr, prev, state, i)
        outs.append(sr.copy())
        prev = lr
    return outs


@pytest.fixture
def frames() -> list[np.ndarray]:
    return [f[None] for f in synth.make_frames(7, H, W)]


@pytest.fixture
def engines(tmp_path, random_model, standin, fake_gpu) -> Path:
    return build(random_model, tmp_path / "engines")


# -- 1. CUDA graphs: one context per graph ---------------------------------------------------------
class _OneContextGraphs(device_engine.DeviceEngine):
    """The old scheme: one context; warm after one plain run, then for each (pair, parity)
    rebind and capture at once (``plain_after_rebind``: with a plain run in between)."""

    plain_after_rebind = False

    def _execute(self, pair, parity):
        key = (pair, parity)
        graph = self._graphs.get(key) if self._graphs_ok else None
        if graph is not None:
            self.executor.launch(graph, self.stream)
            self.stats["replayed"] += 1
            return
        self._bind_io(self.executor, pair, parity)
        if not self._graphs_ok or not self._warm or self.plain_after_rebind:
            self.executor.enqueue(self.stream)
            self._warm = True
            self.stats["plain"] += 1
            if not self.plain_after_rebind or not self._graphs_ok:
                return
        graph = self.executor.capture(self.stream)
        if graph is None:
            self._graphs_ok = False
            self.executor.enqueue(self.stream)
            self.stats["plain"] += 1
            return
        self._graphs[key] = graph
        self.stats["captured"] += 1
        if not self.plain_after_rebind:
            self.executor.launch(graph, self.stream)


class _PlainAfterRebind(_OneContextGraphs):
    plain_after_rebind = True


def test_graphs_get_one_context_each_sharing_activation_memory(random_model, engines,
                                                               fake_device, frames) -> None:
    import fake_cuda

    engine = open_trt(random_model, engines, fake_device)
    got = run_sequence(engine, frames)
    ref = run_sequence(OrtEngine(random_model, threads=1), frames)
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(ref), atol=1e-5)
    assert engine.stats["captured"] == 2 and engine.stats["replayed"] == len(frames) - 2
    assert fake_cuda.STATS["stale_graph_replays"] == 0
    contexts = list(engine._contexts.values())
    assert len(contexts) == 2 and len({id(c.context) for c in contexts}) == 2
    # USER_MANAGED contexts, all on the base executor's one activation block
    assert {c.memory.ptr for c in contexts} == {engine.executor.memory.ptr}
    assert all(c.context.strategy.name == "USER_MANAGED" for c in contexts)


def test_the_old_one_context_scheme_is_caught(random_model, engines, fake_device, frames,
                                              monkeypatch) -> None:
    """Capturing right after a rebinding is refused (no graphs at all), and with a plain run
    after each rebinding the parity-0 graph replays on the parity-1 bindings: flagged, NaN."""
    import fake_cuda

    import vsvsr.runtime.tensorrt_backend as backend

    monkeypatch.setattr(backend, "DeviceEngine", _OneContextGraphs)
    engine = open_trt(random_model, engines, fake_device)
    run_sequence(engine, frames)
    assert engine.stats["captured"] == 0 and not engine._graphs_ok  # capture after a rebind
    monkeypatch.setattr(backend, "DeviceEngine", _PlainAfterRebind)
    engine = open_trt(random_model, engines, fake_device)
    with pytest.raises(NonFiniteError):
        run_sequence(engine, frames)
    assert fake_cuda.STATS["stale_graph_replays"] >= 1


def test_user_managed_context_needs_device_memory(random_model, engines, standin,
                                                  fake_device) -> None:
    from vsvsr.runtime.engine_manifest import EngineManifest
    from vsvsr.runtime.tensorrt_backend import deserialize

    (manifest,) = engines.glob("*.json")
    man = EngineManifest.read(manifest)
    engine, _, _ = deserialize(standin, engines / man.engine_file, man.key)
    ctx = engine.create_execution_context(standin.ExecutionContextAllocationStrategy.USER_MANAGED)
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(engine.get_tensor_profile_shape(name, 0)[1]) \
            if engine.get_tensor_mode(name) == standin.TensorIOMode.INPUT else None
        if shape is not None:
            ctx.set_input_shape(name, shape)
        arr = fake_device.empty(tuple(ctx.get_tensor_shape(name)), np.float32)
        ctx.set_tensor_address(name, fake_device.ptr(arr))
    assert not ctx.execute_async_v3(fake_device.stream_handle(fake_device.new_stream()))
    with pytest.raises(RuntimeError, match="smaller"):
        ctx.set_device_memory(fake_device.ptr(fake_device.empty((16,), np.uint8)), 16)


# -- 2. dynamic and hardware-compatible engines; the key -----------------------------------------
def test_dynamic_engine_serves_every_size_in_its_range(tmp_path, random_model, standin,
                                                       fake_gpu, fake_device) -> None:
    engines = build(random_model, tmp_path / "dyn", sizes=((W, H),), dynamic=True,
                    min_size=(16, 16), max_size=(64, 48))
    assert len(list(engines.glob("*.engine"))) == 1
    ort = OrtEngine(random_model, threads=1)
    for size in ((W, H), (48, 40), (16, 16)):
        engine = open_trt(random_model, engines, fake_device, size=size)
        seq = [f[None] for f in synth.make_frames(3, size[1], size[0])]
        got, ref = run_sequence(engine, seq), run_sequence(ort, seq)
        np.testing.assert_allclose(np.concatenate(got), np.concatenate(ref), atol=1e-5)
    explicit = next(engines.glob("*.engine"))
    assert open_trt(random_model, engines, fake_device, size=(48, 40), engine_path=explicit)
    with pytest.raises(EngineNotFoundError, match="input shapes: engine 16x16..64x48"):
        open_trt(random_model, engines, fake_device, size=(80, 48))


def test_hardware_compatible_engine_runs_on_another_gpu(tmp_path, random_model, standin,
                                                        fake_gpu, fake_device,
                                                        monkeypatch) -> None:
    import vsvsr.runtime.tensorrt_backend as backend

    engines = build(random_model, tmp_path / "hw", hw_compat="ampere-plus")
    (engine_file,) = engines.glob("*.engine")
    assert "_ampere-plus_" in engine_file.name
    built_on = json.loads(next(engines.glob("*.json")).read_text())["extra"]["built_on"]
    assert built_on == {"gpu": GPU.name, "compute_capability": "8.9", "driver": GPU.driver}
    hopper = dataclasses.replace(GPU, name="NVIDIA H200", compute_capability="9.0", driver="570.1")
    monkeypatch.setattr(backend, "query_gpu", lambda index=0: hopper)
    assert open_trt(random_model, engines, fake_device).run  # found and loaded
    turing = dataclasses.replace(GPU, compute_capability="7.5")
    monkeypatch.setattr(backend, "query_gpu", lambda index=0: turing)
    with pytest.raises(EngineNotFoundError, match="GPU target: engine ampere-plus, wanted sm75"):
        open_trt(random_model, engines, fake_device)
    # a plain engine survives a driver update and a GPU of the same compute capability
    plain = build(random_model, tmp_path / "plain")
    monkeypatch.setattr(backend, "query_gpu",
                        lambda index=0: dataclasses.replace(GPU, name="other", driver="999.1"))
    assert open_trt(random_model, plain, fake_device).run


def test_manifest_of_an_older_vsvsr_asks_for_a_rebuild(tmp_path, random_model, engines,
                                                       standin, fake_device) -> None:
    (manifest,) = engines.glob("*.json")
    data = json.loads(manifest.read_text())
    key = data["key"]
    target = key.pop("target")
    key.update(gpu_name=GPU.name, compute_capability="8.9", driver=GPU.driver, build_version=1)
    data["format"] = 1
    assert target == "sm89"
    manifest.write_text(json.dumps(data))
    with pytest.raises(EngineNotFoundError) as info:
        open_trt(random_model, engines, fake_device)
    msg = str(info.value)
    assert "built by an older vsvsr" in msg and "NVIDIA driver" in msg
    assert "vsvsr build --model random-x2 --size 32x24 --precision fp32" in msg
    with pytest.raises(StaleManifestError, match="rebuild it with: vsvsr build"):
        from vsvsr.runtime.engine_manifest import EngineManifest

        EngineManifest.read(manifest)


# -- 3. the build ----------------------------------------------------------------------------------
def test_set_shape_raises_on_inconsistent_shapes_and_build_says_which(random_model,
                                                                      standin) -> None:
    profile = standin.Builder(standin.Logger()).create_optimization_profile()
    with pytest.raises(RuntimeError, match="opt is inconsistent"):
        profile.set_shape("lr", (1, 3, 24, 32), (1, 3, 16, 32), (1, 3, 48, 32))
    with pytest.raises(RuntimeError, match="max is inconsistent"):
        profile.set_shape("lr", (1, 3, 24, 32), (1, 3, 24, 32), (1, 3, 24))
    key = EngineKey.make(descriptor=read_onnx_descriptor(random_model),
                         model_sha256=file_sha256(random_model),
                         profile=((W, H), (W, H), (W, H)), options=BuildOptions(sizes=((W, H),)),
                         trt_version=standin.__version__, gpu=GPU)
    bad = {**key.profile, "lr": [[1, 3, 24, 32], [1, 3, 16, 32], [1, 3, 48, 32]]}
    with pytest.raises(TrtBuildError, match="refused the profile .* of input 'lr'"):
        build_plan(standin, random_model.read_bytes(),
                   dataclasses.replace(key, profile=bad), BuildOptions(sizes=((W, H),)))


def _static_model(path: Path) -> Path:
    """A stateless model with fully static input dims."""
    from onnx import TensorProto, helper, numpy_helper

    from vsvsr.models.descriptor import ONNX_METADATA_KEY, ModelDescriptor

    weight = numpy_helper.from_array(
        np.random.default_rng(0).normal(0, 0.2, (12, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["lr", "w"], ["f"], pads=[1, 1, 1, 1]),
         helper.make_node("DepthToSpace", ["f"], ["sr"], blocksize=2)], "static",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1, 3, H, W])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, [1, 3, 2 * H, 2 * W])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    entry = model.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = ModelDescriptor(name="static-x2", arch="overfit", scale=2, recurrent=False,
                                  fixed_size=(W, H)).to_json()
    onnx.save(model, str(path))
    return path


def test_static_network_gets_no_profile_and_an_empty_one_is_refused(tmp_path, standin, fake_gpu,
                                                                    fake_device, caplog,
                                                                    monkeypatch) -> None:
    builder = standin.Builder(standin.Logger())
    config = builder.create_builder_config()
    assert config.add_optimization_profile(builder.create_optimization_profile()) == -1
    log = tmp_path / "builds.jsonl"
    monkeypatch.setenv("VSVSR_TRT_STANDIN_BUILD_LOG", str(log))
    model = _static_model(tmp_path / "static-x2.onnx")
    with caplog.at_level(logging.ERROR):
        engines = build(model, tmp_path / "e")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    (io,) = [t for t in json.loads(log.read_text())["io"] if t["name"] == "lr"]
    assert io["profiles"] == [[[1, 3, H, W]] * 3]  # the static shape, no profile added
    x = np.random.default_rng(1).random((1, 3, H, W), dtype=np.float32)
    np.testing.assert_allclose(open_trt(model, engines, fake_device).run({"lr": x})["sr"],
                               OrtEngine(model, threads=1).run({"lr": x})["sr"], atol=1e-5)


def test_timing_cache_of_another_tensorrt_is_replaced(tmp_path, random_model, standin, fake_gpu,
                                                      caplog) -> None:
    out = tmp_path / "e"
    out.mkdir()
    path = timing_cache_path(out, standin.__version__, GPU)
    path.write_bytes(json.dumps({"__trt_version__": "10.7.0.1", "old": "tactics"}).encode())
    with caplog.at_level(logging.WARNING):
        build(random_model, out)
    assert "timing cache does not match" in caplog.text
    cache = json.loads(path.read_bytes())
    assert cache["__trt_version__"] == standin.__version__
    assert len([k for k in cache if k not in ("__trt_version__", "old")]) == 1  # this build's


def test_tensorrt_10_12_builds_strongly_typed_without_deprecated_calls(
        tmp_path, random_model, standin_trt10_13, fake_gpu, monkeypatch) -> None:
    config = standin_trt10_13.Builder(standin_trt10_13.Logger()).create_builder_config()
    with pytest.warns(DeprecationWarning):
        config.set_flag(standin_trt10_13.BuilderFlag.FP16)
    log = tmp_path / "builds.jsonl"
    monkeypatch.setenv("VSVSR_TRT_STANDIN_BUILD_LOG", str(log))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        (report,) = build_engines(str(random_model), BuildOptions(sizes=((W, H),)),
                                  tmp_path / "e", echo=lambda m: None)
    (e,) = report.engines
    assert e.key.strongly_typed
    record = json.loads(log.read_text())
    assert record["strongly_typed"] and record["flags"] == []
    assert {t["name"]: t["dtype"] for t in record["io"]}["lr"] == int(standin_trt10_13.DataType.HALF)
    manifest = json.loads(e.manifest.read_text())
    assert "--stronglyTyped" in manifest["extra"]["trtexec"]
    assert manifest["extra"]["onnx"].endswith("-fp16.onnx")


def test_tensorrt_11_flags_and_tensor_types(random_model, standin_trt11) -> None:
    trt = standin_trt11
    assert int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 0
    assert not hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    logger = trt.Logger()
    network = trt.Builder(logger).create_network(0)  # no flag: strongly typed all the same
    assert network.strongly_typed
    assert trt.OnnxParser(network, logger).parse(random_model.read_bytes())
    with pytest.raises(AttributeError):
        network.get_input(0).dtype = trt.DataType.HALF


# -- 4. the logger ---------------------------------------------------------------------------------
def test_one_logger_errors_per_operation_verbose_dropped(tmp_path, engines, standin,
                                                         monkeypatch) -> None:
    from vsvsr.runtime import trt_common
    from vsvsr.runtime.engine_manifest import EngineManifest, EngineMismatchError
    from vsvsr.runtime.tensorrt_backend import deserialize

    logger = trt_common.trt_logger(standin)
    assert trt_common.trt_logger(standin) is logger
    (manifest,) = engines.glob("*.json")
    man = EngineManifest.read(manifest)
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"not a plan")
    with pytest.raises(EngineMismatchError, match="magicTagRead"):
        deserialize(standin, bad, man.key)
    monkeypatch.setattr(standin, "__version__", "10.9.0.1")
    with pytest.raises(EngineMismatchError) as info:
        deserialize(standin, engines / man.engine_file, man.key)
    assert "not compatible" in str(info.value) and "magicTagRead" not in str(info.value)
    calls = []
    monkeypatch.setattr(trt_common.log, "debug", lambda *a: calls.append(a))
    logger.log(standin.ILogger.VERBOSE, "a verbose message")
    assert calls == []  # DEBUG is off: dropped before any formatting


# -- 5. the fake device orders work like a GPU -----------------------------------------------------
def test_fake_device_runs_work_lazily_in_event_order(fake_device) -> None:
    import fake_cuda

    dev = fake_device
    a, b = dev.new_stream(), dev.new_stream()
    host = dev.pinned_empty((4,), np.float32)
    host[...] = [1, 2, 3, 4]
    buf = dev.empty((4,), np.float32)
    back = dev.pinned_empty((4,), np.float32)
    back[...] = -1
    dev.upload(buf, host, a)
    dev.download(back, buf, b)  # no event: b does not wait for a
    dev.synchronize(b)
    assert np.isnan(back).all()  # read before the upload ran: fresh device memory
    dev.synchronize(a)
    done = dev.new_event()
    dev.upload(buf, host, a)
    dev.record(done, a)
    dev.wait_event(b, done)
    dev.download(back, buf, b)
    dev.synchronize(b)  # runs a up to the record first
    np.testing.assert_array_equal(back, host)
    dev.upload(buf, host, a)
    host[0] = 9  # rewritten while the copy is in flight
    with pytest.raises(fake_cuda.FakeCudaError, match="rewritten while its upload"):
        dev.synchronize(a)


def test_failed_capture_clears_cudas_sticky_error() -> None:
    from vsvsr.runtime.cuda_device import CupyDevice

    calls = []

    class _Stream:
        def begin_capture(self):
            pass

        def end_capture(self):
            raise RuntimeError("cudaErrorStreamCaptureInvalidated")

    class _Runtime:
        @staticmethod
        def getLastError():
            calls.append("getLastError")
            return 901

    dev = object.__new__(CupyDevice)
    dev.cp = type("cp", (), {"cuda": type("cuda", (), {"runtime": _Runtime})})

    def fail():
        raise RuntimeError("operation not permitted when stream is capturing")

    assert dev.capture(_Stream(), fail) is None
    assert dev.capture(_Stream(), lambda: None) is None  # failing at end_capture
    assert calls == ["getLastError", "getLastError"]


# -- 6. fp16 conversion ----------------------------------------------------------------------------
def test_constant_of_shape_without_value_becomes_fp16(tmp_path) -> None:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from plugin_build.onnx_fp16 import convert_to_fp16

    graph = helper.make_graph(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("ConstantOfShape", ["s"], ["z"]),  # no value: fp32 zeros
         helper.make_node("Add", ["x", "z"], ["y"])], "cos",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    src = tmp_path / "cos.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    half = convert_to_fp16(src, tmp_path / "cos16.onnx", keep_fp32_io=())
    onnx.checker.check_model(onnx.load(str(half)), full_check=True)  # types agree everywhere
    x = np.random.default_rng(0).random((1, 3, 4, 4)).astype(np.float16)
    (y,) = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, x)


def test_find_engine_prefers_a_static_engine(tmp_path, random_model, standin, fake_gpu) -> None:
    out = build(random_model, tmp_path / "both", sizes=((W, H),), dynamic=True,
                min_size=(16, 16), max_size=(64, 48))
    build(random_model, out)
    want = EngineKey.make(descriptor=read_onnx_descriptor(random_model),
                          model_sha256=file_sha256(random_model), profile=((W, H),) * 3,
                          options=BuildOptions(sizes=((W, H),), precision="fp32", opt_level=5),
                          trt_version=standin.__version__, gpu=GPU)
    path, man = find_engine(out, want)  # another opt level, and two fitting engines
    assert man.key.size_label == f"{W}x{H}" and man.key.opt_level == 3
