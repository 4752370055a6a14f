"""GPU benchmark: fps of the device path and where the time goes (upload / convert / infer /
download), and the filter end to end on the same path.

Runs each built-in model on the PyTorch CUDA backend (TensorRT when ``--backend tensorrt`` and
an engine exist; ONNX Runtime CUDA with ``--backend ort-cuda``) through
:class:`vsvsr.runtime.cuda_buffers.FramePipeline`: YUV420P10 frames in, YUV420P10 frames out,
colour conversion on the device, two frames in flight. The split is measured in separate
synchronous loops of the same work; ``fps`` is the pipelined rate. With VapourSynth installed,
``filter_fps`` is ``vsvsr.recurrent`` on a YUV420P10 clip of the same frames (the GPU frame
path), requested vspipe-style (all frames at once, in parallel), and ``filter_ratio`` is
``filter_fps / fps`` (target >= 0.9: the frame path must not be the bottleneck).

    python3 scripts/gpu_bench.py --out bench.json --markdown bench.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vsvsr.runtime.color_kernels import FrameFormat, from_model_ref, split_planes  # noqa: E402

FMT = FrameFormat(yuv=True, bits=10, ssw=1, ssh=1, matrix=1)
CASES = [("rvsr-x2", (960, 540)), ("rvsr-x2", (1920, 1080)),
         ("rvsr-x4", (480, 270)), ("rvsr-x4", (960, 540))]


def source_frames(w: int, h: int, n: int = 8) -> list[list[np.ndarray]]:
    """``n`` YUV420P10 frames (as plane lists) of camera motion over a real photograph."""
    from vsvsr.sample.clip import SampleSpec, render_hr_frames

    spec = SampleSpec(width=w, height=h, frames_per_scene=n, photos=("astronaut",))
    out = []
    for f in render_hr_frames(spec):
        rgb = np.ascontiguousarray(f.transpose(2, 0, 1)[None], np.float32) / 255
        out.append([p.copy() for p in split_planes(from_model_ref(rgb, FMT), FMT, w, h)])
    return out


def open_engine(backend: str, model: str, size: tuple[int, int], fp16: bool):
    from vsvsr.models.registry import resolve_model

    files = resolve_model(model)
    if backend == "tensorrt":
        from vsvsr.runtime.engine_key import BuildOptions
        from vsvsr.runtime.ort_backend import read_onnx_descriptor
        from vsvsr.runtime.tensorrt_backend import open_tensorrt_engine

        return open_tensorrt_engine(files, read_onnx_descriptor(files.onnx), size,
                                    options=BuildOptions(sizes=(size,),
                                                         precision="fp16" if fp16 else "fp32"))
    if backend == "ort-cuda":
        from vsvsr.runtime.ort_cuda_backend import open_ort_cuda_engine

        return open_ort_cuda_engine(files.onnx, size)  # the ONNX's own precision
    from vsvsr.runtime.torch_cuda_backend import open_torch_cuda_engine

    return open_torch_cuda_engine(files.pth, size, fp16=fp16)


def bench_case(backend: str, model: str, size: tuple[int, int], fp16: bool, frames: int,
               warmup: int, filter_frames: int = 0) -> dict:
    from vsvsr.runtime.cuda_buffers import FramePipeline

    engine = open_engine(backend, model, size, fp16)
    pipe = FramePipeline(engine, FMT, FMT)
    dev, w, h = engine.device, size[0], size[1]
    src = source_frames(w, h)
    state = engine.new_state(h, w)

    def run(n: int) -> float:
        t0 = time.perf_counter()
        tickets = []
        for i in range(n):
            tickets.append(pipe.submit(src[i % len(src)], state, i, reset=i == 0))
            if len(tickets) == 2:
                pipe.collect(tickets.pop(0))
        for t in tickets:
            pipe.collect(t)
        return time.perf_counter() - t0

    run(warmup)
    wall = run(frames)
    # The split: the same work, one part at a time, synchronously.
    slot = pipe._slots[0]
    s = dev.new_stream()
    t0 = time.perf_counter()
    for i in range(frames):
        for dst, p in zip(split_planes(slot.pin_in, FMT, w, h), src[i % len(src)], strict=True):
            np.copyto(dst, p)
        dev.upload(slot.dev_in, slot.pin_in, s)
        dev.synchronize(s)
    upload = (time.perf_counter() - t0) / frames
    t0 = time.perf_counter()
    for _ in range(frames):
        pipe.kernels.to_model(slot.dev_in, engine._buf["lr"], FMT, w, h, engine.stream)
        pipe.kernels.from_model(engine._buf["sr"], slot.dev_out, FMT, pipe.out_width,
                                pipe.out_height, engine.stream)
        dev.synchronize(engine.stream)
    convert = (time.perf_counter() - t0) / frames
    t0 = time.perf_counter()
    for _ in range(frames):
        engine._execute(state.pair, state.parity)
        state.parity ^= 1
        dev.synchronize(engine.stream)
    infer = (time.perf_counter() - t0) / frames
    t0 = time.perf_counter()
    for _ in range(frames):
        dev.download(slot.pin_out, slot.dev_out, s)
        dev.synchronize(s)
        _ = [p.copy() for p in split_planes(slot.pin_out, FMT, pipe.out_width, pipe.out_height)]
    download = (time.perf_counter() - t0) / frames
    row = {"backend": engine.backend, "model": model, "precision": "fp16" if fp16 else "fp32",
           "lr": f"{w}x{h}", "out": f"{pipe.out_width}x{pipe.out_height}", "frames": frames,
           "fps": frames / wall, "upload_ms": upload * 1e3, "convert_ms": convert * 1e3,
           "infer_ms": infer * 1e3, "compute_ms": (convert + infer) * 1e3,
           "download_ms": download * 1e3, "graphs": dict(engine.stats),
           "bytes_in": int(slot.pin_in.nbytes), "bytes_out": int(slot.pin_out.nbytes)}
    row["transfer_share"] = (upload + convert + download) / (upload + convert + infer + download)
    row.update(gpu_memory())
    engine.close()
    if filter_frames:
        row.update(filter_case(backend, model, src, w, h, filter_frames, row["fps"]))
    return row


def gpu_memory() -> dict:
    """Peak and current device memory (CuPy's pool and PyTorch's allocator), MiB."""
    out = {}
    try:
        import cupy

        out["cupy_pool_mib"] = cupy.get_default_memory_pool().total_bytes() / 2**20
    except Exception:  # no CuPy (the fake device): nothing to report
        pass
    try:
        import torch

        if torch.cuda.is_available():
            out["torch_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    except Exception:
        pass
    return out


def filter_case(backend: str, model: str, src: list[list[np.ndarray]], w: int, h: int,
                frames: int, engine_fps: float) -> dict:
    """``vsvsr.recurrent`` end to end on the GPU frame path, vspipe-style parallel requests."""
    try:
        import vapoursynth as vs
    except ImportError:
        return {"filter_fps": None, "filter_note": "VapourSynth not installed"}
    import vsvsr

    blank = vs.core.std.BlankClip(width=w, height=h, format=vs.YUV420P10, length=frames,
                                  keep=True)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p, plane in enumerate(src[n % len(src)]):
            np.asarray(out[p])[...] = plane
        out.props["_Matrix"] = 1
        return out

    clip = blank.std.ModifyFrame(blank, fill)
    sr = vsvsr.recurrent(clip, model, backend)
    sr.get_frame(0)  # engine load, first graphs
    t0 = time.perf_counter()
    for fut in [sr.get_frame_async(n) for n in range(1, frames)]:
        fut.result()
    fps = (frames - 1) / (time.perf_counter() - t0)
    return {"filter_fps": fps, "filter_ratio": fps / engine_fps}


def markdown(report: dict) -> str:
    lines = [f"GPU: {report['gpu']} ({report['date']}); YUV420P10 in and out, two frames in "
             "flight; split from synchronous loops of each part", "",
             "| backend | model | precision | LR -> output | fps | upload ms | convert ms | "
             "infer ms | download ms | transfers+convert | filter fps (ratio) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["rows"]:
        filt = "-" if not r.get("filter_fps") else \
            f"{r['filter_fps']:.1f} ({r['filter_ratio']:.2f}x)"
        lines.append(f"| {r['backend']} | {r['model']} | {r['precision']} | {r['lr']} -> "
                     f"{r['out']} | {r['fps']:.1f} | {r['upload_ms']:.2f} | "
                     f"{r['convert_ms']:.2f} | {r['infer_ms']:.2f} | {r['download_ms']:.2f} | "
                     f"{100 * r['transfer_share']:.0f} % | {filt} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("torch-cuda", "tensorrt", "ort-cuda"),
                   default="torch-cuda")
    p.add_argument("--filter-frames", type=int, default=48,
                   help="frames for the filter end-to-end measure (0: skip)")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--fp32", action="store_true", help="also measure fp32")
    p.add_argument("--out", type=Path, default=Path("bench-gpu.json"))
    p.add_argument("--markdown", type=Path, default=None)
    args = p.parse_args(argv)
    from vsvsr.runtime.gpu_info import query_gpu

    gpu = query_gpu()
    report = {"gpu": gpu.name if gpu else "unknown", "gpu_info": gpu.__dict__ if gpu else None,
              "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
              "python": platform.python_version(), "rows": []}
    try:
        import torch

        report["torch"] = torch.__version__
    except ImportError:
        pass
    for model, size in CASES:
        for fp16 in (True, False) if args.fp32 else (True,):
            row = bench_case(args.backend, model, size, fp16, args.frames, args.warmup,
                             args.filter_frames if fp16 else 0)
            print(json.dumps(row), flush=True)
            report["rows"].append(row)
    args.out.write_text(json.dumps(report, indent=2))
    text = markdown(report)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
