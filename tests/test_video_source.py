"""Real-video training data: finding sources, decoding them, sampling clips, mixing samplers."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsvsr.encode.ffmpeg import FfmpegError, find_ffmpeg  # noqa: E402
from vsvsr.training.config import MotionConfig, TemporalConfig  # noqa: E402
from vsvsr.training.degrade import downscale, make_lr  # noqa: E402
from vsvsr.training.sequences import SequenceSampler, synthetic_photos  # noqa: E402
from vsvsr.training.video_cache import CachedSequence, cached_sequence, find_cuts  # noqa: E402
from vsvsr.training.video_source import (  # noqa: E402
    MixedSampler,
    VideoClipSampler,
    find_sequences,
    load_sequence,
    load_sequences,
)

H, W, T = 36, 44, 12
BASE, STEP = 16, 8  # frame i has red = BASE + STEP * i everywhere: the frame index, readable


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The CPU is shared: keep tests on one thread like the trainings."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_frames(count: int = T, h: int = H, w: int = W, red_base: int = BASE) -> np.ndarray:
    """uint8 (count, h, w, 3): red encodes the frame index, green/blue a static texture."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.empty((count, h, w, 3), np.uint8)
    for i in range(count):
        frames[i, ..., 0] = red_base + STEP * i
        frames[i, ..., 1] = (xx * 37 + yy * 11) % 256
        frames[i, ..., 2] = (yy * 23 + (xx // 3) * 50) % 256
    return frames


def write_folder(folder: Path, frames: np.ndarray) -> Path:
    """PNG frames named frame_0.png ... (unpadded, so only a natural sort orders them right)."""
    from PIL import Image

    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"frame_{i}.png")
    return folder


def write_video(path: Path, frames: np.ndarray, codec: tuple[str, ...] = ("-c:v", "ffv1")) -> Path:
    """Encode raw rgb24 frames with the ffmpeg vsvsr uses (FFV1 RGB: lossless)."""
    n, h, w, _ = frames.shape
    cmd = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "24", "-i", "-", *codec, str(path)]
    subprocess.run(cmd, input=frames.tobytes(), check=True, timeout=120)
    return path


def as_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()


def frame_index(x: torch.Tensor, red_base: int = BASE) -> torch.Tensor:
    """Per-frame index read back from the red channel of (..., T, 3, h, w) float frames."""
    red = x[..., 0, :, :].mean(dim=(-1, -2)) * 255.0
    return ((red - red_base) / STEP).round().long()


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return make_frames()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, frames: np.ndarray) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {"folder": write_folder(root / "clip_frames", frames),
            "video": write_video(root / "clip.mkv", frames)}


# -- find_sequences -------------------------------------------------------------------------------
def test_find_sequences_layouts(tmp_path: Path, frames: np.ndarray) -> None:
    root = tmp_path / "data"
    b = write_folder(root / "shot_10", frames[:2])
    a = write_folder(root / "shot_2", frames[:2])
    vid = write_video(root / "zz.mkv", frames[:2])
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("not a video")
    assert find_sequences([root]) == [a, b, vid]  # natural order, non-sources ignored
    # direct paths, a frame folder given as itself, duplicates kept once
    assert find_sequences([vid, str(a), root / "shot_2"]) == [vid, a]
    assert find_sequences([a / ".." / "shot_2", a]) == [a / ".." / "shot_2"]


def test_find_sequences_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"empty holds no training video: expected png/jpg frames"):
        find_sequences([empty])
    with pytest.raises(FileNotFoundError, match=r"missing does not exist"):
        find_sequences([tmp_path / "missing"])
    with pytest.raises(ValueError, match=r"readme.txt is not a video file; expected one of .mp4"):
        find_sequences([empty / "readme.txt"])


# -- load_sequence --------------------------------------------------------------------------------
def test_load_folder_exact_and_in_order(media: dict[str, Path], frames: np.ndarray) -> None:
    seq = load_sequence(media["folder"], presize=1, max_frames=None)
    assert seq.dtype == torch.uint8 and seq.shape == (T, 3, H, W)
    assert torch.equal(seq, as_tensor(frames))  # frame_10 after frame_9, not after frame_1
    assert load_sequence(media["folder"], presize=1, max_frames=4).shape[0] == 4


def test_load_video_is_exact_with_lossless_codec(media: dict[str, Path], frames: np.ndarray) -> None:
    seq = load_sequence(media["video"], presize=1, max_frames=None)
    assert seq.dtype == torch.uint8 and seq.shape == (T, 3, H, W)
    assert torch.equal(seq, as_tensor(frames))
    assert torch.equal(load_sequence(media["video"], presize=1, max_frames=5), as_tensor(frames[:5]))


