"""Deterministic test clips: each frame is a pure function of its index.

Frames are smooth random textures panned by sub-pixel steps, with hard cuts at given
frames, so recurrent state, motion and scene resets all matter. Real frames from
``../shared/data`` replace the textures when present (``real_frames``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import vapoursynth as vs

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _texture(seed: int, h: int, w: int) -> np.ndarray:
    """A smooth colour texture, larger than the frame so pans have room."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((3, h // 4 + 4, w // 4 + 4)).astype(np.float32)
    big = np.kron(coarse, np.ones((1, 4, 4), np.float32))
    fine = rng.random(big.shape).astype(np.float32) * 0.25
    return np.clip(0.75 * big + fine, 0, 1)


def make_frames(num: int, height: int, width: int, *, cuts: Sequence[int] = (),
                seed: int = 0) -> list[np.ndarray]:
    """``num`` frames (3, H, W) float32 in [0, 1]; a new scene starts at each index in cuts."""
    frames = []
    scene, start = 0, 0
    tex = _texture(seed, height + 16, width + 16)
    for n in range(num):
        if n in cuts:
            scene, start = scene + 1, n
            tex = _texture(seed + 1000 * scene, height + 16, width + 16)
        t = n - start
        dy, dx = (0.37 * t) % 8, (0.61 * t) % 8
        iy, ix, fy, fx = int(dy), int(dx), dy % 1, dx % 1
        a = tex[:, iy:iy + height + 1, ix:ix + width + 1]
        rows = a[:, :-1] * (1 - fy) + a[:, 1:] * fy
        frames.append(np.ascontiguousarray(rows[:, :, :-1] * (1 - fx) + rows[:, :, 1:] * fx))
    return frames


def real_frames(num: int, height: int, width: int) -> list[np.ndarray] | None:
    """Crops of the shared real clip (320x180), or None when ../shared/data is absent."""
    folder = SHARED_REAL / "basicvsrpp_demo_000"
    files = sorted(folder.glob("*.png"))
    if not files:
        return None
    from PIL import Image

    out = []
    for n in range(num):
        img = np.asarray(Image.open(files[n % len(files)]).convert("RGB"), np.float32) / 255
        out.append(np.ascontiguousarray(img[40:40 + height, 60:60 + width].transpose(2, 0, 1)))
    return out


def array_clip(frames: Sequence[np.ndarray], *, fmt: int = vs.RGBS, matrix: str = "709",
               fps: tuple[int, int] = (24, 1), scene_props: Sequence[int] = ()) -> vs.VideoNode:
    """A clip serving ``frames``; converted to ``fmt`` (YUV gets ``_Matrix``);
    frames listed in ``scene_props`` carry ``_SceneChangePrev=1``."""
    core = vs.core
    _, h, w = frames[0].shape
    blank = core.std.BlankClip(width=w, height=h, format=vs.RGBS, length=len(frames),
                               fpsnum=fps[0], fpsden=fps[1], keep=True)
    marks = set(scene_props)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.asarray(out[p])[...] = frames[n][p]
        if n in marks:
            out.props["_SceneChangePrev"] = 1
        return out

    clip = blank.std.ModifyFrame(blank, fill)
    if fmt == vs.RGBS:
        return clip
    if core.get_video_format(fmt).color_family == vs.YUV:
        return clip.resize.Bicubic(format=fmt, matrix_s=matrix)
    return clip.resize.Point(format=fmt)


def planes_of(frame: vs.VideoFrame) -> np.ndarray:
    """All planes of a 4:4:4 frame as one (P, H, W) array (copy)."""
    return np.stack([np.array(frame[p]) for p in range(frame.format.num_planes)])
