"""``vsvsr overfit`` as a Python API: HR video in, ``.vsvsr`` pack out (needs PyTorch).

Steps: load and degrade the HR video (:mod:`source`); score every LR patch with the general
model (:mod:`scoring`); label the patches (:mod:`chunking`); train the models
(:mod:`train`); export them to ONNX and write the pack (:mod:`pack`). ``evaluate=True`` then
plays the pack back through the filter's own runner (ONNX Runtime) and measures full-frame
Y-PSNR, seams included, next to bicubic.

Methods (one tool, so baselines get the same backbone, data and budget):

* ``stdo``: one model per PSNR quantile chunk (``chunks`` models);
* ``jstdo``: one model on all of chunk 0, none of the last chunk and ``fractions`` between;
* ``time``: time division, one model per run of ``frames / chunks`` frames (NAS, CaFM);
* ``general``: the general model alone (no training).

Intermediate results live in a work folder (default ``OUT.work/``): the patch scores and one
checkpoint per model, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.nets.arch_registry import arch_config, build_net
from vsvsr.stdo import chunking
from vsvsr.stdo.export import count_params, export_stateless
from vsvsr.stdo.general import load_general, shipped_path
from vsvsr.stdo.grid import PatchGrid
from vsvsr.stdo.pack import METHODS, Pack, PackError, PackModel, label_bytes_per_frame, write_pack
from vsvsr.stdo.scoring import frame_y_psnr, patch_psnr, to_uint8
from vsvsr.stdo.source import OverfitSource, load_source
from vsvsr.stdo.train import PatchData, TrainSettings, train_patches, use_threads
from vsvsr.training.precision import autocast, memory_format, resolve_precision
from vsvsr.utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class OverfitReport:
    """What one ``overfit`` call made and measured."""

    pack: str
    method: str
    models: int
    model_bytes: int
    params_per_model: int
    label_bytes_per_frame: float
    train_seconds: float
    frames: int
    lr_size: tuple[int, int]
    scale: int
    grid: tuple[int, int]
    per_model: list[dict[str, Any]] = field(default_factory=list)
    precision: str = "fp32"  #: what scoring and training ran in (bf16 or fp32)
    #: Filled by evaluate=True: mean full-frame Y-PSNR of the pack / bicubic / per frame.
    psnr: float | None = None
    bicubic_psnr: float | None = None
    psnr_per_frame: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _infer_all(net: torch.nn.Module, lr: list[np.ndarray], precision: str = "fp32") -> \
        list[np.ndarray]:
    """The uint8 SR frame of every uint8 LR frame; ``precision`` a resolved one (bf16/fp32)."""
    fmt = memory_format(precision)
    net.to(memory_format=fmt)
    out = []
    try:
        with torch.inference_mode(), autocast(precision):
            for f in lr:
                x = torch.from_numpy(f).permute(2, 0, 1)[None].float().div_(255.0)
                sr = net(x.contiguous(memory_format=fmt))[0].float().contiguous()
                out.append(to_uint8(sr.numpy()))
    finally:
        net.to(memory_format=torch.contiguous_format)
    return out


def score_patches(net: torch.nn.Module, src: OverfitSource, grid: PatchGrid,
                  precision: str = "fp32") -> np.ndarray:
    """(frames, rows, cols) Y-PSNR of the general model's full-frame output, per HR patch
    (``precision``: bf16 or fp32; bf16 moves a patch's score by ~0.01 dB, docs/stdo.md)."""
    sr = _infer_all(net, src.lr, precision)
    return np.stack([patch_psnr(s, h, grid, src.scale) for s, h in zip(sr, src.hr, strict=True)])


def _patch_list(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).astype(np.int64)  # (M, 3): frame, row, col


def _check_work(work: Path, key: dict[str, Any]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    f = work / "settings.json"
    text = json.dumps(key, sort_keys=True, indent=1)
    if f.is_file():
        if json.loads(f.read_text()) != json.loads(text):
            raise PackError(f"vsvsr overfit: work folder {work} belongs to a run with other "
                            "settings; delete it or pass another --work folder")
    else:
        atomic_write_bytes(f, text.encode())


def overfit(source: str | os.PathLike[str] | Sequence[np.ndarray], *, scale: int,
            out: str | os.PathLike[str], method: str = "stdo", chunks: int = 4,
            backbone: str = "espcn", grid: tuple[int, int] | None = None,
            fractions: tuple[float, ...] | None = None,
            general: str | os.PathLike[str] | None = None,
            settings: TrainSettings | None = None, work: str | os.PathLike[str] | None = None,
            max_frames: int | None = None, evaluate: bool = False,
            progress: bool = True) -> OverfitReport:
    """Make an overfit pack for one video; see the module docstring."""
    if method not in METHODS:
        raise PackError(f"vsvsr overfit: unknown method {method!r}; one of {', '.join(METHODS)}")
    settings = settings or TrainSettings()
    use_threads(settings.threads)
    precision = resolve_precision(settings.precision)
    log.info("vsvsr overfit: scoring and training in %s", precision)
    out = Path(out)
    work_dir = Path(work) if work is not None else out.with_name(out.name + ".work")
    src = load_source(source, scale, max_frames=max_frames)
    w, h = src.lr_size
    g = PatchGrid(w, h, *grid) if grid else PatchGrid.default(w, h, scale)
    # scoring needs some general model: the backbone's own if shipped, else the ESPCN one
    gnet, gdesc, gpath = load_general(
        general, backbone if shipped_path(backbone, scale).is_file() else "espcn", scale)
    k = 1 if method == "general" else chunks
    if method == "jstdo":
        fractions = chunking.check_fractions(tuple(fractions), k) if fractions \
            else chunking.default_fractions(k)
    key = {"source_sha256": src.sha256(), "scale": scale, "method": method, "chunks": k,
           "backbone": backbone, "grid": [g.cols, g.rows], "fractions": fractions,
           "general": str(gpath), "settings": {
               k: v for k, v in settings.to_dict().items() if k != "precision"}
           | {"threads": None, "checkpoint_seconds": None}}
    _check_work(work_dir, key)
    scores_file = work_dir / "scores.npy"
    if scores_file.is_file():
        psnr = np.load(scores_file)
    else:
        t0 = time.monotonic()
        psnr = score_patches(gnet, src, g, precision)
        np.save(scores_file, psnr)
        log.info("scored %d patches in %.1f s", psnr.size, time.monotonic() - t0)

    # -- labels and each model's training patches --------------------------------------------
    if method == "stdo":
        labels = chunking.quantile_chunks(psnr, k)
        train_sets = [labels == i for i in range(k)]
    elif method == "jstdo":
        chunk_labels = chunking.quantile_chunks(psnr, k)
        train_sets = [chunking.jstdo_selection(chunk_labels, fractions, settings.seed)]
        labels = np.zeros_like(chunk_labels)
    elif method == "time":
        seg = chunking.time_segments(src.frames, k)
        labels = np.broadcast_to(seg[:, None, None], psnr.shape).astype(np.uint8)
        train_sets = [labels == i for i in range(k)]
    else:
        labels = np.zeros(psnr.shape, np.uint8)
        train_sets = []

    # -- training -----------------------------------------------------------------------------
    models: list[PackModel] = []
    per_model: list[dict[str, Any]] = []
    train_seconds = 0.0
    if method == "general":
        if backbone != gdesc.arch:
            raise PackError(f"vsvsr overfit: the general model is {gdesc.arch}, not {backbone}")
        models.append(PackModel(name=gdesc.name, arch=gdesc.arch, config=dict(gdesc.config),
                                params=count_params(gnet), onnx=export_stateless(gnet, gdesc)))
    else:
        margin = build_receptive(backbone, scale)
        data = PatchData(src.lr, src.hr, g, scale, margin)
        for i, mask in enumerate(train_sets):
            torch.manual_seed(settings.seed + i)
            net = build_net(backbone, {"scale": scale})
            if settings.init == "general" and gdesc.arch == backbone:
                net.load_state_dict(gnet.state_dict())
            name = f"{method}-{i}" if len(train_sets) > 1 else method
            res = train_patches(net, data, _patch_list(mask), settings,
                                name=f"{name} ({i + 1}/{len(train_sets)})",
                                checkpoint=work_dir / f"{name}.ckpt", progress=progress)
            train_seconds += res.seconds
            desc = ModelDescriptor(name=name, arch=backbone, scale=scale, recurrent=False,
                                   config=net.config.to_dict(),
                                   training={"patches": res.patches, "steps": res.steps})
            models.append(PackModel(name=name, arch=backbone, config=net.config.to_dict(),
                                    params=count_params(net), onnx=export_stateless(net, desc)))
            per_model.append({**asdict(res), "name": name})
    pack = Pack(scale=scale, lr_size=(w, h), frames=src.frames, grid=(g.cols, g.rows),
                method=method, backbone=backbone, receptive_radius=build_receptive(backbone, scale),
                models=tuple(models), labels=np.ascontiguousarray(labels, np.uint8),
                source_sha256=src.sha256(),
                training={"chunks": k, "fractions": fractions, "general_model": gdesc.name,
                          "settings": settings.to_dict(), "precision": precision,
                          "train_seconds": round(train_seconds, 1),
                          "per_model": per_model, "source": src.name})
    write_pack(pack, out)
    report = OverfitReport(pack=str(out), method=method, models=len(models),
                           model_bytes=pack.model_bytes(), params_per_model=models[0].params,
                           label_bytes_per_frame=label_bytes_per_frame(pack),
                           train_seconds=train_seconds, frames=src.frames, lr_size=(w, h),
                           scale=scale, grid=(g.cols, g.rows), per_model=per_model,
                           precision=precision)
    if evaluate:
        evaluate_pack(pack, src, report, threads=settings.threads)
    return report


def build_receptive(backbone: str, scale: int) -> int:
    return int(arch_config(backbone, {"scale": scale}).receptive_radius)


def evaluate_pack(pack: Pack, src: OverfitSource, report: OverfitReport, *,
                  threads: int = 0) -> OverfitReport:
    """Play ``pack`` back through the filter's runner; full-frame Y-PSNR vs HR and bicubic."""
    import torch.nn.functional as F

    from vsvsr.stdo.runner import PackRunner

    runner = PackRunner(pack, "auto", threads=threads)  # as the filter plays it on this machine
    per, bic = [], []
    for n, (lr, hr) in enumerate(zip(src.lr, src.hr, strict=True)):
        x = np.ascontiguousarray(lr.transpose(2, 0, 1)[None], np.float32) / np.float32(255.0)
        per.append(frame_y_psnr(to_uint8(runner.upscale(x, n)[0]), hr))
        b = F.interpolate(torch.from_numpy(x), scale_factor=pack.scale, mode="bicubic",
                          align_corners=False)
        bic.append(frame_y_psnr(to_uint8(b[0].numpy()), hr))
    report.psnr, report.bicubic_psnr = float(np.mean(per)), float(np.mean(bic))
    report.psnr_per_frame = [round(v, 4) for v in per]
    return report
