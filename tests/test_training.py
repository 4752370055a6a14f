"""Training: the trainer learns on tiny generated data and resumes bit-exactly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vsvsr.nets.rvsr_arch import RVSRConfig, run_sequence  # noqa: E402
from vsvsr.training.checkpoint import LAST_NAME, load_checkpoint  # noqa: E402
from vsvsr.training.config import MotionConfig, TrainConfig  # noqa: E402
from vsvsr.training.degrade import downscale  # noqa: E402
from vsvsr.training.sequences import SequenceSampler, synthetic_photos  # noqa: E402
from vsvsr.training.trainer import Trainer, charbonnier, start_or_resume  # noqa: E402


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
    assert torch.allclose(lr[0], downscale(hr[0], 2))
    static = MotionConfig(p_static_clip=1.0, p_brightness=0.0)
    _, hr = SequenceSampler(photos, motion=static, **kw).sample()
    assert torch.allclose(hr[:, 1:], hr[:, :1].expand_as(hr[:, 1:]), atol=1e-6)
    moving = MotionConfig(p_static_clip=0.0, p_static_stretch=0.0, max_velocity=2.0)
    _, hr = SequenceSampler(photos, motion=moving, **kw).sample()
    assert float((hr[:, 1:] - hr[:, :1]).abs().mean()) > 1e-3


def test_loss_falls(tmp_path: Path, photos: list[torch.Tensor]) -> None:
    cfg = tiny_config(tmp_path)
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


def test_request_stop_saves(tmp_path: Path, photos: list[torch.Tensor]) -> None:
    trainer = Trainer(tiny_config(tmp_path), photos=photos)
    trainer.request_stop()
    result = trainer.fit(progress_bar=False)
    assert result.stopped_by == "request" and result.iterations == 0
    assert load_checkpoint(result.checkpoint).iteration == 0
