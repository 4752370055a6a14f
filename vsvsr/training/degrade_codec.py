"""The codec stage of the real-world degradation: a whole LR sequence through ffmpeg and back.

The sequence is encoded as ONE video (so the encoder's motion search, frame types and rate
control act across frames as in a real file) to a raw elementary stream on a pipe, then decoded
back to RGB. Both directions convert with fixed swscale settings and an explicit BT.709 limited
range matrix, and the encoder runs single-threaded (``-threads 1``; x265 ``pools=none``,
``frame-threads=1``), so the bitstream, and hence the decoded frames, are the same on every
run with the same ffmpeg build (``tests/test_degrade.py`` checks the bytes).

Odd frame sizes are padded by repeating the last row/column to even (4:2:0 needs it) and
cropped back after decoding. :func:`encode_command` is the exact ffmpeg command line, so that
anyone can reproduce a degraded LR by hand.
"""

from __future__ import annotations

import functools
import logging
import subprocess

import numpy as np

from vsvsr.encode.ffmpeg import FfmpegError, find_ffmpeg
from vsvsr.errors import MissingDependencyError
from vsvsr.training.degrade_spec import MPEG2_GOP, CodecSpec

log = logging.getLogger(__name__)

#: Raw elementary stream muxer of each codec, and the demuxer that reads it back.
STREAM_FORMATS = {"h264": "h264", "h265": "hevc", "mpeg2": "mpeg2video"}
DEMUXERS = {"h264": "h264", "h265": "hevc", "mpeg2": "mpegvideo"}
#: Frame rate written into the stream: it only scales rate-control decisions (bitrate mode).
FRAME_RATE = 25
#: Scaler flags of both conversions: accurate rounding and bit-exact code paths.
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int+bitexact"
#: RGB -> YUV 4:2:0 (BT.709, limited range), tagged in the stream.
TO_YUV = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
#: YUV 4:2:0 -> RGB with the same matrix.
TO_RGB = "scale=in_color_matrix=bt709:in_range=tv,format=rgb24"
COLOR_TAGS = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
              "-color_range", "tv"]
_TIMEOUT = 600


class MissingCodecError(MissingDependencyError):
    """The ffmpeg in use has no encoder for a codec of the degradation."""


@functools.lru_cache(maxsize=8)
def _encoders(ffmpeg: str) -> frozenset[str]:
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-encoders"],
                             capture_output=True, text=True, errors="replace", timeout=60,
                             check=False).stdout
    except OSError as exc:
        raise FfmpegError(f"cannot run {ffmpeg}: {exc}") from exc
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def check_encoder(codec: CodecSpec, ffmpeg: str | None = None) -> str:
    """The ffmpeg binary to use, after checking that it has the codec's encoder.

    Raises:
        MissingCodecError: naming the encoder, the binary and the fix.
    """
    exe = ffmpeg or find_ffmpeg()
    if codec.encoder not in _encoders(exe):
        raise MissingCodecError(
            f"degradation {codec.canonical()}: the ffmpeg at {exe} has no '{codec.encoder}' "
            f"encoder ({codec.codec}); use an ffmpeg built with it (the one 'pip install "
            "imageio-ffmpeg' ships has libx264, libx265 and mpeg2video) and point "
            "VSVSR_FFMPEG at it")
    return exe


def codec_args(codec: CodecSpec) -> list[str]:
    """The encoder options of ``codec`` (after the input, before the output)."""
    args = ["-c:v", codec.encoder]
    if codec.codec == "h264":
        args += ["-preset", str(codec.preset), "-crf", str(codec.crf)]
    elif codec.codec == "h265":
        args += ["-preset", str(codec.preset), "-crf", str(codec.crf),
                 "-x265-params", "pools=none:frame-threads=1:log-level=error"]
    else:
        if codec.q is not None:
            args += ["-q:v", str(codec.q)]
        else:
            kb = int(codec.bitrate or 0)
            args += ["-b:v", f"{kb}k", "-maxrate", f"{kb * 2}k", "-bufsize", f"{kb * 2}k"]
        args += ["-bf", "2"]
    gop = codec.gop if codec.gop is not None else (MPEG2_GOP if codec.codec == "mpeg2" else None)
    if gop is not None:
        args += ["-g", str(gop)]
    return args


def encode_command(ffmpeg: str, width: int, height: int, codec: CodecSpec) -> list[str]:
    """ffmpeg reading raw rgb24 frames of ``width`` x ``height`` (even) on stdin and writing
    the codec's elementary stream on stdout."""
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-r", str(FRAME_RATE), "-i", "pipe:0", "-threads", "1", "-sws_flags", SWS_FLAGS,
            "-vf", TO_YUV, *COLOR_TAGS, *codec_args(codec),
            "-f", STREAM_FORMATS[codec.codec], "pipe:1"]


