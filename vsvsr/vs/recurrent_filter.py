"""``vsvsr.recurrent``: the stateful super-resolution filter, a thin adapter over the runner.

The graph is: clip -> RGBS (model input) -> ModifyFrame(selector=runner) on a blank clip of the
output size -> back to the input's format. The selector never touches its own output node;
it reads frames through ModifyFrame's inputs and the RGBS node's ``get_frame``, and all state
lives in :class:`vsvsr.recurrence.runner.RecurrentRunner`.

With a GPU backend (``tensorrt``, ``torch-cuda``, ``ort-cuda``) the colour conversion moves to
the device: the runner reads the clip's own planes, each frame is uploaded once in its own
format, converted by the device colour kernels, run with the state kept on the device, and
its output planes downloaded once in the output format (the *GPU frame path*,
:class:`vsvsr.recurrence.device_stepper.DeviceFrameStepper`); the graph is then clip ->
ModifyFrame on a blank clip of the output format and size. ``VSVSR_DEVICE_FRAMES=0`` keeps
the CPU conversion on those backends.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import vapoursynth as vs

from vsvsr.errors import ClipFormatError, NonFiniteError
from vsvsr.models.registry import DEFAULT_MODEL
from vsvsr.recurrence.device_stepper import DeviceFrameStepper, NativeFrame
from vsvsr.recurrence.runner import RecurrentRunner
from vsvsr.recurrence.state_store import StateKey, StateStore
from vsvsr.recurrence.stepper import RecurrentStepper
from vsvsr.runtime.engine import Engine
from vsvsr.runtime.select import open_engine
from vsvsr.vs import formats, scene
from vsvsr.vs.frames import read_rgb, write_rgb

log = logging.getLogger(__name__)
FUNC = "vsvsr.recurrent"
#: Backends whose engines keep frames on the device (DeviceEngine): the GPU frame path.
GPU_FRAME_BACKENDS = ("tensorrt", "torch-cuda", "ort-cuda")

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


class _VSNativeSource:
    """The runner's :class:`FrameSource` over the clip itself (the GPU frame path)."""

    def __init__(self, clip: vs.VideoNode, threshold: float | None) -> None:
        self.clip = clip
        self.num_frames = clip.num_frames
        self.threshold = threshold
        self._float = clip.format.sample_type == vs.FLOAT

    def fetch(self, n: int) -> tuple[NativeFrame, bool]:
        frame = self.clip.get_frame(n)
        planes = tuple(np.array(frame[p]) for p in range(frame.format.num_planes))
        if self._float and not all(np.isfinite(p).all() for p in planes):
            raise NonFiniteError(f"{FUNC}: input frame {n} contains NaN or infinity; fix the "
                                 "source (e.g. clamp it with core.std.Expr) before "
                                 "super-resolution")
        return (NativeFrame(n=n, planes=planes, height=frame.height, width=frame.width),
                scene.is_scene_change(frame.props, self.threshold))


class _Selector:
    """ModifyFrame's selector: ask the runner for frame n, write it into a fresh output frame."""

    def __init__(self, runner: RecurrentRunner) -> None:
        self.runner = runner

    def _write(self, out: vs.VideoFrame, result: object) -> None:
        write_rgb(out, result)

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = f[0].copy()
        self._write(out, self.runner.get(n))
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


class _NativeSelector(_Selector):
    """The selector on the GPU frame path: the output planes as they came back."""

    def __init__(self, runner: RecurrentRunner, rgb_out: bool) -> None:
        super().__init__(runner)
        self.rgb_out = rgb_out

    def _write(self, out: vs.VideoFrame, result: object) -> None:
        for p, plane in enumerate(result):  # type: ignore[arg-type]
            np.asarray(out[p])[...] = plane

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = super().__call__(n, f)
        if self.rgb_out:  # from YUV: the frame is RGB now
            props = out.props
            props["_Matrix"] = 0
            for key in ("_ChromaLocation", "_Range", "_ColorRange"):
                if key in props:
                    del props[key]
        return out


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


