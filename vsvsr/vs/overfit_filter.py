"""``vsvsr.overfit``: the stateless per-patch filter for content-aware (STDO/JSTDO) packs.

The graph is: clip -> RGBS -> ModifyFrame(selector) on a blank clip of the output size -> the
input's format. Frame ``n``'s output depends only on LR frame ``n`` and the pack's label map
for ``n`` (:class:`vsvsr.stdo.runner.PackRunner`), so every request order gives the same
frames. No PyTorch on this path.
"""

from __future__ import annotations

import logging
import os

import vapoursynth as vs

from vsvsr.errors import ClipFormatError
from vsvsr.stdo.pack import read_pack
from vsvsr.stdo.runner import MODES, PackRunner, pick_backend
from vsvsr.vs import formats
from vsvsr.vs.frames import read_rgb, write_rgb

log = logging.getLogger(__name__)
FUNC = "vsvsr.overfit"


def parallelism(backend: str, streams: int, threads: int) -> tuple[int, int]:
    """Resolve ``streams=0`` / ``threads=0`` to (frames at once, inference threads per frame).

    On the CPU, one frame per VapourSynth thread with the cores shared out among them; on CUDA
    one stream (the GPU is the bottleneck; ONNX Runtime's thread count does not matter there).
    """
    cores = os.cpu_count() or 1
    if streams == 0:
        streams = 1 if backend == "ort-cuda" else max(1, min(vs.core.num_threads, cores))
    if threads == 0:
        threads = max(1, cores // streams)
    return streams, threads


class _Selector:
    """ModifyFrame's selector: read LR frame n, upscale it with the pack, fill the output."""

    def __init__(self, runner: PackRunner) -> None:
        self.runner = runner

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        lr = read_rgb(f[1], n=n, func=FUNC)
        sr = self.runner.upscale(lr, n)
        out = f[0].copy()
        write_rgb(out, sr)
        props = out.props
        for key, value in f[1].props.items():
            props[key] = value
        return out


def overfit(
    clip: vs.VideoNode,
    pack: str | os.PathLike[str],
    backend: str = "auto",
    *,
    matrix: str | int | None = None,
    output_format: str | None = None,
    scale: int | None = None,
    mode: str = "full",
    threads: int = 0,
    streams: int = 0,
    precision: str = "auto",
) -> vs.VideoNode:
    """Super-resolve ``clip`` with the overfit models of ``pack`` (from ``vsvsr overfit``).

    Args:
        clip: the LR version of the video the pack was made from (same size and frame count),
            constant-format YUV (8-16 bit) or RGB.
        pack: the ``.vsvsr`` file.
        backend: ``auto``, ``openvino`` (CPU; what ``auto`` picks without CUDA), ``ort``
            (CPU) or ``ort-cuda``.
        matrix: YUV matrix when the clip has no ``_Matrix`` (e.g. ``"709"``).
        output_format: ``None`` for the input's format family, or ``"RGBS"``/``"RGBH"``.
        scale: if given, refuse a pack of another scale.
        mode: ``full`` (each used model on the whole frame, patches selected after),
            ``patch`` (each patch on a crop with its receptive-field margin) or ``box`` (each
            model but the most used one on the bounding box of its patches plus margin);
            all seam-free and equal (see :mod:`vsvsr.stdo.runner`).
        threads: inference threads per frame (0: the cores divided among the streams).
        streams: frames upscaled at the same time (0: one per VapourSynth thread on the CPU
            backend, one on CUDA). VapourSynth runs one ModifyFrame node's selector one frame
            at a time; with ``streams > 1`` frame ``n`` goes to copy ``n % streams`` of the
            node (through ``std.FrameEval``), so that many frames run at once. Frames in
            parallel with one inference thread each beat one frame on all cores (1.8x on 2
            cores, docs/stdo.md), hence the default. On OpenVINO each stream is a CPU stream
            of one compiled model (docs/openvino.md).
        precision: OpenVINO's inference precision: ``auto`` (bf16 where the CPU has AMX-BF16
            or AVX512-BF16), ``bf16`` or ``f32``.
    """
    info = formats.inspect_clip(clip, FUNC, matrix)
    out_fmt = formats.check_output_format(output_format, FUNC)
    if not isinstance(streams, int) or isinstance(streams, bool) or streams < 0:
        raise ClipFormatError(f"{FUNC}: streams must be a whole number >= 0 (0: automatic), "
                              f"got {streams!r}")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ClipFormatError(f"{FUNC}: threads must be a whole number >= 0 (0: automatic), "
                              f"got {threads!r}")
    if mode not in MODES:
        raise ClipFormatError(f"{FUNC}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    p = read_pack(pack, size=(info.width, info.height), frames=info.num_frames, scale=scale,
                  func=FUNC)
    name = pick_backend(backend, FUNC)
    streams, threads = parallelism(name, streams, threads)
    runner = PackRunner(p, name, threads=threads, mode=mode, precision=precision,
                        streams=streams if name == "openvino" else 1)
    rgb = formats.to_model_rgb(clip, info)
    work_fmt = vs.RGBH if out_fmt == "RGBH" else vs.RGBS
    template = vs.core.std.BlankClip(rgb, width=info.width * p.scale,
                                     height=info.height * p.scale, format=work_fmt, keep=True)
    selector = _Selector(runner)  # stateless: safe to call from several nodes at once
    if streams == 1:
        out = template.std.ModifyFrame([template, rgb], selector)
    else:
        copies = [template.std.ModifyFrame([template, rgb], selector) for _ in range(streams)]
        out = template.std.FrameEval(lambda n: copies[n % streams])
    out = formats.from_model_rgb(out, info, out_fmt)
    log.info("%s: %s on %s %s (%s mode, %d streams x %d threads)", FUNC, p.describe(),
             runner.backend, runner.precision, mode, streams, threads)
    return out
