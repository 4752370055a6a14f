#!/usr/bin/env python3
"""Oracle test of a recurrent design: can it use a *perfectly aligned* past? (issue 12)

Before hours go into learning flow, this checks in minutes that the fusion can exploit the past
when the motion is known exactly (the method of ``../shared/tools/oracle``, run on this
project's own networks): pseudo-videos pan over photos at a constant, known sub-pixel velocity,
the recurrent net's flow module is replaced by that velocity, and, from the same trained
single-frame control, two runs train side by side (alternating steps, so a busy machine slows
both alike):

* ``control``: the single-frame net (``sfsr``) continued;
* ``rvsrg-oracle``: ``rvsrg`` warm-started from the control (it starts *as* the control), with
  the true motion as its flow.

Test: sequences of 30 frames panned over frames of a real clip at fixed velocities (never
trained on), Y-PSNR gain over bicubic on frames 10-29; plus ``rvsrg-oracle`` with its gate shut
(what the past is worth) and its mean gate.

    python scripts/oracle_rvsrg.py --control runs/x4-sfsr-r2/last.pt --minutes 10 \\
        --out docs/eval/oracle-rvsrg.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vsvsr.evaluation.metrics import y_psnr  # noqa: E402
from vsvsr.nets.arch_registry import build_net  # noqa: E402
from vsvsr.nets.blocks import charbonnier  # noqa: E402
from vsvsr.nets.rvsrg_arch import RVSRGConfig  # noqa: E402
from vsvsr.training.checkpoint import load_checkpoint  # noqa: E402
from vsvsr.training.flow_pretrain import translate_clips  # noqa: E402
from vsvsr.training.precision import autocast, memory_format, resolve_precision  # noqa: E402
from vsvsr.training.sequences import load_photos  # noqa: E402
from vsvsr.training.warm_start import transfer_single_frame  # noqa: E402

log = logging.getLogger("oracle")
#: Test velocities (LR px/frame): slow diagonal, moderate, fast horizontal, slow vertical.
TEST_VELOCITIES = ((0.37, 0.21), (-0.6, 0.45), (1.3, -0.2), (0.1, -0.9))


class KnownFlow(torch.nn.Module):
    """Stands in for a flow network: returns the true per-clip velocity everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.v: torch.Tensor | None = None

    def forward(self, lr: torch.Tensor, lr_prev: torch.Tensor) -> torch.Tensor:
        assert self.v is not None
        n, _, h, w = lr.shape
        return self.v.reshape(n, 2, 1, 1).to(lr.dtype).expand(n, 2, h, w)


