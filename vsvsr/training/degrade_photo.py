"""Per-batch real-world degradation of the photo pseudo-videos, in-process and cheap.

The photo clips (:mod:`vsvsr.training.sequences`) are rendered anew for every batch, so they
cannot be pre-degraded like the real videos (:mod:`vsvsr.training.degrade_video`), and an
ffmpeg round trip per batch would cost more than the training step. Each clip therefore draws
a spec from the same ranges and gets its in-process stages exactly as the pipeline does them
(blur, downscale kernel, noise: :func:`~vsvsr.training.degrade_pipeline.blur_resize_noise`),
then, where the spec has a codec, a JPEG 4:2:0 round trip of every frame with Pillow at a
quality drawn from ``photo_jpeg`` (15-80 spans the Y-PSNR of H.264 CRF 20-33; where the spec
has only the bare 4:2:0 stage, quality 100). JPEG has the codecs' block transform, quantised
chroma and ringing, but not their temporal behaviour; the real videos carry that.
``docs/real-world.md`` gives the measured cost (well under the rendering's).
"""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import torch

from vsvsr.training.degrade import make_lr
from vsvsr.training.degrade_pipeline import blur_resize_noise
from vsvsr.training.degrade_ranges import DegradeConfig

#: JPEG quality of the bare 4:2:0 stage (chroma subsampled, luma next to untouched).
CHROMA_ONLY_QUALITY = 100


def jpeg_round_trip(frames: np.ndarray, quality: int) -> np.ndarray:
    """(T, H, W, 3) uint8 through a 4:2:0 JPEG at ``quality`` and back, frame by frame."""
    from PIL import Image  # a runtime dependency

    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, "JPEG", quality=int(quality), subsampling=2)
        buf.seek(0)
        with Image.open(buf) as img:
            out[t] = np.asarray(img.convert("RGB"))
    return out


def degrade_clip(hr: torch.Tensor, config: DegradeConfig, *, scale: int,
                 rng: np.random.Generator) -> torch.Tensor:
    """The degraded LR (T, 3, H/s, W/s), float on the 8-bit grid, of one HR clip (T, 3, H, W)
    in [0, 1]. A clean spec gives exactly :func:`~vsvsr.training.degrade.make_lr`."""
    spec = config.sample(rng)
    if spec.is_clean:
        return make_lr(hr, scale)
    with torch.inference_mode():
        lr = blur_resize_noise(hr, replace(spec, codec=None, chroma420=False), scale=scale,
                               rng=rng)
        lr8 = lr.mul(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    if spec.codec is not None or spec.chroma420:
        quality = (int(rng.integers(config.photo_jpeg[0], config.photo_jpeg[1] + 1))
                   if spec.codec is not None else CHROMA_ONLY_QUALITY)
        lr8 = jpeg_round_trip(lr8, quality)
    return torch.from_numpy(np.ascontiguousarray(lr8)).permute(0, 3, 1, 2).float().div_(255.0)


def degrade_batch(hr: torch.Tensor, config: DegradeConfig, *, scale: int,
                  seed: int) -> torch.Tensor:
    """Degraded LR (B, T, 3, H/s, W/s) of an HR batch (B, T, 3, H, W): one spec per clip,
    all drawn from ``seed`` (which the sampler takes from its own generator, so resuming a
    run repeats the batches exactly)."""
    rng = np.random.default_rng(seed)
    # fp32 whatever the training's autocast: the same numbers as the pipeline's (a bf16 blur
    # would also reach the antialiased resize, which has no bf16 kernel)
    with torch.autocast("cpu", enabled=False):
        return torch.stack([degrade_clip(clip, config, scale=scale, rng=rng) for clip in hr])
