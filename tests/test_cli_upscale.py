"""The ``vsvsr`` command: upscale (real bestsource, filter and ffmpeg), demo, info, models,
train; every failure path leaves no output and says why."""

# ruff: noqa: F811  (pytest fixtures imported from _cli_fixtures are parameters here)
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from _cli_fixtures import (  # noqa: F401  (pytest fixtures)
    LR_H,
    LR_W,
    NUM,
    av_input,
    cli_model,
    decode,
    leftovers,
    lossless_input,
    make_video,
    run_cli,
    video_clip,
)

from vsvsr.cli.main import main
from vsvsr.encode import pipe
from vsvsr.encode.ffmpeg import probe


def upscale(*args: object) -> int:
    return main(["upscale", *(str(a) for a in args), "--no-progress"])


def test_upscale_writes_all_frames_at_the_new_size_and_copies_audio(
        av_input, cli_model, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.mkv"
    assert upscale(av_input, out, "--model", cli_model, "--threads", "1") == 0
    assert "wrote" in capsys.readouterr().out
    clip = video_clip(out)
    assert (clip.width, clip.height, clip.num_frames) == (2 * LR_W, 2 * LR_H, NUM)
    assert clip.format.id == vs.YUV420P8
    assert [(s.kind, s.codec) for s in probe(out)] == [("video", "h264"), ("audio", "aac")]
    assert leftovers(tmp_path) == []


def test_a_range_is_exactly_that_part_of_the_full_run(lossless_input, cli_model,
                                                      tmp_path: Path) -> None:
    full, part = tmp_path / "full.mkv", tmp_path / "part.mkv"
    common = ["--model", cli_model, "--codec", "ffv1", "--threads", "1"]
    assert upscale(lossless_input, full, *common) == 0
    assert upscale(lossless_input, part, *common, "--start", 3, "--end", 7) == 0
    a, b = decode(full), decode(part)
    assert len(a) == NUM and len(b) == 4
    for got, want in zip(b, a[3:7], strict=True):
        for gp, wp in zip(got, want, strict=True):
            np.testing.assert_array_equal(gp, wp)


def test_rgb_input_is_written_as_yuv444(cli_model, tmp_path: Path) -> None:
    from vsvsr.sample import write_rgb_video

    rng = np.random.default_rng(0)
    src = write_rgb_video([rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(3)],
                          tmp_path / "rgb.mkv")
    out = tmp_path / "out.mkv"
    assert upscale(src, out, "--model", cli_model, "--codec", "ffv1") == 0
    clip = video_clip(out)
    assert (clip.format.id, clip.width, clip.height, clip.num_frames) == \
        (vs.YUV444P8, 64, 48, 3)


def test_bad_codec_fails_clearly_and_leaves_nothing(av_input, cli_model, tmp_path: Path,
                                                    capsys) -> None:
    out = tmp_path / "out.mkv"
    assert upscale(av_input, out, "--model", cli_model, "--codec", "no-such-codec") == 1
    err = capsys.readouterr().err
    assert "vsvsr upscale: error: ffmpeg exited with status" in err
    assert "no-such-codec" in err  # ffmpeg's own last words are shown
    assert not out.exists() and leftovers(tmp_path) == []


def test_ctrl_c_mid_run_leaves_nothing(av_input, cli_model, tmp_path: Path, monkeypatch,
                                       capsys) -> None:
    real = pipe.iter_frames

    def interrupted(clip):  # noqa: ANN202
        for i, frame in enumerate(real(clip)):
            if i == 3:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(pipe, "iter_frames", interrupted)
    out = tmp_path / "out.mkv"
    assert upscale(av_input, out, "--model", cli_model) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists() and leftovers(tmp_path) == []


def test_existing_output_is_kept_without_overwrite(av_input, cli_model, tmp_path: Path,
                                                   capsys) -> None:
    out = tmp_path / "out.mkv"
    out.write_bytes(b"keep")
    assert upscale(av_input, out, "--model", cli_model) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert upscale(av_input, out, "--model", cli_model, "-y") == 0
    assert video_clip(out).num_frames == NUM


@pytest.mark.parametrize(("args", "message"), [
    (["missing.mkv"], "does not exist"),
    (["{av}", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["{av}", "--backend", "warp-drive"], "unknown backend"),
    (["{av}", "--start", "5", "--end", "3"], "--end (3) must be greater than --start (5)"),
    (["{av}", "--end", "99"], "has 8 frames"),
    (["{av}", "--matrix", "bogus"], "unknown matrix"),
])
def test_wrong_arguments_are_clear_errors(av_input, cli_model, tmp_path: Path, capsys, args,
                                          message) -> None:
    args = [str(av_input) if a == "{av}" else a for a in args]
    if "--model" not in args:
        args += ["--model", str(cli_model)]
    out = tmp_path / "out.mkv"
    assert upscale(args[0], out, *args[1:]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists() and leftovers(tmp_path) == []


def test_chunks_continue_from_the_saved_state(lossless_input, cli_model, tmp_path: Path) -> None:
    """Two separate processes: the first saves its state on exit, the second continues."""
    states = tmp_path / "states"
    common = ["--model", str(cli_model), "--codec", "ffv1", "--no-progress",
              "--state-dir", str(states)]
    first = run_cli("upscale", str(lossless_input), str(tmp_path / "a.mkv"), "--end", "5",
                    *common)
    assert first.returncode == 0, first.stderr
    assert [p.name for p in states.iterdir()] == ["state_00000004.vsvsrstate"]
    second = run_cli("-v", "upscale", str(lossless_input), str(tmp_path / "b.mkv"),
                     "--start", "5", *common)
    assert second.returncode == 0, second.stderr
    assert "continuing from the saved state after frame 4" in second.stderr
    full = tmp_path / "full.mkv"
    assert upscale(lossless_input, full, "--model", cli_model, "--codec", "ffv1") == 0
    joined = decode(tmp_path / "a.mkv") + decode(tmp_path / "b.mkv")
    for got, want in zip(joined, decode(full), strict=True):
        for gp, wp in zip(got, want, strict=True):
            np.testing.assert_array_equal(gp, wp)


def test_demo_end_to_end_on_a_random_model(cli_model, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--model", str(cli_model), "--out", str(out), "--frames-per-scene",
                 "3", "--preset", "ultrafast", "--threads", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Y-PSNR vs source: bicubic" in printed
    for name in ("demo_upscaled.mkv", "comparison.png", "summary.json", "sample_lr_x2.mkv",
                 "sample_hr.mkv"):
        assert (out / name).is_file(), name
    clip = video_clip(out / "demo_upscaled.mkv")
    assert (clip.width, clip.height, clip.num_frames) == (512, 288, 12)
    summary = json.loads((out / "summary.json").read_text())
    psnr = summary["y_psnr"]
    assert 20 < psnr["bicubic"] < 60 and 10 < psnr["vsvsr"] < 60
    assert psnr["gain"] == pytest.approx(psnr["vsvsr"] - psnr["bicubic"])
    assert len(summary["y_psnr_per_frame"]["vsvsr"]) == 12
    assert f"{psnr['vsvsr']:.2f} dB" in printed
    from PIL import Image

    assert Image.open(out / "comparison.png").width >= 3 * 2 * 100
    assert leftovers(out) == []


def test_info_reports_backends_versions_and_ffmpeg(capsys) -> None:
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ort = next(b for b in report["backends"] if b["name"] == "ort")
    assert ort["available"] is True
    assert {b["name"] for b in report["backends"]} >= {"tensorrt", "ort-cuda", "torch", "ort"}
    assert report["vapoursynth"]["version"].startswith("R") and report["ffmpeg"]["path"]
    assert "backend" in report["auto"]  # a backend, or None with the reason
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "backends:" in text and "auto " in text and "ffmpeg" in text


def test_models_lists_the_built_in_models(capsys) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows][:2] == ["rvsr-x2", "rvsr-x4"]
    for r in rows:  # installed or not, each says which
        assert r["files"] or r["scale"] is None
    assert main(["models"]) == 0
    assert "rvsr-x2" in capsys.readouterr().out


def test_train_without_torch_names_the_extra(monkeypatch, capsys) -> None:
    import importlib.util

    from vsvsr.cli import train

    real = importlib.util.find_spec
    monkeypatch.setattr(train.importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    assert main(["train", "--scale", "2"]) == 1
    assert "pip install 'vsvsr[train]'" in capsys.readouterr().err


def test_train_forwards_every_argument(monkeypatch) -> None:
    from vsvsr.cli import train

    seen: list[list[str]] = []
    monkeypatch.setattr(train, "_train_main", lambda: lambda argv: seen.append(argv) or 0)
    assert main(["-v", "train", "--scale", "4", "--out", "x", "--help"]) == 0
    assert seen == [["--scale", "4", "--out", "x", "--help"]]


def test_python_dash_m_vsvsr_runs() -> None:
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("vsvsr ")
    res = run_cli("upscale", "--help")
    assert res.returncode == 0 and "--scene-detect" in res.stdout


def _sigint_as_in_a_terminal() -> None:
    """The child starts with SIGINT at its default, as under an interactive shell: an ignored
    SIGINT is inherited, and Python then never raises KeyboardInterrupt (the test failed when
    something earlier in the suite had left the pytest process ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_real_signal_stops_ffmpeg_and_leaves_nothing(cli_model, tmp_path: Path, sig,
                                                     code) -> None:
    """A real Ctrl-C (or kill) while frames flow: ffmpeg is stopped, no file is kept."""
    src = make_video(tmp_path / "long.mkv", width=160, height=120, frames=480)
    out = tmp_path / "out.mkv"
    # ONNX Runtime on one thread: OpenVINO bf16 (auto) can finish the clip before the signal
    proc = subprocess.Popen([sys.executable, "-m", "vsvsr", "upscale", str(src), str(out),
                             "--model", str(cli_model), "--preset", "slow", "--no-progress",
                             "--backend", "ort", "--threads", "1"],
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_in_a_terminal)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # frames are flowing into ffmpeg now
    assert proc.poll() is None, "finished before the signal: make the input longer"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert "nothing half-written was kept" in err
    assert not out.exists() and leftovers(tmp_path) == []


def run_without(modules: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``vsvsr ARGS`` in a process where ``modules`` cannot be imported."""
    code = (f"import sys\nfor m in {modules!r}: sys.modules[m] = None\n"
            "from vsvsr.cli.main import main\nsys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_info_and_models_work_without_optional_packages() -> None:
    res = run_without(["onnxruntime", "torch", "vapoursynth"], "info")
    assert res.returncode == 0, res.stderr
    assert "onnxruntime  not installed" in res.stdout
    assert "torch        not installed" in res.stdout
    assert "VapourSynth  not installed: pip install vapoursynth" in res.stdout
    assert "ort         no" in res.stdout
    res = run_without(["onnxruntime", "torch"], "models")
    assert res.returncode == 0 and "rvsr-x2" in res.stdout


@pytest.mark.parametrize(("missing", "args", "message"), [
    (["vapoursynth"], ["upscale", "in.mkv", "out.mkv"], "pip install vapoursynth"),
    (["vapoursynth"], ["demo"], "pip install vapoursynth"),
    (["torch"], ["train", "--scale", "2"], "pip install 'vsvsr[train]'"),
])
def test_commands_say_what_is_missing(missing, args, message) -> None:
    res = run_without(missing, *args)
    assert res.returncode == 1 and message in res.stderr, res.stderr


def test_ffmpeg_args_are_split_like_a_shell_line() -> None:
    from vsvsr.cli.main import build_parser
    from vsvsr.cli.upscale import options_from_args

    args = build_parser().parse_args(["upscale", "a.mkv", "b.mp4", "--ffmpeg-arg=-tune film",
                                      "--ffmpeg-arg", "-movflags +faststart", "--crf", "20"])
    opts = options_from_args(args)
    assert opts.encode.extra_args == ("-tune", "film", "-movflags", "+faststart")
    assert opts.encode.crf == 20 and opts.output == Path("b.mp4")


def test_models_and_info_read_installed_weights(cli_model, tmp_path: Path, monkeypatch,
                                                capsys) -> None:
    import shutil

    from vsvsr.models import registry

    shutil.copy(cli_model, tmp_path / "rvsr-x2.onnx")
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["rvsr-x2"]["scale"] == 2 and list(rows["rvsr-x2"]["files"]) == ["onnx"]
    assert rows["rvsr-x4"]["files"] == {} and rows["rvsr-x4"]["scale"] is None
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["auto"]["backend"] in ("openvino", "ort")  # CPU
