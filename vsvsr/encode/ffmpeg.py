"""Finding ffmpeg and asking it what a media file holds.

Discovery order: the ``VSVSR_FFMPEG`` environment variable, the binary that ``imageio-ffmpeg``
ships (a runtime dependency, so every install has one), then ``ffmpeg`` on ``PATH``. There is
no ffprobe in imageio-ffmpeg, so :func:`probe` reads the stream list ``ffmpeg -i`` prints.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vsvsr.errors import MissingDependencyError, VsvsrError

log = logging.getLogger(__name__)

ENV_VAR = "VSVSR_FFMPEG"


class FfmpegError(VsvsrError, RuntimeError):
    """ffmpeg failed or could not be started; the message carries its last stderr lines."""


@dataclass(frozen=True)
class FfmpegInfo:
    """Which ffmpeg binary vsvsr uses and where it came from."""

    path: str
    source: str  #: "VSVSR_FFMPEG", "imageio-ffmpeg" or "PATH"


def find_ffmpeg_info() -> FfmpegInfo:
    """Locate ffmpeg (see the module docstring for the order).

    Raises:
        MissingDependencyError: no usable ffmpeg, or ``VSVSR_FFMPEG`` names a missing file.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return FfmpegInfo(str(path), ENV_VAR)
        found = shutil.which(env)
        if found:
            return FfmpegInfo(found, ENV_VAR)
        raise MissingDependencyError(
            f"{ENV_VAR}={env!r} is not an executable ffmpeg; point it at an ffmpeg binary or "
            f"unset it to use the one imageio-ffmpeg ships")
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and Path(exe).is_file():
            return FfmpegInfo(exe, "imageio-ffmpeg")
    except ImportError:
        log.debug("imageio-ffmpeg is not installed; looking for ffmpeg on PATH")
    except RuntimeError as exc:  # imageio-ffmpeg found no binary for this platform
        log.debug("imageio-ffmpeg has no ffmpeg here: %s", exc)
    found = shutil.which("ffmpeg")
    if found:
        return FfmpegInfo(found, "PATH")
    raise MissingDependencyError(
        "vsvsr needs ffmpeg to read and write video files and none was found: install it with "
        "'pip install imageio-ffmpeg' (ships a binary), put ffmpeg on PATH, or set "
        f"{ENV_VAR}=/path/to/ffmpeg")


def find_ffmpeg() -> str:
    """The path of the ffmpeg binary to run."""
    return find_ffmpeg_info().path


def ffmpeg_version(ffmpeg: str | None = None) -> str:
    """ffmpeg's first version line, e.g. ``ffmpeg version 7.1 ...``."""
    exe = ffmpeg or find_ffmpeg()
    try:
        out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except OSError as exc:
        raise FfmpegError(f"cannot run {exe}: {exc}") from exc
    return out.splitlines()[0].split(" Copyright")[0].strip() if out else "unknown"


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file as ``ffmpeg -i`` lists it."""

    index: str  #: e.g. "0:1"
    kind: str  #: "video", "audio", "subtitle", "data", "attachment"
    codec: str  #: e.g. "aac", "h264"


_STREAM = re.compile(r"^\s*Stream #(\d+:\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): ([\w-]+)")


def probe(path: str | os.PathLike[str], ffmpeg: str | None = None) -> list[StreamInfo]:
    """The streams of ``path`` (empty when ffmpeg cannot read it)."""
    exe = ffmpeg or find_ffmpeg()
    try:
        err = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", os.fspath(path)],
                             capture_output=True, text=True, errors="replace", timeout=60,
                             check=False).stderr
    except OSError as exc:
        raise FfmpegError(f"cannot run {exe}: {exc}") from exc
    streams = []
    for line in err.splitlines():
        m = _STREAM.match(line)
        if m:
            streams.append(StreamInfo(m.group(1), m.group(2).lower(), m.group(3).lower()))
    return streams


def audio_streams(path: str | os.PathLike[str], ffmpeg: str | None = None) -> list[StreamInfo]:
    return [s for s in probe(path, ffmpeg) if s.kind == "audio"]
