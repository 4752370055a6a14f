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
    """The bicubic base every network adds its residual to (Resize cubic in ONNX).

    Kept for the shipped networks' graphs; new networks use :class:`BicubicUp`, which computes
    the same values as a fixed convolution (ONNX Runtime's cubic Resize took 40 % of a frame).
    """
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


def bicubic_up_kernel(scale: int) -> torch.Tensor:
    """(scale*scale, 1, 5, 5) taps: output phase (dy, dx) of an integer bicubic upscale.

    Read off PyTorch's own bicubic upscale of unit impulses, so :class:`BicubicUp` equals
    :func:`bicubic_up` exactly (its border rule, repeating the edge, is replicate padding).
    """
    k = torch.zeros(scale * scale, 1, 5, 5, dtype=torch.float64)
    for i in range(5):
        for j in range(5):
            impulse = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
            impulse[..., 4, 4] = 1.0
            up = F.interpolate(impulse, scale_factor=scale, mode="bicubic", align_corners=False)
            # output pixel (4*s + dy, 4*s + dx) reads input (4 + i - 2, 4 + j - 2) with this
            # weight; tap (i, j) of phase (dy, dx) is the weight on input offset (i-2, j-2),
            # i.e. the response at output (4 - (i - 2)) * s + dy ... of an impulse at 4
            for dy in range(scale):
                for dx in range(scale):
                    oy, ox = (4 - (i - 2)) * scale + dy, (4 - (j - 2)) * scale + dx
                    k[dy * scale + dx, 0, i, j] = up[0, 0, oy, ox]
    return k.float()


class BicubicUp(nn.Module):
    """Integer bicubic upscale as a fixed depthwise conv at LR + pixel shuffle (exact)."""

    def __init__(self, scale: int, channels: int = 3) -> None:
        super().__init__()
        self.scale, self.channels = scale, channels
        self.register_buffer("kernel", bicubic_up_kernel(scale).repeat(channels, 1, 1, 1),
                             persistent=False)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = F.pad(lr, (2, 2, 2, 2), mode="replicate")
        return F.pixel_shuffle(F.conv2d(x, self.kernel.to(lr.dtype), groups=self.channels),
                               self.scale)


def warp(x: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward-warp ``x`` by ``flow`` (N, 2, H, W; x then y, in pixels of ``x``).

    ``out(p) = x(p + flow(p))``, bilinear (or ``mode="bicubic"``, which keeps detail that is
    warped again every frame), borders repeated. The base grid is built with
    ``arange`` from the tensor's own shape so the exported graph keeps dynamic sizes
    (GridSample needs opset >= 16; TensorRT parses it up to opset 19).
    """
    n, _, h, w = x.shape
    # The sampling grid is always computed in fp32: pixel coordinates of a few hundred in
    # bf16 (8-bit mantissa, as under CPU autocast) are off by up to a pixel, which destroys
    # exactly the sub-pixel alignment the recurrent nets live on.
    flow = flow.float()
    xs = torch.arange(w, dtype=torch.float32, device=x.device).reshape(1, 1, w)
    ys = torch.arange(h, dtype=torch.float32, device=x.device).reshape(1, h, 1)
    gx = (2.0 * (xs + flow[:, 0]) + 1.0) / w - 1.0
    gy = (2.0 * (ys + flow[:, 1]) + 1.0) / h - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    with torch.autocast(x.device.type, enabled=False):
        out = F.grid_sample(x.float(), grid, mode=mode, padding_mode="border",
                            align_corners=False)
    return out.to(x.dtype)


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Smooth L1: robust to the rare outlier pixel, yet differentiable at zero."""
    return torch.sqrt((x - y) ** 2 + eps * eps).mean()


def antialias_kernel(scale: int) -> tuple[torch.Tensor, int]:
    """The 1-D taps of :func:`~vsvsr.training.degrade.downscale` away from borders, and the
    left padding that centres them (output j reads inputs ``s*j - pad ...``).

    Read off PyTorch's antialiased bicubic itself (its matrix on unit vectors), so the in-graph
    downscale below is the training degradation, not an approximation of it.
    """
    n = 16 * scale
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 1, 1, n)
    rows = F.interpolate(basis, size=(1, n // scale), mode="bicubic", antialias=True,
                         align_corners=False)[:, 0, 0].T  # (n/s, n): output j <- input i
    j = n // (2 * scale)
    nz = torch.nonzero(rows[j].abs() > 1e-12).flatten()
    first, last = int(nz[0]), int(nz[-1])
    return rows[j, first:last + 1].float(), scale * j - first


class Downscale(nn.Module):
    """In-graph antialiased bicubic downscale by an integer factor (depthwise strided convs).

    Matches :func:`~vsvsr.training.degrade.downscale` away from a border of about ``1.5 *
    scale`` px (edges are repeated there instead of renormalized); exports to Pad + Conv.
    """

    def __init__(self, scale: int, channels: int = 3) -> None:
        super().__init__()
        k, self.pad_left = antialias_kernel(scale)
        self.pad_right = k.numel() - scale - self.pad_left
        self.scale, self.channels = scale, channels
        self.register_buffer("kx", k.reshape(1, 1, 1, -1).repeat(channels, 1, 1, 1),
                             persistent=False)
        self.register_buffer("ky", k.reshape(1, 1, -1, 1).repeat(channels, 1, 1, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, a, b = self.scale, self.pad_left, self.pad_right
        x = F.pad(x, (a, b, a, b), mode="replicate")
        x = F.conv2d(x, self.kx.to(x.dtype), stride=(1, s), groups=self.channels)
        return F.conv2d(x, self.ky.to(x.dtype), stride=(s, 1), groups=self.channels)
