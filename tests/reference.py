"""References the filter is checked against: sequential runs outside VapourSynth."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from conftest import TESTS, tool

CASE = TESTS / "vpy" / "recurrent_case.vpy"


def torch_reference(model: Path, frames: Sequence[np.ndarray], resets: set[int]) -> list[np.ndarray]:
    """Sequential PyTorch run (``run_sequence``), clamped like the filter's output."""
    import torch

    from vsvsr.nets.sequence import run_sequence
    from vsvsr.runtime.torch_backend import TorchEngine

    engine = TorchEngine(model.with_suffix(".pth"), threads=1)
    x = torch.from_numpy(np.stack(frames))[None]
    with torch.inference_mode():
        out = run_sequence(engine._net, x, [t in resets for t in range(len(frames))])
    return [np.clip(o, 0, 1) for o in out[0].numpy()]


def ort_reference(model: Path, frames: Sequence[np.ndarray], resets: set[int]) -> list[np.ndarray]:
    """The same ONNX Runtime engine stepped in a plain loop."""
    from vsvsr.recurrence.stepper import RecurrentStepper
    from vsvsr.runtime.ort_backend import OrtEngine

    stepper = RecurrentStepper(OrtEngine(model, threads=1))
    outs, state, prev, step = [], None, None, 0
    for n, f in enumerate(frames):
        x = f[None]
        if n == 0 or n in resets:
            state, prev, step = stepper.zero_state(*f.shape[1:]), x, 0
        sr, state = stepper.step(x, prev, state, step)
        outs.append(np.clip(sr[0], 0, 1))
        prev, step = x, step + 1
    return outs


def vspipe_rgbs(args: dict[str, object], *, threads: int = 2, extra: Sequence[str] = (),
                shape: tuple[int, int]) -> tuple[list[np.ndarray], str]:
    """Run the case script under real vspipe; return its RGBS frames (3, H, W) and stderr."""
    # R81's vspipe has no thread option (-t is --timecodes): the script sets core.num_threads.
    cmd = [tool("vspipe"), *extra, str(CASE), "-", "-a", f"vs_threads={threads}"]
    for k, v in args.items():
        cmd += ["-a", f"{k}={v}"]
    proc = subprocess.run(cmd, capture_output=True, timeout=300)
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise AssertionError(f"vspipe failed ({proc.returncode}): {err[-3000:]}")
    h, w = shape
    size = 3 * h * w * 4
    data = proc.stdout
    assert len(data) % size == 0, (len(data), size)
    # vspipe writes RGB planes in the order G, B, R.
    frames = [np.frombuffer(data[i:i + size], np.float32).reshape(3, h, w)[[2, 0, 1]]
              for i in range(0, len(data), size)]
    return frames, err
