"""The OpenVINO backend: precision choice, exactness, bf16 accuracy, the model cache, fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import synth
from reference import ort_reference, vspipe_rgbs

pytest.importorskip("openvino")

from vsvsr.errors import BackendUnavailableError, ClipFormatError, ModelFileError  # noqa: E402
from vsvsr.recurrence.runner import RecurrentRunner  # noqa: E402
from vsvsr.recurrence.stepper import RecurrentStepper  # noqa: E402
from vsvsr.runtime import openvino_backend as ovb  # noqa: E402
from vsvsr.runtime import select  # noqa: E402
from vsvsr.runtime.openvino_backend import OpenVinoEngine, OvSettings, choose_precision  # noqa: E402

NUM, H, W, CUT = 24, 24, 32, 11
#: Largest |bf16 - f32| of one output pixel over a short sequence of the random test model
#: (measured about 4e-3; 0.008 on the shipped rvsr-x2 at 960x540, docs/openvino.md).
BF16_BOUND = 0.02
HAS_BF16 = choose_precision("auto").precision == "bf16"


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return synth.make_frames(NUM, H, W, cuts=[CUT])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Every engine of a test writes its model cache in the test's own folder."""
    monkeypatch.setenv("VSVSR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "openvino"


def ov_reference(model, frames, resets, *, precision: str = "auto", threads: int = 1,
                 size=None) -> list[np.ndarray]:
    """The OpenVINO engine stepped in a plain loop (as ``ort_reference``), clamped."""
    engine = OpenVinoEngine(model, size=size, settings=OvSettings(precision=precision,
                                                                  threads=threads))
    stepper = RecurrentStepper(engine)
    outs, state, prev, step = [], None, None, 0
    for n, f in enumerate(frames):
        x = f[None]
        if n == 0 or n in resets:
            state, prev, step = stepper.zero_state(*f.shape[1:]), x, 0
        sr, state = stepper.step(x, prev, state, step)
        outs.append(np.clip(sr[0], 0, 1))
        prev, step = x, step + 1
    return outs


# -- precision ------------------------------------------------------------------------------------
AMX = frozenset({"fpu", "avx512f", "amx_tile", "amx_bf16", "avx512_bf16"})
OLD = frozenset({"fpu", "avx2", "avx512f"})


def test_auto_precision_is_bf16_only_with_native_bf16_and_says_why() -> None:
    c = choose_precision("auto", flags=AMX, capabilities=("FP32", "BF16"))
    assert c.precision == "bf16" and "AMX-BF16" in c.reason
    c = choose_precision("auto", flags=OLD, capabilities=("FP32", "BF16"))
    assert c.precision == "f32" and "neither AMX-BF16 nor AVX512-BF16" in c.reason
    c = choose_precision("auto", flags=AMX, capabilities=("FP32",))
    assert c.precision == "f32" and "OpenVINO does not list BF16" in c.reason
    c = choose_precision("auto", flags=None, capabilities=("FP32", "BF16"))  # no /proc/cpuinfo
    assert c.precision == "bf16"
    assert choose_precision("f32", flags=AMX, capabilities=("BF16",)).precision == "f32"


def test_bf16_on_a_cpu_without_it_is_a_clear_error_not_an_emulation() -> None:
    with pytest.raises(BackendUnavailableError, match="precision='f32' or 'auto'"):
        choose_precision("bf16", flags=OLD, capabilities=("FP32", "BF16"))
    with pytest.raises(BackendUnavailableError, match="unknown precision 'fp8'"):
        choose_precision("fp8")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path) -> None:
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16\nbugs\t\t: x\n")
    assert ovb.read_cpu_flags(f) == {"fpu", "avx512f", "amx_bf16"}
    assert ovb.read_cpu_flags(tmp_path / "missing") is None


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="streams must be >= 1"):
        OvSettings(streams=0)
    with pytest.raises(ValueError, match="threads"):
        OvSettings(threads=-1)
    with pytest.raises(BackendUnavailableError, match="precision"):
        OvSettings(precision="half")


