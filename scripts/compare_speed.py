#!/usr/bin/env python3
"""Side-by-side inference speed of recurrent models on ONNX Runtime (ms per frame).

Models run in alternating rounds on the same random frame with their own state fed back, so a
noisy shared machine slows all of them alike; the median round is reported per model.

    python scripts/compare_speed.py --model rvsr-x4 --model runs-export/flow-x4.onnx \\
        --size 480x270 --threads 1 --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vsvsr.recurrence.stepper import RecurrentStepper  # noqa: E402
from vsvsr.runtime.select import open_engine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--size", default="480x270", help="LR size WxH")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--frames", type=int, default=5, help="frames per round")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    lr = rng.random((1, 3, h, w), np.float32)
    steppers = [RecurrentStepper(open_engine(m, "ort", threads=args.threads)) for m in args.model]
    states = [s.zero_state(h, w) for s in steppers]
    times: list[list[float]] = [[] for _ in steppers]
    for r in range(args.rounds + 1):  # round 0 warms up
        for i, s in enumerate(steppers):
            t0 = time.perf_counter()
            for k in range(args.frames):
                _, states[i] = s.step(lr, lr, states[i], k)
            if r:
                times[i].append((time.perf_counter() - t0) / args.frames * 1000.0)
    for m, t in zip(args.model, times, strict=True):
        print(f"{m}: {statistics.median(t):.1f} ms/frame at {w}x{h} "
              f"(ONNX Runtime CPU, {args.threads} thread(s), median of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
