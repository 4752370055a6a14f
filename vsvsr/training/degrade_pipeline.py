"""Real-world degradation of a whole sequence: blur, downscale, noise, then a real codec.

This is the one function the trainer and ``vsvsr eval --degrade`` call to make LR input that
looks like what users feed an upscaler (web video, DVD and TV rips, anime encodes):
:func:`degrade_sequence`. The spec (:class:`~vsvsr.training.degrade_spec.DegradeSpec`) is
fixed per clip; training draws one per clip from
:class:`~vsvsr.training.degrade_ranges.DegradeConfig`. Only the noise is random given a spec,
and it comes from the seed, so ``(frames, spec, scale, seed)`` fixes the output bit for bit.

How the trainer uses it (:mod:`vsvsr.training.degrade_video` does this for every training
shot; see also :mod:`vsvsr.training.degrade_cache`):

1. Take an HR window of a real video, ``hr`` (T, H, W, 3) uint8, H and W multiples of the
   scale (crop first). Degrade the WHOLE window at once, not a crop per training step: the
   codec must see the full frames and their motion to compress like a real file, and one
   encode then serves many random crops.
2. Draw the spec and the noise seed from the clip's seed, and go through the cache::

       rng = np.random.default_rng(clip_seed)
       spec = cfg.degrade.sample(rng)
       lr = DegradeCache(cache_dir).degrade(hr, spec, scale=s, seed=clip_seed,
                                            source_key=f"{video}:{first}:{T}")

3. Cut aligned crops: LR ``lr[:, y:y+c, x:x+c]`` pairs with HR
   ``hr[:, y*s:(y+c)*s, x*s:(x+c)*s]`` (no stage shifts the image). Use the untouched HR as
   the target: the network learns to remove the blur, noise and compression.
4. Keep a few specs (seeds) per window rather than one per step: the ffmpeg round trip costs
   milliseconds per frame (``docs/real-world.md`` has the measured rates), far more than a
   training step's data loading should.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from vsvsr.training.degrade_codec import codec_round_trip
from vsvsr.training.degrade_spec import BlurSpec, DegradeSpec, NoiseSpec
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

#: Frames resized per torch call (bounds the float32 memory of big HR frames).
CHUNK = 16
#: Bumped whenever the output for the same inputs changes (it is part of the cache key).
PIPELINE_VERSION = 1


def _torch():  # noqa: ANN202
    return lazy_import("torch", "the real-world degradation (blur and downscale)")


def gaussian_kernel2d(blur: BlurSpec, scale: int) -> np.ndarray:
    """The normalized 2-D Gaussian of ``blur`` in HR pixels (sigmas times ``scale``), odd
    size covering +-3 sigma of the wider axis."""
    sx = blur.sigma * scale
    sy = (blur.sigma_y if blur.sigma_y is not None else blur.sigma) * scale
    radius = max(1, math.ceil(3.0 * max(sx, sy)))
    ax = np.arange(-radius, radius + 1, dtype=np.float64)
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    th = math.radians(blur.angle)
    u = math.cos(th) * xx + math.sin(th) * yy
    v = -math.sin(th) * xx + math.cos(th) * yy
    k = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return k / k.sum()


def _blur(x, kernel: np.ndarray):  # noqa: ANN001, ANN202
    """Depthwise convolution of (N, 3, H, W) with reflect padding (no dark borders)."""
    torch = _torch()
    import torch.nn.functional as F

    r = kernel.shape[0] // 2
    h, w = x.shape[-2:]
    mode = "reflect" if r < min(h, w) else "replicate"
    k = torch.from_numpy(kernel.astype(np.float32))[None, None].expand(3, 1, -1, -1)
    return F.conv2d(F.pad(x, (r, r, r, r), mode=mode), k, groups=3)


def _resize(x, scale: int, kernel: str):  # noqa: ANN001, ANN202
    import torch.nn.functional as F

    from vsvsr.training.degrade import downscale

    if scale == 1:
        return x
    if kernel == "bicubic":
        return downscale(x, scale)  # the training resize, exactly
    h, w = x.shape[-2:]
    size = (h // scale, w // scale)
    if kernel == "bilinear":
        out = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    else:  # area: the mean of each scale x scale block
        out = F.interpolate(x, size=size, mode="area")
    return out.clamp_(0.0, 1.0)


def _noise(rng: np.random.Generator, noise: NoiseSpec, shape: tuple[int, ...]) -> np.ndarray:
    """One frame's noise in [0, 1] units, (3, H, W) float32 (channels equal when gray)."""
    h, w = shape[-2:]
    n = rng.standard_normal((1 if noise.gray else 3, h, w), dtype=np.float32)
    n *= np.float32(noise.sigma / 255.0)
    return np.broadcast_to(n, (3, h, w))


