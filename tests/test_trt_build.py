"""``vsvsr build``: ONNX checks, engine keys and manifests, the TensorRT build code through the
stand-in, locking, atomic writes, and the no-TensorRT path."""

# ruff: noqa: F811  (pytest fixtures imported from _trt_fixtures are parameters here)
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from _trt_fixtures import GPU, STANDIN, fake_gpu, standin, standin_trt11  # noqa: F401
from conftest import ROOT

from plugin_build.onnx_check import check_onnx
from plugin_build.trt_build import TrtBuildError, build_engines, build_one, build_plan, timing_cache_path
from vsvsr.cli.build import EXIT_NOT_BUILT
from vsvsr.cli.main import main as cli_main
from vsvsr.models.registry import BUILTIN_MODELS, file_sha256, resolve_model
from vsvsr.runtime.engine_key import BuildOptions, BuildOptionsError, EngineKey
from vsvsr.runtime.engine_manifest import (
    EngineManifest,
    EngineMismatchError,
    EngineNotFoundError,
    find_engine,
    paths_for,
    verify_engine,
)
from vsvsr.runtime.ort_backend import read_onnx_descriptor

SIZE = (32, 24)


def key_for(model: Path, *, size=SIZE, precision="fp32", trt_version="10.8.0.43", gpu=GPU,
            options: BuildOptions | None = None) -> EngineKey:
    opts = options or BuildOptions(sizes=(size,), precision=precision)
    return EngineKey.make(descriptor=read_onnx_descriptor(model), model_sha256=file_sha256(model),
                          profile=(size, size, size), options=opts, trt_version=trt_version, gpu=gpu)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# -- ONNX checks (no TensorRT needed) ------------------------------------------------------------
@pytest.mark.parametrize("name", BUILTIN_MODELS.names())
def test_shipped_models_are_tensorrt_ready(name: str) -> None:
    report = check_onnx(resolve_model(name).onnx)
    assert report.ok, report.problems
    assert 16 <= report.opset <= 19 and report.descriptor.name == name


def test_flow_model_is_tensorrt_ready(random_flow_model) -> None:
    report = check_onnx(random_flow_model)
    assert report.ok, report.problems
    assert "GridSample" in report.ops


def test_check_names_unsupported_ops_and_bad_io(tmp_path, random_model) -> None:
    model = onnx.load(str(random_model))
    node = model.graph.node[-1]
    node.op_type, node.domain = "DeformConv", ""
    model.graph.input[2].name = "hidden"
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    problems = " ".join(check_onnx(path).problems)
    assert "DeformConv" in problems and "plugin" in problems
    assert "expected ['lr', 'lr_prev', 'state', 'step']" in problems


# -- keys and manifests -------------------------------------------------------------------------
def test_engine_key_names_everything_it_depends_on(random_model) -> None:
    key = key_for(random_model, precision="fp16")
    stem = key.file_stem()
    assert stem.startswith("random-x2_32x24_fp16_trt10.8.0.43_sm89_")
    c = read_onnx_descriptor(random_model).state_channels
    assert key.profile["state"] == [[1, c, 24, 32]] * 3  # the hidden state has its profile
    assert key.profile["step"] == [[1, 1, 1, 1]] * 3
    for change in ({"trt_version": "10.9.0.1"}, {"target": "sm90"}, {"precision": "fp32"},
                   {"opt_level": 5}):
        other = EngineKey(**{**key.to_dict(), **change})
        assert other.file_stem() != stem and other.digest != key.digest
        assert len(key.mismatches(other)) == 1
    # What TensorRT does not tie a plan to is not in the key: a driver update or another
    # GPU of the same compute capability keeps the engine.
    import dataclasses

    for gpu in (dataclasses.replace(GPU, driver="570.1"), dataclasses.replace(GPU, name="other")):
        assert key_for(random_model, precision="fp16", gpu=gpu) == key


