#!/usr/bin/env python3
"""Pre-train the flow network of a recurrent net (issue 12, step a) and report its EPE.

Trains the pyramid flow network alone with the end-point error against exact translations of photos and
DIS flow of real video, then measures the EPE (LR px) on held-back data: exact translations of
photos the run never saw, and DIS flow of the validation videos. The weights go into a
recurrent run through ``flow_from`` in its config.

    python scripts/pretrain_flow.py --out runs/flow-x4/flow.pt --iters 2000 \\
        --data ../shared/data/train_images/budgie_backgrounds --video ../shared/data/train_videos \\
        --exclude sam2_coffee_pour_720p.mp4 --exclude tears_of_steel_360p.mp4 \\
        --test-photos ../shared/data/train_images/elementary_wallpapers
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vsvsr.nets.rvsrg_arch import PyramidFlow  # noqa: E402
from vsvsr.training.config import TemporalConfig  # noqa: E402
from vsvsr.training.flow_pretrain import (  # noqa: E402
    FlowPretrainConfig,
    FlowPretrainer,
    evaluate_epe,
    save_flow_weights,
    translate_pairs,
    video_pairs,
)
from vsvsr.training.sequences import load_photos  # noqa: E402
from vsvsr.training.video_source import VideoClipSampler, cached_sequences  # noqa: E402

log = logging.getLogger("pretrain_flow")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--flow-width", type=int, default=24)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=40)
    p.add_argument("--data", action="append", required=True)
    p.add_argument("--video", action="append", default=[])
    p.add_argument("--exclude", action="append", default=[],
                   help="validation videos: never trained on, used for the EPE report")
    p.add_argument("--test-photos", action="append", default=[],
                   help="held-out photos for the exact-translation EPE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    cfg = FlowPretrainConfig(scale=args.scale, crop=args.crop, batch=args.batch,
                             iters=args.iters, seed=args.seed)
    photos = load_photos(args.data, presize=2)
    video = None
    if args.video:
        seqs = cached_sequences(args.video, presize=2, exclude=args.exclude)
        video = VideoClipSampler(seqs, scale=args.scale, crop=args.crop, length=2,
                                 batch=cfg.batch - round(cfg.batch * cfg.photo_share),
                                 seed=args.seed, temporal=TemporalConfig(p_hold=0.0))
    torch.manual_seed(args.seed)
    net = PyramidFlow(args.flow_width)
    # held-back sets, drawn once with their own seed
    g = torch.Generator().manual_seed(1234)
    tests: dict[str, list] = {}
    if args.test_photos:
        held = load_photos(args.test_photos, presize=2)
        tests["exact translations, held-out photos"] = [
            translate_pairs(held, scale=args.scale, crop=args.crop, count=16, generator=g)
            for _ in range(4)]
    if args.exclude and args.video:
        val = [s for s in cached_sequences(args.video, presize=2)
               if s.path.name in set(args.exclude)]
        vs = VideoClipSampler(val, scale=args.scale, crop=args.crop, length=2, batch=16,
                              seed=99, temporal=TemporalConfig(p_hold=0.0))
        tests["DIS flow, validation videos"] = [video_pairs(vs, args.scale) for _ in range(4)]
    zero = torch.nn.Module()
    zero.forward = lambda cur, prev: torch.zeros_like(cur[:, :2])  # type: ignore[method-assign]
    before = {k: evaluate_epe(net, v) for k, v in tests.items()}
    baseline = {k: evaluate_epe(zero, v) for k, v in tests.items()}
    t0 = time.monotonic()
    trainer = FlowPretrainer(net, cfg, photos=photos, video_sampler=video)
    train_epe = trainer.fit()
    minutes = (time.monotonic() - t0) / 60
    after = {k: evaluate_epe(net, v) for k, v in tests.items()}
    info = {"iters": cfg.iters, "minutes": round(minutes, 1), "precision": trainer.precision,
            "train_epe": round(train_epe, 4), "batch": cfg.batch, "crop": cfg.crop,
            "epe_zero_flow": {k: round(v, 4) for k, v in baseline.items()},
            "epe_before": {k: round(v, 4) for k, v in before.items()},
            "epe_after": {k: round(v, 4) for k, v in after.items()}}
    save_flow_weights(net, args.out, info)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
