"""``vsvsr eval --degrade``, ``--html`` and ``vsvsr compare``: the compressed-input benchmark and
the self-contained comparison page, opened in a real headless Chromium where there is one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vsvsr.cli.main import main
from vsvsr.encode.ffmpeg import find_ffmpeg
from vsvsr.evaluation import data, metrics
from vsvsr.evaluation.html_report import (
    GROUND_TRUTH,
    INPUT,
    FrameView,
    ReportError,
    compare_report,
    psnr_svg,
)
from vsvsr.evaluation.models import BicubicUpscaler
from vsvsr.evaluation.showcase import choose_by_psnr, choose_evenly, crop_box
from vsvsr.training.degrade_spec import parse_spec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((h + 8, w + 8, 3))
    for _ in range(2):
        x = (x[:-2, :-2] + x[1:-1, 1:-1] + x[2:, 2:] + x[2:, :-2] + x[:-2, 2:]) / 5.0
    x = x[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = 0.5 + 0.5 * np.sin(0.45 * xx + 0.3 * yy)
    x = 0.6 * (x - x.min()) / (x.max() - x.min()) + 0.4 * stripes[..., None]
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def panning(frames: int, h: int, w: int, step: int = 2) -> list[np.ndarray]:
    big = texture(h + step * frames, w + step * frames)
    return [big[t * step:t * step + h, t * step:t * step + w].copy() for t in range(frames)]


@pytest.fixture
def clip_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(panning(6, 64, 96)):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    return folder


# -- choosing frames and crops ------------------------------------------------------------------

def test_frames_are_chosen_by_psnr_rank_or_evenly() -> None:
    psnr = [30.0, 25.0, 35.0, 31.0, 29.0]
    assert choose_by_psnr(psnr, 3) == [(0, "median"), (1, "worst"), (2, "best")]
    assert choose_by_psnr(psnr, 1) == [(1, "worst")]
    five = choose_by_psnr(psnr, 5)
    assert sorted(i for i, _ in five) == [0, 1, 2, 3, 4]
    assert choose_by_psnr([20.0], 3) == [(0, "worst")]
    assert choose_evenly(21, 3) == [(0, "frame 1/21"), (10, "frame 11/21"), (20, "frame 21/21")]
    assert choose_evenly(2, 5) == [(0, "frame 1/2"), (1, "frame 2/2")]


def test_the_crop_goes_where_the_models_differ_and_aligns_to_the_scale() -> None:
    base = np.full((120, 160, 3), 100, np.uint8)
    model = base.copy()
    model[70:90, 101:121] = 200  # the only difference
    x, y, w, h = crop_box(base, [model], 48, align=4)
    assert (w, h) == (48, 48) and x % 4 == 0 and y % 4 == 0
    assert x <= 101 and x + w >= 121 and y <= 70 and y + h >= 90
    assert crop_box(base[:30, :40], [model[:30, :40]], 192, align=2) == (0, 0, 40, 30)


def test_frames_of_different_sizes_are_refused_with_the_sizes() -> None:
    a, b = np.zeros((40, 60, 3), np.uint8), np.zeros((40, 62, 3), np.uint8)
    with pytest.raises(ReportError, match=r"different sizes \(bicubic 60x40, m 62x40, "
                                          r"ground truth 60x40\)"):
        FrameView(index=0, reason="x", images={"bicubic": a, "m": b, GROUND_TRUTH: a})
    with pytest.raises(ReportError, match="the input is 31x20, which at x2 is not"):
        FrameView(index=0, reason="x", images={"bicubic": a}, lr=b[:20, :31], scale=2)
    frames = [np.zeros((20, 30, 3), np.uint8), np.zeros((20, 32, 3), np.uint8)]
    with pytest.raises(ReportError, match="frame 0 30x20, frame 1 32x20"):
        compare_report("/nonexistent/x.html", "c", "c", frames, [BicubicUpscaler(2)])


def test_the_plot_has_a_line_per_model_and_marks() -> None:
    svg = psnr_svg({"bicubic": [30.0, 31.0, 29.5], "m<1>": [32.0, 33.0, 31.0]},
                   [(2, "worst")], [1])
    assert svg.count('class="series"') == 2 and 'data-label="m&lt;1&gt;"' in svg
    assert "worst" in svg and 'stroke="#d62728"' in svg  # the restart line


# -- the compressed-input benchmark -------------------------------------------------------------

def test_benchmark_lr_equals_an_independent_ffmpeg_command(tmp_path: Path) -> None:
    """``eval --degrade h264:crf=28``'s LR is the clean LR through these two plain ffmpeg
    commands (written out here, not built by vsvsr)."""
    seq = data.make_sequence("clip", "test", panning(6, 64, 96), 2)
    deg = data.degraded_sequence(seq, parse_spec("h264:crf=28"), seed=5)
    assert deg.name == "clip@h264:crf=28,preset=medium" and deg.hr is seq.hr
    raw = tmp_path / "lr.rgb"
    raw.write_bytes(np.stack(seq.lr).tobytes())
    ff = find_ffmpeg()
    sws = "bicubic+accurate_rnd+full_chroma_int+bitexact"
    subprocess.run([ff, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "48x32",
                    "-i", str(raw), "-threads", "1", "-sws_flags", sws,
                    "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
                    "-c:v", "libx264", "-crf", "28", "-preset", "medium", "-f", "h264",
                    str(tmp_path / "lr.264")], check=True)
    subprocess.run([ff, "-v", "error", "-i", str(tmp_path / "lr.264"), "-sws_flags", sws,
                    "-vf", "scale=in_color_matrix=bt709:in_range=tv,format=rgb24",
                    "-f", "rawvideo", str(tmp_path / "out.rgb")], check=True)
    by_hand = np.frombuffer((tmp_path / "out.rgb").read_bytes(), np.uint8).reshape(6, 32, 48, 3)
    assert np.array_equal(np.stack(deg.lr), by_hand)
    psnr = np.mean([metrics.y_psnr(a, b) for a, b in zip(deg.lr, seq.lr, strict=True)])
    assert 24.0 < psnr < 36.0  # compressed, not destroyed


def test_cli_benchmarks_each_degradation(clip_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", "bicubic", "--scale", "2", "--frames", str(clip_dir),
                 "--degrade", "clean", "--degrade", "h264:crf=35", "--degrade",
                 "noise:sigma=3+mpeg2:q=10", "--seed", "7", "--no-tof", "--json",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "clip@clean" in text and "clip@h264:crf=35,preset=medium" in text
    report = json.loads(out.read_text())
    assert report["options"]["degrade"] == ["clean", "h264:crf=35,preset=medium",
                                            "noise:sigma=3+mpeg2:q=10"]
    seqs = {s["name"]: s for s in report["sequences"]}
    clean = seqs["clip@clean"]["models"]["bicubic"]["y_psnr_mean"]
    h264 = seqs["clip@h264:crf=35,preset=medium"]
    assert h264["info"]["degrade"] == "h264:crf=35,preset=medium"
    assert h264["info"]["degrade_seed"] == 7
    assert h264["models"]["bicubic"]["y_psnr_mean"] < clean - 1.0
    # the same numbers as bicubic on the LR made here with the same pipeline and seed
    seq = data.folder_sequence(clip_dir, 2)
    mine = data.degraded_sequence(seq, parse_spec("noise:sigma=3+mpeg2:q=10"), seed=7)
    up = list(BicubicUpscaler(2).run(mine.lr))
    expect = np.mean([metrics.y_psnr(a, b, 2) for a, b in zip(up, seq.hr, strict=True)])
    got = seqs["clip@noise:sigma=3+mpeg2:q=10"]["models"]["bicubic"]["y_psnr_mean"]
    assert got == pytest.approx(expect, abs=1e-3)


@pytest.mark.parametrize(("spec", "message"), [
    ("h264:crf=99", "crf in 0-51"),
    ("x264:crf=20", "unknown stage 'x264'"),
])
def test_cli_bad_degradation_lists_the_forms(spec: str, message: str, clip_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model", "bicubic", "--scale", "2", "--frames", str(clip_dir),
                 "--degrade", spec, "--no-tof"]) == 1
    err = capsys.readouterr().err
    assert "vsvsr eval: error: bad degradation" in err and message in err
    assert "mpeg2:q=N" in err and "h265:crf=N" in err and "blur:sigma=S" in err


# -- the HTML page ------------------------------------------------------------------------------

def _eval_html(random_model: Path, random_flow_model: Path, clip_dir: Path, path: Path) -> None:
    assert main(["eval", "--model", str(random_model), "--model", str(random_flow_model),
                 "--model", "bicubic", "--frames", str(clip_dir), "--degrade",
                 "h264:crf=30", "--backend", "ort", "--threads", "1", "--no-tof",
                 "--html", str(path)]) == 0


def _check_self_contained(page: str) -> None:
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"(?i)\b(?:https?|ftp):", page)
    srcs = re.findall(r'\ssrc="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "@import" not in page


def test_eval_html_has_every_model_for_every_chosen_frame(
        random_model: Path, random_flow_model: Path, clip_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "r" / "report.html"
    _eval_html(random_model, random_flow_model, clip_dir, path)
    page = path.read_text()
    _check_self_contained(page)
    labels = [INPUT, "bicubic", str(random_model), str(random_flow_model), GROUND_TRUTH]
    frames = re.findall(r'<section class="frame"[^>]*data-frame="(\d+)"', page)
    assert len(frames) == 3
    for label in labels:
        assert page.count(f'<figure data-label="{label}">') == 3, label
    assert page.count('class="series"') == 3  # one PSNR line per model
    assert "worst" in page and "median" in page and "best" in page
    assert "h264:crf=30,preset=medium" in page


def test_compare_cli_writes_a_page_without_ground_truth(random_model: Path, clip_dir: Path,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "cmp.html"
    assert main(["compare", str(clip_dir), "--model", str(random_model), "--html", str(path),
                 "--frames", "2", "--crop", "32", "--backend", "ort", "--threads", "1"]) == 0
    page = path.read_text()
    _check_self_contained(page)
    assert page.count('<figure data-label="bicubic">') == 2
    assert page.count(f'<figure data-label="{random_model}">') == 2
    assert f'data-label="{GROUND_TRUTH}"' not in page and 'class="series"' not in page
    assert 'data-frame="0"' in page and 'data-frame="5"' in page
    assert 'width="32" height="32"' in page


def test_compare_cli_errors(tmp_path: Path, random_model: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(texture(32, 48)).save(mixed / "0.png")
    Image.fromarray(texture(32, 50)).save(mixed / "1.png")
    assert main(["compare", str(mixed), "--model", str(random_model), "--html",
                 str(tmp_path / "x.html")]) == 1
    assert "different sizes" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "nothing"), "--model", str(random_model), "--html",
                 str(tmp_path / "x.html")]) == 1
    assert "neither a video file nor a folder" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


# -- in a real browser --------------------------------------------------------------------------

def _chromium(args: list[str], page: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install "
                                             "chromium); the page is checked as text only")
def test_report_opens_in_headless_chromium(random_model: Path, random_flow_model: Path,
                                           clip_dir: Path, tmp_path: Path) -> None:
    # the console check can fail: a page with a script error shows up in the log
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>nosuchfunction();</script></body></html>")
    assert any("nosuchfunction" in line
               for line in _console(_chromium(["--dump-dom"], bad, tmp_path / "p0").stderr))

    path = tmp_path / "report.html"
    _eval_html(random_model, random_flow_model, clip_dir, path)
    dom = _chromium(["--dump-dom"], path, tmp_path / "p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == [], _console(dom.stderr)
    assert '<body class="ready">' in dom.stdout  # the script ran to its end
    for label in ("bicubic", str(random_model), str(random_flow_model), GROUND_TRUTH, INPUT):
        assert dom.stdout.count(f'<figure data-label="{label}"') == 3, label
    # the script filled each slider viewer from the crops and marked the two sides
    assert len(re.findall(r'<img class="under"[^>]*src="data:image/png', dom.stdout)) == 3
    assert dom.stdout.count('class="sel-b"') == 3

    shot = tmp_path / "shot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1200,1400",
                     "--hide-scrollbars"], path, tmp_path / "p2")
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert _console(res.stderr) == []
    img = np.asarray(Image.open(shot).convert("RGB"))
    colors = {tuple(c) for c in img.reshape(-1, 3)[::7]}
    assert (31, 119, 180) in colors and (255, 127, 14) in colors  # two model lines of the plot
    assert len(colors) > 2000  # the photographic crops are drawn


def test_cli_names_a_missing_encoder(clip_dir: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A real ffmpeg whose encoder list lacks mpeg2video: refused before any model runs."""
    real = find_ffmpeg()
    fake = tmp_path / "ffmpeg-no-mpeg2"
    fake.write_text(f"#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = -encoders ]; then\n"
                    f"    \"{real}\" \"$@\" | grep -v ' mpeg2video '; exit 0\n  fi\ndone\n"
                    f"exec \"{real}\" \"$@\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VSVSR_FFMPEG", str(fake))
    assert main(["eval", "--model", "bicubic", "--scale", "2", "--frames", str(clip_dir),
                 "--degrade", "mpeg2:q=5", "--no-tof"]) == 1
    err = capsys.readouterr().err
    assert "no 'mpeg2video' encoder (mpeg2)" in err and str(fake) in err
