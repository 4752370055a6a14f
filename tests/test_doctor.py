"""``vsvsr doctor``: real vspipe, real ``vapoursynth config`` (into a temporary config folder),
real ffmpeg links (into a temporary bin folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vsvsr.cli import doctor
from vsvsr.cli.main import main
from vsvsr.encode.ffmpeg import find_ffmpeg


def test_a_configured_install_is_all_good(capsys) -> None:
    """What setup leaves (make setup runs vsvsr doctor): every required part works."""
    found = {f.what: f for f in doctor.diagnose(fix=False)}
    for what in ("VapourSynth", "bestsource", "vspipe", "ffmpeg", "ffmpeg link", "backend ort",
                 "model rvsr-x2", "model rvsr-x4"):
        assert found[what].status == "ok", found[what]
    assert main(["doctor", "--check"]) == 0
    assert capsys.readouterr().out.strip().endswith("vsvsr doctor: all good")


def test_vspipe_without_config_is_fixed_by_vapoursynth_config(tmp_path: Path,
                                                              monkeypatch) -> None:
    """A fresh pip install: VapourSynth's per-user config has no entry for this Python yet."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # vspipe and vapoursynth config read it
    broken = doctor.check_vspipe(fix=False)
    assert broken.status == "FAIL" and "VSScript" in broken.detail
    assert "vapoursynth config" in broken.detail
    fixed = doctor.check_vspipe(fix=True)
    assert fixed.status == "fixed", fixed
    assert "vapoursynth config" in fixed.detail and "now runs scripts" in fixed.detail
    assert (tmp_path / "vapoursynth" / "vapoursynth.toml").is_file()
    assert doctor.check_vspipe(fix=False).status == "ok"


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setattr(doctor, "scripts_dir", lambda: folder)
    monkeypatch.setattr(doctor, "in_virtualenv", lambda: True)
    return folder


def _link_finding(fix: bool) -> doctor.Finding:
    (f,) = [f for f in doctor.check_ffmpeg(fix=fix) if f.what == "ffmpeg link"]
    return f


def test_ffmpeg_is_linked_beside_vspipe(bin_dir: Path) -> None:
    link = bin_dir / "ffmpeg"
    missing = _link_finding(fix=False)
    assert missing.status == "FAIL" and "is missing" in missing.detail and not link.exists()
    made = _link_finding(fix=True)
    assert made.status == "fixed" and f"linked {link} -> {find_ffmpeg()}" in made.detail
    assert os.path.realpath(link) == os.path.realpath(find_ffmpeg())
    assert _link_finding(fix=True).status == "ok"  # idempotent
    # a link of ours to an older imageio-ffmpeg binary that is gone: renewed
    link.unlink()
    os.symlink(str(bin_dir / "imageio_ffmpeg" / "binaries" / "ffmpeg-old"), link)
    assert _link_finding(fix=True).status == "fixed"
    assert os.path.realpath(link) == os.path.realpath(find_ffmpeg())


def test_an_ffmpeg_of_ones_own_is_left_alone(bin_dir: Path) -> None:
    own = bin_dir / "ffmpeg"
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    f = _link_finding(fix=True)
    assert f.status == "ok" and "left alone" in f.detail
    assert own.read_text() == "#!/bin/sh\n"
    own.unlink()
    os.symlink(str(bin_dir / "elsewhere" / "ffmpeg"), own)  # someone else's broken link
    f = _link_finding(fix=True)
    assert f.status == "FAIL" and "did not make" in f.detail and own.is_symlink()


def test_outside_a_virtualenv_nothing_is_linked(bin_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(doctor, "in_virtualenv", lambda: False)
    f = _link_finding(fix=True)
    assert f.status == "note" and "not in a virtual environment" in f.detail
    assert not (bin_dir / "ffmpeg").exists()
