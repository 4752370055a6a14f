"""A user's install: the wheel built from this tree, pip-installed into a fresh venv (no system
site-packages, PyTorch not included), gives a working ``vsvsr`` with its models, and after
``vsvsr doctor`` a working ``vspipe`` and ``ffmpeg``: the README's script and pipe line run.

Slow (``make test-slow``): pip downloads the runtime dependencies (about 600 MB; pip's cache
makes later runs fast). VapourSynth's per-user config goes to a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: int = 1800,
         shell: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd if not shell else ["bash", "-o", "pipefail", "-c", cmd[0]],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _tracked_copy(dest: Path) -> Path:
    """The files git tracks (what a clone has), copied to ``dest``."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_wheel_in_a_fresh_venv_gives_a_working_install(tmp_path: Path) -> None:
    from test_readme import command_lines, fenced_blocks, readme_section

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # not the user's VapourSynth config
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))
    dist = tmp_path / "dist"
    src = _tracked_copy(tmp_path / "src")  # what a clone has: no build/ leftovers, no .venv
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
         env, tmp_path)
    (wheel,) = dist.glob("vsvsr-*.whl")
    venv = tmp_path / "venv"
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    _run([str(base if base.is_file() else sys.executable), "-m", "venv", str(venv)], env,
         tmp_path)
    bin_dir = venv / "bin"
    _run([str(bin_dir / "pip"), "install", "-q", str(wheel)], env, tmp_path)

    where = _run([str(bin_dir / "python"), "-c", "import vsvsr, importlib.util; "
                  "print(vsvsr.__file__); print(importlib.util.find_spec('torch'))"],
                 env, tmp_path).stdout.split()
    assert where[0].startswith(str(venv)) and where[1] == "None"  # installed copy, no PyTorch

    doctor = _run([str(bin_dir / "vsvsr"), "doctor"], env, tmp_path).stdout
    assert "fixed  vspipe" in doctor and "vapoursynth config" in doctor, doctor
    assert "fixed  ffmpeg link" in doctor and (bin_dir / "ffmpeg").is_file(), doctor
    assert "ok     model rvsr-x2" in doctor and "ok     model rvsr-x4" in doctor, doctor
    assert doctor.strip().endswith("(2 fixed)"), doctor

    demo = tmp_path / "demo"
    _run([str(bin_dir / "vsvsr"), "demo", "--out", str(demo), "--frames-per-scene", "2",
          "--no-progress"], env, tmp_path)
    assert (demo / "summary.json").is_file() and (demo / "demo_upscaled.mkv").is_file()

    # The README's own script and pipe line, with this venv as .venv.
    work = tmp_path / "user"
    work.mkdir()
    (work / ".venv").symlink_to(venv)
    blocks = fenced_blocks(readme_section("Use in a `.vpy` script"))
    (script,) = [body for lang, body in blocks if lang == "python"]
    (work / "script.vpy").write_text(script)
    (demo / "sample_lr_x2.mkv").rename(work / "in.mkv")
    pipe = next(ln for lang, body in blocks if lang == "sh" for ln in command_lines(body)
                if "script.vpy" in ln)
    _run([pipe], env, work, shell=True)
    frames = _run([str(bin_dir / "python"), "-c", "import sys, vapoursynth as vs; "
                   "c = vs.core.bs.VideoSource(sys.argv[1]); print(c.width, c.height, "
                   "c.num_frames)", str(work / "out.mkv")], env, work).stdout.split()
    assert frames == ["512", "288", "8"]
