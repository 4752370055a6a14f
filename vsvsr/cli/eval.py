"""``vsvsr eval``: compare models (and bicubic) on HR ground truth, in the VSR papers' metrics.

The ground truth is a folder of frames (``--frames``), a video (``--video``) or a long
pseudo-video rendered from one photo (``--long KIND --source IMAGE``); with none of these, the
project's real evaluation clips (``real/*/`` of the shared data, never trained on: found through
``$VSVSR_SHARED_DATA`` or at ``../shared/data`` beside the repository). The LR input
is made with the training resize (antialiased bicubic) and rounded to 8 bits. Reported per
frame and as means: Y-PSNR and Y-SSIM (BT.601 luma, ``scale`` px border cropped) and tOF
(TecoGAN's temporal flow difference, HR px, lower is better); see
:mod:`vsvsr.evaluation.metrics` for the exact formulas. Needs PyTorch and OpenCV
(``pip install 'vsvsr[train]'``).

``--degrade SPEC`` makes a compressed-input benchmark: the LR is built from the HR frames by
the real-world degradation of training (blur, kernel, seeded noise, a real ffmpeg codec round
trip), e.g. ``h264:crf=28``, ``blur:sigma=0.5+h265:crf=30,preset=fast``, ``mpeg2:q=6``;
repeat it to evaluate each sequence under several (``clean`` is the plain LR). ``--html``
writes a self-contained comparison page (PSNR plot, crops of the worst, median and best
frames with a slider between bicubic, the models and the ground truth).

Examples::

    vsvsr eval --model rvsr-x4 --model bicubic --json out/eval.json --plot out/eval.png
    vsvsr eval --model runs/x/last.pt --model bicubic --long slow-pan --long fast-pan \\
        --source photo.png --length 300 --restart-at 150
    vsvsr eval --model rvsr-x2 --model bicubic --degrade clean --degrade h264:crf=28 \\
        --html out/report.html
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from vsvsr.cli._common import CommandError, add_precision_argument, parse_size, positive_int
from vsvsr.models.registry import DEFAULT_MODEL

NAME = "eval"
HELP = "Y-PSNR / Y-SSIM / tOF of models and bicubic on HR frames, a video or a long sequence"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from vsvsr.evaluation.data import LONG_KINDS

    g = p.add_argument_group("models")
    g.add_argument("--model", action="append", default=None, metavar="SPEC",
                   help="repeatable: 'bicubic', a built-in model name, a .onnx/.pth model file or "
                        f"a training checkpoint .pt (default: {DEFAULT_MODEL} and bicubic)")
    g.add_argument("--scale", type=positive_int, default=None,
                   help="SR factor (default: the first model's); every model must have it")
    g.add_argument("--backend", default="auto",
                   help="backend for model names and files: auto, openvino, ort, torch, "
                        "ort-cuda, torch-cuda (default auto); checkpoints run on PyTorch")
    add_precision_argument(g, "inference precision of OpenVINO and of the PyTorch CPU path "
                              "(checkpoints, --backend torch): auto = bf16 where the CPU has "
                              "AMX-BF16 or AVX512-BF16, f32 elsewhere; f32 forces fp32; ONNX "
                              "Runtime runs fp32 (docs/models.md: bf16 in eval and overfit)")
    g.add_argument("--threads", type=int, default=0,
                   help="inference threads for CPU backends (default 0: all cores)")
    d = p.add_argument_group("ground truth (repeatable; default: the real clips in "
                             "real/ of $VSVSR_SHARED_DATA or ../shared/data)")
    d.add_argument("--frames", action="append", default=[], type=Path, metavar="DIR",
                   help="a folder of HR frames (sorted .png/.jpg)")
    d.add_argument("--video", action="append", default=[], type=Path, metavar="FILE",
                   help="an HR video file (decoded with ffmpeg)")
    d.add_argument("--long", action="append", default=[], choices=LONG_KINDS, metavar="KIND",
                   help=f"a long sequence of camera motion over --source: {', '.join(LONG_KINDS)}")
    d.add_argument("--source", type=Path, default=None, metavar="IMAGE",
                   help="the photo for --long (an image, or a folder: its first frame)")
    d.add_argument("--length", type=positive_int, default=300, help="frames of a --long sequence "
                   "(default 300)")
    d.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                   help="HR size of a --long sequence (default: 70%% of the photo at 2x "
                        "supersampling)")
    d.add_argument("--seed", type=int, default=0,
                   help="seed of the --long camera paths and of the --degrade noise")
    d.add_argument("--degrade", action="append", default=[], metavar="SPEC",
                   help="repeatable: build the LR with this real-world degradation instead of "
                        "the plain resize, e.g. h264:crf=28, h265:crf=30,preset=fast, "
                        "mpeg2:q=6, blur:sigma=0.5+noise:sigma=2, clean; stages joined with "
                        "'+' (docs/real-world.md)")
    d.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                   help="use at most N frames of each folder or video")
    r = p.add_argument_group("how recurrent models run")
    r.add_argument("--restart-at", action="append", type=int, default=[], metavar="FRAME",
                   help="repeatable: restart the recurrence at this frame (a cold start "
                        "mid-sequence; dashed lines in the plot)")
    r.add_argument("--reset-every-frame", action="store_true",
                   help="ablation: zero the state before every frame (previous frame and step "
                        "count kept)")
    r.add_argument("--prev-is-current", action="store_true",
                   help="ablation: feed the current frame as the previous one")
    o = p.add_argument_group("output")
    o.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="write the report (per-frame values too) as JSON")
    o.add_argument("--plot", type=Path, default=None, metavar="PATH",
                   help="write a per-frame Y-PSNR plot (PNG)")
    o.add_argument("--html", type=Path, default=None, metavar="PATH",
                   help="write a self-contained HTML comparison report (PSNR plot, crops "
                        "of chosen frames with a slider between the models)")
    o.add_argument("--html-frames", type=positive_int, default=3, metavar="N",
                   help="frames shown in the HTML report per sequence (default 3: the worst, "
                        "median and best by the first model's Y-PSNR)")
    o.add_argument("--no-tof", action="store_true", help="skip tOF (the slowest metric)")


def _open_models(specs: list[str], scale: int | None, backend: str, threads: int,
                 precision: str = "auto") -> list[Any]:
    """Open every model; the first real model fixes the scale when --scale is absent."""
    from vsvsr.evaluation.models import BICUBIC, open_upscaler

    opened: list[Any] = []
    try:
        for spec in [s for s in specs if s != BICUBIC]:
            up = open_upscaler(spec, scale=scale, backend=backend, threads=threads,
                               precision=precision)
            opened.append(up)
            scale = up.scale
        if BICUBIC in specs:
            if scale is None:
                raise CommandError("vsvsr eval: with only bicubic, give --scale")
            opened.append(open_upscaler(BICUBIC, scale=scale))
    except BaseException:
        for up in opened:
            up.close()
        raise
    order = {s: i for i, s in enumerate(specs)}
    return sorted(opened, key=lambda u: order[u.label])


def _where(up: Any) -> str:
    """``torch-cpu bf16``: the backend, and the precision where the engine reports one."""
    precision = up.describe().get("precision")
    return f"{up.backend} {precision}" if precision else up.backend


def _degrade_specs(texts: list[str]) -> list[Any]:
    """The parsed ``--degrade`` values (a bad one raises, listing the accepted forms)."""
    from vsvsr.training.degrade_spec import parse_spec

    specs = list(dict.fromkeys(parse_spec(t) for t in texts))
    codecs = {s.codec for s in specs if s.codec is not None}
    if codecs:
        from vsvsr.training.degrade_codec import check_encoder

        for codec in codecs:
            check_encoder(codec)  # before any model runs
    return specs


def _sequences(args: argparse.Namespace, scale: int) -> list[Any]:
    from vsvsr.evaluation import data

    seqs = [data.folder_sequence(f, scale, args.max_frames) for f in args.frames]
    seqs += [data.video_sequence(v, scale, args.max_frames) for v in args.video]
    if args.long:
        source = args.source
        if source is None:
            real = data.real_clip_folders()
            if not real:
                raise CommandError("vsvsr eval: --long needs --source IMAGE (the photo the camera "
                                   "moves over)")
            source = max(real, key=lambda d: data.source_image(d).size)  # the largest photo
        image = data.source_image(source)
        for kind in args.long:
            seqs.append(data.long_eval_sequence(image, kind, args.length, args.size, scale,
                                                args.seed, source=str(source)))
    elif args.source is not None:
        raise CommandError("vsvsr eval: --source is for --long KIND; give --long too")
    if not seqs:
        real = data.real_clip_folders()
        if not real:
            raise CommandError("vsvsr eval: no ground truth given and no real clips in the "
                               "shared data's real/ folder; use --frames DIR, --video FILE or "
                               "--long KIND --source IMAGE")
        seqs = [data.folder_sequence(f, scale, args.max_frames) for f in real]
    if args.degrade_specs:
        seqs = [data.degraded_sequence(s, spec, args.seed) for s in seqs
                for spec in args.degrade_specs]
    return seqs


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vsvsr.evaluation.models import BICUBIC, RunOptions
    from vsvsr.evaluation.report import (
        check_sequence,
        evaluate_sequence,
        format_table,
        report_dict,
        write_json,
        write_plot,
    )
    from vsvsr.utils.lazy import lazy_import

    lazy_import("torch", "vsvsr eval (it degrades frames with the training resize)")
    with_tof = not args.no_tof
    if with_tof:
        lazy_import("cv2", "the tOF metric of vsvsr eval (or pass --no-tof)")
    if any(r < 0 for r in args.restart_at):
        raise CommandError(f"vsvsr eval: --restart-at frames must be >= 0, got {args.restart_at}")
    args.degrade_specs = _degrade_specs(args.degrade)
    specs = list(dict.fromkeys(args.model or [DEFAULT_MODEL, BICUBIC]))
    if args.threads > 0:
        lazy_import("torch", "vsvsr eval").set_num_threads(args.threads)
    precision = args.precision
    models = _open_models(specs, args.scale, args.backend, args.threads, precision)
    try:
        scale = models[0].scale
        seqs = _sequences(args, scale)
        for seq in seqs:
            check_sequence(seq)
        options = RunOptions(resets=frozenset(args.restart_at),
                             reset_every_frame=args.reset_every_frame,
                             prev_is_current=args.prev_is_current)
        longest = max(s.frames for s in seqs)
        late = [r for r in args.restart_at if r >= longest]
        if late:
            log.warning("vsvsr eval: --restart-at %s is past the end of every sequence", late)
        results = []
        with tqdm(total=sum(s.frames for s in seqs), unit="frame", disable=None,
                  desc="vsvsr eval") as bar:
            for seq in seqs:
                bar.set_postfix_str(seq.name)
                results.append(evaluate_sequence(models, seq, options, with_tof=with_tof,
                                                 progress=bar.update))
        print(f"x{scale}, {len(models)} models, {len(seqs)} sequences (Y-PSNR dB and Y-SSIM on "
              f"BT.601 luma with a {scale} px border; tOF in HR px, lower is better)")
        print(format_table(results, with_tof=with_tof))
        extra = {"backend": args.backend, "precision": precision,
                 "length": args.length, "seed": args.seed,
                 "max_frames": args.max_frames,
                 "degrade": [s.canonical() for s in args.degrade_specs]}
        report = report_dict(results, models, options, scale=scale, with_tof=with_tof,
                             extra=extra)
        if args.json is not None:
            write_json(args.json, report)
            print(f"report: {args.json}")
        if args.plot is not None:
            write_plot(args.plot, results, title=f"Y-PSNR per frame (x{scale})")
            print(f"plot: {args.plot}")
        if args.html is not None:
            from vsvsr.evaluation.html_report import eval_report

            meta = [f"models: {', '.join(f'{u.label} ({_where(u)})' for u in models)}",
                    "LR: " + (", ".join(s.canonical() for s in args.degrade_specs)
                              + f" (seed {args.seed})" if args.degrade_specs
                              else "clean (the training resize)")]
            eval_report(args.html, results, models, options, frames=args.html_frames,
                        title=f"vsvsr eval (x{scale})", meta=meta)
            print(f"html: {args.html}")
    finally:
        for up in models:
            up.close()
    return 0
