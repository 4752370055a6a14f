#!/usr/bin/env python3
"""Train (or continue) one shipped default model, ``rvsr-x{S}``, and export it.

Writes ``vsvsr/models/weights/rvsr-x{S}.pth`` (descriptor, arch, config, state_dict) and
``rvsr-x{S}.onnx`` (descriptor in its metadata), then checks ONNX Runtime against PyTorch on
random inputs and on a real frame. ``--export-only`` exports the latest checkpoint as it is.

    python scripts/train_default.py --scale 2 --minutes 55        # train/resume, then export
    python scripts/train_default.py --scale 2 --export-only       # export runs/rvsr-x2/last.pt
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(REPO))

from plugin_build.export_onnx import check_against_torch, export_recurrent  # noqa: E402
from vsvsr.models.descriptor import ModelDescriptor  # noqa: E402
from vsvsr.nets.rvsr_arch import RVSRNet  # noqa: E402
from vsvsr.training.__main__ import run_training  # noqa: E402
from vsvsr.training.checkpoint import LAST_NAME, load_checkpoint  # noqa: E402
from vsvsr.training.config import default_config  # noqa: E402
from vsvsr.training.degrade import downscale  # noqa: E402
from vsvsr.utils.atomic import atomic_write  # noqa: E402

log = logging.getLogger("train_default")

WEIGHTS_DIR = REPO / "vsvsr" / "models" / "weights"
REAL_FRAMES = Path("/work/shared/data/real/basicvsrpp_demo_000")


def export(run_dir: Path, weights_dir: Path) -> dict[str, float]:
    """Export ``run_dir/last.pt`` as the default model; returns the check differences."""
    state = load_checkpoint(run_dir / LAST_NAME)
    cfg = state.config
    net = RVSRNet(cfg.arch)
    net.load_state_dict(state.model)
    net.eval()
    name = f"rvsr-x{cfg.scale}"
    training = {
        "iterations": state.iteration,
        "minutes": round(state.elapsed / 60.0, 2),
        "data": list(cfg.data_dirs),
        "data_note": f"photos /{cfg.presize}, synthetic camera motion, antialiased bicubic LR",
        "clip_length": cfg.clip_length,
        "batch": cfg.batch,
        "crop_lr": cfg.crop,
        "lr": [cfg.lr, cfg.lr_min],
        "seed": cfg.seed,
        "final_train_psnr": round(state.metrics.get("psnr", float("nan")), 3),
        "final_train_bicubic_psnr": round(state.metrics.get("bicubic_psnr", float("nan")), 3),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    desc = ModelDescriptor(
        name=name, arch="rvsr", scale=cfg.scale, recurrent=True,
        state_channels=cfg.arch.state_channels, step_clamp=cfg.arch.step_clamp,
        config=cfg.arch.to_dict(), training=training,
    )
    weights_dir.mkdir(parents=True, exist_ok=True)
    pth = weights_dir / f"{name}.pth"
    payload = {"descriptor": desc.to_json(), "arch": "rvsr", "config": cfg.arch.to_dict(),
               "state_dict": {k: v.detach().clone() for k, v in net.state_dict().items()}}
    with atomic_write(pth, "wb") as fh:
        torch.save(payload, fh)
    onnx_path = export_recurrent(net, desc, weights_dir / f"{name}.onnx")
    for shipped in (pth, onnx_path):  # atomic_write's temp files are 0600; these get installed
        shipped.chmod(0o644)
    log.info("wrote %s and %s", pth, onnx_path)
    return check_export(net, onnx_path, cfg.scale)


def check_export(net: RVSRNet, onnx_path: Path, scale: int) -> dict[str, float]:
    """ONNX vs PyTorch on random inputs and on real frames with a real (one-step) state."""
    rng = np.random.default_rng(0)
    c = net.config
    h, w = 37, 53  # odd sizes: the dynamic axes must really be dynamic
    rand = check_against_torch(
        net, onnx_path, rng.random((1, 3, h, w), np.float32), rng.random((1, 3, h, w), np.float32),
        rng.uniform(-1, 1, (1, c.state_channels, h, w)).astype(np.float32), 7.0)
    from PIL import Image

    frames = sorted(REAL_FRAMES.glob("*.png"))[:2]
    lrs = []
    for f in frames:
        arr = np.asarray(Image.open(f).convert("RGB"), np.float32) / 255.0
        hh, ww = (arr.shape[0] // scale) * scale, (arr.shape[1] // scale) * scale
        hr = torch.from_numpy(arr[:hh, :ww].copy()).permute(2, 0, 1)[None]
        lrs.append(downscale(hr, scale))
    with torch.no_grad():
        _, state = net(lrs[0], lrs[0], net.initial_state(lrs[0]), torch.zeros(1, 1, 1, 1))
    real = check_against_torch(net, onnx_path, lrs[1].numpy(), lrs[0].numpy(), state.numpy(), 1.0)
    out = {"random_sr": rand.sr_max_abs, "random_state": rand.state_max_abs,
           "real_sr": real.sr_max_abs, "real_state": real.state_max_abs}
    print(f"{onnx_path.name}: max |onnx - torch|  random: sr {rand.sr_max_abs:.2e} "
          f"state {rand.state_max_abs:.2e}   real frame: sr {real.sr_max_abs:.2e} "
          f"state {real.state_max_abs:.2e}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, required=True, choices=(2, 4))
    p.add_argument("--minutes", type=float, default=55.0, help="total training-time budget")
    p.add_argument("--iters", type=int, default=None, help="total iteration budget (optional)")
    p.add_argument("--run-dir", type=Path, default=None, help="default: runs/rvsr-x{S}")
    p.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--export-only", action="store_true", help="export the latest checkpoint")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    run_dir = args.run_dir or REPO / "runs" / f"rvsr-x{args.scale}"
    if not args.export_only:
        cfg = default_config(args.scale, minutes=args.minutes, iters=args.iters,
                             out_dir=str(run_dir), threads=args.threads)
        _, result = run_training(cfg, resume=True, progress_bar=not args.no_progress)
        if result.stopped_by == "request":
            log.warning("training was interrupted; exporting the checkpoint anyway")
    export(run_dir, args.weights_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