def test_presize_matches_load_photo_and_chunking(media: dict[str, Path], frames: np.ndarray,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import vsvsr.training.video_source as vsrc

    ref = downscale(as_tensor(frames[:, :H // 3 * 3, :W // 3 * 3]).float() / 255, 3)
    ref = ref.mul(255).round().to(torch.uint8)  # the load_photo recipe, W=44 cropped to 42
    monkeypatch.setattr(vsrc, "CHUNK_PIXELS", H * W * 5)  # chunks of 5 frames: 5 + 5 + 2
    for src in (media["folder"], media["video"]):
        seq = load_sequence(src, presize=3, max_frames=None)
        assert seq.shape == (T, 3, H // 3, W // 3)
        assert torch.equal(seq, ref)


def test_load_lossy_mp4(tmp_path: Path, frames: np.ndarray) -> None:
    mp4 = write_video(tmp_path / "clip.mp4", frames,
                      ("-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p"))
    seq = load_sequence(mp4, presize=1, max_frames=None)
    assert seq.shape == (T, 3, H, W)
    diff = (seq.float() - as_tensor(frames).float()).abs()
    assert float(diff.mean()) < 3.0  # only the YUV round trip
    assert torch.equal(frame_index(seq.float() / 255), torch.arange(T))


def test_load_errors(tmp_path: Path, media: dict[str, Path]) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 50)
    with pytest.raises(FfmpegError, match=r"could not decode a video frame from .*broken.mp4"):
        load_sequence(bad, presize=1, max_frames=None)
    audio = tmp_path / "audio_only.mkv"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=duration=0.1", str(audio)], check=True, timeout=60)
    with pytest.raises(FfmpegError, match=r"audio_only.mkv has no video stream"):
        load_sequence(audio, presize=1, max_frames=None)
    with pytest.raises(FileNotFoundError, match="nope.mkv does not exist"):
        load_sequence(tmp_path / "nope.mkv", presize=1, max_frames=None)
    with pytest.raises(ValueError, match=r"is 44x36, smaller than presize 40"):
        load_sequence(media["video"], presize=40, max_frames=None)
    with pytest.raises(ValueError, match="presize must be >= 1"):
        load_sequence(media["video"], presize=0, max_frames=None)
    mixed = tmp_path / "mixed"
    write_folder(mixed, make_frames(2))
    write_folder(mixed / "sub", make_frames(1, h=20))
    (mixed / "sub" / "frame_0.png").rename(mixed / "frame_2.png")
    with pytest.raises(ValueError, match=r"frame_2.png is 44x20 but the frames before it .* are 44x36"):
        load_sequence(mixed, presize=1, max_frames=None)


def test_load_sequences_finds_and_loads(media: dict[str, Path]) -> None:
    seqs = load_sequences([media["folder"].parent], presize=2, max_frames=3)
    assert [tuple(s.shape) for s in seqs] == [(3, 3, H // 2, W // 2)] * 2


# -- VideoClipSampler -----------------------------------------------------------------------------
def test_sampler_shapes_windows_and_crops(media: dict[str, Path]) -> None:
    seqs = load_sequences([media["video"], media["folder"]], presize=1, max_frames=None)
    s = VideoClipSampler(seqs, scale=2, crop=8, length=5, batch=3, seed=0,
                         temporal=TemporalConfig(max_stride=1, p_hold=0.0))
    reversed_seen = forward_seen = False
    for _ in range(8):
        lr, hr = s.sample()
        assert lr.shape == (3, 5, 3, 8, 8) and hr.shape == (3, 5, 3, 16, 16)
        assert lr.dtype == hr.dtype == torch.float32
        assert 0.0 <= float(lr.min()) and float(lr.max()) <= 1.0
        assert 0.0 <= float(hr.min()) and float(hr.max()) <= 1.0
        assert torch.equal(lr, make_lr(hr, 2))
        assert torch.equal(lr, (lr * 255).round() / 255)  # on the 8-bit grid, as real LR is
        for clip_lr, clip_hr in zip(lr, hr, strict=True):
            idx = frame_index(clip_lr)
            assert torch.equal(idx, frame_index(clip_hr))
            steps = set(idx.diff().tolist())
            assert steps in ({1}, {-1}), idx  # consecutive source frames (maybe time-reversed)
            assert 0 <= int(idx.min()) and int(idx.max()) < T
            forward_seen |= steps == {1}
            reversed_seen |= steps == {-1}
            # the crop does not move through the window: the static texture is identical
            assert torch.equal(clip_hr[:, 1:], clip_hr[:1, 1:].expand(5, -1, -1, -1))
    assert forward_seen and reversed_seen


def test_sampler_resumes_from_state_dict(media: dict[str, Path]) -> None:
    seqs = [load_sequence(media["video"], presize=1, max_frames=None)]
    s = VideoClipSampler(seqs, scale=2, crop=8, length=4, batch=2, seed=7)
    s.sample()
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)  # as the checkpoint stores it
    first = s.sample()
    buf.seek(0)
    fresh = VideoClipSampler(seqs, scale=2, crop=8, length=4, batch=2, seed=123)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    again = fresh.sample()
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(s.sample()[1], first[1])  # and it does move on


def test_sampler_too_short_or_too_small(caplog: pytest.LogCaptureFixture) -> None:
    short = as_tensor(make_frames(3))
    with pytest.raises(ValueError, match=r"none of 1 sequences has a shot of 5 frames or more at "
                                         r"16x16 px"):
        VideoClipSampler([short], scale=2, crop=8, length=5, batch=1, seed=0)
    with pytest.raises(ValueError, match=r"shot of 3 frames or more at 48x48 px .*crop 24 x "
                                         r"scale 2"):
        VideoClipSampler([short], scale=2, crop=24, length=3, batch=1, seed=0)
    with caplog.at_level(logging.INFO, logger="vsvsr.training.video_source"):
        s = VideoClipSampler([short, as_tensor(make_frames(6))], scale=2, crop=8, length=5,
                             batch=1, seed=0)
    assert {i for i, _, _ in s.shots} == {1}
    assert "skipping 1 of 2 sequences without a shot of 5 frames at 16 px" in caplog.text
    with pytest.raises(ValueError, match=r"sequence 0 must be uint8 \(T, 3, H, W\)"):
        VideoClipSampler([short.float()], scale=2, crop=8, length=2, batch=1, seed=0)


def test_sampler_weights_follow_frames_times_area() -> None:
    a, b = as_tensor(make_frames(4)), as_tensor(make_frames(8, h=18, w=44))
    s = VideoClipSampler([a, b], scale=1, crop=8, length=2, batch=1, seed=0)
    # window positions x area: (4 - 2 + 1) x 36 x 44 and (8 - 2 + 1) x 18 x 44
    assert torch.equal(s.window_weights(2), torch.tensor([3 * 36 * 44.0, 7 * 18 * 44.0],
                                                         dtype=torch.float64))
    assert torch.equal(s.window_weights(5), torch.tensor([0.0, 4 * 18 * 44.0],
                                                         dtype=torch.float64))


# -- MixedSampler ---------------------------------------------------------------------------------
def dark_and_bright(length: int = 3) -> tuple[VideoClipSampler, VideoClipSampler]:
    dark = VideoClipSampler([as_tensor(make_frames(6, red_base=0))], scale=2, crop=8, length=length,
                            batch=2, seed=1)
    bright = VideoClipSampler([as_tensor(make_frames(6, red_base=200))], scale=2, crop=8,
                              length=length, batch=2, seed=2)
    return dark, bright


def test_mixed_draws_from_both_and_resumes() -> None:
    dark, bright = dark_and_bright()
    mix = MixedSampler([dark, bright], [1.0, 1.0], seed=0)
    assert (mix.scale, mix.crop, mix.length, mix.batch) == (2, 8, 3, 2)
    sources = []
    for _ in range(16):
        lr, hr = mix.sample()
        assert lr.shape == (2, 3, 3, 8, 8) and hr.shape == (2, 3, 3, 16, 16)
        sources.append(float(hr[:, :, 0].mean()) > 0.5)
    assert any(sources) and not all(sources)

    state = {k: v.clone() for k, v in mix.state_dict().items()}
    assert set(state) == {"generator", "children.0.generator", "children.1.generator"}
    run = [mix.sample()[1] for _ in range(4)]
    d2, b2 = dark_and_bright()
    mix2 = MixedSampler([d2, b2], [1.0, 1.0], seed=99)
    mix2.load_state_dict(state)
    assert all(torch.equal(x, mix2.sample()[1]) for x in run)


def test_mixed_zero_weight_and_errors() -> None:
    dark, bright = dark_and_bright()
    only_bright = MixedSampler([dark, bright], [0, 3], seed=0)
    assert all(float(only_bright.sample()[1][:, :, 0].mean()) > 0.5 for _ in range(5))
    with pytest.raises(ValueError, match="2 samplers but 1 weights"):
        MixedSampler([dark, bright], [1.0], seed=0)
    with pytest.raises(ValueError, match="weights must be finite, >= 0 and not all 0"):
        MixedSampler([dark, bright], [0, 0], seed=0)
    other_len = dark_and_bright(length=4)[0]
    with pytest.raises(ValueError, match="sampler 1 has length=4 but sampler 0 has length=3"):
        MixedSampler([dark, other_len], [1, 1], seed=0)
    mix = MixedSampler([dark, bright], [1, 1], seed=0)
    with pytest.raises(ValueError, match=r"unexpected key 'children.2.generator'"):
        mix.load_state_dict({**mix.state_dict(), "children.2.generator": torch.zeros(1)})
    with pytest.raises(ValueError, match="lacks the mixer's or a child's generator"):
        mix.load_state_dict({"generator": mix.generator.get_state()})


def test_mixed_photos_and_videos(media: dict[str, Path]) -> None:
    """The photo pseudo-video sampler and the real-video sampler mix into one batch stream."""
    photos = SequenceSampler(synthetic_photos(2, 72, seed=1), scale=2, crop=8, length=4, batch=2,
                             supersample=2, motion=MotionConfig(), seed=0)
    videos = VideoClipSampler([load_sequence(media["video"], presize=1, max_frames=None)], scale=2,
                              crop=8, length=4, batch=2, seed=0)
    mix = MixedSampler([photos, videos], [0.5, 0.5], seed=0)
    for _ in range(4):
        lr, hr = mix.sample()
        assert lr.shape == (2, 4, 3, 8, 8) and hr.shape == (2, 4, 3, 16, 16)


# -- temporal augmentation, shot cuts, the decode-once cache ---------------------------------------
def test_sampler_strides_holds_and_never_crosses_a_cut() -> None:
    frames = as_tensor(make_frames(24, red_base=8)).numpy()
    # shots [0, 9), [9, 24): no window may mix frames of both
    seq = CachedSequence(path=Path("x"), frames=frames, cuts=(9,))
    s = VideoClipSampler([seq], scale=2, crop=8, length=5, batch=4, seed=3,
                         temporal=TemporalConfig(max_stride=3, p_stride=0.5, p_hold=0.5))
    strides, held = set(), False
    for _ in range(40):
        _, hr = s.sample()
        for clip in hr:
            idx = frame_index(clip, red_base=8)
            assert bool((idx < 9).all()) or bool((idx >= 9).all()), idx
            steps = idx.diff().abs()
            strides |= set(steps[steps > 0].tolist())
            held |= bool((steps == 0).any())
            assert len(set(steps[steps > 0].tolist())) <= 1  # one stride per window
    assert strides == {1, 2, 3} and held


def test_video_cache_equals_direct_decode_and_maps_later(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    frames = make_frames(10)
    frames[6:, ..., 1:] = 255 - frames[6:, ..., 1:]  # a hard cut at frame 6
    video = write_video(tmp_path / "clip.mpg", frames, ("-c:v", "ffv1", "-f", "matroska"))
    direct = load_sequence(video, presize=2, max_frames=None)
    cached = cached_sequence(video, presize=2, cache_dir=tmp_path / "cache")
    assert isinstance(cached.frames, np.memmap) or isinstance(cached.frames.base, np.memmap)
    assert np.array_equal(np.asarray(cached.frames), direct.numpy())
    assert cached.cuts == (6,) and cached.shots == [(0, 6), (6, 10)]

    def no_decode(*_a: object, **_k: object) -> None:
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr("vsvsr.training.video_source.load_sequence", no_decode)
    again = cached_sequence(video, presize=2, cache_dir=tmp_path / "cache")
    assert np.array_equal(np.asarray(again.frames), direct.numpy())
    assert find_sequences([tmp_path]) == [video]  # .mpg counts as video
    # the data folder copied afresh (another place, new times): the cache still serves it
    moved = tmp_path / "copy" / video.name
    moved.parent.mkdir()
    shutil.copy(video, moved)
    os.utime(moved, (1.0, 1.0))
    assert cached_sequence(moved, presize=2, cache_dir=tmp_path / "cache").key == again.key
    # ... but other content under the same name is decoded anew
    with moved.open("r+b") as fh:
        fh.seek(-64, os.SEEK_END)
        fh.write(bytes(64))
    monkeypatch.undo()
    assert cached_sequence(moved, presize=2, cache_dir=tmp_path / "cache").key != again.key


def test_cuts_match_the_listed_shot_changes() -> None:
    """The detector finds the cuts ``train_videos/SOURCES.md`` lists (ffmpeg scene score)."""
    clip = Path(__file__).resolve().parents[2] / "shared/data/train_videos/tears_of_steel_360p.mp4"
    if not clip.is_file():
        pytest.skip("../shared/data/train_videos is not here")
    frames = load_sequence(clip, presize=4, max_frames=None).numpy()
    cuts = find_cuts(frames)
    for seconds in (0.9, 2.7, 7.7):  # SOURCES.md, 24 fps
        assert any(abs(c - seconds * 24) <= 2 for c in cuts), (seconds, cuts)
