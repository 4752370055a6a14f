"""ESPCN: the small stateless single-frame backbone of the overfit (STDO) models.

Shi et al. 2016: conv 5x5 -> conv 3x3 -> conv 3x3 to ``3 * scale^2`` channels -> pixel shuffle.
Two deliberate changes, both cheap: the output is a residual added to the bicubic upscale (a
short overfit starts at bicubic quality instead of grey), and leaky ReLU (0.1) replaces tanh
(plain ReLU units died at Adam 1e-3 and left a network stuck at bicubic: measured, 30 of 32
second-layer units dead after 700 steps). The network
takes one input ``lr`` and gives one output ``sr``; it has no state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vsvsr.nets.blocks import bicubic_up

#: Negative slope of the activations (BasicVSR's 0.1): a leaky unit cannot die.
LEAK = 0.1


@dataclass(kw_only=True, frozen=True)
class ESPCNConfig:
    """Architecture hyper-parameters of :class:`ESPCNNet` (the paper's 64/32 by default)."""

    scale: int = 4
    width1: int = 64
    width2: int = 32

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"ESPCNConfig: scale must be 2, 3 or 4, got {self.scale}")
        for name in ("width1", "width2"):
            if getattr(self, name) < 1:
                raise ValueError(f"ESPCNConfig: {name} must be >= 1, got {getattr(self, name)}")

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context each output pixel depends on, per side (5x5 + 3x3 + 3x3)."""
        return 2 + 1 + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ESPCNNet(nn.Module):
    """``sr = bicubic(lr) + shuffle(conv(lrelu(conv(lrelu(conv(lr))))))``."""

    def __init__(self, config: ESPCNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.conv1 = nn.Conv2d(3, c.width1, 5, padding=2)
        self.conv2 = nn.Conv2d(c.width1, c.width2, 3, padding=1)
        self.to_residual = nn.Conv2d(c.width2, 3 * c.scale * c.scale, 3, padding=1)
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        s = self.config.scale
        f = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(lr), LEAK)), LEAK)
        return bicubic_up(lr, s) + F.pixel_shuffle(self.to_residual(f), s)
