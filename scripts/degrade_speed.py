"""Speed of the real-world degradation and the size of its cache entries (docs/real-world.md).

For each LR size, a 30-frame real clip (``../shared/data/real/realbasicvsr_demo_000``, resized
with the training resize) goes through the ffmpeg round trip of each codec, and the whole
pipeline (blur, downscale, noise and codec) runs from the HR. Rounds alternate between the
cases and the median of ``--rounds`` is reported, so a busy shared CPU skews every case alike.
Besides wall time, the CPU time of this process and its ffmpeg children is reported: on a shared
machine it is the steadier figure (frames/s per core = 1000 / CPU ms per frame).

    PYTHONPATH=. .venv/bin/python scripts/degrade_speed.py --rounds 5 --markdown out.md
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vsvsr.encode.ffmpeg import ffmpeg_version  # noqa: E402
from vsvsr.evaluation.data import load_frames  # noqa: E402
from vsvsr.training.degrade_cache import DegradeCache  # noqa: E402
from vsvsr.training.degrade_codec import codec_round_trip  # noqa: E402
from vsvsr.training.degrade_pipeline import degrade_sequence  # noqa: E402
from vsvsr.training.degrade_spec import DegradeSpec, parse_spec  # noqa: E402

CLIP = ROOT.parent / "shared" / "data" / "real" / "realbasicvsr_demo_000"
CODECS = ["yuv420", "h264:crf=28,preset=veryfast", "h264:crf=28,preset=medium",
          "h265:crf=28,preset=fast", "h265:crf=28,preset=medium", "mpeg2:q=6"]
FULL = "blur:sigma=0.5+noise:sigma=3+h264:crf=28,preset=medium"
#: (LR width, LR height, scale from the HR the full pipeline starts at)
SIZES = [(160, 90, 4), (320, 180, 2), (640, 360, 1)]
FRAMES = 30


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children (ffmpeg)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    hr = np.stack(load_frames(CLIP, FRAMES))  # 640x360
    lrs = {}
    for w, h, s in SIZES:
        lrs[(w, h)] = degrade_sequence(hr, DegradeSpec(), scale=s)  # clean LR of that size
    cases = [(size, text) for size in lrs for text in CODECS]
    cases += [((w, h), "full:" + FULL) for w, h, _ in SIZES]
    times: dict[tuple, list[float]] = {c: [] for c in cases}
    cpu: dict[tuple, list[float]] = {c: [] for c in cases}
    for _ in range(args.rounds):
        for case in cases:
            size, text = case
            c0 = _cpu()
            t0 = time.perf_counter()
            if text.startswith("full:"):
                scale = next(s for w, h, s in SIZES if (w, h) == size)
                degrade_sequence(hr, parse_spec(FULL), scale=scale, seed=1)
            else:
                spec = parse_spec(text)
                codec_round_trip(lrs[size], spec.codec)
            times[case].append(time.perf_counter() - t0)
            cpu[case].append(_cpu() - c0)
    rows = []
    for (size, text), ts in times.items():
        med = statistics.median(ts)
        cpu_ms = statistics.median(cpu[(size, text)]) * 1000 / FRAMES
        rows.append((f"{size[0]}x{size[1]}", text, FRAMES / med, cpu_ms))
    with tempfile.TemporaryDirectory() as tmp:
        cache = DegradeCache(tmp)
        sizes = {}
        for w, h, s in SIZES:
            cache.degrade(hr, parse_spec(FULL), scale=s, seed=1, source_key=f"clip:{w}")
            f = cache.path(cache.key(f"clip:{w}", parse_spec(FULL), scale=s, seed=1))
            sizes[f"{w}x{h}"] = os.path.getsize(f)
    lines = [f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
             f"CPUs (shared, busy); {ffmpeg_version()}; {FRAMES} frames of {CLIP.name}; "
             f"median of {args.rounds} alternating rounds",
             "", "| LR size | stage | wall frames/s | CPU ms/frame | frames/s per core |",
             "| --- | --- | ---: | ---: | ---: |"]
    lines += [f"| {a} | `{b}` | {fps:.0f} | {ms:.1f} | {1000 / ms:.0f} |"
              for a, b, fps, ms in rows]
    lines += ["", "| LR size | cache entry per 30-frame clip |", "| --- | ---: |"]
    lines += [f"| {k} | {v / 1e6:.2f} MB |" for k, v in sizes.items()]
    text = "\n".join(lines)
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
