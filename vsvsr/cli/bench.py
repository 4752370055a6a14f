"""``vsvsr bench``: the filter's throughput through VapourSynth against the bare engine.

At each size, frames of the sample clip (a moving photo, so the input is realistic) are
resized to the size, held in VapourSynth's cache (the bare loop too reads ready-made arrays)
and fed to ``vsvsr.recurrent``; its frames are requested in order with
``clip.frames()``, output format conversion included. The *bare engine* is the same kind of
session (:func:`vsvsr.runtime.select.open_engine` with the same backend and threads) run in a
plain Python loop on the same frames, feeding its own state back. The two are measured in
alternating segments of ``--frames`` frames (the filter's recurrence simply continues), after
a warm-up, and the medians are reported: on a busy machine this keeps both exposed to the same
noise. ``filter/bare`` near 1.0 means the VapourSynth adapter costs little.

``--backend`` repeated (``--backend ort --backend openvino``, ``openvino:f32`` for a
precision) measures the backends side by side in the same alternating rounds and prints each
one's fps and its ratio to the first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vsvsr.cli._common import parse_sizes, positive_int, vapoursynth
from vsvsr.models.registry import DEFAULT_MODEL
from vsvsr.utils.atomic import atomic_write_bytes

if TYPE_CHECKING:
    import vapoursynth as vs

NAME = "bench"
HELP = "measure filter fps against the bare inference engine"
FORMATS = ("yuv420p8", "rgbs")


@dataclass
class BenchRow:
    """One size's result; fps lists hold one value per measured segment."""

    size: str
    output_size: str
    input_format: str
    frames: int
    rounds: int
    filter_fps: float
    bare_fps: float
    ratio: float
    filter_fps_all: list[float] = field(default_factory=list)
    bare_fps_all: list[float] = field(default_factory=list)
    backend: str = ""  #: the engine's backend (and precision, for OpenVINO)
    speedup: float = 1.0  #: filter fps over the first backend's, measured side by side