def decode_command(ffmpeg: str, codec: CodecSpec) -> list[str]:
    """ffmpeg reading the elementary stream on stdin and writing rgb24 frames on stdout."""
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
            "-f", DEMUXERS[codec.codec], "-i", "pipe:0", "-sws_flags", SWS_FLAGS,
            "-vf", TO_RGB, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "pipe:1"]


def chroma_command(ffmpeg: str, width: int, height: int) -> list[str]:
    """ffmpeg taking rgb24 frames to 4:2:0 and back in one filter graph (no compression)."""
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-r", str(FRAME_RATE), "-i", "pipe:0", "-threads", "1", "-sws_flags", SWS_FLAGS,
            "-vf", f"{TO_YUV},{TO_RGB}", "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]


def _run(cmd: list[str], data: bytes, what: str) -> bytes:
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=_TIMEOUT,
                              check=False)
    except OSError as exc:
        raise FfmpegError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise FfmpegError(f"{what}: ffmpeg took over {_TIMEOUT} s") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise FfmpegError(f"{what}: ffmpeg failed (exit {proc.returncode}): "
                          f"{' / '.join(tail) or 'no message'}")
    return proc.stdout


def _check_frames(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"degrade_codec: need (T, H, W, 3) uint8 frames, got {frames.dtype} "
                         f"{frames.shape}")
    if frames.shape[0] < 1:
        raise ValueError("degrade_codec: no frames")


def pad_even(frames: np.ndarray) -> np.ndarray:
    """Repeat the last row/column so that both sides are even (4:2:0 needs it)."""
    h, w = frames.shape[1:3]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return np.ascontiguousarray(frames)
    return np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")


def _unpack(raw: bytes, count: int, h: int, w: int, what: str) -> np.ndarray:
    if len(raw) != count * h * w * 3:
        raise FfmpegError(f"{what}: ffmpeg returned {len(raw) // max(h * w * 3, 1)} frames of "
                          f"{w}x{h}, expected {count}")
    return np.frombuffer(raw, np.uint8).reshape(count, h, w, 3)


def encode(frames: np.ndarray, codec: CodecSpec, *, ffmpeg: str | None = None) -> bytes:
    """The elementary stream of ``frames`` ((T, H, W, 3) uint8 RGB, even H and W)."""
    _check_frames(frames)
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"degrade_codec.encode: {w}x{h} is odd; pad_even the frames first")
    exe = check_encoder(codec, ffmpeg)
    return _run(encode_command(exe, w, h, codec), np.ascontiguousarray(frames).tobytes(),
                f"encoding {codec.canonical()}")


def decode(stream: bytes, codec: CodecSpec, count: int, height: int, width: int, *,
           ffmpeg: str | None = None) -> np.ndarray:
    """Decode an elementary stream of ``count`` frames back to (T, H, W, 3) uint8 RGB."""
    exe = ffmpeg or find_ffmpeg()
    raw = _run(decode_command(exe, codec), stream, f"decoding {codec.canonical()}")
    return _unpack(raw, count, height, width, f"decoding {codec.canonical()}")


def codec_round_trip(frames: np.ndarray, codec: CodecSpec | None, *,
                     ffmpeg: str | None = None) -> np.ndarray:
    """``frames`` through the codec and back (or, for ``codec=None``, through 4:2:0 and back).

    Args:
        frames: (T, H, W, 3) uint8 RGB, any size (odd sides are padded, then cropped).

    Raises:
        MissingCodecError: this ffmpeg cannot encode the codec.
        FfmpegError: ffmpeg failed; the message carries its last lines.
    """
    _check_frames(frames)
    t, h, w = frames.shape[:3]
    padded = pad_even(frames)
    ph, pw = padded.shape[1:3]
    if codec is None:
        exe = ffmpeg or find_ffmpeg()
        raw = _run(chroma_command(exe, pw, ph), padded.tobytes(), "4:2:0 round trip")
        out = _unpack(raw, t, ph, pw, "4:2:0 round trip")
    else:
        exe = check_encoder(codec, ffmpeg)
        stream = encode(padded, codec, ffmpeg=exe)
        log.debug("%s: %d frames %dx%d -> %d bytes", codec.canonical(), t, pw, ph, len(stream))
        out = decode(stream, codec, t, ph, pw, ffmpeg=exe)
    return np.ascontiguousarray(out[:, :h, :w])
