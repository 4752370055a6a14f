"""``--precision`` on the PyTorch paths: ``vsvsr eval`` (checkpoints, ``--backend torch``) and
``vsvsr overfit`` run bf16 autocast where the CPU has native bf16, fp32 when told; the option
parses the same everywhere (upscale, demo, farm, upscale.vpy) and reaches the engine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsvsr.cli._common import CommandError, precision_arg  # noqa: E402
from vsvsr.cli.main import main  # noqa: E402
from vsvsr.errors import BackendUnavailableError  # noqa: E402
from vsvsr.evaluation import data  # noqa: E402
from vsvsr.evaluation.models import open_upscaler, torch_precision  # noqa: E402
from vsvsr.evaluation.report import evaluate_sequence  # noqa: E402
from vsvsr.training import precision as precision_mod  # noqa: E402
from vsvsr.utils.cpu_features import describe_bf16, has_native_bf16  # noqa: E402

needs_bf16 = pytest.mark.skipif(not has_native_bf16(),
                                reason=f"bf16 runs only on a CPU with native bf16; this one has "
                                       f"{describe_bf16()}")


def clip(frames: int = 5, h: int = 40, w: int = 48, seed: int = 0) -> data.EvalSequence:
    """A panning textured sequence (x2)."""
    rng = np.random.default_rng(seed)
    big = rng.random((h + frames + 8, w + frames + 8, 3))
    for _ in range(3):
        big = (big[:-2, :-2] + big[2:, 2:] + big[1:-1, 1:-1]) / 3.0
    big = (big - big.min()) / (big.max() - big.min())
    hr = [np.rint(big[t:t + h, t:t + w] * 255).astype(np.uint8) for t in range(frames)]
    return data.make_sequence("pan", "test", hr, 2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small training checkpoint (.pt) with non-trivial weights."""
    from vsvsr.nets.rvsr_arch import RVSRConfig, RVSRNet
    from vsvsr.training.checkpoint import TrainState, save_checkpoint
    from vsvsr.training.config import TrainConfig

    torch.manual_seed(0)
    cfg = RVSRConfig(scale=2, width=16, blocks=2, hidden=8)
    net = RVSRNet(cfg)
    torch.nn.init.normal_(net.to_residual.weight, std=0.05)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "run" / "last.pt",
                           TrainState(config=TrainConfig(arch=cfg, iters=1),
                                      model=net.state_dict(), optimizer={}))


# -- the option ---------------------------------------------------------------------------------

def test_one_precision_option_with_one_vocabulary() -> None:
    assert [precision_arg(t) for t in ("auto", "BF16", "f32", "fp32")] == \
        ["auto", "bf16", "f32", "f32"]
    with pytest.raises(argparse.ArgumentTypeError, match="use auto, bf16 or f32"):
        precision_arg("fp16")
    assert precision_mod.resolve_precision("f32") == "fp32"  # the runtime's name is accepted


def test_auto_is_bf16_on_the_pytorch_cpu_path_only_with_native_bf16(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_mod, "has_native_bf16", lambda: True)
    assert torch_precision("auto", "cpu") == "bf16"
    assert torch_precision("auto", "cuda") == "f32"
    assert torch_precision("fp32", "cpu") == torch_precision("f32", "cpu") == "f32"
    monkeypatch.setattr(precision_mod, "has_native_bf16", lambda: False)
    assert torch_precision("auto", "cpu") == "f32"


def test_bf16_is_refused_on_a_cpu_without_it(checkpoint: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_mod, "has_native_bf16", lambda: False)
    with pytest.raises(BackendUnavailableError, match="use precision fp32"):
        open_upscaler(str(checkpoint), precision="bf16")
    with open_upscaler(str(checkpoint), precision="auto") as up:  # auto falls back to fp32
        assert up.describe()["precision"] == "f32"


def test_bf16_is_for_openvino_and_torch_only(random_model: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="'openvino' and 'torch' only, not 'ort'"):
        open_upscaler(str(random_model), backend="ort", precision="bf16")


# -- eval ----------------------------------------------------------------------------------------

def test_f32_checkpoint_and_pth_run_in_fp32_everywhere(checkpoint: Path,
                                                       random_model: Path) -> None:
    seq = clip()
    with open_upscaler(str(checkpoint), precision="f32") as a, \
            open_upscaler(str(random_model.with_suffix(".pth")), backend="torch",
                          precision="fp32") as b, \
            open_upscaler(str(random_model), backend="ort") as c:
        assert [u.describe()["precision"] for u in (a, b)] == ["f32", "f32"]
        res = evaluate_sequence([a, b, c], seq, with_tof=False)
    # the .pth on PyTorch fp32 and its ONNX on ONNX Runtime: the same frames to rounding
    np.testing.assert_allclose(res.runs[1].y_psnr, res.runs[2].y_psnr, atol=1e-3)


