"""Training: the trainer learns on tiny generated data and resumes bit-exactly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vsvsr.nets.blocks import charbonnier  # noqa: E402
from vsvsr.nets.rvsr_arch import RVSRConfig  # noqa: E402
from vsvsr.nets.rvsrf_arch import RVSRFConfig  # noqa: E402
from vsvsr.nets.rvsrg_arch import RVSRGConfig  # noqa: E402
from vsvsr.nets.sequence import run_sequence  # noqa: E402
from vsvsr.nets.sfsr_arch import SFSRConfig  # noqa: E402
from vsvsr.training.__main__ import build_parser, config_from_args  # noqa: E402
from vsvsr.training.checkpoint import (  # noqa: E402
    LAST_NAME,
    load_checkpoint,
    net_from_checkpoint,
    save_slim_checkpoint,
)
from vsvsr.training.clips import StateBank, unroll  # noqa: E402
from vsvsr.training.config import MotionConfig, TrainConfig  # noqa: E402
from vsvsr.training.degrade import downscale, make_lr  # noqa: E402
from vsvsr.training.sequences import SequenceSampler, synthetic_photos  # noqa: E402
from vsvsr.training.trainer import Trainer, start_or_resume  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The CPU is shared: keep tests on one thread like the trainings."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    return synthetic_photos(4, 72, seed=1)


def tiny_config(out_dir: Path, **kw: object) -> TrainConfig:
    """A network and data small enough for a few hundred milliseconds a run."""
    base: dict[str, object] = {
        "arch": RVSRConfig(scale=2, width=8, blocks=1, hidden=4), "clip_length": 3, "batch": 2,
        "crop": 8, "iters": 40, "lr": 3e-3, "lr_min": 1e-4, "out_dir": str(out_dir), "seed": 3,
    }
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_downscale_shapes_and_errors() -> None:
    x = torch.rand(2, 3, 16, 24)
    y = downscale(x, 4)
    assert y.shape == (2, 3, 4, 6)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    with pytest.raises(ValueError, match="divide"):
        downscale(torch.rand(1, 3, 15, 16), 2)


def test_config_round_trip_and_validation(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="budget"):
        replace(cfg, iters=None, minutes=None)
    with pytest.raises(ValueError, match="probability"):
        MotionConfig(p_zoom=1.5)


def test_sampler_shapes_range_and_static_clips(photos: list[torch.Tensor]) -> None:
    kw = dict(scale=2, crop=8, length=4, batch=3, supersample=2, seed=0)
    lr, hr = SequenceSampler(photos, motion=MotionConfig(), **kw).sample()
    assert lr.shape == (3, 4, 3, 8, 8) and hr.shape == (3, 4, 3, 16, 16)
    assert float(hr.min()) >= 0.0 and float(hr.max()) <= 1.0
    # LR is exactly the training degradation of HR (aligned grids)
    assert torch.equal(lr[0], make_lr(hr[0], 2))
    static = MotionConfig(p_static_clip=1.0, p_brightness=0.0)
    _, hr = SequenceSampler(photos, motion=static, **kw).sample()
    assert torch.allclose(hr[:, 1:], hr[:, :1].expand_as(hr[:, 1:]), atol=1e-6)
    moving = MotionConfig(p_static_clip=0.0, p_static_stretch=0.0, max_velocity=2.0)
    _, hr = SequenceSampler(photos, motion=moving, **kw).sample()
    assert float((hr[:, 1:] - hr[:, :1]).abs().mean()) > 1e-3


ARCH_CASES = {
    "rvsr-ri": {},
    "rvsrf-pi": {"arch": RVSRFConfig(scale=2, width=8, blocks=1, hidden=4, flow_width=6),
                 "scheme": "pi", "seq_length": 6, "reuse": 2, "iters": 80},
    "sfsr-ri": {"arch": SFSRConfig(scale=2, width=8, blocks=1)},
    "rvsrg-pi": {"arch": RVSRGConfig(scale=2, width=8, blocks=1, hidden=4, flow_width=4,
                                     gate_width=4, refine_width=4),
                 "scheme": "pi", "seq_length": 6, "reuse": 2, "iters": 60,
                 "flow_supervision": 0.05, "flow_batch": 2},
}


@pytest.mark.parametrize("case", sorted(ARCH_CASES))
def test_loss_falls(tmp_path: Path, photos: list[torch.Tensor], case: str) -> None:
    cfg = tiny_config(tmp_path, **ARCH_CASES[case])
    trainer = Trainer(cfg, photos=photos)
    probe = SequenceSampler(photos, scale=2, crop=8, length=3, batch=8, supersample=2,
                            motion=cfg.motion, seed=99)
    lr, hr = probe.sample()

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(charbonnier(run_sequence(trainer.net.eval(), lr), hr, 1e-3))

    before = held_out_loss()
    result = trainer.fit(progress_bar=False)
    after = held_out_loss()
    assert result.iterations == cfg.iters and result.stopped_by == "budget"
    assert after < 0.9 * before, (before, after)
    assert trainer.metrics["alive"] > 0.1  # the head's ReLUs did not collapse
    assert (tmp_path / LAST_NAME).is_file()


def test_resume_is_exact(tmp_path: Path, photos: list[torch.Tensor]) -> None:
    straight = Trainer(tiny_config(tmp_path / "a", iters=6), photos=photos)
    straight.fit(progress_bar=False)

    cfg = tiny_config(tmp_path / "b", iters=6)
    first = Trainer(cfg, photos=photos)
    first.fit(max_steps=3, progress_bar=False)
    assert load_checkpoint(tmp_path / "b" / LAST_NAME).iteration == 3
    with pytest.raises(FileExistsError):
        start_or_resume(cfg, resume=False, photos=photos)
    second = start_or_resume(cfg, resume=True, photos=photos)
    assert second.iteration == 3
    second.fit(progress_bar=False)

    assert second.iteration == straight.iteration == 6
    for (name, a), b in zip(straight.net.state_dict().items(), second.net.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert torch.equal(second.sampler.sample()[1], straight.sampler.sample()[1])
    assert second.learning_rate() == straight.learning_rate()


def test_a_resumed_copy_of_a_run_writes_into_the_copy(tmp_path: Path,
                                                     photos: list[torch.Tensor]) -> None:
    """Resuming OUT/last.pt copied from another run (e.g. to try a shorter schedule) saves to
    OUT; the original run's checkpoint is left exactly as it was."""
    import shutil

    Trainer(tiny_config(tmp_path / "orig", iters=2), photos=photos).fit(progress_bar=False)
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "orig" / LAST_NAME, tmp_path / "copy" / LAST_NAME)
    before = (tmp_path / "orig" / LAST_NAME).read_bytes()
    resumed = start_or_resume(tiny_config(tmp_path / "copy", iters=4), resume=True,
                              photos=photos)
    assert resumed.config.out_dir == str(tmp_path / "copy")
    resumed.fit(progress_bar=False)
    assert load_checkpoint(tmp_path / "copy" / LAST_NAME).iteration == 4
    assert (tmp_path / "orig" / LAST_NAME).read_bytes() == before


