"""RVSRG: a flow-aligned recurrent network whose use of the past is an easy, gated decision.

Measured before this design (``../shared/tools/oracle``, docs/models.md): feeding the aligned
past to a trunk as extra input channels trains *slower* than a single-frame net, while blending
a single-frame estimate with the warped previous output through a small per-pixel gate uses the
past within minutes. So one step here is a recursive filter in aligned coordinates:

1. ``s``: a single-frame estimate from the trunk (the ``sfsr`` control's layout, so a trained
   control can be copied in: ``training/warm_start``); its head also sees the aligned past and
   hidden features through weights that start at zero, so the net starts as the control.
2. ``p``: the previous output warped to the current frame with the flow network's motion
   (bicubic at HR: detail carried for many frames is not blurred by repeated bilinear steps).
3. A gate ``g`` per HR pixel, from how well ``p`` explains the current frame (``p`` downscaled
   with the training degradation vs the LR frame): ``o = s + g (p - s)``. Its bias starts at
   -4 (the past nearly off) and it is forced shut right after a reset (step 0: no past).
4. One back-projection step, ``o += bp * up(LR - down(o))`` with a learned scale ``bp``
   (starting at 0): the blend is pulled back to agree with what the camera saw now.
5. A small learned refinement at LR on the result (starting at zero).

The state carries learned hidden features and the output folded to LR (pixel-unshuffle), like
``rvsr``/``rvsrf``, so the runtime, the trainer and the exporter drive it unchanged. Everything
exports to ONNX opset 17 that TensorRT parses (GridSample bilinear and bicubic, Resize, Conv).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vsvsr.nets.blocks import BicubicUp, Downscale, ResBlock, charbonnier, step_plane, warp


class LucasKanade(nn.Module):
    """One Lucas-Kanade step: the sub-pixel shift that best explains ``cur`` by ``aligned``.

    Solves, per pixel, the 2x2 normal equations of ``aligned(p + r) ~ cur(p)`` linearized
    (luma gradients of ``aligned``, sums over a ``window`` x ``window`` neighbourhood), with a
    small Tikhonov term so flat areas give r ~ 0; r is clamped to +-1 px of the level. Fixed
    weights, differentiable; Conv, AveragePool, Mul, Div, Clip in ONNX.
    """

    def __init__(self, window: int = 9, damping: float = 1e-6) -> None:
        super().__init__()
        self.window, self.damping = window, damping
        luma = torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
        self.register_buffer("luma", luma, persistent=False)
        dx = torch.tensor([[0.0, 0.0, 0.0], [-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])
        self.register_buffer("grad", torch.stack([dx, dx.T]).reshape(2, 1, 3, 3),
                             persistent=False)
        b = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
        self.register_buffer("blur", (b[:, None] * b[None, :]).reshape(1, 1, 5, 5),
                             persistent=False)

    def _luma(self, x: torch.Tensor) -> torch.Tensor:
        """Luma, pre-smoothed: the linearization holds for the low frequencies, not for the
        near-Nyquist texture of a downscaled frame, which would pull r the wrong way."""
        y = F.conv2d(x, self.luma.to(x.dtype))
        return F.conv2d(F.pad(y, (2, 2, 2, 2), mode="replicate"), self.blur.to(x.dtype))

    def forward(self, cur: torch.Tensor, aligned: torch.Tensor) -> torch.Tensor:
        yc, ya = self._luma(cur), self._luma(aligned)
        g = F.conv2d(F.pad(ya, (1, 1, 1, 1), mode="replicate"), self.grad.to(cur.dtype))
        gx, gy = g[:, :1], g[:, 1:]
        e = yc - ya
        k, pad = self.window, self.window // 2

        def box(t: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(F.pad(t, (pad, pad, pad, pad), mode="replicate"), k, stride=1)

        sxx, syy, sxy = box(gx * gx) + self.damping, box(gy * gy) + self.damping, box(gx * gy)
        bx, by = box(gx * e), box(gy * e)
        det = sxx * syy - sxy * sxy
        rx = (syy * bx - sxy * by) / det
        ry = (sxx * by - sxy * bx) / det
        return torch.clamp(torch.cat([rx, ry], dim=1), -1.0, 1.0)


class PyramidFlow(nn.Module):
    """Coarse-to-fine backward flow between two LR frames, in LR pixels: pyramidal
    Lucas-Kanade with a learned correction at every level.

    Each of ``levels`` levels (each half the size of the next) warps the previous frame with
    the flow so far, takes ``iterations`` Lucas-Kanade steps (:class:`LucasKanade`: a classical
    sub-pixel estimate that is right from the first training step on textured content), then
    adds a residual from a small conv net that sees the frames, the warped difference and the
    flow (it learns where the classical estimate fails: flat areas, occlusions, aliasing; its
    last layer starts at zero). Learned flow alone, without the classical core, did not learn
    translations of a few pixels in thousands of supervised steps on this CPU (docs/models.md).
    Exports to AveragePool, Resize, GridSample (bilinear), Pad and Conv.
    """

    def __init__(self, width: int, levels: int = 2, iterations: int = 1) -> None:
        super().__init__()
        self.levels, self.iterations = levels, iterations
        self.lk = LucasKanade()
        self.nets = nn.ModuleList()
        for _ in range(levels):
            convs = nn.Sequential(
                nn.Conv2d(3 + 3 + 2, width, 3, padding=1), nn.LeakyReLU(0.1),
                nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.1),
                nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.1),
                nn.Conv2d(width, 2, 3, padding=1))
            nn.init.zeros_(convs[-1].weight)
            nn.init.zeros_(convs[-1].bias)
            self.nets.append(convs)

    def forward(self, lr: torch.Tensor, lr_prev: torch.Tensor) -> torch.Tensor:
        cur, prev = [lr], [lr_prev]
        for _ in range(self.levels - 1):
            cur.append(F.avg_pool2d(cur[-1], 2, ceil_mode=True))
            prev.append(F.avg_pool2d(prev[-1], 2, ceil_mode=True))
        flow = cur[-1][:, :2] * 0.0  # not zeros_like: its ConstantOfShape loses the shape
        for level in range(self.levels - 1, -1, -1):
            c, p = cur[level], prev[level]
            if level < self.levels - 1:  # x2 then crop (the pooling rounded sizes up):
                # a Resize by scales keeps the batch size known to ONNX shape inference
                h, w = c.shape[-2:]
                flow = F.interpolate(flow, scale_factor=2.0, mode="bilinear",
                                     align_corners=False)[..., :h, :w] * 2.0
            for _ in range(self.iterations):
                flow = flow + self.lk(c, warp(p, flow))
            aligned = warp(p, flow)
            flow = flow + self.nets[level](torch.cat([c - 0.5, aligned - c, flow * 0.25], 1))
        return flow


#: The gate's starting bias: sigmoid(-4) = 0.018, so an untrained gate leaves ``s`` alone.
GATE_BIAS = -4.0


@dataclass(kw_only=True, frozen=True)
class RVSRGConfig:
    """Architecture hyper-parameters of :class:`RVSRGNet`."""

    scale: int = 4
    width: int = 48  #: channels of the SR trunk (as the single-frame control it starts from)
    blocks: int = 5  #: residual blocks in the trunk
    hidden: int = 16  #: learned hidden-state channels (besides the folded previous output)
    flow_width: int = 24  #: channels of each level of the (pyramid) flow network
    gate_width: int = 16  #: channels of the gate network
    refine_width: int = 32  #: channels of the refinement (0: none)
    #: how the previous output is warped at HR: "bicubic" keeps detail that is warped again
    #: every frame; "bilinear" is cheaper and softens it a little each time
    past_warp: str = "bicubic"
    step_clamp: int = 32  #: step numbers above this are treated as "long-running"
    step_cond: bool = True  #: feed the step number (off: the plane is zero; for ablations)

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4):
            raise ValueError(f"RVSRGConfig: scale must be 2, 3 or 4, got {self.scale}")
        for name in ("width", "blocks", "hidden", "flow_width", "gate_width", "step_clamp"):
            if getattr(self, name) < 1:
                raise ValueError(f"RVSRGConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.past_warp not in ("bicubic", "bilinear"):
            raise ValueError(f"RVSRGConfig: past_warp must be bicubic or bilinear, got "
                             f"{self.past_warp!r}")
        if self.refine_width < 0:
            raise ValueError(f"RVSRGConfig: refine_width must be >= 0, got {self.refine_width}")

    @property
    def state_channels(self) -> int:
        """Channels of the state tensor: hidden features + the folded previous SR frame."""
        return self.hidden + 3 * self.scale * self.scale

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GateNet(nn.Module):
    """Per-HR-pixel blend weight of the aligned past, from how well it explains the LR frame."""

    def __init__(self, width: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.c1 = nn.Conv2d(9, width, 3, padding=1)
        self.c2 = nn.Conv2d(width, width, 3, padding=1)
        self.c3 = nn.Conv2d(width, scale * scale, 3, padding=1)
        nn.init.zeros_(self.c3.weight)
        nn.init.constant_(self.c3.bias, GATE_BIAS)

    def forward(self, lr: torch.Tensor, past_lr: torch.Tensor) -> torch.Tensor:
        x = torch.cat([lr - 0.5, past_lr - lr, (past_lr - lr).abs()], dim=1)
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        return torch.sigmoid(F.pixel_shuffle(self.c3(x), self.scale))


class RVSRGNet(nn.Module):
    """The gated recurrent step; same inputs and outputs as the other recurrent nets."""

    def __init__(self, config: RVSRGConfig) -> None:
        super().__init__()
        self.config = config
        c, s2 = config, 3 * config.scale * config.scale
        self.flow = PyramidFlow(c.flow_width)
        # current LR first (the control's only input), then hidden, aligned past, step
        self.head = nn.Conv2d(3 + c.hidden + s2 + 1, c.width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(c.width) for _ in range(c.blocks)])
        self.to_residual = nn.Conv2d(c.width, s2, 3, padding=1)
        self.to_hidden = nn.Conv2d(c.width, c.hidden, 3, padding=1)
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)
        with torch.no_grad():  # inputs from the past start at zero weight: the net starts as sfsr
            self.head.weight[:, 3:] = 0.0
        self.gate = GateNet(c.gate_width, c.scale)
        self.down = Downscale(c.scale)
        self.up = BicubicUp(c.scale)
        self.bp = nn.Parameter(torch.zeros(()))
        if c.refine_width:
            self.refine1 = nn.Conv2d(s2 + 3, c.refine_width, 3, padding=1)
            self.refine2 = nn.Conv2d(c.refine_width, s2, 3, padding=1)
            nn.init.zeros_(self.refine2.weight)
            nn.init.zeros_(self.refine2.bias)

    def initial_state(self, lr: torch.Tensor) -> torch.Tensor:
        """The state after a reset: zeros (the network is told step 0)."""
        n, _, h, w = lr.shape
        return lr.new_zeros((n, self.config.state_channels, h, w))

    def _step(self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor,
              step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        s = c.scale
        # 0 right after a reset (no past to use), 1 afterwards; ``step`` is (N, 1, 1, 1)
        has_past = torch.clamp(step, 0.0, 1.0)
        flow = self.flow(lr, lr_prev)
        flow_hr = F.interpolate(flow, scale_factor=s, mode="bilinear", align_corners=False) * s
        past = warp(F.pixel_shuffle(state[:, c.hidden:], s), flow_hr, mode=c.past_warp)
        hidden = warp(state[:, : c.hidden], flow)
        base = self.up(lr)
        t_plane = step_plane(step, lr, c.step_clamp, c.step_cond)
        x = torch.cat([lr, hidden, F.pixel_unshuffle(past - base, s) * has_past, t_plane], dim=1)
        f = F.relu(self.head(x))
        f = f + self.body(f)
        single = base + F.pixel_shuffle(self.to_residual(f), s)
        new_hidden = torch.tanh(self.to_hidden(f))
        gate = self.gate(lr, self.down(past)) * has_past
        out = single + gate * (past - single)
        out = out + self.bp * self.up(lr - self.down(out))
        if c.refine_width:
            r = F.relu(self.refine1(torch.cat([F.pixel_unshuffle(out - base, s), lr - 0.5], 1)))
            out = out + F.pixel_shuffle(self.refine2(r), s)
        state_out = torch.cat([new_hidden, F.pixel_unshuffle(out, s)], dim=1)
        return out, state_out, warp(lr_prev, flow), gate

    def forward(
        self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor, step: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sr, state_out, _, _ = self._step(lr, lr_prev, state, step)
        return sr, state_out

    def step_train(self, lr: torch.Tensor, lr_prev: torch.Tensor, state: torch.Tensor,
                   step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward`` plus the photometric flow loss |warp(LR_{t-1}) - LR_t|."""
        sr, state_out, prev_aligned, _ = self._step(lr, lr_prev, state, step)
        return sr, state_out, charbonnier(prev_aligned, lr)
