"""Join encoded video chunks into one file without re-encoding, and mux in the source's audio.

Uses ffmpeg's concat demuxer with ``-c:v copy``: the chunks' packets go into the output as
they are, so the decoded frames are exactly the chunks' frames. All or nothing, like
:func:`vsvsr.encode.pipe.encode_clip`: ffmpeg writes a temporary file beside the output,
renamed over it only when ffmpeg exited 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from vsvsr.encode.ffmpeg import FfmpegError, find_ffmpeg
from vsvsr.encode.pipe import (
    AudioSource,
    EncodeResult,
    EncodeSettings,
    _audio_plan,
    _temp_path,
    audio_input_args,
)
from vsvsr.utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


def concat_list(chunks: Sequence[Path]) -> bytes:
    """The concat demuxer's list file for ``chunks`` (absolute paths, quotes escaped)."""
    lines = []
    for chunk in chunks:
        quoted = str(Path(chunk).resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'\n")
    return "".join(lines).encode()


def concat_chunks(chunks: Sequence[Path], output: str | os.PathLike[str], *,
                  frames: int, settings: EncodeSettings | None = None,
                  audio_source: AudioSource | None = None, overwrite: bool = False,
                  ffmpeg: str | None = None) -> EncodeResult:
    """Write ``chunks`` (in order) into ``output`` with ``-c:v copy``; audio as ``settings.audio``.

    Args:
        chunks: encoded video files with the same codec and format (``vsvsr farm``'s chunks).
        output: the file to create; its extension picks the container.
        frames: the total frame count, for the result.
        settings: only ``audio`` is used here (the video is copied, never re-encoded).
        audio_source: a file whose audio (the part that goes with the video) is muxed in.
        overwrite: replace an existing ``output``.
    """
    if not chunks:
        raise FfmpegError("concat_chunks: no chunks to join")
    settings = settings or EncodeSettings()
    out = Path(output)
    if out.exists() and not overwrite:
        raise FfmpegError(f"{out} exists; pass overwrite=True (-y) to replace it")
    missing = [str(c) for c in chunks if not Path(c).is_file()]
    if missing:
        raise FfmpegError(f"concat_chunks: chunk files missing: {', '.join(missing[:5])}")
    exe = ffmpeg or find_ffmpeg()
    out.parent.mkdir(parents=True, exist_ok=True)
    audio = _audio_plan(settings, audio_source, out, exe)
    tmp = _temp_path(out)
    list_file = tmp.with_name(tmp.name + ".concat.txt")
    t0 = time.perf_counter()
    try:
        atomic_write_bytes(list_file, concat_list(chunks))
        cmd = [exe, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y",
               "-f", "concat", "-safe", "0", "-i", str(list_file),
               *(audio_input_args(audio, audio_source) or ["-map", "0:v:0"]),
               "-c:v", "copy", str(tmp)]
        log.info("ffmpeg: %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                  check=False, **({"process_group": 0} if os.name == "posix"
                                                  else {}))
        except OSError as exc:
            raise FfmpegError(f"cannot start ffmpeg ({exe}): {exc}") from exc
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-30:])
            raise FfmpegError(f"ffmpeg exited with status {proc.returncode} while joining "
                              f"{len(chunks)} chunks into {out}; nothing was written. Its last "
                              f"messages:\n{tail or '(none)'}\nCommand: {' '.join(cmd)}")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            list_file.unlink()
    seconds = time.perf_counter() - t0
    return EncodeResult(output=out, frames=frames, seconds=seconds, command=cmd, audio=audio)
