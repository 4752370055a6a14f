"""Atomic, resumable training checkpoints.

A checkpoint holds everything the next iteration depends on: weights, Adam moments, the progress
(iteration and training time, which fully determine the cosine schedule), the sampler's generator
and the global torch RNG. It is written through :func:`atomic_write`, so killing the trainer at
any moment leaves either the old or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vsvsr.training.config import TrainConfig
from vsvsr.utils.atomic import atomic_write

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
#: File name of the latest checkpoint inside a run's output folder.
LAST_NAME = "last.pt"


@dataclass(kw_only=True)
class TrainState:
    """The resumable state of a run (mutable: the trainer advances it)."""

    config: TrainConfig
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    iteration: int = 0
    elapsed: float = 0.0  #: seconds spent in training steps, summed over all resumes
    sampler: dict[str, torch.Tensor] = field(default_factory=dict)
    torch_rng: torch.Tensor | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    #: exponential moving average of the weights (``config.ema_decay`` > 0), else None
    ema: dict[str, torch.Tensor] | None = None

    def weights(self) -> dict[str, torch.Tensor]:
        """The weights to evaluate, export or warm-start from: the EMA when the run keeps one
        (an averaged snapshot is as good as an annealed one, so a run can be evaluated and
        continued at any point of a long schedule), else the live weights."""
        return self.ema if self.ema is not None else self.model


def save_checkpoint(path: str | Path, state: TrainState) -> Path:
    """Write ``state`` to ``path`` atomically; returns the path."""
    out = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": state.config.to_dict(),
        "model": state.model,
        "optimizer": state.optimizer,
        "iteration": state.iteration,
        "elapsed": state.elapsed,
        "sampler": state.sampler,
        "torch_rng": state.torch_rng,
        "metrics": dict(state.metrics),
        "ema": state.ema,
    }
    with atomic_write(out, "wb") as fh:
        torch.save(payload, fh)
    log.info("checkpoint: iteration %d -> %s", state.iteration, out)
    return out


def load_checkpoint(path: str | Path) -> TrainState:
    """Read a checkpoint written by :func:`save_checkpoint` (safely: tensors and plain types)."""
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {src}")
    data = torch.load(src, map_location="cpu", weights_only=True)
    if data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"load_checkpoint: {src} has format {data.get('format')!r}, "
                         f"this vsvsr reads {CHECKPOINT_FORMAT}")
    return TrainState(
        config=TrainConfig.from_dict(data["config"]),
        model=data["model"],
        optimizer=data["optimizer"],
        iteration=int(data["iteration"]),
        elapsed=float(data["elapsed"]),
        sampler=data["sampler"],
        torch_rng=data["torch_rng"],
        metrics=dict(data["metrics"]),
        ema=data.get("ema"),
    )


def net_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, TrainState]:
    """The network of a training checkpoint (``last.pt``), weights loaded, in eval mode, and
    the checkpoint's state.

    Raises:
        ModelFileError: the file is missing, is not a vsvsr training checkpoint, or its weights
            do not fit its architecture.
    """
    from vsvsr.errors import ModelFileError
    from vsvsr.nets.arch_registry import build_net

    src = Path(path)
    try:
        state = load_checkpoint(src)
    except FileNotFoundError as exc:
        raise ModelFileError(f"training checkpoint {src} does not exist; check the path") from exc
    except Exception as exc:  # torch.load, format and config errors: all "not readable"
        raise ModelFileError(f"{src}: not a readable vsvsr training checkpoint ({exc}); "
                             "give a last.pt written by vsvsr train") from exc
    net = build_net(state.config.arch_name, state.config.arch)
    try:
        net.load_state_dict(state.weights())
    except RuntimeError as exc:
        raise ModelFileError(f"{src}: the weights do not fit architecture "
                             f"{state.config.arch_name!r}: {exc}") from exc
    return net.eval(), state


def save_slim_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy a checkpoint without its PI-BPTT state bank (weights, EMA, optimizer, step, RNGs).

    This is what a run commits to the repository so that each session continues the same run
    (a few MB instead of hundreds): resuming from it refills the bank with the current weights
    at the first step, everything else continues exactly.
    """
    state = load_checkpoint(src)
    state.sampler = {k: v for k, v in state.sampler.items() if k not in BANK_KEYS}
    return save_checkpoint(dst, state)


#: Sampler-state entries of a :class:`~vsvsr.training.clips.StateBank` that hold the bank itself.
BANK_KEYS = ("lr", "hr", "states")


@dataclass(frozen=True)
class InitSource:
    """Weights a run starts from (``init_from``): their architecture and where they came from."""

    arch_name: str
    arch: Any  #: the architecture's config dataclass
    weights: dict[str, torch.Tensor]
    iteration: int  #: training iterations behind them (0 when unknown)


def load_init_source(path: str | Path) -> InitSource:
    """The weights of ``init_from``: a training checkpoint (its EMA when it keeps one) or a
    shipped ``.pth`` model file (``vsvsr export``'s), so a shipped model can be fine-tuned
    (e.g. on real-world degradations) without its training run."""
    from vsvsr.nets.arch_registry import arch_config

    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"init_from: no checkpoint or model file at {src}")
    data = torch.load(src, map_location="cpu", weights_only=True)
    if isinstance(data, dict) and {"descriptor", "arch", "config", "state_dict"} <= set(data):
        import json

        training = json.loads(data["descriptor"]).get("training", {})
        return InitSource(arch_name=data["arch"], arch=arch_config(data["arch"], data["config"]),
                          weights=data["state_dict"],
                          iteration=int(training.get("iterations", 0)))
    state = load_checkpoint(src)
    return InitSource(arch_name=state.config.arch_name, arch=state.config.arch,
                      weights=state.weights(), iteration=state.iteration)
