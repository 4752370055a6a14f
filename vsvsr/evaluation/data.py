"""Evaluation sequences: HR ground truth from image folders, videos or one photo, and their LR.

The LR frames are made exactly as in training (:func:`vsvsr.training.degrade.downscale`,
antialiased bicubic) and then rounded to 8 bits, as a real decoded video frame would be. All
frames are (H, W, 3) uint8 RGB arrays.

:func:`long_sequence` turns ONE real frame or photo into a long pseudo-video with known camera
motion, rendered like the training clips (:mod:`vsvsr.training.sequences`): bicubic
``grid_sample`` at twice the HR resolution, then the training downscale. It is how the
long-run behaviour of a recurrent model (drift, a cold restart mid-sequence, brightness
changes) is measured on sequences far longer than the real clips.
"""

from __future__ import annotations

import logging
import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import VsvsrError
from vsvsr.utils.lazy import lazy_import
from vsvsr.utils.shared_data import portable_path, shared_data_dir

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: The shared data's folder of real evaluation clips (never trained on); see
#: :mod:`vsvsr.utils.shared_data` for where that data is found.
REAL_CLIPS = "real"
#: Camera-motion kinds of :func:`long_sequence`.
LONG_KINDS = ("static", "slow-pan", "fast-pan", "brightness")
#: Per-frame speed (LR px) of each kind; ``static`` is a bounded +-0.05 LR px jitter instead.
KIND_SPEED = {"static": 0.0, "slow-pan": 0.3, "fast-pan": 3.0, "brightness": 0.3}
STATIC_JITTER = 0.05  #: LR px, the hand-held wobble of ``static``
BRIGHTNESS_LOW = 0.6  #: ``brightness``: gain goes 1.0 -> this -> 1.0 over the sequence
SUPERSAMPLE = 2  #: render at this multiple of HR, then downscale (sharp HR at every phase)
MARGIN = 3.0  #: source px kept between the footprint and the photo edge (bicubic taps)
#: Share of the photo (per axis) the HR footprint covers when no size is given.
AUTO_FOOTPRINT = 0.7


class EvalDataError(VsvsrError, ValueError):
    """Evaluation frames that cannot be read or do not suit the evaluation."""


@dataclass
class EvalSequence:
    """One evaluation sequence: its name, where it came from, HR frames and their LR."""

    name: str
    source: str
    hr: list[np.ndarray]
    lr: list[np.ndarray]
    scale: int
    info: dict[str, Any] = field(default_factory=dict)  #: how it was made (for the report)

    @property
    def frames(self) -> int:
        return len(self.hr)

    @property
    def hr_size(self) -> tuple[int, int]:
        return self.hr[0].shape[1], self.hr[0].shape[0]

    @property
    def lr_size(self) -> tuple[int, int]:
        return self.lr[0].shape[1], self.lr[0].shape[0]


def _torch(feature: str = "vsvsr eval (it degrades frames with the training resize)"):  # noqa: ANN202
    return lazy_import("torch", feature)


# -- reading ------------------------------------------------------------------------------------

def read_image(path: Path) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB (alpha dropped, grey expanded)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB")).copy()
    except (OSError, ValueError) as exc:
        raise EvalDataError(f"vsvsr eval: cannot read image {path}: {exc}") from exc


