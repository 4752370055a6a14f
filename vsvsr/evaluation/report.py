"""Run models over evaluation sequences, collect the metrics, write the JSON report and plot.

The models run in lock step, frame by frame: each ground-truth flow (tOF) is computed once per
frame pair for all models, and only the previous frame of each model is held, so memory does
not grow with the length of the sequence.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vsvsr.errors import VsvsrError
from vsvsr.evaluation.data import EvalSequence
from vsvsr.evaluation.metrics import SSIM_WINDOW, farneback_flow, flow_difference, y_psnr, y_ssim
from vsvsr.evaluation.models import BICUBIC, NO_OPTIONS, RunOptions, Upscaler
from vsvsr.utils.atomic import atomic_write, atomic_write_bytes
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

#: What the numbers mean; copied into every report.
CONVENTIONS = {
    "y_psnr": "dB; BT.601 luma (16-235) of 8-bit RGB frames, `scale` px border cropped, peak 255",
    "y_ssim": "BT.601 luma, `scale` px border cropped; Wang et al. SSIM, 11x11 Gaussian sigma 1.5, "
              "K1 0.01, K2 0.03, L 255, mean over valid windows (BasicSR calculate_ssim)",
    "tof": "HR px; TecoGAN tOF: Farneback flow (0.5, 3, 15, 3, 5, 1.2, 0) of output and ground "
           "truth between consecutive frames, TecoGAN centre crop, mean over pixels of the "
           "Euclidean norm of the flow difference, mean over pairs; x1 (not x10); lower is better",
    "lr": "HR frames cropped to a multiple of the scale, downscaled with the training resize "
          "(antialiased bicubic), rounded to 8 bits; a sequence with info.degrade was made by "
          "the real-world degradation of that spec instead (vsvsr/training/degrade_pipeline.py: "
          "blur, kernel, seeded noise, ffmpeg codec round trip)",
    "sr": "model output rounded to 8 bits",
    "mean_over_sequences": "summary values are means of the per-sequence means",
}


class EvalError(VsvsrError, ValueError):
    """A model and a sequence that cannot be evaluated together."""


@dataclass
class ModelRun:
    """One model on one sequence: per-frame values and their means."""

    label: str
    y_psnr: list[float] = field(default_factory=list)
    y_ssim: list[float] = field(default_factory=list)
    tof: list[float] = field(default_factory=list)  #: pair i is frames i -> i + 1
    seconds: float = 0.0  #: wall time spent producing the frames

    @property
    def frames(self) -> int:
        return len(self.y_psnr)

    @property
    def mean_psnr(self) -> float:
        return float(np.mean(self.y_psnr))

    @property
    def mean_ssim(self) -> float:
        return float(np.mean(self.y_ssim))

    @property
    def mean_tof(self) -> float | None:
        return float(np.mean(self.tof)) if self.tof else None

    @property
    def seconds_per_frame(self) -> float:
        return self.seconds / max(self.frames, 1)


@dataclass
class SequenceResult:
    """Every model's run on one sequence."""

    sequence: EvalSequence
    restarts: list[int]
    runs: list[ModelRun]

    def run(self, label: str) -> ModelRun | None:
        return next((r for r in self.runs if r.label == label), None)

    def gain(self, run: ModelRun) -> float | None:
        """Y-PSNR over bicubic (dB), when bicubic was evaluated too."""
        bic = self.run(BICUBIC)
        if bic is None or run.label == BICUBIC:
            return None
        return run.mean_psnr - bic.mean_psnr


def check_sequence(seq: EvalSequence) -> None:
    """Raise :class:`EvalError` when the frames are too small to measure.

    SSIM needs an 11x11 window inside the frame after the ``scale`` px border is cropped.
    """
    w, h = seq.hr_size
    need = SSIM_WINDOW + 2 * seq.scale
    if min(w, h) < need:
        raise EvalError(f"vsvsr eval: {seq.name} has {w}x{h} HR frames; at x{seq.scale} the "
                        f"metrics need at least {need}x{need} ({seq.scale} px border + the "
                        f"{SSIM_WINDOW}x{SSIM_WINDOW} SSIM window); use larger frames")
    if seq.frames < 1:
        raise EvalError(f"vsvsr eval: {seq.name} has no frames")


