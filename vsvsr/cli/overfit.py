"""``vsvsr overfit``: turn one HR video into a content-aware model pack (STDO / JSTDO).

    vsvsr overfit hr_frames/ --scale 4 --chunks 4 --out video.vsvsr            # STDO
    vsvsr overfit hr.mkv --scale 4 --chunks 4 --joint --out video.vsvsr         # JSTDO
    vsvsr overfit hr.mkv --scale 4 --chunks 4 --method time --out td.vsvsr      # baseline
    vsvsr overfit hr.mkv --scale 4 --method general --out general.vsvsr         # baseline

Then, in a .vpy script: ``clip = vsvsr.overfit(lr_clip, pack="video.vsvsr")``.

The HR frames are degraded with the project's resize; every LR patch is scored with the
general model; the patches are split into PSNR quantile chunks and one small model is trained
per chunk (or one, with --joint). An interrupted run continues from OUT.work/. Needs
PyTorch (pip install 'vsvsr[train]').
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vsvsr.cli._common import add_precision_argument, positive_int

NAME = "overfit"
HELP = "make a content-aware overfit model pack (STDO/JSTDO) for one video (needs PyTorch)"


def _grid(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad grid {text!r}: use COLSxROWS, e.g. 10x5") from None
    return cols, rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", type=Path, help="the HR video: a video file or a folder of frames")
    p.add_argument("--out", type=Path, required=True, help="the pack to write (.vsvsr)")
    p.add_argument("--scale", type=int, choices=(2, 3, 4), required=True)
    p.add_argument("--chunks", type=positive_int, default=4,
                   help="K: PSNR chunks (STDO models; JSTDO sampling groups; time segments)")
    p.add_argument("--backbone", default="espcn", choices=("espcn", "wdsr-s"))
    p.add_argument("--joint", action="store_true", help="JSTDO: one model, data-aware sampling")
    p.add_argument("--method", choices=("stdo", "jstdo", "time", "general"),
                   help="stdo (default), jstdo (= --joint), time (time-division baseline), "
                        "general (the general model alone)")
    p.add_argument("--fractions", help="JSTDO sampling fraction per chunk, e.g. 1,0.67,0.33,0 "
                                       "(default: 1 for chunk 0, 0 for the last, linear between)")
    p.add_argument("--grid", type=_grid, help="patch grid COLSxROWS (default: the paper's, "
                                              "20x10 for x2, 10x5 for x4)")
    p.add_argument("--general", type=Path, help="general model .pth (default: the shipped one)")
    p.add_argument("--epochs", type=float, default=50.0, help="epochs per model (default 50)")
    p.add_argument("--steps", type=positive_int, help="steps per model (overrides --epochs)")
    p.add_argument("--batch", type=positive_int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--init", choices=("general", "scratch"), default="general",
                   help="start each model from the general model's weights (default) or scratch")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    add_precision_argument(p, "precision of the patch scoring and the training: auto = bf16 "
                              "autocast + channels_last where the CPU has AMX-BF16 or "
                              "AVX512-BF16, f32 elsewhere; f32 forces fp32 (docs/stdo.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-frames", type=positive_int)
    p.add_argument("--work", type=Path, help="work folder for resuming (default OUT.work/)")
    p.add_argument("--eval", action="store_true",
                   help="play the pack back (ONNX Runtime) and print full-frame Y-PSNR")
    p.add_argument("--json", type=Path, help="write the report as JSON")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from vsvsr.cli._common import CommandError
    from vsvsr.utils.lazy import lazy_import

    lazy_import("torch", "vsvsr overfit")
    from vsvsr.stdo.api import overfit
    from vsvsr.stdo.chunking import parse_fractions
    from vsvsr.stdo.train import TrainSettings
    from vsvsr.utils.atomic import atomic_write_bytes

    method = args.method or ("jstdo" if args.joint else "stdo")
    if args.joint and method != "jstdo":
        raise CommandError(f"--joint and --method {method} contradict each other")
    if args.fractions and method != "jstdo":
        raise CommandError("--fractions only applies to JSTDO (--joint)")
    fractions = parse_fractions(args.fractions, args.chunks) if args.fractions else None
    settings = TrainSettings(epochs=args.epochs, steps=args.steps, batch=args.batch, lr=args.lr,
                             seed=args.seed, threads=args.threads, init=args.init,
                             precision=args.precision)
    rep = overfit(args.source, scale=args.scale, out=args.out, method=method,
                  chunks=args.chunks, backbone=args.backbone, grid=args.grid,
                  fractions=fractions, general=args.general, settings=settings, work=args.work,
                  max_frames=args.max_frames, evaluate=args.eval,
                  progress=not args.no_progress)
    print(f"wrote {rep.pack}: {rep.method}, {rep.models} model(s) x {rep.params_per_model} "
          f"params, {rep.model_bytes / 1024:.1f} KiB of ONNX, label map "
          f"{rep.label_bytes_per_frame:.2f} bytes/frame, {rep.frames} frames "
          f"{rep.lr_size[0]}x{rep.lr_size[1]} -> x{rep.scale}, grid {rep.grid[0]}x{rep.grid[1]}, "
          f"trained {rep.train_seconds:.1f} s in {rep.precision}")
    if rep.psnr is not None:
        print(f"full-frame Y-PSNR {rep.psnr:.3f} dB (bicubic {rep.bicubic_psnr:.3f} dB, "
              f"{rep.psnr - rep.bicubic_psnr:+.3f} dB)")
    if args.json:
        atomic_write_bytes(args.json, json.dumps(rep.to_dict(), indent=1).encode())
    return 0