def run(net: torch.nn.Module, lr: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Run a clip batch (N, T, 3, h, w) from a reset; (SR (N, T, 3, H, W), mean gate)."""
    state, prev = net.initial_state(lr[:, 0]), lr[:, 0]
    outs, gates = [], []
    for t in range(lr.shape[1]):
        step = lr.new_full((lr.shape[0], 1, 1, 1), float(t))
        if hasattr(net, "gate"):
            sr, state, _, gate = net._step(lr[:, t], prev, state, step)  # noqa: SLF001
            if t:
                gates.append(float(gate.float().mean()))
        else:
            sr, state = net(lr[:, t], prev, state, step)
        outs.append(sr)
        prev = lr[:, t]
    return torch.stack(outs, 1), (float(np.mean(gates)) if gates else 0.0)


def _fixed_clip(img: torch.Tensor, scale: int, crop: int, length: int, vx: float, vy: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from vsvsr.training.degrade import make_lr

    q = crop * scale
    region = img.float().div(255.0)[None]
    rh, rw = region.shape[-2:]
    x0 = (rw - q) / 2 - vx * scale * (length - 1) / 2
    y0 = (rh - q) / 2 - vy * scale * (length - 1) / 2
    hr = []
    for t in range(length):
        xs = torch.arange(q, dtype=torch.float64) + x0 + vx * scale * t
        ys = torch.arange(q, dtype=torch.float64) + y0 + vy * scale * t
        gx, gy = ((2 * xs + 1) / rw - 1).float(), ((2 * ys + 1) / rh - 1).float()
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
        hr.append(F.grid_sample(region, grid, mode="bicubic", padding_mode="border",
                                align_corners=False).clamp(0, 1))
    h = torch.cat(hr)
    return make_lr(h, scale)[None], h[None], torch.tensor([[vx, vy]], dtype=torch.float32)


def gain(net: torch.nn.Module, tests: list, scale: int, shut_gate: bool = False
         ) -> tuple[float, float]:
    """Mean Y-PSNR gain over bicubic on frames 10-29, and the mean gate."""
    gains, gates = [], []
    with torch.no_grad():
        for lr, hr, v in tests:
            if isinstance(getattr(net, "flow", None), KnownFlow):
                net.flow.v = v
            bias = net.gate.c3.bias.data.clone() if hasattr(net, "gate") else None
            if shut_gate:  # the past off: g = sigmoid(-1e4 + ...) = 0, the same trunk otherwise
                net.gate.c3.bias.data.fill_(-1e4)
            sr, g = run(net, lr)
            if bias is not None:
                net.gate.c3.bias.data.copy_(bias)
            gates.append(g)
            bic = F.interpolate(lr[0], scale_factor=scale, mode="bicubic",
                                align_corners=False).clamp(0, 1)
            for t in range(10, lr.shape[1]):
                a = y_psnr(_u8(sr[0, t]), _u8(hr[0, t]), border=scale)
                b = y_psnr(_u8(bic[t]), _u8(hr[0, t]), border=scale)
                gains.append(a - b)
    return float(np.mean(gains)), float(np.mean(gates))


def _u8(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--control", type=Path, required=True, help="a trained sfsr checkpoint")
    p.add_argument("--minutes", type=float, default=10.0, help="training time per model")
    p.add_argument("--data", action="append",
                   default=["../shared/data/train_images/budgie_backgrounds",
                            "../shared/data/train_images/popos_wallpapers"])
    p.add_argument("--test", type=Path,
                   default=Path("../shared/data/real/realbasicvsr_demo_000"))
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    precision = resolve_precision("auto")
    state = load_checkpoint(args.control)
    cfg = state.config.arch
    scale = cfg.scale
    control = build_net("sfsr", cfg)
    control.load_state_dict(state.weights())
    rec = build_net("rvsrg", RVSRGConfig(scale=scale, width=cfg.width, blocks=cfg.blocks))
    transfer_single_frame(rec, "rvsrg", "sfsr", cfg, state.weights())
    rec.flow = KnownFlow()
    photos = load_photos(args.data, presize=2)
    tests = [_fixed_clip(*_source(path), scale, 48, 30, vx, vy)
             for path, (vx, vy) in zip(sorted(args.test.glob("*.png"))[:4], TEST_VELOCITIES,
                                       strict=True)]
    start = {"control": gain(control, tests, scale)[0],
             "rvsrg-oracle": gain(rec, tests, scale)[0]}
    log.info("before training: %s", start)
    nets = {"control": control, "rvsrg-oracle": rec}
    new = [p_ for n, p_ in rec.named_parameters() if not n.startswith(("head", "body",
                                                                       "to_residual"))]
    trunk = [p_ for n, p_ in rec.named_parameters() if n.startswith(("head", "body",
                                                                     "to_residual"))]
    opts = {"control": torch.optim.Adam(control.parameters(), lr=1e-4),
            "rvsrg-oracle": torch.optim.Adam([{"params": trunk, "lr": 1e-4},
                                              {"params": new, "lr": 1e-3}])}
    for net in nets.values():
        net.to(memory_format=memory_format(precision))
    g = torch.Generator().manual_seed(5)
    spent = dict.fromkeys(nets, 0.0)
    steps = dict.fromkeys(nets, 0)
    last = time.monotonic()
    while min(spent.values()) < args.minutes * 60:
        lr, hr, v = translate_clips(photos, scale=scale, crop=32, count=4, length=8,
                                    generator=g, max_shift=2.0)
        for name, net in nets.items():
            if spent[name] >= args.minutes * 60:
                continue
            t0 = time.monotonic()
            net.train()
            if name == "rvsrg-oracle":
                net.flow.v = v
            with autocast(precision):
                sr, _ = run(net, lr)
            loss = charbonnier(sr.float(), hr)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opts[name].step()
            spent[name] += time.monotonic() - t0
            steps[name] += 1
        if time.monotonic() - last > 60:
            last = time.monotonic()
            log.info("steps %s, minutes %s", steps, {k: round(v_ / 60, 1) for k, v_ in
                                                     spent.items()})
    result = {
        "minutes_each": args.minutes, "steps": steps, "precision": precision,
        "control_checkpoint": str(args.control), "gain_before": start,
        "control": gain(control, tests, scale)[0],
    }
    result["rvsrg-oracle"], result["mean_gate"] = gain(rec, tests, scale)
    result["rvsrg-oracle, gate shut"] = gain(rec, tests, scale, shut_gate=True)[0]
    result["bp_scale"] = float(rec.bp)
    result["past_worth_db"] = result["rvsrg-oracle"] - result["rvsrg-oracle, gate shut"]
    result["over_control_db"] = result["rvsrg-oracle"] - result["control"]
    text = json.dumps({k: (round(v_, 3) if isinstance(v_, float) and math.isfinite(v_) else v_)
                       for k, v_ in result.items()}, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


def _source(path: Path) -> tuple[torch.Tensor]:
    from PIL import Image

    return (torch.from_numpy(np.asarray(Image.open(path).convert("RGB"))).permute(2, 0, 1),)


if __name__ == "__main__":
    sys.exit(main())