def evaluate_sequence(upscalers: Sequence[Upscaler], seq: EvalSequence,
                      options: RunOptions = NO_OPTIONS, *, with_tof: bool = True,
                      progress: Callable[[int], object] | None = None) -> SequenceResult:
    """Run every upscaler over ``seq`` and measure each frame (``scale`` px border).

    Raises:
        EvalError: a model's scale differs from the sequence's, or its output has another size.
    """
    for up in upscalers:
        if up.scale != seq.scale:
            raise EvalError(f"vsvsr eval: model {up.label} is x{up.scale} but sequence {seq.name} "
                            f"was made for x{seq.scale}")
    check_sequence(seq)
    runs = [ModelRun(up.label) for up in upscalers]
    streams = [up.run(seq.lr, options) for up in upscalers]
    prev_sr: list[np.ndarray | None] = [None] * len(upscalers)
    prev_hr: np.ndarray | None = None
    border = seq.scale
    try:
        for hr in seq.hr:
            ref_flow = farneback_flow(prev_hr, hr) if with_tof and prev_hr is not None else None
            for i, stream in enumerate(streams):
                t0 = time.perf_counter()
                sr = next(stream)
                runs[i].seconds += time.perf_counter() - t0
                if sr.shape != hr.shape:
                    raise EvalError(f"vsvsr eval: model {runs[i].label} made a {sr.shape[1]}x"
                                    f"{sr.shape[0]} frame for a {hr.shape[1]}x{hr.shape[0]} "
                                    f"ground truth in {seq.name}")
                runs[i].y_psnr.append(y_psnr(sr, hr, border))
                runs[i].y_ssim.append(y_ssim(sr, hr, border))
                prev = prev_sr[i]
                if ref_flow is not None and prev is not None:
                    runs[i].tof.append(flow_difference(farneback_flow(prev, sr), ref_flow))
                prev_sr[i] = sr
            prev_hr = hr
            if progress is not None:
                progress(1)
    finally:
        for stream in streams:  # generators: stop them now (closes nothing the models own)
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    restarts = sorted(r for r in options.resets if 0 < r < seq.frames)
    for run in runs:
        log.info("%s / %s: Y-PSNR %.3f dB, Y-SSIM %.4f", seq.name, run.label, run.mean_psnr,
                 run.mean_ssim)
    return SequenceResult(seq, restarts, runs)


def evaluate(upscalers: Sequence[Upscaler], sequences: Sequence[EvalSequence],
             options: RunOptions = NO_OPTIONS, *, with_tof: bool = True,
             progress: Callable[[int], object] | None = None) -> list[SequenceResult]:
    """:func:`evaluate_sequence` over every sequence."""
    return [evaluate_sequence(upscalers, s, options, with_tof=with_tof, progress=progress)
            for s in sequences]


# -- summaries ----------------------------------------------------------------------------------

