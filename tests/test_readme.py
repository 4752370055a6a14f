"""The README's commands, taken from README.md itself: the vspipe | ffmpeg pipe lines run as
printed (from a folder laid out like the repository root after setup) on the built-in sample
and on an untagged mp4, and every ``vsvsr`` command line in the README and docs/ parses."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from _cli_fixtures import LR_H, LR_W, NUM, make_video, video_clip
from conftest import ROOT

from vsvsr.cli.main import build_parser

README = ROOT / "README.md"


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every ``` block."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)]


def command_lines(body: str) -> list[str]:
    """Shell lines of a block, continuation lines joined."""
    return [ln.strip() for ln in body.replace("\\\n", " ").splitlines() if ln.strip()]


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_readme_pipe_lines_run_as_printed(tmp_path: Path) -> None:
    """The two pipe lines of "Use in a .vpy script", verbatim: the README's own script on an
    untagged H.264 mp4 (matrix="auto" guesses, with a warning), and scripts/upscale.vpy on the
    built-in sample. Needs what setup makes: .venv/bin/{vspipe,ffmpeg}."""
    from vsvsr.sample.clip import SampleSpec, write_sample

    section = readme_section("Use in a `.vpy` script")
    blocks = fenced_blocks(section)
    (script,) = [body for lang, body in blocks if lang == "python"]
    pipes = [ln for lang, body in blocks if lang == "sh" for ln in command_lines(body)
             if "vspipe" in ln and "|" in ln]
    assert len(pipes) == 2 and "script.vpy" in pipes[0] and "scripts/upscale.vpy" in pipes[1]
    for part in ("vspipe", "ffmpeg"):
        if not (ROOT / ".venv" / "bin" / part).exists():
            pytest.fail(f".venv/bin/{part} is missing: run 'make setup' (it runs vsvsr doctor, "
                        "which links ffmpeg)")
    # A folder like the repository root after setup, with the user's files in it.
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    assert '"in.mkv"' in script
    (tmp_path / "script.vpy").write_text(script.replace('"in.mkv"', '"in.mp4"'))
    make_video(tmp_path / "in.mp4", audio=None, tag_709=False)  # no colour tags at all
    sample = write_sample(tmp_path / "sample", 2, hr_video=False,
                          spec=SampleSpec(width=128, height=72, frames_per_scene=2))
    sample.lr_video.rename(tmp_path / "in.mkv")

    for line, size, frames in ((pipes[0], (2 * LR_W, 2 * LR_H), NUM), (pipes[1], (128, 72), 8)):
        out = tmp_path / "out.mkv"
        out.unlink(missing_ok=True)
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, f"{line}\n{proc.stderr[-3000:]}"
        clip = video_clip(out)
        assert (clip.width, clip.height, clip.num_frames) == (*size, frames), line
        if line is pipes[0]:
            assert "does not say its colour matrix" in proc.stderr
            assert "assuming 170m from its size" in proc.stderr


def _vsvsr_lines(text: str) -> list[str]:
    lines = []
    for lang, body in fenced_blocks(text):
        if lang in ("sh", ""):
            lines += [ln for ln in command_lines(body) if re.match(r"(\.venv/bin/)?vsvsr ", ln)]
    # the indented examples (4 spaces) of the README
    lines += [ln.strip() for ln in text.splitlines() if re.match(r"    (\.venv/bin/)?vsvsr ", ln)]
    return lines


@pytest.mark.parametrize("doc", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_every_documented_vsvsr_command_parses(doc: str) -> None:
    """No stale subcommand or option in the docs (placeholders like [--x N]... are skipped)."""
    from vsvsr.training.__main__ import build_parser as train_parser

    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    lines = _vsvsr_lines(path.read_text())
    if doc == "README.md":
        assert len(lines) >= 15
    parser = build_parser()
    for line in lines:
        if "[" in line or "..." in line:
            continue
        argv = shlex.split(line, comments=True)[1:]
        sub = [a for a in argv if not re.fullmatch(r"-v+", a)]  # 'vsvsr -v train ...'
        try:
            if sub[0] == "train":
                train_parser().parse_args(sub[1:])
            else:
                parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{doc}: this documented command does not parse: {line}")
