#!/usr/bin/env python3
"""The PI-BPTT stability study: RI- vs PI-BPTT, with and without step conditioning.

Evaluates four training runs of one architecture (same data, same compute) on long (300-frame)
pseudo-videos rendered from real photographs that none of them trained on, in four motion
regimes (quasi-static, slow pan, fast pan, brightness ramp). For each run and sequence it
measures per-frame Y-PSNR of one continuous run and of a run cold-restarted at ``--restart``
(what a seek or a chunked encode does), and writes a JSON report and two plots:

    python scripts/pibptt_study.py --runs runs/study-ri-step runs/study-ri-nostep \\
        runs/study-pi-step runs/study-pi-nostep \\
        --source ../shared/data/train_images/elementary_wallpapers \\
        --out docs/pibptt

Reported per run and sequence: mean Y-PSNR of frames 0-99 and of the last 100 frames (drift:
last minus first), mean over all frames, and the restart dip: the mean over the 20 frames from
the restart of (restarted - continuous) Y-PSNR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vsvsr.evaluation.data import LONG_KINDS, long_eval_sequence  # noqa: E402
from vsvsr.evaluation.models import RunOptions, open_upscaler  # noqa: E402
from vsvsr.evaluation.report import evaluate_sequence  # noqa: E402
from vsvsr.training.sequences import find_images, load_photo  # noqa: E402
from vsvsr.utils.atomic import atomic_write_bytes  # noqa: E402

DIP_FRAMES = 20


def run_label(run: Path) -> str:
    return run.name.removeprefix("study-")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="run folders (last.pt)")
    p.add_argument("--source", type=Path, required=True,
                   help="folder of held-out photos; sequence k uses photo k mod count")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--restart", type=int, default=150)
    p.add_argument("--size", default="384x256", help="HR frame size WxH")
    p.add_argument("--presize", type=int, default=2, help="shrink photos as training does")
    p.add_argument("--kinds", nargs="+", default=list(LONG_KINDS))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    photos = find_images([args.source])
    ups = [open_upscaler(str(r / "last.pt"), threads=args.threads) for r in args.runs]
    scale = ups[0].scale
    ups.append(open_upscaler("bicubic", scale=scale))
    labels = [run_label(r) for r in args.runs] + ["bicubic"]
    report: dict[str, object] = {"frames": args.frames, "restart": args.restart,
                                 "size": [w, h], "scale": scale, "dip_frames": DIP_FRAMES,
                                 "runs": [str(r) for r in args.runs], "sequences": {}}
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    t0 = time.time()
    for k, kind in enumerate(args.kinds):
        photo_path = photos[k % len(photos)]
        image = load_photo(photo_path, args.presize).permute(1, 2, 0).numpy()
        seq = long_eval_sequence(image, kind, args.frames, (w, h), scale, seed=k,
                                 source=str(photo_path))
        cont = evaluate_sequence(ups, seq, with_tof=True)
        rest = evaluate_sequence(ups[:-1], seq, RunOptions(resets=frozenset({args.restart})),
                                 with_tof=False)
        seq_rep: dict[str, object] = {"photo": photo_path.name}
        curves[kind] = {}
        for i, label in enumerate(labels):
            c = np.array(cont.runs[i].y_psnr)
            entry = {"mean": float(c.mean()), "first100": float(c[:100].mean()),
                     "last100": float(c[-100:].mean()),
                     "drift": float(c[-100:].mean() - c[:100].mean()),
                     "ssim": float(np.mean(cont.runs[i].y_ssim)),
                     "tof": float(np.mean(cont.runs[i].tof)) if cont.runs[i].tof else None}
            curves[kind][label] = {"continuous": c.tolist()}
            if i < len(rest.runs):
                r = np.array(rest.runs[i].y_psnr)
                a, b = args.restart, args.restart + DIP_FRAMES
                entry["restart_dip"] = float((r[a:b] - c[a:b]).mean())
                entry["restart_dip_first"] = float(r[a] - c[a])
                assert np.array_equal(r[:a], c[:a]), "frames before a restart must not change"
                curves[kind][label]["restarted"] = r.tolist()
            seq_rep[label] = entry
        report["sequences"][kind] = seq_rep  # type: ignore[index]
        print(f"{kind}: done ({time.time() - t0:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "study.json", json.dumps(
        {"report": report, "curves": curves}, indent=1).encode())
    plot(curves, labels, args.restart, args.out)
    print(table(report, labels))
    return 0


def table(report: dict, labels: list[str]) -> str:
    lines = ["| sequence | run | mean | first 100 | last 100 | drift | restart dip (20 f) | "
             "first frame after restart | tOF |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kind, seq in report["sequences"].items():
        for label in labels:
            e = seq[label]
            dip = f"{e['restart_dip']:+.3f}" if "restart_dip" in e else ""
            first = f"{e['restart_dip_first']:+.3f}" if "restart_dip_first" in e else ""
            tof = f"{e['tof']:.3f}" if e.get("tof") is not None else ""
            lines.append(f"| {kind} | {label} | {e['mean']:.3f} | {e['first100']:.3f} | "
                         f"{e['last100']:.3f} | {e['drift']:+.3f} | {dip} | {first} | {tof} |")
    return "\n".join(lines)


def plot(curves: dict, labels: list[str], restart: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(curves)
    fig, axes = plt.subplots(len(kinds), 1, figsize=(10, 3.2 * len(kinds)), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds, strict=True):
        for label in labels:
            c = np.array(curves[kind][label]["continuous"])
            ax.plot(c, lw=0.9, label=label, ls="--" if label == "bicubic" else "-")
        ax.axvline(restart, color="red", ls=":", lw=0.8)
        ax.set_title(f"{kind}: Y-PSNR per frame (continuous run)")
        ax.set_xlabel("frame")
        ax.set_ylabel("dB")
        ax.legend(fontsize=7, ncol=len(labels))
    fig.tight_layout()
    fig.savefig(out / "psnr-vs-frame.png", dpi=90)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for label in labels:
            cur = curves[kind][label]
            if "restarted" not in cur:
                continue
            d = np.array(cur["restarted"]) - np.array(cur["continuous"])
            lo, hi = max(restart - 5, 0), min(restart + 45, len(d))
            ax.plot(range(lo, hi), d[lo:hi], lw=1.0, label=label)
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_title(f"{kind}: restarted - continuous")
        ax.set_xlabel("frame")
        ax.set_ylabel("dB")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "restart-dip.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
