"""Clip format checks and conversions between the clip's format and the model's RGB floats.

Models see RGB float planes in [0, 1] at the clip's size. Input YUV is converted with its
``_Matrix`` (or ``matrix=``) and range; the output returns to the input's format family at the
new size (YUV in -> YUV out at the same bit depth and subsampling, same matrix and range)
unless RGBS/RGBH output is asked for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import vapoursynth as vs

from vsvsr.errors import ClipFormatError

if TYPE_CHECKING:
    from vsvsr.runtime.color_kernels import FrameFormat

log = logging.getLogger(__name__)

#: _Matrix values VapourSynth defines, by the names resize takes (``matrix_s``).
MATRIX_NAMES = {"rgb": 0, "709": 1, "fcc": 4, "470bg": 5, "170m": 6, "240m": 7, "ycgco": 8,
                "2020ncl": 9, "2020cl": 10, "chromancl": 12, "chromacl": 13, "ictcp": 14}
_MATRIX_ALIASES = {"bt709": "709", "601": "170m", "bt601": "170m", "smpte170m": "170m",
                   "bt470bg": "470bg", "2020": "2020ncl", "bt2020": "2020ncl"}
OUTPUT_FORMATS = {"RGBS": vs.RGBS, "RGBH": vs.RGBH}
#: ``matrix=AUTO``: the clip's ``_Matrix``, else a guess from the size (with a warning).
AUTO = "auto"


@dataclass(frozen=True)
class ClipInfo:
    """What the filter needs to know about its input clip, read once at graph build time."""

    format: vs.VideoFormat
    width: int
    height: int
    num_frames: int
    matrix: int | None  #: None for RGB
    full_range: bool
    chroma_location: int | None

    @property
    def is_yuv(self) -> bool:
        return self.format.color_family == vs.YUV


def _fmt_name(clip: vs.VideoNode) -> str:
    return clip.format.name if clip.format is not None else "variable format"


def parse_matrix(matrix: str | int, func: str) -> int:
    """Accept '709', 'bt709', '170m', 1, ... and return the _Matrix number."""
    if isinstance(matrix, int) and not isinstance(matrix, bool):
        if matrix in MATRIX_NAMES.values() and matrix != 0:
            return matrix
    elif isinstance(matrix, str):
        key = _MATRIX_ALIASES.get(matrix.lower(), matrix.lower())
        if key in MATRIX_NAMES and key != "rgb":
            return MATRIX_NAMES[key]
    names = ", ".join(n for n in MATRIX_NAMES if n != "rgb")
    raise ClipFormatError(f"{func}: unknown matrix {matrix!r}; use one of {names}")


def matrix_from_size(width: int, height: int) -> str:
    """The matrix players assume for YUV without one: BT.709 from 1280x720 up, else BT.601."""
    return "709" if width >= 1280 or height >= 720 else "170m"


def is_full_range(props: vs.FrameProps) -> bool:
    """Whether YUV frame props say full range (limited when unsaid, as resize assumes).

    R81 renamed ``_ColorRange`` (0 = full) to ``_Range`` (1 = full, ``vs.Range``) and maps
    the old name onto the new one, so read ``_Range`` first.
    """
    if "_Range" in props:
        return int(props["_Range"]) == int(vs.Range.RANGE_FULL)
    if "_ColorRange" in props:  # cores before the rename
        return int(props["_ColorRange"]) == 0
    return False


def inspect_clip(clip: vs.VideoNode, func: str, matrix: str | int | None = None) -> ClipInfo:
    """Check that ``clip`` is something the filters take, and read its colour facts."""
    if not isinstance(clip, vs.VideoNode):
        raise ClipFormatError(f"{func}: expected a VapourSynth video clip, got {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or fmt.id == vs.PresetVideoFormat.NONE:
        raise ClipFormatError(f"{func}: the clip has a variable format; make it constant first, "
                              "e.g. clip = core.resize.Bicubic(clip, format=vs.YUV420P10)")
    if clip.width == 0 or clip.height == 0:
        raise ClipFormatError(f"{func}: the clip has a variable size; make it constant first, "
                              "e.g. with core.resize.Bicubic(clip, width=..., height=...)")
    if clip.num_frames < 1:
        raise ClipFormatError(f"{func}: the clip has no frames")
    family = fmt.color_family
    if family == vs.YUV:
        if fmt.sample_type != vs.INTEGER or fmt.bits_per_sample not in (8, 9, 10, 12, 14, 16):
            raise ClipFormatError(f"{func}: {fmt.name} is not supported; YUV input must be "
                                  "integer 8-16 bit, e.g. convert with "
                                  "core.resize.Point(clip, format=vs.YUV444P16)")
        if (fmt.subsampling_w, fmt.subsampling_h) not in ((0, 0), (1, 0), (1, 1)):
            raise ClipFormatError(f"{func}: {fmt.name} subsampling is not supported; use 4:2:0, "
                                  "4:2:2 or 4:4:4 (core.resize.Bicubic(clip, format=vs.YUV444P10))")
    elif family == vs.RGB:
        ok = ((fmt.sample_type == vs.INTEGER and fmt.bits_per_sample in (8, 10, 12, 16)) or
              (fmt.sample_type == vs.FLOAT and fmt.bits_per_sample in (16, 32)))
        if not ok:
            raise ClipFormatError(f"{func}: {fmt.name} is not supported; use RGB24, RGB48, "
                                  "RGBH or RGBS")
    else:
        raise ClipFormatError(f"{func}: {fmt.name} is not supported (the models are trained on "
                              "colour video); convert to YUV or RGB, e.g. "
                              "core.resize.Point(clip, format=vs.YUV444P8, matrix_s='709')")
    props = clip.get_frame(0).props
    full_range = (family == vs.RGB) or is_full_range(props)
    chroma = int(props["_ChromaLocation"]) if "_ChromaLocation" in props else None
    mat = None
    if family == vs.YUV:
        tagged = int(props.get("_Matrix", 2)) not in (2, 0)
        if matrix is not None and not (isinstance(matrix, str) and matrix.lower() == AUTO):
            mat = parse_matrix(matrix, func)
        elif tagged:
            mat = int(props["_Matrix"])
        elif matrix is not None:  # auto, and nothing to go by but the size
            guess = matrix_from_size(clip.width, clip.height)
            log.warning("%s: the clip (%s, %dx%d) does not say its colour matrix (_Matrix "
                        "unspecified); assuming %s from its size, as players do: pass "
                        "matrix=\"709\" (or the real one) to choose", func, fmt.name,
                        clip.width, clip.height, guess)
            mat = parse_matrix(guess, func)
        else:
            raise ClipFormatError(
                f"{func}: clip is {fmt.name} with _Matrix unspecified; pass matrix=\"709\" "
                "(or the clip's real matrix, e.g. \"170m\" for SD, \"2020ncl\" for UHD), "
                "matrix=\"auto\" to guess it from the size, or set _Matrix with "
                "core.std.SetFrameProps")
    return ClipInfo(format=fmt, width=clip.width, height=clip.height,
                    num_frames=clip.num_frames, matrix=mat, full_range=full_range,
                    chroma_location=chroma)


def to_model_rgb(clip: vs.VideoNode, info: ClipInfo) -> vs.VideoNode:
    """The clip as RGBS at its own size (what the runner reads)."""
    if info.format.id == vs.RGBS:
        return clip
    if info.is_yuv:
        return clip.resize.Bicubic(format=vs.RGBS, matrix_in=info.matrix,
                                   range_in_s="full" if info.full_range else "limited")
    return clip.resize.Point(format=vs.RGBS)


def from_model_rgb(rgb: vs.VideoNode, info: ClipInfo, output_format: str | None) -> vs.VideoNode:
    """Convert the model's RGB output back to the input's family (or RGBS/RGBH on request)."""
    if output_format is not None:
        return rgb if rgb.format.id == OUTPUT_FORMATS[output_format] else \
            rgb.resize.Point(format=OUTPUT_FORMATS[output_format])
    if info.is_yuv:
        kwargs: dict[str, object] = {"format": info.format.id, "matrix": info.matrix,
                                     "range_s": "full" if info.full_range else "limited"}
        if info.chroma_location is not None:
            kwargs["chromaloc"] = info.chroma_location
        return rgb.resize.Bicubic(**kwargs)
    if info.format.id == rgb.format.id:
        return rgb
    return rgb.resize.Point(format=info.format.id)


def check_output_format(output_format: str | None, func: str) -> str | None:
    if output_format is None:
        return None
    key = str(output_format).upper()
    if key not in OUTPUT_FORMATS:
        raise ClipFormatError(f"{func}: output_format must be None (same family as the input), "
                              f"'RGBS' or 'RGBH', got {output_format!r}")
    return key


def device_frame_formats(info: ClipInfo, output_format: str | None
                         ) -> tuple[FrameFormat, FrameFormat] | None:
    """(input, output) formats for the GPU frame path, or ``None`` where its colour kernels
    do not cover the clip (a matrix without a device kernel): the CPU conversion is used then.

    The output is the input's format at the new size, or RGBS/RGBH (``output_format``).
    """
    from vsvsr.runtime.color_kernels import MATRIX_COEFFS, FrameFormat

    fmt = info.format
    if info.is_yuv:
        if info.matrix not in MATRIX_COEFFS:
            return None
        src = FrameFormat(yuv=True, bits=fmt.bits_per_sample, ssw=fmt.subsampling_w,
                          ssh=fmt.subsampling_h, matrix=info.matrix,
                          full_range=info.full_range, chroma_location=info.chroma_location or 0)
    else:
        src = FrameFormat(yuv=False, bits=fmt.bits_per_sample,
                          is_float=fmt.sample_type == vs.FLOAT)
    if output_format is None:
        return src, src
    return src, FrameFormat(yuv=False, bits=32 if output_format == "RGBS" else 16, is_float=True)
