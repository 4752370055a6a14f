"""The measured results of docs/stdo.md: packs for every method, full-frame Y-PSNR, sizes,
training time, filter fps (full vs patch mode) and the vs-mlrt side by side.

    # 1. packs and quality (one process per clip; resumable: finished runs are skipped)
    python scripts/stdo_results.py train --clip real/realbasicvsr_demo_000 --scale 4 --out runs/stdo
    # 2. filter speed (and vs-mlrt, when its plugin is given)
    python scripts/stdo_results.py fps --clip ... --out runs/stdo \
        --mlrt-plugin /tmp/mlrt-bench/vapoursynth/plugins/ort/libvsort.so
    # 3. the tables and the heat map
    python scripts/stdo_results.py report --out runs/stdo --md runs/stdo/tables.md \
        --heatmap docs/stdo-heatmap.png --heatmap-clip CLIP

A clip is a folder of HR frames, or ``long:IMAGE:FRAMES:WxH`` (a slow pan over one image,
rendered like ``vsvsr eval --long slow-pan``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: (run name, method, chunks, epochs multiplier). "jstdo-4-eq" trains its one model for twice
#: the epochs: the default fractions (1, 2/3, 1/3, 0) cover half the patches, so it then takes
#: the same number of steps as the four STDO-4 models together (equal total budget).
RUNS = (("general", "general", 1, 1.0), ("time-4", "time", 4, 1.0), ("stdo-2", "stdo", 2, 1.0),
        ("stdo-4", "stdo", 4, 1.0), ("jstdo-4", "jstdo", 4, 1.0), ("jstdo-4-eq", "jstdo", 4, 2.0))


def clip_name(spec: str) -> str:
    if spec.startswith("long:"):
        _, image, frames, size = spec.split(":")
        return f"long-{Path(image).parent.name}-{frames}"
    return Path(spec).name


def load_hr(spec: str, scale: int) -> list[np.ndarray]:
    from vsvsr.evaluation.data import load_frames, long_sequence, read_image

    if spec.startswith("long:"):
        _, image, frames, size = spec.split(":")
        w, h = (int(v) for v in size.split("x"))
        return long_sequence(read_image(Path(image)), "slow-pan", int(frames), (w, h), scale)
    return load_frames(Path(spec))


def cmd_train(args: argparse.Namespace) -> None:
    from vsvsr.stdo.api import overfit
    from vsvsr.stdo.train import TrainSettings

    hr = load_hr(args.clip, args.scale)
    folder = args.out / f"{clip_name(args.clip)}-x{args.scale}{args.tag}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, method, k, mult in RUNS:
        if args.only and name not in args.only:
            continue
        report_file = folder / f"{name}.json"
        if report_file.is_file():
            print(f"{name}: done before ({report_file})")
            continue
        t0 = time.monotonic()
        rep = overfit(hr, scale=args.scale, out=folder / f"{name}.vsvsr", method=method,
                      chunks=k, backbone=args.backbone, general=args.general,
                      settings=TrainSettings(epochs=args.epochs * mult, threads=args.threads),
                      evaluate=True, progress=not args.no_progress)
        d = rep.to_dict()
        d["wall_seconds"] = round(time.monotonic() - t0, 1)
        d["clip"] = args.clip
        d["epochs"] = args.epochs * mult
        d["backbone"] = args.backbone
        report_file.write_text(json.dumps(d, indent=1))
        print(f"{name}: {rep.psnr:.3f} dB (bicubic {rep.bicubic_psnr:.3f}), "
              f"{rep.train_seconds:.0f} s training", flush=True)


def _lr_clip(frames: list[np.ndarray]):  # noqa: ANN202
    import vapoursynth as vs

    h, w = frames[0].shape[:2]
    blank = vs.core.std.BlankClip(width=w, height=h, format=vs.RGB24, length=len(frames),
                                  keep=True)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.asarray(out[p])[...] = frames[n][:, :, p]
        return out

    return blank.std.ModifyFrame(blank, fill)


def _fps_once(node) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        node.output(sink)
    return node.num_frames / (time.perf_counter() - t0)


def _measure(makers: dict[str, Any], rounds: int) -> dict[str, float]:
    """Median fps of each graph over ``rounds``. Every measurement builds its graph afresh
    (no frame served from a cache of an earlier round), and the graphs alternate within a
    round (the machine's load drifts; alternating spreads it evenly)."""
    got: dict[str, list[float]] = {k: [] for k in makers}
    for make in makers.values():  # untimed warm-up: the process's first sessions and threads
        make().get_frame(0)
    for r in range(rounds):
        for k, make in makers.items():
            got[k].append(_fps_once(make()))
            print(f"round {r}: {k} {got[k][-1]:.2f} fps", flush=True)
    return {k: round(float(np.median(v)), 2) for k, v in got.items()}


def cmd_fps(args: argparse.Namespace) -> None:
    import vapoursynth as vs

    import vsvsr
    from vsvsr.evaluation.data import crop_to_multiple, degrade
    from vsvsr.stdo.pack import read_pack

    vs.core.num_threads = args.vs_threads
    hr = crop_to_multiple(load_hr(args.clip, args.scale), args.scale)
    lr = degrade(hr, args.scale)
    folder = args.out / f"{clip_name(args.clip)}-x{args.scale}{args.tag}"
    res: dict[str, Any] = {"clip": args.clip, "frames": len(lr), "vs_threads": args.vs_threads,
                           "ort_threads": args.threads, "lr_size": [lr[0].shape[1], lr[0].shape[0]],
                           "cpu_count": os.cpu_count(), "rounds": args.rounds}

    def ours(name: str, mode: str, streams: int = 1, threads: int = args.threads) -> Any:
        return lambda: vsvsr.overfit(_lr_clip(lr), pack=folder / f"{name}.vsvsr", backend="ort",
                                     output_format="RGBS", mode=mode, threads=threads,
                                     streams=streams)

    makers: dict[str, Any] = {f"{n}/{m}": ours(n, m) for n, m in (
        ("stdo-4", "full"), ("stdo-4", "patch"), ("stdo-4", "box"), ("stdo-2", "full"),
        ("stdo-2", "patch"), ("stdo-2", "box"), ("jstdo-4", "full"), ("general", "full"))}
    # frame-parallel variants: 2 frames at once, 1 inference thread each
    makers["stdo-4/full/streams2"] = ours("stdo-4", "full", 2, 1)
    makers["stdo-4/patch/streams2"] = ours("stdo-4", "patch", 2, 1)
    makers["jstdo-4/full/streams2"] = ours("jstdo-4", "full", 2, 1)
    # the filter's defaults (streams=0, threads=0: a frame per VapourSynth thread, cores shared)
    makers["stdo-4/patch/default"] = ours("stdo-4", "patch", 0, 0)
    makers["jstdo-4/full/default"] = ours("jstdo-4", "full", 0, 0)
    if args.mlrt_plugin:
        vs.core.std.LoadPlugin(str(args.mlrt_plugin))
        onnx = folder / "jstdo-4.onnx"
        onnx.write_bytes(read_pack(folder / "jstdo-4.vsvsr").models[0].onnx)

        def theirs(streams: int) -> Any:
            return lambda: vs.core.ort.Model(_lr_clip(lr).resize.Point(format=vs.RGBS),
                                             network_path=str(onnx), provider="CPU",
                                             num_streams=streams)

        for streams in (1, 2):
            makers[f"mlrt/jstdo-4/streams{streams}"] = theirs(streams)
    res["fps"] = _measure(makers, args.rounds)
    res["seams"] = seam_check(folder / "stdo-4.vsvsr", lr, hr)
    print("seams:", res["seams"], flush=True)
    if args.mlrt_plugin:  # after the timing: these requests fill the caches
        mine, worst = makers["jstdo-4/full"](), 0.0
        for streams in (1, 2):
            other = makers[f"mlrt/jstdo-4/streams{streams}"]()
            for n in range(len(lr)):
                a = np.stack([np.asarray(mine.get_frame(n)[p]) for p in range(3)])
                b = np.clip(np.stack([np.asarray(other.get_frame(n)[p]) for p in range(3)]), 0, 1)
                worst = max(worst, float(np.abs(a - b).max()))
        res["mlrt_max_abs_diff_vs_ours"] = worst  # ours clamps to [0, 1]; theirs is clamped here
        print("max |ours - clamp(vs-mlrt)| over all frames:", worst, flush=True)
    (folder / f"fps-vs{args.vs_threads}-ort{args.threads}.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res["fps"]))


def seam_check(pack_path: Path, lr: list[np.ndarray], hr: list[np.ndarray]) -> dict[str, float]:
    """Full vs patch mode (equal?), and what patches without context (the paper's zero-padded
    patches, radius 0) cost in full-frame Y-PSNR: the seams."""
    from dataclasses import replace

    from vsvsr.stdo.pack import read_pack
    from vsvsr.stdo.runner import PackRunner
    from vsvsr.stdo.scoring import frame_y_psnr, to_uint8

    pack = read_pack(pack_path)
    full = PackRunner(pack, "ort")
    patch = PackRunner(pack, "ort", mode="patch")
    box = PackRunner(pack, "ort", mode="box")
    bare = PackRunner(replace(pack, receptive_radius=0), "ort", mode="patch")
    worst, p_full, p_bare = 0.0, [], []
    for n, (f, h) in enumerate(zip(lr, hr, strict=True)):
        x = np.ascontiguousarray(f.transpose(2, 0, 1)[None], np.float32) / np.float32(255)
        a = full.upscale(x, n)
        worst = max(worst, float(np.abs(a - patch.upscale(x, n)).max()),
                    float(np.abs(a - box.upscale(x, n)).max()))
        p_full.append(frame_y_psnr(to_uint8(a[0]), h))
        # every patch alone, zero context: run each patch through the whole-patch path
        p_bare.append(frame_y_psnr(to_uint8(_all_patches(bare, x, n)[0]), h))
    return {"max_abs_full_vs_patch_and_box": worst, "psnr_full": round(float(np.mean(p_full)), 3),
            "psnr_patches_without_context": round(float(np.mean(p_bare)), 3)}


def _all_patches(runner: Any, x: np.ndarray, n: int) -> np.ndarray:
    """Patch mode even where a frame uses one model (the runner's shortcut would hide seams)."""
    return runner._patches(x, runner.pack.labels[n])


def cmd_report(args: argparse.Namespace) -> None:
    lines = []
    for folder in sorted(p for p in args.out.iterdir() if p.is_dir()):
        reps = {n: json.loads((folder / f"{n}.json").read_text())
                for n, *_ in RUNS if (folder / f"{n}.json").is_file()}
        if not reps:
            continue
        any_rep = next(iter(reps.values()))
        w, h = any_rep["lr_size"]
        s = any_rep["scale"]
        lines += [f"### {folder.name}: {any_rep['frames']} frames, {w}x{h} -> {w * s}x{h * s} "
                  f"(x{s}), grid {any_rep['grid'][0]}x{any_rep['grid'][1]}, "
                  f"{reps.get('stdo-4', any_rep).get('epochs')} epochs per model, "
                  f"{any_rep.get('backbone', 'espcn')}", "",
                  "| method | models | Y-PSNR (dB) | vs general | model bytes | params/model "
                  "| label bytes/frame | training (s) |", "| --- | --- | --- | --- | --- | --- | --- | --- |",
                  f"| bicubic | 0 | {any_rep['bicubic_psnr']:.3f} | "
                  f"{any_rep['bicubic_psnr'] - reps.get('general', any_rep)['psnr']:+.3f} | 0 | 0 | 0 | 0 |"]
        g = reps.get("general", {}).get("psnr")
        for n, r in reps.items():
            gain = f"{r['psnr'] - g:+.3f}" if g is not None else "n/a"
            lines.append(f"| {n} | {r['models']} | {r['psnr']:.3f} | {gain} | {r['model_bytes']} "
                         f"| {r['params_per_model']} | {r['label_bytes_per_frame']:.2f} | "
                         f"{r['train_seconds']:.0f} |")
        lines.append("")
        for f in sorted(folder.glob("fps-*.json")):
            fps = json.loads(f.read_text())
            lines += [f"fps ({f.name}: core.num_threads {fps['vs_threads']}, ORT threads "
                      f"{fps['ort_threads']}, median of {fps['rounds']}): "
                      + ", ".join(f"{k} {v}" for k, v in fps["fps"].items()), "",
                      f"seams: {fps.get('seams')}; vs-mlrt max abs diff: "
                      f"{fps.get('mlrt_max_abs_diff_vs_ours')}", ""]
    text = "\n".join(lines)
    print(text)
    if args.md:
        args.md.write_text(text)
    if args.heatmap:
        heatmap(args)


def heatmap(args: argparse.Namespace) -> None:
    """Per-patch PSNR of the general model and the STDO-4 gain on one frame, like the paper."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vsvsr.evaluation.data import crop_to_multiple, degrade
    from vsvsr.stdo.grid import PatchGrid
    from vsvsr.stdo.pack import read_pack
    from vsvsr.stdo.runner import PackRunner
    from vsvsr.stdo.scoring import patch_psnr, to_uint8

    spec = args.heatmap_clip
    folder = args.out / f"{clip_name(spec)}-x{args.scale}"
    pack = read_pack(folder / "stdo-4.vsvsr")
    scores = np.load(folder / "stdo-4.vsvsr.work" / "scores.npy")
    n = args.heatmap_frame
    hr = crop_to_multiple(load_hr(spec, pack.scale), pack.scale)
    lr = degrade(hr[n:n + 1], pack.scale)[0]
    grid = PatchGrid(*pack.lr_size, *pack.grid)
    x = np.ascontiguousarray(lr.transpose(2, 0, 1)[None], np.float32) / np.float32(255)
    stdo = patch_psnr(to_uint8(PackRunner(pack, "ort").upscale(x, n)[0]), hr[n], grid, pack.scale)
    fig, ax = plt.subplots(1, 4, figsize=(20, 3.6))
    ax[0].imshow(hr[n])
    ax[0].set_title(f"HR frame {n}")
    finite = np.where(np.isfinite(scores[n]), scores[n], np.nan)
    for a, data, title, cmap in (
            (ax[1], finite, "general model: per-patch Y-PSNR (dB)", "viridis"),
            (ax[2], pack.labels[n].astype(float), "STDO chunk (0 = lowest PSNR)", "magma"),
            (ax[3], np.where(np.isfinite(stdo), stdo, np.nan) - finite,
             "STDO-4 gain over general (dB)", "RdBu")):
        kw = {}
        if cmap == "RdBu":  # a gain: white at 0, symmetric
            m = float(np.nanmax(np.abs(data))) or 1.0
            kw = {"vmin": -m, "vmax": m}
        im = a.imshow(data, cmap=cmap, interpolation="nearest", **kw)
        a.set_title(title)
        fig.colorbar(im, ax=a, fraction=0.03)
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.heatmap, dpi=80)
    print(f"wrote {args.heatmap}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("train", "fps", "report"))
    ap.add_argument("--clip")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "stdo")
    ap.add_argument("--backbone", default="espcn")
    ap.add_argument("--general", type=Path)
    ap.add_argument("--epochs", type=float, default=50.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vs-threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", action="append")
    ap.add_argument("--tag", default="", help="suffix of the clip's result folder (another budget)")
    ap.add_argument("--mlrt-plugin", type=Path)
    ap.add_argument("--md", type=Path)
    ap.add_argument("--heatmap", type=Path)
    ap.add_argument("--heatmap-clip")
    ap.add_argument("--heatmap-frame", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    {"train": cmd_train, "fps": cmd_fps, "report": cmd_report}[args.stage](args)


if __name__ == "__main__":
    main()
