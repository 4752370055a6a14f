#!/usr/bin/env python3
"""``vsvsr farm`` (N workers x 1 inference thread) against one ``vsvsr upscale`` (N threads).

Both run as the real commands, in fresh processes, on the built-in sample (scikit-image photos,
camera motion, hard cuts) with ``--scene-detect`` and a lossless codec, in alternating rounds
(the order flips every round), so a noisy shared machine slows both alike; medians are
reported. The farm's own overhead (Ray start and stop, input inspection, scene pass, concat)
comes from its JSON report. Every farm output is checked frame for frame against the single
run's.

    python scripts/farm_bench.py --rounds 3 --frames-per-scene 30 --workers 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vsvsr.sample import SampleSpec, write_sample  # noqa: E402


def frames_of(path: Path) -> list[list[np.ndarray]]:
    import vapoursynth as vs

    clip = vs.core.bs.VideoSource(str(path), cachemode=0)
    return [[np.array(f[p]) for p in range(f.format.num_planes)] for f in clip.frames()]


def timed(cmd: list[str]) -> tuple[float, str]:
    """(wall seconds of the command, its stdout)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def job_seconds(stdout: str) -> float:
    """The upscale's own time from ``vsvsr upscale``'s last line ("N frames in X s")."""
    m = re.search(r"frames in ([0-9.]+) s", stdout)
    if m is None:
        raise SystemExit(f"unexpected vsvsr upscale output: {stdout!r}")
    return float(m.group(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="rvsr-x2")
    p.add_argument("--size", default="512x288", help="HR size of the sample (LR is half)")
    p.add_argument("--frames-per-scene", type=int, default=30)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--codec", default="ffv1")
    p.add_argument("--out", type=Path, default=REPO / "out" / "farm_bench")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    spec = SampleSpec(width=w, height=h, frames_per_scene=args.frames_per_scene)
    args.out.mkdir(parents=True, exist_ok=True)
    src = write_sample(args.out, 2, spec=spec, hr_video=False).lr_video
    vsvsr = [sys.executable, "-m", "vsvsr"]
    common = ["--model", args.model, "--scene-detect", "--codec", args.codec, "--no-progress",
              "-y"]
    single_out, farm_out = args.out / "single.mkv", args.out / "farm.mkv"
    single_cmd = [*vsvsr, "upscale", str(src), str(single_out), *common,
                  "--threads", str(args.workers)]
    # One stream on one thread: what each farm worker does, for the speed-up model.
    one_cmd = [*vsvsr, "upscale", str(src), str(args.out / "one.mkv"), *common, "--threads", "1"]
    farm_cmd = [*vsvsr, "farm", str(src), str(farm_out), *common, "--threads", "1",
                "--cpus-per-task", "1", "--num-cpus", str(args.workers),
                "--chunk-frames", str(args.frames_per_scene)]
    single_s: list[float] = []  # wall time of the command
    single_job: list[float] = []  # upscale's own time ("N frames in X s"): no process start
    one_job: list[float] = []
    farm_s: list[float] = []
    reports: list[dict] = []
    identical = True
    for r in range(args.rounds):
        order = ("single", "farm", "one")[r % 3:] + ("single", "farm", "one")[:r % 3]
        if r % 2:
            order = order[::-1]
        for which in order:
            if which == "single":
                seconds, out = timed(single_cmd)
                single_s.append(seconds)
                single_job.append(job_seconds(out))
            elif which == "one":
                one_job.append(job_seconds(timed(one_cmd)[1]))
            else:
                farm_s.append(timed(farm_cmd)[0])
                reports.append(json.loads(farm_out.with_name(farm_out.name + ".farm.json")
                                          .read_text()))
        a, b = frames_of(single_out), frames_of(farm_out)
        identical &= len(a) == len(b) and all(
            all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
            for fa, fb in zip(a, b, strict=True))
        print(f"round {r + 1}: single {single_s[-1]:.2f} s (job {single_job[-1]:.2f} s), farm "
              f"{farm_s[-1]:.2f} s (chunks {reports[-1]['seconds']['chunks']:.2f} s), one thread "
              f"job {one_job[-1]:.2f} s", flush=True)
    n = spec.num_frames
    med = statistics.median
    overhead = {k: med(rep["seconds"].get(k, 0.0) for rep in reports)
                for k in ("ray_start", "prepare", "inspect", "scene_pass", "chunks", "join", "ray_stop",
                          "total")}
    result = {
        "frames": n, "lr_size": f"{w // 2}x{h // 2}", "scenes": len(spec.photos),
        "workers": args.workers, "model": args.model, "rounds": args.rounds,
        "single_seconds_median": med(single_s), "farm_seconds_median": med(farm_s),
        "single_job_fps": n / med(single_job), "farm_chunks_fps": n / overhead["chunks"],
        "one_thread_job_fps": n / med(one_job),
        "single_fps_end_to_end": n / med(single_s), "farm_fps_end_to_end": n / med(farm_s),
        "speedup_job": med(single_job) / overhead["chunks"],
        "speedup_end_to_end": med(single_s) / med(farm_s),
        "farm_overhead_seconds": overhead, "identical_frames": identical,
        "single_seconds": single_s, "single_job_seconds": single_job, "farm_seconds": farm_s,
        "one_thread_job_seconds": one_job,
        "farm_chunk_seconds": [rep["seconds"]["chunks"] for rep in reports],
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
