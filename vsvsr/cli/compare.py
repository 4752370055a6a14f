"""``vsvsr compare``: a real clip (no ground truth) upscaled by bicubic and each model, as an
HTML page of side-by-side crops.

The input is used as it is, as the LR: a video file (decoded with ffmpeg) or a folder of frames.
Evenly spaced frames are shown; for each, the crop where the models differ most from bicubic,
with a slider between any two of the input, bicubic and the models. One self-contained file
(images embedded, nothing fetched). Needs PyTorch for bicubic (``pip install 'vsvsr[train]'``).

Example::

    vsvsr compare ../shared/data/real/basicvsrpp_demo_000 --model rvsr-x4 --html out/cmp.html
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vsvsr.cli._common import CommandError, positive_int

NAME = "compare"
HELP = "HTML page comparing bicubic and models on a real clip without ground truth"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="a video file or a folder of frames (the LR)")
    p.add_argument("--model", action="append", required=True, metavar="SPEC",
                   help="repeatable: a built-in model name, a .onnx/.pth model file or a "
                        "training checkpoint .pt (bicubic is always added); one scale")
    p.add_argument("--html", type=Path, required=True, metavar="PATH",
                   help="the report to write")
    p.add_argument("--frames", type=positive_int, default=3, metavar="N",
                   help="frames shown, evenly spaced (default 3)")
    p.add_argument("--crop", type=positive_int, default=192, metavar="PX",
                   help="side of the crops in output px (default 192)")
    p.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                   help="read at most N frames of the input")
    p.add_argument("--backend", default="auto",
                   help="backend for model names and files: auto, ort, torch, ort-cuda, "
                        "torch-cuda (default auto)")
    p.add_argument("--threads", type=int, default=0,
                   help="inference threads for CPU backends (default 0: all cores)")


def run(args: argparse.Namespace) -> int:
    from vsvsr.cli.eval import _open_models
    from vsvsr.evaluation import data
    from vsvsr.evaluation.html_report import compare_report
    from vsvsr.evaluation.models import BICUBIC
    from vsvsr.utils.lazy import lazy_import

    lazy_import("torch", "vsvsr compare (the bicubic baseline)")
    src: Path = args.input
    if src.is_dir():
        frames = data.load_frames(src, args.max_frames)
    elif src.is_file():
        frames = data.load_video(src, args.max_frames)
    else:
        raise CommandError(f"vsvsr compare: {src} is neither a video file nor a folder of frames")
    specs = list(dict.fromkeys([BICUBIC, *[m for m in args.model if m != BICUBIC]]))
    if len(specs) < 2:
        raise CommandError("vsvsr compare: give at least one --model besides bicubic")
    if args.threads > 0:
        lazy_import("torch", "vsvsr compare").set_num_threads(args.threads)
    models = _open_models(specs, None, args.backend, args.threads)
    try:
        meta = [f"models: {', '.join(u.label + ' (' + u.backend + ')' for u in models)}",
                f"input: {src}"]
        compare_report(args.html, src.name if src.is_dir() else src.stem, str(src), frames,
                       models, frames=args.frames, crop=args.crop,
                       title=f"vsvsr compare: {src.name} (x{models[0].scale})", meta=meta)
    finally:
        for up in models:
            up.close()
    print(f"html: {args.html}")
    return 0
