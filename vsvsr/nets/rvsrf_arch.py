"""RVSRF: the flow-aligned causal recurrent network (unidirectional BasicVSR / FRVSR style).

A small learned flow network estimates, at LR resolution, where each pixel of the current frame
was in the previous one. The hidden features are warped with that flow at LR, the previous SR
output (folded in the state) is warped at HR with the upscaled flow, so the trunk sees the past
*aligned* to the present: detail revealed by earlier sub-pixel positions lands where it belongs,
which is what lets a recurrent network beat a single-frame one on moving content.

The flow network is trained by the SR loss and by an auxiliary photometric loss (the previous LR
frame warped onto the current one, FRVSR's flow loss), which teaches it motion in a few hundred
steps instead of leaving it to discover alignment through the SR loss alone. Everything exports
to ONNX opset 17 (GridSample bilinear, Resize) that TensorRT parses; no deformable convolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vsvsr.nets.blocks import ResBlock, bicubic_up, charbonnier, step_plane, warp


@dataclass(kw_only=True, frozen=True)
class RVSRFConfig:
    """Architecture hyper-parameters of :class:`RVSRFNet`."""

    scale: int = 4
    width: int = 32  #: channels of the SR trunk
    blocks: int = 4  #: residual blocks in the trunk
    hidden: int = 16  #: learned hidden-state channels (besides the folded previous output)
    flow_width: int = 24  #: channels of the flow network
    step_clamp: int = 32  #: step numbers above this are treated as "long-running"
    step_cond: bool = True  #: feed the step number (off: the plane is zero; for ablations)
    #: negative slope of the trunk's units: 0.1 (leaky) keeps a fresh net's units alive; 0.0
    #: (ReLU) matches the single-frame control, for a warm start from it (training/warm_start)
    leak: float = 0.1

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"RVSRFConfig: scale must be 2, 3 or 4, got {self.scale}")
        for name in ("width", "blocks", "hidden", "flow_width", "step_clamp"):
            if getattr(self, name) < 1:
                raise ValueError(f"RVSRFConfig: {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.leak < 1.0:
            raise ValueError(f"RVSRFConfig: leak must be in [0, 1), got {self.leak}")

    @property
    def state_channels(self) -> int:
        """Channels of the state tensor: hidden features + the folded previous SR frame."""
        return self.hidden + 3 * self.scale * self.scale

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FlowNet(nn.Module):
    """A three-level U-Net from (current, previous) LR frames to backward flow in LR pixels.

    Two stride-2 levels give a receptive field of about +-12 LR pixels, enough for the pans
    (a few pixels a frame) that sub-pixel accumulation helps with. The last layer starts at
    zero, so an untrained network warps by the identity.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        w = width
        self.enc1 = nn.Conv2d(6, w, 3, padding=1)
        self.enc2 = nn.Conv2d(w, w, 3, stride=2, padding=1)
        self.enc3 = nn.Conv2d(w, w, 3, stride=2, padding=1)
        self.mid1 = nn.Conv2d(w, w, 3, padding=1)
        self.mid2 = nn.Conv2d(w, w, 3, padding=1)
        self.dec2 = nn.Conv2d(2 * w, w, 3, padding=1)
        self.dec1 = nn.Conv2d(2 * w, w, 3, padding=1)
        self.out = nn.Conv2d(w, 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, lr: torch.Tensor, lr_prev: torch.Tensor) -> torch.Tensor:
        x = torch.cat([lr, lr_prev - lr], dim=1)
        f1 = F.leaky_relu(self.enc1(x), 0.1)
        f2 = F.leaky_relu(self.enc2(f1), 0.1)
        f3 = F.leaky_relu(self.enc3(f2), 0.1)
        f3 = F.leaky_relu(self.mid2(F.leaky_relu(self.mid1(f3), 0.1)), 0.1) + f3
        u2 = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        d2 = F.leaky_relu(self.dec2(torch.cat([u2, f2], dim=1)), 0.1)
        u1 = F.interpolate(d2, size=f1.shape[-2:], mode="bilinear", align_corners=False)
        d1 = F.leaky_relu(self.dec1(torch.cat([u1, f1], dim=1)), 0.1)
        return self.out(d1)


class RVSRFNet(nn.Module):
    """The flow-aligned recurrent step; same inputs and outputs as :class:`RVSRNet`."""

    def __init__(self, config: RVSRFConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.flow = FlowNet(c.flow_width)
        # current LR, aligned previous minus current (occlusion cue), state, step
        in_ch = 3 + 3 + c.state_channels + 1
        self.head = nn.Conv2d(in_ch, c.width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(c.width, leak=c.leak) for _ in range(c.blocks)])
        self.to_hidden = nn.Conv2d(c.width, c.hidden, 3, padding=1)
        self.to_residual = nn.Conv2d(c.width, 3 * c.scale * c.scale, 3, padding=1)
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)

    def initial_state(self, lr: torch.Tensor) -> torch.Tensor:
        """The state after a reset: zeros (the network is told step 0)."""
        n, _, h, w = lr.shape
        return lr.new_zeros((n, self.config.state_channels, h, w))

    def _step(self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor,
              step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        s = c.scale
        flow = self.flow(lr, lr_prev)
        prev_aligned = warp(lr_prev, flow)
        hidden = warp(state[:, : c.hidden], flow)
        flow_hr = F.interpolate(flow, scale_factor=s, mode="bilinear", align_corners=False) * s
        sr_prev = warp(F.pixel_shuffle(state[:, c.hidden:], s), flow_hr)
        t_plane = step_plane(step, lr, c.step_clamp, c.step_cond)
        base = bicubic_up(lr, s)
        # Centred inputs: the past SR enters as its detail relative to the current bicubic
        # upscale (zero where the past adds nothing), the frames around 0. Many all-positive,
        # correlated input planes let Adam's first steps push every head unit negative at once
        # (seen here: 60% -> 14% active units in 170 steps); centring and leaky units avoid it.
        x = torch.cat([lr - 0.5, prev_aligned - lr, hidden,
                       F.pixel_unshuffle(sr_prev - base, s), t_plane], dim=1)
        f = F.leaky_relu(self.head(x), c.leak)
        f = f + self.body(f)
        new_hidden = torch.tanh(self.to_hidden(f))
        sr = base + F.pixel_shuffle(self.to_residual(f), s)
        state_out = torch.cat([new_hidden, F.pixel_unshuffle(sr, s)], dim=1)
        return sr, state_out, prev_aligned, flow

    def forward(
        self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor, step: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sr, state_out, _, _ = self._step(lr, lr_prev, state, step)
        return sr, state_out

    def step_train(self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor,
                   step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward`` plus the photometric flow loss |warp(LR_{t-1}) - LR_t|."""
        sr, state_out, prev_aligned, _ = self._step(lr, lr_prev, state, step)
        return sr, state_out, charbonnier(prev_aligned, lr)
