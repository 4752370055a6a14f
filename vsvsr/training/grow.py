"""Start a wider and deeper net from a trained smaller one of the same kind ("growing").

Why: on a 2-core CPU a larger trunk (the quality tier) would spend its first hours relearning
what the trained smaller net already knows. Growing it function-preservingly (Net2Net-style)
keeps all of that: the grown net computes exactly the source's output at step 0, and training
only has to find what the extra channels and blocks can add.

The rule for every convolution whose shape grew: the source's weights fill the old block of
the kernel; the new output channels keep their fresh random initialisation (they compute
something, so gradients reach whoever reads them); weights from a new input channel into an
old output channel are zero (nothing old reads the new channels yet, so the output is the
source's). Appended residual blocks get a zero second convolution: they start as identities,
and their first convolution's activations give the second one a gradient from the first step.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn

#: architecture settings that may differ between the source and the grown net
GROWABLE = ("width", "blocks")


def can_grow(source_config: Any, target_config: Any) -> bool:
    """True when ``target_config`` equals ``source_config`` but for a larger width/depth."""
    src, dst = asdict(source_config), asdict(target_config)
    if type(source_config) is not type(target_config) or src == dst:
        return False
    same = all(src[k] == dst[k] for k in src if k not in GROWABLE)
    return same and all(dst[k] >= src[k] for k in GROWABLE if k in src)


def grow_into(net: nn.Module, source_config: Any, source_state: dict[str, torch.Tensor]) -> None:
    """Load ``source_state`` (a net of ``source_config``) into the larger ``net`` (in place).

    Raises ``ValueError`` naming the setting when ``net`` is not a grown copy of the source.
    """
    target = net.config  # type: ignore[attr-defined]
    if not can_grow(source_config, target):
        raise ValueError(f"grow: a {type(target).__name__} {asdict(target)} is not a wider/deeper "
                         f"copy of {asdict(source_config)}; only {', '.join(GROWABLE)} may grow")
    own = net.state_dict()
    old_blocks = source_config.blocks
    with torch.no_grad():
        for key, value in source_state.items():
            if key not in own:
                raise ValueError(f"grow: the source weight {key} has no match in the grown net")
            dst = own[key]
            if dst.shape == value.shape:
                dst.copy_(value)
                continue
            if dst.dim() != value.dim() or any(
                    d < s for d, s in zip(dst.shape, value.shape, strict=True)):
                raise ValueError(f"grow: {key} would shrink from {tuple(value.shape)} to "
                                 f"{tuple(dst.shape)}")
            if dst.dim() == 4:  # conv weight (out, in, kh, kw)
                o, i = value.shape[:2]
                dst[:o, i:] = 0.0  # old outputs ignore the new inputs
                dst[:o, :i] = value
            elif dst.dim() == 1:  # bias
                dst[: value.shape[0]] = value
            else:
                raise ValueError(f"grow: do not know how to grow {key} {tuple(value.shape)}")
        for key in own:
            if key.startswith("body.") and int(key.split(".")[1]) >= old_blocks \
                    and ".conv2." in key:
                own[key].zero_()  # appended blocks start as identities
    net.load_state_dict(own)
