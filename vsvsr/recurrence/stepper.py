"""Feed a recurrent engine one frame at a time, with the reset semantics of training."""

from __future__ import annotations

import numpy as np

from vsvsr.errors import ModelFileError, NonFiniteError
from vsvsr.runtime.engine import Engine


class RecurrentStepper:
    """Wraps an :class:`Engine` whose model is recurrent.

    A reset is: state zeros, previous frame = current frame, step 0 (as
    :func:`vsvsr.nets.sequence.run_sequence`, the reference, does).
    """

    def __init__(self, engine: Engine) -> None:
        d = engine.descriptor
        if not d.recurrent:
            raise ModelFileError(f"model {d.name!r} is not recurrent; vsvsr.recurrent needs a "
                                 "recurrent model such as rvsr-x2")
        names = {s.name for s in engine.inputs}
        missing = {"lr", "lr_prev", "state", "step"} - names
        if missing:
            raise ModelFileError(f"model {d.name!r} lacks the recurrent inputs {sorted(missing)}")
        self.engine = engine
        self.scale = d.scale
        self.state_channels = d.state_channels

    def zero_state(self, height: int, width: int) -> np.ndarray:
        return np.zeros((1, self.state_channels, height, width), np.float32)

    def step(self, lr: np.ndarray, lr_prev: np.ndarray, state: np.ndarray,
             step: int) -> tuple[np.ndarray, np.ndarray]:
        """One recurrent step; returns (SR frame (1, 3, sH, sW), new state)."""
        out = self.engine.run({"lr": lr, "lr_prev": lr_prev, "state": state,
                               "step": np.full((1, 1, 1, 1), step, np.float32)})
        sr = out["sr"]
        if not np.isfinite(sr).all():
            raise NonFiniteError(f"model {self.engine.descriptor.name!r} produced NaN/inf on "
                                 f"backend {self.engine.backend}; the model file is broken "
                                 "or the backend misbehaves: try backend='ort'")
        return sr, out["state_out"]
