"""RVSR: the flow-free causal recurrent network (RLSP / RRN style).

One step maps (current LR frame, previous LR frame, hidden state, step number) to (SR frame,
new hidden state). The state carries learned features *and* the previous SR output folded to
LR resolution (pixel-unshuffle, RLSP style), so past detail is directly available to the next
step. The SR frame is a bicubic upscale plus a learned residual, so colours stay right even for
an untrained or struggling network. Nothing is aligned: the trunk must learn to use unaligned
past information through its receptive field, which is cheap but limits what moving content
can borrow from the past (see ``rvsrf_arch`` for the flow-aligned variant).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vsvsr.nets.blocks import ResBlock, bicubic_up, step_plane

#: Names of the exported ONNX tensors; the runtime binds by these names.
INPUT_NAMES = ("lr", "lr_prev", "state", "step")
OUTPUT_NAMES = ("sr", "state_out")


@dataclass(kw_only=True, frozen=True)
class RVSRConfig:
    """Architecture hyper-parameters of :class:`RVSRNet`."""

    scale: int = 2
    width: int = 32  #: channels of the residual trunk
    blocks: int = 4  #: residual blocks in the trunk
    hidden: int = 16  #: learned hidden-state channels (besides the folded previous output)
    step_clamp: int = 32  #: step numbers above this are treated as "long-running"
    step_cond: bool = True  #: feed the step number (off: the plane is zero; for ablations)

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"RVSRConfig: scale must be 2, 3 or 4, got {self.scale}")
        for name in ("width", "blocks", "hidden", "step_clamp"):
            if getattr(self, name) < 1:
                raise ValueError(f"RVSRConfig: {name} must be >= 1, got {getattr(self, name)}")

    @property
    def state_channels(self) -> int:
        """Channels of the state tensor: hidden features + the folded previous SR frame."""
        return self.hidden + 3 * self.scale * self.scale

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RVSRNet(nn.Module):
    """The recurrent step. Inputs are NCHW float RGB in [0, 1]; see the module docstring."""

    def __init__(self, config: RVSRConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        in_ch = 3 + 3 + c.state_channels + 1
        self.head = nn.Conv2d(in_ch, c.width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(c.width) for _ in range(c.blocks)])
        self.to_hidden = nn.Conv2d(c.width, c.hidden, 3, padding=1)
        self.to_residual = nn.Conv2d(c.width, 3 * c.scale * c.scale, 3, padding=1)
        # Start as plain bicubic: a zero residual keeps early training and untrained nets sane.
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)

    def initial_state(self, lr: torch.Tensor) -> torch.Tensor:
        """The state after a reset: zeros (the network is told step 0)."""
        n, _, h, w = lr.shape
        return lr.new_zeros((n, self.config.state_channels, h, w))

    def forward(
        self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor, step: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        t_plane = step_plane(step, lr, c.step_clamp, c.step_cond)
        x = torch.cat([lr, lr - lr_prev, state, t_plane], dim=1)
        f = F.relu(self.head(x))
        f = f + self.body(f)
        hidden = torch.tanh(self.to_hidden(f))
        sr = bicubic_up(lr, c.scale) + F.pixel_shuffle(self.to_residual(f), c.scale)
        state_out = torch.cat([hidden, F.pixel_unshuffle(sr, c.scale)], dim=1)
        return sr, state_out

    def step_train(self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor,
                   step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward`` plus an auxiliary loss (none for this network)."""
        sr, state_out = self(lr, lr_prev, state, step)
        return sr, state_out, lr.new_zeros(())
