"""One concrete real-world degradation (:class:`DegradeSpec`) and its text form.

A spec is what happens to one clip: an optional Gaussian blur, the downscale kernel, optional
Gaussian noise, and an optional codec round trip (H.264, H.265 or MPEG-2, always 4:2:0) or a
bare 4:2:0 chroma round trip. The stages always run in that physical order (a camera blurs, the
scaler shrinks, the sensor adds noise, the encoder compresses), whatever order the text gives.

The text form is what ``vsvsr eval --degrade`` takes and what the degradation cache keys on
(:meth:`DegradeSpec.canonical`)::

    h264:crf=28
    blur:sigma=0.8+noise:sigma=3+h265:crf=30,preset=fast
    mpeg2:q=6
    resize:kernel=area+yuv420

Random specs for training are drawn by :class:`vsvsr.training.degrade_ranges.DegradeConfig`.
This module imports no PyTorch, so a bad spec is reported before anything heavy loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vsvsr.errors import VsvsrError

#: Codec name in a spec -> the ffmpeg encoder that makes it.
ENCODERS = {"h264": "libx264", "h265": "libx265", "mpeg2": "mpeg2video"}
#: Downscale kernels: ``bicubic`` is the training resize (antialiased bicubic).
KERNELS = ("bicubic", "bilinear", "area")
#: x264/x265 speed presets (``placebo`` left out: minutes per clip for nothing).
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
           "veryslow")
DEFAULT_PRESET = "medium"
#: MPEG-2 group of pictures when none is given: a DVD's 15 frames (PAL).
MPEG2_GOP = 15
#: A no-op spec's text.
CLEAN = "clean"

ACCEPTED_FORMS = """\
accepted forms (join stages with '+'; they run in this order whatever the order given):
  clean                                no degradation (the plain training resize)
  blur:sigma=S[,sigma_y=S2][,angle=A]  Gaussian blur before the downscale; S in LR px (> 0),
                                       anisotropic with sigma_y, rotated by A degrees
  resize:kernel=K                      downscale kernel K: bicubic (default), bilinear, area
  noise:sigma=S[,gray=1]               Gaussian noise on the LR, S in 8-bit levels (> 0)
  h264:crf=N[,preset=P][,gop=G]        libx264 at CRF N (0-51), preset P (default medium:
                                       ultrafast ... veryslow), keyframe every G frames
  h265:crf=N[,preset=P][,gop=G]        libx265, the same options
  mpeg2:q=N[,gop=G]                    mpeg2video at fixed quantiser N (1-31), GOP default 15
  mpeg2:bitrate=R[,gop=G]              mpeg2video at R kbit/s (suffix k or M allowed)
  yuv420                               a 4:2:0 chroma round trip alone (every codec does it)
examples: h264:crf=28   blur:sigma=0.6+noise:sigma=2+h265:crf=30,preset=fast   mpeg2:q=6"""


class DegradeSpecError(VsvsrError, ValueError):
    """A degradation that does not parse or is out of range; the message lists the forms."""


def _fail(text: str, why: str) -> DegradeSpecError:
    return DegradeSpecError(f"bad degradation {text!r}: {why}\n{ACCEPTED_FORMS}")


def _num(x: float) -> str:
    """The shortest text that reads back to the same float (``1.5``, ``2``): exact, because
    the cache keys on it."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


@dataclass(kw_only=True, frozen=True)
class BlurSpec:
    """A Gaussian blur of the HR frames before the downscale (a soft lens, a soft master).

    Sigmas are in LR pixels, so one spec means the same softness at every scale; the HR blur
    is ``sigma * scale`` HR px.
    """

    sigma: float  #: along the (rotated) x axis, LR px
    sigma_y: float | None = None  #: along the (rotated) y axis; None: isotropic
    angle: float = 0.0  #: degrees, rotation of the anisotropic kernel

    def __post_init__(self) -> None:
        for name in ("sigma", "sigma_y"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and 0 < v <= 20):
                raise ValueError(f"BlurSpec: {name} must be in (0, 20] LR px, got {v}")
        if not math.isfinite(self.angle):
            raise ValueError(f"BlurSpec: angle must be finite, got {self.angle}")

    def canonical(self) -> str:
        parts = [f"sigma={_num(self.sigma)}"]
        if self.sigma_y is not None and self.sigma_y != self.sigma:
            parts += [f"sigma_y={_num(self.sigma_y)}", f"angle={_num(self.angle % 180.0)}"]
        return "blur:" + ",".join(parts)


