"""Warm start: a recurrent net started from the single-frame control computes the control."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vsvsr.nets.arch_registry import build_net  # noqa: E402
from vsvsr.nets.rvsr_arch import RVSRConfig  # noqa: E402
from vsvsr.nets.rvsrf_arch import RVSRFConfig  # noqa: E402
from vsvsr.nets.rvsrg_arch import GATE_BIAS, RVSRGConfig  # noqa: E402
from vsvsr.nets.sfsr_arch import SFSRConfig  # noqa: E402
from vsvsr.training.checkpoint import LAST_NAME  # noqa: E402
from vsvsr.training.config import TrainConfig  # noqa: E402
from vsvsr.training.sequences import synthetic_photos  # noqa: E402
from vsvsr.training.trainer import Trainer  # noqa: E402
from vsvsr.training.warm_start import transfer_single_frame  # noqa: E402

SCALE, WIDTH, BLOCKS = 2, 8, 2
#: LR pixels next to the border where rvsrf's centred input meets zero padding: the head
#: (1) plus two convs per block plus the output conv
BORDER = 1 + 2 * BLOCKS + 1


def _trained_like_control() -> torch.nn.Module:
    """An sfsr with random (non-zero) weights everywhere, output layer included."""
    torch.manual_seed(0)
    net = build_net("sfsr", SFSRConfig(scale=SCALE, width=WIDTH, blocks=BLOCKS))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return net.eval()


@pytest.mark.parametrize("arch", ["rvsr", "rvsrf"])
def test_warm_started_recurrent_net_reproduces_the_control(arch: str) -> None:
    src = _trained_like_control()
    cfg = (RVSRConfig(scale=SCALE, width=WIDTH, blocks=BLOCKS, hidden=4) if arch == "rvsr" else
           RVSRFConfig(scale=SCALE, width=WIDTH, blocks=BLOCKS, hidden=4, flow_width=8, leak=0.0))
    net = build_net(arch, cfg).eval()
    transfer_single_frame(net, arch, "sfsr", src.config, src.state_dict())
    g = torch.Generator().manual_seed(1)
    lr, lr_prev = torch.rand(2, 1, 3, 20, 24, generator=g)
    state = torch.rand(1, cfg.state_channels, 20, 24, generator=g)  # a busy past
    step = torch.tensor([7.0])
    with torch.no_grad():
        want, _ = src(lr, lr_prev, src.initial_state(lr), step)
        got, _ = net(lr, lr_prev, state, step)
    assert want.abs().max() > 0.5  # the control's residual is not zero: a real comparison
    if arch == "rvsr":
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    else:
        b = BORDER * SCALE
        torch.testing.assert_close(got[..., b:-b, b:-b], want[..., b:-b, b:-b], atol=1e-5, rtol=0)
        assert (got - want).abs().max() < 0.5  # the border differs a little, not wildly


def test_warm_started_gated_net_starts_as_the_control() -> None:
    """rvsrg from the control: exactly the control right after a reset (the gate is forced
    shut, every input from the past has zero weight); afterwards the nearly shut gate
    (sigmoid(-4)) lets at most 2 % of the aligned past through."""
    src = _trained_like_control()
    cfg = RVSRGConfig(scale=SCALE, width=WIDTH, blocks=BLOCKS, hidden=4, flow_width=4,
                      gate_width=4, refine_width=4)
    net = build_net("rvsrg", cfg).eval()
    transfer_single_frame(net, "rvsrg", "sfsr", src.config, src.state_dict())
    g = torch.Generator().manual_seed(1)
    lr, lr_prev = torch.rand(2, 1, 3, 20, 24, generator=g)
    state = torch.rand(1, cfg.state_channels, 20, 24, generator=g)  # a busy past
    with torch.no_grad():
        want, _ = src(lr, lr_prev, src.initial_state(lr), torch.zeros(1, 1, 1, 1))
        at_reset, _ = net(lr, lr, state, torch.zeros(1, 1, 1, 1))
        later, _ = net(lr, lr_prev, state, torch.full((1, 1, 1, 1), 7.0))
    assert want.abs().max() > 0.5  # the control's residual is not zero: a real comparison
    torch.testing.assert_close(at_reset, want, atol=1e-5, rtol=0)
    gate = torch.sigmoid(torch.tensor(GATE_BIAS))
    past = torch.nn.functional.pixel_shuffle(state[:, 4:], SCALE)
    bound = float(gate * (past - want).abs().max()) + 1e-5
    assert 0 < float((later - want).abs().max()) <= bound


def test_warm_start_refuses_mismatched_nets() -> None:
    src = _trained_like_control()
    wide = build_net("rvsr", RVSRConfig(scale=SCALE, width=16, blocks=BLOCKS, hidden=4))
    with pytest.raises(ValueError, match="set arch.width: 8"):
        transfer_single_frame(wide, "rvsr", "sfsr", src.config, src.state_dict())
    leaky = build_net("rvsrf", RVSRFConfig(scale=SCALE, width=WIDTH, blocks=BLOCKS, hidden=4))
    with pytest.raises(ValueError, match="set arch.leak: 0"):
        transfer_single_frame(leaky, "rvsrf", "sfsr", src.config, src.state_dict())
    with pytest.raises(ValueError, match="cannot start a sfsr from a rvsr"):
        transfer_single_frame(src, "sfsr", "rvsr", wide.config, wide.state_dict())


def test_trainer_warm_starts_from_an_sfsr_checkpoint(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    photos = synthetic_photos(3, 64, seed=2)
    common = {"clip_length": 2, "batch": 2, "crop": 8, "lr": 1e-3, "seed": 3}
    src = Trainer(TrainConfig(arch=SFSRConfig(scale=SCALE, width=WIDTH, blocks=BLOCKS), iters=3,
                              out_dir=str(tmp_path / "src"), **common), photos=photos)
    src.fit(progress_bar=False)
    warm = Trainer(TrainConfig(arch=RVSRConfig(scale=SCALE, width=WIDTH, blocks=BLOCKS, hidden=4),
                               scheme="pi", seq_length=4, iters=3, out_dir=str(tmp_path / "w"),
                               init_from=str(tmp_path / "src" / LAST_NAME), **common),
                   photos=photos)
    mine = warm.net.state_dict()
    for key, value in src.net.state_dict().items():
        if key != "head.weight":
            assert torch.equal(mine[key], value), key
    assert torch.equal(mine["head.weight"][:, :3], src.net.state_dict()["head.weight"])
    assert not mine["head.weight"][:, 3:].any()  # the past starts switched off
