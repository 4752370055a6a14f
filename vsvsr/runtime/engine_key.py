"""What identifies a TensorRT engine: the build options and the full engine key.

A serialized TensorRT plan runs only with the TensorRT version that built it and on the GPU
architecture it was built for (any Ampere-or-later GPU when built hardware-compatible), and
its speed depends on the shapes and precision it was built with. So an engine is named and
found by what TensorRT ties a plan to: the model's hash, the input profile, precision,
optimization level, strong typing, TensorRT version and the *target* (the compute capability,
or ``ampere-plus`` for a hardware-compatible plan). The GPU's name and the NVIDIA driver are
not in the key (a driver update does not invalidate a plan; a hardware-compatible plan runs on
other GPUs): the manifest records them as information.

At run time an engine *fits* a wanted key (:meth:`EngineKey.fit_problems`) when its profile
contains the clip's size (a dynamic engine serves every size in its range), its target covers
this GPU, and the rest is equal; the optimization level is not required to match.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

from vsvsr.errors import VsvsrError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.runtime.gpu_info import GpuInfo

#: Bumped when the way vsvsr builds engines changes (new flags, another ONNX conversion), so
#: engines of an older build procedure are not silently reused. 2: the key holds the target
#: instead of GPU name, driver and compute capability; 10.12+ builds strongly typed.
BUILD_VERSION = 2
#: Hardware-compatible plans run on every GPU from Ampere (compute capability 8.0) on.
AMPERE_PLUS = "ampere-plus"

PRECISIONS = ("fp16", "fp32", "bf16")
HW_COMPAT = ("none", "ampere-plus", "same-compute-capability")


class BuildOptionsError(VsvsrError, ValueError):
    """Build options that cannot work (unknown precision, a size the model refuses, ...)."""


@dataclass(kw_only=True, frozen=True)
class BuildOptions:
    """How an engine is built; part of its key.

    Sizes are LR ``(width, height)``; each gets its own static engine (the fastest and most
    robust choice). ``dynamic`` builds one engine whose profile spans ``min_size..max_size``
    instead, with ``sizes[0]`` as the optimum.
    """

    # -- what to build -------------------------------------------------------------------------
    sizes: tuple[tuple[int, int], ...] = ((960, 540),)
    dynamic: bool = False
    min_size: tuple[int, int] | None = None
    max_size: tuple[int, int] | None = None
    # -- how -----------------------------------------------------------------------------------
    precision: str = "fp16"  #: "fp16" (default), "fp32" or "bf16"
    opt_level: int = 3  #: TensorRT builder optimization level, 0-5
    workspace_mib: int | None = None  #: workspace pool limit; None lets TensorRT decide
    hw_compat: str = "none"  #: "none", "ampere-plus" or "same-compute-capability"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BuildOptionsError(f"precision must be one of {', '.join(PRECISIONS)}, "
                                    f"got {self.precision!r}")
        if not 0 <= self.opt_level <= 5:
            raise BuildOptionsError(f"opt_level must be 0-5 (TensorRT's builder optimization "
                                    f"level), got {self.opt_level}")
        if self.workspace_mib is not None and self.workspace_mib < 1:
            raise BuildOptionsError(f"workspace must be at least 1 MiB, got {self.workspace_mib}")
        if self.hw_compat not in HW_COMPAT:
            raise BuildOptionsError(f"hw_compat must be one of {', '.join(HW_COMPAT)}, "
                                    f"got {self.hw_compat!r}")
        if not self.sizes:
            raise BuildOptionsError("give at least one size (--size WxH)")
        for w, h in self.sizes:
            if w < 1 or h < 1:
                raise BuildOptionsError(f"bad size {w}x{h}")
        if self.dynamic:
            lo, hi = self.min_size or self.sizes[0], self.max_size or self.sizes[0]
            for w, h in self.sizes:
                if not (lo[0] <= w <= hi[0] and lo[1] <= h <= hi[1]):
                    raise BuildOptionsError(
                        f"size {w}x{h} is outside the dynamic range {lo[0]}x{lo[1]} .. "
                        f"{hi[0]}x{hi[1]}; widen --min-size/--max-size")

    def profiles(self) -> list[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]:
        """One (min, opt, max) LR size triple per engine to build."""
        if self.dynamic:
            lo, hi = self.min_size or self.sizes[0], self.max_size or self.sizes[0]
            return [(lo, self.sizes[0], hi)]
        return [(s, s, s) for s in self.sizes]


def model_input_shapes(descriptor: ModelDescriptor,
                       size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """The input shapes of a vsvsr model at LR ``(width, height)``.

    Recurrent models take ``lr``, ``lr_prev``, ``state`` and ``step``; a stateless model
    (the overfit packs, later) takes ``lr`` alone.
    """
    w, h = size
    if not descriptor.recurrent:
        return {"lr": (1, 3, h, w)}
    return {"lr": (1, 3, h, w), "lr_prev": (1, 3, h, w),
            "state": (1, descriptor.state_channels, h, w), "step": (1, 1, 1, 1)}


@dataclass(kw_only=True, frozen=True)
class EngineKey:
    """Everything an engine depends on. Equal keys mean interchangeable engines."""

    model_name: str
    model_sha256: str  #: SHA-256 of the source ONNX file
    #: Input name -> [min, opt, max] shapes of the one optimization profile.
    profile: dict[str, list[list[int]]] = field(default_factory=dict)
    precision: str
    opt_level: int
    hw_compat: str
    strongly_typed: bool  #: TensorRT 11+: precision comes from the ONNX's own types
    trt_version: str
    #: What the plan runs on: ``sm89`` (this compute capability) or ``ampere-plus``.
    target: str
    build_version: int = BUILD_VERSION

    @classmethod
    def make(cls, *, descriptor: ModelDescriptor, model_sha256: str,
             profile: tuple[tuple[int, int], tuple[int, int], tuple[int, int]],
             options: BuildOptions, trt_version: str, gpu: GpuInfo,
             strongly_typed: bool | None = None) -> EngineKey:
        """The key of the engine for ``descriptor``'s model at one (min, opt, max) LR size.

        ``strongly_typed`` defaults to what vsvsr does for ``trt_version`` (10.12 and later).
        """
        lo, opt, hi = (model_input_shapes(descriptor, s) for s in profile)
        if strongly_typed is None:
            strongly_typed = trt_version_tuple(trt_version) >= (10, 12)
        return cls(model_name=descriptor.name, model_sha256=model_sha256,
                   profile={n: [list(lo[n]), list(opt[n]), list(hi[n])] for n in lo},
                   precision=options.precision, opt_level=options.opt_level,
                   hw_compat=options.hw_compat, strongly_typed=strongly_typed,
                   trt_version=trt_version, target=target_of(options.hw_compat, gpu))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EngineKey:
        return cls(**data)

    @property
    def digest(self) -> str:
        """SHA-256 of the key's canonical JSON."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def lr_sizes(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(min, opt, max) LR (width, height) of the profile."""
        lo, opt, hi = self.profile["lr"]
        return (lo[3], lo[2]), (opt[3], opt[2]), (hi[3], hi[2])

    @property
    def size_label(self) -> str:
        lo, _, hi = self.lr_sizes
        return f"{lo[0]}x{lo[1]}" if lo == hi else f"{lo[0]}x{lo[1]}-{hi[0]}x{hi[1]}"

    def file_stem(self) -> str:
        """``rvsr-x2_960x540_fp16_trt10.3.0_sm89_1a2b3c4d5e6f``: readable, and unique by key."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.model_name)
        return (f"{name}_{self.size_label}_{self.precision}_trt{self.trt_version}_{self.target}_"
                f"{self.digest[:12]}")

    def mismatches(self, other: EngineKey) -> list[str]:
        """Every field that differs between this key (an engine's) and ``other``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [self._difference(k, other) for k in mine if mine[k] != theirs[k]]

    def fit_problems(self, want: EngineKey) -> list[str]:
        """Why this engine cannot serve ``want`` (empty: it can).

        ``want`` is what the runtime needs: a static profile at the clip's size. A dynamic
        engine fits when every input's wanted shape lies in its [min, max]; a target fits when
        equal, or when it is ``ampere-plus`` and ``want`` is a compute capability 8.0+. The
        optimization level and how portability was asked for do not matter.
        """
        out = []
        for k, mine in self.to_dict().items():
            theirs = getattr(want, k)
            if k in ("opt_level", "hw_compat") or mine == theirs:
                continue
            if k == "profile" and _profile_contains(self.profile, want.profile):
                continue
            if k == "target" and mine == AMPERE_PLUS and _cc_of(theirs) >= (8, 0):
                continue
            out.append(self._difference(k, want))
        return out

    def _difference(self, k: str, other: EngineKey) -> str:
        labels = {"model_sha256": "model weights (SHA-256)", "profile": "input shapes",
                  "trt_version": "TensorRT version", "target": "GPU target",
                  "build_version": "vsvsr build procedure", "strongly_typed": "strong typing",
                  "opt_level": "optimization level", "hw_compat": "hardware compatibility"}
        a, b = getattr(self, k), getattr(other, k)
        if k == "profile":
            a, b = _profile_text(self), _profile_text(other)
        elif k == "model_sha256":
            a, b = str(a)[:12], str(b)[:12]
        return f"{labels.get(k, k.replace('_', ' '))}: engine {a}, wanted {b}"


def target_of(hw_compat: str, gpu: GpuInfo) -> str:
    """The key's target for a build with ``hw_compat`` on ``gpu``."""
    return AMPERE_PLUS if hw_compat == "ampere-plus" else gpu.sm


def _cc_of(target: str) -> tuple[int, int]:
    """``sm89`` -> (8, 9); ``sm100`` -> (10, 0); anything else -> (0, 0)."""
    m = re.fullmatch(r"sm(\d+)(\d)", target)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _profile_contains(engine: dict[str, list[list[int]]], want: dict[str, list[list[int]]]) -> bool:
    """Whether every wanted (static) input shape lies within the engine's [min, max]."""
    if set(engine) != set(want):
        return False
    for name, (lo, _, hi) in engine.items():
        shape = want[name][1]
        if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return False
        if want[name][0] != want[name][2]:  # a wanted range must equal the engine's exactly
            return False
    return True


def _profile_text(key: EngineKey) -> str:
    lo, opt, hi = key.lr_sizes
    return f"{lo[0]}x{lo[1]}" if lo == hi else f"{lo[0]}x{lo[1]}..{hi[0]}x{hi[1]} (opt {opt[0]}x{opt[1]})"


def trt_major(version: str) -> int:
    """``"10.3.0.26"`` -> 10."""
    return trt_version_tuple(version)[0]


def trt_version_tuple(version: str) -> tuple[int, int]:
    """``"10.13.0.35"`` -> (10, 13); unparsable parts count as 0."""
    parts = (version.split(".") + ["0", "0"])[:2]
    return tuple(int(p) if p.isdigit() else 0 for p in parts)  # type: ignore[return-value]