@dataclass(kw_only=True, frozen=True)
class NoiseSpec:
    """Additive Gaussian noise on the LR frames (sensor noise), fresh in every frame."""

    sigma: float  #: standard deviation in 8-bit levels (0-255 scale)
    gray: bool = False  #: one value for all three channels (luma-like noise)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma) and 0 < self.sigma <= 64):
            raise ValueError(f"NoiseSpec: sigma must be in (0, 64] 8-bit levels, got {self.sigma}")

    def canonical(self) -> str:
        return f"noise:sigma={_num(self.sigma)}" + (",gray=1" if self.gray else "")


@dataclass(kw_only=True, frozen=True)
class CodecSpec:
    """A lossy encode and decode of the whole LR sequence with ffmpeg (4:2:0).

    H.264/H.265 take ``crf`` and ``preset``; MPEG-2 takes a fixed quantiser ``q`` or a
    ``bitrate`` (kbit/s). ``gop`` is the keyframe interval (None: the encoder's default,
    250 for x264/x265, 15 for MPEG-2).
    """

    codec: str  #: h264, h265 or mpeg2
    crf: int | None = None
    preset: str | None = None
    q: int | None = None
    bitrate: int | None = None  #: kbit/s
    gop: int | None = None

    def __post_init__(self) -> None:
        if self.codec not in ENCODERS:
            raise ValueError(f"CodecSpec: codec must be one of {sorted(ENCODERS)}, "
                             f"got {self.codec!r}")
        if self.gop is not None and self.gop < 1:
            raise ValueError(f"CodecSpec: gop must be >= 1, got {self.gop}")
        if self.codec in ("h264", "h265"):
            if self.crf is None or not 0 <= self.crf <= 51:
                raise ValueError(f"CodecSpec: {self.codec} needs crf in 0-51, got {self.crf}")
            if self.preset is None:
                object.__setattr__(self, "preset", DEFAULT_PRESET)
            if self.preset not in PRESETS:
                raise ValueError(f"CodecSpec: preset must be one of {', '.join(PRESETS)}, "
                                 f"got {self.preset!r}")
            if self.q is not None or self.bitrate is not None:
                raise ValueError(f"CodecSpec: {self.codec} takes crf, not q or bitrate")
        else:
            if (self.q is None) == (self.bitrate is None):
                raise ValueError("CodecSpec: mpeg2 needs exactly one of q (1-31) or bitrate")
            if self.q is not None and not 1 <= self.q <= 31:
                raise ValueError(f"CodecSpec: mpeg2 q must be in 1-31, got {self.q}")
            if self.bitrate is not None and not 16 <= self.bitrate <= 100_000:
                raise ValueError(f"CodecSpec: mpeg2 bitrate must be 16-100000 kbit/s, "
                                 f"got {self.bitrate}")
            if self.crf is not None or self.preset is not None:
                raise ValueError("CodecSpec: mpeg2 takes q or bitrate, not crf or preset")

    @property
    def encoder(self) -> str:
        """The ffmpeg encoder name (``libx264``, ``libx265``, ``mpeg2video``)."""
        return ENCODERS[self.codec]

    def canonical(self) -> str:
        if self.codec == "mpeg2":
            parts = [f"q={self.q}"] if self.q is not None else [f"bitrate={self.bitrate}"]
        else:
            parts = [f"crf={self.crf}", f"preset={self.preset}"]
        if self.gop is not None:
            parts.append(f"gop={self.gop}")
        return f"{self.codec}:" + ",".join(parts)


@dataclass(kw_only=True, frozen=True)
class DegradeSpec:
    """Everything that happens to one clip, in order: blur, downscale, noise, codec.

    ``chroma420`` alone (no codec) is a 4:2:0 round trip without compression; a codec always
    subsamples the chroma, so the flag is implied (and stored as True) when ``codec`` is set.
    The default spec is clean: the training resize and 8-bit rounding only.
    """

    blur: BlurSpec | None = None
    kernel: str = "bicubic"
    noise: NoiseSpec | None = None
    codec: CodecSpec | None = None
    chroma420: bool = False

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"DegradeSpec: kernel must be one of {', '.join(KERNELS)}, "
                             f"got {self.kernel!r}")
        if self.codec is not None and not self.chroma420:
            object.__setattr__(self, "chroma420", True)

    @property
    def is_clean(self) -> bool:
        return self == DegradeSpec()

    def canonical(self) -> str:
        """The text form, stages in the order they run; ``parse_spec`` reads it back to an
        equal spec. The degradation cache keys on it."""
        parts = []
        if self.blur is not None:
            parts.append(self.blur.canonical())
        if self.kernel != "bicubic":
            parts.append(f"resize:kernel={self.kernel}")
        if self.noise is not None:
            parts.append(self.noise.canonical())
        if self.codec is not None:
            parts.append(self.codec.canonical())
        elif self.chroma420:
            parts.append("yuv420")
        return "+".join(parts) or CLEAN

    def __str__(self) -> str:
        return self.canonical()


