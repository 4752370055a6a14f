"""``vsvsr upscale INPUT OUTPUT``: super-resolve a video file in-process and encode it.

The graph is ``bs.VideoSource(INPUT) -> vsvsr.recurrent -> [start:end]``; frames are
requested in order with look-ahead (``clip.frames()``), written as y4m into ffmpeg's stdin,
and ffmpeg muxes the audio of INPUT back in. Trimming happens *after* the filter, so the
frames written are exactly the ones a full run would give (the recurrence starts at the
previous scene change, or continues from ``--state-dir``). The output appears only when
everything succeeded.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vsvsr.cli._common import CommandError, add_model_arguments, precision_arg, vapoursynth
from vsvsr.encode.pipe import AudioSource, EncodeResult, EncodeSettings, encode_clip
from vsvsr.errors import MissingDependencyError
from vsvsr.models.registry import DEFAULT_MODEL
from vsvsr.recurrence.reset_points import check_in_range, check_increasing, read_cut_list

if TYPE_CHECKING:
    import vapoursynth as vs

NAME = "upscale"
HELP = "super-resolve a video file and encode it with ffmpeg"
log = logging.getLogger(__name__)


@dataclass(kw_only=True, frozen=True)
class UpscaleOptions:
    """Everything ``vsvsr upscale`` needs; the demo builds one directly.

    Attributes:
        input, output: source video (anything bestsource opens) and the file to write
            (only :func:`upscale` needs it; :func:`build_graph` does not).
        model, backend, threads, precision, matrix, scene_detect, warmup, state_dir: passed
            to :func:`vsvsr.recurrent`.
        cuts: frames where the recurrence restarts (a user's cut list, increasing), on top of
            the scene changes; ``vsvsr farm`` may start a chunk at any of them.
        start, end: output frame range, ``end`` exclusive (None: to the end).
        encode: codec, quality and audio settings.
        overwrite: replace an existing output.
        progress: show the progress bar.
    """

    input: Path
    output: Path | None = None
    model: str = DEFAULT_MODEL
    backend: str = "auto"
    threads: int = 0
    precision: str = "auto"
    matrix: str | None = None
    scene_detect: bool = False
    warmup: int | None = None
    state_dir: Path | None = None
    cuts: tuple[int, ...] = ()
    start: int = 0
    end: int | None = None
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.start < 0:
            raise CommandError(f"vsvsr upscale: --start must be >= 0, got {self.start}")
        if self.end is not None and self.end <= self.start:
            raise CommandError(f"vsvsr upscale: --end ({self.end}) must be greater than "
                               f"--start ({self.start})")
        if self.threads < 0:
            raise CommandError(f"vsvsr upscale: --threads must be >= 0, got {self.threads}")
        try:  # the same words as the --precision option (fp32 = f32), also for upscale.vpy
            object.__setattr__(self, "precision", precision_arg(self.precision))
        except argparse.ArgumentTypeError as exc:
            raise CommandError(f"vsvsr upscale: {exc}") from None
        check_increasing(self.cuts, "--cuts")


def open_source(path: Path) -> vs.VideoNode:
    """Open a video file with bestsource, with errors that say what to do."""
    vs = vapoursynth("vsvsr upscale")
    if not path.is_file():
        raise CommandError(f"vsvsr upscale: input {path} does not exist")
    if not hasattr(vs.core, "bs"):
        raise MissingDependencyError("vsvsr upscale opens videos with bestsource, which is not "
                                     "installed: pip install vapoursynth-bestsource")
    try:
        return vs.core.bs.VideoSource(str(path))
    except vs.Error as exc:
        raise CommandError(f"vsvsr upscale: bestsource cannot open {path}: {exc}") from exc


def guess_matrix(clip: vs.VideoNode) -> str | None:
    """The matrix to assume for YUV without ``_Matrix``, as players do (HD: 709, SD: 601)."""
    vs = vapoursynth("vsvsr upscale")
    if clip.format.color_family != vs.YUV:
        return None
    if int(clip.get_frame(0).props.get("_Matrix", 2)) not in (0, 2):
        return None
    from vsvsr.vs.formats import matrix_from_size

    guess = matrix_from_size(clip.width, clip.height)
    log.warning("vsvsr upscale: the input does not say its colour matrix; assuming %s from its "
                "size (pass --matrix to choose)", guess)
    return guess


def build_graph(opts: UpscaleOptions) -> tuple[vs.VideoNode, vs.VideoNode]:
    """(the clip to encode, the source clip)."""
    import vsvsr
    from vsvsr.encode.y4m import to_y4m_clip

    src = open_source(opts.input)
    from vsvsr.vs.scene import mark_scene_changes  # after open_source says if VS is missing

    end = src.num_frames if opts.end is None else opts.end
    if opts.start >= src.num_frames or end > src.num_frames:
        raise CommandError(f"vsvsr upscale: {opts.input} has {src.num_frames} frames; the range "
                           f"--start {opts.start} --end {end} is outside it")
    check_in_range(opts.cuts, src.num_frames, "--cuts")
    matrix = opts.matrix or guess_matrix(src)
    src = mark_scene_changes(src, opts.cuts)
    out = vsvsr.recurrent(src, opts.model, opts.backend, matrix=matrix,
                          scene_detect=opts.scene_detect, warmup=opts.warmup,
                          state_dir=opts.state_dir, threads=opts.threads,
                          precision=opts.precision)
    if opts.start or end != src.num_frames:
        out = out[opts.start:end]
    return to_y4m_clip(out, matrix="709" if matrix is None else matrix), src


def audio_source(opts: UpscaleOptions, fps_num: int, fps_den: int, frames: int) -> AudioSource:
    """The part of the input's audio that goes with output frames ``[start, start + frames)``."""
    fps = fps_num / fps_den if fps_den else 0.0
    return AudioSource(path=opts.input, start=opts.start / fps if fps else 0.0,
                       duration=frames / fps if fps and
                       (opts.start or opts.end is not None) else None)


def upscale(opts: UpscaleOptions, *,
            on_frame: Callable[[int, int], None] | None = None) -> EncodeResult:
    """Run the whole job; see the module docstring. ``vsvsr farm`` runs each chunk through
    here too (a chunk is this job with ``start``/``end`` set and no audio).

    ``on_frame(frames_written, total)`` reports progress (see :func:`encode_clip`); an
    exception it raises cancels the job with nothing written (``vsvsr serve`` uses both).
    """
    if opts.output is None:
        raise CommandError("vsvsr upscale: no OUTPUT file given")
    if opts.output.exists() and not opts.overwrite:
        raise CommandError(f"vsvsr upscale: {opts.output} exists; pass -y/--overwrite to "
                           "replace it")
    if opts.output.resolve() == opts.input.resolve():
        raise CommandError("vsvsr upscale: OUTPUT must not be the INPUT file")
    clip, src = build_graph(opts)
    audio = audio_source(opts, src.fps_num, src.fps_den, clip.num_frames)
    log.info("vsvsr upscale: %s (%dx%d, %d frames) -> %s (%dx%d, %d frames)", opts.input,
             src.width, src.height, src.num_frames, opts.output, clip.width, clip.height,
             clip.num_frames)
    return encode_clip(clip, opts.output, opts.encode, audio_source=audio,
                       progress=opts.progress, description="vsvsr upscale",
                       overwrite=opts.overwrite, on_frame=on_frame)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, metavar="INPUT", help="video file (bestsource opens it)")
    p.add_argument("output", type=Path, metavar="OUTPUT",
                   help="video file to write; the extension picks the container (.mkv, .mp4)")
    add_model_arguments(p)
    enc = p.add_argument_group("encoding (ffmpeg)")
    enc.add_argument("--codec", default="libx264", help="ffmpeg video encoder (default libx264)")
    enc.add_argument("--crf", type=float, default=18.0,
                     help="quality for x264/x265/vp9/av1 (default 18; lower is better)")
    enc.add_argument("--preset", default="medium", help="x264/x265 preset (default medium)")
    enc.add_argument("--pix-fmt", default=None,
                     help="output pixel format, e.g. yuv420p10le (default: the clip's)")
    enc.add_argument("--audio", default="auto",
                     help="auto (copy when the container takes it, else re-encode), copy, none, "
                          "or an ffmpeg audio encoder such as aac (default auto)")
    enc.add_argument("--ffmpeg-arg", action="append", default=[], metavar="ARGS",
                     help="extra ffmpeg output options, split like a shell line; repeatable. "
                          "Use the = form for values starting with '-': "
                          "--ffmpeg-arg='-tune film'")
    vsr = p.add_argument_group("super-resolution")
    vsr.add_argument("--matrix", default=None,
                     help="YUV matrix of the input when it has none (709, 170m, 2020ncl, ...); "
                          "default: guess from the size, with a warning")
    vsr.add_argument("--scene-detect", action="store_true",
                     help="restart the recurrence at hard cuts found by the built-in detector")
    vsr.add_argument("--warmup", type=int, default=None,
                     help="approximate fast start: begin at most this many frames before "
                          "--start instead of at the previous reset point")
    vsr.add_argument("--state-dir", type=Path, default=None,
                     help="save the recurrent state at the end, and continue from a saved "
                          "one, so chunks run separately join exactly")
    vsr.add_argument("--cuts", type=Path, default=None, metavar="FILE",
                     help="text file of frame numbers (increasing) where the recurrence "
                          "restarts, as at a scene change")
    vsr.add_argument("--start", type=int, default=0, help="first output frame (default 0)")
    vsr.add_argument("--end", type=int, default=None,
                     help="stop before this frame (exclusive; default: the last frame)")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def options_from_args(args: argparse.Namespace) -> UpscaleOptions:
    extra: list[str] = []
    for item in args.ffmpeg_arg:
        extra += shlex.split(item)
    settings = EncodeSettings(codec=args.codec, crf=args.crf, preset=args.preset,
                              pix_fmt=args.pix_fmt, audio=args.audio, extra_args=tuple(extra))
    return UpscaleOptions(input=args.input, output=args.output, model=args.model,
                          backend=args.backend, threads=args.threads,
                          precision=args.precision, matrix=args.matrix,
                          scene_detect=args.scene_detect, warmup=args.warmup,
                          state_dir=args.state_dir,
                          cuts=read_cut_list(args.cuts) if args.cuts else (),
                          start=args.start, end=args.end,
                          encode=settings, overwrite=args.overwrite,
                          progress=not args.no_progress)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    result = upscale(options_from_args(args))
    print(f"vsvsr upscale: wrote {result.output} ({result.frames} frames in "
          f"{time.perf_counter() - t0:.1f} s, {result.fps:.2f} fps; audio: {result.audio})")
    return 0
