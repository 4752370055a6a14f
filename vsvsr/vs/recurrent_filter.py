"""``vsvsr.recurrent``: the stateful super-resolution filter, a thin adapter over the runner.

The graph is: clip -> RGBS (model input) -> ModifyFrame(selector=runner) on a blank clip of the
output size -> back to the input's format. The selector never touches its own output node;
it reads frames through ModifyFrame's inputs and the RGBS node's ``get_frame``, and all state
lives in :class:`vsvsr.recurrence.runner.RecurrentRunner`.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from pathlib import Path

import numpy as np
import vapoursynth as vs

from vsvsr.errors import ClipFormatError
from vsvsr.models.registry import DEFAULT_MODEL
from vsvsr.recurrence.runner import RecurrentRunner
from vsvsr.recurrence.state_store import StateKey, StateStore
from vsvsr.recurrence.stepper import RecurrentStepper
from vsvsr.runtime.engine import Engine
from vsvsr.runtime.select import open_engine
from vsvsr.vs import formats, scene
from vsvsr.vs.frames import read_rgb, write_rgb

log = logging.getLogger(__name__)
FUNC = "vsvsr.recurrent"

#: Runners of every live filter, so their states are saved when the process ends even if
#: the host never frees the node (vspipe's exit path differs from a Python script's).
_LIVE_RUNNERS: weakref.WeakSet[RecurrentRunner] = weakref.WeakSet()


@atexit.register
def _save_all_states() -> None:
    for runner in list(_LIVE_RUNNERS):
        try:
            runner.save_states()
        except Exception:  # never raise from atexit; the state is an accelerator, not output
            log.exception("vsvsr: could not save the recurrent state")


class _VSFrameSource:
    """The runner's :class:`FrameSource` over an RGBS node."""

    def __init__(self, rgb: vs.VideoNode, threshold: float | None) -> None:
        self.rgb = rgb
        self.num_frames = rgb.num_frames
        self.threshold = threshold

    def fetch(self, n: int) -> tuple[np.ndarray, bool]:
        frame = self.rgb.get_frame(n)
        return read_rgb(frame, n=n, func=FUNC), scene.is_scene_change(frame.props, self.threshold)


class _Selector:
    """ModifyFrame's selector: ask the runner for frame n, write it into a fresh output frame."""

    def __init__(self, runner: RecurrentRunner) -> None:
        self.runner = runner

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        sr = self.runner.get(n)
        out = f[0].copy()
        write_rgb(out, sr)
        props = out.props
        for key, value in f[1].props.items():
            props[key] = value
        return out

    def __del__(self) -> None:
        # The host freed the node: this is the end of the processed range.
        try:
            self.runner.save_states()
        except Exception:
            log.exception("vsvsr: could not save the recurrent state")


def _check_size(engine: Engine, info: formats.ClipInfo) -> None:
    d = engine.descriptor
    lr = next(s for s in engine.inputs if s.name == "lr")
    fixed = d.fixed_size or ((lr.shape[3], lr.shape[2]) if None not in lr.shape[2:] else None)
    if fixed is not None and fixed != (info.width, info.height):
        raise ClipFormatError(
            f"{FUNC}: model {d.name!r} has a fixed input size {fixed[0]}x{fixed[1]} but the clip "
            f"is {info.width}x{info.height}; resize the clip to that size or export the model "
            "with dynamic height and width")
    m = d.size_multiple
    if info.width % m or info.height % m:
        raise ClipFormatError(
            f"{FUNC}: model {d.name!r} needs width and height divisible by {m}; the clip is "
            f"{info.width}x{info.height}: pad it (core.std.AddBorders) or crop it first")


def recurrent(
    clip: vs.VideoNode,
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    backend: str = "auto",
    *,
    matrix: str | int | None = None,
    output_format: str | None = None,
    scene_detect: bool = False,
    scene_threshold: float = scene.DEFAULT_THRESHOLD,
    warmup: int | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    cache_frames: int | None = None,
    max_cursors: int = 4,
    threads: int = 0,
    precision: str = "auto",
) -> vs.VideoNode:
    """Super-resolve ``clip`` with a recurrent model; exact under any request order.

    Args:
        clip: constant-format YUV (8-16 bit, 4:2:0/4:2:2/4:4:4) or RGB (8/16-bit, half, float).
        model: a built-in name (``rvsr-x2``, ``rvsr-x4``) or a ``.onnx``/``.pth`` model file.
        backend: ``auto`` or one of ``tensorrt``, ``ort-cuda``, ``torch-cuda``, ``openvino``,
            ``ort``, ``torch``.
        matrix: YUV matrix when the clip has no ``_Matrix`` (e.g. ``"709"``).
        output_format: ``None`` for the input's format family, or ``"RGBS"``/``"RGBH"``.
        scene_detect: also reset the recurrence where the built-in detector sees a cut
            (``_SceneChangePrev`` on the clip is always honoured).
        scene_threshold: the built-in detector's luma-difference threshold.
        warmup: if set, a seek restarts at most this many frames before the requested frame
            from a fresh state: fast, but the frames after such a seek are approximate.
        state_dir: folder for saved states: the state at the end of each processed range is
            saved there when the process ends, and a later run that starts after it continues
            from it exactly (same model, clip and size; otherwise a clear error).
        cache_frames: finished output frames kept for out-of-order requests
            (default ``max(16, 2 * core.num_threads)``).
        max_cursors: independent positions kept (several help when the node is used twice).
        threads: inference threads for CPU backends (0: all cores).
        precision: OpenVINO's inference precision: ``auto`` (bf16 where the CPU has AMX-BF16 or
            AVX512-BF16, else f32), ``bf16`` or ``f32``; the other backends run their own.
    """
    info = formats.inspect_clip(clip, FUNC, matrix)
    out_fmt = formats.check_output_format(output_format, FUNC)
    if warmup is not None and (not isinstance(warmup, int) or warmup < 0):
        raise ClipFormatError(f"{FUNC}: warmup must be a non-negative number of frames or None")
    engine = open_engine(model, backend, threads=threads, size=(info.width, info.height),
                         precision=precision)
    try:
        stepper = RecurrentStepper(engine)
        _check_size(engine, info)
    except Exception:
        engine.close()
        raise
    d = engine.descriptor
    rgb = formats.to_model_rgb(clip, info)
    threshold = scene_threshold if scene_detect else None
    if scene_detect:
        rgb = scene.add_scene_diff(rgb)
    store = None
    if state_dir is not None:
        key = StateKey(model_name=d.name, model_sha256=engine.model_sha256, scale=d.scale,
                       width=info.width, height=info.height, state_channels=d.state_channels)
        store = StateStore(Path(state_dir), key)
    if cache_frames is None:
        cache_frames = max(16, 2 * vs.core.num_threads)
    runner = RecurrentRunner(stepper, _VSFrameSource(rgb, threshold), max_cursors=max_cursors,
                             cache_frames=cache_frames, warmup=warmup, store=store)
    _LIVE_RUNNERS.add(runner)
    weakref.finalize(runner, engine.close)
    work_fmt = vs.RGBH if out_fmt == "RGBH" else vs.RGBS
    template = vs.core.std.BlankClip(rgb, width=info.width * d.scale,
                                     height=info.height * d.scale, format=work_fmt, keep=True)
    out = template.std.ModifyFrame([template, rgb], _Selector(runner))
    out = formats.from_model_rgb(out, info, out_fmt)
    log.info("%s: %s on %s, %dx%d -> %dx%d", FUNC, d.name, engine.backend, info.width,
             info.height, out.width, out.height)
    return out