def _device_frame_path(engine: Engine, info: formats.ClipInfo, out_fmt: str | None) -> Any:
    """The (input, output) frame formats of the GPU frame path, or ``None`` for the CPU
    conversion (another backend, ``VSVSR_DEVICE_FRAMES=0``, or a matrix the kernels lack)."""
    if engine.backend not in GPU_FRAME_BACKENDS or not getattr(engine, "recurrent", False) \
            or os.environ.get("VSVSR_DEVICE_FRAMES", "1") == "0":
        return None
    fmts = formats.device_frame_formats(info, out_fmt)
    if fmts is None:
        log.info("%s: matrix %s has no device colour kernel; converting on the CPU", FUNC,
                 info.matrix)
    return fmts


def recurrent(
    clip: vs.VideoNode,
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    backend: str = "auto",
    *,
    matrix: str | int | None = formats.AUTO,
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
        matrix: YUV matrix when the clip has no ``_Matrix``: ``"auto"`` (default) guesses it
            from the size as players and ``vsvsr upscale`` do (BT.709 from 1280x720 up, else
            BT.601), with a logged warning; ``"709"`` etc. chooses; ``None`` makes an
            untagged clip an error. A clip's own ``_Matrix`` always wins over ``"auto"``.
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
            AVX512-BF16, else f32), ``bf16`` or ``f32``; ``bf16`` also runs the ``torch`` backend
            in bf16 autocast (its ``auto`` stays the fp32 reference); the others run their own.
    """
    info = formats.inspect_clip(clip, FUNC, matrix)
    out_fmt = formats.check_output_format(output_format, FUNC)
    if warmup is not None and (not isinstance(warmup, int) or warmup < 0):
        raise ClipFormatError(f"{FUNC}: warmup must be a non-negative number of frames or None")
    engine = open_engine(model, backend, threads=threads, size=(info.width, info.height),
                         precision=precision)
    device_fmts = _device_frame_path(engine, info, out_fmt)
    try:
        stepper = DeviceFrameStepper(engine, *device_fmts) if device_fmts \
            else RecurrentStepper(engine)
        _check_size(engine, info)
    except Exception:
        engine.close()
        raise
    d = engine.descriptor
    threshold = scene_threshold if scene_detect else None
    if device_fmts:
        rgb = scene.add_scene_diff(clip) if scene_detect else clip
    else:
        rgb = formats.to_model_rgb(clip, info)
        if scene_detect:
            rgb = scene.add_scene_diff(rgb)
    store = None
    if state_dir is not None:
        key = StateKey(model_name=d.name, model_sha256=engine.model_sha256, scale=d.scale,
                       width=info.width, height=info.height, state_channels=d.state_channels)
        store = StateStore(Path(state_dir), key)
    if cache_frames is None:
        cache_frames = max(16, 2 * vs.core.num_threads)
    source = _VSNativeSource(rgb, threshold) if device_fmts else _VSFrameSource(rgb, threshold)
    runner = RecurrentRunner(stepper, source, max_cursors=max_cursors,
                             cache_frames=cache_frames, warmup=warmup, store=store)
    _LIVE_RUNNERS.add(runner)
    weakref.finalize(runner, engine.close)
    if device_fmts:
        fmt = {"RGBS": vs.RGBS, "RGBH": vs.RGBH}.get(out_fmt or "", info.format.id)
        template = vs.core.std.BlankClip(clip, width=info.width * d.scale,
                                         height=info.height * d.scale, format=fmt, keep=True)
        out = template.std.ModifyFrame([template, rgb], _NativeSelector(
            runner, rgb_out=info.is_yuv and out_fmt is not None))
        log.info("%s: %s on %s (GPU frame path), %dx%d -> %dx%d", FUNC, d.name,
                 engine.backend, info.width, info.height, out.width, out.height)
        return out
    work_fmt = vs.RGBH if out_fmt == "RGBH" else vs.RGBS
    template = vs.core.std.BlankClip(rgb, width=info.width * d.scale,
                                     height=info.height * d.scale, format=work_fmt, keep=True)
    out = template.std.ModifyFrame([template, rgb], _Selector(runner))
    out = formats.from_model_rgb(out, info, out_fmt)
    log.info("%s: %s on %s, %dx%d -> %dx%d", FUNC, d.name, engine.backend, info.width,
             info.height, out.width, out.height)
    return out