def blur_resize_noise(x, spec: DegradeSpec, *, scale: int,  # noqa: ANN001, ANN201
                      rng: np.random.Generator):
    """The in-process stages of ``spec`` on float frames: blur, downscale, noise, clamp.

    ``x`` is (N, 3, H, W) float in [0, 1] (H, W multiples of ``scale``); the result is the LR
    before 8-bit rounding and the codec. The noise takes one draw per frame, in order. This is
    what :func:`degrade_sequence` runs chunk by chunk, and what the photo pseudo-videos use per
    batch (:mod:`vsvsr.training.degrade_photo`), so both mean the same by a spec.
    """
    torch = _torch()
    if spec.blur is not None:
        x = _blur(x, gaussian_kernel2d(spec.blur, scale))
    x = _resize(x, scale, spec.kernel)
    if spec.noise is not None:
        noise = np.stack([_noise(rng, spec.noise, x.shape) for _ in range(x.shape[0])])
        x = x + torch.from_numpy(noise)
    return x.clamp(0.0, 1.0)


def _as_array(frames: np.ndarray | list[np.ndarray]) -> np.ndarray:
    arr = np.asarray(frames) if isinstance(frames, np.ndarray) else np.stack(frames)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"degrade_sequence: need (T, H, W, 3) uint8 RGB frames, got "
                         f"{arr.dtype} {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError("degrade_sequence: no frames")
    return arr


def degrade_sequence(frames: np.ndarray | list[np.ndarray], spec: DegradeSpec, *,
                     scale: int = 1, seed: int | np.random.Generator = 0,
                     ffmpeg: str | None = None) -> np.ndarray:
    """Degrade a whole sequence: blur -> downscale by ``scale`` -> noise -> 8 bits -> codec.

    Args:
        frames: (T, H, W, 3) uint8 RGB: HR frames with ``scale`` > 1, or frames already at the
            LR size with ``scale=1`` (then only blur, noise and codec apply).
        spec: what to do (a clean spec gives exactly the training resize rounded to 8 bits,
            the LR of plain ``vsvsr eval``).
        scale: integer downscale factor; H and W must divide by it.
        seed: seed (or generator) of the noise, drawn frame by frame in order.
        ffmpeg: the ffmpeg binary (default :func:`vsvsr.encode.ffmpeg.find_ffmpeg`).

    Returns:
        (T, H / scale, W / scale, 3) uint8 RGB.

    Raises:
        ValueError: frames that are not (T, H, W, 3) uint8, or a size that does not divide.
        MissingCodecError: ffmpeg lacks the spec's encoder (the message names it).
    """
    arr = _as_array(frames)
    if scale < 1:
        raise ValueError(f"degrade_sequence: scale must be >= 1, got {scale}")
    t, h, w = arr.shape[:3]
    if h % scale or w % scale:
        raise ValueError(f"degrade_sequence: size {w}x{h} does not divide by {scale}; crop "
                         "the frames first")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    torch = _torch()
    out = np.empty((t, h // scale, w // scale, 3), np.uint8)
    with torch.inference_mode():
        for i in range(0, t, CHUNK):
            x = torch.from_numpy(arr[i:i + CHUNK]).permute(0, 3, 1, 2).float().div_(255.0)
            x = blur_resize_noise(x, spec, scale=scale, rng=rng)
            x = x.mul(255.0).round_().to(torch.uint8)
            out[i:i + CHUNK] = x.permute(0, 2, 3, 1).numpy()
    if spec.codec is not None or spec.chroma420:
        out = codec_round_trip(out, spec.codec, ffmpeg=ffmpeg)
    return out
