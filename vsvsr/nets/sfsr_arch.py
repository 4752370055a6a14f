"""SFSR: the single-frame control (a small EDSR), with the recurrent networks' interface.

It exists to answer one question honestly: does a recurrent model beat a single-frame model
trained on the same data for the same time? It takes the same four inputs so that training,
evaluation and export drive every network the same way, but it ignores the previous frame, the
state and the step; its "state" is one zero channel passed through.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vsvsr.nets.blocks import ResBlock, bicubic_up


@dataclass(kw_only=True, frozen=True)
class SFSRConfig:
    """Architecture hyper-parameters of :class:`SFSRNet`."""

    scale: int = 4
    width: int = 48
    blocks: int = 5
    step_clamp: int = 1  #: unused; kept so every config describes the step input alike

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"SFSRConfig: scale must be 2, 3 or 4, got {self.scale}")
        for name in ("width", "blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"SFSRConfig: {name} must be >= 1, got {getattr(self, name)}")

    @property
    def state_channels(self) -> int:
        return 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SFSRNet(nn.Module):
    """conv head, residual blocks, pixel-shuffle residual over bicubic."""

    def __init__(self, config: SFSRConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.head = nn.Conv2d(3, c.width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(c.width) for _ in range(c.blocks)])
        self.to_residual = nn.Conv2d(c.width, 3 * c.scale * c.scale, 3, padding=1)
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)

    def initial_state(self, lr: torch.Tensor) -> torch.Tensor:
        n, _, h, w = lr.shape
        return lr.new_zeros((n, 1, h, w))

    def forward(
        self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor, step: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        f = F.relu(self.head(lr))
        f = f + self.body(f)
        sr = bicubic_up(lr, c.scale) + F.pixel_shuffle(self.to_residual(f), c.scale)
        # the inputs it ignores still feed the graph (x0), so the export keeps all four
        return sr, state * 0.0 + (lr_prev[:, :1] * 0.0 + step * 0.0)

    def step_train(self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor,
                   step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sr, state_out = self(lr, lr_prev, state, step)
        return sr, state_out, lr.new_zeros(())
