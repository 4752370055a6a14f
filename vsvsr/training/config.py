"""Frozen training settings: one :class:`TrainConfig` per experiment, stored in each checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vsvsr.nets.arch_registry import ARCHS, arch_config, arch_name
from vsvsr.nets.rvsr_arch import RVSRConfig
from vsvsr.nets.rvsrf_arch import RVSRFConfig
from vsvsr.nets.rvsrg_arch import RVSRGConfig
from vsvsr.nets.sfsr_arch import SFSRConfig
from vsvsr.training.degrade_ranges import DegradeConfig
from vsvsr.training.precision import PRECISIONS

#: Any architecture's config dataclass.
ArchConfig = RVSRConfig | RVSRFConfig | RVSRGConfig | SFSRConfig
#: The training schemes: RI-BPTT (every clip starts fresh) and PI-BPTT (stored states).
SCHEMES = ("ri", "pi")

#: The default training photographs, as help texts name them (never the ``real/`` clips).
DEFAULT_DATA_ROOT = "train_images/ of $VSVSR_SHARED_DATA or ../shared/data"


def default_data_root() -> str:
    """The shared training photographs, or an error saying what to pass when there are none."""
    from vsvsr.utils.shared_data import shared_data_dir

    return str(shared_data_dir("train_images", what="vsvsr train",
                               instead="--data DIR (photos) or --video PATH"))


@dataclass(kw_only=True, frozen=True)
class MotionConfig:
    """Synthetic camera motion that turns a still photo into a pseudo-video.

    Rates are per frame. Velocities are in LR pixels so that the sub-pixel structure the network
    can exploit is the same at every scale.
    """

    max_velocity: float = 3.0  #: pan speed bound per axis, LR px/frame
    velocity_jitter: float = 0.15  #: per-frame hand-held wobble (std), LR px
    max_zoom: float = 0.01  #: relative zoom per frame (+-)
    p_zoom: float = 0.4  #: share of clips that zoom
    max_rotation_deg: float = 0.3  #: rotation per frame (+-), degrees
    p_rotation: float = 0.3  #: share of clips that rotate
    p_static_clip: float = 0.1  #: share of clips with no motion at all
    p_static_stretch: float = 0.3  #: share of clips where the camera stops for a while
    max_brightness: float = 0.01  #: relative brightness ramp per frame (+-)
    p_brightness: float = 0.3  #: share of clips with a brightness ramp

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0:
                raise ValueError(f"MotionConfig: {name} must be >= 0, got {value}")
            if name.startswith("p_") and value > 1:
                raise ValueError(f"MotionConfig: {name} is a probability, got {value}")


@dataclass(kw_only=True, frozen=True)
class TemporalConfig:
    """Temporal augmentation of real-video windows (more motion kinds from the same footage)."""

    max_stride: int = 2  #: frame strides drawn from 1..max_stride (stride 2 = twice the motion)
    p_stride: float = 0.3  #: share of windows with a stride above 1
    p_hold: float = 0.1  #: share of windows where the picture freezes for a few frames
    p_reverse: float = 0.5  #: share of windows played backwards

    def __post_init__(self) -> None:
        if self.max_stride < 1:
            raise ValueError(f"TemporalConfig: max_stride must be >= 1, got {self.max_stride}")
        for name in ("p_stride", "p_hold", "p_reverse"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TemporalConfig: {name} is a probability, got "
                                 f"{getattr(self, name)}")


@dataclass(kw_only=True, frozen=True)
class TrainConfig:
    """Everything that defines one training run; the trainer never reads settings elsewhere.

    The learning rate follows one cosine from ``lr`` to ``lr_min`` over the run's progress,
    where progress is the larger of ``iteration / iters`` and ``elapsed / (minutes * 60)``:
    a time-budgeted run therefore ends fully annealed however fast the shared CPU happens to be.
    Both budgets are totals over all resumes of the run.
    """

    # -- model ---------------------------------------------------------------------------------
    arch: ArchConfig = field(default_factory=RVSRConfig)  #: its type picks the architecture
    # -- scheme --------------------------------------------------------------------------------
    scheme: str = "ri"  #: "ri" (fresh zero state per clip) or "pi" (PI-BPTT state bank)
    seq_length: int = 64  #: PI: frames of each training sequence run to fill the bank (N)
    reuse: int = 8  #: PI: clips drawn from one computed state sequence before recomputing (R)
    p_fresh: float = 0.25  #: PI: share of clips that still start from the reset state
    #: PI: batches of sequences in the bank; S > 1 mixes them in every clip batch and
    #: recomputes the oldest every ``reuse`` steps (same compute, decorrelated steps)
    bank_slots: int = 1
    flow_loss: float = 0.1  #: weight of a network's auxiliary loss (the flow net's warp loss)
    #: weight of a supervised flow loss on exact photo translations (end-point error of the
    #: net's flow module, one extra batch of ``flow_batch`` pairs per step; 0: none). Keeps
    #: the flow honest while the SR loss trains the rest (training/flow_pretrain.py)
    flow_supervision: float = 0.0
    flow_batch: int = 8
    # -- data ----------------------------------------------------------------------------------
    data_dirs: tuple[str, ...] = ()  #: folders searched recursively for jpg/png photos
    #: real video: video files, folders of frames, or folders of those (see ``video_source``)
    video_paths: tuple[str, ...] = ()
    video_weight: float = 0.5  #: share of batches drawn from ``video_paths`` when both are given
    #: file or folder names under ``video_paths`` left out: the validation split for choosing runs
    video_exclude: tuple[str, ...] = ()
    video_presize: int | None = None  #: shrink factor of the videos (None: ``presize``)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    presize: int = 2  #: photos are shrunk by this first (the JPEGs are compressed)
    supersample: int = 2  #: warps run at this multiple of HR, then get downscaled (sharp targets)
    motion: MotionConfig = field(default_factory=MotionConfig)
    #: real-world degradation ranges (blur, kernel, noise, codec; training/degrade_ranges.py);
    #: None: the clean training resize only
    degrade: DegradeConfig | None = None
    clip_length: int = 8  #: BPTT length l; the state is zero at every clip start
    batch: int = 4
    crop: int = 32  #: LR crop size in pixels (HR is ``crop * scale``)
    #: start from these weights (a ``last.pt`` or a shipped ``.pth`` model file of the same
    #: architecture): e.g. PI-BPTT
    #: fine-tuning of an RI-trained model; or of the single-frame control ``sfsr`` of the same
    #: width and depth for a recurrent net (a warm start, training/warm_start.py). Only the
    #: weights: optimiser and schedule start anew.
    init_from: str | None = None
    #: pre-trained flow weights (``scripts/pretrain_flow.py``) for the net's flow module,
    #: loaded after ``init_from``
    flow_from: str | None = None
    #: learning-rate factor of the weights a warm start copied from the control (the trunk
    #: is trained, the new parts are not: they learn at the full rate)
    warm_lr_scale: float = 1.0
    #: a committed slim checkpoint of *this* run (``vsvsr train --slim``): continued when
    #: ``out_dir`` holds no checkpoint yet, so each session adds to the same run
    continue_from: str | None = None
    # -- optimisation --------------------------------------------------------------------------
    lr: float = 1e-3
    lr_min: float = 1e-5
    #: linear warm-up steps: full-size Adam steps on a fresh ReLU net can kill the head's units
    #: for good (seen at x4: the residual stayed at zero, the net stuck at bicubic)
    warmup_iters: int = 0
    iters: int | None = None  #: total iteration budget (None: time budget only)
    minutes: float | None = None  #: total training-time budget (None: iteration budget only)
    charbonnier_eps: float = 1e-3
    grad_clip: float = 1.0  #: max gradient norm; 0 disables
    #: keep an exponential moving average of the weights with this decay (0: none); the EMA is
    #: what evaluation and export use, so a long run can be measured mid-schedule
    ema_decay: float = 0.0
    seed: int = 0
    # -- output and resources ------------------------------------------------------------------
    out_dir: str = "runs/rvsr"
    checkpoint_minutes: float = 5.0  #: wall-time interval between periodic checkpoints
    threads: int = 1  #: torch intra-op threads (the CPU is shared)
    #: "auto" (bf16 autocast + channels_last where the CPU has native bf16, else fp32),
    #: "bf16" (refused without native bf16) or "fp32"; weights and optimizer stay fp32
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.iters is None and self.minutes is None:
            raise ValueError("TrainConfig: give an iteration budget (iters) or a time budget "
                             "(minutes), or both")
        if self.iters is not None and self.iters < 1:
            raise ValueError(f"TrainConfig: iters must be >= 1, got {self.iters}")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"TrainConfig: minutes must be > 0, got {self.minutes}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"TrainConfig: scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if self.scheme == "pi" and self.seq_length < self.clip_length:
            raise ValueError(f"TrainConfig: seq_length {self.seq_length} must be >= clip_length "
                             f"{self.clip_length}")
        if not 0.0 <= self.video_weight <= 1.0:
            raise ValueError(f"TrainConfig: video_weight must be in [0, 1], got {self.video_weight}")
        if (self.reuse < 1 or not 0.0 <= self.p_fresh <= 1.0 or self.flow_loss < 0
                or self.bank_slots < 1):
            raise ValueError("TrainConfig: need reuse >= 1, 0 <= p_fresh <= 1, flow_loss >= 0, "
                             "bank_slots >= 1")
        arch_name(self.arch)  # raises for a config type no architecture has
        if self.video_presize is not None and self.video_presize < 1:
            raise ValueError(f"TrainConfig: video_presize must be >= 1, got {self.video_presize}")
        for name in ("presize", "supersample", "clip_length", "batch", "crop", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig: precision must be one of {PRECISIONS}, got "
                             f"{self.precision!r}")
        if self.flow_supervision < 0 or self.flow_batch < 1:
            raise ValueError("TrainConfig: need flow_supervision >= 0 and flow_batch >= 1")
        if not 0.0 < self.warm_lr_scale <= 1.0:
            raise ValueError(f"TrainConfig: warm_lr_scale must be in (0, 1], got "
                             f"{self.warm_lr_scale}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig: ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.warmup_iters < 0:
            raise ValueError(f"TrainConfig: warmup_iters must be >= 0, got {self.warmup_iters}")
        if not 0 < self.lr_min <= self.lr:
            raise ValueError(f"TrainConfig: need 0 < lr_min <= lr, got {self.lr_min}, {self.lr}")
        if self.charbonnier_eps <= 0 or self.grad_clip < 0 or self.checkpoint_minutes <= 0:
            raise ValueError("TrainConfig: charbonnier_eps and checkpoint_minutes must be > 0, "
                             "grad_clip >= 0")

    @property
    def scale(self) -> int:
        return self.arch.scale

    @property
    def arch_name(self) -> str:
        """The registry name of the architecture (``rvsr``, ``rvsrf``, ``rvsrg``, ``sfsr``)."""
        return arch_name(self.arch)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so checkpoints load with ``torch.load(weights_only=True)``."""
        data = asdict(self)
        data["arch_name"] = self.arch_name
        data["data_dirs"] = list(self.data_dirs)
        data["video_paths"] = list(self.video_paths)
        data["video_exclude"] = list(self.video_exclude)
        data["degrade"] = self.degrade.to_dict() if self.degrade is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`; also reads partial dicts (YAML files): missing fields
        take their defaults, unknown ones are an error naming them."""
        data = dict(data)
        name = data.pop("arch_name", "rvsr")  # checkpoints from before the registry: rvsr
        if name not in ARCHS:
            raise ValueError(f"TrainConfig: unknown arch_name {name!r}; known: {sorted(ARCHS)}")
        data["arch"] = arch_config(name, dict(data.get("arch", {})))
        data["motion"] = MotionConfig(**dict(data.get("motion", {})))
        if data.get("degrade") is not None:
            data["degrade"] = DegradeConfig.from_dict(data["degrade"])
        data["data_dirs"] = tuple(data.get("data_dirs", ()))
        data["video_paths"] = tuple(data.get("video_paths", ()))
        data["video_exclude"] = tuple(data.get("video_exclude", ()))
        data["temporal"] = TemporalConfig(**dict(data.get("temporal", {})))
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"TrainConfig: unknown settings {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a YAML experiment file (the same keys as :meth:`to_dict`, all optional but a
        budget)."""
        from vsvsr.utils.lazy import lazy_import

        yaml = lazy_import("yaml", "YAML training configs")
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"TrainConfig.from_yaml: {path} must hold a mapping of settings")
        return cls.from_dict(data)

    def with_budget(self, *, iters: int | None = None, minutes: float | None = None,
                    **other: object) -> TrainConfig:
        """A copy with a new budget (and any other field), e.g. to extend a resumed run."""
        changes: dict[str, object] = dict(other)
        if iters is not None:
            changes["iters"] = iters
        if minutes is not None:
            changes["minutes"] = minutes
        return replace(self, **changes)
