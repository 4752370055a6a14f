"""The one degradation used to make LR training (and evaluation) inputs: antialiased bicubic.

Keeping a single function means the training data, the evaluation and the pre-shrinking of the
photographs all agree on what "downscale" means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Shrink ``hr`` (N, 3, H, W, float in [0, 1]) by an integer ``scale`` with antialiasing.

    Antialiased bicubic (PIL/Matlab ``imresize`` style) is the usual SR benchmark degradation.
    The result is clamped to [0, 1] because a real LR frame never leaves that range.

    Raises:
        ValueError: if the size does not divide by ``scale`` (the LR/HR grids would not align).
    """
    if hr.dim() != 4:
        raise ValueError(f"downscale: expected an (N, C, H, W) tensor, got shape {tuple(hr.shape)}")
    if scale < 1:
        raise ValueError(f"downscale: scale must be >= 1, got {scale}")
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"downscale: size {w}x{h} does not divide by scale {scale}; crop the frame first"
        )
    if scale == 1:
        return hr
    lr = F.interpolate(
        hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False
    )
    return lr.clamp_(0.0, 1.0)


def to_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] values to the 8-bit grid, as every real LR frame (and ``vsvsr eval``) is."""
    return x.mul(255.0).round_().div_(255.0)


def make_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The training LR of an HR batch (..., 3, H, W): :func:`downscale`, then 8-bit rounding.

    Without the rounding the network would learn from sub-quantum detail that no real input
    (and no evaluation input) carries.
    """
    lead = hr.shape[:-3]
    lr = downscale(hr.reshape(-1, *hr.shape[-3:]), scale)
    return to_8bit(lr).reshape(*lead, *lr.shape[-3:])
