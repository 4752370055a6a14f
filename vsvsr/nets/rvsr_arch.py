"""RVSR: a small causal recurrent super-resolution network.

One step maps (current LR frame, previous LR frame, hidden state, step number) to
(SR frame, new hidden state). The state carries learned features *and* the previous SR output
folded to LR resolution (pixel-unshuffle, RLSP style), so the past detail is directly
available to the next step. The SR frame is a bicubic upscale plus a learned residual, so
colours stay right even for an untrained or struggling network.

The step number (frames since the last reset) enters as a constant plane, clamped to
``step_clamp`` and scaled to [0, 1] *inside* the network: the runtime passes the raw count
and the normalization lives in one place, the exported graph.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

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

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip (EDSR style, no batch norm)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


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
        t = torch.clamp(step, 0.0, float(c.step_clamp)) * (1.0 / c.step_clamp)
        t_plane = t.reshape(-1, 1, 1, 1) * torch.ones_like(lr[:, :1])
        x = torch.cat([lr, lr - lr_prev, state, t_plane], dim=1)
        f = F.relu(self.head(x))
        f = f + self.body(f)
        hidden = torch.tanh(self.to_hidden(f))
        residual = F.pixel_shuffle(self.to_residual(f), c.scale)
        base = F.interpolate(lr, scale_factor=c.scale, mode="bicubic", align_corners=False)
        sr = base + residual
        state_out = torch.cat([hidden, F.pixel_unshuffle(sr, c.scale)], dim=1)
        return sr, state_out


def run_sequence(
    net: RVSRNet, frames: torch.Tensor, resets: list[bool] | None = None
) -> torch.Tensor:
    """Run ``net`` causally over ``frames`` (N, T, 3, H, W); the sequential reference.

    ``resets[t]`` restarts the recurrence at frame t (frame 0 always restarts). At a reset the
    previous frame is the current one, the state is zeros and the step counter is 0.
    """
    n, length = frames.shape[:2]
    outs = []
    state = net.initial_state(frames[:, 0])
    step = 0
    prev = frames[:, 0]
    for t in range(length):
        cur = frames[:, t]
        if t == 0 or (resets is not None and resets[t]):
            state, step, prev = net.initial_state(cur), 0, cur
        sr, state = net(cur, prev, state, cur.new_full((n, 1, 1, 1), float(step)))
        outs.append(sr)
        prev, step = cur, step + 1
    return torch.stack(outs, dim=1)
