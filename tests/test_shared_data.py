"""Shared data is found relative to the repository or through VSVSR_SHARED_DATA, never by an
absolute path of some machine; without it, the error says what to pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vsvsr.utils import shared_data
from vsvsr.utils.shared_data import ENV_VAR, SharedDataError, shared_data_dir, shared_data_root

ROOT = Path(__file__).resolve().parents[1]
#: Absolute path prefixes of the development machines (spelled in two pieces so that this file
#: does not match itself).
FORBIDDEN = ("/" + "work/",)


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in out.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            data = path.read_bytes()
            if b"\0" not in data[:8192]:  # text only: the shipped weights carry training records
                files.append(path)
    return files


def test_no_absolute_development_paths_in_tracked_files() -> None:
    files = _tracked_text_files()
    assert len(files) > 50
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}"
            for p in files for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
            if any(f in line for f in FORBIDDEN)]
    assert not hits, "absolute paths of a development machine:\n" + "\n".join(hits)


def test_env_var_names_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real" / "clip").mkdir(parents=True)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert shared_data_root() == tmp_path
    assert shared_data_dir("real", what="t", instead="--x") == tmp_path / "real"
    with pytest.raises(SharedDataError, match=r"t: .*train_images does not exist; pass --x, or "
                                              rf"set {ENV_VAR}"):
        shared_data_dir("train_images", what="t", instead="--x")


def test_env_var_that_is_not_a_folder_is_an_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "typo"))
    with pytest.raises(SharedDataError, match="typo is not a folder"):
        shared_data_root()


def test_beside_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    repo = tmp_path / "checkout"
    repo.mkdir()
    monkeypatch.setattr(shared_data, "_REPO_ROOT", repo)
    assert shared_data.checkout_data_dir() is None  # no setup.py: an installed package
    (repo / "setup.py").write_text("")
    assert shared_data.checkout_data_dir() == tmp_path / "shared" / "data"
    assert shared_data_root() is None
    with pytest.raises(SharedDataError, match=f"no shared data folder here; pass --y, or set "
                                              f"{ENV_VAR}"):
        shared_data_dir("real", what="t", instead="--y")
    (tmp_path / "shared" / "data" / "real").mkdir(parents=True)
    assert shared_data_dir("real", what="t", instead="--y") == tmp_path / "shared/data/real"


def test_users_get_what_to_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vsvsr eval's default clips and vsvsr train's default photos, on a machine without them."""
    from vsvsr.evaluation.data import real_clip_folders
    from vsvsr.training.__main__ import build_parser, config_from_args

    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(SharedDataError, match="vsvsr eval: .*pass --frames DIR, --video FILE"):
        real_clip_folders()
    args = build_parser().parse_args(["--out", str(tmp_path / "run"), "--minutes", "1"])
    with pytest.raises(SharedDataError, match=r"vsvsr train: .*pass --data DIR \(photos\)"):
        config_from_args(args)
    args = build_parser().parse_args(["--out", str(tmp_path / "run"), "--minutes", "1",
                                      "--data", str(tmp_path)])
    assert config_from_args(args).data_dirs == (str(tmp_path),)


def test_reports_name_shared_data_portably(tmp_path, monkeypatch) -> None:
    """Eval reports record shared clips as ../shared/data/..., never a machine's location."""
    from vsvsr.utils.shared_data import ENV_VAR, portable_path

    (tmp_path / "real" / "clip").mkdir(parents=True)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert portable_path(tmp_path / "real" / "clip") == "../shared/data/real/clip"
    assert portable_path("clips/mine.mkv") == "clips/mine.mkv"
    other = tmp_path.parent / "elsewhere.mkv"
    assert portable_path(other) == str(other)