def test_build_options_are_validated() -> None:
    with pytest.raises(BuildOptionsError, match="precision"):
        BuildOptions(precision="int4")
    with pytest.raises(BuildOptionsError, match="opt_level"):
        BuildOptions(opt_level=9)
    with pytest.raises(BuildOptionsError, match="outside the dynamic range"):
        BuildOptions(sizes=((64, 64),), dynamic=True, min_size=(8, 8), max_size=(32, 32))
    dyn = BuildOptions(sizes=((32, 24),), dynamic=True, min_size=(16, 16), max_size=(64, 48))
    assert dyn.profiles() == [((16, 16), (32, 24), (64, 48))]


# -- the build through the stand-in ---------------------------------------------------------------
def test_build_writes_engines_manifests_and_reuses_them(tmp_path, random_model, standin, fake_gpu,
                                                         monkeypatch) -> None:
    log = tmp_path / "builds.jsonl"
    monkeypatch.setenv("VSVSR_TRT_STANDIN_BUILD_LOG", str(log))
    opts = BuildOptions(sizes=(SIZE, (48, 40)), precision="fp16", workspace_mib=64, opt_level=2)
    out = tmp_path / "engines"
    lines: list[str] = []
    (report,) = build_engines(str(random_model), opts, out, echo=lines.append)
    assert [e.built for e in report.engines] == [True, True]
    builds = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(builds) == 2
    first = builds[0]
    assert first["flags"] == [int(standin.BuilderFlag.FP16)] and not first["strongly_typed"]
    assert first["workspace"] == 64 << 20 and first["opt_level"] == 2
    io = {t["name"]: t for t in first["io"]}
    c = read_onnx_descriptor(random_model).state_channels
    assert io["state"]["profiles"] == [[[1, c, 24, 32]] * 3]  # static profile for the state
    assert io["lr"]["dtype"] == int(standin.DataType.HALF)  # fp16 I/O for images and state
    assert io["step"]["dtype"] == int(standin.DataType.FLOAT)  # the frame counter stays fp32
    # The timing cache of the first build was loaded by the second.
    assert first["timing_cache_entries_in"] == 0 and builds[1]["timing_cache_entries_in"] >= 1
    assert timing_cache_path(out, standin.__version__, GPU).is_file()
    for e in report.engines:
        man = EngineManifest.read(e.manifest)
        assert man.key == e.key and man.engine_sha256 == file_sha256(e.engine)
        assert "trtexec" in man.extra["trtexec"] and "--fp16" in man.extra["trtexec"]
        assert find_engine(out, e.key)[0] == e.engine
    assert report.onnx.is_file() and check_onnx(report.onnx).ok
    assert no_temp_files(out)
    (again,) = build_engines(str(random_model), opts, out, echo=lines.append)
    assert [e.built for e in again.engines] == [False, False]
    assert len(log.read_text().splitlines()) == 2
    # The command exits 0 when its engines are there (built or up to date).
    assert cli_main(["build", "--model", str(random_model), "--size", "32x24", "--size", "48x40",
                     "--precision", "fp16", "--workspace", "64", "--opt-level", "2",
                     "--out", str(out)]) == 0


def test_every_dynamic_input_gets_a_profile(tmp_path, random_model, standin) -> None:
    """A key without the state's shape must not build; the stand-in enforces TensorRT's rule
    too, so a build that forgot a profile fails rather than passing silently."""
    key = key_for(random_model)
    broken = EngineKey(**{**key.to_dict(), "profile": {n: v for n, v in key.profile.items()
                                                       if n != "state"}})
    with pytest.raises(TrtBuildError, match="'state' is dynamic"):
        build_plan(standin, random_model.read_bytes(), broken, BuildOptions(sizes=(SIZE,)))
    logger = standin.Logger()
    builder = standin.Builder(logger)
    network = builder.create_network(0)
    assert standin.OnnxParser(network, logger).parse(random_model.read_bytes())
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("lr", (1, 3, 24, 32), (1, 3, 24, 32), (1, 3, 24, 32))
    config.add_optimization_profile(profile)
    assert builder.build_serialized_network(network, config) is None