# -- accuracy and exactness -----------------------------------------------------------------------
def test_f32_matches_onnx_runtime_and_bf16_stays_within_its_bound(random_model, frames,
                                                                    cache) -> None:
    ort = ort_reference(random_model, frames, {CUT})
    f32 = ov_reference(random_model, frames, {CUT}, precision="f32")
    assert max(float(np.abs(a - b).max()) for a, b in zip(f32, ort, strict=True)) < 1e-5
    if HAS_BF16:
        bf16 = ov_reference(random_model, frames, {CUT}, precision="bf16")
        worst = max(float(np.abs(a - b).max()) for a, b in zip(bf16, f32, strict=True))
        assert 0 < worst < BF16_BOUND  # really bf16 (not equal), and close


@pytest.mark.parametrize("precision", ["f32", "auto"])
def test_deterministic_run_to_run(random_model, frames, cache, precision) -> None:
    a = ov_reference(random_model, frames, {CUT}, precision=precision, threads=2)
    b = ov_reference(random_model, frames, {CUT}, precision=precision, threads=2)
    for n, (x, y) in enumerate(zip(a, b, strict=True)):
        np.testing.assert_array_equal(x, y, err_msg=f"frame {n}")


def test_runner_any_request_order_equals_the_sequential_run(random_model, frames, cache) -> None:
    ref = ov_reference(random_model, frames, {CUT}, size=(W, H))
    engine = OpenVinoEngine(random_model, size=(W, H), settings=OvSettings(threads=1))

    class Source:
        num_frames = NUM

        def fetch(self, n):
            return frames[n][None], n == CUT

    runner = RecurrentRunner(RecurrentStepper(engine), Source(), max_cursors=2, cache_frames=3)
    order = [int(i) for i in np.random.default_rng(3).permutation(NUM)] + [5, 4, 3]
    for n in order:
        np.testing.assert_array_equal(np.clip(runner.get(n)[0], 0, 1), ref[n], err_msg=f"{n}")


@pytest.mark.parametrize("threads", [1, 8])
def test_vspipe_on_openvino_equals_the_sequential_openvino_run(random_model, frames, threads,
                                                               cache) -> None:
    args = {"model": random_model, "backend": "openvino", "num": NUM, "height": H, "width": W,
            "cuts": CUT, "scene_props": CUT}
    got, _ = vspipe_rgbs(args, threads=threads, shape=(2 * H, 2 * W))
    want = ov_reference(random_model, frames, {CUT}, size=(W, H))
    bad = [n for n, (g, w) in enumerate(zip(got, want, strict=True)) if not np.array_equal(g, w)]
    assert len(got) == NUM and not bad, f"frames {bad[:5]} differ"


def test_two_chunks_with_state_dir_continue_exactly_on_openvino(random_model, frames, tmp_path,
                                                                cache) -> None:
    args = {"model": random_model, "backend": "openvino", "num": NUM, "height": H, "width": W,
            "cuts": CUT, "scene_props": CUT, "state_dir": tmp_path / "states", "log": 1}
    first, _ = vspipe_rgbs({**args, "trim": "0:8"}, threads=4, shape=(2 * H, 2 * W))
    second, err = vspipe_rgbs({**args, "trim": f"8:{NUM}"}, threads=4, shape=(2 * H, 2 * W))
    assert "continuing from the saved state after frame 7" in err
    want = ov_reference(random_model, frames, {CUT}, size=(W, H))
    bad = [n for n, (g, w) in enumerate(zip(first + second, want, strict=True))
           if not np.array_equal(g, w)]
    assert not bad, f"frames {bad[:5]} differ"


def test_state_is_kept_in_place_ping_pong(random_model, frames, cache) -> None:
    engine = OpenVinoEngine(random_model, size=(W, H), settings=OvSettings(threads=1))
    state = engine.new_state(H, W)
    halves = [id(b) for b in state.buffers]
    x = frames[0][None]
    step = np.zeros((1, 1, 1, 1), np.float32)
    sr = engine.step_device({"lr": x, "lr_prev": x, "step": step}, state)
    assert state.parity == 1 and [id(b) for b in state.buffers] == halves
    plain = engine.run({"lr": x, "lr_prev": x, "state": np.zeros_like(state.current),
                        "step": step})
    np.testing.assert_array_equal(sr, plain["sr"])
    np.testing.assert_array_equal(np.asarray(state), plain["state_out"])
    loaded = engine.state_from_host(np.asarray(state))
    np.testing.assert_array_equal(loaded.current, state.current)
    with pytest.raises(ClipFormatError, match="does not fit"):
        engine.state_from_host(np.zeros((1, 3, H, W), np.float32))


