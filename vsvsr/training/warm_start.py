"""Start a recurrent network from a trained single-frame control (a "warm start").

Why: on a few CPU cores a recurrent network spends most of its budget learning what a
single-frame network already knows (the texture prior); its past only starts to pay once that
is learned. The control (``sfsr``) has the same trunk as a recurrent net of the same width and
depth, so its weights can be copied in: the head's weights for the current frame come from the
control, the weights for every input the control did not have (previous frame, state, step)
start at zero. The recurrent net then computes exactly the control's output at every step, and
training only has to learn to use the past (the BasicVSR-style practice of initializing a video
network from an image network).

Budget accounting: the warm-started run inherits the control's training time, so the fair
single-frame comparison is the control continued for the same extra time (docs/models.md).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: (source, target) architecture pairs :func:`transfer_single_frame` knows how to map
SUPPORTED = {("sfsr", "rvsr"), ("sfsr", "rvsrf"), ("sfsr", "rvsrg")}


def transfer_single_frame(net: nn.Module, target_arch: str, source_arch: str,
                          source_config: Any, source_state: dict[str, torch.Tensor]) -> None:
    """Copy a trained ``sfsr`` control into the recurrent ``net`` (in place).

    Raises ``ValueError`` naming the mismatch (and the setting to change) when the two nets do
    not share scale, width, depth and unit type.
    """
    if (source_arch, target_arch) not in SUPPORTED:
        raise ValueError(f"warm start: cannot start a {target_arch} from a {source_arch}; "
                         f"supported: {', '.join(f'{t} from {s}' for s, t in sorted(SUPPORTED))}")
    cfg = net.config  # type: ignore[attr-defined]
    for name in ("scale", "width", "blocks"):
        mine, theirs = getattr(cfg, name), getattr(source_config, name)
        if mine != theirs:
            raise ValueError(f"warm start: the {target_arch} has {name} {mine} but the "
                             f"{source_arch} checkpoint has {theirs}; set arch.{name}: {theirs}")
    if getattr(cfg, "leak", 0.0) != 0.0:
        raise ValueError(f"warm start: the {source_arch} trunk uses ReLU units; set arch.leak: 0 "
                         f"in the {target_arch} config (it is {cfg.leak})")
    own = net.state_dict()
    with torch.no_grad():
        for key, value in source_state.items():
            if key.startswith("head."):
                continue
            if key not in own or own[key].shape != value.shape:
                raise ValueError(f"warm start: the {source_arch} weight {key} "
                                 f"{tuple(value.shape)} has no match in the {target_arch}")
            own[key].copy_(value)
        w, b = source_state["head.weight"], source_state["head.bias"]
        head_w = torch.zeros_like(own["head.weight"])
        head_w[:, : w.shape[1]] = w  # the current frame comes first in both input stacks
        own["head.weight"].copy_(head_w)
        # rvsrf feeds the current frame centred (lr - 0.5): fold the shift into the bias, so
        # the sum is the control's away from the one-pixel border of zero padding
        shift = 0.5 * w.sum(dim=(1, 2, 3)) if target_arch == "rvsrf" else 0.0
        own["head.bias"].copy_(b + shift)
    net.load_state_dict(own)
