"""Feed a recurrent engine one frame at a time, with the reset semantics of training."""

from __future__ import annotations

from typing import Any

import numpy as np

from vsvsr.errors import ModelFileError, NonFiniteError
from vsvsr.runtime.engine import Engine


class RecurrentStepper:
    """Wraps an :class:`Engine` whose model is recurrent.

    A reset is: state zeros, previous frame = current frame, step 0 (as
    :func:`vsvsr.nets.sequence.run_sequence`, the reference, does).

    With a GPU engine that keeps states on the device (``new_state``/``step_device``, see
    :class:`vsvsr.runtime.device_engine.DeviceEngine`) the state is an opaque device handle
    that never leaves the GPU; ``np.asarray(state)`` still gives it (for saved states).
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
        self._on_device = callable(getattr(engine, "step_device", None))

    def zero_state(self, height: int, width: int) -> Any:
        if self._on_device:
            return self.engine.new_state(height, width)  # type: ignore[attr-defined]
        return np.zeros((1, self.state_channels, height, width), np.float32)

    def step(self, lr: np.ndarray, lr_prev: np.ndarray, state: Any,
             step: int) -> tuple[np.ndarray, Any]:
        """One recurrent step; returns (SR frame (1, 3, sH, sW), new state)."""
        step_arr = np.full((1, 1, 1, 1), step, np.float32)
        if self._on_device:
            engine: Any = self.engine
            if isinstance(state, np.ndarray):  # a saved state, loaded from disk
                state = engine.state_from_host(state)
            sr = engine.step_device({"lr": lr, "lr_prev": lr_prev, "step": step_arr}, state)
            new_state = state
        else:
            out = self.engine.run({"lr": lr, "lr_prev": lr_prev, "state": state, "step": step_arr})
            sr, new_state = out["sr"], out["state_out"]
        if not np.isfinite(sr).all():
            raise NonFiniteError(f"model {self.engine.descriptor.name!r} produced NaN/inf on "
                                 f"backend {self.engine.backend}; the model file is broken "
                                 "or the backend misbehaves: try backend='ort'")
        return sr, new_state
