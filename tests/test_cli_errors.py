"""Command-line errors say ``vsvsr COMMAND: error: ...`` once, whoever wrote the message."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    if module.NAME == "upscale":
        argv += ["in.mkv", "out.mkv"]
    elif module.NAME == "overfit":
        argv += ["hr/", "--scale", "2", "--out", "x.vsvsr"]
    elif module.NAME == "export":
        argv += ["x.pt", "--name", "x", "--out", "models"]
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
