"""Training clips and how their recurrence starts: fresh (RI-BPTT) or from stored states (PI-BPTT).

A :class:`Clip` is a batch of ``l``-frame LR/HR windows plus, per item, the recurrence's starting
point: the state, the previous LR frame and the step number the first frame is processed with.
:class:`FreshClips` always starts from the reset state (zero state, previous = current, step 0):
the RI-BPTT baseline. :class:`StateBank` (PI-BPTT) runs the network over whole training
sequences, stores the state after every frame, and starts clips anywhere in those sequences
from the stored states (a share ``p_fresh`` still starts fresh), reusing one computed state
sequence for ``reuse`` clips before recomputing it with the current weights. With ``slots`` > 1
the bank holds that many computed batches of sequences, every clip batch mixes sequences drawn at
random from all of them, and the oldest batch is recomputed every ``reuse`` clips: the same
compute per clip as one slot, but consecutive batches no longer share their crops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from vsvsr.nets.sequence import RecurrentNet

log = logging.getLogger(__name__)


class BatchSampler(Protocol):
    """What a clip source needs from a data sampler (``SequenceSampler`` and friends)."""

    length: int

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(kw_only=True)
class Clip:
    """One training batch: ``l`` frames per item and where each item's recurrence starts."""

    lr: torch.Tensor  #: (B, l, 3, h, w)
    hr: torch.Tensor  #: (B, l, 3, h*s, w*s)
    state0: torch.Tensor  #: (B, C, h, w) state before the first frame
    prev0: torch.Tensor  #: (B, 3, h, w) the LR frame before the first one (= first at a reset)
    step0: torch.Tensor  #: (B,) float step number of the first frame
    carried: torch.Tensor  #: (B,) bool: started from a stored state (False: fresh)


