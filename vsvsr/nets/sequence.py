"""The recurrent-step protocol every vsvsr network follows, and its sequential reference run.

A network maps (LR_t, LR_{t-1}, state, step) to (SR_t, new state) in ``forward`` (the exported
graph), and ``step_train`` returns the same plus an auxiliary loss for training (e.g. a flow
network's photometric loss; zero for networks without one). A reset is: zero state, previous
frame = current frame, step 0 — the runtime, the trainer and the tests all use these semantics.
"""

from __future__ import annotations

from typing import Protocol

import torch


class RecurrentNet(Protocol):
    """What the trainer, the exporter and the reference run need from a network."""

    config: object

    def initial_state(self, lr: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor,
                 step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def step_train(self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor,
                   step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


def run_sequence(net: RecurrentNet, frames: torch.Tensor,
                 resets: list[bool] | None = None) -> torch.Tensor:
    """Run ``net`` causally over ``frames`` (N, T, 3, H, W); the sequential reference.

    ``resets[t]`` restarts the recurrence at frame t (frame 0 always restarts).
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
