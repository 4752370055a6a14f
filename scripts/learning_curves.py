#!/usr/bin/env python3
"""Learning curves of training runs: training-batch gain over bicubic against training minutes,
with validation points (``vsvsr eval`` reports) on top.

A plateau in these curves is what says "change the recipe, not the budget", so the quality
issue's record of each session is drawn from them:

    python scripts/learning_curves.py --run rvsrg-hq=runs/x4-rvsrg-hq \\
        --run sfsr-hq=runs/x4-sfsr-hq \\
        --point "rvsrg-hq@135=docs/eval/val-hq.json:runs/x4-rvsrg-hq/last.pt" \\
        --out docs/eval/learning-curves-hq.png

``--run LABEL=FOLDER`` reads ``FOLDER/metrics.csv`` (written by ``vsvsr train``);
``--point LABEL@MINUTES=REPORT:MODEL`` takes the model's gain over bicubic from an eval report
(its ``summary``), drawn at MINUTES on the validation axis. Prints, per run, the smoothed gain
at its start and end and its slope over the last half (dB per training hour).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vsvsr.training.curve import CURVE_NAME, read_curve  # noqa: E402
from vsvsr.utils.atomic import atomic_write_bytes  # noqa: E402

POINT = re.compile(r"^(?P<label>[^@]+)@(?P<minutes>[0-9.]+)=(?P<report>[^:]+):(?P<model>.+)$")


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean (the batch gains are noisy: one batch of 4-8 crops each)."""
    if len(values) < window or window < 2:
        return values
    kernel = np.ones(window) / window
    padded = np.pad(values, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def slope_per_hour(minutes: np.ndarray, gain: np.ndarray) -> float:
    """Least-squares slope of the gain over the last half of the run, in dB per hour."""
    half = minutes >= minutes[0] + (minutes[-1] - minutes[0]) / 2
    if half.sum() < 3:
        return float("nan")
    return float(np.polyfit(minutes[half], gain[half], 1)[0] * 60.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", default=[], metavar="LABEL=FOLDER")
    p.add_argument("--point", action="append", default=[], metavar="LABEL@MIN=REPORT:MODEL")
    p.add_argument("--window", type=int, default=9, help="rows in the running mean")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args(argv)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5))
    ax_train, ax_val = fig.subplots(1, 2)
    for spec in args.run:
        label, _, folder = spec.partition("=")
        rows = read_curve(Path(folder) / CURVE_NAME)
        if not rows:
            print(f"error: no {CURVE_NAME} in {folder} (a run of vsvsr train writes one)",
                  file=sys.stderr)
            return 1
        minutes = np.array([r["minutes"] for r in rows])
        gain = smooth(np.array([r["gain"] for r in rows]), args.window)
        ax_train.plot(minutes, gain, label=label)
        print(f"{label}: {len(rows)} rows, iterations {rows[0]['iteration']:.0f}-"
              f"{rows[-1]['iteration']:.0f}, minutes {minutes[0]:.1f}-{minutes[-1]:.1f}, "
              f"batch gain {gain[0]:+.2f} -> {gain[-1]:+.2f} dB, last-half slope "
              f"{slope_per_hour(minutes, gain):+.3f} dB/h")
    series: dict[str, list[tuple[float, float]]] = {}
    for spec in args.point:
        m = POINT.match(spec)
        if not m:
            print(f"error: --point {spec!r} is not LABEL@MINUTES=REPORT:MODEL", file=sys.stderr)
            return 1
        summary = json.loads(Path(m["report"]).read_text())["summary"]
        if m["model"] not in summary:
            print(f"error: {m['report']} has no model {m['model']!r}; it has "
                  f"{', '.join(summary)}", file=sys.stderr)
            return 1
        value = float(summary[m["model"]]["gain_over_bicubic"])
        series.setdefault(m["label"], []).append((float(m["minutes"]), value))
        print(f"{m['label']} @ {float(m['minutes']):.0f} min: validation gain {value:+.3f} dB")
    for label, pts in series.items():
        pts.sort()
        ax_val.plot([x for x, _ in pts], [y for _, y in pts], "o-", label=label)
    ax_train.set(title="training batches (smoothed)", xlabel="training minutes",
                 ylabel="gain over bicubic, dB")
    ax_val.set(title="validation clips", xlabel="training minutes (core-minutes of the run)",
               ylabel="gain over bicubic, dB")
    for ax in (ax_train, ax_val):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