def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summary(results: Sequence[SequenceResult]) -> dict[str, dict[str, Any]]:
    """Per model: the means over sequences of the per-sequence means."""
    labels = [r.label for r in results[0].runs] if results else []
    out: dict[str, dict[str, Any]] = {}
    for label in labels:
        runs = [(res, res.run(label)) for res in results]
        runs = [(res, r) for res, r in runs if r is not None]
        out[label] = {
            "frames": sum(r.frames for _, r in runs),
            "y_psnr": _mean([r.mean_psnr for _, r in runs]),
            "y_ssim": _mean([r.mean_ssim for _, r in runs]),
            "tof": _mean([r.mean_tof for _, r in runs]),
            "gain_over_bicubic": _mean([res.gain(r) for res, r in runs]),
            "seconds_per_frame": (sum(r.seconds for _, r in runs)
                                  / max(sum(r.frames for _, r in runs), 1)),
        }
    return out


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def report_dict(results: Sequence[SequenceResult], upscalers: Sequence[Upscaler],
                options: RunOptions, *, scale: int, with_tof: bool,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report: conventions, settings, per-sequence per-frame values and the summary."""
    from vsvsr import __version__

    seqs = []
    for res in results:
        s = res.sequence
        per_model = {}
        for run in res.runs:
            per_model[run.label] = {
                "y_psnr_mean": _round(run.mean_psnr), "y_ssim_mean": _round(run.mean_ssim, 6),
                "tof_mean": _round(run.mean_tof) if with_tof else None,
                "gain_over_bicubic": _round(res.gain(run)),
                "seconds_per_frame": _round(run.seconds_per_frame, 6),
                "y_psnr": [_round(v) for v in run.y_psnr],
                "y_ssim": [_round(v, 6) for v in run.y_ssim],
                "tof": [_round(v) for v in run.tof] if with_tof else None,
            }
        seqs.append({"name": s.name, "source": s.source, "info": s.info, "frames": s.frames,
                     "hr_size": list(s.hr_size), "lr_size": list(s.lr_size),
                     "restarts": res.restarts, "models": per_model})
    return {
        "vsvsr_version": __version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scale": scale,
        "conventions": CONVENTIONS,
        "options": {"restart_at": sorted(options.resets),
                    "reset_every_frame": options.reset_every_frame,
                    "prev_is_current": options.prev_is_current, "tof": with_tof,
                    **(extra or {})},
        "models": [u.describe() for u in upscalers],
        "summary": {k: {m: _round(v, 6) if isinstance(v, float) else v for m, v in d.items()}
                    for k, d in summary(results).items()},
        "sequences": seqs,
    }


def write_json(path: str | os.PathLike[str], report: dict[str, Any]) -> None:
    """Write the report atomically."""
    atomic_write_bytes(path, (json.dumps(report, indent=1) + "\n").encode())


def _fmt(x: float | None, spec: str, width: int) -> str:
    return f"{x:{width}{spec}}" if x is not None else f"{'-':>{width}}"


def format_table(results: Sequence[SequenceResult], *, with_tof: bool = True) -> str:
    """One row per (sequence, model), then the means over sequences when there are several."""
    name_w = max([len("sequence")] + [len(r.sequence.name) for r in results])
    model_w = max([len("model"), len("mean")] + [len(run.label) for r in results for run in r.runs])
    head = (f"{'sequence':<{name_w}}  {'model':<{model_w}}  {'frames':>6}  {'Y-PSNR':>7}  "
            f"{'Y-SSIM':>7}  {'tOF':>6}  {'vs bicubic':>10}  {'ms/frame':>8}")
    lines = [head, "-" * len(head)]

    def row(seq: str, label: str, frames: int, psnr: float | None, ssim: float | None,
            tof_v: float | None, gain: float | None, spf: float) -> str:
        gain_s = f"{gain:+10.2f}" if gain is not None else f"{'-':>10}"
        return (f"{seq:<{name_w}}  {label:<{model_w}}  {frames:>6}  {_fmt(psnr, '.2f', 7)}  "
                f"{_fmt(ssim, '.4f', 7)}  {_fmt(tof_v if with_tof else None, '.3f', 6)}  "
                f"{gain_s}  {spf * 1000:>8.1f}")

    for res in results:
        for run in res.runs:
            lines.append(row(res.sequence.name, run.label, run.frames, run.mean_psnr,
                             run.mean_ssim, run.mean_tof, res.gain(run), run.seconds_per_frame))
    if len(results) > 1:
        lines.append("-" * len(head))
        for label, s in summary(results).items():
            lines.append(row("mean", label, s["frames"], s["y_psnr"], s["y_ssim"], s["tof"],
                             s["gain_over_bicubic"], s["seconds_per_frame"]))
    return "\n".join(lines)


def write_plot(path: str | os.PathLike[str], results: Sequence[SequenceResult], *,
               title: str = "") -> None:
    """A PNG of per-frame Y-PSNR: one panel per sequence, one line per model, dashed
    vertical lines at the restart frames. Uses Matplotlib's Agg canvas (no pyplot state)."""
    lazy_import("matplotlib", "the per-frame PSNR plot of vsvsr eval")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(len(results), 1)
    fig = Figure(figsize=(10, 3.2 * n), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, res in zip(axes, results, strict=False):
        for run in res.runs:
            style = {"color": "0.4", "linestyle": ":"} if run.label == BICUBIC else {}
            ax.plot(range(run.frames), run.y_psnr, linewidth=1.2,
                    label=f"{run.label} ({run.mean_psnr:.2f} dB)", **style)
        for i, r in enumerate(res.restarts):
            ax.axvline(r, color="tab:red", linestyle="--", linewidth=0.9,
                       label="restart" if i == 0 else None)
        s = res.sequence
        ax.set_title(f"{s.name}: {s.lr_size[0]}x{s.lr_size[1]} -> {s.hr_size[0]}x{s.hr_size[1]} "
                     f"(x{s.scale}), {s.frames} frames", fontsize=10)
        ax.set_xlabel("frame")
        ax.set_ylabel("Y-PSNR (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
