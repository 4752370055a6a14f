"""Truncated-BPTT training of the vsvsr networks on pseudo-video clips (RI- or PI-BPTT).

Clips come from a clip source (:mod:`vsvsr.training.clips`): fresh starts for the RI-BPTT
baseline, or starts from a bank of stored states for PI-BPTT. Each clip runs through the network's
own recurrent step with the runtime's reset semantics (zero state, previous frame = current,
step 0), so training and inference cannot drift apart. The Charbonnier loss covers all frames of
the clip, plus the network's auxiliary loss (the flow network's warp loss) times ``flow_loss``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vsvsr.errors import NonFiniteError
from vsvsr.nets.arch_registry import build_net
from vsvsr.nets.blocks import charbonnier
from vsvsr.training.checkpoint import (
    LAST_NAME,
    TrainState,
    load_checkpoint,
    load_init_source,
    save_checkpoint,
)
from vsvsr.training.clips import FreshClips, StateBank, unroll
from vsvsr.training.config import TrainConfig
from vsvsr.training.curve import CURVE_NAME, CurveLog
from vsvsr.training.precision import autocast, memory_format, resolve_precision
from vsvsr.training.sequences import SequenceSampler, load_photos

log = logging.getLogger(__name__)

#: Seconds between progress lines in the log (besides the tqdm bar).
LOG_INTERVAL_S = 60.0
#: Weight of a new batch in the running averages shown on the progress bar.
EMA_ALPHA = 0.02


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of [0, 1] tensors (RGB, all pixels)."""
    mse = float(torch.mean((x - y) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline every model must beat: plain bicubic, clamped."""
    up = F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)
    return up.clamp(0.0, 1.0)


@dataclass(kw_only=True, frozen=True)
class StepStats:
    """What one optimisation step measured."""

    loss: float
    psnr: float
    bicubic_psnr: float
    lr: float
    alive: float  #: share of active head units (a dead net sits near 0)
    aux: float  #: the network's auxiliary loss (flow warp loss; 0 without one)
    carried: float  #: share of clip items started from a stored state (PI-BPTT)


@dataclass(kw_only=True, frozen=True)
class TrainResult:
    """How a :meth:`Trainer.fit` call ended."""

    iterations: int
    elapsed: float  #: training seconds, all resumes together
    psnr: float  #: running-average training PSNR (dB)
    bicubic_psnr: float  #: the same for bicubic on the same batches
    stopped_by: str  #: "budget", "max_steps" or "request"
    checkpoint: Path


class Trainer:
    """Owns the network, optimiser, sampler and progress of one run.

    Construction sets torch's intra-op thread count to ``config.threads`` (the CPU is shared)
    and resolves ``config.precision`` (bf16 autocast + channels_last where the CPU has native
    bf16); the weights stay fp32 either way.

    Args:
        config: the run's settings.
        photos: in-memory uint8 photos; loaded from ``config.data_dirs`` when omitted.
        state: a checkpoint to continue from (see :meth:`resume`).
    """

    def __init__(self, config: TrainConfig, *, photos: Sequence[torch.Tensor] | None = None,
                 state: TrainState | None = None) -> None:
        torch.set_num_threads(config.threads)
        self.config = config
        with torch.random.fork_rng():  # reproducible init without touching the global RNG
            torch.manual_seed(config.seed)
            self.net = build_net(config.arch_name, config.arch)
        self.precision = resolve_precision(config.precision)
        self.net.to(memory_format=memory_format(self.precision))
        log.info("training precision: %s", self.precision)
        self.optimizer = torch.optim.Adam(self._param_groups(), lr=config.lr)
        self.sampler = make_sampler(config, photos)
        self.flow_photos = _photos_of(self.sampler) if config.flow_supervision > 0 else None
        if config.flow_supervision > 0 and (not self.flow_photos
                                            or not hasattr(self.net, "flow")):
            raise ValueError("Trainer: flow_supervision needs a network with a flow module "
                             "(rvsrf, rvsrg) and photos (data_dirs) to translate")
        self.flow_generator = torch.Generator().manual_seed(config.seed + 104729)
        self.clips: FreshClips | StateBank = (
            StateBank(self.sampler, clip_length=config.clip_length, reuse=config.reuse,
                      p_fresh=config.p_fresh, seed=config.seed, slots=config.bank_slots)
            if config.scheme == "pi" else FreshClips(self.sampler))
        self.iteration = 0
        self.elapsed = 0.0
        self.curve = CurveLog(Path(config.out_dir) / CURVE_NAME)
        self.metrics: dict[str, float] = {}
        self._stop = False
        # Share of the head's ReLU units that fire: a collapse to ~0 means a dead network
        # stuck at bicubic (what happened at lr 1e-3 without warm-up), so it is logged.
        self._alive: list[float] = []
        self.net.head.register_forward_hook(self._record_alive)
        self.ema: dict[str, torch.Tensor] | None = None
        if state is None and config.init_from:
            init = load_init_source(config.init_from)
            if init.arch_name != config.arch_name:  # a single-frame control: warm start
                from vsvsr.training.warm_start import transfer_single_frame

                transfer_single_frame(self.net, config.arch_name, init.arch_name, init.arch,
                                      init.weights)
            elif init.arch != config.arch:
                from vsvsr.training.grow import can_grow, grow_into

                if not can_grow(init.arch, config.arch):
                    raise ValueError(f"Trainer: init_from {config.init_from} is a {init.arch}, "
                                     f"not the requested {config.arch} (nor a smaller one of "
                                     f"it to grow: only width and blocks may differ)")
                grow_into(self.net, init.arch, init.weights)
                log.info("grown from %s", init.arch)
            else:
                self.net.load_state_dict(init.weights)
            log.info("initialized from %s (%s, iteration %d)", config.init_from,
                     init.arch_name, init.iteration)
        if state is None and config.flow_from:
            from vsvsr.training.flow_pretrain import load_flow_weights

            info = load_flow_weights(self.net, config.flow_from)
            log.info("flow weights from %s (%s)", config.flow_from, info.get("epe_after"))
        if state is not None:
            self.net.load_state_dict(state.model)
            self.optimizer.load_state_dict(state.optimizer)
            sampler_state = dict(state.sampler)
            flow_gen = sampler_state.pop("flow_generator", None)
            if flow_gen is not None:
                self.flow_generator.set_state(flow_gen)
            self.clips.load_state_dict(sampler_state)
            if state.torch_rng is not None:
                torch.set_rng_state(state.torch_rng)
            self.iteration, self.elapsed = state.iteration, state.elapsed
            self.metrics = dict(state.metrics)
            self.ema = state.ema
            log.info("resumed at iteration %d (%.1f min trained)", self.iteration,
                     self.elapsed / 60)

    def _param_groups(self) -> list[dict]:
        """One group, or two on a warm start: the weights copied from the single-frame control
        (trunk: head, body, to_residual) at ``warm_lr_scale`` of the rate, the rest at full."""
        c = self.config
        if c.warm_lr_scale == 1.0:
            return [{"params": list(self.net.parameters()), "scale": 1.0}]
        copied = ("head.", "body.", "to_residual.")
        named = list(self.net.named_parameters())
        return [{"params": [p for n, p in named if n.startswith(copied)],
                 "scale": c.warm_lr_scale},
                {"params": [p for n, p in named if not n.startswith(copied)], "scale": 1.0}]

    @classmethod
    def resume(cls, path: str | Path, *, photos: Sequence[torch.Tensor] | None = None,
               iters: int | None = None, minutes: float | None = None,
               threads: int | None = None) -> Trainer:
        """Continue the run saved at ``path``; new budgets extend (or shorten) the schedule."""
        state = load_checkpoint(path)
        extra = {"threads": threads} if threads is not None else {}
        state.config = state.config.with_budget(iters=iters, minutes=minutes, **extra)
        return cls(state.config, photos=photos, state=state)

    def _record_alive(self, _module: torch.nn.Module, _inputs: object,
                      output: torch.Tensor) -> None:
        if self.net.training:
            self._alive.append(float((output.detach() > 0).float().mean()))

    # -- schedule -----------------------------------------------------------------------------
    def progress(self) -> float:
        """Fraction of the budget used: the larger of the iteration and the time fraction."""
        c = self.config
        p = 0.0
        if c.iters is not None:
            p = max(p, self.iteration / c.iters)
        if c.minutes is not None:
            p = max(p, self.elapsed / (c.minutes * 60.0))
        return p

    def learning_rate(self) -> float:
        """Linear warm-up, then cosine from ``lr`` to ``lr_min`` (a pure function of progress)."""
        c, p = self.config, min(self.progress(), 1.0)
        rate = c.lr_min + 0.5 * (c.lr - c.lr_min) * (1.0 + math.cos(math.pi * p))
        if self.iteration < c.warmup_iters:
            rate *= (self.iteration + 1) / c.warmup_iters
        return rate

    # -- training -----------------------------------------------------------------------------
    def step(self) -> StepStats:
        """One BPTT step on a fresh batch of clips."""
        c = self.config
        t0 = time.monotonic()
        lr_rate = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr_rate * group.get("scale", 1.0)
        self.net.train()
        with autocast(self.precision):
            clip = self.clips.draw(self.net)
            lr, hr = clip.lr, clip.hr
            self._alive.clear()
            sr, aux = unroll(self.net, clip)
        sr, aux = sr.float(), aux.float()  # the loss in fp32 whatever the forward ran in
        loss = charbonnier(sr, hr, c.charbonnier_eps) + c.flow_loss * aux
        if c.flow_supervision > 0:
            loss = loss + c.flow_supervision * self._flow_epe()
        if not torch.isfinite(loss):
            raise NonFiniteError(f"Trainer.step: loss is {float(loss)} at iteration "
                                 f"{self.iteration}; lower lr or grad_clip and resume")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.grad_clip)
        self.optimizer.step()
        self._update_ema()
        with torch.no_grad():
            b, t = lr.shape[:2]
            base = bicubic_upscale(lr.flatten(0, 1), c.scale).unflatten(0, (b, t))
            stats = StepStats(loss=float(loss), psnr=psnr(sr.detach().clamp(0, 1), hr),
                              bicubic_psnr=psnr(base, hr), lr=lr_rate,
                              alive=sum(self._alive) / max(len(self._alive), 1),
                              aux=float(aux), carried=float(clip.carried.float().mean()))
        self.iteration += 1
        self.elapsed += time.monotonic() - t0
        self._update_metrics(stats)
        return stats

    def _flow_epe(self) -> torch.Tensor:
        """End-point error of the net's flow module on a batch of exact photo translations."""
        from vsvsr.training.flow_pretrain import translate_pairs

        c = self.config
        assert self.flow_photos is not None
        cur, prev, target = translate_pairs(self.flow_photos, scale=c.scale, crop=c.crop,
                                            count=c.flow_batch, generator=self.flow_generator,
                                            max_shift=2.0)
        with autocast(self.precision):
            pred = self.net.flow(cur, prev)
        d = pred.float() - target
        return torch.sqrt((d ** 2).sum(1) + 1e-6).mean()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """EMA of every weight and buffer; its decay ramps up so early averages forget the
        random init (``min(decay, (1 + n) / (10 + n))``, as in TensorFlow's EMA)."""
        c = self.config
        if c.ema_decay <= 0:
            return
        live = self.net.state_dict()
        if self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in live.items()}
            return
        d = min(c.ema_decay, (1 + self.iteration) / (10 + self.iteration))
        for k, v in live.items():
            if v.dtype.is_floating_point:
                self.ema[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.ema[k].copy_(v)

    def _update_metrics(self, s: StepStats) -> None:
        for key, value in (("loss", s.loss), ("psnr", s.psnr), ("bicubic_psnr", s.bicubic_psnr),
                           ("alive", s.alive), ("aux", s.aux), ("carried", s.carried)):
            old = self.metrics.get(key)
            self.metrics[key] = value if old is None else old + EMA_ALPHA * (value - old)

    def request_stop(self) -> None:
        """Ask :meth:`fit` to stop after the current step and save (signal-handler safe)."""
        self._stop = True

    def fit(self, *, max_steps: int | None = None, progress_bar: bool = True) -> TrainResult:
        """Train until the budget is spent, ``max_steps`` more steps ran, or a stop request.

        Saves a checkpoint every ``config.checkpoint_minutes`` and always at the end.
        """
        from tqdm import tqdm  # part of the training extra

        c = self.config
        self.curve.keep_until(self.iteration)  # rows past the weights (a crash) go
        tty = sys.stderr.isatty()
        start, p_start, it_start = time.monotonic(), self.progress(), self.iteration
        last_ckpt = last_log = start
        bar = tqdm(total=c.iters, initial=self.iteration, disable=not progress_bar,
                   mininterval=0.5 if tty else 30.0, dynamic_ncols=True, unit="it",
                   desc=f"{c.arch_name}-x{c.scale}-{c.scheme}")
        stopped_by = "budget"
        try:
            while True:
                if self.progress() >= 1.0:
                    stopped_by = "budget"
                    break
                if self._stop:
                    stopped_by = "request"
                    break
                if max_steps is not None and self.iteration - it_start >= max_steps:
                    stopped_by = "max_steps"
                    break
                self.step()
                now = time.monotonic()
                eta = self._eta(now - start, p_start)
                if c.iters is None and self.progress() > 0:  # a time budget: estimate the total
                    bar.total = max(self.iteration, round(self.iteration / self.progress()))
                bar.update(1)
                m = self.metrics
                bar.set_postfix_str(
                    f"loss={m['loss']:.4f} psnr={m['psnr']:.2f} "
                    f"gain={m['psnr'] - m['bicubic_psnr']:+.2f}dB eta={_fmt(eta)}", refresh=False)
                if now - last_log >= LOG_INTERVAL_S:
                    last_log = now
                    rate = (now - start) / max(self.iteration - it_start, 1)
                    log.info(
                        "it %d  %.3f s/it  loss %.4f  psnr %.2f dB (bicubic %.2f, gain %+.2f)  "
                        "alive %.0f%%  aux %.4f  carried %.0f%%  lr %.2e  progress %.1f%%  eta %s",
                        self.iteration, rate, m["loss"], m["psnr"], m["bicubic_psnr"],
                        m["psnr"] - m["bicubic_psnr"], 100 * m["alive"], m["aux"],
                        100 * m["carried"], self.learning_rate(), 100 * self.progress(),
                        _fmt(eta))
                    self.curve.append(
                        iteration=self.iteration, minutes=self.elapsed / 60, loss=m["loss"],
                        psnr=m["psnr"], bicubic_psnr=m["bicubic_psnr"],
                        gain=m["psnr"] - m["bicubic_psnr"], lr=self.learning_rate(),
                        alive=m["alive"])
                if now - last_ckpt >= c.checkpoint_minutes * 60.0:
                    self.save()
                    last_ckpt = time.monotonic()
        finally:
            bar.close()
        path = self.save()
        log.info("stopped (%s) at iteration %d after %.1f training minutes", stopped_by,
                 self.iteration, self.elapsed / 60)
        return TrainResult(iterations=self.iteration, elapsed=self.elapsed,
                           psnr=self.metrics.get("psnr", float("nan")),
                           bicubic_psnr=self.metrics.get("bicubic_psnr", float("nan")),
                           stopped_by=stopped_by, checkpoint=path)

    def _eta(self, wall: float, p_start: float) -> float:
        done = self.progress() - p_start
        return (1.0 - self.progress()) * wall / done if done > 0 else float("inf")

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> TrainState:
        """A snapshot of everything needed to continue exactly where this run is."""
        return TrainState(
            config=self.config, model=self.net.state_dict(),
            optimizer=self.optimizer.state_dict(), iteration=self.iteration,
            elapsed=self.elapsed,
            sampler={**self.clips.state_dict(), "flow_generator": self.flow_generator.get_state()},
            torch_rng=torch.get_rng_state(), metrics=dict(self.metrics), ema=self.ema,
        )

    def checkpoint_path(self) -> Path:
        return Path(self.config.out_dir) / LAST_NAME

    def save(self, path: str | Path | None = None) -> Path:
        """Write the checkpoint atomically (to ``out_dir/last.pt`` by default)."""
        return save_checkpoint(path if path is not None else self.checkpoint_path(), self.state())


def _fmt(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def make_sampler(config: TrainConfig, photos: Sequence[torch.Tensor] | None = None) -> Any:
    """The data sampler: photo pseudo-videos, real video, or a mix of both (``video_weight``).

    With ``config.degrade`` the real videos are pre-degraded once (cached; the time and size
    are logged) and the photos per batch in-process (docs/real-world.md). Its clip length is
    the PI-BPTT sequence length ``N`` or, for RI-BPTT, the clip length ``l``.
    """
    from vsvsr.training.video_source import MixedSampler, VideoClipSampler, cached_sequences

    length = config.seq_length if config.scheme == "pi" else config.clip_length
    common = {"scale": config.scale, "crop": config.crop, "length": length,
              "batch": config.batch, "seed": config.seed}
    samplers, weights = [], []
    if photos is None and config.data_dirs:
        photos = load_photos(config.data_dirs, config.presize)
    if photos:
        samplers.append(SequenceSampler(photos, supersample=config.supersample,
                                        motion=config.motion, degrade=config.degrade, **common))
        weights.append(1.0 - config.video_weight if config.video_paths else 1.0)
    if config.video_paths:
        presize = config.video_presize or config.presize
        seqs = cached_sequences(config.video_paths, presize=presize, exclude=config.video_exclude)
        samplers.append(VideoClipSampler(seqs, temporal=config.temporal, degrade=config.degrade,
                                         workers=config.threads, **common))
        weights.append(config.video_weight if photos else 1.0)
    if not samplers:
        raise ValueError("Trainer: no training data: set data_dirs (photos) and/or video_paths")
    return samplers[0] if len(samplers) == 1 else MixedSampler(samplers, weights,
                                                                seed=config.seed)


def _photos_of(sampler: Any) -> list[torch.Tensor] | None:
    """The photos of the pseudo-video sampler inside ``sampler`` (mixed or not), if any."""
    for s in getattr(sampler, "samplers", [sampler]):
        if isinstance(s, SequenceSampler):
            return s.photos
    return None


def start_or_resume(config: TrainConfig, *, resume: bool,
                    photos: Sequence[torch.Tensor] | None = None) -> Trainer:
    """A trainer for ``config``: continued from ``out_dir/last.pt`` when ``resume`` and it exists.

    On resume the checkpoint's settings win except the budgets and thread count, which come
    from ``config``. Without ``resume`` an existing checkpoint is an error, never overwritten.
    """
    path = Path(config.out_dir) / LAST_NAME
    if not path.is_file() and resume and config.continue_from:
        if Path(config.continue_from).is_file():
            path = Path(config.continue_from)
            log.info("continuing the run from its committed checkpoint %s", path)
        else:  # the run's first session: nothing committed yet
            log.warning("continue_from %s does not exist (yet): starting the run afresh",
                        config.continue_from)
    if path.is_file():
        if not resume:
            raise FileExistsError(f"start_or_resume: {path} exists; pass resume=True (--resume) "
                                  "to continue it, or choose another output folder")
        state = load_checkpoint(path)
        if state.config.scale != config.scale:
            raise ValueError(f"start_or_resume: {path} is a x{state.config.scale} run, not "
                             f"x{config.scale}; choose another output folder")
        if state.config.arch != config.arch:
            log.warning("the checkpoint's architecture %s differs from the requested %s; "
                        "continuing with the checkpoint's", state.config.arch, config.arch)
        # the run goes on writing where it was asked to (a copied run folder, or the out_dir
        # of a run continued from its committed checkpoint), never into the folder it was
        # first started in: a resumed copy once overwrote its original's last.pt
        state.config = state.config.with_budget(iters=config.iters, minutes=config.minutes,
                                                threads=config.threads,
                                                out_dir=config.out_dir)
        trainer = Trainer(state.config, photos=photos, state=state)
        return trainer
    if resume:
        log.info("no checkpoint at %s; starting a new run", path)
    return Trainer(config, photos=photos)
