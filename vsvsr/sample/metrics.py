"""Quality measures and pictures for the demo: Y-PSNR (the SR-benchmark convention) and a
labelled side-by-side crop.

Y-PSNR follows the usual super-resolution papers: 8-bit RGB -> BT.601 luma
(``16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1]), ``scale`` pixels cropped
from every border, PSNR against 255 per frame, averaged over frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import vapoursynth as vs
    from PIL import Image as PILImage

#: PSNR reported for identical frames (keeps the JSON summary finite).
PSNR_CAP = 100.0


def y601(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in [16, 235] of an (H, W, 3) uint8 (or 0-255 float) RGB image."""
    x = rgb.astype(np.float64) / 255.0
    return 16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def y_psnr(test: np.ndarray, ref: np.ndarray, border: int = 0) -> float:
    """PSNR (dB) of the BT.601 luma of ``test`` against ``ref``, ``border`` px cropped."""
    if test.shape != ref.shape:
        raise ValueError(f"y_psnr: shapes differ: {test.shape} vs {ref.shape}")
    a, b = y601(test), y601(ref)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = float(np.mean((a - b) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10.0 * math.log10(255.0 ** 2 / mse))


def mean_y_psnr(tests: Sequence[np.ndarray], refs: Sequence[np.ndarray],
                border: int = 0) -> tuple[float, list[float]]:
    """The mean over frames of :func:`y_psnr`, and the per-frame values."""
    if len(tests) != len(refs):
        raise ValueError(f"mean_y_psnr: {len(tests)} frames against {len(refs)} references")
    per = [y_psnr(t, r, border) for t, r in zip(tests, refs, strict=True)]
    return float(np.mean(per)), per


def rgb_frames(clip: vs.VideoNode, *, matrix: str = "709") -> list[np.ndarray]:
    """All frames of ``clip`` as (H, W, 3) uint8 RGB (YUV uses its ``_Matrix``, else ``matrix``)."""
    import vapoursynth as vs

    if clip.format.color_family == vs.YUV:
        unsaid = int(clip.get_frame(0).props.get("_Matrix", 2)) == 2  # type: ignore[arg-type]
        kwargs = {"matrix_in_s": matrix} if unsaid else {}
        clip = clip.resize.Bicubic(format=vs.RGB24, dither_type="none", **kwargs)
    elif clip.format.id != vs.RGB24:
        clip = clip.resize.Point(format=vs.RGB24, dither_type="none")
    out = []
    for frame in clip.frames(close=True):
        out.append(np.stack([np.asarray(frame[p]) for p in range(3)], axis=-1))
    return out


def detail_box(image: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) window of ``size`` (w, h) with the most edge energy."""
    w, h = size
    y = y601(image)
    energy = np.abs(np.diff(y, axis=0))[:, :-1] + np.abs(np.diff(y, axis=1))[:-1, :]
    H, W = energy.shape
    w, h = min(w, W), min(h, H)
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(4, min(w, h) // 8)
    best, box = -1.0, (0, 0, w, h)
    for top in range(0, H - h + 1, step):
        for left in range(0, W - w + 1, step):
            s = (integral[top + h, left + w] - integral[top, left + w]
                 - integral[top + h, left] + integral[top, left])
            if s > best:
                best, box = float(s), (left, top, left + w, top + h)
    return box


def comparison_image(panels: Sequence[tuple[str, np.ndarray]], box: tuple[int, int, int, int],
                     *, zoom: int = 2, caption: str = "") -> PILImage.Image:
    """Crops ``box`` of each (label, RGB image) side by side, enlarged ``zoom`` x (nearest),
    each with its label above; ``caption`` goes under the row."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    crops = [Image.fromarray(img).crop(box) for _, img in panels]
    cw, ch = crops[0].width * zoom, crops[0].height * zoom
    gap, label_h = 6, 18
    cap_h = label_h if caption else 0
    canvas = Image.new("RGB", (len(crops) * cw + (len(crops) + 1) * gap,
                               ch + label_h + 2 * gap + cap_h), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    for i, ((label, _), crop) in enumerate(zip(panels, crops, strict=True)):
        x = gap + i * (cw + gap)
        draw.text((x + 2, gap // 2 + 2), label, fill=(240, 240, 240), font=font)
        canvas.paste(crop.resize((cw, ch), Image.Resampling.NEAREST), (x, label_h + gap))
    if caption:
        draw.text((gap + 2, label_h + gap + ch + 4), caption, fill=(200, 200, 200), font=font)
    return canvas
