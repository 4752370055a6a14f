"""Quality measures and pictures for the demo: Y-PSNR (the SR-benchmark convention) and a
labelled side-by-side crop.

The Y-PSNR functions live in :mod:`vsvsr.evaluation.metrics` (the one implementation, shared
with ``vsvsr eval``) and are re-exported here for the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vsvsr.evaluation.metrics import PSNR_CAP, mean_y_psnr, y601, y_psnr

if TYPE_CHECKING:
    import vapoursynth as vs
    from PIL import Image as PILImage

__all__ = ["PSNR_CAP", "comparison_image", "detail_box", "mean_y_psnr", "rgb_frames", "y601",
           "y_psnr"]


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
