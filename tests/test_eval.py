"""``vsvsr eval``: metrics against hand computations, data, model specs, restarts and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vsvsr.cli.main import main
from vsvsr.errors import ModelFileError, UnknownModelError
from vsvsr.evaluation import data, metrics
from vsvsr.evaluation.models import BicubicUpscaler, RunOptions, open_upscaler
from vsvsr.evaluation.report import EvalError, evaluate_sequence


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth-but-detailed RGB uint8 image (blurred noise + stripes): flow can track it."""
    rng = np.random.default_rng(seed)
    x = rng.random((h + 8, w + 8, 3))
    for _ in range(3):  # a few box blurs
        x = (x[:-2, :-2] + x[1:-1, 1:-1] + x[2:, 2:] + x[2:, :-2] + x[:-2, 2:]) / 5.0
    x = x[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = 0.5 + 0.5 * np.sin(0.4 * xx + 0.25 * yy)
    x = 0.6 * (x - x.min()) / (x.max() - x.min()) + 0.4 * stripes[..., None]
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def moving(frames: int, h: int, w: int, step: int = 1, seed: int = 0) -> list[np.ndarray]:
    """Frames of a camera panning ``step`` px per frame over a texture."""
    big = texture(h + step * frames, w + step * frames, seed)
    return [big[t * step:t * step + h, t * step:t * step + w].copy() for t in range(frames)]


def sequence(hr: list[np.ndarray], scale: int = 2, name: str = "seq") -> data.EvalSequence:
    return data.make_sequence(name, "test", hr, scale)


# -- metrics ------------------------------------------------------------------------------------

def test_y_psnr_of_a_constant_offset_is_known_exactly() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(20, 200, (24, 30, 3), dtype=np.uint8)
    test = ref + np.uint8(10)
    dy = 10 * (65.481 + 128.553 + 24.966) / 255.0  # = 10 * 219 / 255 on every pixel
    expected = 10 * math.log10(255.0 ** 2 / dy ** 2)
    assert metrics.y_psnr(test, ref, border=2) == pytest.approx(expected, abs=1e-9)
    assert metrics.y_psnr(ref, ref) == metrics.PSNR_CAP


def test_the_demo_uses_the_same_psnr() -> None:
    from vsvsr.sample import metrics as sample_metrics

    assert sample_metrics.y_psnr is metrics.y_psnr
    assert sample_metrics.mean_y_psnr is metrics.mean_y_psnr


def slow_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM by the definition: every valid 11x11 window, Gaussian-weighted moments."""
    g = metrics.gaussian_kernel()
    w = np.outer(g, g)
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * (pa - ma) ** 2).sum()
            vb = (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append((2 * ma * mb + metrics.SSIM_C1) * (2 * cov + metrics.SSIM_C2)
                        / ((ma ** 2 + mb ** 2 + metrics.SSIM_C1) * (va + vb + metrics.SSIM_C2)))
    return float(np.mean(vals))


def test_y_ssim_is_one_on_identical_frames_and_matches_the_definition() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (22, 26, 3), dtype=np.uint8)
    test = np.clip(ref.astype(int) + rng.integers(-30, 31, ref.shape), 0, 255).astype(np.uint8)
    assert metrics.y_ssim(ref, ref, border=2) == pytest.approx(1.0, abs=1e-12)
    got = metrics.y_ssim(test, ref, border=2)
    assert got < 0.99
    ya, yb = metrics.y601(test)[2:-2, 2:-2], metrics.y601(ref)[2:-2, 2:-2]
    assert got == pytest.approx(slow_ssim(ya, yb), abs=1e-10)


def test_y_ssim_agrees_with_basicsr_filter2d_convention() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    a = rng.random((30, 40)) * 219 + 16
    b = np.clip(a + rng.normal(0, 8, a.shape), 16, 235)
    k = cv2.getGaussianKernel(11, 1.5)
    win = k @ k.T

    def f(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, win)[5:-5, 5:-5]

    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1 ** 2, f(b * b) - mu2 ** 2, f(a * b) - mu1 * mu2
    ref = (((2 * mu1 * mu2 + metrics.SSIM_C1) * (2 * s12 + metrics.SSIM_C2))
           / ((mu1 ** 2 + mu2 ** 2 + metrics.SSIM_C1) * (s1 + s2 + metrics.SSIM_C2))).mean()
    assert metrics.ssim_luma(a, b) == pytest.approx(ref, abs=1e-9)


def test_y_ssim_refuses_frames_smaller_than_the_window() -> None:
    small = np.zeros((14, 14, 3), np.uint8)
    with pytest.raises(ValueError, match="smaller than the 11x11"):
        metrics.y_ssim(small, small, border=2)


def test_tof_is_zero_for_identical_motion_and_positive_for_wrong_motion() -> None:
    pytest.importorskip("cv2")
    ref = moving(4, 48, 56, step=1)
    mean, per = metrics.tof(ref, ref)
    assert mean == 0.0 and per == [0.0, 0.0, 0.0]
    frozen = [ref[0]] * 4  # the output does not move while the ground truth pans 1 px/frame
    mean, per = metrics.tof(frozen, ref)
    assert len(per) == 3 and mean > 0.3
    shifted = moving(4, 48, 56, step=2)  # moves twice as fast
    assert metrics.tof(shifted, ref)[0] > 0.3
    with pytest.raises(ValueError, match="at least two frames"):
        metrics.tof(ref[:1], ref[:1])
    with pytest.raises(ValueError, match="3 frames against 4"):
        metrics.tof(ref[:3], ref)


# -- data ---------------------------------------------------------------------------------------

def test_folder_frames_are_sorted_cropped_and_degraded(tmp_path: Path) -> None:
    frames = moving(5, 27, 35)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i:04d}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    seq = data.folder_sequence(tmp_path, 2, max_frames=4)
    assert seq.frames == 4 and seq.hr_size == (34, 26) and seq.lr_size == (17, 13)
    np.testing.assert_array_equal(seq.hr[3], frames[3][:26, :34])
    from vsvsr.training.degrade import downscale

    x = torch.from_numpy(seq.hr[1]).permute(2, 0, 1)[None].float() / 255
    want = downscale(x, 2)[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(seq.lr[1], want)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(data.EvalDataError, match="no .png/.jpg images"):
        data.load_frames(tmp_path)
    with pytest.raises(data.EvalDataError, match="not a folder"):
        data.load_frames(tmp_path / "missing")
    Image.fromarray(texture(20, 20)).save(tmp_path / "a.png")
    Image.fromarray(texture(20, 24)).save(tmp_path / "b.png")
    with pytest.raises(data.EvalDataError, match="different sizes"):
        data.load_frames(tmp_path)


def test_video_frames_decode_exactly(tmp_path: Path) -> None:
    from vsvsr.encode.ffmpeg import find_ffmpeg

    frames = moving(5, 24, 32)
    raw = b"".join(f.tobytes() for f in frames)
    video = tmp_path / "clip.mkv"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo",
                    "-pix_fmt", "rgb24", "-s", "32x24", "-r", "24", "-i", "-", "-c:v", "ffv1",
                    "-pix_fmt", "bgr0", str(video)], input=raw, check=True)
    got = data.load_video(video)
    assert len(got) == 5
    for a, b in zip(got, frames, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(data.load_video(video, max_frames=2)) == 2
    with pytest.raises(data.EvalDataError, match="does not exist"):
        data.load_video(tmp_path / "nothing.mkv")
    (tmp_path / "bad.mkv").write_bytes(b"not a video")
    with pytest.raises(data.EvalDataError, match="could not decode"):
        data.load_video(tmp_path / "bad.mkv")


def test_long_sequence_length_range_determinism_and_motion() -> None:
    photo = texture(140, 180, seed=3)
    kw = {"frames": 40, "hr_size": (40, 32), "scale": 2}
    static = data.long_sequence(photo, "static", seed=5, **kw)
    assert len(static) == 40 and static[0].shape == (32, 40, 3) and static[0].dtype == np.uint8
    again = data.long_sequence(photo, "static", seed=5, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(static, again, strict=True))
    fast = data.long_sequence(photo, "fast-pan", seed=5, **kw)
    assert not all(np.array_equal(a, b) for a, b in
                   zip(fast, data.long_sequence(photo, "fast-pan", seed=6, **kw), strict=True))

    def motion(seq: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(seq[i].astype(int) - seq[i - 1]).mean()
                              for i in range(1, len(seq))]))

    assert motion(static) * 5 < motion(fast)
    bright = data.long_sequence(photo, "brightness", seed=5, **kw)
    mid = bright[len(bright) // 2 - 1: len(bright) // 2 + 1]
    ratio = np.mean([f.mean() for f in mid]) / bright[0].mean()
    assert 0.55 < ratio < 0.7


def test_long_sequence_stays_inside_any_length() -> None:
    """A bouncing path never leaves the photo, however long (the footprint is checked)."""
    pos, _ = data.trajectory("fast-pan", 2000, (60.0, 30.0), 4.0, seed=0)
    assert pos.min() >= 0 and (pos[:, 0] <= 60).all() and (pos[:, 1] <= 30).all()
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert np.median(steps) == pytest.approx(12.0, rel=1e-6)  # 3 LR px * 4 source px / LR px


def test_long_sequence_errors() -> None:
    photo = texture(40, 50)
    with pytest.raises(data.EvalDataError, match="unknown sequence kind"):
        data.long_sequence(photo, "zoom", 4, (8, 8), 2)
    with pytest.raises(data.EvalDataError, match="cannot hold"):
        data.long_sequence(photo, "static", 4, (40, 40), 2)
    with pytest.raises(data.EvalDataError, match="multiples of 2"):
        data.long_sequence(photo, "static", 4, (9, 8), 2)
    with pytest.raises(data.EvalDataError, match="too\\s+little"):
        data.long_sequence(photo, "fast-pan", 4, (20, 16), 2)


# -- models -------------------------------------------------------------------------------------

def test_bicubic_spec_equals_a_direct_computation() -> None:
    seq = sequence(moving(3, 32, 40))
    res = evaluate_sequence([open_upscaler("bicubic", scale=2)], seq, with_tof=False)
    for t in range(3):
        lr = torch.from_numpy(seq.lr[t]).permute(2, 0, 1)[None].float() / 255
        up = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bicubic",
                                             align_corners=False).clamp(0, 1)
        sr = up[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy()
        assert res.runs[0].y_psnr[t] == metrics.y_psnr(sr, seq.hr[t], 2)
        assert res.runs[0].y_ssim[t] == metrics.y_ssim(sr, seq.hr[t], 2)


def test_ort_and_torch_backends_agree(random_model: Path) -> None:
    seq = sequence(moving(4, 32, 40))
    ort = open_upscaler(str(random_model), backend="ort", threads=1)
    pt = open_upscaler(str(random_model), backend="torch", threads=1, precision="f32")
    assert (ort.backend, pt.backend) == ("ort-cpu", "torch-cpu")
    res = evaluate_sequence([ort, pt], seq, with_tof=False)
    np.testing.assert_allclose(res.runs[0].y_psnr, res.runs[1].y_psnr, atol=1e-3)


def test_a_restart_changes_only_the_frames_from_it_on(random_model: Path) -> None:
    lr = sequence(moving(6, 32, 40)).lr
    with open_upscaler(str(random_model), backend="ort", threads=1) as up:
        plain = list(up.run(lr))
        restarted = list(up.run(lr, RunOptions(resets={3})))
        fresh = list(up.run(lr[3:]))
        for t in range(3):
            np.testing.assert_array_equal(restarted[t], plain[t])
        assert not np.array_equal(restarted[4], plain[4])
        for t in range(3, 6):  # a restart is exactly a new run from that frame
            np.testing.assert_array_equal(restarted[t], fresh[t - 3])
        no_state = list(up.run(lr, RunOptions(reset_every_frame=True)))
        no_motion = list(up.run(lr, RunOptions(prev_is_current=True)))
    np.testing.assert_array_equal(no_state[0], plain[0])
    np.testing.assert_array_equal(no_motion[0], plain[0])
    assert not np.array_equal(no_state[2], plain[2])
    assert not np.array_equal(no_motion[2], plain[2])


def test_training_checkpoint_runs_like_the_network(tmp_path: Path) -> None:
    from vsvsr.nets.rvsr_arch import RVSRConfig, RVSRNet
    from vsvsr.training.checkpoint import TrainState, save_checkpoint
    from vsvsr.training.config import TrainConfig

    torch.manual_seed(0)
    cfg = RVSRConfig(scale=2, width=8, blocks=1, hidden=4)
    net = RVSRNet(cfg)
    torch.nn.init.normal_(net.to_residual.weight, std=0.05)
    path = save_checkpoint(tmp_path / "run" / "last.pt",
                           TrainState(config=TrainConfig(arch=cfg, iters=1),
                                      model=net.state_dict(), optimizer={}))
    from vsvsr.training.checkpoint import net_from_checkpoint

    loaded, _ = net_from_checkpoint(path)
    assert not loaded.training
    lr = sequence(moving(3, 24, 32)).lr
    with open_upscaler(str(path), scale=2, precision="f32") as up:
        assert up.label == str(path) and up.describe()["model"] == "run"
        assert up.describe()["precision"] == "f32"
        got = list(up.run(lr))
    with torch.inference_mode():
        x = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in lr]
        state, prev = net.initial_state(x[0]), x[0]
        for t, cur in enumerate(x):
            sr, state = net(cur, prev, state, torch.full((1, 1, 1, 1), float(t)))
            prev = cur
            want = sr[0].permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
            assert np.abs(got[t].astype(int) - want).max() <= 1  # float32 rounding at .5 only
    with pytest.raises(ModelFileError, match="not a readable vsvsr training checkpoint"):
        (tmp_path / "junk.pt").write_bytes(b"junk")
        open_upscaler(str(tmp_path / "junk.pt"))


def test_model_spec_errors(random_model: Path) -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        open_upscaler("nope")
    with pytest.raises(ModelFileError, match="is x2, not x4"):
        open_upscaler(str(random_model), scale=4)
    with pytest.raises(ModelFileError, match="bicubic needs a scale"):
        open_upscaler("bicubic")
    seq = sequence(moving(2, 32, 40), scale=2)
    with pytest.raises(EvalError, match="is x4 but"):
        evaluate_sequence([BicubicUpscaler(4)], seq)
    tiny = sequence(moving(2, 12, 40), scale=2)
    with pytest.raises(EvalError, match="need at least 15x15"):
        evaluate_sequence([BicubicUpscaler(2)], tiny)


# -- the command --------------------------------------------------------------------------------

@pytest.fixture
def frames_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(moving(8, 36, 44)):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    return folder


def test_cli_writes_report_plot_and_table(random_model: Path, frames_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cv2")
    out_json, out_png = tmp_path / "out" / "eval.json", tmp_path / "out" / "eval.png"
    assert main(["eval", "--model", str(random_model), "--model", "bicubic", "--frames",
                 str(frames_dir), "--restart-at", "4", "--backend", "ort", "--threads", "1",
                 "--json", str(out_json), "--plot", str(out_png)]) == 0
    text = capsys.readouterr().out
    assert "Y-PSNR" in text and "Y-SSIM" in text and "tOF" in text and "vs bicubic" in text
    rows = [line for line in text.splitlines() if line.startswith("clip ")]
    assert len(rows) == 2 and str(random_model) in rows[0] and "bicubic" in rows[1]
    report = json.loads(out_json.read_text())
    assert report["scale"] == 2 and report["options"]["restart_at"] == [4]
    seq = report["sequences"][0]
    assert seq["frames"] == 8 and seq["hr_size"] == [44, 36] and seq["restarts"] == [4]
    model = seq["models"][str(random_model)]
    assert len(model["y_psnr"]) == 8 and len(model["y_ssim"]) == 8 and len(model["tof"]) == 7
    assert model["y_psnr_mean"] == pytest.approx(np.mean(model["y_psnr"]), abs=1e-3)
    assert model["gain_over_bicubic"] == pytest.approx(
        model["y_psnr_mean"] - seq["models"]["bicubic"]["y_psnr_mean"], abs=1e-3)
    assert seq["models"]["bicubic"]["gain_over_bicubic"] is None
    assert set(report["summary"]) == {str(random_model), "bicubic"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_long_sequence_without_tof(random_model: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(texture(120, 150)).save(photo)
    assert main(["eval", "--model", str(random_model), "--long", "static", "--long", "slow-pan",
                 "--source", str(photo), "--length", "5", "--size", "40x32", "--no-tof",
                 "--backend", "ort", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "long-static" in text and "long-slow-pan" in text and "mean" in text


@pytest.mark.parametrize(("extra", "message"), [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "MODEL", "--scale", "4"], "is x2, not x4"),
    (["--model", "bicubic"], "with only bicubic, give --scale"),
    (["--model", "bicubic", "--scale", "2", "--frames", "EMPTY"], "no .png/.jpg images"),
    (["--model", "bicubic", "--scale", "2", "--frames", "TINY"], "need at least 15x15"),
    (["--model", "bicubic", "--scale", "2", "--source", "x.png"], "--source is for --long"),
])
def test_cli_errors(extra: list[str], message: str, random_model: Path, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "tiny").mkdir()
    Image.fromarray(texture(10, 40)).save(tmp_path / "tiny" / "0.png")
    subst = {"MODEL": str(random_model), "EMPTY": str(tmp_path / "empty"),
             "TINY": str(tmp_path / "tiny")}
    assert main(["eval", *[subst.get(a, a) for a in extra], "--no-tof"]) == 1
    err = capsys.readouterr().err
    assert "vsvsr eval: error:" in err and message in err
