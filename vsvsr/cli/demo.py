"""``vsvsr demo``: the main job end to end on the built-in sample clip.

1. Renders the sample (scikit-image photos, moving camera, hard cuts) at HR and shrinks it
   by the model's scale into a lossless LR video (``sample_lr_x{scale}.mkv``).
2. Runs ``vsvsr upscale`` on it (the same code, real ffmpeg, libx264) with scene detection:
   ``demo_upscaled.mkv``.
3. Encodes a plain bicubic upscale of the same LR video with the same settings
   (``demo_bicubic.mkv``), decodes both and measures Y-PSNR (BT.601, ``scale`` px border
   cropped) against the HR frames, per frame, averaged over all frames.
4. Writes ``comparison.png`` (bicubic | vsvsr | source HR crops of one frame, labelled) and
   ``summary.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.cli._common import CommandError, add_model_arguments, positive_int, vapoursynth
from vsvsr.utils.atomic import atomic_write_bytes

NAME = "demo"
HELP = "upscale the built-in sample clip and compare with bicubic"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--out", type=Path, default=Path("out/demo"),
                   help="output folder (default out/demo)")
    p.add_argument("--codec", default="libx264", help="video encoder (default libx264)")
    p.add_argument("--crf", type=float, default=18.0, help="encoder quality (default 18)")
    p.add_argument("--preset", default="medium", help="encoder preset (default medium)")
    p.add_argument("--frames-per-scene", type=positive_int, default=15,
                   help="frames of each photo between cuts (default 15; 4 photos)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _scene_means(per_frame: list[float], starts: list[int]) -> list[float]:
    bounds = [*starts, len(per_frame)]
    return [float(np.mean(per_frame[a:b])) for a, b in zip(bounds, bounds[1:], strict=False)]


def run_demo(*, model: str, backend: str = "auto", threads: int = 0, precision: str = "auto",
             out: Path,
             codec: str = "libx264", crf: float = 18.0, preset: str = "medium",
             frames_per_scene: int = 15, progress: bool = True) -> dict[str, Any]:
    """Run the demo; returns the summary (also written to ``out/summary.json``)."""
    from vsvsr.cli.upscale import UpscaleOptions, open_source, upscale
    from vsvsr.encode.pipe import EncodeSettings, encode_clip
    from vsvsr.runtime.select import open_engine
    from vsvsr.sample.clip import BICUBIC, SampleSpec, write_sample
    from vsvsr.sample.metrics import comparison_image, detail_box, mean_y_psnr, rgb_frames

    vapoursynth("vsvsr demo")
    t_start = time.perf_counter()
    with open_engine(model, backend, threads=threads, precision=precision) as engine:
        desc, backend_name = engine.descriptor, engine.backend
        ran_precision = getattr(engine, "precision", None)  # OpenVINO's / torch's bf16 or f32
    scale = desc.scale
    spec = SampleSpec(frames_per_scene=frames_per_scene)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    sample = write_sample(out, scale, spec=spec)
    t_sample = time.perf_counter() - t0

    settings = EncodeSettings(codec=codec, crf=crf, preset=preset, audio="none")
    upscaled = out / "demo_upscaled.mkv"
    t0 = time.perf_counter()
    result = upscale(UpscaleOptions(input=sample.lr_video, output=upscaled, model=model,
                                    backend=backend, threads=threads, precision=precision,
                                    scene_detect=True,
                                    encode=settings, overwrite=True, progress=progress))
    t_upscale = time.perf_counter() - t0

    lr = open_source(sample.lr_video)
    bicubic_clip = lr.resize.Bicubic(lr.width * scale, lr.height * scale, **BICUBIC)
    bicubic = out / "demo_bicubic.mkv"
    encode_clip(bicubic_clip, bicubic, settings, progress=False)

    hr = sample.hr_frames
    got_sr = rgb_frames(open_source(upscaled))
    got_bic = rgb_frames(open_source(bicubic))
    if len(got_sr) != len(hr) or got_sr[0].shape != hr[0].shape:
        raise CommandError(f"vsvsr demo: {upscaled} has {len(got_sr)} frames of "
                           f"{got_sr[0].shape[1]}x{got_sr[0].shape[0]}, expected {len(hr)} of "
                           f"{hr[0].shape[1]}x{hr[0].shape[0]}")
    psnr_sr, per_sr = mean_y_psnr(got_sr, hr, border=scale)
    psnr_bic, per_bic = mean_y_psnr(got_bic, hr, border=scale)

    # The last frame of the third scene: the recurrence has its longest history there.
    scene = min(2, len(spec.photos) - 1)
    idx = spec.scene_starts[scene] + spec.frames_per_scene - 1
    box = detail_box(hr[idx], (min(176, hr[idx].shape[1]), min(128, hr[idx].shape[0])))
    image = comparison_image(
        [(f"bicubic  {per_bic[idx]:.2f} dB", got_bic[idx]),
         (f"vsvsr {desc.name}  {per_sr[idx]:.2f} dB", got_sr[idx]),
         ("source (HR)", hr[idx])],
        box, zoom=2,
        caption=f"frame {idx}, x{scale}, Y-PSNR (BT.601); all frames: bicubic {psnr_bic:.2f} "
                f"dB, vsvsr {psnr_sr:.2f} dB")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    comparison = out / "comparison.png"
    atomic_write_bytes(comparison, buf.getvalue())

    summary: dict[str, Any] = {
        "model": desc.name, "model_arg": str(model), "scale": scale, "backend": backend_name,
        "precision": ran_precision,
        "frames": len(hr), "scene_starts": spec.scene_starts, "photos": list(spec.photos),
        "lr_size": [lr.width, lr.height], "hr_size": [hr[0].shape[1], hr[0].shape[0]],
        "encode": {"codec": codec, "crf": crf, "preset": preset},
        "y_psnr": {"bicubic": psnr_bic, "vsvsr": psnr_sr, "gain": psnr_sr - psnr_bic,
                   "border": scale, "note": "BT.601 luma of the decoded videos (both encoded "
                                            "with the same settings) against the HR frames, "
                                            "mean over frames"},
        "y_psnr_per_scene": {"bicubic": _scene_means(per_bic, spec.scene_starts),
                             "vsvsr": _scene_means(per_sr, spec.scene_starts)},
        "y_psnr_per_frame": {"bicubic": per_bic, "vsvsr": per_sr},
        "comparison": {"frame": idx, "box": list(box)},
        "seconds": {"sample": t_sample, "upscale": t_upscale,
                    "total": time.perf_counter() - t_start},
        "upscale_fps": result.fps,
        "files": {"lr_video": str(sample.lr_video), "hr_video": str(sample.hr_video),
                  "upscaled": str(upscaled), "bicubic": str(bicubic),
                  "comparison": str(comparison)},
    }
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def run(args: argparse.Namespace) -> int:
    s = run_demo(model=args.model, backend=args.backend, threads=args.threads,
                 precision=args.precision, out=args.out,
                 codec=args.codec, crf=args.crf, preset=args.preset,
                 frames_per_scene=args.frames_per_scene, progress=not args.no_progress)
    p = s["y_psnr"]
    print(f"vsvsr demo: {s['model']} (x{s['scale']}) on {s['backend']}, {s['frames']} frames "
          f"{s['lr_size'][0]}x{s['lr_size'][1]} -> {s['hr_size'][0]}x{s['hr_size'][1]}")
    print(f"  Y-PSNR vs source: bicubic {p['bicubic']:.2f} dB, vsvsr {p['vsvsr']:.2f} dB "
          f"({p['gain']:+.2f} dB)")
    print(f"  upscale {s['seconds']['upscale']:.1f} s ({s['upscale_fps']:.2f} fps), total "
          f"{s['seconds']['total']:.1f} s")
    for key in ("upscaled", "comparison"):
        print(f"  {key}: {s['files'][key]}")
    print(f"  summary: {args.out / 'summary.json'}")
    return 0