def test_parser_errors_are_all_reported(tmp_path, random_model, standin) -> None:
    model = onnx.load(str(random_model))
    for node in model.graph.node[:2]:
        node.op_type = "MyPluginOp"
    data = model.SerializeToString()
    with pytest.raises(TrtBuildError, match=r"2 error\(s\).*MyPluginOp.*MyPluginOp"):
        build_plan(standin, data, key_for(random_model), BuildOptions(sizes=(SIZE,)))


def test_failed_build_leaves_nothing_and_names_the_error(tmp_path, random_model, standin,
                                                         fake_gpu, monkeypatch) -> None:
    monkeypatch.setenv("VSVSR_TRT_STANDIN_FAIL_BUILD", "1")
    out = tmp_path / "engines"
    with pytest.raises(TrtBuildError, match="build failure requested"):
        build_engines(str(random_model), BuildOptions(sizes=(SIZE,), precision="fp32"), out,
                      echo=lambda m: None)
    assert not list(out.glob("*.engine")) and not list(out.glob("*.json"))
    assert no_temp_files(out)


def test_trt11_builds_from_an_fp16_onnx_without_precision_flags(tmp_path, random_model,
                                                                 standin_trt11, fake_gpu,
                                                                 monkeypatch) -> None:
    assert not hasattr(standin_trt11.BuilderFlag, "FP16")
    log = tmp_path / "builds.jsonl"
    monkeypatch.setenv("VSVSR_TRT_STANDIN_BUILD_LOG", str(log))
    (report,) = build_engines(str(random_model), BuildOptions(sizes=(SIZE,)), tmp_path / "e",
                              echo=lambda m: None)
    (e,) = report.engines
    assert e.key.strongly_typed and e.key.trt_version.startswith("11.")
    build = json.loads(log.read_text())
    assert build["strongly_typed"] and build["flags"] == []
    io = {t["name"]: t["dtype"] for t in build["io"]}
    assert io["lr"] == int(standin_trt11.DataType.HALF) and io["sr"] == int(standin_trt11.DataType.HALF)
    assert io["step"] == int(standin_trt11.DataType.FLOAT)
    trtexec = EngineManifest.read(e.manifest).extra["trtexec"]
    # What reproduces it: the converted ONNX the build parsed; trtexec 11 has no --fp16 and
    # --stronglyTyped is a deprecated no-op there.
    assert "-fp16.onnx" in trtexec and "--fp16" not in trtexec and "--stronglyTyped" not in trtexec
    with pytest.raises(BuildOptionsError, match="bf16"):
        build_engines(str(random_model), BuildOptions(sizes=(SIZE,), precision="bf16"),
                      tmp_path / "e", echo=lambda m: None)


