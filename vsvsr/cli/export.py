"""``vsvsr export``: a training checkpoint to a model (``NAME.onnx`` + ``NAME.pth``).

    vsvsr export runs/x4-rvsrf-pi/last.pt --name my-x4 --out models/
    vsvsr upscale in.mkv out.mkv --model models/my-x4.onnx

Needs PyTorch and onnx (``pip install 'vsvsr[train]'``). ONNX Runtime is checked against
PyTorch after the export; the largest difference is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "export"
HELP = "export a training checkpoint to ONNX + .pth (needs PyTorch)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="a training checkpoint (RUN/last.pt)")
    p.add_argument("--name", required=True, help="model name (file stem and descriptor name)")
    p.add_argument("--out", type=Path, default=Path("."), help="output folder (default: .)")


def run(args: argparse.Namespace) -> int:
    from plugin_build.export_checkpoint import export_checkpoint
    from vsvsr.errors import ModelFileError

    if not args.checkpoint.is_file():
        raise ModelFileError(f"no checkpoint at {args.checkpoint}; give a run's last.pt")
    rep = export_checkpoint(args.checkpoint, args.name, args.out)
    print(f"wrote {rep.onnx} and {rep.pth}; max |onnx - torch|: random inputs "
          f"{rep.max_abs_random:.2e}, network's own state {rep.max_abs_real:.2e}")
    return 0