def content_clip(size: tuple[int, int], fmt: str, length: int,
                 distinct: int = 8) -> vs.VideoNode:
    """``distinct`` frames of the sample's moving photos at ``size`` in ``fmt``, looped to
    ``length`` frames and held in VapourSynth's cache, so that (like the bare loop, which
    reads ready-made arrays) the filter does not pay for rendering its input."""
    vs = vapoursynth("vsvsr bench")
    from vsvsr.sample.clip import BICUBIC, SampleSpec, array_clip, render_hr_frames

    spec = SampleSpec(frames_per_scene=distinct, photos=SampleSpec().photos[:1])
    base = array_clip(render_hr_frames(spec), spec.fps)
    w, h = size
    if fmt == "rgbs":
        base = base.resize.Bicubic(w, h, format=vs.RGBS, **BICUBIC)
    else:
        base = base.resize.Bicubic(w, h, format=vs.YUV420P8, matrix_s="709", **BICUBIC)
    vs.core.std.SetVideoCache(base, mode=1, fixedsize=1, maxsize=4 * base.num_frames)
    for _ in base.frames(close=True):  # fill the cache
        pass
    reps = -(-length // base.num_frames)
    return (base * reps)[:length] if reps > 1 else base[:length]


def model_inputs(clip: vs.VideoNode, count: int) -> list[np.ndarray]:
    """The first ``count`` frames as the model sees them: (1, 3, H, W) float32 in [0, 1]."""
    from vsvsr.vs import formats
    from vsvsr.vs.frames import read_rgb

    rgb = formats.to_model_rgb(clip, formats.inspect_clip(clip, "vsvsr bench"))
    return [read_rgb(f, n=i, func="vsvsr bench")
            for i, f in enumerate(rgb[:count].frames(close=True))]


class BareLoop:
    """The engine alone: one step per frame through the same :class:`RecurrentStepper` the
    filter uses (so a backend that keeps its state in place does so here too)."""

    def __init__(self, engine: Any, inputs: list[np.ndarray]) -> None:
        from vsvsr.recurrence.stepper import RecurrentStepper

        self.engine = engine
        self.inputs = inputs
        self.stepper = RecurrentStepper(engine)
        h, w = inputs[0].shape[2:]
        self.state = self.stepper.zero_state(h, w)
        self.prev = inputs[0]
        self.step = 0
        self.sr: np.ndarray | None = None  #: the last output, for checks

    def run(self, frames: int) -> None:
        for _ in range(frames):
            lr = self.inputs[self.step % len(self.inputs)]
            self.sr, self.state = self.stepper.step(lr, self.prev, self.state, self.step)
            self.prev, self.step = lr, self.step + 1


#: Bounds of the automatic segment length, in frames.
AUTO_FRAMES = (2, 200)


def parse_backend(spec: str) -> tuple[str, str]:
    """``openvino:f32`` -> (``openvino``, ``f32``); a plain name runs at precision ``auto``."""
    name, _, precision = spec.partition(":")
    return name, precision or "auto"


def bench_size(model: str, backend: str, threads: int, size: tuple[int, int], fmt: str,
               frames: int | None, rounds: int, warmup: int,
               segment_seconds: float = 2.0) -> BenchRow:
    """Measure one size on one backend (see the module docstring)."""
    return bench_backends(model, [backend], threads, size, fmt, frames, rounds, warmup,
                          segment_seconds)[0]


def bench_backends(model: str, backends: list[str], threads: int, size: tuple[int, int],
                   fmt: str, frames: int | None, rounds: int, warmup: int,
                   segment_seconds: float = 2.0) -> list[BenchRow]:
    """Measure one size on each of ``backends`` (``name[:precision]``), side by side.

    Every round runs a segment of each backend's filter and bare engine, in an order reversed
    every other round, so that all of them share the machine's noise; medians are reported,
    and each row's ``speedup`` is its filter fps over the first backend's.
    ``frames=None`` picks the segment length from the slowest bare engine's speed in a timed
    warm-up so that a segment lasts about ``segment_seconds`` (short segments are noisy).
    """
    import vsvsr
    from vsvsr.runtime.select import open_engine

    total = warmup + (frames or AUTO_FRAMES[1]) * rounds + (AUTO_FRAMES[0] if frames is None
                                                           else 0)
    clip = content_clip(size, fmt, total)
    inputs = model_inputs(clip, min(total, 8))
    runs: list[dict[str, Any]] = []
    try:
        for spec in backends:
            name, precision = parse_backend(spec)
            out = vsvsr.recurrent(clip, model, name, threads=threads, precision=precision)
            engine = open_engine(model, name, threads=threads, size=size, precision=precision)
            runs.append({"spec": spec, "out": out, "engine": engine, "pos": 0,
                         "bare": BareLoop(engine, inputs), "f": [], "b": []})

        def run_filter(r: dict[str, Any], n: int) -> None:
            if n == 0:
                return
            for _ in r["out"][r["pos"]:r["pos"] + n].frames(close=True):
                pass
            r["pos"] += n

        for r in runs:
            run_filter(r, warmup)
            r["bare"].run(warmup)
        if frames is None:
            probe, per_frame = AUTO_FRAMES[0], 0.0
            for r in runs:
                t0 = time.perf_counter()
                run_filter(r, probe)
                r["bare"].run(probe)
                per_frame = max(per_frame, (time.perf_counter() - t0) / (2 * probe))
            frames = max(AUTO_FRAMES[0], min(AUTO_FRAMES[1],
                                             round(segment_seconds / max(per_frame, 1e-6))))
        for k in range(rounds):
            order: list[tuple[Any, list[float]]] = []
            for r in runs:
                order += [(lambda n, r=r: run_filter(r, n), r["f"]), (r["bare"].run, r["b"])]
            for fn, sink in order if k % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                fn(frames)
                sink.append(frames / (time.perf_counter() - t0))
    finally:
        for r in runs:
            r["engine"].close()
    rows = []
    for r in runs:
        fm, bm = statistics.median(r["f"]), statistics.median(r["b"])
        rows.append(BenchRow(size=f"{size[0]}x{size[1]}",
                             output_size=f"{r['out'].width}x{r['out'].height}",
                             input_format=clip.format.name, frames=frames, rounds=rounds,
                             filter_fps=fm, bare_fps=bm, ratio=fm / bm, filter_fps_all=r["f"],
                             bare_fps_all=r["b"], backend=_engine_label(r["engine"]),
                             speedup=fm / statistics.median(runs[0]["f"])))
    return rows


def _engine_label(engine: Any) -> str:
    precision = getattr(engine, "precision", None)
    return f"{engine.backend} {precision}" if precision else engine.backend


def format_table(rows: list[BenchRow], header: str) -> str:
    many = len({r.backend for r in rows}) > 1
    lines = [header, f"{'size':<10} {'output':<10} " + (f"{'backend':<14} " if many else "")
             + f"{'filter fps':>10} {'bare fps':>9} {'filter/bare':>11} "
             + (f"{'vs first':>8} " if many else "") + f"{'segments':>10}"]
    for r in rows:
        lines.append(f"{r.size:<10} {r.output_size:<10} " + (f"{r.backend:<14} " if many else "")
                     + f"{r.filter_fps:>10.3f} {r.bare_fps:>9.3f} {r.ratio:>11.3f} "
                     + (f"{r.speedup:>7.2f}x " if many else "")
                     + f"{f'{r.rounds}x{r.frames}':>10}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"built-in model name or .onnx/.pth file (default {DEFAULT_MODEL})")
    p.add_argument("--backend", action="append", default=None, metavar="NAME[:PRECISION]",
                   help="repeatable: backends measured side by side, e.g. --backend ort "
                        "--backend openvino --backend openvino:f32 (default auto); ratios are "
                        "against the first")
    p.add_argument("--threads", type=int, default=0,
                   help="inference threads for CPU backends (default 0: all cores)")
    p.add_argument("--sizes", type=parse_sizes, default=parse_sizes("960x540,160x90"),
                   help="LR input sizes, comma separated (default 960x540,160x90)")
    p.add_argument("--frames", type=positive_int, default=None,
                   help="frames per measured segment (default: about --seconds worth)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="target length of a segment when --frames is not given (default 2)")
    p.add_argument("--rounds", type=positive_int, default=5,
                   help="alternating filter/bare segments per size; medians are reported "
                        "(default 5)")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured frames first (default 2)")
    p.add_argument("--format", choices=FORMATS, default="yuv420p8",
                   help="filter input format (default yuv420p8)")
    p.add_argument("--vs-threads", type=int, default=None,
                   help="VapourSynth worker threads (default: VapourSynth's, one per core)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="also write the results as JSON")


def run(args: argparse.Namespace) -> int:
    from vsvsr.runtime.select import open_engine

    if args.warmup < 0:
        from vsvsr.cli._common import CommandError

        raise CommandError(f"vsvsr bench: --warmup must be >= 0, got {args.warmup}")
    backends = list(dict.fromkeys(args.backend or ["auto"]))
    names = []
    for spec in backends:
        name, precision = parse_backend(spec)
        with open_engine(args.model, name, threads=args.threads, precision=precision) as engine:
            d = engine.descriptor
            names.append(_engine_label(engine))
    backend_name = ", ".join(names)
    vs = vapoursynth("vsvsr bench")
    if args.vs_threads:
        vs.core.num_threads = args.vs_threads
    rows = []
    for size in args.sizes:
        for row in bench_backends(args.model, backends, args.threads, size, args.format,
                                  args.frames, args.rounds, args.warmup, args.seconds):
            rows.append(row)
            print(f"  {row.size} {row.backend}: filter {row.filter_fps:.3f} fps, bare "
                  f"{row.bare_fps:.3f} fps ({row.rounds} x {row.frames} frames)", flush=True)
    header = (f"model {d.name} (x{d.scale}), backend {backend_name}, inference threads "
              f"{args.threads or 'all'}, VapourSynth threads {vs.core.num_threads}, "
              f"input {rows[0].input_format if rows else '-'}, medians of {args.rounds} "
              f"alternating segments")
    print(format_table(rows, header))
    if args.json is not None:
        data: dict[str, Any] = {"model": d.name, "model_arg": str(args.model), "scale": d.scale,
                                "backend": backend_name, "threads": args.threads,
                                "vs_threads": vs.core.num_threads,
                                "rows": [asdict(r) for r in rows]}
        atomic_write_bytes(args.json, json.dumps(data, indent=2).encode())
    return 0
