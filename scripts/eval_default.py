#!/usr/bin/env python3
"""Quick evaluation of the default RVSR models on the real clips, with the temporal ablations.

For each clip in ``/work/shared/data/real/*`` the frames are the HR ground truth; LR frames come
from the training degradation (:func:`vsvsr.training.degrade.downscale`). Reported: mean Y-PSNR
(BT.601, ``scale`` border pixels cropped, 8-bit rounded) of bicubic, of the model run
sequentially, and of three ablations that show whether the model really uses its past
(``notes/pibptt.md``):

* ``reset_state``: the state is zeroed before every frame (previous frame and step kept);
* ``prev_is_current``: the current frame is fed as the previous one (state and step kept);
* ``single_frame``: a full reset at every frame (zero state, prev = current, step 0).

    python scripts/eval_default.py --scale 2 --scale 4 --json runs/eval.json
    python scripts/eval_default.py --scale 2 --model runs/rvsr-x2/last.pt --json /tmp/e.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vsvsr.nets.rvsr_arch import RVSRConfig, RVSRNet, run_sequence  # noqa: E402
from vsvsr.training.degrade import downscale  # noqa: E402
from vsvsr.utils.atomic import atomic_write_bytes  # noqa: E402

REAL_DIR = Path("/work/shared/data/real")
METHODS = ("bicubic", "model", "reset_state", "prev_is_current", "single_frame")


def load_net(path: Path) -> RVSRNet:
    """A network from an exported ``.pth`` or from a training checkpoint (``last.pt``)."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in data:  # exported model file
        cfg, weights = RVSRConfig(**data["config"]), data["state_dict"]
    else:  # training checkpoint
        cfg, weights = RVSRConfig(**data["config"]["arch"]), data["model"]
    net = RVSRNet(cfg)
    net.load_state_dict(weights)
    return net.eval()


def load_clip(folder: Path, scale: int) -> torch.Tensor:
    """Frames (T, 3, H, W) in [0, 1], cropped so that H and W divide by ``scale``."""
    from PIL import Image

    frames = []
    for f in sorted(folder.glob("*.png")):
        arr = np.asarray(Image.open(f).convert("RGB"), np.float32) / 255.0
        frames.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
    x = torch.stack(frames)
    h, w = (x.shape[-2] // scale) * scale, (x.shape[-1] // scale) * scale
    return x[..., :h, :w]


def y_psnr(sr: torch.Tensor, hr: torch.Tensor, border: int) -> float:
    """PSNR of the BT.601 luma (16-235, as MATLAB rgb2ycbcr) of 8-bit rounded frames."""
    coef = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64).view(3, 1, 1)

    def luma(x: torch.Tensor) -> torch.Tensor:
        q = torch.round(x.double().clamp(0, 1) * 255.0)
        return 16.0 + (q * coef).sum(0) / 255.0

    a, b = luma(sr), luma(hr)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = float(torch.mean((a - b) ** 2))
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-12))


@torch.no_grad()
def run_ablation(net: RVSRNet, lr: torch.Tensor, *, reset_state: bool,
                 prev_is_current: bool) -> torch.Tensor:
    """Sequential run (1, T, 3, h, w) with one recurrent input knocked out."""
    outs, prev = [], lr[:, 0]
    state = net.initial_state(prev)
    for t in range(lr.shape[1]):
        cur = lr[:, t]
        if reset_state:
            state = net.initial_state(cur)
        feed_prev = cur if (prev_is_current or t == 0) else prev
        sr, state = net(cur, feed_prev, state, cur.new_full((1, 1, 1, 1), float(t)))
        outs.append(sr)
        prev = cur
    return torch.stack(outs, dim=1)


@torch.no_grad()
def evaluate_clip(net: RVSRNet, hr: torch.Tensor) -> dict[str, Any]:
    s = net.config.scale
    lr = downscale(hr, s)
    outputs = {
        "bicubic": F.interpolate(lr, scale_factor=s, mode="bicubic", align_corners=False),
        "model": run_sequence(net, lr[None])[0],
        "reset_state": run_ablation(net, lr[None], reset_state=True, prev_is_current=False)[0],
        "prev_is_current": run_ablation(net, lr[None], reset_state=False,
                                        prev_is_current=True)[0],
        "single_frame": run_sequence(net, lr[None], [True] * lr.shape[0])[0],
    }
    per_frame = {k: [y_psnr(v[t], hr[t], s) for t in range(hr.shape[0])]
                 for k, v in outputs.items()}
    res: dict[str, Any] = {k: float(np.mean(v)) for k, v in per_frame.items()}
    res["frames"] = hr.shape[0]
    res["model_frame0"] = per_frame["model"][0]
    res["model_frames_5_on"] = float(np.mean(per_frame["model"][5:]))
    res["per_frame"] = {k: [round(p, 3) for p in per_frame[k]] for k in ("bicubic", "model")}
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, action="append", choices=(2, 3, 4),
                   help="repeatable (default: 2 and 4)")
    p.add_argument("--model", type=Path, action="append",
                   help="per --scale: a .pth or a training last.pt "
                        "(default: vsvsr/models/weights/rvsr-x{S}.pth)")
    p.add_argument("--clips", type=Path, default=REAL_DIR, help="folder of clip folders")
    p.add_argument("--json", type=Path, required=True, help="where to write the results")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    scales = args.scale or [2, 4]
    models = args.model or [REPO / "vsvsr" / "models" / "weights" / f"rvsr-x{s}.pth"
                            for s in scales]
    if len(models) != len(scales):
        p.error("give one --model per --scale")
    clips = sorted(d for d in args.clips.iterdir() if d.is_dir())
    report: dict[str, Any] = {"metric": "Y-PSNR dB (BT.601, border=scale, 8-bit)", "scales": {}}
    print(f"{'clip':28s} {'scale':>5s} " + " ".join(f"{m:>15s}" for m in METHODS))
    for scale, model in zip(scales, models, strict=True):
        net = load_net(model)
        if net.config.scale != scale:
            p.error(f"{model} is a x{net.config.scale} model, not x{scale}")
        per_clip = {}
        for clip in clips:
            r = evaluate_clip(net, load_clip(clip, scale))
            per_clip[clip.name] = r
            print(f"{clip.name:28s} {'x' + str(scale):>5s} "
                  + " ".join(f"{r[m]:15.3f}" for m in METHODS), flush=True)
        mean = {m: float(np.mean([r[m] for r in per_clip.values()])) for m in METHODS}
        print(f"{'mean':28s} {'x' + str(scale):>5s} " + " ".join(f"{mean[m]:15.3f}"
                                                                for m in METHODS))
        report["scales"][str(scale)] = {"model": str(model), "clips": per_clip, "mean": mean,
                                        "gain_over_bicubic": mean["model"] - mean["bicubic"]}
    atomic_write_bytes(args.json, json.dumps(report, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
