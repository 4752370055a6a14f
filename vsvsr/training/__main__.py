"""``vsvsr train`` / ``python -m vsvsr.training``: train a vsvsr network (RI- or PI-BPTT).

Examples::

    vsvsr train --scale 4 --arch rvsrf --scheme pi --out runs/x4-flow --minutes 60 --resume
    vsvsr train --config experiments/rvsrf-x4.yaml --resume      # settings from a YAML file

Options given on the command line override the YAML file's settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from vsvsr.nets.arch_registry import ARCHS, arch_config
from vsvsr.training.config import DEFAULT_DATA_ROOT, SCHEMES, TrainConfig, default_data_root
from vsvsr.utils.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from vsvsr.training.trainer import Trainer, TrainResult

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vsvsr train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None, metavar="YAML",
                   help="experiment settings (TrainConfig keys); options below override them")
    p.add_argument("--out", default=None, help="run folder for checkpoints (last.pt)")
    p.add_argument("--scale", type=int, default=None, choices=(2, 3, 4), help="default 2")
    p.add_argument("--arch", default=None, choices=sorted(ARCHS),
                   help="rvsr (flow-free recurrent, default), rvsrf (flow-aligned recurrent), "
                        "sfsr (single-frame control)")
    p.add_argument("--scheme", default=None, choices=SCHEMES,
                   help="ri: every clip starts from a zero state (default); pi: PI-BPTT")
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help=f"folder of jpg/png photos, searched recursively; repeatable "
                        f"(default: {DEFAULT_DATA_ROOT})")
    p.add_argument("--video", action="append", default=None, metavar="PATH",
                   help="real video for training: a video file, a folder of frames, or a folder "
                        "of those; repeatable")
    p.add_argument("--video-weight", type=float, default=None,
                   help="share of batches from --video when photos are used too (default 0.5)")
    p.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start from the weights of this checkpoint (same architecture, or an sfsr "
                        "control of the same width/depth for rvsr/rvsrf: a warm start)")
    p.add_argument("--minutes", type=float, default=None, help="total training-time budget")
    p.add_argument("--iters", type=int, default=None, help="total iteration budget")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt if it exists")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--crop", type=int, default=None, help="LR crop size in pixels")
    p.add_argument("--clip-length", type=int, default=None, help="BPTT clip length l")
    p.add_argument("--seq-length", type=int, default=None, help="PI: training sequence length N")
    p.add_argument("--reuse", type=int, default=None, help="PI: reuse factor R")
    p.add_argument("--p-fresh", type=float, default=None, help="PI: share of fresh starts")
    p.add_argument("--bank-slots", type=int, default=None,
                   help="PI: batches of sequences in the bank, mixed in every step (default 1)")
    p.add_argument("--flow-loss", type=float, default=None, help="weight of the flow warp loss")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--lr-min", type=float, default=None)
    p.add_argument("--warmup-iters", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--checkpoint-minutes", type=float, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--blocks", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--no-step-cond", action="store_true",
                   help="do not feed the step number (ablation)")
    p.add_argument("--precision", default=None, choices=("auto", "bf16", "fp32"),
                   help="auto (default): bf16 autocast where the CPU has native bf16 "
                        "(AMX-BF16/AVX512-BF16), else fp32")
    p.add_argument("--slim", type=Path, default=None, metavar="PATH",
                   help="write a copy of OUT/last.pt without the PI state bank to PATH (what a "
                        "run commits so the next session continues it: continue_from) and exit")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


#: command-line option -> TrainConfig field, for the plain (non-architecture) settings
_PLAIN = {"out": "out_dir", "scheme": "scheme", "minutes": "minutes", "iters": "iters",
          "threads": "threads", "batch": "batch", "crop": "crop", "clip_length": "clip_length",
          "seq_length": "seq_length", "reuse": "reuse", "p_fresh": "p_fresh",
          "bank_slots": "bank_slots",
          "flow_loss": "flow_loss", "lr": "lr", "lr_min": "lr_min",
          "warmup_iters": "warmup_iters", "seed": "seed",
          "checkpoint_minutes": "checkpoint_minutes", "video_weight": "video_weight",
          "init_from": "init_from", "precision": "precision"}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The YAML file's settings (or the defaults) overridden by the options given."""
    if args.config is not None:
        if not args.config.is_file():
            raise SystemExit(f"vsvsr train: no config file at {args.config}")
        data = TrainConfig.from_yaml(args.config).to_dict()
    elif args.resume and args.out and (Path(args.out) / "last.pt").is_file():
        # continuing a run: its own settings are the base (budgets and threads may change)
        from vsvsr.training.checkpoint import load_checkpoint

        data = load_checkpoint(Path(args.out) / "last.pt").config.to_dict()
    else:
        data = {"data_dirs": [] if args.data or args.video else [default_data_root()],
                "warmup_iters": 500, "lr": 5e-4}
    for opt, fld in _PLAIN.items():
        value = getattr(args, opt)
        if value is not None:
            data[fld] = value
    if args.data:
        data["data_dirs"] = list(args.data)
    if args.video:
        data["video_paths"] = list(args.video)
        if not args.data and args.config is None:  # only video unless photos were asked for
            data["data_dirs"] = []
    name = args.arch or data.get("arch_name", "rvsr")
    arch = dict(data.get("arch", {})) if name == data.get("arch_name", "rvsr") else {}
    for opt in ("scale", "width", "blocks", "hidden"):
        if getattr(args, opt) is not None:
            arch[opt] = getattr(args, opt)
    arch.setdefault("scale", 2)
    if args.no_step_cond:
        arch["step_cond"] = False
    data["arch_name"], data["arch"] = name, arch_config(name, arch).to_dict()
    if data.get("minutes") is None and data.get("iters") is None:
        raise SystemExit("vsvsr train: give --minutes or --iters (or both), here or in --config")
    if not data.get("out_dir") or (args.config is None and args.out is None):
        raise SystemExit("vsvsr train: give --out (the run folder) or out_dir in --config")
    return TrainConfig.from_dict(data)


def run_training(config: TrainConfig, *, resume: bool,
                 progress_bar: bool = True) -> tuple[Trainer, TrainResult]:
    """Train (or continue) ``config`` with Ctrl-C / SIGTERM stopping cleanly after a save."""
    from vsvsr.training.trainer import start_or_resume

    trainer = start_or_resume(config, resume=resume)
    out = Path(trainer.config.out_dir)
    atomic_write_bytes(out / "config.json",
                       json.dumps(trainer.config.to_dict(), indent=2).encode())

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.warning("signal %d: stopping after this step and saving", signum)
        trainer.request_stop()

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return trainer, trainer.fit(progress_bar=progress_bar)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def train_main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.slim is not None:
        from vsvsr.training.checkpoint import save_slim_checkpoint

        out = args.out or (TrainConfig.from_yaml(args.config).out_dir if args.config else None)
        if out is None:
            raise SystemExit("vsvsr train --slim: give --out or --config (the run to copy)")
        save_slim_checkpoint(Path(out) / "last.pt", args.slim)
        log.info("wrote %s (%.1f MB)", args.slim, args.slim.stat().st_size / 1e6)
        return 0
    _, result = run_training(config_from_args(args), resume=args.resume,
                             progress_bar=not args.no_progress)
    log.info("done: %d iterations, %.1f min, train PSNR %.2f dB (bicubic %.2f)",
             result.iterations, result.elapsed / 60, result.psnr, result.bicubic_psnr)
    return 0


if __name__ == "__main__":
    sys.exit(train_main())