def test_resume_is_exact_with_flow_supervision(tmp_path: Path) -> None:
    """The extra batch of exact translations draws from its own checkpointed generator."""
    big = synthetic_photos(3, 120, seed=5)
    kw = {"arch": RVSRGConfig(scale=2, width=8, blocks=1, hidden=4, flow_width=4, gate_width=4,
                              refine_width=4),
          "iters": 4, "flow_supervision": 0.1, "flow_batch": 2}
    straight = Trainer(tiny_config(tmp_path / "a", **kw), photos=big)
    straight.fit(progress_bar=False)
    first = Trainer(tiny_config(tmp_path / "b", **kw), photos=big)
    first.fit(max_steps=2, progress_bar=False)
    second = start_or_resume(tiny_config(tmp_path / "b", **kw), resume=True, photos=big)
    second.fit(progress_bar=False)
    for (name, a), b in zip(straight.net.state_dict().items(), second.net.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="flow_supervision needs a network with a flow module"):
        Trainer(tiny_config(tmp_path / "c", flow_supervision=0.1), photos=big)


def test_request_stop_saves(tmp_path: Path, photos: list[torch.Tensor]) -> None:
    trainer = Trainer(tiny_config(tmp_path), photos=photos)
    trainer.request_stop()
    result = trainer.fit(progress_bar=False)
    assert result.stopped_by == "request" and result.iterations == 0
    assert load_checkpoint(result.checkpoint).iteration == 0


