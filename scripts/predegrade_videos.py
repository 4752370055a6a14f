"""Pre-degrade the training videos of a config, as a run's start would (docs/real-world.md).

Builds exactly the real-video sampler of ``vsvsr train`` for the config (same videos, held-out
split, presize, clip length, crop, ``degrade:`` ranges; ``--scale`` overrides the config's), so
the variants land in the same cache and the run later finds them all. Reports the wall time,
the CPU time of this process and its ffmpeg children, the frames encoded and the size of the
variants. Use it to fill the cache ahead of a run, or to measure the start-up cost:

    PYTHONPATH=. nice -n 10 .venv/bin/python scripts/predegrade_videos.py \\
        configs/x2-rvsr-real.yaml --scale 2
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vsvsr.training.config import TrainConfig  # noqa: E402
from vsvsr.training.degrade_cache import DegradeCache  # noqa: E402
from vsvsr.training.degrade_ranges import DegradeConfig  # noqa: E402
from vsvsr.training.video_source import VideoClipSampler, cached_sequences  # noqa: E402


def cpu_seconds() -> float:
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="a training YAML with video_paths (and degrade:)")
    ap.add_argument("--scale", type=int, help="override the config's scale")
    ap.add_argument("--variants", type=int, help="override degrade.variants")
    ap.add_argument("--workers", type=int, default=1, help="shots degraded at once (default 1)")
    ap.add_argument("--videos", type=int, help="only the first N training videos (a subset)")
    ap.add_argument("--degrade-cache", type=Path,
                    help="store the variants here (default: degrade/ in the user cache folder, "
                         "where training looks)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = TrainConfig.from_yaml(args.config)
    if not cfg.video_paths:
        ap.error(f"{args.config} has no video_paths")
    degrade = cfg.degrade or DegradeConfig()
    if args.variants:
        degrade = replace(degrade, variants=args.variants)
    scale = args.scale or cfg.scale
    seqs = cached_sequences(cfg.video_paths, presize=cfg.video_presize or cfg.presize,
                            exclude=cfg.video_exclude)
    if args.videos:
        seqs = seqs[:args.videos]
    length = cfg.seq_length if cfg.scheme == "pi" else cfg.clip_length
    wall, cpu = time.monotonic(), cpu_seconds()
    sampler = VideoClipSampler(seqs, scale=scale, crop=cfg.crop, length=length, batch=cfg.batch,
                               seed=cfg.seed, temporal=cfg.temporal, degrade=degrade,
                               workers=args.workers,
                               degrade_cache=DegradeCache(args.degrade_cache)
                               if args.degrade_cache else None)
    wall, cpu = time.monotonic() - wall, cpu_seconds() - cpu
    assert sampler.variants is not None
    frames = sum(v.shape[0] for row in sampler.variants for v in row)
    size = sum(v.nbytes for row in sampler.variants for v in row)
    print(f"x{scale}: {len(seqs)} videos, {len(sampler.shots)} shots x {degrade.variants} "
          f"variants = {frames} LR frames; {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"({1000 * cpu / max(frames, 1):.1f} ms CPU per frame), {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
