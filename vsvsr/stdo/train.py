"""Training one overfit model on a set of patches of one video (PyTorch).

Each sample is one LR patch cut out *with* its receptive-field context (``margin`` LR px per
side, or up to the frame edge, where the network pads exactly as on the full frame). The L1
loss covers only the patch's own HR pixels, so the model learns exactly the output the filter
will show for that patch, seams included. Settings follow the STDO paper: Adam at 1e-3 with a
cosine schedule over ~50 epochs, batch 16, and the weights of the epoch with the lowest
training loss are kept. Where the CPU has native bf16 the forward runs in bf16 autocast with
channels_last (``precision``, :mod:`vsvsr.training.precision`), weights, Adam and the loss fp32.

Training is resumable: a checkpoint (weights, best weights, Adam, step, sampler state) is
written atomically every ``checkpoint_seconds`` and at the end; a finished model is reloaded
instead of retrained.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsvsr.stdo.grid import PatchGrid
from vsvsr.training.precision import ALIASES, PRECISIONS, autocast, memory_format, resolve_precision
from vsvsr.utils.atomic import atomic_write

log = logging.getLogger(__name__)


@dataclass(kw_only=True, frozen=True)
class TrainSettings:
    """How long and how each overfit model trains."""

    epochs: float = 50.0  #: passes over the model's patches (the paper's ~50)
    steps: int | None = None  #: if set, exactly this many steps per model (overrides epochs)
    batch: int = 16
    lr: float = 1e-3
    lr_min: float = 1e-6
    seed: int = 0
    threads: int = 0  #: torch intra-op threads; 0 = every core
    init: str = "general"  #: start from the general model's weights ("general") or "scratch"
    checkpoint_seconds: float = 30.0
    #: ``auto`` (bf16 autocast + channels_last where the CPU has native bf16), ``bf16`` or
    #: ``fp32`` (``f32`` is the same); how the steps run, not what they learn, so a run may
    #: resume in another precision.
    precision: str = "auto"

    def __post_init__(self) -> None:
        if ALIASES.get(self.precision, self.precision) not in PRECISIONS:
            raise ValueError(f"TrainSettings: precision must be one of {PRECISIONS} (or f32), "
                             f"got {self.precision!r}")
        if self.epochs <= 0 and self.steps is None:
            raise ValueError(f"TrainSettings: epochs must be > 0, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"TrainSettings: steps must be >= 1, got {self.steps}")
        if self.batch < 1:
            raise ValueError(f"TrainSettings: batch must be >= 1, got {self.batch}")
        if self.init not in ("general", "scratch"):
            raise ValueError(f"TrainSettings: init must be 'general' or 'scratch', got {self.init!r}")

    def steps_for(self, patches: int) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil(self.epochs * patches / self.batch))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def use_threads(threads: int) -> int:
    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


class PatchData:
    """The video's LR and HR frames in memory, and patch windows cut from them."""

    def __init__(self, lr: list[np.ndarray], hr: list[np.ndarray], grid: PatchGrid, scale: int,
                 margin: int) -> None:
        # kept as uint8 (N, 3, h, w) views: a 1080p video of 450 frames is 2.8 GB as bytes,
        # four times that as floats; windows are converted when cut
        self.lr = torch.from_numpy(np.stack(lr)).permute(0, 3, 1, 2)
        self.hr = torch.from_numpy(np.stack(hr)).permute(0, 3, 1, 2)
        self.grid, self.scale, self.margin = grid, scale, margin
        h, w = self.lr.shape[-2:]
        ys, xs = grid.ys(), grid.xs()
        self.ys, self.xs = ys, xs
        self.win_h = min(h, int(np.diff(ys).max()) + 2 * margin)
        self.win_w = min(w, int(np.diff(xs).max()) + 2 * margin)

    def windows(self, patches: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LR windows, HR windows and HR loss masks for ``patches`` ((B, 3): frame, row, col)."""
        s, m = self.scale, self.margin
        h, w = self.lr.shape[-2:]
        wh, ww = self.win_h, self.win_w
        lrs, hrs = [], []
        mask = torch.zeros(len(patches), 1, wh * s, ww * s)
        for i, (n, r, c) in enumerate(patches):
            y0, y1, x0, x1 = self.ys[r], self.ys[r + 1], self.xs[c], self.xs[c + 1]
            wy = int(np.clip(y0 - m, 0, h - wh))
            wx = int(np.clip(x0 - m, 0, w - ww))
            lrs.append(self.lr[n, :, wy:wy + wh, wx:wx + ww])
            hrs.append(self.hr[n, :, wy * s:(wy + wh) * s, wx * s:(wx + ww) * s])
            mask[i, :, (y0 - wy) * s:(y1 - wy) * s, (x0 - wx) * s:(x1 - wx) * s] = 1.0
        return (torch.stack(lrs).float().div_(255.0), torch.stack(hrs).float().div_(255.0),
                mask)


def masked_l1(sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((sr - hr).abs() * mask).sum() / (mask.sum() * sr.shape[1])


@dataclass(kw_only=True)
class ModelResult:
    """How one model's training went."""

    name: str
    patches: int
    steps: int
    seconds: float
    best_loss: float
    best_epoch: int
    precision: str = "fp32"  #: the resolved precision it trained in


def train_patches(net: torch.nn.Module, data: PatchData, patches: np.ndarray,
                  settings: TrainSettings, *, name: str, checkpoint: Path | None = None,
                  progress: bool = True) -> ModelResult:
    """Overfit ``net`` (in place) on ``patches`` ((M, 3) frame, row, col); keeps the best epoch."""
    from tqdm import tqdm  # training extra

    if len(patches) == 0:
        raise ValueError(f"train_patches: model {name!r} has no patches to train on")
    total = settings.steps_for(len(patches))
    precision = resolve_precision(settings.precision)
    fmt = memory_format(precision)
    net.to(memory_format=fmt)
    per_epoch = max(1, math.ceil(len(patches) / settings.batch))
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    rng = np.random.default_rng([settings.seed, len(patches)])
    step, seconds, order, pos = 0, 0.0, rng.permutation(len(patches)), 0
    best_loss, best_epoch, best_state = math.inf, -1, None
    epoch_sum, epoch_n = 0.0, 0
    if checkpoint is not None and checkpoint.is_file():
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if ck["total"] != total or ck["patches"] != len(patches):
            raise ValueError(f"train_patches: {checkpoint} belongs to other settings "
                             f"({ck['patches']} patches, {ck['total']} steps); delete it")
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        step, seconds, order, pos = ck["step"], ck["seconds"], ck["order"], ck["pos"]
        best_loss, best_epoch, best_state = ck["best_loss"], ck["best_epoch"], ck["best_state"]
        epoch_sum, epoch_n = ck["epoch_sum"], ck["epoch_n"]
        log.info("%s: resumed at step %d of %d", name, step, total)

    def save() -> None:
        if checkpoint is None:
            return
        with atomic_write(checkpoint, "wb") as fh:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(),
                        "rng": rng.bit_generator.state, "step": step, "seconds": seconds,
                        "order": order, "pos": pos, "best_loss": best_loss,
                        "best_epoch": best_epoch, "best_state": best_state, "total": total,
                        "patches": len(patches), "epoch_sum": epoch_sum, "epoch_n": epoch_n}, fh)

    bar = tqdm(total=total, initial=step, desc=name, unit="it", disable=not progress,
               dynamic_ncols=True, leave=True, mininterval=0.5 if sys.stderr.isatty() else 30.0)
    last_save = time.monotonic()
    net.train()
    try:
        while step < total:
            t0 = time.monotonic()
            rate = settings.lr_min + 0.5 * (settings.lr - settings.lr_min) * \
                (1.0 + math.cos(math.pi * step / total))
            for g in opt.param_groups:
                g["lr"] = rate
            take = order[pos:pos + settings.batch]
            lr, hr, mask = data.windows(patches[take])
            with autocast(precision):
                sr = net(lr.contiguous(memory_format=fmt))
            loss = masked_l1(sr.float(), hr, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # the sampler advances only after a completed step: an interruption anywhere
            # above resumes with the same batch
            step += 1
            pos += len(take)
            if pos >= len(order):
                order, pos = rng.permutation(len(patches)), 0
            epoch_sum += loss.item() * len(take)
            epoch_n += len(take)
            if step % per_epoch == 0 or step == total:
                mean = epoch_sum / max(epoch_n, 1)
                if mean < best_loss:
                    best_loss, best_epoch = mean, step // per_epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                epoch_sum, epoch_n = 0.0, 0
                bar.set_postfix_str(f"loss={mean:.4f} best={best_loss:.4f}", refresh=False)
            seconds += time.monotonic() - t0
            bar.update(1)
            if checkpoint is not None and time.monotonic() - last_save > settings.checkpoint_seconds:
                save()
                last_save = time.monotonic()
    finally:
        bar.close()
        save()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.to(memory_format=torch.contiguous_format).eval()
    return ModelResult(name=name, patches=len(patches), steps=total, seconds=seconds,
                       best_loss=best_loss, best_epoch=best_epoch, precision=precision)