def test_streams_serve_threads_in_any_order_with_identical_output(tmp_path, cache) -> None:
    from _overfit_fixtures import random_stateless_onnx

    onnx, _, _ = random_stateless_onnx(2, 7)
    rng = np.random.default_rng(0)
    xs = [rng.random((1, 3, 40, 56), np.float32) for _ in range(12)]
    engine = OpenVinoEngine(onnx, size=(56, 40), settings=OvSettings(streams=2, threads=2))
    first = [engine.run({"lr": x})["sr"] for x in xs]
    got: dict[int, np.ndarray] = {}

    def work(idx: list[int]) -> None:
        for i in idx:
            got[i] = engine.run({"lr": xs[i]})["sr"]

    order = [int(i) for i in rng.permutation(12)]
    ts = [threading.Thread(target=work, args=(order[k::3],)) for k in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(12):
        np.testing.assert_array_equal(got[i], first[i], err_msg=f"input {i}")
    # another size goes through the one dynamic-shape compile, not a recompile per size
    odd = engine.run({"lr": xs[0][:, :, :17, :23]})["sr"]
    assert odd.shape == (1, 3, 34, 46)
    assert len(engine._compiled) == 2


# -- the model cache ------------------------------------------------------------------------------
def test_model_cache_is_reused_with_the_same_output(random_model, frames, cache) -> None:
    x = frames[0][None]
    first = OpenVinoEngine(random_model, size=(W, H))
    feeds = {"lr": x, "lr_prev": x, "step": np.zeros((1, 1, 1, 1), np.float32),
             "state": np.zeros((1, first.descriptor.state_channels, H, W), np.float32)}
    with pytest.raises(ClipFormatError, match="input 'state'"):
        first.run({**feeds, "state": np.zeros((1, 1, H, W), np.float32)})
    assert not first.loaded_from_cache(first.compiled_for((W, H)))
    blobs = sorted(p.name for p in cache.iterdir())
    assert blobs, "no compiled model was cached"
    second = OpenVinoEngine(random_model, size=(W, H))
    assert second.loaded_from_cache(second.compiled_for((W, H)))
    assert sorted(p.name for p in cache.iterdir()) == blobs  # reused, not written again
    np.testing.assert_array_equal(first.run(feeds)["sr"], second.run(feeds)["sr"])


def test_cache_folder_follows_the_project_convention(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("VSVSR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ovb.cache_folder() == tmp_path / "xdg" / "vsvsr" / "openvino"
    monkeypatch.setenv("VSVSR_CACHE_DIR", str(tmp_path / "mine"))
    assert ovb.cache_folder() == tmp_path / "mine" / "openvino"


# -- selection and fallbacks ----------------------------------------------------------------------
@pytest.fixture
def fresh_status():
    select.backend_status.cache_clear()
    yield
    select.backend_status.cache_clear()


def test_auto_picks_openvino_on_the_cpu_and_info_says_the_precision(fresh_status) -> None:
    from vsvsr.cli.info import collect, format_report
    from vsvsr.models.registry import resolve_model

    assert select.pick_backend("auto", resolve_model("rvsr-x2")) == "openvino"
    report = collect()
    assert report["auto"]["backend"] == "openvino"
    assert report["auto"]["precision"] == choose_precision().precision
    assert f"in {choose_precision().precision} (" in format_report(report)


def test_without_openvino_auto_falls_back_and_explicit_asks_say_how_to_install(
        monkeypatch, fresh_status, random_model) -> None:
    from vsvsr.cli.info import collect, format_report
    from vsvsr.models.registry import resolve_model
    from vsvsr.stdo.runner import pick_backend as pack_backend

    monkeypatch.setitem(sys.modules, "openvino", None)  # not importable
    status = {s.name: s for s in select.backend_status()}
    assert not status["openvino"].available
    assert "pip install openvino" in status["openvino"].detail
    assert select.pick_backend("auto", resolve_model("rvsr-x2")) == "ort"
    with pytest.raises(BackendUnavailableError, match="pip install openvino"):
        select.open_engine(random_model, "openvino")
    assert pack_backend("auto") == "ort"
    with pytest.raises(BackendUnavailableError, match="pip install openvino"):
        pack_backend("openvino")
    text = format_report(collect())
    assert "auto picks ort for rvsr-x2 (openvino not used: the 'openvino' package is not " \
           "installed" in text


def test_bf16_on_another_backend_is_refused(random_model) -> None:
    with pytest.raises(BackendUnavailableError, match="backends 'openvino' and 'torch' only"):
        select.open_engine(random_model, "ort", precision="bf16")
    with pytest.raises(BackendUnavailableError, match="unknown precision"):
        select.open_engine(random_model, "openvino", precision="int4")


# -- bad models -----------------------------------------------------------------------------------
def test_a_node_openvino_cannot_convert_is_named_with_the_backend_that_can(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("MysteryOp", ["lr"], ["sr"], name="my_mystery_node",
                            domain="com.example")
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("sr", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                     helper.make_opsetid("com.example", 1)])
    path = tmp_path / "custom.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelFileError, match=r"'my_mystery_node' \(com.example.MysteryOp.*backend='ort'"):
        OpenVinoEngine(path)


def test_unconverted_ops_are_read_from_openvinos_message_without_onnx() -> None:
    msg = ("Model wasn't fully converted.\nSummary:\n-- No conversion rule found for "
           "operations: com.example.A, B\nFailed operations detailed log:\n-- C with a "
           "message:\nboom")
    assert ovb.unconverted_nodes(b"not onnx", msg) == ["com.example.A", "B", "C"]


def test_missing_corrupt_and_unlabelled_files(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        OpenVinoEngine(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="OpenVINO cannot read this model"):
        OpenVinoEngine(bad)
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 8, 8]) for n in ("lr", "sr")]
    graph = helper.make_graph([helper.make_node("Identity", ["lr"], ["sr"])], "g", io[:1], io[1:])
    plain = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), plain)
    with pytest.raises(ModelFileError, match="no 'vsvsr.descriptor' metadata"):
        OpenVinoEngine(plain)


