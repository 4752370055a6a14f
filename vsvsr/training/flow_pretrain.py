"""Supervised pre-training of the flow network, before it is trusted to align the past.

A flow network trained only through the SR loss (and a photometric loss) learns motion slowly,
and a recurrent net cannot use a past that is misaligned. So the flow module is first taught
motion directly (issue 12): on photo pseudo-videos the motion is known exactly (a sub-pixel
translation, the target is the velocity itself); on real video the target is OpenCV's DIS optical
flow computed on the HR frames and averaged down to LR pixels (a classical estimate, more
accurate at HR than anything at LR). The loss is the end-point error (EPE, LR pixels), robust
(Charbonnier). :func:`evaluate_epe` measures it on held-back clips (their DIS flow) and on exact
translations; the trained weights go into a recurrent net with :func:`load_flow_weights`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vsvsr.training.degrade import make_lr
from vsvsr.training.precision import autocast, memory_format, resolve_precision
from vsvsr.utils.atomic import atomic_write

log = logging.getLogger(__name__)

#: Largest exact translation drawn for photo pairs, LR px per frame (per axis).
MAX_SHIFT = 4.0


@dataclass(kw_only=True, frozen=True)
class FlowPretrainConfig:
    """Settings of one flow pre-training run."""

    scale: int = 4
    crop: int = 40  #: LR crop size (HR is crop * scale)
    batch: int = 16
    iters: int = 2000
    lr: float = 1e-3
    lr_min: float = 1e-5
    photo_share: float = 0.5  #: share of pairs that are exact photo translations
    max_shift: float = MAX_SHIFT  #: largest photo translation, LR px per frame (per axis)
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4) or self.crop < 8 or self.batch < 1 or self.iters < 1:
            raise ValueError("FlowPretrainConfig: need scale 2-4, crop >= 8, batch >= 1, "
                             "iters >= 1")
        if not 0.0 <= self.photo_share <= 1.0:
            raise ValueError(f"FlowPretrainConfig: photo_share must be in [0, 1], got "
                             f"{self.photo_share}")


def dis_flow(cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """OpenCV DIS flow (medium preset) from ``cur`` to ``prev`` (H, W, 3 uint8 RGB): the
    backward flow, ``cur(p) ~ prev(p + flow(p))``; (2, H, W) float32, x then y."""
    import cv2  # part of the training extra (opencv-python-headless)

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    a = cv2.cvtColor(np.ascontiguousarray(cur), cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(np.ascontiguousarray(prev), cv2.COLOR_RGB2GRAY)
    return dis.calc(a, b, None).transpose(2, 0, 1).astype(np.float32)


def hr_flow_to_lr(flow: torch.Tensor, scale: int) -> torch.Tensor:
    """HR flow (N, 2, H, W) in HR px -> LR flow in LR px (area average, then / scale)."""
    return F.avg_pool2d(flow, scale) / scale


def translate_clips(photos: Sequence[torch.Tensor], *, scale: int, crop: int, count: int,
                    length: int, generator: torch.Generator, max_shift: float = MAX_SHIFT
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` clips of ``length`` frames: a camera panning over a photo at a constant,
    exactly known sub-pixel velocity ``v`` (LR px/frame, each axis in +-``max_shift``).

    Returns LR (N, T, 3, crop, crop), HR (N, T, 3, crop*s, crop*s) and ``v`` (N, 2), x then y.
    Frame t shows the photo at offset ``t * v``, so ``frame_t(p) = frame_{t-1}(p + v)``: the
    backward flow of every frame is ``v`` everywhere.
    """
    q = crop * scale
    lrs, hrs, vs = [], [], []
    for _ in range(count):
        photo = photos[int(torch.randint(len(photos), (1,), generator=generator))]
        v = (torch.rand(2, generator=generator, dtype=torch.float64) * 2 - 1) * max_shift
        reach = abs(v) * scale * (length - 1)
        mx, my = int(math.ceil(float(reach[0]))) + 4, int(math.ceil(float(reach[1]))) + 4
        ph, pw = photo.shape[1:]
        if ph < q + 2 * my + 1 or pw < q + 2 * mx + 1:
            raise ValueError(f"translate_clips: a {pw}x{ph} photo is too small for {length} "
                             f"frames of a {q} px crop moving {max_shift} LR px/frame")
        y0 = my + int(torch.randint(ph - q - 2 * my, (1,), generator=generator))
        x0 = mx + int(torch.randint(pw - q - 2 * mx, (1,), generator=generator))
        region = photo[:, y0 - my:y0 + q + my, x0 - mx:x0 + q + mx].float().div(255.0)[None]
        rh, rw = region.shape[-2:]
        frames = []
        for t in range(length):
            xs = torch.arange(q, dtype=torch.float64) + mx + float(v[0]) * scale * t
            ys = torch.arange(q, dtype=torch.float64) + my + float(v[1]) * scale * t
            gx, gy = ((2 * xs + 1) / rw - 1).float(), ((2 * ys + 1) / rh - 1).float()
            grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
            frames.append(F.grid_sample(region, grid, mode="bicubic", padding_mode="border",
                                        align_corners=False).clamp(0, 1))
        hr = torch.cat(frames)
        hrs.append(hr)
        lrs.append(make_lr(hr, scale))
        vs.append(v.float())
    return torch.stack(lrs), torch.stack(hrs), torch.stack(vs)


