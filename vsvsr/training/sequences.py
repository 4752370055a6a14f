"""Pseudo-videos from still photographs: synthetic camera motion rendered with ``grid_sample``.

Each clip is a camera moving over one photo: a sub-pixel pan (with hand-held wobble), possibly a
slow zoom and rotation, sometimes a stop, sometimes a slow brightness ramp. The warps are rendered
at ``supersample`` times the HR resolution and then downscaled, so the softening that bicubic
interpolation causes at sub-pixel phases lands above the HR Nyquist frequency: the HR targets of
all frames are equally sharp, and the LR frames (made with :func:`downscale`) carry true
sub-pixel shifts. All randomness comes from one ``torch.Generator`` whose state is checkpointed,
so a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vsvsr.training.config import MotionConfig
from vsvsr.training.degrade import downscale, make_lr
from vsvsr.training.degrade_ranges import DegradeConfig

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: The rendered footprint is checked with this slack (bicubic taps, rounding).
FOOTPRINT_SLACK = 1.02


def find_images(dirs: Iterable[str | Path]) -> list[Path]:
    """All jpg/png files under ``dirs`` (recursively), in a stable order."""
    found: list[Path] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise FileNotFoundError(f"find_images: {root} is not a folder of training photos")
        found += sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return found


def load_photo(path: Path, presize: int) -> torch.Tensor:
    """Read one photo as uint8 (3, H, W), shrunk by ``presize`` (alpha dropped).

    Shrinking first hides JPEG blocking and sensor noise, so the HR targets are clean.
    """
    from PIL import Image  # a runtime dependency; imported here to keep import time low

    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    h, w = (arr.shape[0] // presize) * presize, (arr.shape[1] // presize) * presize
    x = torch.from_numpy(arr[:h, :w].copy()).permute(2, 0, 1)[None].float().div_(255.0)
    x = downscale(x, presize)[0]
    return x.mul_(255.0).round_().to(torch.uint8)


def load_photos(dirs: Iterable[str | Path], presize: int) -> list[torch.Tensor]:
    """Load every photo under ``dirs`` into memory once, so iterations never touch the disk."""
    paths = find_images(dirs)
    if not paths:
        raise FileNotFoundError(f"load_photos: no jpg/png photos under {list(dirs)}")
    photos = [load_photo(p, presize) for p in paths]
    mpix = sum(p.shape[1] * p.shape[2] for p in photos) / 1e6
    log.info("loaded %d photos (%.1f Mpx after /%d)", len(photos), mpix, presize)
    return photos


class SequenceSampler:
    """Draws batches of (LR, HR) pseudo-video clips from in-memory photos.

    Args:
        photos: uint8 (3, H, W) images, already at the "source" resolution (HR * supersample).
        scale: SR factor.
        crop: LR crop size; HR clips are ``crop * scale`` square.
        length: frames per clip.
        batch: clips per batch.
        supersample: how much finer than HR the warps are rendered.
        motion: the camera-motion distribution.
        seed: seed of the sampler's own generator.
        degrade: real-world degradation ranges: with ``photos`` on, every clip's LR gets a spec
            drawn per batch and its cheap in-process stages
            (:mod:`~vsvsr.training.degrade_photo`); None or ``photos: false``: the clean
            ``make_lr``. The HR target is the clean clip either way.
    """

    def __init__(self, photos: Sequence[torch.Tensor], *, scale: int, crop: int, length: int,
                 batch: int, supersample: int, motion: MotionConfig, seed: int,
                 degrade: DegradeConfig | None = None) -> None:
        self.scale, self.crop, self.length, self.batch = scale, crop, length, batch
        self.degrade = degrade if degrade is not None and degrade.photos else None
        self.supersample, self.motion = supersample, motion
        self.out = crop * scale * supersample  # rendered (source-resolution) clip size
        need = math.ceil(self.out * FOOTPRINT_SLACK) + 12  # a still camera always fits
        self.photos = [p for p in photos if min(p.shape[1:]) >= need]
        if not self.photos:
            raise ValueError(f"SequenceSampler: no photo has a side of {need} px or more; use "
                             "larger photos, a smaller crop or a smaller presize")
        if len(self.photos) < len(photos):
            log.info("skipping %d photos smaller than %d px", len(photos) - len(self.photos), need)
        areas = torch.tensor([float(p.shape[1] * p.shape[2]) for p in self.photos])
        self.weights = areas / areas.sum()  # pixel-uniform sampling
        self.generator = torch.Generator().manual_seed(seed)

    # -- random helpers (all through the one generator) ---------------------------------------
    def _u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * float(torch.rand(1, generator=self.generator,
                                                 dtype=torch.float64))

    def _uv(self, lo: float, hi: float, n: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.generator, dtype=torch.float64)

    def _n(self, n: int) -> torch.Tensor:
        return torch.randn(n, generator=self.generator, dtype=torch.float64)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])

    # -- sampling -----------------------------------------------------------------------------
    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: LR (B, T, 3, crop, crop) and HR (B, T, 3, crop*s, crop*s), float [0, 1]."""
        hr = torch.stack([self._clip() for _ in range(self.batch)])
        if self.degrade is None:
            return make_lr(hr, self.scale), hr
        from vsvsr.training.degrade_photo import degrade_batch

        seed = int(torch.randint(2**62, (1,), generator=self.generator))
        return degrade_batch(hr, self.degrade, scale=self.scale, seed=seed), hr

    def _trajectory(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-frame camera offset (T, 2) in source px, zoom (T,), rotation (T,), gain (T,)."""
        m, t = self.motion, self.length
        px = self.scale * self.supersample  # source px per LR px
        moving = torch.ones(t, dtype=torch.float64)
        moving[0] = 0.0  # frame 0 is the reference
        if self._u() < m.p_static_clip:
            moving.zero_()
        elif t > 2 and self._u() < m.p_static_stretch:
            span = int(self._u(2, t))  # the camera holds still for `span` steps
            start = int(self._u(1, t - span + 1))
            moving[start:start + span] = 0.0
        vel = self._uv(-m.max_velocity, m.max_velocity, 2) * px
        vel = vel[None] + self._n(2 * t).reshape(t, 2) * (m.velocity_jitter * px)
        zoom_rate = self._u(-m.max_zoom, m.max_zoom) if self._u() < m.p_zoom else 0.0
        rot_rate = (math.radians(self._u(-m.max_rotation_deg, m.max_rotation_deg))
                    if self._u() < m.p_rotation else 0.0)
        ramp = self._u(-m.max_brightness, m.max_brightness) if self._u() < m.p_brightness else 0.0
        offset = torch.cumsum(vel * moving[:, None], 0).numpy()
        zoom = torch.cumprod(1.0 + zoom_rate * moving, 0).numpy()
        rot = torch.cumsum(rot_rate * moving, 0).numpy()
        gain = 1.0 + ramp * np.arange(t)
        return offset, zoom, rot, gain

    def _clip(self) -> torch.Tensor:
        """Render one HR clip (T, 3, H, W)."""
        idx = int(torch.multinomial(self.weights, 1, generator=self.generator))
        photo = self.photos[idx]
        ph, pw = photo.shape[1:]
        q = self.out
        half = (q - 1) / 2.0
        corners = FOOTPRINT_SLACK * np.array([[-half, -half], [half, -half], [-half, half],
                                              [half, half]])
        for attempt in range(5):
            offset, zoom, rot, gain = self._trajectory()
            if attempt:  # shrink the motion until the whole path fits in the photo
                f = 0.5 ** attempt if attempt < 4 else 0.0
                offset, rot = offset * f, rot * f
                zoom = zoom ** f
            cos, sin = np.cos(rot), np.sin(rot)
            # corner positions relative to the first frame's centre, for every frame
            cx = offset[:, None, 0] + (cos[:, None] * corners[None, :, 0]
                                       - sin[:, None] * corners[None, :, 1]) / zoom[:, None]
            cy = offset[:, None, 1] + (sin[:, None] * corners[None, :, 0]
                                       + cos[:, None] * corners[None, :, 1]) / zoom[:, None]
            lo_x, hi_x, lo_y, hi_y = cx.min(), cx.max(), cy.min(), cy.max()
            margin = 4.0
            if hi_x - lo_x + 2 * margin < pw - 1 and hi_y - lo_y + 2 * margin < ph - 1:
                break
        # first-frame centre: anywhere that keeps the path inside (a random sub-pixel phase)
        c0x = self._u(margin - lo_x, pw - 1 - margin - hi_x)
        c0y = self._u(margin - lo_y, ph - 1 - margin - hi_y)
        x0 = max(int(math.floor(c0x + lo_x - margin)), 0)
        y0 = max(int(math.floor(c0y + lo_y - margin)), 0)
        x1 = min(int(math.ceil(c0x + hi_x + margin)) + 1, pw)
        y1 = min(int(math.ceil(c0y + hi_y + margin)) + 1, ph)
        region = photo[:, y0:y1, x0:x1].float().div_(255.0)
        rh, rw = region.shape[1:]
        # The camera is an affine map per frame: source px = R(t) * out px / zoom(t) + centre(t),
        # with output pixel coordinates relative to the clip centre. affine_grid builds all
        # sampling grids in one fused op from that map expressed in normalized coordinates
        # (out px = xo_n * q / 2 for align_corners=False, in_n = (2 * in_px + 1) / size - 1).
        t = self.length
        a = torch.from_numpy(np.stack([cos / zoom, -sin / zoom, sin / zoom, cos / zoom], 1))
        cx0 = torch.from_numpy(c0x - x0 + offset[:, 0])
        cy0 = torch.from_numpy(c0y - y0 + offset[:, 1])
        theta = torch.stack([
            torch.stack([a[:, 0] * q / rw, a[:, 1] * q / rw, (2 * cx0 + 1) / rw - 1], 1),
            torch.stack([a[:, 2] * q / rh, a[:, 3] * q / rh, (2 * cy0 + 1) / rh - 1], 1),
        ], 1).float()
        grid = F.affine_grid(theta, [t, 3, q, q], align_corners=False)
        frames = F.grid_sample(region[None].expand(t, -1, -1, -1), grid, mode="bicubic",
                               padding_mode="reflection", align_corners=False)
        hr = downscale(frames.clamp_(0.0, 1.0), self.supersample)
        hr = hr * torch.from_numpy(gain).float()[:, None, None, None]
        # free augmentations that keep it a valid video: flips, transpose, time reversal
        if self._u() < 0.5:
            hr = hr.flip(-1)
        if self._u() < 0.5:
            hr = hr.flip(-2)
        if self._u() < 0.5:
            hr = hr.transpose(-1, -2)
        if self._u() < 0.5:
            hr = hr.flip(0)
        return hr.clamp_(0.0, 1.0).contiguous()


def synthetic_photos(count: int, size: int, seed: int = 0) -> list[torch.Tensor]:
    """Small random textured images for tests and smoke runs (no files needed).

    Smooth colour fields plus edges and stripes, so there is detail a network can learn to restore.
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        base = F.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=(size, size),
                             mode="bicubic", align_corners=False)[0]
        yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                                torch.arange(size, dtype=torch.float32), indexing="ij")
        freq = 0.15 + 0.5 * torch.rand(2, generator=g)
        stripes = 0.5 + 0.5 * torch.sin(freq[0] * xx + freq[1] * yy)
        blocks = ((xx // (4 + 8 * torch.rand(1, generator=g))) % 2
                  + (yy // (4 + 8 * torch.rand(1, generator=g))) % 2) % 2
        img = 0.5 * base + 0.3 * stripes[None] + 0.2 * blocks[None]
        out.append(img.clamp(0, 1).mul(255).round().to(torch.uint8))
    return out
