"""Encode a VapourSynth clip by piping y4m into ffmpeg, all or nothing.

ffmpeg writes to a temporary file beside the output (same extension, so the muxer is the
same); it is renamed over the output only when every frame was written and ffmpeg exited 0.
On Ctrl-C, an ffmpeg failure or any other error, ffmpeg is stopped and waited for, the
temporary file is removed, and the error says what ffmpeg printed last. ffmpeg runs in its own
process group so the terminal's Ctrl-C reaches only us and we decide how it stops.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vsvsr.encode.ffmpeg import FfmpegError, audio_streams, find_ffmpeg
from vsvsr.encode.y4m import Y4MFormat, Y4MWriter, color_range_of, y4m_format
from vsvsr.errors import VsvsrError

if TYPE_CHECKING:
    import vapoursynth as vs

log = logging.getLogger(__name__)

#: Codecs that take ``-crf`` and ``-preset`` as x264 does.
CRF_CODECS = {"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1"}
PRESET_CODECS = {"libx264", "libx264rgb", "libx265"}
#: Audio codecs each container family takes as-is (``auto`` copies these, else re-encodes).
_COPY_OK = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"},
    "webm": {"opus", "vorbis"},
}
_CONTAINER = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm"}
_AUDIO_FALLBACK = {"webm": "libopus"}

#: VapourSynth frame props (ITU-T H.273 numbers) -> ffmpeg's option values.
_MATRIX = {1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
           9: "bt2020nc", 10: "bt2020c", 12: "chroma-derived-nc", 13: "chroma-derived-c",
           14: "ictcp"}
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
              8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432",
              22: "jedec-p22"}
_TRANSFER = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
             8: "linear", 11: "iec61966-2-4", 13: "iec61966-2-1", 14: "bt2020-10",
             15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}


@dataclass(kw_only=True, frozen=True)
class EncodeSettings:
    """How ffmpeg encodes the video and treats the audio.

    Attributes:
        codec: ffmpeg video encoder, e.g. ``libx264``, ``libx265``, ``ffv1``.
        crf: constant rate factor for codecs that take one (ignored by the others).
        preset: x264/x265 speed preset (ignored by the others).
        pix_fmt: output pixel format (``-pix_fmt``); None keeps the clip's.
        audio: ``auto`` (copy when the container takes the codec, else re-encode), ``copy``,
            ``none``, or an ffmpeg audio encoder name such as ``aac``.
        extra_args: more ffmpeg output options, inserted before the output file.
        tag_colors: write the clip's matrix, range, primaries and transfer into the output.
    """

    codec: str = "libx264"
    crf: float | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None
    audio: str = "auto"
    extra_args: tuple[str, ...] = ()
    tag_colors: bool = True

    def __post_init__(self) -> None:
        if not self.codec or self.codec.startswith("-"):
            raise VsvsrError(f"EncodeSettings: codec must be an ffmpeg encoder name, "
                             f"got {self.codec!r}")
        if self.crf is not None and self.crf < 0:
            raise VsvsrError(f"EncodeSettings: crf must be >= 0, got {self.crf}")
        if not self.audio:
            raise VsvsrError("EncodeSettings: audio must be auto, copy, none or a codec name")


@dataclass(frozen=True)
class AudioSource:
    """Take audio from ``path``, starting ``start`` seconds in, for ``duration`` seconds."""

    path: Path
    start: float = 0.0
    duration: float | None = None


@dataclass
class EncodeResult:
    """What :func:`encode_clip` did."""

    output: Path
    frames: int
    seconds: float
    command: list[str] = field(default_factory=list)
    audio: str = "none"  #: what happened to the audio: none, copy, or the codec

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def iter_frames(clip: vs.VideoNode) -> Iterator[vs.VideoFrame]:
    """The clip's frames in order, requested ahead in parallel by VapourSynth.

    A module-level function so tests can replace it (e.g. to simulate Ctrl-C mid-run).
    """
    yield from clip.frames(close=True)


def color_filter(props: vs.FrameProps, *, yuv: bool) -> str | None:
    """A ``setparams`` filter stating the colour description the frames carry, or None.

    Tagging goes through ``setparams`` (which labels frames) rather than the output options
    ``-colorspace``/``-color_range``: recent ffmpeg (seen with 9.0) makes its auto-inserted scaler
    *convert* from what the y4m input is assumed to be (BT.601) into the tagged matrix.
    """
    params: list[str] = []
    if yuv:
        matrix = _MATRIX.get(int(props.get("_Matrix", 2)))  # type: ignore[arg-type]
        if matrix:
            params.append(f"colorspace={matrix}")
        full = color_range_of(props)
        if full is not None:
            params.append(f"range={'pc' if full else 'tv'}")
    primaries = _PRIMARIES.get(int(props.get("_Primaries", 2)))  # type: ignore[arg-type]
    if primaries:
        params.append(f"color_primaries={primaries}")
    transfer = _TRANSFER.get(int(props.get("_Transfer", 2)))  # type: ignore[arg-type]
    if transfer:
        params.append(f"color_trc={transfer}")
    return "setparams=" + ":".join(params) if params else None


def _merge_video_filter(extra: Sequence[str], first: str | None) -> list[str]:
    """``extra`` with ``first`` prepended to its ``-vf`` chain (or added as one)."""
    args = list(extra)
    if first is None:
        return args
    for i, arg in enumerate(args[:-1]):
        if arg in ("-vf", "-filter:v", "-filter:v:0"):
            args[i + 1] = f"{first},{args[i + 1]}"
            return args
    return ["-vf", first, *args]


def _audio_plan(settings: EncodeSettings, source: AudioSource | None, output: Path,
                ffmpeg: str) -> str:
    """``none``, ``copy`` or the encoder to use for the audio of ``source``."""
    if source is None or settings.audio == "none":
        return "none"
    streams = audio_streams(source.path, ffmpeg)
    if not streams:
        return "none"
    if settings.audio != "auto":
        return settings.audio
    container = _CONTAINER.get(output.suffix.lower())
    if container is None:  # mkv, nut, ...: take anything
        return "copy"
    if all(s.codec in _COPY_OK[container] for s in streams):
        return "copy"
    return _AUDIO_FALLBACK.get(container, "aac")


def audio_input_args(audio: str, audio_source: AudioSource | None) -> list[str]:
    """ffmpeg arguments that add the source's audio (its ``[start, start + duration)`` part)
    as input 1 and map it beside video input 0; ``audio="none"``: nothing."""
    if audio == "none":
        return []
    assert audio_source is not None
    cmd: list[str] = []
    if audio_source.start > 0:
        cmd += ["-ss", f"{audio_source.start:.6f}"]
    if audio_source.duration is not None:
        cmd += ["-t", f"{audio_source.duration:.6f}"]
    return cmd + ["-i", str(audio_source.path), "-map", "0:v:0", "-map", "1:a?", "-c:a", audio]


def build_command(ffmpeg: str, fmt: Y4MFormat, target: Path, settings: EncodeSettings, *,
                  audio: str = "none", audio_source: AudioSource | None = None,
                  colors: str | None = None) -> list[str]:
    """The ffmpeg command line that reads y4m on stdin and writes ``target``."""
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y",
           "-f", "yuv4mpegpipe", "-i", "pipe:0", *audio_input_args(audio, audio_source)]
    cmd += ["-c:v", settings.codec]
    if settings.codec in CRF_CODECS and settings.crf is not None:
        cmd += ["-crf", f"{settings.crf:g}"]
        if settings.codec == "libvpx-vp9":
            cmd += ["-b:v", "0"]
    if settings.codec in PRESET_CODECS and settings.preset:
        cmd += ["-preset", settings.preset]
    if settings.pix_fmt:
        cmd += ["-pix_fmt", settings.pix_fmt]
    cmd += _merge_video_filter(settings.extra_args, colors if settings.tag_colors else None)
    cmd.append(str(target))
    return cmd


class _StderrTail:
    """Read ffmpeg's stderr on a thread: log each line, keep the last few for errors."""

    def __init__(self, stream, lines: int = 30) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True,
                                        name="vsvsr-ffmpeg-stderr")
        self._thread.start()

    def _run(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.lines.append(line)
                log.debug("ffmpeg: %s", line)

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "\n".join(self.lines)


def partial_glob(output: Path) -> str:
    """The glob pattern of the temporary files :func:`encode_clip` writes for ``output``
    (beside it), for a caller that must clean up after a process killed mid-encode."""
    return f".{glob.escape(output.stem)}.*.partial{glob.escape(output.suffix)}"


def _temp_path(output: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=f".partial{output.suffix}",
                                dir=output.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give the output the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


def _stop(proc: subprocess.Popen) -> None:
    """Stop ffmpeg without letting it finish the file, and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
    with contextlib.suppress(Exception):
        if proc.stdin is not None:
            proc.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def encode_clip(clip: vs.VideoNode, output: str | os.PathLike[str],
                settings: EncodeSettings | None = None, *, audio_source: AudioSource | None = None,
                progress: bool = True, description: str = "vsvsr", overwrite: bool = True,
                ffmpeg: str | None = None,
                on_frame: Callable[[int, int], None] | None = None) -> EncodeResult:
    """Encode every frame of ``clip`` (YUV or grey, see :mod:`vsvsr.encode.y4m`) to ``output``.

    Args:
        clip: the clip to write; convert RGB with :func:`vsvsr.encode.y4m.to_y4m_clip` first.
        output: the file to create; its extension picks the container.
        settings: codec and audio options.
        audio_source: a file whose audio tracks are muxed in (when it has any).
        progress: show a tqdm bar (frames, fps, ETA) on stderr.
        description: the bar's label.
        overwrite: replace an existing ``output``; otherwise refuse up front.
        ffmpeg: the binary (default: :func:`vsvsr.encode.ffmpeg.find_ffmpeg`).
        on_frame: called as ``on_frame(frames_written, total)`` once before the first frame and
            after each one (progress for a caller without a terminal, e.g. ``vsvsr serve``);
            an exception it raises stops the encode like Ctrl-C does, leaving nothing behind.

    Raises:
        FfmpegError: ffmpeg could not start, exited non-zero or stopped reading frames.
        KeyboardInterrupt: re-raised after cleaning up.
    """
    settings = settings or EncodeSettings()
    out = Path(output)
    if out.exists() and not overwrite:
        raise FfmpegError(f"{out} exists; pass overwrite=True (vsvsr upscale -y) to replace it")
    if out.is_dir():
        raise FfmpegError(f"{out} is a directory; give a file name such as {out / 'out.mkv'}")
    fmt = y4m_format(clip)
    exe = ffmpeg or find_ffmpeg()
    out.parent.mkdir(parents=True, exist_ok=True)
    audio = _audio_plan(settings, audio_source, out, exe)
    colors = color_filter(clip.get_frame(0).props, yuv=fmt.planes == 3)
    total = clip.num_frames
    t0 = time.perf_counter()
    proc: subprocess.Popen | None = None
    tmp = _temp_path(out)
    try:
        cmd = build_command(exe, fmt, tmp, settings, audio=audio, audio_source=audio_source,
                            colors=colors)
        log.info("ffmpeg: %s", " ".join(cmd))
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE,
                                    **({"process_group": 0} if os.name == "posix" else {}))
        except OSError as exc:
            raise FfmpegError(f"cannot start ffmpeg ({exe}): {exc}") from exc
        assert proc.stdin is not None and proc.stderr is not None
        tail = _StderrTail(proc.stderr)
        writer = Y4MWriter(proc.stdin, fmt)
        broken = False
        from tqdm import tqdm

        with tqdm(total=total, unit="frame", desc=description, disable=not progress,
                  dynamic_ncols=True, file=sys.stderr) as bar:
            try:
                writer.write_header(total)
                if on_frame is not None:
                    on_frame(0, total)
                for frame in iter_frames(clip):
                    writer.write_frame(frame)
                    bar.update(1)
                    if on_frame is not None:
                        on_frame(writer.frames_written, total)
            except BrokenPipeError:
                broken = True  # ffmpeg stopped reading: its exit status and stderr say why
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        rc = proc.wait()
        if rc != 0 or broken or writer.frames_written != total:
            why = (f"exited with status {rc}" if rc != 0 else
                   f"stopped reading after {writer.frames_written} of {total} frames")
            raise FfmpegError(f"ffmpeg {why} while writing {out}; nothing was written. "
                              f"Its last messages:\n{tail.text() or '(none)'}\n"
                              f"Command: {' '.join(cmd)}")
        os.replace(tmp, out)
    except BaseException:
        if proc is not None:
            _stop(proc)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    seconds = time.perf_counter() - t0
    log.info("wrote %s: %d frames in %.1f s", out, total, seconds)
    return EncodeResult(output=out, frames=total, seconds=seconds, command=cmd, audio=audio)