def translate_pairs(photos: Sequence[torch.Tensor], *, scale: int, crop: int, count: int,
                    generator: torch.Generator, max_shift: float = MAX_SHIFT
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` exact sub-pixel translations of random photo crops: LR current, LR previous
    (N, 3, crop, crop) and the true backward flow (N, 2, crop, crop), ``cur(p) = prev(p + v)``."""
    lr, _, v = translate_clips(photos, scale=scale, crop=crop, count=count, length=2,
                               generator=generator, max_shift=max_shift)
    return lr[:, 1], lr[:, 0], v.reshape(-1, 2, 1, 1).expand(-1, 2, crop, crop).contiguous()


def video_pairs(sampler: object, scale: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of consecutive real-video LR pairs and their DIS flow (LR px).

    ``sampler`` is a :class:`~vsvsr.training.video_source.VideoClipSampler` of length 2.
    """
    lr, hr = sampler.sample()  # type: ignore[attr-defined]
    hr8 = (hr * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
    flows = torch.stack([torch.from_numpy(dis_flow(c[1], c[0])) for c in hr8])
    return lr[:, 1], lr[:, 0], hr_flow_to_lr(flows, scale)


def epe(pred: torch.Tensor, target: torch.Tensor, border: int = 2) -> float:
    """Mean end-point error (px) away from a ``border`` where neither estimate is reliable."""
    b = border
    d = (pred - target)[..., b:-b, b:-b]
    return float(torch.sqrt((d ** 2).sum(1)).mean())


class FlowPretrainer:
    """Trains one :class:`~vsvsr.nets.rvsrf_arch.FlowNet` with the EPE loss."""

    def __init__(self, flow_net: torch.nn.Module, config: FlowPretrainConfig, *,
                 photos: Sequence[torch.Tensor], video_sampler: object | None) -> None:
        self.net, self.config = flow_net, config
        self.photos, self.video = photos, video_sampler
        self.precision = resolve_precision(config.precision)
        self.net.to(memory_format=memory_format(self.precision))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.iteration = 0

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        n_photo = c.batch if self.video is None else round(c.batch * c.photo_share)
        parts = []
        if n_photo:
            parts.append(translate_pairs(self.photos, scale=c.scale, crop=c.crop,
                                         count=n_photo, generator=self.generator,
                                         max_shift=c.max_shift))
        if c.batch - n_photo:
            parts.append(video_pairs(self.video, c.scale))
        return tuple(torch.cat(p)[: c.batch] for p in zip(*parts, strict=True))  # type: ignore

    def step(self) -> float:
        c = self.config
        p = min(self.iteration / c.iters, 1.0)
        rate = c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * p))
        for g in self.optimizer.param_groups:
            g["lr"] = rate
        cur, prev, target = self.batch()
        self.net.train()
        with autocast(self.precision):
            pred = self.net(cur, prev)
        d = pred.float() - target
        loss = torch.sqrt((d ** 2).sum(1) + 1e-6).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.optimizer.step()
        self.iteration += 1
        return float(loss.detach())

    def fit(self, log_every: float = 60.0) -> float:
        """Train for ``config.iters`` steps; the running mean EPE at the end."""
        avg, last = None, time.monotonic()
        while self.iteration < self.config.iters:
            loss = self.step()
            avg = loss if avg is None else avg + 0.02 * (loss - avg)
            if time.monotonic() - last > log_every:
                last = time.monotonic()
                log.info("flow it %d  train EPE %.3f LR px", self.iteration, avg)
        return float(avg or 0.0)


@torch.no_grad()
def evaluate_epe(flow_net: torch.nn.Module, pairs: Sequence[tuple[torch.Tensor, torch.Tensor,
                                                                  torch.Tensor]]) -> float:
    """Mean EPE (LR px) of ``flow_net`` over (cur, prev, target) batches."""
    flow_net.eval()
    errs = [epe(flow_net(cur, prev), target) for cur, prev, target in pairs]
    return float(np.mean(errs))


def save_flow_weights(flow_net: torch.nn.Module, path: str | Path, info: dict) -> Path:
    """Write the flow module's weights (and how they were made) atomically."""
    with atomic_write(path) as fh:
        torch.save({"flow": flow_net.state_dict(), "info": info}, fh)
    return Path(path)


def load_flow_weights(net: torch.nn.Module, path: str | Path) -> dict:
    """Load pre-trained flow weights into ``net.flow`` (a recurrent net with a flow module)."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not hasattr(net, "flow"):
        raise ValueError(f"load_flow_weights: {type(net).__name__} has no flow module")
    try:
        net.flow.load_state_dict(data["flow"])
    except RuntimeError as exc:
        raise ValueError(f"load_flow_weights: {path} does not fit this flow network (set "
                         f"arch.flow_width as in the pre-training): {exc}") from exc
    return dict(data.get("info", {}))