# -- parsing ------------------------------------------------------------------------------------

def _options(text: str, stage: str, body: str, allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, body.split(",")):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise _fail(text, f"{stage}: {item!r} is not key=value")
        if key not in allowed:
            raise _fail(text, f"{stage} has no option {key!r} (it takes {', '.join(allowed)})")
        if key in out:
            raise _fail(text, f"{stage}: {key} given twice")
        out[key] = value
    return out


def _float(text: str, stage: str, key: str, value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise _fail(text, f"{stage}: {key}={value!r} is not a number") from None
    if not math.isfinite(v):
        raise _fail(text, f"{stage}: {key}={value!r} is not finite")
    return v


def _int(text: str, stage: str, key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _fail(text, f"{stage}: {key}={value!r} is not a whole number") from None


def _bool(text: str, stage: str, key: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise _fail(text, f"{stage}: {key}={value!r} is not 0/1")


def _kbits(text: str, value: str) -> int:
    low = value.lower()
    mult = 1000.0 if low.endswith("m") else 1.0
    num = low[:-1] if low[-1:] in ("k", "m") else low
    try:
        return round(float(num) * mult)
    except ValueError:
        raise _fail(text, f"mpeg2: bitrate={value!r} is not a rate (e.g. 2500, 2500k, 2.5M)") \
            from None


def parse_spec(text: str) -> DegradeSpec:
    """Read a spec such as ``blur:sigma=0.8+h264:crf=28,preset=fast`` (see ``ACCEPTED_FORMS``).

    Raises:
        DegradeSpecError: an unknown stage or option, a stage given twice, two codecs, or a
            value out of range; the message lists every accepted form.
    """
    if not isinstance(text, str) or not text.strip():
        raise _fail(str(text), "empty")
    fields: dict[str, object] = {}
    seen: set[str] = set()
    for raw in text.split("+"):
        part = raw.strip()
        stage, _, body = part.partition(":")
        stage = stage.strip().lower()
        if not stage:
            raise _fail(text, "an empty stage (two '+' in a row?)")
        family = "codec" if stage in ENCODERS else stage
        if family in seen:
            raise _fail(text, f"{'a codec' if family == 'codec' else stage} given twice")
        seen.add(family)
        try:
            if stage in (CLEAN, "yuv420"):
                if body.strip():
                    raise _fail(text, f"{stage} takes no options")
                if stage == "yuv420":
                    fields["chroma420"] = True
            elif stage == "blur":
                o = _options(text, stage, body, ("sigma", "sigma_y", "angle"))
                if "sigma" not in o:
                    raise _fail(text, "blur needs sigma=S")
                fields["blur"] = BlurSpec(
                    sigma=_float(text, stage, "sigma", o["sigma"]),
                    sigma_y=_float(text, stage, "sigma_y", o["sigma_y"]) if "sigma_y" in o
                    else None,
                    angle=_float(text, stage, "angle", o.get("angle", "0")))
            elif stage == "resize":
                o = _options(text, stage, body, ("kernel",))
                fields["kernel"] = o.get("kernel", "bicubic").lower()
            elif stage == "noise":
                o = _options(text, stage, body, ("sigma", "gray"))
                if "sigma" not in o:
                    raise _fail(text, "noise needs sigma=S")
                fields["noise"] = NoiseSpec(sigma=_float(text, stage, "sigma", o["sigma"]),
                                            gray=_bool(text, stage, "gray", o.get("gray", "0")))
            elif stage in ("h264", "h265"):
                o = _options(text, stage, body, ("crf", "preset", "gop"))
                if "crf" not in o:
                    raise _fail(text, f"{stage} needs crf=N")
                fields["codec"] = CodecSpec(
                    codec=stage, crf=_int(text, stage, "crf", o["crf"]),
                    preset=o.get("preset", DEFAULT_PRESET).lower(),
                    gop=_int(text, stage, "gop", o["gop"]) if "gop" in o else None)
            elif stage == "mpeg2":
                o = _options(text, stage, body, ("q", "bitrate", "gop"))
                fields["codec"] = CodecSpec(
                    codec=stage, q=_int(text, stage, "q", o["q"]) if "q" in o else None,
                    bitrate=_kbits(text, o["bitrate"]) if "bitrate" in o else None,
                    gop=_int(text, stage, "gop", o["gop"]) if "gop" in o else None)
            else:
                raise _fail(text, f"unknown stage {stage!r}")
        except ValueError as exc:
            if isinstance(exc, DegradeSpecError):
                raise
            raise _fail(text, str(exc)) from None
    if CLEAN in seen and len(seen) > 1:
        raise _fail(text, "clean cannot be combined with other stages")
    try:
        return DegradeSpec(**fields)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _fail(text, str(exc)) from None