def test_recurrent_model_on_several_streams_is_refused(random_model) -> None:
    with pytest.raises(ModelFileError, match="one stream"):
        OpenVinoEngine(random_model, settings=OvSettings(streams=2))


# -- the overfit filter -----------------------------------------------------------------------------
def test_overfit_filter_on_openvino_matches_onnx_runtime_within_the_bf16_bound(tmp_path,
                                                                             cache) -> None:
    import vapoursynth as vs
    from _overfit_fixtures import make_pack

    import vsvsr

    pack = make_pack(tmp_path / "p.vsvsr", frames=6, lr_size=(40, 24), models=2)
    lr = [f for f in synth.make_frames(6, 24, 40)]
    clip = synth.array_clip(lr)

    def planes(node, n):
        return synth.planes_of(node.get_frame(n))

    ort = vsvsr.overfit(clip, pack, "ort", output_format="RGBS")
    outs = {}
    for mode in ("full", "patch"):
        ov = vsvsr.overfit(clip, pack, "openvino", output_format="RGBS", mode=mode)
        outs[mode] = [planes(ov, n) for n in range(6)]
        worst = max(float(np.abs(outs[mode][n] - planes(ort, n)).max()) for n in range(6))
        assert worst < (BF16_BOUND if HAS_BF16 else 1e-5), (mode, worst)
    auto = vsvsr.overfit(clip, pack, output_format="RGBS")  # auto: OpenVINO on the CPU
    for n in (5, 0, 3):
        np.testing.assert_array_equal(planes(auto, n), outs["full"][n])
    f32 = vsvsr.overfit(clip, pack, "openvino", output_format="RGBS", precision="f32")
    assert max(float(np.abs(planes(f32, n) - planes(ort, n)).max()) for n in range(6)) < 1e-5
    with pytest.raises(BackendUnavailableError, match="openvino' only"):
        vsvsr.overfit(clip, pack, "ort", precision="bf16")
    assert vs.core.num_threads >= 1


def test_both_filters_on_openvino_never_import_torch(random_model, tmp_path) -> None:
    from _overfit_fixtures import make_pack

    pack = make_pack(tmp_path / "p.vsvsr", frames=3, lr_size=(16, 16), models=2)
    code = f"""
import sys
sys.path.insert(0, {str(synth.__file__.rsplit('/', 1)[0])!r})
import synth, vsvsr
clip = synth.array_clip(synth.make_frames(3, 16, 16))
vsvsr.recurrent(clip, {str(random_model)!r}, "openvino").get_frame(2)
vsvsr.overfit(clip, {str(pack)!r}, "openvino").get_frame(2)
print('torch' in sys.modules, 'openvino' in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "VSVSR_CACHE_DIR": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["False", "True"]
