"""Overfit packs with random-weight models, and an independent reference for the filter."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def random_stateless_onnx(scale: int, seed: int, *, std: float = 0.05,
                          arch: str = "espcn") -> tuple[bytes, int, dict]:
    """A small random-weight stateless model (residual head non-zero) as ONNX bytes."""
    import torch

    from vsvsr.models.descriptor import ModelDescriptor
    from vsvsr.nets.arch_registry import build_net
    from vsvsr.stdo.export import count_params, export_stateless

    torch.manual_seed(seed)
    cfg = {"scale": scale, "width1": 8, "width2": 8} if arch == "espcn" else \
        {"scale": scale, "width": 4, "blocks": 1, "expand": 2}
    net = build_net(arch, cfg)
    torch.nn.init.normal_(net.to_residual.weight, std=std)
    desc = ModelDescriptor(name=f"rand{seed}", arch=arch, scale=scale, recurrent=False,
                           config=net.config.to_dict())
    return export_stateless(net, desc), count_params(net), net.config.to_dict()


def make_pack(path: Path, *, frames: int, lr_size: tuple[int, int], scale: int = 2,
              models: int = 3, grid: tuple[int, int] = (4, 3), seed: int = 0,
              method: str = "stdo", arch: str = "espcn") -> Path:
    """A pack of ``models`` random models with random per-patch labels."""
    from vsvsr.nets.arch_registry import arch_config
    from vsvsr.stdo.pack import Pack, PackModel, write_pack

    rng = np.random.default_rng(seed)
    ms = []
    for i in range(models):
        onnx, params, cfg = random_stateless_onnx(scale, seed * 100 + i, arch=arch)
        ms.append(PackModel(name=f"m{i}", arch=arch, config=cfg, params=params, onnx=onnx))
    labels = rng.integers(0, models, (frames, grid[1], grid[0])).astype(np.uint8)
    radius = arch_config(arch, {"scale": scale}).receptive_radius
    pack = Pack(scale=scale, lr_size=lr_size, frames=frames, grid=grid, method=method,
                backbone=arch, receptive_radius=radius, models=tuple(ms), labels=labels,
                source_sha256="0" * 64, training={"test": True})
    return write_pack(pack, path)


def reference_frames(pack_path: Path, lr_frames: list[np.ndarray]) -> list[np.ndarray]:
    """Every model on every whole frame, then ``np.choose`` by the per-pixel label map.

    Written independently of :class:`vsvsr.stdo.runner.PackRunner`; clamped like the
    filter's RGBS output. ``lr_frames`` are (3, h, w) float32.
    """
    import onnxruntime as ort

    from vsvsr.stdo.grid import PatchGrid
    from vsvsr.stdo.pack import read_pack

    pack = read_pack(pack_path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sessions = [ort.InferenceSession(m.onnx, opts, providers=["CPUExecutionProvider"])
                for m in pack.models]
    grid = PatchGrid(*pack.lr_size, *pack.grid)
    out = []
    for n, f in enumerate(lr_frames):
        outs = [s.run(None, {"lr": f[None]})[0][0] for s in sessions]
        pixel = grid.pixel_map(pack.labels[n], pack.scale)
        out.append(np.clip(np.choose(pixel[None], outs), 0, 1))
    return out
