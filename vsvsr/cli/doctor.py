"""``vsvsr doctor``: check this installation and fix what is safe to fix, saying what it did.

    vsvsr doctor            # check vspipe, ffmpeg, VapourSynth, backends, models; fix; report
    vsvsr doctor --check    # only look

It checks that VapourSynth and its bestsource plugin load, that ``vspipe`` runs a script that
imports vsvsr, that an ``ffmpeg`` sits beside ``vspipe`` (the README's pipe lines call it
there), which backends can run, and that the built-in models load. Two fixes, both limited to
this Python environment and the user's own VapourSynth config:

* vspipe cannot start Python ("Failed to initialize VSScript", the state of any fresh
  ``pip install``): it runs ``python -m vapoursynth config``, which records this environment's
  Python for its libvsscript in ``~/.config/vapoursynth/vapoursynth.toml`` (one entry per
  environment; the others stay as they are). ``scripts/setup.sh`` runs this command.
* no ``ffmpeg`` in the environment's ``bin/``: it links the binary imageio-ffmpeg ships there
  (only inside a virtual environment, never in a system folder; an ffmpeg that is already
  there and is not such a link is left alone).

Exit status: 0 when everything needed works (after the fixes), 1 when something is still
wrong; each such line says what to do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

NAME = "doctor"
HELP = "check the installation (vspipe, ffmpeg, backends, models) and fix what is safe"

#: A script that needs what users' scripts need: VSScript, VapourSynth's core, vsvsr.
_PROBE_SCRIPT = "import vapoursynth as vs\nimport vsvsr  # noqa: F401\n" \
                "vs.core.std.BlankClip(width=16, height=16, length=1).set_output()\n"


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    status: str  #: "ok", "fixed", "note" (fine, but worth knowing) or "FAIL"
    what: str
    detail: str


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="only check; change nothing")


def run(args: argparse.Namespace) -> int:
    findings = diagnose(fix=not args.check)
    for f in findings:
        print(f"{f.status:<6} {f.what}: {f.detail}")
    failed = [f for f in findings if f.status == "FAIL"]
    fixed = sum(f.status == "fixed" for f in findings)
    if failed:
        print(f"vsvsr doctor: {len(failed)} problem(s) left (see the FAIL lines)")
        return 1
    print("vsvsr doctor: all good" + (f" ({fixed} fixed)" if fixed else ""))
    return 0


def diagnose(*, fix: bool) -> list[Finding]:
    """Every check, in order; with ``fix``, the safe fixes are applied on the way."""
    return [*check_vapoursynth(), check_vspipe(fix=fix), *check_ffmpeg(fix=fix),
            *check_backends(), *check_models()]


def scripts_dir() -> Path:
    """The environment's ``bin/`` (where pip put ``vsvsr`` and ``vspipe``)."""
    return Path(sysconfig.get_path("scripts"))


def in_virtualenv() -> bool:
    return sys.prefix != sys.base_prefix


def check_vapoursynth() -> list[Finding]:
    try:
        import vapoursynth as vs
    except ImportError as exc:
        return [Finding("FAIL", "VapourSynth", f"cannot import it ({exc}); pip install vsvsr "
                        "installs it (pip install 'vapoursynth>=74')")]
    out = [Finding("ok", "VapourSynth", f"R{vs.core.core_version.release_major}, Python "
                   f"{sys.version.split()[0]} at {sys.executable}")]
    if hasattr(vs.core, "bs"):
        out.append(Finding("ok", "bestsource", "the source filter (core.bs) loads"))
    else:
        out.append(Finding("FAIL", "bestsource", "core.bs is missing; pip install "
                           "vapoursynth-bestsource"))
    return out


def _find_vspipe() -> str | None:
    beside = scripts_dir() / "vspipe"
    return str(beside) if beside.is_file() else shutil.which("vspipe")


