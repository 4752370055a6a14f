#!/usr/bin/env python3
"""Train (or continue) one shipped default model, ``rvsr-x{S}``, and export it.

The recipe is the model's experiment file in ``configs/`` (``--config`` for another). Writes
``vsvsr/models/weights/rvsr-x{S}.pth`` and ``.onnx`` (descriptor with the training summary in
both), then checks ONNX Runtime against PyTorch on random inputs and on real frames.
``--export-only`` exports the run's latest checkpoint as it is.

    python scripts/train_default.py --scale 4                # train/resume, then export
    python scripts/train_default.py --scale 4 --export-only  # export the run's last.pt
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(REPO))

from plugin_build.export_checkpoint import export_checkpoint  # noqa: E402
from vsvsr.training.__main__ import run_training  # noqa: E402
from vsvsr.training.checkpoint import LAST_NAME  # noqa: E402
from vsvsr.training.config import TrainConfig  # noqa: E402
from vsvsr.training.degrade import downscale  # noqa: E402
from vsvsr.utils.shared_data import shared_data_root  # noqa: E402

log = logging.getLogger("train_default")

WEIGHTS_DIR = REPO / "vsvsr" / "models" / "weights"
REAL_CLIP = Path("real") / "basicvsrpp_demo_000"  #: in the shared data, when there is some


def real_lr_frames(scale: int, count: int = 3) -> list[np.ndarray] | None:
    """A few real evaluation frames at LR size, for the export check (None without the data)."""
    from PIL import Image

    root = shared_data_root()
    frames = sorted((root / REAL_CLIP).glob("*.png"))[:count] if root is not None else []
    if len(frames) < 2:
        return None
    out = []
    for f in frames:
        arr = np.asarray(Image.open(f).convert("RGB"), np.float32) / 255.0
        hh, ww = (arr.shape[0] // scale) * scale, (arr.shape[1] // scale) * scale
        hr = torch.from_numpy(arr[:hh, :ww].copy()).permute(2, 0, 1)[None]
        out.append(downscale(hr, scale)[0].permute(1, 2, 0).numpy())
    return out


def export(run_dir: Path, weights_dir: Path, scale: int) -> None:
    """Export ``run_dir/last.pt`` as the default ``rvsr-x{scale}`` and print the check."""
    rep = export_checkpoint(run_dir / LAST_NAME, f"rvsr-x{scale}", weights_dir,
                            real_frames=real_lr_frames(scale))
    print(f"{rep.onnx.name}: max |onnx - torch|  random {rep.max_abs_random:.2e}  "
          f"real frames {rep.max_abs_real:.2e}")


#: The experiment behind each shipped default (see configs/README.md and docs/models.md).
DEFAULT_CONFIGS = {2: REPO / "configs" / "x2-rvsr-pi-ft2.yaml",
                   4: REPO / "configs" / "x4-rvsr-pi-ft.yaml"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, required=True, choices=(2, 4))
    p.add_argument("--config", type=Path, default=None,
                   help="experiment YAML (default: the shipped model's, configs/)")
    p.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--export-only", action="store_true", help="export the latest checkpoint")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = TrainConfig.from_yaml(args.config or DEFAULT_CONFIGS[args.scale])
    if cfg.scale != args.scale:
        raise SystemExit(f"train_default: {args.config} is a x{cfg.scale} experiment")
    run_dir = Path(cfg.out_dir) if Path(cfg.out_dir).is_absolute() else REPO / cfg.out_dir
    if not args.export_only:
        cfg = replace(cfg, out_dir=str(run_dir), threads=args.threads)
        _, result = run_training(cfg, resume=True, progress_bar=not args.no_progress)
        if result.stopped_by == "request":
            log.warning("training was interrupted; exporting the checkpoint anyway")
    export(run_dir, args.weights_dir, args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
