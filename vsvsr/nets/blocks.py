"""Building blocks shared by the vsvsr networks (all ONNX opset 17 / TensorRT friendly)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip (EDSR style, no batch norm).

    ``leak`` > 0 makes it a leaky ReLU (BasicVSR's 0.1), whose units cannot die.
    """

    def __init__(self, width: int, leak: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.leak = leak

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        h = F.leaky_relu(h, self.leak) if self.leak else F.relu(h)
        return x + self.conv2(h)


def step_plane(step: torch.Tensor, like: torch.Tensor, clamp: int, enabled: bool) -> torch.Tensor:
    """The step-number input as a constant plane shaped like ``like[:, :1]``.

    The raw frame count since the last reset is clamped to ``clamp`` and scaled to [0, 1]:
    beyond ``clamp`` steps the state's statistics no longer change much (the state forgets at
    a few percent a frame), so "long-running" is one value and the input stays bounded on
    videos of any length. With ``enabled`` false the plane is zero but still computed from
    ``step``, so every model exports the same four inputs.
    """
    t = torch.clamp(step, 0.0, float(clamp)) * (1.0 / clamp)
    if not enabled:
        t = t * 0.0
    return t.reshape(-1, 1, 1, 1) * torch.ones_like(like[:, :1])


def bicubic_up(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic base every network adds its residual to (Resize cubic in ONNX)."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``x`` by ``flow`` (N, 2, H, W; x then y, in pixels of ``x``).

    ``out(p) = x(p + flow(p))``, bilinear, borders repeated. The base grid is built with
    ``arange`` from the tensor's own shape so the exported graph keeps dynamic sizes
    (GridSample needs opset >= 16; TensorRT parses it up to opset 19).
    """
    n, _, h, w = x.shape
    xs = torch.arange(w, dtype=x.dtype, device=x.device).reshape(1, 1, w)
    ys = torch.arange(h, dtype=x.dtype, device=x.device).reshape(1, h, 1)
    gx = (2.0 * (xs + flow[:, 0]) + 1.0) / w - 1.0
    gy = (2.0 * (ys + flow[:, 1]) + 1.0) / h - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Smooth L1: robust to the rare outlier pixel, yet differentiable at zero."""
    return torch.sqrt((x - y) ** 2 + eps * eps).mean()
