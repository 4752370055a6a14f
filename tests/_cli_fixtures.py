"""Shared fixtures and helpers for the CLI, encode, sample, bench and .vpy tests.

Import what a test module needs: ``from _cli_fixtures import cli_model, av_input, ...``
(pytest finds fixtures imported into a test module). Nothing here needs the shipped weights.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_random_model

LR_W, LR_H, NUM = 64, 48, 8
FPS = 24


def ffmpeg() -> str:
    from vsvsr.encode.ffmpeg import find_ffmpeg

    return find_ffmpeg()


def make_video(path: Path, *, width: int = LR_W, height: int = LR_H, frames: int = NUM,
               audio: str | None = "aac", codec: str = "libx264", pix_fmt: str = "yuv420p",
               tag_709: bool = True) -> Path:
    """A test-pattern video (testsrc2) with an optional sine audio track, made by ffmpeg."""
    cmd = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc2=size={width}x{height}:rate={FPS}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    cmd += ["-frames:v", str(frames), "-t", f"{frames / FPS:.4f}"]
    if tag_709:
        cmd += ["-vf", "setparams=colorspace=bt709:range=tv"]
    cmd += ["-c:v", codec, "-pix_fmt", pix_fmt]
    if audio:
        cmd += ["-c:a", audio]
    subprocess.run([*cmd, str(path)], check=True)
    return path


def decode(path: Path) -> list[list[np.ndarray]]:
    """All frames of a video as lists of plane arrays (bestsource)."""
    import vapoursynth as vs

    clip = vs.core.bs.VideoSource(str(path), cachemode=0)
    return [[np.array(f[p]) for p in range(f.format.num_planes)] for f in clip.frames()]


def video_clip(path: Path):  # noqa: ANN201
    import vapoursynth as vs

    return vs.core.bs.VideoSource(str(path), cachemode=0)


def leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted or failed encode might have left."""
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or
                  p.name.endswith(".tmp"))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> \
        subprocess.CompletedProcess[str]:
    """``python -m vsvsr ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "vsvsr", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def cli_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight x2 model (.onnx)."""
    return make_random_model(tmp_path_factory.mktemp("cli_model") / "tiny-x2.onnx",
                             residual_std=0.02)


@pytest.fixture(scope="session")
def av_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64x48, 8 frames at 24 fps, H.264 BT.709 video with an AAC sine track, in mkv."""
    return make_video(tmp_path_factory.mktemp("av") / "in.mkv")


@pytest.fixture(scope="session")
def lossless_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64x48, 8 frames, FFV1 video without audio (decodes exactly)."""
    return make_video(tmp_path_factory.mktemp("ll") / "in_ffv1.mkv", audio=None, codec="ffv1")
