"""Turn a training checkpoint (``last.pt``) into a shipped model: ``NAME.onnx`` + ``NAME.pth``.

The descriptor records the architecture, its config and how it was trained (scheme, budget,
data), so a model file always says where it came from. After writing, ONNX Runtime is checked
against PyTorch on random inputs at odd sizes and on real frames with a real state.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plugin_build.export_onnx import check_against_torch, export_model
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)


@dataclass(kw_only=True, frozen=True)
class ExportReport:
    """Where the files went and how closely ONNX Runtime follows PyTorch."""

    onnx: Path
    pth: Path
    max_abs_random: float
    max_abs_real: float


def training_summary(state: Any) -> dict[str, Any]:
    """What a model card needs about the run: plain JSON types only."""
    cfg = state.config
    return {
        "arch": cfg.arch_name,
        "scheme": cfg.scheme,
        "seq_length": cfg.seq_length if cfg.scheme == "pi" else None,
        "reuse": cfg.reuse if cfg.scheme == "pi" else None,
        "p_fresh": cfg.p_fresh if cfg.scheme == "pi" else None,
        "iterations": state.iteration,
        "minutes": round(state.elapsed / 60.0, 2),
        "data": list(cfg.data_dirs) + list(cfg.video_paths),
        "clip_length": cfg.clip_length,
        "batch": cfg.batch,
        "crop_lr": cfg.crop,
        "lr": [cfg.lr, cfg.lr_min],
        "seed": cfg.seed,
        "init_from": cfg.init_from,
        "final_train_psnr": round(state.metrics.get("psnr", float("nan")), 3),
        "final_train_bicubic_psnr": round(state.metrics.get("bicubic_psnr", float("nan")), 3),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def export_checkpoint(checkpoint: str | Path, name: str, out_dir: str | Path, *,
                      real_frames: list[np.ndarray] | None = None) -> ExportReport:
    """Export ``checkpoint`` as model ``name`` into ``out_dir`` and check it.

    Args:
        real_frames: two or more (H, W, 3) float32 RGB frames in [0, 1] (LR size) for the
            real-state check; random frames when omitted.
    """
    torch = lazy_import("torch", "exporting a checkpoint")
    from vsvsr.training.checkpoint import net_from_checkpoint

    net, state = net_from_checkpoint(checkpoint)
    cfg = state.config
    desc = ModelDescriptor(name=name, arch=cfg.arch_name, scale=cfg.scale, recurrent=True,
                           state_channels=cfg.arch.state_channels,
                           step_clamp=cfg.arch.step_clamp, config=cfg.arch.to_dict(),
                           training=training_summary(state))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path, pth_path = export_model(net, desc, out / f"{name}.onnx")
    for shipped in (onnx_path, pth_path):  # atomic temp files are 0600; these get installed
        shipped.chmod(0o644)
    rng = np.random.default_rng(0)
    c, h, w = desc.state_channels, 37, 53  # odd sizes: the dynamic axes must be dynamic
    rand = check_against_torch(
        net, onnx_path, rng.random((1, 3, h, w), np.float32), rng.random((1, 3, h, w), np.float32),
        rng.uniform(-1, 1, (1, c, h, w)).astype(np.float32), 7.0)
    frames = real_frames or [rng.random((h, w, 3), np.float32) for _ in range(3)]
    lrs = [torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1)))[None] for f in frames]
    with torch.no_grad():  # a state the network itself produced
        state_t, prev = net.initial_state(lrs[0]), lrs[0]
        for i, lr in enumerate(lrs[:-1]):
            _, state_t = net(lr, prev, state_t, torch.full((1, 1, 1, 1), float(i)))
            prev = lr
    real = check_against_torch(net, onnx_path, lrs[-1].numpy(), prev.numpy(), state_t.numpy(),
                               float(len(lrs) - 1))
    log.info("exported %s (%s, %s): max |onnx - torch| random %.2e, real %.2e", name,
             cfg.arch_name, cfg.scheme, rand.worst, real.worst)
    return ExportReport(onnx=onnx_path, pth=pth_path, max_abs_random=rand.worst,
                        max_abs_real=real.worst)
