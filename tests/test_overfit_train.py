"""End to end on a tiny synthetic clip: STDO beats the general model; JSTDO, time division,
resume after an interruption, the work folder guard and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import synth

from vsvsr.stdo import train as train_mod
from vsvsr.stdo.api import overfit
from vsvsr.stdo.pack import PackError, read_pack
from vsvsr.stdo.train import TrainSettings

SCALE, GRID = 2, (4, 2)


@pytest.fixture(scope="module")
def general(tmp_path_factory) -> Path:
    """A general x2 ESPCN trained for a few seconds on synthetic photos."""
    import torch

    from vsvsr.stdo.general import save_general, train_general
    from vsvsr.training.sequences import synthetic_photos

    torch.set_num_threads(1)
    net, desc = train_general(scale=SCALE, steps=40, photos=synthetic_photos(4, 96, seed=1),
                              crop=16, threads=1, progress=False)
    pth, onnx = save_general(net, desc, tmp_path_factory.mktemp("gen") / "general-espcn-x2.pth")
    assert onnx.is_file()
    return pth


@pytest.fixture(scope="module")
def hr() -> list[np.ndarray]:
    """8 HR frames 48x64 with a cut: the textures the general model never saw."""
    frames = synth.make_frames(8, 48, 64, cuts=[4], seed=3)
    return [(f.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8) for f in frames]


def run(hr, tmp_path, method, general, *, chunks=2, steps=60, **kw):
    return overfit(hr, scale=SCALE, out=tmp_path / f"{method}.vsvsr", method=method,
                   chunks=chunks, grid=GRID, general=general,
                   settings=TrainSettings(steps=steps, threads=1, **kw), evaluate=True,
                   progress=False)


@pytest.fixture(scope="module")
def results(hr, general, tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    return {m: run(hr, d, m, general) for m in ("general", "stdo", "jstdo", "time")}


def test_stdo_beats_the_general_model(results) -> None:
    g, s = results["general"], results["stdo"]
    assert s.models == 2 and g.models == 1
    assert s.psnr > g.psnr + 0.5, (s.psnr, g.psnr)
    assert results["time"].psnr > g.psnr
    # (JSTDO with k=2 trains on chunk 0 alone, so it need not beat the general model here)


def test_packs_hold_what_each_method_promises(results, hr) -> None:
    s = read_pack(results["stdo"].pack, frames=8, size=(32, 24), scale=2)
    assert np.bincount(s.labels.ravel()).tolist() == [32, 32]  # equal quantile chunks
    assert s.training["per_model"][0]["patches"] == 32
    j = read_pack(results["jstdo"].pack)
    assert len(j.models) == 1 and not j.labels.any()
    assert j.training["fractions"] == [1.0, 0.0]
    assert results["jstdo"].per_model[0]["patches"] == 32  # all of chunk 0, none of chunk 1
    t = read_pack(results["time"].pack)
    assert [int(x) for x in t.labels[:, 0, 0]] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert (t.labels == t.labels[:, :1, :1]).all()  # one model per frame
    assert results["stdo"].label_bytes_per_frame > 0


def test_interrupted_training_resumes_to_the_same_weights(hr, general, tmp_path,
                                                          monkeypatch) -> None:
    whole = run(hr, tmp_path / "a", "jstdo", general, steps=30)
    calls = {"n": 0}
    real = train_mod.PatchData.windows

    def flaky(self, patches):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return real(self, patches)

    with monkeypatch.context() as m:
        m.setattr(train_mod.PatchData, "windows", flaky)
        with pytest.raises(KeyboardInterrupt):
            run(hr, tmp_path / "b", "jstdo", general, steps=30, checkpoint_seconds=0.0)
    assert (tmp_path / "b" / "jstdo.vsvsr.work" / "jstdo.ckpt").is_file()
    assert not (tmp_path / "b" / "jstdo.vsvsr").exists()
    resumed = run(hr, tmp_path / "b", "jstdo", general, steps=30)
    a, b = read_pack(whole.pack), read_pack(resumed.pack)
    assert a.models[0].onnx == b.models[0].onnx
    assert resumed.psnr == whole.psnr


def test_work_folder_of_other_settings_is_refused(hr, general, tmp_path) -> None:
    run(hr, tmp_path, "jstdo", general, steps=2)
    with pytest.raises(PackError, match="other settings"):
        run(hr, tmp_path, "jstdo", general, steps=3)


def test_command_line(hr, general, tmp_path, capsys) -> None:
    from PIL import Image

    from vsvsr.cli.main import main

    src = tmp_path / "frames"
    src.mkdir()
    for i, f in enumerate(hr[:4]):
        Image.fromarray(f).save(src / f"{i:04d}.png")
    out = tmp_path / "v.vsvsr"
    rc = main(["overfit", str(src), "--scale", "2", "--chunks", "2", "--grid", "4x2",
               "--general", str(general), "--steps", "3", "--threads", "1", "--out", str(out),
               "--eval", "--no-progress", "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert rc == 0 and "stdo, 2 model(s)" in text and "full-frame Y-PSNR" in text
    assert read_pack(out, frames=4, size=(32, 24)).method == "stdo"
    assert main(["overfit", str(src), "--scale", "2", "--out", str(out), "--fractions", "1,0",
                 "--general", str(general)]) == 1
    assert "--fractions only applies" in capsys.readouterr().err


def test_command_says_torch_is_missing(tmp_path) -> None:
    import subprocess
    import sys

    code = ("import sys\nsys.modules['torch'] = None\nfrom vsvsr.cli.main import main\n"
            "sys.exit(main(sys.argv[1:]))")
    res = subprocess.run([sys.executable, "-c", code, "overfit", str(tmp_path), "--scale", "4",
                          "--out", str(tmp_path / "x.vsvsr")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and "pip install 'vsvsr[train]'" in res.stderr, res.stderr


def test_missing_general_model_says_how_to_make_one(hr, tmp_path) -> None:
    from vsvsr.errors import ModelFileError

    with pytest.raises(ModelFileError, match="python -m vsvsr.stdo.general --scale 2"):
        overfit(hr, scale=2, out=tmp_path / "x.vsvsr", general=tmp_path / "none.pth")


def test_general_model_of_another_scale_or_kind_is_refused(general, tmp_path) -> None:
    import torch

    from vsvsr.errors import ModelFileError
    from vsvsr.stdo.general import load_general

    with pytest.raises(ModelFileError, match="is a x2 model; the pack is x4"):
        load_general(general, "espcn", 4)
    data = torch.load(general, weights_only=True)
    data["arch"] = "rvsr"
    bad = tmp_path / "rec.pth"
    torch.save(data, bad)
    with pytest.raises(ModelFileError):
        load_general(bad, "espcn", 2)
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ModelFileError, match="not a readable vsvsr .pth model file"):
        load_general(tmp_path / "junk.pth", "espcn", 2)


# -- precision (bf16 autocast + channels_last where the CPU has native bf16) ---------------------

def test_fp32_forced_runs_everywhere_and_bf16_stays_close(hr, general, tmp_path) -> None:
    from vsvsr.utils.cpu_features import describe_bf16, has_native_bf16

    f32 = run(hr, tmp_path / "f", "jstdo", general, steps=60, precision="f32")
    assert f32.precision == "fp32" and read_pack(f32.pack).training["precision"] == "fp32"
    if not has_native_bf16():
        pytest.skip(f"bf16 needs native bf16; this CPU has {describe_bf16()}")
    bf16 = run(hr, tmp_path / "b", "jstdo", general, steps=60, precision="bf16")
    assert bf16.precision == "bf16" and bf16.per_model[0]["precision"] == "bf16"
    a, b = read_pack(f32.pack), read_pack(bf16.pack)
    assert a.models[0].onnx != b.models[0].onnx  # bf16 really ran
    # 60 steps: the same learning, rounding apart (measured on a real clip: docs/stdo.md)
    assert abs(bf16.psnr - f32.psnr) < 0.1, (bf16.psnr, f32.psnr)


def test_a_run_resumes_in_another_precision(hr, general, tmp_path) -> None:
    run(hr, tmp_path, "jstdo", general, steps=4, precision="f32")
    assert run(hr, tmp_path, "jstdo", general, steps=4, precision="auto").models == 1


def test_precision_is_checked_and_reaches_training(hr, general, tmp_path, capsys) -> None:
    import json

    from PIL import Image

    from vsvsr.cli.main import main

    with pytest.raises(ValueError, match="precision must be one of"):
        TrainSettings(precision="fp16")
    src = tmp_path / "frames"
    src.mkdir()
    for i, f in enumerate(hr[:4]):
        Image.fromarray(f).save(src / f"{i:04d}.png")
    assert main(["overfit", str(src), "--scale", "2", "--method", "jstdo", "--grid", "4x2",
                 "--general", str(general), "--steps", "2", "--threads", "1", "--no-progress",
                 "--precision", "fp32", "--out", str(tmp_path / "v.vsvsr"),
                 "--json", str(tmp_path / "r.json")]) == 0
    assert "in fp32" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["precision"] == "fp32" and report["per_model"][0]["precision"] == "fp32"
