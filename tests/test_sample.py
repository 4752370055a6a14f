"""vsvsr.sample: the built-in sample clip and the demo's quality measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from _cli_fixtures import decode, video_clip

from vsvsr.errors import ClipFormatError
from vsvsr.sample import SampleSpec, array_clip, lr_clip, render_hr_frames, write_sample
from vsvsr.sample.clip import BICUBIC, DEFAULT_PHOTOS, load_photo
from vsvsr.sample.metrics import (
    PSNR_CAP,
    comparison_image,
    detail_box,
    mean_y_psnr,
    rgb_frames,
    y601,
    y_psnr,
)
from vsvsr.vs import scene

SMALL = SampleSpec(width=128, height=72, frames_per_scene=4)


@pytest.fixture(scope="module")
def hr_small() -> list[np.ndarray]:
    return render_hr_frames(SMALL)


def test_photos_are_bundled_with_scikit_image() -> None:
    for name in DEFAULT_PHOTOS:
        img = load_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_default_sample_size_and_length() -> None:
    spec = SampleSpec()
    assert (spec.width, spec.height) == (512, 288)
    assert 48 <= spec.num_frames <= 72
    assert spec.scene_starts == [0, 15, 30, 45]


def test_render_is_deterministic_and_moves(hr_small) -> None:
    again = render_hr_frames(SMALL)
    assert len(hr_small) == SMALL.num_frames == 16
    assert all(np.array_equal(a, b) for a, b in zip(hr_small, again, strict=True))
    assert hr_small[0].shape == (72, 128, 3) and hr_small[0].dtype == np.uint8
    spec = SampleSpec(frames_per_scene=5)  # the default size
    frames = render_hr_frames(spec)
    diffs = [float(np.abs(frames[i + 1].astype(int) - frames[i]).mean())
             for i in range(len(frames) - 1)]
    cuts = {s - 1 for s in spec.scene_starts[1:]}
    within = [d for i, d in enumerate(diffs) if i not in cuts]
    across = [diffs[i] for i in cuts]
    assert min(within) > 0.1  # the camera moves every frame
    assert min(across) > 3 * max(within)  # and the cuts are hard


def test_lr_clip_is_ordinary_video(hr_small) -> None:
    lr = lr_clip(SMALL, 2, hr_small)
    assert (lr.width, lr.height, lr.num_frames) == (64, 36, 16)
    assert lr.format.id == vs.YUV420P8
    props = lr.get_frame(0).props
    assert props["_Matrix"] == 1 and int(props["_Range"]) == int(vs.Range.RANGE_LIMITED)
    with pytest.raises(ClipFormatError, match="divide"):
        lr_clip(SampleSpec(width=100, height=72, frames_per_scene=1), 4)


def test_built_in_scene_detector_finds_exactly_the_cuts() -> None:
    spec = SampleSpec(frames_per_scene=6)
    lr = lr_clip(spec, 2)
    rgb = scene.add_scene_diff(lr.resize.Bicubic(format=vs.RGBS))
    flagged = [n for n, f in enumerate(rgb.frames())
               if scene.is_scene_change(f.props, scene.DEFAULT_THRESHOLD)]
    assert flagged == spec.scene_starts[1:]


def test_downscale_is_the_training_degradation(hr_small) -> None:
    """VapourSynth's Catmull-Rom shrink equals torch's antialiased bicubic (training) inside."""
    torch = pytest.importorskip("torch")
    from vsvsr.training.degrade import downscale as train_downscale

    small = array_clip(hr_small[:2]).resize.Bicubic(64, 36, format=vs.RGBS, **BICUBIC)
    for i in range(2):
        got = np.clip(np.stack([np.asarray(small.get_frame(i)[p]) for p in range(3)]), 0, 1)
        hr = torch.from_numpy(hr_small[i].transpose(2, 0, 1)[None].astype(np.float32) / 255)
        want = train_downscale(hr, 2)[0].numpy()
        assert np.abs(got - want)[:, 3:-3, 3:-3].max() < 1e-4


def test_write_sample_files_open_in_bestsource(tmp_path: Path, hr_small) -> None:
    files = write_sample(tmp_path, 2, spec=SMALL)
    assert files.lr_video.name == "sample_lr_x2.mkv" and files.hr_video is not None
    lr = video_clip(files.lr_video)
    assert (lr.width, lr.height, lr.num_frames, lr.format.id) == (64, 36, 16, vs.YUV420P8)
    want = lr_clip(SMALL, 2, hr_small)
    for got, ref in zip(decode(files.lr_video), want.frames(), strict=True):  # lossless
        for p in range(3):
            np.testing.assert_array_equal(got[p], np.asarray(ref[p]))
    hr = rgb_frames(video_clip(files.hr_video))
    assert all(np.array_equal(a, b) for a, b in zip(hr, hr_small, strict=True))


def test_y_psnr_matches_the_formula() -> None:
    ref = np.zeros((10, 12, 3), np.uint8)
    test = ref.copy()
    test[..., 1] = 10  # G + 10 -> Y + 10 * 128.553 / 255
    dy = 10 * 128.553 / 255
    assert y_psnr(test, ref) == pytest.approx(10 * np.log10(255 ** 2 / dy ** 2))
    assert y_psnr(ref, ref) == PSNR_CAP
    assert y601(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)
    test[2:-2, 2:-2] = 0  # only the border differs: cropping it gives identical frames
    assert y_psnr(test, ref, border=2) == PSNR_CAP
    mean, per = mean_y_psnr([test, ref], [ref, ref], border=0)
    assert len(per) == 2 and mean == pytest.approx((per[0] + PSNR_CAP) / 2)
    with pytest.raises(ValueError, match="shapes"):
        y_psnr(ref, ref[:5])


def test_detail_box_and_comparison_image() -> None:
    img = np.full((60, 80, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    img[30:50, 50:70] = rng.integers(0, 255, (20, 20, 3))
    left, top, right, bottom = detail_box(img, (24, 24))
    assert (right - left, bottom - top) == (24, 24)
    assert left <= 50 and right >= 70 and top <= 30 and bottom >= 50
    pic = comparison_image([("a", img), ("b", img), ("c", img)], (0, 0, 20, 10), zoom=2,
                           caption="x")
    assert pic.width > 3 * 40 and pic.height > 20