def _run_probe(vspipe: str) -> tuple[bool, str]:
    """(works, last line of vspipe's complaint) for a script that imports vsvsr."""
    with tempfile.TemporaryDirectory(prefix="vsvsr-doctor-") as tmp:
        script = Path(tmp) / "probe.vpy"
        script.write_text(_PROBE_SCRIPT)
        try:
            proc = subprocess.run([vspipe, "--info", str(script), "-"], capture_output=True,
                                  text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    if proc.returncode == 0 and any(ln.startswith("Width") for ln in lines):
        return True, ""
    return False, lines[-1] if lines else f"exit status {proc.returncode}"


def check_vspipe(*, fix: bool) -> Finding:
    vspipe = _find_vspipe()
    if vspipe is None:
        return Finding("FAIL", "vspipe", "not found beside this Python nor on PATH; it comes "
                       "with the vapoursynth package: pip install 'vapoursynth>=74'")
    works, why = _run_probe(vspipe)
    if works:
        return Finding("ok", "vspipe", f"{vspipe} runs scripts that import vsvsr")
    # The environment's Python by its real folder: VSScript looks its entry up by the real
    # path of libvsscript, which a symlinked environment folder would otherwise hide.
    python = Path(sys.executable).parent.resolve() / Path(sys.executable).name
    config = [str(python), "-m", "vapoursynth", "config"]
    if not fix:
        return Finding("FAIL", "vspipe", f"{vspipe} cannot run a script ({why}); run "
                       f"'vsvsr doctor' (it runs '{' '.join(config)}') to fix it")
    proc = subprocess.run(config, capture_output=True, text=True, timeout=120, check=False)
    said = (proc.stdout.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    works, why_after = _run_probe(vspipe)
    if works:
        return Finding("fixed", "vspipe", f"it could not start Python ({why}); ran "
                       f"'{' '.join(config)}': {said}; {vspipe} now runs scripts that import "
                       "vsvsr")
    return Finding("FAIL", "vspipe", f"{vspipe} cannot run a script ({why_after}), also after "
                   f"'{' '.join(config)}' ({said}); run 'vapoursynth check-env' for details")


def _is_our_link(link: Path) -> bool:
    """A symlink this command made: into imageio-ffmpeg's binaries (possibly dangling now)."""
    return link.is_symlink() and "imageio_ffmpeg" in os.readlink(link)


def link_ffmpeg(target: str, bin_dir: Path) -> Path:
    """Make ``bin_dir/ffmpeg`` a symlink to ``target`` (replacing only a link of ours)."""
    link = bin_dir / "ffmpeg"
    tmp = bin_dir / f".ffmpeg.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)  # atomic: never a moment without the old link
    return link


def check_ffmpeg(*, fix: bool) -> list[Finding]:
    from vsvsr.encode.ffmpeg import ffmpeg_version, find_ffmpeg_info
    from vsvsr.errors import VsvsrError

    try:
        info = find_ffmpeg_info()
        version = ffmpeg_version(info.path)
    except VsvsrError as exc:
        return [Finding("FAIL", "ffmpeg", str(exc))]
    out = [Finding("ok", "ffmpeg", f"{version} ({info.path}, from {info.source})")]
    bin_dir = scripts_dir()
    link = bin_dir / "ffmpeg"
    where = f"{link} (the README's pipe lines call it)"
    if link.exists() and not (_is_our_link(link) and os.path.realpath(link) !=
                              os.path.realpath(info.path)):
        mine = _is_our_link(link)
        out.append(Finding("ok", "ffmpeg link", f"{where} is there" + (
            "" if mine else " (an ffmpeg of your own: left alone)")))
        return out
    if not in_virtualenv():
        out.append(Finding("note", "ffmpeg link", f"not in a virtual environment, so nothing is "
                           f"linked into {bin_dir}; call {info.path} or put it on your PATH"))
        return out
    if not fix:
        out.append(Finding("FAIL", "ffmpeg link", f"{where} is missing; 'vsvsr doctor' links "
                           f"it to {info.path}"))
        return out
    if link.is_symlink() and not _is_our_link(link):  # a dangling link of someone else's
        out.append(Finding("FAIL", "ffmpeg link", f"{link} is a broken link that vsvsr did not "
                           f"make; remove it and run 'vsvsr doctor' again"))
        return out
    try:
        link_ffmpeg(info.path, bin_dir)
    except OSError as exc:
        out.append(Finding("FAIL", "ffmpeg link", f"cannot link {link} -> {info.path}: {exc}"))
        return out
    out.append(Finding("fixed", "ffmpeg link", f"linked {link} -> {info.path}"))
    return out


def check_backends() -> list[Finding]:
    from vsvsr.runtime.select import backend_status

    out = []
    for s in backend_status():
        if s.available:
            out.append(Finding("ok", f"backend {s.name}", s.detail))
        else:
            # Only the CPU backend is required; the others are optional extras or hardware.
            out.append(Finding("FAIL" if s.name == "ort" else "note", f"backend {s.name}",
                               f"not available: {s.detail}"))
    return out


def check_models() -> list[Finding]:
    from vsvsr.errors import VsvsrError
    from vsvsr.models.registry import BUILTIN_MODELS, resolve_model
    from vsvsr.runtime.ort_backend import read_onnx_descriptor

    out = []
    for name in BUILTIN_MODELS.names():
        try:
            files = resolve_model(name)
            kinds = "+".join(k for k, p in (("onnx", files.onnx), ("pth", files.pth)) if p)
            if files.onnx is None:
                raise VsvsrError(f"no .onnx file in {BUILTIN_MODELS.get(name).onnx.parent}; "
                                 "reinstall vsvsr")
            d = read_onnx_descriptor(files.onnx)
        except (VsvsrError, ImportError) as exc:
            out.append(Finding("FAIL", f"model {name}", str(exc)))
            continue
        out.append(Finding("ok", f"model {name}", f"x{d.scale}, {kinds} ({files.onnx.parent})"))
    return out