def unroll(net: RecurrentNet, clip: Clip) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``net`` over the clip from its starting points; (SR (B, l, 3, H, W), mean aux loss)."""
    state, prev = clip.state0, clip.prev0
    step = clip.step0.reshape(-1, 1, 1, 1)
    outs, aux = [], []
    for t in range(clip.lr.shape[1]):
        cur = clip.lr[:, t]
        sr, state, a = net.step_train(cur, prev, state, step + t)
        outs.append(sr)
        aux.append(a)
        prev = cur
    return torch.stack(outs, dim=1), torch.stack(aux).mean()


class FreshClips:
    """RI-BPTT: every clip starts from the reset state."""

    scheme = "ri"

    def __init__(self, sampler: BatchSampler) -> None:
        self.sampler = sampler

    def draw(self, net: RecurrentNet) -> Clip:
        lr, hr = self.sampler.sample()
        b = lr.shape[0]
        return Clip(lr=lr, hr=hr, state0=net.initial_state(lr[:, 0]), prev0=lr[:, 0],
                    step0=lr.new_zeros(b), carried=torch.zeros(b, dtype=torch.bool))

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # checkpoints from before the clip sources held the sampler's state at the top level
        self.sampler.load_state_dict(state.get("sampler", state))


class StateBank:
    """PI-BPTT: clips start from hidden states computed over whole training sequences.

    Args:
        sampler: draws batches of *whole* training sequences (its ``length`` is the sequence
            length ``N``, e.g. 64 frames).
        clip_length: BPTT length ``l`` (<= N).
        reuse: ``R``, clips drawn from one computed state sequence before it is recomputed
            (on new sequences, with the current weights).
        p_fresh: share of clip items that start fresh (the reset state) even so — the
            "partial" in partial initialization: restarts must stay good too.
        seed: seed of the bank's own generator (start positions, fresh draws).
        slots: computed batches of sequences held at once. 1: every clip batch comes from the
            one current batch (``reuse`` consecutive steps see the same crops). S > 1: each
            clip item picks a random sequence among all S batches, and one batch (the oldest)
            is recomputed every ``reuse`` clips, so each sequence still serves ``reuse``
            clip items on average, states are at most ``S * reuse`` steps old, and
            consecutive steps are decorrelated. The first draw fills every slot.
    """

    scheme = "pi"

    def __init__(self, sampler: BatchSampler, *, clip_length: int, reuse: int, p_fresh: float,
                 seed: int, slots: int = 1) -> None:
        if not 1 <= clip_length <= sampler.length:
            raise ValueError(f"StateBank: clip_length {clip_length} must be in 1..sequence "
                             f"length {sampler.length}")
        if reuse < 1 or not 0.0 <= p_fresh <= 1.0 or slots < 1:
            raise ValueError(f"StateBank: need reuse >= 1, 0 <= p_fresh <= 1 and slots >= 1, "
                             f"got {reuse}, {p_fresh}, {slots}")
        self.slots = slots
        self.next_slot = 0  #: the slot the next refresh replaces (round robin: the oldest)
        self.sampler, self.clip_length, self.reuse, self.p_fresh = (sampler, clip_length, reuse,
                                                                    p_fresh)
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.uses = reuse  # empty: the first draw computes
        self.refreshes = 0
        #: the bank, slot after slot: (S*B, N, 3, h, w) LR, (S*B, N, 3, H, W) HR and
        #: (S*B, N, C, h, w) state *after* frame t
        self.lr: torch.Tensor | None = None
        self.hr: torch.Tensor | None = None
        self.states: torch.Tensor | None = None

    @torch.no_grad()
    def refresh(self, net: RecurrentNet) -> None:
        """Draw new sequences into the oldest slot and run ``net`` over them from a reset,
        storing every state."""
        lr, hr, states = self._compute(net)
        if self.slots == 1:
            self.lr, self.hr, self.states = lr, hr, states
        else:
            b, s = lr.shape[0], self.next_slot
            if self.lr is None or self.hr is None or self.states is None:
                self.lr = lr.new_zeros((self.slots * b,) + tuple(lr.shape[1:]))
                self.hr = hr.new_zeros((self.slots * b,) + tuple(hr.shape[1:]))
                self.states = states.new_zeros((self.slots * b,) + tuple(states.shape[1:]))
            rows = slice(s * b, (s + 1) * b)
            self.lr[rows], self.hr[rows], self.states[rows] = lr, hr, states
            self.next_slot = (s + 1) % self.slots
        self.uses = 0
        self.refreshes += 1

    def _compute(self, net: RecurrentNet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lr, hr = self.sampler.sample()
        b, n = lr.shape[:2]
        state, prev = net.initial_state(lr[:, 0]), lr[:, 0]
        states = lr.new_empty((b, n) + tuple(state.shape[1:]))
        for t in range(n):
            _, state = net(lr[:, t], prev, state, lr.new_full((b, 1, 1, 1), float(t)))
            states[:, t] = state
            prev = lr[:, t]
        return lr, hr, states

    def draw(self, net: RecurrentNet) -> Clip:
        if self.lr is None:
            for _ in range(self.slots):
                self.refresh(net)
        elif self.uses >= self.reuse:
            self.refresh(net)
        assert self.lr is not None and self.hr is not None and self.states is not None
        self.uses += 1
        rows, n = self.lr.shape[:2]
        b = rows // self.slots
        length = self.clip_length
        start = torch.randint(0, n - length + 1, (b,), generator=self.generator)
        fresh = (torch.rand(b, generator=self.generator) < self.p_fresh) | (start == 0)
        idx = start[:, None] + torch.arange(length)[None]
        row = (torch.arange(b) if self.slots == 1
               else torch.randperm(rows, generator=self.generator)[:b])
        lr, hr = self.lr[row[:, None], idx], self.hr[row[:, None], idx]
        before = (start - 1).clamp(min=0)
        carried_state = self.states[row, before]
        carried_prev = self.lr[row, before]
        f = fresh.reshape(-1, 1, 1, 1)
        state0 = torch.where(f, torch.zeros_like(carried_state), carried_state)
        prev0 = torch.where(f, lr[:, 0], carried_prev)
        step0 = torch.where(fresh, torch.zeros(b), start.float())
        return Clip(lr=lr, hr=hr, state0=state0, prev0=prev0, step0=step0, carried=~fresh)

    def state_dict(self) -> dict[str, Any]:
        """Everything, stored sequences included, so a resumed run continues exactly."""
        return {"sampler": self.sampler.state_dict(), "generator": self.generator.get_state(),
                "uses": self.uses, "refreshes": self.refreshes, "lr": self.lr, "hr": self.hr,
                "states": self.states, "slots": self.slots, "next_slot": self.next_slot}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.generator.set_state(state["generator"])
        self.uses, self.refreshes = int(state["uses"]), int(state["refreshes"])
        # a slim checkpoint (training/checkpoint.save_slim_checkpoint) has no bank: refill it
        self.lr, self.hr, self.states = state.get("lr"), state.get("hr"), state.get("states")
        if int(state.get("slots", 1)) != self.slots:
            raise ValueError(f"StateBank: the checkpoint's bank has {state.get('slots', 1)} "
                             f"slots, this run {self.slots}; resume with the run's own settings")
        self.next_slot = int(state.get("next_slot", 0))
