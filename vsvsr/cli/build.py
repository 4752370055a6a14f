"""``vsvsr build``: TensorRT engines for the GPU this runs on.

    vsvsr build --model rvsr-x2 --size 960x540 --size 1920x1080 --precision fp16 --out engines/
    vsvsr upscale in.mkv out.mkv --model rvsr-x2 --backend tensorrt

One static engine per --size (the fastest and most robust); --min-size/--max-size build one
dynamic engine instead. Each engine gets a JSON manifest beside it (model hash, shapes,
precision, TensorRT version, GPU, compute capability, driver) through which the runtime finds
it. Concurrent builds of the same engine wait for each other; a crash never leaves a partial
engine. Without TensorRT or a GPU, the command still checks and writes the ONNX and prints
the equivalent trtexec command line, and exits with status 3 (``EXIT_NOT_BUILT``) so that a
script can tell "built" (0) from "nothing built here" (3) and from an error (1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vsvsr.cli._common import parse_size
from vsvsr.models.registry import DEFAULT_MODEL

NAME = "build"
HELP = "build TensorRT engines for this GPU (or print the trtexec command and exit 3)"
#: Exit status when no engine could be built here (no TensorRT or no GPU): the ONNX was
#: checked and the trtexec lines printed, but there is nothing to run.
EXIT_NOT_BUILT = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"built-in model name or .onnx/.pth file (default {DEFAULT_MODEL})")
    p.add_argument("--size", type=parse_size, action="append", dest="sizes",
                   help="LR input size WxH, repeatable: one engine each (default 960x540)")
    p.add_argument("--min-size", type=parse_size, default=None,
                   help="build one dynamic engine from this size ...")
    p.add_argument("--max-size", type=parse_size, default=None, help="... up to this size")
    p.add_argument("--precision", choices=("fp16", "fp32", "bf16"), default="fp16")
    p.add_argument("--opt-level", type=int, default=3, help="builder optimization level 0-5")
    p.add_argument("--workspace", type=int, default=None, metavar="MiB",
                   help="workspace memory limit in MiB (default: TensorRT decides)")
    p.add_argument("--hw-compat", choices=("none", "ampere-plus", "same-compute-capability"),
                   default="none", help="hardware compatibility (slower, but portable)")
    p.add_argument("--out", type=Path, default=Path("engines"), help="output folder (engines/)")


def run(args: argparse.Namespace) -> int:
    from plugin_build.trt_build import build_engines
    from vsvsr.runtime.engine_key import BuildOptions

    dynamic = args.min_size is not None or args.max_size is not None
    options = BuildOptions(sizes=tuple(args.sizes or [(960, 540)]), dynamic=dynamic,
                           min_size=args.min_size, max_size=args.max_size,
                           precision=args.precision, opt_level=args.opt_level,
                           workspace_mib=args.workspace, hw_compat=args.hw_compat)
    reports = build_engines(args.model, options, args.out)
    for r in reports:
        for e in r.engines:
            print(f"{r.model}: {e.engine} ({'built' if e.built else 'up to date'})")
    return EXIT_NOT_BUILT if any(r.unavailable for r in reports) else 0
