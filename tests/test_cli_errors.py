# ruff: noqa: F811  (pytest fixtures imported from _cli_fixtures are parameters here)
"""Command-line errors say ``vsvsr COMMAND: error: ...`` once, whoever wrote the message."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli_fixtures import cli_model  # noqa: F401  (a pytest fixture)

from vsvsr.cli import main as cli
from vsvsr.errors import VsvsrError


def _stderr_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(argv) == 1
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("module", cli.SUBCOMMANDS, ids=lambda m: m.NAME)
def test_every_subcommand_prints_its_prefix_once(module, monkeypatch, capsys) -> None:
    """Library code (usable without the CLI) names the command; main must not repeat it."""
    def fail(_args: object) -> int:
        raise VsvsrError(f"vsvsr {module.NAME}: something is wrong; do this")

    monkeypatch.setattr(module, "run", fail)
    argv = [module.NAME]
    if module.NAME in ("upscale", "farm"):
        argv += ["in.mkv", "out.mkv"]
    elif module.NAME == "overfit":
        argv += ["hr/", "--scale", "2", "--out", "x.vsvsr"]
    elif module.NAME == "export":
        argv += ["x.pt", "--name", "x", "--out", "models"]
    elif module.NAME == "compare":
        argv += ["in.mkv", "--model", "rvsr-x2", "--html", "x.html"]
    err = _stderr_of(argv, capsys)
    assert err == f"vsvsr {module.NAME}: error: something is wrong; do this"


def test_real_errors_are_not_doubled(tmp_path: Path, capsys) -> None:
    for argv, words in (
            (["upscale", str(tmp_path / "none.mkv"), str(tmp_path / "o.mkv")], "does not exist"),
            (["upscale", str(tmp_path / "none.mkv"), str(tmp_path / "o.mkv"), "--start", "-1"],
             "--start must be >= 0"),
            (["bench", "--warmup", "-1"], "--warmup must be >= 0")):
        err = _stderr_of(argv, capsys)
        command = argv[0]
        assert err.startswith(f"vsvsr {command}: error: ") and words in err, err
        assert err.count(f"vsvsr {command}:") == 1, err


def test_an_error_inside_a_frame_request_is_one_line(cli_model, tmp_path: Path) -> None:
    """A damaged state file is found while VapourSynth asks for a frame: VapourSynth wraps the
    error with its whole traceback; the user gets the message, once."""
    from _cli_fixtures import make_video, run_cli

    video = make_video(tmp_path / "in.mp4", audio=None)
    states = tmp_path / "states"
    common = ["--model", str(cli_model), "--state-dir", str(states), "--no-progress",
              "--threads", "1"]
    first = run_cli("upscale", str(video), str(tmp_path / "a.mkv"), "--end", "4", *common)
    assert first.returncode == 0, first.stderr  # a process of its own: it saves on exit
    (state,) = states.iterdir()
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0x10
    state.write_bytes(bytes(data))
    second = run_cli("upscale", str(video), str(tmp_path / "b.mkv"), "--start", "4", *common)
    assert second.returncode == 1
    err = second.stderr.strip()
    assert err == (f"vsvsr upscale: error: vsvsr.recurrent: state file {state} is unreadable "
                   f"(its SHA-256 does not match: the file is damaged or truncated); delete "
                   f"{state} (or use a separate state_dir for each model and clip)")
    assert not (tmp_path / "b.mkv").exists()