def test_fp16_conversion_keeps_the_model_close(tmp_path, random_flow_model) -> None:
    import onnxruntime as ort

    from plugin_build.onnx_fp16 import convert_to_fp16

    half = convert_to_fp16(random_flow_model, tmp_path / "h.onnx")
    a = ort.InferenceSession(str(random_flow_model), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    c = read_onnx_descriptor(random_flow_model).state_channels
    feeds = {"lr": rng.random((1, 3, 20, 28), np.float32),
             "lr_prev": rng.random((1, 3, 20, 28), np.float32),
             "state": rng.uniform(-1, 1, (1, c, 20, 28)).astype(np.float32),
             "step": np.full((1, 1, 1, 1), 70000.0, np.float32)}  # > fp16 max: stays fp32
    ref = a.run(None, feeds)
    got = b.run(None, {k: v if k == "step" else v.astype(np.float16) for k, v in feeds.items()})
    assert all(g.dtype == np.float16 for g in got)
    assert max(float(np.abs(r - g.astype(np.float32)).max()) for r, g in zip(ref, got, strict=True)) < 2e-2


# -- locking, atomicity, concurrency --------------------------------------------------------------
_BUILD_SCRIPT = """
import json, sys
sys.path.insert(0, {standin!r})
import plugin_build.trt_build as tb
from vsvsr.runtime.engine_key import BuildOptions
from vsvsr.runtime.gpu_info import GpuInfo
tb.query_gpu = lambda index=0: GpuInfo(name={gpu.name!r}, compute_capability={gpu.compute_capability!r},
                                       driver={gpu.driver!r})
(r,) = tb.build_engines({model!r}, BuildOptions(sizes=({size!r},), precision="fp32"), {out!r})
print("RESULT", json.dumps([e.built for e in r.engines]), flush=True)
"""


def _start_build(model: Path, out: Path, env: dict[str, str]) -> subprocess.Popen:
    code = _BUILD_SCRIPT.format(standin=str(STANDIN), gpu=GPU, model=str(model), size=SIZE,
                                out=str(out))
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_concurrent_builds_build_once(tmp_path, random_model) -> None:
    log = tmp_path / "builds.jsonl"
    env = {**os.environ, "VSVSR_TRT_STANDIN_BUILD_DELAY": "2", "VSVSR_TRT_STANDIN_BUILD_LOG": str(log),
           "OMP_NUM_THREADS": "1"}
    out = tmp_path / "engines"
    procs = [_start_build(random_model, out, env) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = sorted(json.loads(o.split("RESULT ")[1]) for o in outputs)
    assert results == [[False], [True]], outputs  # one built, the other waited and reused it
    assert any("waiting for" in o for o in outputs)
    assert len(log.read_text().splitlines()) == 1
    assert len(list(out.glob("*.engine"))) == 1 and no_temp_files(out)
    (manifest,) = out.glob("*.json")
    verify_engine(manifest, EngineManifest.read(manifest).key)


def test_killed_build_leaves_no_engine_and_no_stale_lock(tmp_path, random_model) -> None:
    env = {**os.environ, "VSVSR_TRT_STANDIN_BUILD_DELAY": "30", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "engines"
    proc = _start_build(random_model, out, env)
    deadline = time.monotonic() + 60
    while not list(out.glob("*.lock")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not list(out.glob("*.engine")) and not list(out.glob("*.json"))
    env.pop("VSVSR_TRT_STANDIN_BUILD_DELAY")
    again = _start_build(random_model, out, env)
    text = again.communicate(timeout=120)[0]
    assert again.returncode == 0 and "RESULT [true]" in text, text
    assert len(list(out.glob("*.engine"))) == 1


# -- finding engines, refusing mismatched ones --------------------------------------------------
def test_mismatched_engine_is_refused_with_what_differs(tmp_path, random_model, standin,
                                                        fake_gpu) -> None:
    out = tmp_path / "engines"
    (report,) = build_engines(str(random_model), BuildOptions(sizes=(SIZE,), precision="fp32"),
                              out, echo=lambda m: None)
    (e,) = report.engines
    elsewhere = EngineKey(**{**e.key.to_dict(), "trt_version": "10.9.0.2", "target": "sm90"})
    with pytest.raises(EngineMismatchError) as info:
        verify_engine(e.manifest, elsewhere)
    msg = str(info.value)
    for part in ("TensorRT version: engine 10.8.0.43, wanted 10.9.0.2",
                 "GPU target: engine sm89, wanted sm90",
                 "vsvsr build --model random-x2 --size 32x24"):
        assert part in msg, msg
    with pytest.raises(EngineNotFoundError) as nf:
        find_engine(out, elsewhere)
    assert "engines there that do not fit" in str(nf.value) and e.engine.name in str(nf.value)
    # A truncated copy is refused by its hash.
    e.engine.write_bytes(e.engine.read_bytes()[:100])
    with pytest.raises(EngineMismatchError, match="SHA-256"):
        verify_engine(e.manifest, e.key)


def test_without_tensorrt_it_writes_the_onnx_and_prints_trtexec(tmp_path, random_model,
                                                                 monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    out = tmp_path / "engines"
    code = cli_main(["build", "--model", str(random_model), "--size", "32x24", "--size", "64x48",
                     "--precision", "fp16", "--workspace", "256", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == EXIT_NOT_BUILT == 3  # nothing built: a script can tell
    assert "cannot build engines here: TensorRT is not installed" in text
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("trtexec ")]
    assert len(lines) == 6  # two sizes, for TensorRT 10.0-10.11, 10.12+ and 11
    c = read_onnx_descriptor(random_model).state_channels
    assert f"--minShapes=lr:1x3x24x32,lr_prev:1x3x24x32,state:1x{c}x24x32" in lines[0]
    weak, late10, trt11 = lines[0], lines[2], lines[4]
    assert "--fp16" in weak and "--inputIOFormats=fp16:chw,fp16:chw,fp16:chw,fp32:chw" in weak
    assert "--stronglyTyped" not in weak and "-fp16.onnx" not in weak
    # Strongly typed from 10.12: the converted ONNX, no --fp16 (trtexec 11 has none), and
    # --stronglyTyped only where it is not a deprecated no-op.
    for line in (late10, trt11):
        assert "-fp16.onnx" in line and "--fp16" not in line and "IOFormats" not in line
    assert "--stronglyTyped" in late10 and "--stronglyTyped" not in trt11
    (onnx_file,) = [f for f in (out / "onnx").glob("*.onnx") if not f.name.endswith("-fp16.onnx")]
    assert (out / "onnx" / (onnx_file.stem + "-fp16.onnx")).is_file()
    assert check_onnx(onnx_file).ok and not list(out.glob("*.engine"))


def test_build_refuses_sizes_the_model_cannot_take(tmp_path, random_model, monkeypatch) -> None:
    from vsvsr.models.descriptor import ModelDescriptor

    monkeypatch.setattr("plugin_build.trt_build.check_onnx", _with_multiple(check_onnx, 8,
                                                                             ModelDescriptor))
    with pytest.raises(BuildOptionsError, match="divisible by 8"):
        build_engines(str(random_model), BuildOptions(sizes=((30, 24),)), tmp_path,
                      echo=lambda m: None)


def _with_multiple(check, multiple, descriptor_cls):
    import dataclasses

    def patched(path):
        report = check(path)
        return dataclasses.replace(report, descriptor=dataclasses.replace(
            report.descriptor, size_multiple=multiple))
    return patched


def test_build_one_rebuilds_when_the_manifest_is_for_another_engine(tmp_path, random_model,
                                                                    standin) -> None:
    key = key_for(random_model)
    out = tmp_path / "e"
    first = build_one(standin, random_model, key, BuildOptions(sizes=(SIZE,), precision="fp32"),
                      out, gpu=GPU, echo=lambda m: None)
    engine, manifest = paths_for(out, key)
    assert first.built and engine.is_file()
    engine.write_bytes(b"garbage")  # the manifest's hash no longer matches
    again = build_one(standin, random_model, key, BuildOptions(sizes=(SIZE,), precision="fp32"),
                      out, gpu=GPU, echo=lambda m: None)
    assert again.built and verify_engine(manifest, key)[0] == engine


def test_fp16_conversion_keeps_warps_in_fp32(random_gated_model, tmp_path) -> None:
    """Sampling grids in fp16 are half a pixel coarse at 1920 px: GridSample and the grid
    arithmetic that feeds it stay fp32 in the strongly typed fp16 model, which still runs and
    agrees with the fp32 one."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from plugin_build.onnx_fp16 import convert_to_fp16

    out = convert_to_fp16(random_gated_model, tmp_path / "fp16.onnx")
    model = onnx.shape_inference.infer_shapes(onnx.load(str(out)))
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    grids = [n for n in model.graph.node if n.op_type == "GridSample"]
    assert grids
    for node in grids:
        assert [types.get(i) for i in node.input] == [onnx.TensorProto.FLOAT] * 2, node.name
    rng = np.random.default_rng(0)
    feed = {"lr": rng.random((1, 3, 20, 28), np.float32),
            "lr_prev": rng.random((1, 3, 20, 28), np.float32),
            "state": rng.random((1, 16, 20, 28), np.float32),
            "step": np.full((1, 1, 1, 1), 3, np.float32)}
    want = ort.InferenceSession(str(random_gated_model)).run(None, feed)[0]
    half = {k: v if k == "step" else v.astype(np.float16) for k, v in feed.items()}
    got = ort.InferenceSession(str(out)).run(None, half)[0].astype(np.float32)
    assert float(np.abs(got - want).max()) < 0.02
