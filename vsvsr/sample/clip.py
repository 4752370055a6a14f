"""The built-in sample clip: scikit-image's bundled photographs filmed by a virtual camera.

Each photo is one scene: a smooth sub-pixel pan with a little hand-held wobble and a slow
zoom in, rendered at HR by PIL's bicubic affine resampling (deterministic), with a hard cut to
the next photo. The LR clip is the HR clip shrunk by the model's scale with VapourSynth's
antialiased bicubic (Catmull-Rom, the kernel training uses), as YUV 4:2:0 8-bit BT.709 like
ordinary video. Only photos that ship inside scikit-image are used: nothing is downloaded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vsvsr.errors import ClipFormatError, MissingDependencyError

if TYPE_CHECKING:
    import vapoursynth as vs

#: Photos bundled with scikit-image (``skimage.data``), in scene order.
DEFAULT_PHOTOS = ("rocket", "coffee", "astronaut", "chelsea")
#: Catmull-Rom (b=0, c=0.5): the antialiased bicubic of PIL, Matlab and the training degrade.
BICUBIC = {"filter_param_a": 0.0, "filter_param_b": 0.5}


@dataclass(kw_only=True, frozen=True)
class SampleSpec:
    """Size, length and content of the sample clip.

    Attributes:
        width, height: HR frame size; must divide by 2 * scale so the LR clip can be 4:2:0.
        frames_per_scene: frames of each photo between hard cuts.
        photos: ``skimage.data`` function names, one scene each.
        fps: frame rate as (numerator, denominator).
        pan: pan distance over a scene, as a share of the free room around the window.
        zoom: relative zoom-in over a scene.
        max_speed: bound on the average pan speed, HR pixels per frame (training moves the
            camera up to 3 LR pixels per frame).
    """

    width: int = 512
    height: int = 288
    frames_per_scene: int = 15
    photos: tuple[str, ...] = DEFAULT_PHOTOS
    fps: tuple[int, int] = (24, 1)
    pan: float = 0.6
    zoom: float = 0.06
    max_speed: float = 3.0

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"SampleSpec: size must be at least 16x16, got "
                             f"{self.width}x{self.height}")
        if self.frames_per_scene < 1 or not self.photos:
            raise ValueError("SampleSpec: needs at least one photo and one frame per scene")
        if self.fps[0] <= 0 or self.fps[1] <= 0:
            raise ValueError(f"SampleSpec: fps must be positive, got {self.fps}")
        if not (0 <= self.pan <= 1 and 0 <= self.zoom < 0.5 and self.max_speed > 0):
            raise ValueError("SampleSpec: pan must be in [0, 1], zoom in [0, 0.5), "
                             "max_speed > 0")

    @property
    def num_frames(self) -> int:
        return self.frames_per_scene * len(self.photos)

    @property
    def scene_starts(self) -> list[int]:
        """First frame of every scene (the hard cuts, and frame 0)."""
        return [i * self.frames_per_scene for i in range(len(self.photos))]

    def check_scale(self, scale: int) -> None:
        if self.width % (2 * scale) or self.height % (2 * scale):
            raise ClipFormatError(
                f"vsvsr.sample: {self.width}x{self.height} does not divide by 2 x scale "
                f"({2 * scale}), so the LR clip cannot be 4:2:0; pick a size that does, "
                "e.g. 512x288")


@cache
def load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as (H, W, 3) uint8."""
    try:
        import skimage.data
    except ImportError as exc:
        raise MissingDependencyError("the sample clip needs scikit-image's bundled photos: "
                                     "pip install scikit-image") from exc
    fn = getattr(skimage.data, name, None)
    if fn is None:
        raise ValueError(f"vsvsr.sample: skimage.data has no photo {name!r}")
    img = np.asarray(fn())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3].astype(np.uint8))


@dataclass(frozen=True)
class _Path:
    """The camera over one photo: photo pixels per HR pixel, centre, per frame."""

    r: np.ndarray
    cx: np.ndarray
    cy: np.ndarray


def _camera(photo_hw: tuple[int, int], spec: SampleSpec, scene: int) -> _Path:
    ph, pw = photo_hw
    n = spec.frames_per_scene
    # Photo pixels per HR pixel at the start: the window fits with room to pan, and never
    # samples the photo sparser than 1:1 (which would alias with PIL's plain bicubic).
    r0 = min(1.0, 0.8 * min(pw / spec.width, ph / spec.height))
    t = np.arange(n, dtype=np.float64) / max(1, n - 1)
    r = r0 * (1.0 - spec.zoom * t)
    room_x = (pw - r0 * spec.width) / 2
    room_y = (ph - r0 * spec.height) / 2
    # Each scene pans a different way; speeds are irregular (eased, with a small wobble).
    angle = 0.7 + 2.1 * scene
    ease = 0.5 - 0.5 * np.cos(np.pi * (0.15 + 0.7 * t))
    ease = (ease - ease[0]) / max(1e-9, ease[-1] - ease[0]) - 0.5
    wobble = 0.35 * np.sin(2 * np.pi * (1.3 * t * n / 8 + 0.2 * scene))
    ax, ay = spec.pan * room_x * math.cos(angle), spec.pan * room_y * math.sin(angle)
    limit = spec.max_speed * max(1, n - 1)
    shrink = min(1.0, limit / max(1e-9, math.hypot(ax, ay)))
    cx = pw / 2 + shrink * ax * ease + wobble
    cy = ph / 2 + shrink * ay * ease + 0.6 * wobble
    return _Path(r=r, cx=cx, cy=cy)