def test_resume_is_exact_with_the_pi_state_bank(tmp_path: Path, photos: list[torch.Tensor]) -> None:
    pi = {"scheme": "pi", "seq_length": 5, "reuse": 2, "iters": 7}
    straight = Trainer(tiny_config(tmp_path / "a", **pi), photos=photos)
    straight.fit(progress_bar=False)
    first = Trainer(tiny_config(tmp_path / "b", **pi), photos=photos)
    first.fit(max_steps=3, progress_bar=False)  # stops mid-way through a bank's reuse
    second = start_or_resume(tiny_config(tmp_path / "b", **pi), resume=True, photos=photos)
    second.fit(progress_bar=False)
    for (name, a), b in zip(straight.net.state_dict().items(), second.net.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name


def sequential_states(net: torch.nn.Module, lr: torch.Tensor) -> list[torch.Tensor]:
    """State after each frame of one (T, 3, h, w) sequence run from a reset."""
    out, state, prev = [], net.initial_state(lr[:1]), lr[:1]
    for t in range(lr.shape[0]):
        _, state = net(lr[t:t + 1], prev, state, torch.full((1, 1, 1, 1), float(t)))
        out.append(state[0])
        prev = lr[t:t + 1]
    return out


def bank_net_and_sampler(photos: list[torch.Tensor], batch: int) -> tuple[torch.nn.Module,
                                                                          SequenceSampler]:
    """A tiny rvsr with a non-zero residual head (so states differ from zero) and a sampler
    of 10-frame sequences, for the state-bank tests."""
    from vsvsr.nets.rvsr_arch import RVSRNet

    torch.manual_seed(0)
    net = RVSRNet(tiny_config(Path("unused")).arch)
    torch.nn.init.normal_(net.to_residual.weight, std=0.05)
    return net, SequenceSampler(photos, scale=2, crop=8, length=10, batch=batch, supersample=2,
                                motion=MotionConfig(), seed=5)


def test_state_bank_starts_clips_from_stored_states(photos: list[torch.Tensor]) -> None:
    """PI-BPTT: carried clips start from the state a sequential run has at that frame, with the
    right step and previous frame; fresh ones from zeros; recomputed every ``reuse`` clips."""
    net, sampler = bank_net_and_sampler(photos, batch=4)
    bank = StateBank(sampler, clip_length=3, reuse=3, p_fresh=0.0, seed=1)
    carried_seen = 0
    with torch.no_grad():
        for _ in range(3):
            clip = bank.draw(net)
            assert bank.refreshes == 1, "one computed state sequence serves `reuse` clips"
            for b in range(4):
                start = int(clip.step0[b])
                assert torch.equal(clip.lr[b], bank.lr[b, start:start + 3])
                if not clip.carried[b]:
                    assert start == 0 and float(clip.state0[b].abs().max()) == 0.0
                    continue
                carried_seen += 1
                want = sequential_states(net, bank.lr[b])[start - 1]
                torch.testing.assert_close(clip.state0[b], want, atol=1e-5, rtol=1e-5)
                assert float(clip.state0[b].abs().max()) > 0.01  # a real, non-zero state
                assert torch.equal(clip.prev0[b], bank.lr[b, start - 1])
        assert carried_seen >= 6
        bank.draw(net)
        assert bank.refreshes == 2
        # a clip's unroll from its carried state differs from a cold start on the same frames
        clip = bank.draw(net)
        cold = type(clip)(lr=clip.lr, hr=clip.hr, state0=torch.zeros_like(clip.state0),
                          prev0=clip.lr[:, 0], step0=torch.zeros_like(clip.step0),
                          carried=torch.zeros_like(clip.carried))
        warm_sr, _ = unroll(net, clip)
        cold_sr, _ = unroll(net, cold)
        carried = clip.carried
        assert bool(carried.any())
        assert float((warm_sr[carried] - cold_sr[carried]).abs().max()) > 1e-4
    fresh_bank = StateBank(sampler, clip_length=3, reuse=3, p_fresh=1.0, seed=1)
    clip = fresh_bank.draw(net)
    assert not bool(clip.carried.any()) and float(clip.state0.abs().max()) == 0.0


def test_yaml_config_and_command_line_overrides(tmp_path: Path) -> None:
    yml = tmp_path / "exp.yaml"
    yml.write_text("arch_name: rvsrf\narch: {scale: 4, width: 16}\nscheme: pi\nreuse: 3\n"
                   f"minutes: 5\nout_dir: {tmp_path / 'run'}\ndata_dirs: [{tmp_path}]\n")
    cfg = TrainConfig.from_yaml(yml)
    assert cfg.arch == RVSRFConfig(scale=4, width=16) and cfg.scheme == "pi" and cfg.reuse == 3
    args = build_parser().parse_args(["--config", str(yml), "--reuse", "5", "--no-step-cond"])
    cfg2 = config_from_args(args)
    assert cfg2.reuse == 5 and cfg2.arch == RVSRFConfig(scale=4, width=16, step_cond=False)
    assert TrainConfig.from_dict(cfg2.to_dict()) == cfg2
    yml.write_text("minutes: 5\nbogus_setting: 1\n")
    with pytest.raises(ValueError, match="bogus_setting"):
        TrainConfig.from_yaml(yml)


def test_init_from_loads_weights_only(tmp_path: Path, photos: list[torch.Tensor]) -> None:
    src = Trainer(tiny_config(tmp_path / "src", iters=2), photos=photos)
    src.fit(progress_bar=False)
    tuned = Trainer(tiny_config(tmp_path / "ft", scheme="pi", seq_length=4,
                                init_from=str(tmp_path / "src" / LAST_NAME)), photos=photos)
    assert tuned.iteration == 0
    for a, b in zip(src.net.state_dict().values(), tuned.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="not the requested"):
        Trainer(tiny_config(tmp_path / "bad", arch=RVSRConfig(scale=2, width=4, blocks=1, hidden=4),
                            init_from=str(tmp_path / "src" / LAST_NAME)), photos=photos)


def test_export_command_makes_a_model_the_filter_backends_load(tmp_path: Path,
                                                              photos: list[torch.Tensor]) -> None:
    """vsvsr export: a flow-aligned checkpoint becomes ONNX + .pth that agree and self-describe."""
    import numpy as np

    from vsvsr.cli.main import main
    from vsvsr.runtime.ort_backend import OrtEngine
    from vsvsr.runtime.torch_backend import TorchEngine

    arch = RVSRFConfig(scale=2, width=8, blocks=1, hidden=4, flow_width=6, leak=0.0)
    Trainer(tiny_config(tmp_path / "run", arch=arch, iters=2), photos=photos).fit(
        progress_bar=False)
    assert main(["export", str(tmp_path / "run" / LAST_NAME), "--name", "mine-x2",
                 "--out", str(tmp_path / "m")]) == 0
    ort, pt = OrtEngine(tmp_path / "m" / "mine-x2.onnx", threads=1), TorchEngine(
        tmp_path / "m" / "mine-x2.pth", threads=1)
    assert ort.descriptor == pt.descriptor
    assert ort.descriptor.arch == "rvsrf" and ort.descriptor.training["iterations"] == 2
    assert ort.descriptor.config["leak"] == 0.0  # else the .pth would rebuild leaky units
    rng = np.random.default_rng(0)
    feeds = {"lr": rng.random((1, 3, 12, 20), np.float32),
             "lr_prev": rng.random((1, 3, 12, 20), np.float32),
             "state": rng.random((1, arch.state_channels, 12, 20), np.float32),
             "step": np.full((1, 1, 1, 1), 4.0, np.float32)}
    np.testing.assert_allclose(ort.run(feeds)["sr"], pt.run(feeds)["sr"], atol=1e-4)
    assert main(["export", str(tmp_path / "nope.pt"), "--name", "x"]) == 1


def test_init_from_a_shipped_model_file_fine_tunes_it(tmp_path: Path,
                                                      photos: list[torch.Tensor]) -> None:
    """init_from takes an exported .pth (a shipped model), so a model can be fine-tuned (the
    real-world models are) without its training run: the net starts with exactly the
    exported weights (the run's EMA), and a model of another architecture is refused."""
    from vsvsr.cli.main import main

    run = Trainer(tiny_config(tmp_path / "run", iters=3, ema_decay=0.5), photos=photos)
    run.fit(progress_bar=False)
    assert main(["export", str(tmp_path / "run" / LAST_NAME), "--name", "mine-x2",
                 "--out", str(tmp_path / "m")]) == 0
    exported = torch.load(tmp_path / "m" / "mine-x2.pth", weights_only=True)["state_dict"]
    tuned = Trainer(tiny_config(tmp_path / "ft", scheme="pi", seq_length=4,
                                init_from=str(tmp_path / "m" / "mine-x2.pth")), photos=photos)
    assert tuned.iteration == 0
    live = tuned.net.state_dict()
    assert exported.keys() == live.keys()
    for name, value in exported.items():
        assert torch.equal(value, live[name]), name
    ema_differs = any(not torch.equal(run.ema[k], run.net.state_dict()[k]) for k in run.ema)
    assert ema_differs  # so the equality above really checks that the EMA was exported
    with pytest.raises(ValueError, match="not the requested"):
        Trainer(tiny_config(tmp_path / "bad", arch=RVSRConfig(scale=2, width=4, blocks=1, hidden=4),
                            init_from=str(tmp_path / "m" / "mine-x2.pth")), photos=photos)


def test_state_bank_slots_mix_sequences_and_refresh_the_oldest(photos: list[torch.Tensor]) -> None:
    """bank_slots > 1: every step mixes sequences of all slots (carried states still equal a
    sequential run over that row), one slot (round robin) is recomputed every ``reuse`` draws,
    and the bank's state round-trips exactly."""
    net, sampler = bank_net_and_sampler(photos, batch=2)
    bank = StateBank(sampler, clip_length=3, reuse=2, p_fresh=0.0, seed=1, slots=3)
    rows_seen: set[int] = set()
    with torch.no_grad():
        clip = bank.draw(net)
        assert bank.refreshes == 3 and bank.lr is not None and bank.lr.shape[0] == 6
        first_rows = bank.lr.clone()
        for _ in range(3):
            for b in range(2):
                start = int(clip.step0[b])
                row = [r for r in range(6)
                       if torch.equal(bank.lr[r, start:start + 3], clip.lr[b])]
                assert len(row) == 1
                rows_seen.add(row[0])
                if clip.carried[b]:
                    want = sequential_states(net, bank.lr[row[0]])[start - 1]
                    torch.testing.assert_close(clip.state0[b], want, atol=1e-5, rtol=1e-5)
            clip = bank.draw(net)
        # 4 draws with reuse 2: one more refresh, of slot 0 (rows 0-1) only
        assert bank.refreshes == 4
        assert not torch.equal(bank.lr[:2], first_rows[:2])
        assert torch.equal(bank.lr[2:], first_rows[2:])
        assert len({r // 2 for r in rows_seen}) >= 2, "clip batches mix the slots"
        saved = bank.state_dict()
        a = bank.draw(net)
        twin = StateBank(sampler, clip_length=3, reuse=2, p_fresh=0.0, seed=1, slots=3)
        twin.load_state_dict(saved)
    with pytest.raises(ValueError, match="slots"):
        StateBank(sampler, clip_length=3, reuse=2, p_fresh=0.0, seed=1).load_state_dict(saved)
    sampler.load_state_dict(saved["sampler"])
    with torch.no_grad():
        b2 = twin.draw(net)
    assert torch.equal(a.lr, b2.lr) and torch.equal(a.state0, b2.state0)


def test_bf16_training_runs_and_its_loss_falls(tmp_path: Path, photos: list[torch.Tensor]) -> None:
    """bf16 autocast + channels_last: the first loss matches fp32's and training still learns."""
    from vsvsr.utils.cpu_features import describe_bf16, has_native_bf16

    if not has_native_bf16():
        pytest.skip(f"this CPU has {describe_bf16()}: bf16 would only be emulated")
    cfg = tiny_config(tmp_path / "bf16", precision="bf16", iters=40)
    bf16 = Trainer(cfg, photos=photos)
    fp32 = Trainer(replace(cfg, precision="fp32", out_dir=str(tmp_path / "fp32")), photos=photos)
    assert bf16.precision == "bf16" and fp32.precision == "fp32"
    first_bf16, first_fp32 = bf16.step().loss, fp32.step().loss
    assert abs(first_bf16 - first_fp32) <= 0.02 * first_fp32  # same batch, same weights
    losses = [bf16.step().loss for _ in range(38)]
    assert sum(losses[-8:]) / 8 < 0.9 * first_bf16, (first_bf16, losses[-8:])
    assert next(bf16.net.parameters()).dtype == torch.float32  # master weights stay fp32


def test_ema_is_what_evaluation_loads(tmp_path: Path, photos: list[torch.Tensor]) -> None:
    trainer = Trainer(tiny_config(tmp_path, iters=6, ema_decay=0.9), photos=photos)
    trainer.fit(progress_bar=False)
    state = load_checkpoint(tmp_path / LAST_NAME)
    assert state.ema is not None and state.weights() is state.ema
    assert not torch.equal(state.ema["head.weight"], state.model["head.weight"])
    net, _ = net_from_checkpoint(tmp_path / LAST_NAME)
    assert torch.equal(net.state_dict()["head.weight"], state.ema["head.weight"])


def test_a_committed_slim_checkpoint_continues_the_run(tmp_path: Path,
                                                       photos: list[torch.Tensor]) -> None:
    """What a session commits (no state bank) resumes at the same step with the same weights,
    optimizer and EMA; RI runs then continue exactly as an uninterrupted run."""
    kw = {"iters": 6, "ema_decay": 0.9}
    straight = Trainer(tiny_config(tmp_path / "a", **kw), photos=photos)
    straight.fit(progress_bar=False)
    first = Trainer(tiny_config(tmp_path / "b", **kw), photos=photos)
    first.fit(max_steps=3, progress_bar=False)
    slim = save_slim_checkpoint(tmp_path / "b" / LAST_NAME, tmp_path / "committed.pt")
    cfg = tiny_config(tmp_path / "c", continue_from=str(slim), **kw)
    second = start_or_resume(cfg, resume=True, photos=photos)
    assert second.iteration == 3
    for (name, a), b in zip(first.net.state_dict().items(), second.net.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    second.fit(progress_bar=False)
    assert second.iteration == 6
    for (name, a), b in zip(straight.net.state_dict().items(), second.net.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert torch.equal(straight.ema["head.weight"], second.ema["head.weight"])


def test_a_slim_pi_checkpoint_drops_the_bank_and_refills_it(tmp_path: Path,
                                                            photos: list[torch.Tensor]) -> None:
    pi = {"scheme": "pi", "seq_length": 5, "reuse": 2, "iters": 5}
    first = Trainer(tiny_config(tmp_path / "b", **pi), photos=photos)
    first.fit(max_steps=3, progress_bar=False)
    full = (tmp_path / "b" / LAST_NAME).stat().st_size
    slim = save_slim_checkpoint(tmp_path / "b" / LAST_NAME, tmp_path / "slim.pt")
    assert slim.stat().st_size < full
    assert load_checkpoint(slim).sampler.get("lr") is None
    second = start_or_resume(tiny_config(tmp_path / "c", continue_from=str(slim), **pi),
                             resume=True, photos=photos)
    assert second.iteration == 3
    result = second.fit(progress_bar=False)
    assert result.iterations == 5 and second.clips.lr is not None  # the bank was refilled


def test_flow_pretraining_reduces_the_end_point_error() -> None:
    from vsvsr.nets.rvsrg_arch import PyramidFlow
    from vsvsr.training.flow_pretrain import (
        FlowPretrainConfig,
        FlowPretrainer,
        evaluate_epe,
        translate_pairs,
    )

    torch.manual_seed(0)
    imgs = synthetic_photos(3, 160, seed=4)
    held = [translate_pairs(imgs, scale=2, crop=24, count=8, max_shift=1.0,
                            generator=torch.Generator().manual_seed(9))]
    net = PyramidFlow(8)
    before = evaluate_epe(net, held)
    trainer = FlowPretrainer(net, FlowPretrainConfig(scale=2, crop=24, batch=8, iters=120,
                                                     lr=3e-3, max_shift=1.0, precision="fp32"),
                             photos=imgs, video_sampler=None)
    trainer.fit()
    after = evaluate_epe(net, held)
    assert after < 0.8 * before, (before, after)


def test_learning_curve_is_written_and_survives_a_crash(tmp_path: Path, photos: list[torch.Tensor],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """metrics.csv gets a row per log interval; rows written after the last checkpoint (a
    crash) are dropped on resume, so the curve never has steps the weights lack."""
    from vsvsr.training import trainer as trainer_mod
    from vsvsr.training.curve import CURVE_NAME, CurveLog, read_curve

    monkeypatch.setattr(trainer_mod, "LOG_INTERVAL_S", 0.0)  # a row every step
    run = Trainer(tiny_config(tmp_path / "run"), photos=photos)
    run.fit(max_steps=4, progress_bar=False)
    curve = tmp_path / "run" / CURVE_NAME
    rows = read_curve(curve)
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4]
    assert all(r["gain"] == pytest.approx(r["psnr"] - r["bicubic_psnr"], abs=1e-4) for r in rows)
    assert rows[-1]["minutes"] > rows[0]["minutes"] > 0
    for it in (5, 6):  # steps logged after the checkpoint, then the process died
        CurveLog(curve).append(iteration=it, minutes=9.0, loss=1.0, psnr=1.0, bicubic_psnr=1.0,
                               gain=0.0, lr=0.0, alive=1.0)
    again = start_or_resume(tiny_config(tmp_path / "run"), resume=True, photos=photos)
    again.fit(max_steps=2, progress_bar=False)
    rows = read_curve(curve)
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[4]["minutes"] < 9.0  # the resumed run's own row, not the stale one
