"""``vsvsr models``: the built-in models, their scale and their files.

The scale is read from the model's own descriptor (ONNX metadata, or the .pth when only
PyTorch can read it); a model whose files are absent is listed as not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

from vsvsr.errors import VsvsrError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.models.registry import BUILTIN_MODELS, DEFAULT_MODEL, WEIGHTS_DIR

NAME = "models"
HELP = "list the built-in models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def read_descriptor(onnx: Path | None, pth: Path | None) -> ModelDescriptor | None:
    """The descriptor from whichever file this install can read, else None."""
    if onnx is not None and importlib.util.find_spec("onnxruntime") is not None:
        from vsvsr.runtime.ort_backend import read_onnx_descriptor

        return read_onnx_descriptor(onnx)
    if pth is not None and importlib.util.find_spec("torch") is not None:
        import torch

        blob = torch.load(pth, map_location="cpu", weights_only=True)
        return ModelDescriptor.from_json(blob["descriptor"], source=str(pth))
    return None


def collect() -> list[dict[str, Any]]:
    rows = []
    for name in BUILTIN_MODELS.names():
        entry = BUILTIN_MODELS.get(name)
        files = {kind: p for kind, p in (("onnx", entry.onnx), ("pth", entry.pth)) if p.is_file()}
        row: dict[str, Any] = {"name": name, "default": name == DEFAULT_MODEL,
                               "description": entry.description, "scale": None,
                               "files": {k: {"path": str(p), "bytes": p.stat().st_size}
                                         for k, p in files.items()}}
        try:
            d = read_descriptor(files.get("onnx"), files.get("pth"))
            if d is not None:
                row["scale"] = d.scale
                row["state_channels"] = d.state_channels
        except VsvsrError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"built-in models (files in {WEIGHTS_DIR}):"]
    for r in rows:
        scale = f"x{r['scale']}" if r["scale"] else "x?"
        mark = " (default)" if r["default"] else ""
        lines.append(f"  {r['name']:<10} {scale:<4} {r['description']}{mark}")
        if not r["files"]:
            lines.append("             not installed: no .onnx or .pth file")
        for kind, f in r["files"].items():
            lines.append(f"             {kind:<5} {f['path']} ({f['bytes'] / 1e6:.2f} MB)")
        if "error" in r:
            lines.append(f"             error: {r['error']}")
    lines.append("Any vsvsr .onnx/.pth file can be passed as --model PATH too.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    rows = collect()
    print(json.dumps(rows, indent=2) if args.json else format_rows(rows))
    return 0
