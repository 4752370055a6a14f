"""The *general* single-frame model: scores the patches and is the baseline to beat.

A general model is an ordinary stateless backbone (ESPCN by default) trained on the project's
photographs, not on the video. Files: ``NAME.pth`` (descriptor, arch, config, weights; the
format of :func:`plugin_build.export_onnx.save_pth`) and ``NAME.onnx`` beside it. The shipped
ones live in ``vsvsr/models/weights/general-<backbone>-x<scale>.{pth,onnx}``.

``python -m vsvsr.stdo.general --scale 4 --minutes 5`` trains one (PyTorch).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vsvsr.errors import ModelFileError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.models.registry import WEIGHTS_DIR
from vsvsr.nets.arch_registry import STATELESS, build_net
from vsvsr.runtime.torch_backend import load_checkpoint
from vsvsr.utils.atomic import atomic_write_bytes
from vsvsr.utils.shared_data import shared_data_dir

log = logging.getLogger(__name__)


def default_data() -> Path:
    """The shared training photographs, or an error saying what to pass when there are none."""
    return shared_data_dir("train_images", what="the general model's training",
                           instead="--data DIR (a folder of photos)")


#: Linear learning-rate warm-up of the general model (Adam's first steps are the largest).
WARMUP_STEPS = 100


def shipped_path(backbone: str, scale: int) -> Path:
    return WEIGHTS_DIR / f"general-{backbone}-x{scale}.pth"


def load_general(path: str | os.PathLike[str] | None, backbone: str,
                 scale: int) -> tuple[torch.nn.Module, ModelDescriptor, Path]:
    """The general model at ``path`` (default: the shipped one for ``backbone`` and ``scale``)."""
    p = Path(path) if path is not None else shipped_path(backbone, scale)
    if not p.is_file():
        raise ModelFileError(
            f"vsvsr overfit: no general x{scale} model at {p}; train one with 'python -m "
            f"vsvsr.stdo.general --scale {scale} --backbone {backbone}' or pass --general FILE")
    try:
        data = load_checkpoint(p)  # a damaged file gets a clear ModelFileError
        desc = ModelDescriptor.from_json(data["descriptor"], source=str(p))
        net = build_net(data["arch"], dict(data["config"]))
        net.load_state_dict(data["state_dict"])
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{p}: not a readable general model ({exc})") from exc
    if data["arch"] not in STATELESS:
        raise ModelFileError(f"{p}: a general model must be stateless ({', '.join(STATELESS)}), "
                             f"not {data['arch']!r}")
    if desc.scale != scale:
        raise ModelFileError(f"{p} is a x{desc.scale} model; the pack is x{scale}")
    return net.eval(), desc, p


def save_general(net: torch.nn.Module, desc: ModelDescriptor, pth: Path) -> tuple[Path, Path]:
    """Write ``pth`` and the ONNX beside it."""
    from plugin_build.export_onnx import save_pth
    from vsvsr.stdo.export import export_stateless

    save_pth(net, desc, pth)
    onnx = pth.with_suffix(".onnx")
    atomic_write_bytes(onnx, export_stateless(net, desc))
    return pth, onnx


def train_general(*, scale: int, backbone: str = "espcn", data: list[Path] | None = None,
                  minutes: float = 5.0, steps: int | None = None, batch: int = 16,
                  crop: int = 32, presize: int = 2, lr: float = 1e-3, seed: int = 0,
                  threads: int = 0, photos: list[torch.Tensor] | None = None,
                  progress: bool = True) -> tuple[torch.nn.Module, ModelDescriptor]:
    """Train a general model on random crops of photos (L1, Adam, cosine over the budget).

    LR crops are made with the project's resize (:func:`vsvsr.training.degrade.downscale`) and
    rounded to 8 bits, as the overfit pipeline's LR frames are.
    """
    from tqdm import tqdm

    from vsvsr.training.degrade import downscale
    from vsvsr.training.sequences import load_photos

    torch.set_num_threads(threads or os.cpu_count() or 1)
    if photos is None:
        photos = load_photos(data or [default_data()], presize)
    torch.manual_seed(seed)
    net = build_net(backbone, {"scale": scale})
    # a zero head (exact bicubic) lets only the head learn at first; a tiny random one lets
    # every layer learn from step 1 (measured: ~2x lower L1 gain after 300 steps)
    torch.nn.init.normal_(net.to_residual.weight, std=1e-3)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = np.random.default_rng(seed)
    hr_size = crop * scale
    photos = [p for p in photos if min(p.shape[1:]) >= hr_size]
    budget = minutes * 60.0
    start, step = time.monotonic(), 0
    bar = tqdm(total=steps, disable=not progress, desc=f"general-{backbone}-x{scale}", unit="it",
               mininterval=0.5 if sys.stderr.isatty() else 30.0)
    while True:
        p = (time.monotonic() - start) / budget if steps is None else step / steps
        if p >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = (1e-6 + 0.5 * (lr - 1e-6) * (1 + math.cos(math.pi * p))) \
                * min(1.0, (step + 1) / WARMUP_STEPS)
        hr = []
        for _ in range(batch):
            img = photos[int(gen.integers(len(photos)))]
            y = int(gen.integers(img.shape[1] - hr_size + 1))
            x = int(gen.integers(img.shape[2] - hr_size + 1))
            hr.append(img[:, y:y + hr_size, x:x + hr_size])
        hr_t = torch.stack(hr).float().div_(255.0)
        lr_t = downscale(hr_t, scale).mul(255.0).round_().div_(255.0)
        loss = F.l1_loss(net(lr_t), hr_t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix_str(f"loss={loss.item():.4f}", refresh=False)
    bar.close()
    net.eval()
    cfg = net.config.to_dict()
    desc = ModelDescriptor(
        name=f"general-{backbone}-x{scale}", arch=backbone, scale=scale, recurrent=False,
        config=cfg, training={"steps": step, "seconds": round(time.monotonic() - start, 1),
                              "batch": batch, "crop": crop, "presize": presize, "lr": lr,
                              "data": [str(d) for d in (data or [default_data()])]})
    return net, desc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsvsr.stdo.general",
                                 description="Train a general single-frame model on photos.")
    ap.add_argument("--scale", type=int, required=True, choices=(2, 3, 4))
    ap.add_argument("--backbone", default="espcn", choices=STATELESS)
    ap.add_argument("--data", type=Path, action="append", help="photo folder(s)")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path, help="NAME.pth (default: the shipped path)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    net, desc = train_general(scale=args.scale, backbone=args.backbone, data=args.data,
                              minutes=args.minutes, steps=args.steps, threads=args.threads)
    out = args.out or shipped_path(args.backbone, args.scale)
    pth, onnx = save_general(net, desc, out)
    print(json.dumps({"pth": str(pth), "onnx": str(onnx), **desc.training}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
