"""scripts/upscale.vpy under real vspipe, piped into real ffmpeg."""

# ruff: noqa: F811  (pytest fixtures imported from _cli_fixtures are parameters here)
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
from _cli_fixtures import (  # noqa: F401  (pytest fixtures)
    LR_H,
    LR_W,
    NUM,
    av_input,
    cli_model,
    decode,
    ffmpeg,
    lossless_input,
    video_clip,
)
from conftest import ROOT, tool

from vsvsr.cli.main import main

SCRIPT = ROOT / "scripts" / "upscale.vpy"


def vspipe_to_ffmpeg(out: Path, *args: str, cwd: Path | None = None, codec: str = "libx264",
                     env: dict[str, str] | None = None) -> tuple[int, int, str]:
    """``vspipe -c y4m upscale.vpy - -a ... | ffmpeg -i - -c:v CODEC OUT``; (rc, rc, stderr)."""
    cmd = [tool("vspipe"), "-c", "y4m", str(SCRIPT), "-"]
    for a in args:
        cmd += ["-a", a]
    vspipe = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                              env=env)
    enc = subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", "-",
                          "-c:v", codec, str(out)], stdin=vspipe.stdout, capture_output=True,
                         timeout=300, check=False)
    assert vspipe.stdout is not None
    vspipe.stdout.close()
    err = vspipe.stderr.read().decode() if vspipe.stderr else ""
    return vspipe.wait(timeout=60), enc.returncode, err


def test_vspipe_script_into_ffmpeg(av_input, cli_model, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    rc, enc_rc, err = vspipe_to_ffmpeg(out, f"input={av_input}", f"model={cli_model}",
                                       "threads=1")
    assert rc == 0 and enc_rc == 0, err
    clip = video_clip(out)
    assert (clip.width, clip.height, clip.num_frames) == (2 * LR_W, 2 * LR_H, NUM)


def test_vspipe_script_equals_vsvsr_upscale(lossless_input, cli_model, tmp_path: Path) -> None:
    """Same graph as the CLI (a range cut after the filter), relative paths from $PWD."""
    out = tmp_path / "vpy.mkv"
    rel_in = os.path.relpath(lossless_input, tmp_path)
    env = {**os.environ, "PWD": str(tmp_path)}  # what a shell sets; vspipe changes folder
    rc, enc_rc, err = vspipe_to_ffmpeg(out, f"input={rel_in}", f"model={cli_model}",
                                       "start=2", "end=6", "scene_detect=1", cwd=tmp_path,
                                       codec="ffv1", env=env)
    assert rc == 0 and enc_rc == 0, err
    ref = tmp_path / "cli.mkv"
    assert main(["upscale", str(lossless_input), str(ref), "--model", str(cli_model),
                 "--codec", "ffv1", "--start", "2", "--end", "6", "--scene-detect",
                 "--no-progress"]) == 0
    got, want = decode(out), decode(ref)
    assert len(got) == len(want) == 4
    for g, w in zip(got, want, strict=True):
        for gp, wp in zip(g, w, strict=True):
            np.testing.assert_array_equal(gp, wp)


def test_vspipe_script_without_input_says_so(tmp_path: Path) -> None:
    res = subprocess.run([tool("vspipe"), "-c", "y4m", str(SCRIPT), "-"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode != 0
    assert "-a input=FILE" in res.stderr
