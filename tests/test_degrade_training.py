"""Training with the real-world degradation: pre-degraded video shots, degraded photo batches."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsvsr.evaluation.metrics import y_psnr  # noqa: E402
from vsvsr.nets.rvsr_arch import RVSRConfig  # noqa: E402
from vsvsr.training import degrade_cache as degrade_cache_module  # noqa: E402
from vsvsr.training.checkpoint import LAST_NAME, load_checkpoint  # noqa: E402
from vsvsr.training.config import TemporalConfig, TrainConfig  # noqa: E402
from vsvsr.training.degrade import make_lr  # noqa: E402
from vsvsr.training.degrade_cache import DegradeCache  # noqa: E402
from vsvsr.training.degrade_photo import degrade_batch, jpeg_round_trip  # noqa: E402
from vsvsr.training.degrade_ranges import DegradeConfig  # noqa: E402
from vsvsr.training.degrade_video import predegrade_shots, variant_seed, variant_spec  # noqa: E402
from vsvsr.training.sequences import SequenceSampler, synthetic_photos  # noqa: E402
from vsvsr.training.trainer import Trainer, start_or_resume  # noqa: E402
from vsvsr.training.video_cache import CachedSequence  # noqa: E402
from vsvsr.training.video_source import MixedSampler, VideoClipSampler  # noqa: E402

H, W = 72, 100  # deliberately not multiples of 4: the variants crop to the scale

#: no blur, no noise, no codec, no chroma: the spec is always "clean"
CLEAN = DegradeConfig.from_dict({"blur": {"p": 0}, "noise": {"p": 0}, "h264": {"p": 0},
                                 "h265": {"p": 0}, "mpeg2": {"p": 0}, "p_chroma420": 0,
                                 "kernels": ["bicubic"], "variants": 2})
#: always exactly h264:crf=28 (preset medium)
CRF28 = DegradeConfig.from_dict({"blur": {"p": 0}, "noise": {"p": 0}, "kernels": ["bicubic"],
                                 "h264": {"p": 1.0, "crf": [28, 28], "presets": ["medium"]},
                                 "h265": {"p": 0}, "mpeg2": {"p": 0}, "variants": 2})


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def panning_video(frames: int, seed: int, step: int = 2) -> np.ndarray:
    """uint8 (T, 3, H, W): a textured photo panned ``step`` px per frame (every frame differs)."""
    photo = synthetic_photos(1, W + step * frames + 8, seed=seed)[0].numpy()
    return np.stack([photo[:, 3:3 + H, step * t:step * t + W] for t in range(frames)])


@pytest.fixture(scope="module")
def video() -> CachedSequence:
    """Two shots (a cut at 10) in one memory-mapped-like array, as the video cache gives."""
    frames = np.concatenate([panning_video(10, 1), panning_video(9, 2, step=3)])
    return CachedSequence(path=Path("pan.mkv"), frames=frames, cuts=(10,), key="pan-test")


def sampler(video: CachedSequence, cache: DegradeCache, degrade: DegradeConfig | None, *,
            seed: int = 0, **kw: object) -> VideoClipSampler:
    temporal = TemporalConfig(max_stride=2, p_stride=0.5, p_hold=0.3, p_reverse=0.5)
    return VideoClipSampler([video], scale=2, crop=12, length=6, batch=3, seed=seed,
                            temporal=temporal, degrade=degrade, degrade_cache=cache, **kw)


def interior(x: torch.Tensor, margin: int = 3) -> torch.Tensor:
    """Away from the crop's border, where a crop's own resize sees other pixels."""
    return x[..., margin:-margin, margin:-margin]


def test_clean_variants_are_make_lr_of_the_hr_window(tmp_path: Path, video: CachedSequence) -> None:
    """The LR window is cut at exactly the HR window / scale, with the same frames, strides,
    freezes, reversal, flips and transpose: with a clean spec it is make_lr of the HR window
    (up to the crop border, where make_lr of a crop cannot see the pixels outside it)."""
    s = sampler(video, DegradeCache(tmp_path), CLEAN)
    assert s.variants is not None and [len(v) for v in s.variants] == [2, 2]
    assert s.variants[0][0].shape == (10, H // 2, W // 2, 3)
    for _ in range(12):
        lr, hr = s.sample()
        assert lr.shape == (3, 6, 3, 12, 12) and hr.shape == (3, 6, 3, 24, 24)
        assert torch.equal(interior(lr), interior(make_lr(hr, 2)))
        assert torch.equal(lr, (lr * 255).round() / 255)  # on the 8-bit grid
    # and the whole of a variant is make_lr of the whole (cropped) frames
    full = torch.from_numpy(video.frames[:10, :, :H // 2 * 2, :W // 2 * 2]).float() / 255
    assert torch.equal(torch.from_numpy(np.array(s.variants[0][1])).permute(0, 3, 1, 2)
                       .float() / 255, make_lr(full, 2))


def test_crf28_windows_differ_from_the_clean_lr_as_crf28_does(tmp_path: Path,
                                                              video: CachedSequence) -> None:
    """H.264 CRF 28 of the whole shot: the windows' LR lies 26-35 dB Y-PSNR from the clean LR
    (the range the pipeline's own test states for CRF 28), not equal to it, and the HR target
    stays the clean frames."""
    s = sampler(video, DegradeCache(tmp_path), CRF28)
    specs = {variant_spec(CRF28, variant_seed(0, f"pan-test:{a}:{b}", a, b, k)).canonical()
             for _, a, b in s.shots for k in range(2)}
    assert specs == {"h264:crf=28,preset=medium"}
    values = []
    for _ in range(6):
        lr, hr = s.sample()
        clean = make_lr(hr, 2)
        for a, b in zip(interior(lr).flatten(0, 1), interior(clean).flatten(0, 1), strict=True):
            values.append(y_psnr(a.permute(1, 2, 0).mul(255).round().byte().numpy(),
                                 b.permute(1, 2, 0).mul(255).round().byte().numpy()))
    assert 26.0 < float(np.mean(values)) < 35.0, np.mean(values)
    assert max(values) < 60.0  # every frame was compressed


def test_variants_are_cached_and_reused(tmp_path: Path, video: CachedSequence,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = DegradeCache(tmp_path)
    a = sampler(video, first, CRF28)
    assert first.misses == 4 and first.hits == 0  # 2 shots x 2 variants, encoded once
    assert len(list(tmp_path.rglob("*.npy"))) == 4

    def no_encode(*_a: object, **_k: object) -> None:
        raise AssertionError("encoded again instead of reading the cache")

    monkeypatch.setattr(degrade_cache_module, "degrade_sequence", no_encode)
    again = DegradeCache(tmp_path)
    b = sampler(video, again, CRF28)
    assert again.misses == 0 and again.hits == 4
    assert isinstance(b.variants[0][0], np.memmap)  # mapped, not read into memory
    for x, y in zip(a.variants, b.variants, strict=True):  # type: ignore[arg-type]
        assert all(np.array_equal(p, q) for p, q in zip(x, y, strict=True))
    # other ranges (or another seed) are other entries: they would have to be encoded
    with pytest.raises(AssertionError, match="encoded again"):
        sampler(video, DegradeCache(tmp_path), DegradeConfig.from_dict(
            {**CRF28.to_dict(), "seed": 1}))


def test_variant_seeds_are_independent_of_the_run_seed_and_differ_per_variant(
        tmp_path: Path, video: CachedSequence) -> None:
    cfg = DegradeConfig(variants=3)
    specs = [variant_spec(cfg, variant_seed(0, "pan-test:0:10", 0, 10, k)) for k in range(3)]
    assert len({s.canonical() for s in specs}) == 3
    shots = [(0, 0, 10)]
    # a tensor sequence without a key is keyed by its frames' hash
    tensor = torch.from_numpy(video.frames[:10].copy())
    out = predegrade_shots([tensor], shots, [None], CLEAN, scale=2, cache=DegradeCache(tmp_path))
    assert len(out) == 1 and len(out[0]) == 2


def test_resume_of_the_degraded_video_sampler_is_exact(tmp_path: Path,
                                                       video: CachedSequence) -> None:
    cache = DegradeCache(tmp_path)
    s = sampler(video, cache, CRF28, seed=5)
    s.sample()
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    first = [s.sample() for _ in range(3)]
    buf.seek(0)
    fresh = sampler(video, cache, CRF28, seed=99)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    for (lr, hr), (lr2, hr2) in zip(first, [fresh.sample() for _ in range(3)], strict=True):
        assert torch.equal(lr, lr2) and torch.equal(hr, hr2)


def test_clean_ranges_change_nothing_for_photos() -> None:
    photos = synthetic_photos(3, 72, seed=4)
    kw = {"scale": 2, "crop": 8, "length": 3, "batch": 2, "supersample": 2, "seed": 1,
          "motion": TrainConfig(iters=1).motion}
    plain, clean = SequenceSampler(photos, **kw), SequenceSampler(photos, degrade=CLEAN, **kw)
    lr, hr = plain.sample()
    lr2, hr2 = clean.sample()
    assert torch.equal(hr, hr2) and torch.equal(lr, lr2)
    off = SequenceSampler(photos, degrade=DegradeConfig(photos=False), **kw)
    assert off.degrade is None


def test_photo_batches_get_the_drawn_degradations() -> None:
    hr = np.stack([panning_video(4, s)[:, :, :64, :64] for s in range(6)])
    hr = torch.from_numpy(hr).float() / 255
    clean = make_lr(hr, 2)
    cfg = DegradeConfig()
    lr = degrade_batch(hr, cfg, scale=2, seed=3)
    assert lr.shape == clean.shape and torch.equal(lr, (lr * 255).round() / 255)
    assert torch.equal(lr, degrade_batch(hr, cfg, scale=2, seed=3))  # the seed fixes it
    assert not torch.equal(lr, clean)
    # JPEG at the low end of photo_jpeg compresses about as hard as CRF 33 (27-30 dB)
    lr8 = clean[0].permute(0, 2, 3, 1).mul(255).round().byte().numpy()
    low = jpeg_round_trip(lr8, 15)
    assert 22.0 < np.mean([y_psnr(a, b) for a, b in zip(low, lr8, strict=True)]) < 32.0


def tiny_config(out_dir: Path, video: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "arch": RVSRConfig(scale=2, width=8, blocks=1, hidden=4), "clip_length": 3, "batch": 2,
        "crop": 8, "iters": 6, "lr": 3e-3, "lr_min": 1e-4, "out_dir": str(out_dir), "seed": 3,
        "video_paths": (str(video),), "video_weight": 0.5,
        "degrade": DegradeConfig.from_dict({**CRF28.to_dict(), "noise": {"p": 0.5},
                                            "blur": {"p": 0.5}}),
    }
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_training_with_degrade_resumes_exactly(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer wires ``degrade`` into both samplers (pre-degraded video, degraded photos),
    and a resumed run equals an uninterrupted one bit for bit."""
    from tests.test_video_source import write_video

    monkeypatch.setenv("VSVSR_CACHE_DIR", str(tmp_path / "cache"))
    frames = panning_video(12, 7).transpose(0, 2, 3, 1).copy()
    clip = write_video(tmp_path / "pan.mkv", frames)
    photos = synthetic_photos(3, 72, seed=1)
    straight = Trainer(tiny_config(tmp_path / "a", clip), photos=photos)
    mix = straight.sampler
    assert isinstance(mix, MixedSampler)
    assert mix.samplers[0].degrade is not None and mix.samplers[1].variants is not None
    straight.fit(progress_bar=False)
    assert len(list((tmp_path / "cache" / "degrade").rglob("*.npy"))) == 2  # 1 shot x 2

    first = Trainer(tiny_config(tmp_path / "b", clip), photos=photos)
    first.fit(max_steps=3, progress_bar=False)
    state = load_checkpoint(tmp_path / "b" / LAST_NAME)
    assert state.config.degrade == tiny_config(tmp_path, clip).degrade  # in the checkpoint
    second = start_or_resume(tiny_config(tmp_path / "b", clip), resume=True, photos=photos)
    second.fit(progress_bar=False)
    for (name, a), b in zip(straight.net.state_dict().items(), second.net.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    lr, hr = second.sampler.sample()
    lr2, hr2 = straight.sampler.sample()
    assert torch.equal(lr, lr2) and torch.equal(hr, hr2)


def test_the_real_world_config_round_trips_through_yaml_and_checkpoints(tmp_path: Path) -> None:
    import yaml

    root = Path(__file__).resolve().parents[1]
    cfg = TrainConfig.from_yaml(root / "configs" / "x2-rvsr-real.yaml")
    assert cfg.scale == 2 and cfg.degrade is not None and cfg.degrade.blur.p == 0.15
    assert cfg.init_from == "vsvsr/models/weights/rvsr-x2.pth"  # the shipped clean model
    assert cfg.continue_from == "checkpoints/x2-rvsr-real.pt"
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()), encoding="utf-8")
    assert TrainConfig.from_yaml(path) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="variants"):
        DegradeConfig.from_dict({"variants": 0})
    with pytest.raises(ValueError, match="photo_jpeg"):
        DegradeConfig.from_dict({"photo_jpeg": [80, 15]})
    with pytest.raises(ValueError, match="photos"):
        DegradeConfig.from_dict({"photos": "yes"})
