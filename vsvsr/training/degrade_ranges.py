"""Ranges of the real-world degradation for training: a YAML section, and random specs from it.

A training config's optional ``degrade:`` section reads into :class:`DegradeConfig`; each clip
then draws one :class:`~vsvsr.training.degrade_spec.DegradeSpec` with
:meth:`DegradeConfig.sample`. Every key is optional (the defaults are listed in
``docs/real-world.md``)::

    degrade:
      blur: {p: 0.5, sigma: [0.2, 0.8], p_anisotropic: 0.3}   # sigma in LR px
      kernels: [bicubic, bilinear, area]
      noise: {p: 0.4, sigma: [1.0, 6.0], p_gray: 0.4}         # 8-bit levels
      h264: {p: 0.45, crf: [20, 33], presets: [veryfast, faster, fast, medium]}
      h265: {p: 0.3, crf: [22, 35], presets: [veryfast, faster, fast, medium]}
      mpeg2: {p: 0.15, q: [3, 14]}                            # DVD-like
      p_chroma420: 1.0   # share of the clips without a codec that still get 4:2:0
      variants: 3        # pre-degraded versions of each real-video shot (cached)
      seed: 0            # seeds those variants (not the run's seed: runs share the cache)
      photo_jpeg: [15, 80]   # photos: JPEG quality standing in for the codec
      photos: true       # false: photo batches stay clean

The codec probabilities must sum to at most 1; the rest of the clips are not compressed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from vsvsr.training.degrade_spec import (
    KERNELS,
    PRESETS,
    BlurSpec,
    CodecSpec,
    DegradeSpec,
    NoiseSpec,
)

FAST_PRESETS = ("veryfast", "faster", "fast", "medium")
#: Upper bound of :attr:`DegradeConfig.variants` (the start-up encode grows linearly with it).
MAX_VARIANTS = 8


def _check_p(owner: str, name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{owner}: {name} is a probability in [0, 1], got {p}")


def _check_range(owner: str, name: str, rng: tuple[float, float], lo: float, hi: float) -> None:
    if len(rng) != 2 or not lo <= rng[0] <= rng[1] <= hi:
        raise ValueError(f"{owner}: {name} must be [low, high] with {lo} <= low <= high <= {hi}, "
                         f"got {list(rng)}")


def _round(x: float, bounds: tuple[float, float]) -> float:
    """``x`` to 0.01, kept inside ``bounds``."""
    return float(min(max(round(float(x), 2), bounds[0]), bounds[1]))


def _pair(value: Any) -> tuple[float, float]:
    vals = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    return vals  # type: ignore[return-value]


@dataclass(kw_only=True, frozen=True)
class BlurRange:
    """Gaussian blur before the downscale, sigma uniform in ``sigma`` (LR px)."""

    p: float = 0.5
    sigma: tuple[float, float] = (0.2, 0.8)
    p_anisotropic: float = 0.3  #: share of blurs with a second sigma and a random angle

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", tuple(float(v) for v in _pair(self.sigma)))
        _check_p("BlurRange", "p", self.p)
        _check_p("BlurRange", "p_anisotropic", self.p_anisotropic)
        _check_range("BlurRange", "sigma", self.sigma, 1e-3, 20.0)


@dataclass(kw_only=True, frozen=True)
class NoiseRange:
    """Gaussian noise on the LR, sigma uniform in ``sigma`` (8-bit levels)."""

    p: float = 0.4
    sigma: tuple[float, float] = (1.0, 6.0)
    p_gray: float = 0.4  #: share of noisy clips whose noise is the same in R, G and B

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", tuple(float(v) for v in _pair(self.sigma)))
        _check_p("NoiseRange", "p", self.p)
        _check_p("NoiseRange", "p_gray", self.p_gray)
        _check_range("NoiseRange", "sigma", self.sigma, 1e-3, 64.0)


@dataclass(kw_only=True, frozen=True)
class CrfRange:
    """H.264 or H.265: CRF uniform (integers) in ``crf``, preset uniform from ``presets``."""

    p: float = 0.0
    crf: tuple[int, int] = (20, 33)
    presets: tuple[str, ...] = FAST_PRESETS

    def __post_init__(self) -> None:
        object.__setattr__(self, "crf", tuple(int(v) for v in _pair(self.crf)))
        object.__setattr__(self, "presets", tuple(str(v) for v in self.presets))
        _check_p("CrfRange", "p", self.p)
        _check_range("CrfRange", "crf", self.crf, 0, 51)
        bad = [x for x in self.presets if x not in PRESETS]
        if bad or not self.presets:
            raise ValueError(f"CrfRange: presets must be a non-empty list of "
                             f"{', '.join(PRESETS)}; got {list(self.presets)}")


@dataclass(kw_only=True, frozen=True)
class Mpeg2Range:
    """MPEG-2 at a fixed quantiser uniform (integers) in ``q``: DVD/TV-like blocking."""

    p: float = 0.15
    q: tuple[int, int] = (3, 14)

    def __post_init__(self) -> None:
        object.__setattr__(self, "q", tuple(int(v) for v in _pair(self.q)))
        _check_p("Mpeg2Range", "p", self.p)
        _check_range("Mpeg2Range", "q", self.q, 1, 31)


@dataclass(kw_only=True, frozen=True)
class DegradeConfig:
    """The ranges the training degradations are drawn from (one spec per clip)."""

    blur: BlurRange = field(default_factory=BlurRange)
    kernels: tuple[str, ...] = KERNELS  #: downscale kernel, uniform
    noise: NoiseRange = field(default_factory=NoiseRange)
    h264: CrfRange = field(default_factory=lambda: CrfRange(p=0.45, crf=(20, 33)))
    h265: CrfRange = field(default_factory=lambda: CrfRange(p=0.3, crf=(22, 35)))
    mpeg2: Mpeg2Range = field(default_factory=Mpeg2Range)
    p_chroma420: float = 1.0  #: clips without a codec that still get the 4:2:0 round trip
    # -- how training applies them (training/degrade_video.py, degrade_photo.py) ---------------
    #: degraded versions of each real-video shot, made once (whole shot, real codec) and cached
    variants: int = 3
    #: seeds the variants' specs and noise; independent of the run's seed, so runs share the cache
    seed: int = 0
    #: photo pseudo-videos are degraded per batch in-process (blur, kernel, noise as drawn), with
    #: a JPEG 4:2:0 round trip at a quality uniform in this range standing in for the codec
    #: (15-80 spans the Y-PSNR of H.264 CRF 20-33 on 320x180 frames; docs/real-world.md)
    photo_jpeg: tuple[int, int] = (15, 80)
    photos: bool = True  #: False: photo batches keep the clean LR

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernels", tuple(str(k) for k in self.kernels))
        object.__setattr__(self, "photo_jpeg", tuple(int(v) for v in _pair(self.photo_jpeg)))
        _check_range("DegradeConfig", "photo_jpeg", self.photo_jpeg, 1, 100)
        if not 1 <= self.variants <= MAX_VARIANTS:
            raise ValueError(f"DegradeConfig: variants must be in 1..{MAX_VARIANTS} (each costs "
                             f"a full encode of every training shot), got {self.variants}")
        if not isinstance(self.photos, bool):
            raise ValueError(f"DegradeConfig: photos is true or false, got {self.photos!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"DegradeConfig: seed must be an integer >= 0, got {self.seed!r}")
        bad = [k for k in self.kernels if k not in KERNELS]
        if bad or not self.kernels:
            raise ValueError(f"DegradeConfig: kernels must be a non-empty list of "
                             f"{', '.join(KERNELS)}; got {list(self.kernels)}")
        _check_p("DegradeConfig", "p_chroma420", self.p_chroma420)
        total = self.h264.p + self.h265.p + self.mpeg2.p
        if total > 1.0 + 1e-9:
            raise ValueError(f"DegradeConfig: the codec probabilities h264.p + h265.p + mpeg2.p "
                             f"sum to {total:.3f}; they must sum to at most 1")

    def sample(self, rng: np.random.Generator) -> DegradeSpec:
        """One clip's spec. The draws are made in a fixed order, so a seed fixes the spec;
        values are rounded (sigmas to 0.01, angles to 1 degree) so specs print short."""
        u = rng.random(8)  # every decision's uniform, drawn up front: the order never shifts
        blur = None
        if u[0] < self.blur.p:
            s = _round(rng.uniform(*self.blur.sigma), self.blur.sigma)
            if u[1] < self.blur.p_anisotropic:
                blur = BlurSpec(sigma=s, sigma_y=_round(rng.uniform(*self.blur.sigma),
                                                        self.blur.sigma),
                                angle=float(round(rng.uniform(0.0, 180.0))))
            else:
                blur = BlurSpec(sigma=s)
        kernel = self.kernels[int(u[2] * len(self.kernels))]
        noise = None
        if u[3] < self.noise.p:
            noise = NoiseSpec(sigma=_round(rng.uniform(*self.noise.sigma), self.noise.sigma),
                              gray=bool(u[4] < self.noise.p_gray))
        codec = None
        pick = u[5]
        if pick < self.h264.p:
            codec = self._crf(rng, "h264", self.h264)
        elif pick < self.h264.p + self.h265.p:
            codec = self._crf(rng, "h265", self.h265)
        elif pick < self.h264.p + self.h265.p + self.mpeg2.p:
            codec = CodecSpec(codec="mpeg2", q=int(rng.integers(self.mpeg2.q[0],
                                                                 self.mpeg2.q[1] + 1)))
        chroma = codec is not None or bool(u[6] < self.p_chroma420)
        return DegradeSpec(blur=blur, kernel=kernel, noise=noise, codec=codec, chroma420=chroma)

    @staticmethod
    def _crf(rng: np.random.Generator, name: str, r: CrfRange) -> CodecSpec:
        crf = int(rng.integers(r.crf[0], r.crf[1] + 1))
        preset = r.presets[int(rng.integers(len(r.presets)))]
        return CodecSpec(codec=name, crf=crf, preset=preset)

    def to_dict(self) -> dict[str, Any]:
        """Plain types (lists, not tuples), for YAML and ``torch.load(weights_only=True)``."""
        def plain(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v

        return plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DegradeConfig:
        """Read a (partial) mapping; unknown keys are an error naming them."""
        data = dict(data or {})
        parts = {"blur": BlurRange, "noise": NoiseRange, "h264": CrfRange, "h265": CrfRange,
                 "mpeg2": Mpeg2Range}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"DegradeConfig: unknown settings {sorted(unknown)}; known: "
                             f"{sorted(f.name for f in fields(cls))}")
        for key, kind in parts.items():
            if key not in data:
                continue
            sub = data[key]
            if not isinstance(sub, dict):
                raise ValueError(f"DegradeConfig: {key} must be a mapping, got {sub!r}")
            known = {f.name for f in fields(kind)}
            bad = set(sub) - known
            if bad:
                raise ValueError(f"DegradeConfig: unknown {key} settings {sorted(bad)}; known: "
                                 f"{sorted(known)}")
            defaults = getattr(cls(), key)
            data[key] = kind(**{**asdict(defaults), **sub})
        return cls(**data)
