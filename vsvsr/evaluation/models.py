"""What ``vsvsr eval`` compares: bicubic, built-in models, model files and training checkpoints.

Every model spec resolves to an :class:`Upscaler`, which turns a sequence of uint8 LR frames
into uint8 SR frames, one at a time (so that several models can run in lock step and the
memory stays flat on long sequences). Recurrent models run frame by frame with the reset
semantics of :class:`vsvsr.recurrence.stepper.RecurrentStepper` (a reset is: zero state,
previous frame = current frame, step 0), with optional restarts and two ablations
(:class:`RunOptions`). SR frames are rounded to 8 bits, so the metrics are those of an 8-bit
video.
"""

from __future__ import annotations

import abc
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import ModelFileError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.recurrence.stepper import RecurrentStepper
from vsvsr.runtime.engine import Engine
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

#: The model spec of the bicubic baseline.
BICUBIC = "bicubic"
#: File suffix of a training checkpoint (:func:`vsvsr.training.checkpoint.save_checkpoint`).
CHECKPOINT_SUFFIX = ".pt"


@dataclass(kw_only=True, frozen=True)
class RunOptions:
    """How a recurrent model is run over a sequence (bicubic ignores these).

    Attributes:
        resets: frame indices where the recurrence restarts (a full reset, as at frame 0):
            measures a cold restart in the middle of a sequence.
        reset_every_frame: ablation: the state is zeroed before every frame (the previous
            frame and the step count are kept), so the model cannot use its memory.
        prev_is_current: ablation: the current frame is fed as the previous one, so the model
            sees no motion.
    """

    resets: frozenset[int] = field(default_factory=frozenset)
    reset_every_frame: bool = False
    prev_is_current: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "resets", frozenset(int(r) for r in self.resets))
        bad = sorted(r for r in self.resets if r < 0)
        if bad:
            raise ValueError(f"RunOptions: reset frames must be >= 0, got {bad}")


#: Plain sequential runs: no restarts, no ablation.
NO_OPTIONS = RunOptions()


