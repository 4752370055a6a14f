"""``python -m vsvsr.training``: train an RVSR model on pseudo-videos made from photos.

Example::

    python -m vsvsr.training --scale 2 --data /work/shared/data/train_images \
        --out runs/rvsr-x2 --minutes 55 --resume
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

from vsvsr.nets.rvsr_arch import RVSRConfig
from vsvsr.training.config import DEFAULT_DATA_ROOT, TrainConfig
from vsvsr.utils.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from vsvsr.training.trainer import Trainer, TrainResult

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vsvsr.training", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help=f"folder of jpg/png photos, searched recursively; repeatable "
                        f"(default: {DEFAULT_DATA_ROOT})")
    p.add_argument("--out", required=True, help="run folder for checkpoints (last.pt)")
    p.add_argument("--minutes", type=float, default=None, help="total training-time budget")
    p.add_argument("--iters", type=int, default=None, help="total iteration budget")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt if it exists")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=32, help="LR crop size in pixels")
    p.add_argument("--clip-length", type=int, default=8, help="BPTT clip length")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--warmup-iters", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--width", type=int, default=RVSRConfig.width)
    p.add_argument("--blocks", type=int, default=RVSRConfig.blocks)
    p.add_argument("--hidden", type=int, default=RVSRConfig.hidden)
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.minutes is None and args.iters is None:
        raise SystemExit("vsvsr.training: give --minutes or --iters (or both)")
    return TrainConfig(
        arch=RVSRConfig(scale=args.scale, width=args.width, blocks=args.blocks,
                        hidden=args.hidden),
        data_dirs=tuple(args.data or [DEFAULT_DATA_ROOT]), clip_length=args.clip_length,
        batch=args.batch, crop=args.crop, lr=args.lr, lr_min=args.lr_min,
        warmup_iters=args.warmup_iters, iters=args.iters,
        minutes=args.minutes, seed=args.seed, out_dir=args.out,
        checkpoint_minutes=args.checkpoint_minutes, threads=args.threads,
    )


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
    _, result = run_training(config_from_args(args), resume=args.resume,
                             progress_bar=not args.no_progress)
    log.info("done: %d iterations, %.1f min, train PSNR %.2f dB (bicubic %.2f)",
             result.iterations, result.elapsed / 60, result.psnr, result.bicubic_psnr)
    return 0


if __name__ == "__main__":
    sys.exit(train_main())
