"""YUV4MPEG2 (y4m) output of VapourSynth frames: what ``vspipe -c y4m`` writes, in-process.

A y4m stream is a one-line header (``YUV4MPEG2 W.. H.. F.. Ip A.. C..``) followed by frames,
each ``FRAME\\n`` and the planes Y, U, V back to back (16-bit little-endian above 8 bits).
The ``C`` tag names the subsampling and depth the way ffmpeg reads it: ``C420mpeg2`` (8-bit
4:2:0, left chroma siting), ``C420p10``, ``C422p12``, ``C444p16``, ``Cmono``... ffmpeg's
``XCOLORRANGE=`` extension carries the range. y4m has no RGB: :func:`to_y4m_clip` converts RGB
clips to YUV 4:4:4 (or refuses with the conversion to use).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from vsvsr.errors import ClipFormatError

if TYPE_CHECKING:
    import vapoursynth as vs

FUNC = "vsvsr.encode.y4m"

#: _ChromaLocation -> the 8-bit 4:2:0 y4m tag ffmpeg maps back to the same siting.
_CHROMA_420_8BIT = {0: "420mpeg2", 1: "420jpeg", 2: "420paldv"}
_SUBSAMPLING = {(0, 0): "444", (1, 0): "422", (1, 1): "420"}
_DEPTHS = (8, 9, 10, 12, 14, 16)


@dataclass(frozen=True)
class Y4MFormat:
    """Everything the y4m header says about a clip, and ffmpeg's name for its pixel format."""

    width: int
    height: int
    fps_num: int
    fps_den: int
    colorspace: str  #: the value of the ``C`` tag, e.g. ``420p10``
    pix_fmt: str  #: ffmpeg's pixel format, e.g. ``yuv420p10le``
    bits: int
    planes: int
    full_range: bool | None = None  #: None: not stated in the header
    sar: tuple[int, int] = (0, 0)  #: sample aspect ratio, (0, 0) unknown

    def header(self, num_frames: int | None = None) -> bytes:
        """The y4m stream header line, newline included."""
        parts = ["YUV4MPEG2", f"W{self.width}", f"H{self.height}",
                 f"F{self.fps_num}:{self.fps_den}", "Ip", f"A{self.sar[0]}:{self.sar[1]}",
                 f"C{self.colorspace}"]
        if self.full_range is not None:
            parts.append("XCOLORRANGE=" + ("FULL" if self.full_range else "LIMITED"))
        if num_frames is not None:
            parts.append(f"XLENGTH={num_frames}")
        return (" ".join(parts) + "\n").encode("ascii")

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame's payload (without the ``FRAME`` line)."""
        bps = 1 if self.bits == 8 else 2
        luma = self.width * self.height
        if self.planes == 1:
            return luma * bps
        sub = self.colorspace[:3]
        chroma = {"444": luma, "422": luma // 2, "420": luma // 4}[sub]
        return (luma + 2 * chroma) * bps


def color_range_of(props: vs.FrameProps) -> bool | None:
    """True for full range, False for limited, None when the frame does not say.

    (:func:`vsvsr.vs.formats.is_full_range` reads ``_Range``/``_ColorRange``; here "unsaid"
    stays unsaid, so the y4m header and the output tags do not claim a range.)
    """
    if "_Range" not in props and "_ColorRange" not in props:
        return None
    from vsvsr.vs.formats import is_full_range

    return is_full_range(props)


def y4m_format(clip: vs.VideoNode, *, func: str = FUNC) -> Y4MFormat:
    """The y4m description of ``clip``, or a :class:`ClipFormatError` saying what to convert."""
    import vapoursynth as vs

    fmt = clip.format
    if fmt is None or clip.width == 0 or clip.height == 0:
        raise ClipFormatError(f"{func}: the clip has a variable format or size; y4m needs a "
                              "constant one (convert with core.resize.Bicubic(clip, width=..., "
                              "height=..., format=vs.YUV420P8))")
    if clip.fps_num <= 0 or clip.fps_den <= 0:
        raise ClipFormatError(f"{func}: the clip has a variable frame rate; y4m needs a constant "
                              "one: clip = core.std.AssumeFPS(clip, fpsnum=24000, fpsden=1001)")
    if fmt.sample_type != vs.INTEGER or fmt.bits_per_sample not in _DEPTHS:
        raise ClipFormatError(f"{func}: {fmt.name} cannot be written as y4m, which takes integer "
                              "8-16 bit YUV; convert with "
                              "core.resize.Point(clip, format=vs.YUV444P16)")
    bits = fmt.bits_per_sample
    if fmt.color_family == vs.GRAY:
        if bits not in (8, 16):
            raise ClipFormatError(f"{func}: y4m takes 8- or 16-bit grey; convert {fmt.name} with "
                                  "core.resize.Point(clip, format=vs.GRAY16)")
        colorspace, pix_fmt, planes = ("mono", "gray", 1) if bits == 8 else \
            ("mono16", "gray16le", 1)
    elif fmt.color_family == vs.YUV:
        sub = _SUBSAMPLING.get((fmt.subsampling_w, fmt.subsampling_h))
        if sub is None:
            raise ClipFormatError(f"{func}: {fmt.name} subsampling cannot be written as y4m here; "
                                  "use 4:2:0, 4:2:2 or 4:4:4, e.g. "
                                  "core.resize.Bicubic(clip, format=vs.YUV444P10)")
        planes = 3
        if bits == 8:
            if sub == "420":
                loc = clip.get_frame(0).props.get("_ChromaLocation", 0)
                colorspace = _CHROMA_420_8BIT.get(int(loc), "420mpeg2")  # type: ignore[arg-type]
            else:
                colorspace = sub
            pix_fmt = f"yuv{sub}p"
        else:
            colorspace = f"{sub}p{bits}"
            pix_fmt = f"yuv{sub}p{bits}le"
    elif fmt.color_family == vs.RGB:
        raise ClipFormatError(f"{func}: y4m has no RGB; convert the clip to YUV 4:4:4 first, "
                              "e.g. vsvsr.encode.y4m.to_y4m_clip(clip) or "
                              "core.resize.Bicubic(clip, format=vs.YUV444P10, matrix_s='709')")
    else:
        raise ClipFormatError(f"{func}: {fmt.name} cannot be written as y4m")
    props = clip.get_frame(0).props
    sar = (int(props.get("_SARNum", 0)), int(props.get("_SARDen", 0)))  # type: ignore[arg-type]
    return Y4MFormat(width=clip.width, height=clip.height, fps_num=clip.fps_num,
                     fps_den=clip.fps_den, colorspace=colorspace, pix_fmt=pix_fmt, bits=bits,
                     planes=planes, full_range=color_range_of(props),
                     sar=sar if sar[0] > 0 and sar[1] > 0 else (0, 0))


def to_y4m_clip(clip: vs.VideoNode, *, matrix: str = "709", func: str = FUNC) -> vs.VideoNode:
    """``clip`` in a format y4m can carry: YUV/grey unchanged, RGB converted to YUV 4:4:4.

    Integer RGB keeps its depth (RGB24 -> YUV444P8, RGB48 -> YUV444P16); half/float RGB
    becomes YUV444P16. Float YUV becomes 16-bit. The conversion uses limited range and
    ``matrix`` (BT.709 by default), and the frames say so, so the encoder tags them.
    """
    import vapoursynth as vs

    fmt = clip.format
    if fmt is None:
        raise ClipFormatError(f"{func}: the clip has a variable format; make it constant first")
    if fmt.color_family == vs.RGB:
        bits = fmt.bits_per_sample if fmt.sample_type == vs.INTEGER else 16
        bits = bits if bits in _DEPTHS else 16
        target = vs.core.query_video_format(vs.YUV, vs.INTEGER, bits, 0, 0)
        return clip.resize.Bicubic(format=target.id, matrix_s=matrix, range_s="limited")
    if fmt.color_family in (vs.YUV, vs.GRAY) and fmt.sample_type == vs.FLOAT:
        target = vs.core.query_video_format(fmt.color_family, vs.INTEGER, 16,
                                            fmt.subsampling_w, fmt.subsampling_h)
        return clip.resize.Point(format=target.id)
    return clip


def plane_arrays(frame: vs.VideoFrame) -> list[np.ndarray]:
    """The frame's planes as (h, w) arrays, zero-copy where possible (may be strided)."""
    return [np.asarray(frame[p]) for p in range(frame.format.num_planes)]


class Y4MWriter:
    """Write a y4m stream to a binary file object (a pipe into ffmpeg, or a file)."""

    def __init__(self, fh: BinaryIO, fmt: Y4MFormat) -> None:
        self.fh = fh
        self.fmt = fmt
        self.frames_written = 0
        self._swap = sys.byteorder != "little" and fmt.bits > 8

    def write_header(self, num_frames: int | None = None) -> None:
        self.fh.write(self.fmt.header(num_frames))

    def write_frame(self, frame: vs.VideoFrame) -> None:
        """Write one frame; its format and size must be the header's."""
        if frame.width != self.fmt.width or frame.height != self.fmt.height:
            raise ClipFormatError(f"{FUNC}: frame {self.frames_written} is "
                                  f"{frame.width}x{frame.height}, the stream is "
                                  f"{self.fmt.width}x{self.fmt.height}")
        self.fh.write(b"FRAME\n")
        for plane in plane_arrays(frame)[: self.fmt.planes]:
            if self._swap:
                plane = plane.byteswap()
            # A padded stride is not C-contiguous: copy just that plane.
            self.fh.write(plane if plane.flags.c_contiguous else np.ascontiguousarray(plane))
        self.frames_written += 1


def write_y4m(clip: vs.VideoNode, fh: BinaryIO) -> int:
    """Write the whole clip as y4m to ``fh``; returns the number of frames written."""
    writer = Y4MWriter(fh, y4m_format(clip))
    writer.write_header(clip.num_frames)
    for frame in clip.frames():
        writer.write_frame(frame)
    return writer.frames_written