def to_uint8(sr: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded and clipped."""
    return np.clip(np.rint(sr[0].transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)


def to_model(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1], C-contiguous."""
    return np.ascontiguousarray(frame.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


class Upscaler(abc.ABC):
    """One model under evaluation."""

    #: The label in tables, plots and the report (the spec as given).
    label: str = ""
    scale: int = 0
    #: Where it runs, e.g. ``ort-cpu``, ``torch-cpu``.
    backend: str = ""
    #: Whether :class:`RunOptions` mean anything for it.
    recurrent: bool = False

    @abc.abstractmethod
    def run(self, lr_frames: Iterable[np.ndarray], options: RunOptions = NO_OPTIONS) -> \
            Iterator[np.ndarray]:
        """Yield the uint8 SR frame of each uint8 LR frame, in order."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release sessions and memory."""

    def describe(self) -> dict[str, Any]:
        return {"label": self.label, "scale": self.scale, "backend": self.backend,
                "recurrent": self.recurrent}

    def __enter__(self) -> Upscaler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BicubicUpscaler(Upscaler):
    """Plain bicubic (``F.interpolate``, ``align_corners=False``, clamped): the training
    baseline (:func:`vsvsr.training.trainer.bicubic_upscale`)."""

    def __init__(self, scale: int, label: str = BICUBIC) -> None:
        self._torch = lazy_import("torch", "the bicubic baseline of vsvsr eval")
        self.label, self.scale, self.backend = label, scale, "torch-cpu"

    def run(self, lr_frames: Iterable[np.ndarray], options: RunOptions = NO_OPTIONS) -> \
            Iterator[np.ndarray]:
        import torch.nn.functional as F

        torch = self._torch
        for frame in lr_frames:
            with torch.inference_mode():
                up = F.interpolate(torch.from_numpy(to_model(frame)), scale_factor=self.scale,
                                   mode="bicubic", align_corners=False).clamp(0.0, 1.0)
            yield to_uint8(up.numpy())


class RecurrentUpscaler(Upscaler):
    """A recurrent engine driven by a :class:`RecurrentStepper`."""

    recurrent = True

    def __init__(self, engine: Engine, label: str) -> None:
        self.engine = engine
        self.stepper = RecurrentStepper(engine)
        self.label, self.scale, self.backend = label, engine.descriptor.scale, engine.backend

    def run(self, lr_frames: Iterable[np.ndarray], options: RunOptions = NO_OPTIONS) -> \
            Iterator[np.ndarray]:
        state = prev = None
        step = 0
        for t, frame in enumerate(lr_frames):
            x = to_model(frame)
            if t == 0 or t in options.resets:
                state, prev, step = self.stepper.zero_state(*x.shape[2:]), x, 0
            elif options.reset_every_frame:
                state = self.stepper.zero_state(*x.shape[2:])
            assert state is not None and prev is not None
            sr, state = self.stepper.step(x, x if options.prev_is_current else prev, state, step)
            prev, step = x, step + 1
            yield to_uint8(sr)

    def describe(self) -> dict[str, Any]:
        d = self.engine.descriptor
        return {**super().describe(), "model": d.name, "arch": d.arch,
                "model_sha256": self.engine.model_sha256,
                "precision": getattr(self.engine, "precision", None)}  # bf16/f32 (OV, torch)

    def close(self) -> None:
        self.engine.close()


# -- training checkpoints -----------------------------------------------------------------------

def checkpoint_engine(path: str | os.PathLike[str], *, device: str = "cpu",
                      precision: str = "f32") -> Engine:
    """A training checkpoint's network behind the :class:`Engine` interface (the PyTorch
    backend), so it runs through the same :class:`RecurrentStepper` as exported models;
    ``precision`` ``bf16`` runs it in the training's bf16 autocast (CPU)."""
    lazy_import("torch", "evaluating a training checkpoint")
    from vsvsr.models.registry import file_sha256
    from vsvsr.runtime.torch_backend import TorchEngine
    from vsvsr.training.checkpoint import net_from_checkpoint

    net, state = net_from_checkpoint(path)
    cfg = state.config
    p = Path(path)
    desc = ModelDescriptor(name=p.stem if p.stem != "last" else p.parent.name,
                           arch=cfg.arch_name, scale=cfg.scale, recurrent=True,
                           state_channels=cfg.arch.state_channels,
                           step_clamp=cfg.arch.step_clamp, config=cfg.arch.to_dict())
    engine = TorchEngine.from_net(net, desc, device=device, precision=precision)
    engine.model_sha256 = file_sha256(path)
    return engine


#: What ``--precision auto`` runs on eval's PyTorch CPU path (checkpoints, ``--backend torch``).
#: bf16 where the CPU has native bf16, as for OpenVINO: measured side by side in docs/models.md
#: ("bf16 in eval and overfit").
TORCH_AUTO = "bf16"


def torch_precision(precision: str, device: str) -> str:
    """Eval's ``precision`` (``auto``/``bf16``/``f32``) for a PyTorch network on ``device``:
    ``auto`` is :data:`TORCH_AUTO` on a CPU with native bf16 and f32 elsewhere (and on CUDA)."""
    from vsvsr.training.precision import resolve_precision

    if precision != "auto":
        return "f32" if precision in ("f32", "fp32") else precision
    if device != "cpu" or TORCH_AUTO == "f32":
        return "f32"
    return "bf16" if resolve_precision("auto") == "bf16" else "f32"


def is_checkpoint_spec(spec: str) -> bool:
    return spec.endswith(CHECKPOINT_SUFFIX)


def open_upscaler(spec: str, *, scale: int | None = None, backend: str = "auto",
                  threads: int = 0, precision: str = "auto") -> Upscaler:
    """Resolve one ``--model`` value.

    Args:
        spec: ``bicubic``; a built-in model name or ``.onnx``/``.pth`` model file (run through
            :func:`vsvsr.runtime.select.open_engine` on ``backend``); or a training checkpoint
            ``.pt`` (run with PyTorch: on CUDA when ``backend`` is ``torch-cuda``).
        scale: needed for bicubic; for a model, the scale it must have.
        precision: ``auto``, ``bf16`` or ``f32``: OpenVINO's inference precision, and the
            PyTorch CPU path's (checkpoints, ``backend="torch"``: :func:`torch_precision`).

    Raises:
        UnknownModelError: a name that is neither built in nor a file.
        ModelFileError: an unreadable file, or a model of another scale than ``scale``.
    """
    if spec == BICUBIC:
        if scale is None:
            raise ModelFileError("vsvsr eval: bicubic needs a scale: pass --scale or a model")
        return BicubicUpscaler(scale)
    from vsvsr.runtime.select import normalize_backend

    if is_checkpoint_spec(spec):
        device = "cuda" if normalize_backend(backend) == "torch-cuda" else "cpu"
        if threads > 0:
            lazy_import("torch", "evaluating a training checkpoint").set_num_threads(threads)
        engine: Engine = checkpoint_engine(spec, device=device,
                                           precision=torch_precision(precision, device))
    else:
        from vsvsr.runtime.select import open_engine

        if normalize_backend(backend) == "torch":
            precision = torch_precision(precision, "cpu")
        engine = open_engine(spec, backend, threads=threads, precision=precision)
    try:
        up = RecurrentUpscaler(engine, spec)
        if scale is not None and up.scale != scale:
            raise ModelFileError(f"vsvsr eval: model {spec} is x{up.scale}, not x{scale}; "
                                 f"evaluate models of one scale together (or change --scale)")
    except BaseException:
        engine.close()
        raise
    log.info("vsvsr eval: %s is x%d on %s", spec, up.scale, up.backend)
    return up
