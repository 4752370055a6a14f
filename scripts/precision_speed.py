#!/usr/bin/env python3
"""Training speed of fp32 vs bf16 autocast (+ channels_last) on one config, side by side.

Builds two trainers from the same YAML config (same data, same seed) that differ only in
``precision``, and runs them in alternating rounds of a few steps, so a busy machine slows both
alike; prints seconds per iteration per round and the median ratio. Warm-up steps (oneDNN
creating its kernels for each shape) are not timed.

    python scripts/precision_speed.py configs/x4-sfsr-r2.yaml --rounds 3 --steps 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vsvsr.training.config import TrainConfig  # noqa: E402
from vsvsr.training.sequences import load_photos  # noqa: E402
from vsvsr.training.trainer import Trainer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=8, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    base = TrainConfig.from_yaml(args.config)
    base = replace(base, threads=args.threads, init_from=None, flow_from=None,
                   continue_from=None, out_dir="/tmp/vsvsr-precision-speed")
    photos = load_photos(base.data_dirs, base.presize) if base.data_dirs else None
    trainers = {p_: Trainer(replace(base, precision=p_), photos=photos) for p_ in ("fp32", "bf16")}
    for t in trainers.values():
        for _ in range(args.warmup):
            t.step()
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for r in range(args.rounds):
        for name, t in trainers.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                t.step()
            times[name].append((time.perf_counter() - t0) / args.steps)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s/it" for k, v in times.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"config": str(args.config), "arch": base.arch_name, "batch": base.batch,
              "crop": base.crop, "clip_length": base.clip_length, "threads": args.threads,
              "s_per_it": {k: [round(x, 4) for x in v] for k, v in times.items()},
              "median_s_per_it": {k: round(v, 4) for k, v in med.items()},
              "bf16_speedup": round(med["fp32"] / med["bf16"], 2)}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
