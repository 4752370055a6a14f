"""``vsvsr info``: what this install can run, and why not where it cannot.

Lists every backend with its availability and reason, the backend ``auto`` picks for the
default model (with OpenVINO: the precision it runs and why; without: why not), and the
versions of vsvsr, Python, VapourSynth, onnxruntime, OpenVINO, PyTorch and bestsource, and the
ffmpeg binary in use. Missing packages are reported, never fatal.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import sys
from typing import Any

from vsvsr import __version__
from vsvsr.errors import VsvsrError
from vsvsr.models.registry import DEFAULT_MODEL

NAME = "info"
HELP = "show backends, versions and the ffmpeg in use"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"model whose auto backend to show (default {DEFAULT_MODEL})")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _version(module: str, *dists: str) -> str | None:
    """The installed version of ``module`` (None when it cannot be imported)."""
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    for dist in dists or (module,):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown version"


def _vapoursynth() -> dict[str, Any]:
    if _version("vapoursynth") is None:
        return {"version": None, "detail": "not installed: pip install vapoursynth"}
    try:
        import vapoursynth as vs

        core = vs.core
        return {"version": f"R{core.core_version.release_major}",
                "threads": core.num_threads,
                "bestsource": hasattr(core, "bs"),
                "plugins": sorted(p.namespace for p in core.plugins())}
    except Exception as exc:  # a broken install: report it rather than fail
        return {"version": None, "detail": f"cannot load VapourSynth: {exc}"}


def collect(model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """Everything ``vsvsr info`` shows, as a JSON-ready dict."""
    from vsvsr.encode.ffmpeg import ffmpeg_version, find_ffmpeg_info
    from vsvsr.runtime.select import backend_status, pick_backend

    report: dict[str, Any] = {
        "vsvsr": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "vapoursynth": _vapoursynth(),
        "onnxruntime": _version("onnxruntime", "onnxruntime", "onnxruntime-gpu"),
        "openvino": _version("openvino"),
        "torch": _version("torch"),
    }
    if report["onnxruntime"]:
        from vsvsr.runtime.ort_backend import ort_providers

        report["onnxruntime_providers"] = ort_providers()
    try:
        ff = find_ffmpeg_info()
        report["ffmpeg"] = {"path": ff.path, "source": ff.source,
                            "version": ffmpeg_version(ff.path)}
    except VsvsrError as exc:
        report["ffmpeg"] = {"path": None, "detail": str(exc)}
    report["backends"] = [{"name": s.name, "available": s.available, "detail": s.detail}
                          for s in backend_status()]
    try:
        from vsvsr.models.registry import resolve_model

        report["auto"] = {"model": model, "backend": pick_backend("auto", resolve_model(model))}
        report["auto"].update(_openvino_note(report["auto"]["backend"], report["backends"]))
    except VsvsrError as exc:
        report["auto"] = {"model": model, "backend": None, "detail": str(exc)}
    return report


def _openvino_note(picked: str, backends: list[dict[str, Any]]) -> dict[str, str]:
    """The precision OpenVINO runs and why, or why ``auto`` passed over it."""
    from vsvsr.runtime.select import BACKENDS

    ov = next(b for b in backends if b["name"] == "openvino")
    if picked == "openvino":
        from vsvsr.runtime.openvino_backend import choose_precision

        choice = choose_precision("auto")
        return {"precision": choice.precision, "why": choice.reason}
    if BACKENDS.index(picked) > BACKENDS.index("openvino") and not ov["available"]:
        return {"why": f"openvino not used: {ov['detail']}"}
    return {}


def format_report(r: dict[str, Any]) -> str:
    vsinfo = r["vapoursynth"]
    lines = [f"vsvsr        {r['vsvsr']} (Python {r['python']}, {r['platform']})"]
    if vsinfo.get("version"):
        bs = "yes" if vsinfo["bestsource"] else "no (pip install vapoursynth-bestsource)"
        lines.append(f"VapourSynth  {vsinfo['version']}, {vsinfo['threads']} threads, "
                     f"bestsource: {bs}")
    else:
        lines.append(f"VapourSynth  {vsinfo['detail']}")
    if r["onnxruntime"]:
        lines.append(f"onnxruntime  {r['onnxruntime']} "
                     f"({', '.join(r.get('onnxruntime_providers', []))})")
    else:
        lines.append("onnxruntime  not installed: pip install onnxruntime")
    lines.append(f"openvino     {r['openvino'] or 'not installed: pip install openvino'}")
    torch = r["torch"] or "not installed (optional: pip install 'vsvsr[train]')"
    lines.append(f"torch        {torch}")
    ff = r["ffmpeg"]
    lines.append(f"ffmpeg       {ff['path']} ({ff['source']}; {ff['version']})" if ff["path"]
                 else f"ffmpeg       {ff['detail']}")
    lines.append("")
    lines.append("backends:")
    for b in r["backends"]:
        lines.append(f"  {b['name']:<11} {'yes' if b['available'] else 'no ':<4} {b['detail']}")
    auto = r["auto"]
    lines.append("")
    if auto["backend"]:
        line = f"auto picks {auto['backend']} for {auto['model']}"
        if auto.get("precision"):
            line += f", in {auto['precision']} ({auto['why']})"
        elif auto.get("why"):
            line += f" ({auto['why']})"
        lines.append(line)
    else:
        lines.append(f"auto has no backend for {auto['model']}: {auto['detail']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = collect(args.model)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