@needs_bf16
def test_bf16_eval_runs_and_stays_within_a_small_bound_of_fp32(checkpoint: Path) -> None:
    seq = clip(frames=6)
    with open_upscaler(str(checkpoint), precision="f32") as f32, \
            open_upscaler(str(checkpoint), precision="bf16") as bf16:
        assert (f32.engine.precision, bf16.engine.precision) == ("f32", "bf16")
        x = np.ascontiguousarray(seq.lr[0].transpose(2, 0, 1)[None], np.float32) / 255
        state = f32.stepper.zero_state(*x.shape[2:])
        feeds = {"lr": x, "lr_prev": x, "state": state,
                 "step": np.zeros((1, 1, 1, 1), np.float32)}
        a, b = f32.engine.run(feeds), bf16.engine.run(feeds)
        assert b["sr"].dtype == np.float32 and b["sr"].flags.c_contiguous
        diff = np.abs(a["sr"] - b["sr"]).max()
        assert 0 < diff < 0.02, diff  # bf16 really ran, and only rounds
        res = evaluate_sequence([f32, bf16], seq, with_tof=False)
    d = np.abs(np.array(res.runs[0].y_psnr) - np.array(res.runs[1].y_psnr))
    assert d.max() < 0.05, d  # measured on the shipped models: <= 0.003 dB per frame


def test_eval_cli_records_the_precision(checkpoint: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(clip(frames=3).hr):
        Image.fromarray(f).save(frames / f"{i:03d}.png")
    wanted = ["f32", "bf16"] if has_native_bf16() else ["f32"]
    for prec in wanted:
        out = tmp_path / f"{prec}.json"
        assert main(["eval", "--model", str(checkpoint), "--frames", str(frames), "--no-tof",
                     "--threads", "1", "--precision", "fp32" if prec == "f32" else prec,
                     "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["options"]["precision"] == prec
        assert report["models"][0]["precision"] == prec
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["eval", "--model", str(checkpoint), "--precision", "fp16"])
    assert "unknown precision 'fp16'" in capsys.readouterr().err


# -- upscale / demo / farm / upscale.vpy ---------------------------------------------------------

def test_upscale_demo_and_farm_take_the_option(tmp_path: Path) -> None:
    from vsvsr.cli import demo, farm, upscale
    from vsvsr.farm.driver import FarmOptions

    for mod in (upscale, demo, farm):
        p = argparse.ArgumentParser()
        mod.add_arguments(p)
        args = p.parse_args([str(tmp_path / "in.mkv"), str(tmp_path / "out.mkv"),
                             "--precision", "fp32"] if mod is not demo else
                            ["--precision", "bf16"])
        assert args.precision == ("bf16" if mod is demo else "f32")
    p = argparse.ArgumentParser()
    farm.add_arguments(p)
    opts = upscale.options_from_args(p.parse_args(["in.mkv", "out.mkv", "--precision", "f32"]))
    assert opts.precision == "f32"
    assert upscale.UpscaleOptions(input=Path("x"), precision="FP32").precision == "f32"
    with pytest.raises(CommandError, match="unknown precision 'fp16'"):
        upscale.UpscaleOptions(input=Path("x"), precision="fp16")
    (tmp_path / "in.mkv").write_bytes(b"x")
    fo = FarmOptions(job=upscale.UpscaleOptions(input=tmp_path / "in.mkv",
                                                output=tmp_path / "o.mkv", precision="f32"))
    assert fo.settings()["precision"] == "f32"  # chunks of another precision never join


def test_upscale_graph_passes_the_precision_to_the_filter(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    import vsvsr
    from vsvsr.cli import upscale

    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def fake_recurrent(clip, model, backend, **kw):  # noqa: ANN001, ANN003
        seen.update(kw)
        raise Stop

    vs = pytest.importorskip("vapoursynth")
    blank = vs.core.std.BlankClip(format=vs.RGB24, width=32, height=24, length=3)
    monkeypatch.setattr(upscale, "open_source", lambda path: blank)
    monkeypatch.setattr(vsvsr, "recurrent", fake_recurrent)
    with pytest.raises(Stop):
        upscale.build_graph(upscale.UpscaleOptions(input=tmp_path / "in.mkv", precision="f32"))
    assert seen["precision"] == "f32"


def test_vpy_script_reads_the_precision_argument() -> None:
    text = (Path(__file__).parents[1] / "scripts" / "upscale.vpy").read_text()
    assert 'precision=arg("precision", "auto")' in text and "#   precision" in text