def render_scene(photo: np.ndarray, spec: SampleSpec, scene: int) -> list[np.ndarray]:
    """The HR frames of one scene, (H, W, 3) uint8 each."""
    from PIL import Image

    img = Image.fromarray(photo)
    cam = _camera(photo.shape[:2], spec, scene)
    frames = []
    w, h = spec.width, spec.height
    for r, cx, cy in zip(cam.r, cam.cx, cam.cy, strict=True):
        # PIL maps output (x, y) to input (a x + b y + c, d x + e y + f) in pixel-area units.
        data = (r, 0.0, cx - r * w / 2, 0.0, r, cy - r * h / 2)
        out = img.transform((w, h), Image.Transform.AFFINE, data,
                            resample=Image.Resampling.BICUBIC)
        frames.append(np.asarray(out, np.uint8))
    return frames


def render_hr_frames(spec: SampleSpec | None = None) -> list[np.ndarray]:
    """All HR frames of the sample, (H, W, 3) uint8 RGB, deterministic."""
    spec = spec or SampleSpec()
    frames: list[np.ndarray] = []
    for i, name in enumerate(spec.photos):
        frames += render_scene(load_photo(name), spec, i)
    return frames


def array_clip(frames: Sequence[np.ndarray], fps: tuple[int, int] = (24, 1)) -> vs.VideoNode:
    """An RGB24 VapourSynth clip of (H, W, 3) uint8 frames, tagged BT.709 like video."""
    import vapoursynth as vs

    if not frames:
        raise ValueError("array_clip: no frames")
    h, w = frames[0].shape[:2]
    blank = vs.core.std.BlankClip(width=w, height=h, format=vs.RGB24, length=len(frames),
                                  fpsnum=fps[0], fpsden=fps[1], keep=True)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.asarray(out[p])[...] = frames[n][:, :, p]
        props = out.props
        props["_Matrix"], props["_Primaries"], props["_Transfer"] = 0, 1, 1
        props["_Range"] = 1
        return out

    return blank.std.ModifyFrame(blank, fill)


def downscale(hr: vs.VideoNode, scale: int) -> vs.VideoNode:
    """HR RGB -> LR YUV420P8 BT.709 limited: antialiased Catmull-Rom shrink in float RGB."""
    import vapoursynth as vs

    small = hr.resize.Bicubic(hr.width // scale, hr.height // scale, format=vs.RGBS, **BICUBIC)
    return small.resize.Bicubic(format=vs.YUV420P8, matrix_s="709", range_s="limited",
                                dither_type="error_diffusion")


def lr_clip(spec: SampleSpec | None = None, scale: int = 2,
            frames: Sequence[np.ndarray] | None = None) -> vs.VideoNode:
    """The LR input clip of the sample for a model of ``scale``."""
    spec = spec or SampleSpec()
    spec.check_scale(scale)
    return downscale(array_clip(frames or render_hr_frames(spec), spec.fps), scale)


@dataclass(frozen=True)
class SampleFiles:
    """The sample as files: a lossless LR input video and, optionally, the HR source."""

    lr_video: Path
    hr_video: Path | None
    hr_frames: list[np.ndarray]
    spec: SampleSpec
    scale: int


def write_rgb_video(frames: Sequence[np.ndarray], path: str | os.PathLike[str],
                    fps: tuple[int, int] = (24, 1), ffmpeg: str | None = None) -> Path:
    """Write (H, W, 3) uint8 frames losslessly (FFV1 RGB in Matroska), atomically."""
    import subprocess

    from vsvsr.encode.ffmpeg import FfmpegError, find_ffmpeg
    from vsvsr.utils.atomic import atomic_write

    out = Path(path)
    h, w = frames[0].shape[:2]
    exe = ffmpeg or find_ffmpeg()
    with atomic_write(out) as fh:
        cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "rawvideo",
               "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps[0]}/{fps[1]}", "-i", "pipe:0",
               "-vf", "setparams=color_primaries=bt709:color_trc=bt709", "-c:v", "ffv1",
               "-pix_fmt", "gbrp", "-f", "matroska", "pipe:1"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=fh, stderr=subprocess.PIPE)
        _, err = proc.communicate(b"".join(np.ascontiguousarray(f).tobytes() for f in frames))
        if proc.returncode != 0:
            raise FfmpegError(f"ffmpeg could not write {out}: {err.decode(errors='replace')}")
    return out


def write_sample(out_dir: str | os.PathLike[str], scale: int = 2, *,
                 spec: SampleSpec | None = None, hr_video: bool = True,
                 ffmpeg: str | None = None) -> SampleFiles:
    """Render the sample and write ``sample_lr_x{scale}.mkv`` (FFV1, lossless YUV420P8) and,
    with ``hr_video``, ``sample_hr.mkv`` (FFV1 RGB) into ``out_dir``; bestsource opens both.
    """
    from vsvsr.encode.pipe import EncodeSettings, encode_clip

    spec = spec or SampleSpec()
    spec.check_scale(scale)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    frames = render_hr_frames(spec)
    lr = lr_clip(spec, scale, frames)
    lr_path = folder / f"sample_lr_x{scale}.mkv"
    encode_clip(lr, lr_path, EncodeSettings(codec="ffv1", crf=None, preset=None, audio="none"),
                progress=False, ffmpeg=ffmpeg)
    hr_path = write_rgb_video(frames, folder / "sample_hr.mkv", spec.fps, ffmpeg) \
        if hr_video else None
    return SampleFiles(lr_video=lr_path, hr_video=hr_path, hr_frames=frames, spec=spec,
                       scale=scale)