def image_files(folder: Path) -> list[Path]:
    """The png/jpg files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_frames(folder: str | Path, max_frames: int | None = None) -> list[np.ndarray]:
    """The frames of an image-sequence folder (sorted png/jpg), at most ``max_frames``.

    Raises:
        EvalDataError: not a folder, no images in it, or images of different sizes.
    """
    root = Path(folder)
    if not root.is_dir():
        raise EvalDataError(f"vsvsr eval: {root} is not a folder of frames")
    files = image_files(root)
    if not files:
        raise EvalDataError(f"vsvsr eval: no .png/.jpg images in {root}; give a folder of "
                            "frames (sorted by name) or --video FILE")
    frames = [read_image(p) for p in files[:max_frames]]
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise EvalDataError(f"vsvsr eval: the images in {root} have different sizes "
                            f"({sorted(s[1::-1] for s in shapes)}); a sequence needs one size")
    return frames


def _read_exact(stream: Any, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        block = stream.read(n - got)
        if not block:
            break
        chunks.append(block)
        got += len(block)
    return b"".join(chunks)


def load_video(path: str | Path, max_frames: int | None = None) -> list[np.ndarray]:
    """Decode a video file to RGB frames with vsvsr's ffmpeg (PPM frames on a pipe).

    ffmpeg converts YUV to RGB with the stream's tagged matrix (BT.601 when untagged). Each
    PPM frame carries its own size, so no probing is needed.

    Raises:
        EvalDataError: the file is missing, ffmpeg cannot decode it, or it has no frames.
    """
    from vsvsr.encode.ffmpeg import find_ffmpeg

    src = Path(path)
    if not src.is_file():
        raise EvalDataError(f"vsvsr eval: video file {src} does not exist")
    cmd = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(src),
           "-map", "0:v:0"]
    if max_frames is not None:
        cmd += ["-frames:v", str(max_frames)]
    cmd += ["-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "-"]
    frames: list[np.ndarray] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            while True:
                magic = proc.stdout.readline()
                if not magic:
                    break
                size = proc.stdout.readline().split()
                maxval = proc.stdout.readline().strip()
                if magic.strip() != b"P6" or len(size) != 2 or maxval != b"255":
                    raise EvalDataError(f"vsvsr eval: unexpected frame data from ffmpeg for {src}")
                w, h = int(size[0]), int(size[1])
                data = _read_exact(proc.stdout, w * h * 3)
                if len(data) < w * h * 3:
                    break
                frames.append(np.frombuffer(data, np.uint8).reshape(h, w, 3).copy())
        finally:
            proc.stdout.close()
            err = proc.stderr.read().decode(errors="replace")
            proc.wait()
    if proc.returncode != 0:
        why = err.strip().splitlines()[-1] if err.strip() else f"exit status {proc.returncode}"
        raise EvalDataError(f"vsvsr eval: ffmpeg could not decode {src}: {why}")
    if not frames:
        raise EvalDataError(f"vsvsr eval: {src} has no video frames")
    return frames


# -- degradation --------------------------------------------------------------------------------

def crop_to_multiple(frames: Sequence[np.ndarray], scale: int) -> list[np.ndarray]:
    """Crop the bottom/right so that both sides divide by ``scale`` (the grids must align)."""
    h, w = frames[0].shape[:2]
    h2, w2 = (h // scale) * scale, (w // scale) * scale
    return [f[:h2, :w2] for f in frames] if (h2, w2) != (h, w) else list(frames)


def _to_tensor(frames: Sequence[np.ndarray]):  # noqa: ANN202
    torch = _torch()
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def _to_uint8(x) -> list[np.ndarray]:  # noqa: ANN001
    arr = x.clamp(0.0, 1.0).mul(255.0).round_().to(dtype=_torch().uint8)
    return list(arr.permute(0, 2, 3, 1).contiguous().numpy())


def degrade(hr: Sequence[np.ndarray], scale: int, chunk: int = 16) -> list[np.ndarray]:
    """LR frames of ``hr`` with the training resize, rounded to 8 bits.

    Raises:
        EvalDataError: the frame size does not divide by ``scale``.
    """
    h, w = hr[0].shape[:2]
    if h % scale or w % scale:
        raise EvalDataError(f"vsvsr eval: frame size {w}x{h} does not divide by {scale}; crop "
                            "it first (crop_to_multiple)")
    from vsvsr.training.degrade import downscale

    out: list[np.ndarray] = []
    for i in range(0, len(hr), chunk):
        out += _to_uint8(downscale(_to_tensor(hr[i:i + chunk]), scale))
    return out


def make_sequence(name: str, source: str, hr: Sequence[np.ndarray], scale: int,
                  **info: Any) -> EvalSequence:
    """An :class:`EvalSequence` from HR frames: cropped to a multiple of ``scale``, degraded."""
    hr = crop_to_multiple(hr, scale)
    if min(hr[0].shape[:2]) < scale:
        raise EvalDataError(f"vsvsr eval: {source}: frames of {hr[0].shape[1]}x{hr[0].shape[0]} "
                            f"are too small for x{scale}")
    seq = EvalSequence(name=name, source=portable_path(source), hr=hr, lr=degrade(hr, scale),
                       scale=scale, info=dict(info))
    log.info("%s: %d frames, %dx%d -> LR %dx%d", name, seq.frames, *seq.hr_size, *seq.lr_size)
    return seq


def degraded_sequence(seq: EvalSequence, spec: Any, seed: int = 0) -> EvalSequence:
    """``seq`` with its LR made by the real-world degradation ``spec`` (a
    :class:`~vsvsr.training.degrade_spec.DegradeSpec`) from the same HR frames: blur, the
    spec's downscale kernel, noise (seeded), then the codec round trip through ffmpeg. A clean
    spec gives the plain LR again. Named ``NAME@SPEC``.

    Raises:
        MissingCodecError: ffmpeg lacks the spec's encoder.
    """
    from vsvsr.training.degrade_pipeline import degrade_sequence

    lr = seq.lr if spec.is_clean else list(
        degrade_sequence(np.stack(seq.hr), spec, scale=seq.scale, seed=seed))
    out = EvalSequence(name=f"{seq.name}@{spec.canonical()}", source=seq.source, hr=seq.hr,
                       lr=lr, scale=seq.scale,
                       info={**seq.info, "degrade": spec.canonical(), "degrade_seed": seed})
    log.info("%s: LR degraded with %s (seed %d)", out.name, spec.canonical(), seed)
    return out


def folder_sequence(folder: str | Path, scale: int, max_frames: int | None = None) -> EvalSequence:
    root = Path(folder)
    return make_sequence(root.name, str(root), load_frames(root, max_frames), scale, kind="frames")


def video_sequence(path: str | Path, scale: int, max_frames: int | None = None) -> EvalSequence:
    src = Path(path)
    return make_sequence(src.stem, str(src), load_video(src, max_frames), scale, kind="video")


def real_clip_folders(root: Path | None = None) -> list[Path]:
    """The real evaluation clips (folders of frames) in ``root`` (default: the shared data's).

    Raises:
        SharedDataError: no ``root`` given and no shared data here; the message says what to pass.
    """
    if root is None:
        root = shared_data_dir(REAL_CLIPS, what="vsvsr eval",
                               instead="--frames DIR, --video FILE or --long KIND --source IMAGE")
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and image_files(d))


def source_image(path: str | Path) -> np.ndarray:
    """A photo for :func:`long_sequence`: an image file, or the first frame of a folder."""
    src = Path(path)
    if src.is_dir():
        files = image_files(src)
        if not files:
            raise EvalDataError(f"vsvsr eval: no .png/.jpg images in {src} to use as a source")
        src = files[0]
    if not src.is_file():
        raise EvalDataError(f"vsvsr eval: source image {src} does not exist")
    return read_image(src)


# -- long synthetic sequences -------------------------------------------------------------------

def _bounce(start: np.ndarray, travel: float) -> np.ndarray:
    """Fold positions onto [0, travel] like a ball between two walls (a triangle wave)."""
    if travel <= 0:
        return np.zeros_like(start)
    m = np.mod(start, 2.0 * travel)
    return np.where(m <= travel, m, 2.0 * travel - m)


def auto_hr_size(image_size: tuple[int, int], scale: int,
                 supersample: int = SUPERSAMPLE) -> tuple[int, int]:
    """The HR frame size :func:`long_sequence` uses for a photo of ``image_size`` (w, h): the
    footprint covers :data:`AUTO_FOOTPRINT` of the photo, the rest is room to move."""
    out = []
    for n in image_size:
        side = int(AUTO_FOOTPRINT * n / supersample) // scale * scale
        out.append(side)
    return out[0], out[1]


def trajectory(kind: str, frames: int, travel: tuple[float, float], px: float,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera position (T, 2) in source px within [0, travel] per axis, and gain (T,).

    ``px`` is source px per LR px. Pans move at a constant speed along a seeded direction and
    bounce off the travel range's ends, so the path stays inside the photo for any length.
    """
    if kind not in LONG_KINDS:
        raise EvalDataError(f"vsvsr eval: unknown sequence kind {kind!r}; choose one of "
                            f"{', '.join(LONG_KINDS)}")
    rng = np.random.default_rng(seed)
    t = np.arange(frames, dtype=np.float64)
    tr = np.array(travel, dtype=np.float64)
    if kind == "static":
        need = 2 * STATIC_JITTER * px
        if (tr < need).any():
            raise EvalDataError("vsvsr eval: the source image leaves no room for the jitter; "
                                "use a smaller size")
        centre = need / 2 + rng.uniform(0.0, 1.0, 2) * (tr - need)
        pos = centre[None] + rng.uniform(-1.0, 1.0, (frames, 2)) * STATIC_JITTER * px
    else:
        speed = KIND_SPEED[kind] * px
        if (tr < 2 * speed).any():
            raise EvalDataError(
                f"vsvsr eval: the source image leaves {tr.min():.0f} source px of travel, too "
                f"little for {kind} ({speed:.1f} px/frame); use a larger photo or a smaller size")
        angle = rng.uniform(math.radians(20), math.radians(70)) + rng.integers(4) * math.pi / 2
        vel = speed * np.array([math.cos(angle), math.sin(angle)])
        start = rng.uniform(0.0, 1.0, 2) * tr
        pos = np.stack([_bounce(start[i] + vel[i] * t, tr[i]) for i in range(2)], axis=1)
    gain = np.ones(frames)
    if kind == "brightness" and frames > 1:
        tri = 1.0 - np.abs(2.0 * t / (frames - 1) - 1.0)  # 0 -> 1 -> 0
        gain = 1.0 - (1.0 - BRIGHTNESS_LOW) * tri
    return pos, gain


def long_sequence(image: np.ndarray, kind: str, frames: int, hr_size: tuple[int, int] | None,
                  scale: int, seed: int = 0, *, chunk: int = 8) -> list[np.ndarray]:
    """A long HR pseudo-video (uint8 RGB frames) of camera motion over one photo.

    Args:
        image: (H, W, 3) uint8 RGB, taken as the "source" resolution: one HR pixel covers
            ``SUPERSAMPLE`` source pixels, as in training.
        kind: ``static`` (a bounded +-0.05 LR px hand-held jitter), ``slow-pan`` (0.3 LR
            px/frame), ``fast-pan`` (3 LR px/frame) or ``brightness`` (slow pan plus a gain
            from 1.0 down to 0.6 and back over the sequence).
        frames: the length.
        hr_size: (width, height) of the HR frames, multiples of ``scale``; ``None`` picks
            :func:`auto_hr_size`.
        scale: the SR factor (speeds are in LR px).
        seed: the direction, start and jitter come from it; the same seed gives the same frames.

    Raises:
        EvalDataError: an unknown kind, a size that does not divide by ``scale`` or leaves too
            little room to move in the photo.
    """
    torch = _torch()
    import torch.nn.functional as F

    from vsvsr.training.degrade import downscale

    if frames < 1:
        raise EvalDataError(f"vsvsr eval: a sequence needs at least 1 frame, got {frames}")
    ph, pw = image.shape[:2]
    w, h = hr_size if hr_size is not None else auto_hr_size((pw, ph), scale)
    if w < scale or h < scale or w % scale or h % scale:
        raise EvalDataError(f"vsvsr eval: HR size {w}x{h} must be positive multiples of {scale}")
    ss = SUPERSAMPLE
    qw, qh = w * ss, h * ss  # rendered size, in source px
    travel = (pw - 1 - (qw - 1) - 2 * MARGIN, ph - 1 - (qh - 1) - 2 * MARGIN)
    if min(travel) < 0:
        raise EvalDataError(f"vsvsr eval: a {pw}x{ph} source cannot hold {w}x{h} HR frames "
                            f"(rendered at {qw}x{qh}); use a larger photo or a smaller size")
    pos, gain = trajectory(kind, frames, travel, float(scale * ss), seed)
    # centre of the footprint in source pixel coordinates
    cx = MARGIN + (qw - 1) / 2.0 + pos[:, 0]
    cy = MARGIN + (qh - 1) / 2.0 + pos[:, 1]
    src = torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255.0)
    gx = torch.arange(qw, dtype=torch.float64) - (qw - 1) / 2.0
    gy = torch.arange(qh, dtype=torch.float64) - (qh - 1) / 2.0
    out: list[np.ndarray] = []
    for i in range(0, frames, chunk):
        n = min(chunk, frames - i)
        sx = torch.from_numpy(cx[i:i + n])[:, None, None] + gx[None, None, :]
        sy = torch.from_numpy(cy[i:i + n])[:, None, None] + gy[None, :, None]
        grid = torch.stack([((2 * sx + 1) / pw - 1).expand(n, qh, qw),
                            ((2 * sy + 1) / ph - 1).expand(n, qh, qw)], dim=-1).float()
        rendered = F.grid_sample(src.expand(n, -1, -1, -1), grid, mode="bicubic",
                                 padding_mode="reflection", align_corners=False)
        hr = downscale(rendered.clamp_(0.0, 1.0), ss)
        hr = hr * torch.from_numpy(gain[i:i + n]).float()[:, None, None, None]
        out += _to_uint8(hr)
    return out


def long_eval_sequence(image: np.ndarray, kind: str, frames: int, hr_size: tuple[int, int] | None,
                       scale: int, seed: int = 0, *, source: str = "image") -> EvalSequence:
    """:func:`long_sequence` with its LR frames, ready to evaluate."""
    hr = long_sequence(image, kind, frames, hr_size, scale, seed)
    return make_sequence(f"long-{kind}", source, hr, scale, kind="long", motion=kind,
                         seed=seed, speed_lr_px=KIND_SPEED[kind],
                         supersample=SUPERSAMPLE)
