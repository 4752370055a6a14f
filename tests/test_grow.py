"""Growing a trained net into a wider/deeper one (the quality tier's start)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vsvsr.nets.arch_registry import build_net  # noqa: E402
from vsvsr.nets.rvsrg_arch import RVSRGConfig  # noqa: E402
from vsvsr.nets.sfsr_arch import SFSRConfig  # noqa: E402
from vsvsr.training.checkpoint import LAST_NAME  # noqa: E402
from vsvsr.training.config import TrainConfig  # noqa: E402
from vsvsr.training.grow import can_grow, grow_into  # noqa: E402
from vsvsr.training.sequences import synthetic_photos  # noqa: E402
from vsvsr.training.trainer import Trainer  # noqa: E402

SMALL = {"sfsr": SFSRConfig(scale=2, width=8, blocks=2),
         "rvsrg": RVSRGConfig(scale=2, width=8, blocks=2, hidden=4, flow_width=6, gate_width=4,
                              refine_width=4)}
BIG = {"sfsr": SFSRConfig(scale=2, width=12, blocks=3),
       "rvsrg": RVSRGConfig(scale=2, width=12, blocks=3, hidden=4, flow_width=6, gate_width=4,
                            refine_width=4)}


def _randomised(arch: str) -> torch.nn.Module:
    """A small net whose every weight is non-zero (as after training; the zero-initialised
    output layers of a fresh net would hide a wrong copy)."""
    torch.manual_seed(1)
    net = build_net(arch, SMALL[arch])
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return net.eval()


@pytest.mark.parametrize("arch", ["sfsr", "rvsrg"])
def test_grown_net_computes_the_source_output_and_its_new_weights_learn(arch: str) -> None:
    src = _randomised(arch)
    big = build_net(arch, BIG[arch])
    grow_into(big, SMALL[arch], src.state_dict())
    torch.manual_seed(2)
    lr, prev = torch.rand(2, 3, 10, 12), torch.rand(2, 3, 10, 12)
    state = torch.rand_like(src.initial_state(lr))
    for step in (0.0, 5.0):
        s = torch.full((2, 1, 1, 1), step)
        want, want_state = src(lr, prev, state, s)
        got, got_state = big.eval()(lr, prev, state, s)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
        torch.testing.assert_close(got_state, want_state, atol=1e-6, rtol=0)
    # the new channels and blocks are not dead: the loss reaches the weights that read them
    big.train()
    out, _ = big(lr, prev, state, torch.full((2, 1, 1, 1), 5.0))
    (out - torch.rand_like(out)).abs().mean().backward()
    assert float(big.to_residual.weight.grad[:, 8:].abs().sum()) > 0  # reads the new channels
    assert float(big.body[2].conv2.weight.grad.abs().sum()) > 0  # the appended block


def test_growing_refuses_a_smaller_or_different_net() -> None:
    assert can_grow(SMALL["sfsr"], BIG["sfsr"])
    assert not can_grow(BIG["sfsr"], SMALL["sfsr"])  # shrinking
    assert not can_grow(SMALL["sfsr"], SMALL["sfsr"])  # nothing to grow
    assert not can_grow(SMALL["sfsr"], SFSRConfig(scale=4, width=12, blocks=3))  # other scale
    assert not can_grow(SMALL["sfsr"], BIG["rvsrg"])  # other architecture
    with pytest.raises(ValueError, match="only width, blocks may grow"):
        grow_into(build_net("sfsr", SMALL["sfsr"]), BIG["sfsr"], _randomised("sfsr").state_dict())


def test_a_run_starts_from_a_smaller_trained_run(tmp_path: Path) -> None:
    """init_from a smaller run of the same architecture grows it: step 0 is its output."""
    photos = synthetic_photos(3, 48, seed=1)
    base = {"clip_length": 2, "batch": 2, "crop": 8, "iters": 2, "lr": 1e-3, "seed": 3}
    small = Trainer(TrainConfig(arch=SMALL["sfsr"], out_dir=str(tmp_path / "s"),
                                **base), photos=photos)
    small.fit(progress_bar=False)
    big = Trainer(TrainConfig(arch=BIG["sfsr"], out_dir=str(tmp_path / "b"),
                              init_from=str(tmp_path / "s" / LAST_NAME), **base), photos=photos)
    lr = torch.rand(1, 3, 8, 8)
    zero = torch.zeros(1, 1, 1, 1)
    want, _ = small.net.eval()(lr, lr, small.net.initial_state(lr), zero)
    got, _ = big.net.eval()(lr, lr, big.net.initial_state(lr), zero)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
