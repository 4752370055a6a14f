"""What identifies a TensorRT engine: the build options and the full engine key.

A serialized TensorRT plan runs only with the TensorRT version that built it and on the GPU
architecture it was built for, and its speed depends on the shapes and precision it was built
with. So an engine is named and found by everything that went into it: the model's hash, the
input shapes, precision, optimization level, hardware compatibility, TensorRT version, GPU
name, compute capability and driver. Two builds with the same key give interchangeable engines.
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
#: engines of an older build procedure are not silently reused.
BUILD_VERSION = 1

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
    gpu_name: str
    compute_capability: str
    driver: str
    build_version: int = BUILD_VERSION

    @classmethod
    def make(cls, *, descriptor: ModelDescriptor, model_sha256: str,
             profile: tuple[tuple[int, int], tuple[int, int], tuple[int, int]],
             options: BuildOptions, trt_version: str, gpu: GpuInfo) -> EngineKey:
        """The key of the engine for ``descriptor``'s model at one (min, opt, max) LR size."""
        lo, opt, hi = (model_input_shapes(descriptor, s) for s in profile)
        return cls(model_name=descriptor.name, model_sha256=model_sha256,
                   profile={n: [list(lo[n]), list(opt[n]), list(hi[n])] for n in lo},
                   precision=options.precision, opt_level=options.opt_level,
                   hw_compat=options.hw_compat, strongly_typed=trt_major(trt_version) >= 11,
                   trt_version=trt_version, gpu_name=gpu.name,
                   compute_capability=gpu.compute_capability, driver=gpu.driver)

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
        sm = "sm" + self.compute_capability.replace(".", "")
        return (f"{name}_{self.size_label}_{self.precision}_trt{self.trt_version}_{sm}_"
                f"{self.digest[:12]}")

    def mismatches(self, other: EngineKey) -> list[str]:
        """What differs between this key (an engine's) and ``other`` (what is wanted here)."""
        labels = {"model_sha256": "model weights (SHA-256)", "profile": "input shapes",
                  "trt_version": "TensorRT version", "gpu_name": "GPU",
                  "compute_capability": "compute capability", "driver": "NVIDIA driver",
                  "build_version": "vsvsr build procedure", "strongly_typed": "strong typing",
                  "opt_level": "optimization level", "hw_compat": "hardware compatibility"}
        mine, theirs = self.to_dict(), other.to_dict()
        out = []
        for k in mine:
            if mine[k] != theirs[k]:
                a, b = mine[k], theirs[k]
                if k == "profile":
                    a, b = _profile_text(self), _profile_text(other)
                elif k == "model_sha256":
                    a, b = str(a)[:12], str(b)[:12]
                out.append(f"{labels.get(k, k.replace('_', ' '))}: engine {a}, wanted {b}")
        return out


def _profile_text(key: EngineKey) -> str:
    lo, opt, hi = key.lr_sizes
    return f"{lo[0]}x{lo[1]}" if lo == hi else f"{lo[0]}x{lo[1]}..{hi[0]}x{hi[1]} (opt {opt[0]}x{opt[1]})"


def trt_major(version: str) -> int:
    """``"10.3.0.26"`` -> 10."""
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0
