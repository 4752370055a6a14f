"""``vsvsr.overfit`` on OpenVINO side by side with vs-mlrt's OpenVINO plugin on the same ONNX.

The pack's LR clip (the HR video degraded with the project's resize, as ``vsvsr overfit``
does) is held in memory as RGBS; every configuration reads the same frames, builds its graph
afresh each round (no frame served from an earlier round's cache; model compilation is not
timed) and runs all frames through ``clip.frames()``. Configurations alternate within a round,
in reversed order every other round; medians are reported, and the outputs are compared
(vs-mlrt does not clamp; ours does, so theirs is clamped here).

vs-mlrt's plugin is NOT installed into the venv: its autoloaded copy bundles its own
libopenvino, and once VapourSynth has loaded it, ``import openvino`` fails with a version
mismatch (docs/openvino.md). Install it beside, and this script loads it after OpenVINO:

    .venv/bin/pip install --no-deps --target /tmp/mlrt-ov 'vapoursynth-mlrt-ov==17.1'
    python scripts/ov_mlrt_compare.py --pack video.vsvsr --source hr.mp4 --frames 120 \
        --mlrt-plugin /tmp/mlrt-ov/vapoursynth/plugins/ov/libvsov.so --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _lr_clip(frames: list[np.ndarray]) -> Any:
    """RGBS clip of uint8 HWC frames, rendered once and held in VapourSynth's cache."""
    import vapoursynth as vs

    h, w = frames[0].shape[:2]
    planes = [np.ascontiguousarray(f.transpose(2, 0, 1), np.float32) / np.float32(255)
              for f in frames]
    blank = vs.core.std.BlankClip(width=w, height=h, format=vs.RGBS, length=len(frames),
                                  keep=True)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.asarray(out[p])[...] = planes[n][p]
        return out

    return blank.std.ModifyFrame(blank, fill)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pack", type=Path, required=True)
    p.add_argument("--source", required=True, help="the HR video the pack was made from")
    p.add_argument("--frames", type=int, default=None, help="the pack's frame count")
    p.add_argument("--mlrt-plugin", type=Path, required=True, help="libvsov.so")
    p.add_argument("--vs-threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ours", nargs="+", default=["0x0", "1x2", "2x1"],
                   help="our configurations, STREAMSxTHREADS (0x0: the defaults)")
    p.add_argument("--theirs", nargs="*", type=int, default=[1, 2],
                   help="vs-mlrt num_streams values")
    p.add_argument("--ort", action="store_true", help="also our filter on ONNX Runtime")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from vsvsr.runtime.openvino_backend import core, openvino_version

    core()  # OpenVINO's runtime first: the plugin then shares it (see the module doc)
    import vapoursynth as vs

    import vsvsr
    from vsvsr.stdo.pack import read_pack
    from vsvsr.stdo.source import load_source

    vs.core.num_threads = args.vs_threads
    vs.core.std.LoadPlugin(str(args.mlrt_plugin))
    pack = read_pack(args.pack)
    src = load_source(args.source, pack.scale, max_frames=args.frames or pack.frames)
    clip = _lr_clip(src.lr)
    vs.core.std.SetVideoCache(clip, mode=1, fixedsize=1, maxsize=4 * clip.num_frames)
    for _ in clip.frames(close=True):  # render the input once, outside the timing
        pass
    onnx = Path(tempfile.mkdtemp()) / "member0.onnx"
    onnx.write_bytes(pack.models[0].onnx)
    if len(pack.models) != 1:
        print("note: the pack has several models; vs-mlrt runs its first on whole frames, "
              "so only the JSTDO/general case compares like for like", file=sys.stderr)

    makers: dict[str, Any] = {}
    for cfg in args.ours:
        s, t = (int(x) for x in cfg.split("x"))
        makers[f"vsvsr.overfit openvino streams={s} threads={t}"] = \
            lambda s=s, t=t: vsvsr.overfit(clip, args.pack, "openvino", output_format="RGBS",
                                           streams=s, threads=t)
    if args.ort:
        makers["vsvsr.overfit ort (defaults)"] = \
            lambda: vsvsr.overfit(clip, args.pack, "ort", output_format="RGBS")
    for n in args.theirs:
        makers[f"vs-mlrt ov num_streams={n}"] = \
            lambda n=n: vs.core.ov.Model(clip, network_path=str(onnx), device="CPU",
                                         num_streams=n)

    got: dict[str, list[float]] = {k: [] for k in makers}
    keys = list(makers)
    for make in makers.values():  # untimed warm-up: first compile, threads, caches
        make().get_frame(0)
    for r in range(args.rounds):
        for k in keys if r % 2 == 0 else keys[::-1]:
            node = makers[k]()
            t0 = time.perf_counter()
            for _ in node.frames(close=True):
                pass
            got[k].append(node.num_frames / (time.perf_counter() - t0))
            print(f"round {r}: {k}: {got[k][-1]:.2f} fps", flush=True)
    med = {k: statistics.median(v) for k, v in got.items()}
    best_theirs = max((v for k, v in med.items() if k.startswith("vs-mlrt")), default=float("nan"))

    ours_default = makers[keys[0]]()
    worst: dict[str, float] = {}
    for k in keys[1:]:
        other = makers[k]()
        worst[k] = 0.0
        for n in range(clip.num_frames):
            a = np.stack([np.asarray(ours_default.get_frame(n)[p]) for p in range(3)])
            b = np.clip(np.stack([np.asarray(other.get_frame(n)[p]) for p in range(3)]), 0, 1)
            worst[k] = max(worst[k], float(np.abs(a - b).max()))
    lines = [f"pack {args.pack.name}: {pack.method}, {len(pack.models)} model(s), "
             f"{pack.lr_size[0]}x{pack.lr_size[1]} -> x{pack.scale}, {clip.num_frames} frames, "
             f"VapourSynth threads {args.vs_threads}, OpenVINO {openvino_version()}, medians "
             f"of {args.rounds} alternating rounds", "",
             "| filter | fps (median) | rounds | vs best vs-mlrt | max abs diff to the first |",
             "| --- | --- | --- | --- | --- |"]
    for k in keys:
        diff = f"{worst[k]:.1e}" if k in worst else "(itself)"
        lines.append(f"| {k} | {med[k]:.2f} | {', '.join(f'{v:.1f}' for v in got[k])} | "
                     f"{med[k] / best_theirs:.2f}x | {diff} |")
    lines += ["", "(vs-mlrt's output clamped to [0, 1] for the comparison, as ours is)"]
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"fps": got, "median": med, "max_abs_diff": worst,
                                         "vs_threads": args.vs_threads,
                                         "frames": clip.num_frames}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
