"""WDSR-s: a small WDSR-A (Yu et al. 2018), the second stateless overfit backbone.

Wide-activation residual blocks (expand x4 before the ReLU, contract after), a 3x3 body path
and a 5x5 skip path, both pixel-shuffled, plus the bicubic upscale (as in :mod:`espcn_arch`).
Weight normalisation is left out: it only changes training dynamics, and plain convolutions
export and fold more simply. Leaky ReLU (0.1) as in :mod:`espcn_arch`. Defaults are small
(4 blocks of 16 channels: 77 k parameters at x2, 85 k at x4); the paper's WDSR-16 is
``blocks=16, width=32`` (~1.2 M).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vsvsr.nets.blocks import bicubic_up


@dataclass(kw_only=True, frozen=True)
class WDSRSConfig:
    """Architecture hyper-parameters of :class:`WDSRSNet`."""

    scale: int = 4
    width: int = 16
    blocks: int = 4
    expand: int = 4

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"WDSRSConfig: scale must be 2, 3 or 4, got {self.scale}")
        for name in ("width", "blocks", "expand"):
            if getattr(self, name) < 1:
                raise ValueError(f"WDSRSConfig: {name} must be >= 1, got {getattr(self, name)}")

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context per side: head 1, two 3x3 per block, tail 1 (skip path: 2)."""
        return max(1 + 2 * self.blocks + 1, 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _WideBlock(nn.Module):
    def __init__(self, width: int, expand: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width * expand, 3, padding=1)
        self.conv2 = nn.Conv2d(width * expand, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.1))  # leaky: units cannot die


class WDSRSNet(nn.Module):
    """head -> wide blocks -> tail (pixel shuffle) + 5x5 skip (pixel shuffle) + bicubic."""

    def __init__(self, config: WDSRSConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        out = 3 * c.scale * c.scale
        self.head = nn.Conv2d(3, c.width, 3, padding=1)
        self.body = nn.Sequential(*[_WideBlock(c.width, c.expand) for _ in range(c.blocks)])
        self.to_residual = nn.Conv2d(c.width, out, 3, padding=1)
        self.skip = nn.Conv2d(3, out, 5, padding=2)
        for conv in (self.to_residual, self.skip):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        s = self.config.scale
        body = self.to_residual(self.body(self.head(lr)))
        return bicubic_up(lr, s) + F.pixel_shuffle(body + self.skip(lr), s)
