"""The real-world degradation: spec syntax, ranges, each stage, the real codecs, the cache."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vsvsr.encode.ffmpeg import find_ffmpeg
from vsvsr.evaluation import data, metrics
from vsvsr.training import degrade_codec
from vsvsr.training.config import TrainConfig
from vsvsr.training.degrade_cache import DegradeCache
from vsvsr.training.degrade_codec import MissingCodecError, codec_round_trip
from vsvsr.training.degrade_pipeline import degrade_sequence, gaussian_kernel2d
from vsvsr.training.degrade_ranges import DegradeConfig
from vsvsr.training.degrade_spec import (
    ACCEPTED_FORMS,
    BlurSpec,
    CodecSpec,
    DegradeSpec,
    DegradeSpecError,
    NoiseSpec,
    parse_spec,
)


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Natural-ish detail: blurred noise plus stripes and a few hard edges."""
    rng = np.random.default_rng(seed)
    x = rng.random((h + 8, w + 8, 3))
    for _ in range(2):
        x = (x[:-2, :-2] + x[1:-1, 1:-1] + x[2:, 2:] + x[2:, :-2] + x[:-2, 2:]) / 5.0
    x = x[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = 0.5 + 0.5 * np.sin(0.5 * xx + 0.3 * yy)
    x = 0.55 * (x - x.min()) / (x.max() - x.min()) + 0.3 * stripes[..., None]
    x += 0.15 * ((xx // 12 + yy // 12) % 2)[..., None]
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def panning(frames: int, h: int, w: int, step: int = 2, seed: int = 0) -> np.ndarray:
    big = texture(h + step * frames, w + step * frames, seed)
    return np.stack([big[t * step:t * step + h, t * step:t * step + w] for t in range(frames)])


HR = panning(10, 96, 128)  # x2 -> 48x64 LR


def mean_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([metrics.y_psnr(x, y) for x, y in zip(a, b, strict=True)]))


# -- spec syntax --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "clean", "h264:crf=28,preset=medium", "h265:crf=30,preset=fast,gop=12", "mpeg2:q=6",
    "mpeg2:bitrate=2500", "yuv420", "resize:kernel=area", "noise:sigma=2.5,gray=1",
    "blur:sigma=0.8+resize:kernel=bilinear+noise:sigma=3+h264:crf=23,preset=veryfast",
    "blur:sigma=0.5,sigma_y=1,angle=30",
])
def test_canonical_text_parses_back_to_itself(text: str) -> None:
    spec = parse_spec(text)
    assert spec.canonical() == text
    assert parse_spec(spec.canonical()) == spec


def test_parsing_normalises_order_defaults_and_units() -> None:
    spec = parse_spec("H264:crf=28 + noise:sigma=2 + blur:sigma=1")
    assert spec == DegradeSpec(blur=BlurSpec(sigma=1.0), noise=NoiseSpec(sigma=2.0),
                               codec=CodecSpec(codec="h264", crf=28, preset="medium"))
    assert spec.chroma420  # every codec is 4:2:0
    assert str(spec) == "blur:sigma=1+noise:sigma=2+h264:crf=28,preset=medium"
    assert parse_spec("mpeg2:bitrate=2.5M").codec.bitrate == 2500
    assert parse_spec("mpeg2:bitrate=800k").codec.bitrate == 800
    assert parse_spec("clean").is_clean and not parse_spec("yuv420").is_clean


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"),
    ("h263:crf=3", "unknown stage 'h263'"),
    ("h264", "h264 needs crf=N"),
    ("h264:crf=60", "crf in 0-51"),
    ("h264:crf=x", "is not a whole number"),
    ("h264:crf=20,preset=ludicrous", "preset must be one of"),
    ("h264:crf=20+h265:crf=20", "a codec given twice"),
    ("h264:qp=20", "h264 has no option 'qp'"),
    ("mpeg2:q=4,bitrate=300", "exactly one of q"),
    ("mpeg2", "exactly one of q"),
    ("mpeg2:q=40", "1-31"),
    ("noise:sigma=-1", "sigma must be in (0, 64]"),
    ("blur", "blur needs sigma=S"),
    ("blur:sigma=1+blur:sigma=2", "blur given twice"),
    ("resize:kernel=lanczos", "kernel must be one of"),
    ("clean+h264:crf=20", "clean cannot be combined"),
    ("h264:crf=20++noise:sigma=1", "empty stage"),
    ("yuv420:x=1", "takes no options"),
    ("noise:sigma", "is not key=value"),
])
def test_bad_specs_name_the_problem_and_list_every_form(text: str, why: str) -> None:
    with pytest.raises(DegradeSpecError) as exc:
        parse_spec(text)
    msg = str(exc.value)
    assert why in msg
    assert ACCEPTED_FORMS in msg
    for form in ("h264:crf=N", "h265:crf=N", "mpeg2:q=N", "mpeg2:bitrate=R", "blur:sigma=S",
                 "noise:sigma=S", "resize:kernel=K", "yuv420", "clean"):
        assert form in msg


# -- ranges (the YAML section) ------------------------------------------------------------------

def test_ranges_sample_deterministically_and_cover_every_codec() -> None:
    cfg = DegradeConfig()
    a = [cfg.sample(np.random.default_rng(s)) for s in range(300)]
    b = [cfg.sample(np.random.default_rng(s)) for s in range(300)]
    assert a == b
    codecs = [s.codec.codec if s.codec else None for s in a]
    for name, p in (("h264", 0.45), ("h265", 0.3), ("mpeg2", 0.15), (None, 0.1)):
        assert abs(codecs.count(name) / 300 - p) < 0.08, (name, codecs.count(name))
    assert all(s.chroma420 for s in a)  # p_chroma420 = 1
    assert {s.kernel for s in a} == {"bicubic", "bilinear", "area"}
    for s in a:
        if s.codec is not None and s.codec.codec == "h264":
            assert 20 <= s.codec.crf <= 33 and s.codec.preset in ("veryfast", "faster", "fast",
                                                                   "medium")
        if s.blur is not None:
            assert 0.2 <= s.blur.sigma <= 0.8
        if s.noise is not None:
            assert 1.0 <= s.noise.sigma <= 6.0
        assert parse_spec(s.canonical()) == s  # every drawn spec is also a valid benchmark spec


def test_ranges_read_from_yaml_through_the_training_config(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("iters: 10\ndegrade:\n  h264: {p: 1.0, crf: [30, 30], presets: [fast]}\n"
                    "  h265: {p: 0}\n  mpeg2: {p: 0}\n  blur: {p: 0}\n  noise: {p: 0}\n"
                    "  kernels: [area]\n")
    cfg = TrainConfig.from_yaml(path)
    assert cfg.degrade is not None
    spec = cfg.degrade.sample(np.random.default_rng(0))
    assert spec.canonical() == "resize:kernel=area+h264:crf=30,preset=fast"
    again = TrainConfig.from_dict(cfg.to_dict())  # what a checkpoint stores
    assert again == cfg
    assert isinstance(cfg.to_dict()["degrade"]["h264"]["crf"], list)
    assert TrainConfig(iters=1).degrade is None  # off unless configured
    assert TrainConfig.from_dict({"iters": 1, "degrade": {}}).degrade == DegradeConfig()


@pytest.mark.parametrize(("data_", "why"), [
    ({"h264": {"p": 0.8}, "h265": {"p": 0.5}}, "sum to 1.450"),
    ({"h264": {"crf": [30, 20]}}, "crf must be [low, high]"),
    ({"h264": {"presets": ["warp"]}}, "presets must be"),
    ({"blur": {"p": 2}}, "p is a probability"),
    ({"kernels": ["nearest"]}, "kernels must be"),
    ({"codecs": {}}, "unknown settings ['codecs']"),
    ({"noise": {"amount": 3}}, "unknown noise settings ['amount']"),
    ({"mpeg2": 3}, "mpeg2 must be a mapping"),
])
def test_bad_ranges_are_refused(data_: dict, why: str) -> None:
    with pytest.raises(ValueError) as exc:
        DegradeConfig.from_dict(data_)
    assert why in str(exc.value)


# -- the stages ---------------------------------------------------------------------------------

def test_a_clean_spec_is_exactly_the_evaluation_resize() -> None:
    lr = degrade_sequence(HR, DegradeSpec(), scale=2)
    assert lr.shape == (10, 48, 64, 3) and lr.dtype == np.uint8
    assert np.array_equal(lr, np.stack(data.degrade(list(HR), 2)))


def test_blur_kernel_is_normalised_and_oriented() -> None:
    k = gaussian_kernel2d(BlurSpec(sigma=1.0), 2)
    assert k.shape == (13, 13) and k.sum() == pytest.approx(1.0)
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1])
    wide_x = gaussian_kernel2d(BlurSpec(sigma=1.0, sigma_y=0.25, angle=0.0), 1)
    c = wide_x.shape[0] // 2
    assert wide_x[c, c + 2] > 10 * wide_x[c + 2, c]  # long along x
    wide_y = gaussian_kernel2d(BlurSpec(sigma=1.0, sigma_y=0.25, angle=90.0), 1)
    assert np.allclose(wide_y, wide_x.T, atol=1e-12)


def test_blur_softens_and_kernels_differ() -> None:
    clean = degrade_sequence(HR, DegradeSpec(), scale=2)

    def detail(x: np.ndarray) -> float:
        return float(np.abs(np.diff(x.astype(np.float64), axis=2)).mean())

    blurred = degrade_sequence(HR, parse_spec("blur:sigma=0.8"), scale=2)
    assert detail(blurred) < 0.8 * detail(clean)
    area = degrade_sequence(HR, parse_spec("resize:kernel=area"), scale=2)
    expect = HR.reshape(10, 48, 2, 64, 2, 3).astype(np.float64).mean(axis=(2, 4))
    assert np.abs(area.astype(np.float64) - expect).max() <= 0.5 + 1e-6  # the 2x2 block means
    bilinear = degrade_sequence(HR, parse_spec("resize:kernel=bilinear"), scale=2)
    assert not np.array_equal(bilinear, clean) and not np.array_equal(bilinear, area)


def test_noise_has_the_asked_strength_is_seeded_and_fresh_each_frame() -> None:
    spec = parse_spec("noise:sigma=4")
    clean = degrade_sequence(HR, DegradeSpec(), scale=2).astype(np.float64)
    a = degrade_sequence(HR, spec, scale=2, seed=3)
    assert np.array_equal(a, degrade_sequence(HR, spec, scale=2, seed=3))
    assert not np.array_equal(a, degrade_sequence(HR, spec, scale=2, seed=4))
    d = a.astype(np.float64) - clean
    assert 3.6 < d.std() < 4.4  # sigma 4 (+ rounding, - clipping)
    assert not np.array_equal(d[0], d[1])
    gray = degrade_sequence(HR, parse_spec("noise:sigma=4,gray=1"), scale=2, seed=3)
    dg = gray.astype(np.float64) - clean
    inside = (clean > 8).all(-1) & (clean < 247).all(-1)  # no clipping there
    spread = np.abs(dg[..., 0] - dg[..., 1])[inside]
    assert spread.max() <= 1.0 and np.abs(d[..., 0] - d[..., 1])[inside].mean() > 2


def test_yuv420_keeps_luma_and_softens_chroma() -> None:
    clean = degrade_sequence(HR, DegradeSpec(), scale=2)
    sub = degrade_sequence(HR, parse_spec("yuv420"), scale=2)
    assert mean_psnr(sub, clean) > 40  # luma is only rounded twice
    assert not np.array_equal(sub, clean)


def test_the_codecs_really_compress_and_crf_orders_quality() -> None:
    """H.264 CRF 28 on 64x48 LR of a textured pan: measured 30.3 dB Y-PSNR against the clean LR
    (ffmpeg n9.0.2 of imageio-ffmpeg; CRF 18: 38.5, CRF 40: 22.1), so the stated range is
    26-35 dB; H.265 and MPEG-2 also change the frames."""
    clean = degrade_sequence(HR, DegradeSpec(), scale=2)
    psnr = {crf: mean_psnr(degrade_sequence(HR, parse_spec(f"h264:crf={crf}"), scale=2), clean)
            for crf in (18, 28, 40)}
    assert 26.0 <= psnr[28] <= 35.0, psnr
    assert psnr[18] > psnr[28] + 2 and psnr[28] > psnr[40] + 2, psnr
    for text in ("h265:crf=28", "mpeg2:q=8", "mpeg2:bitrate=50"):
        p = mean_psnr(degrade_sequence(HR, parse_spec(text), scale=2), clean)
        assert 22.0 < p < 42.0, (text, p)


@pytest.mark.parametrize("text", ["h264:crf=28,preset=fast", "h265:crf=28,preset=fast",
                                  "mpeg2:q=6"])
def test_the_bitstream_is_reproducible(text: str) -> None:
    codec = parse_spec(text).codec
    lr = degrade_sequence(HR, DegradeSpec(), scale=2)
    first = degrade_codec.encode(lr, codec)
    assert first == degrade_codec.encode(lr, codec)
    assert len(first) < lr.nbytes / 5  # compressed
    again = degrade_sequence(HR, parse_spec(text), scale=2)
    assert np.array_equal(again, degrade_codec.decode(first, codec, 10, 48, 64))


def test_odd_sizes_are_padded_and_cropped_back() -> None:
    hr = HR[:, :90, :126]  # x2 -> 45x63
    for text in ("h264:crf=28", "h265:crf=28", "mpeg2:q=5", "yuv420"):
        lr = degrade_sequence(hr, parse_spec(text), scale=2)
        assert lr.shape == (10, 45, 63, 3), text
        clean = degrade_sequence(hr, DegradeSpec(), scale=2)
        assert mean_psnr(lr, clean) > 25, text


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="does not divide by 4"):
        degrade_sequence(HR[:, :94], DegradeSpec(), scale=4)
    with pytest.raises(ValueError, match="uint8"):
        degrade_sequence(HR.astype(np.float32), DegradeSpec(), scale=2)
    with pytest.raises(ValueError, match="pad_even"):
        degrade_codec.encode(HR[:, :95], parse_spec("h264:crf=20").codec)


def test_an_ffmpeg_without_the_encoder_is_named(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ffmpeg whose encoder list lacks libx265 (a wrapper that filters the list)."""
    real = find_ffmpeg()
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = -encoders ]; then\n"
                    f"    \"{real}\" \"$@\" | grep -v libx265; exit 0\n  fi\ndone\n"
                    f"exec \"{real}\" \"$@\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("VSVSR_FFMPEG", str(fake))
    lr = degrade_sequence(HR, DegradeSpec(), scale=2)
    with pytest.raises(MissingCodecError) as exc:
        codec_round_trip(lr, parse_spec("h265:crf=28").codec)
    msg = str(exc.value)
    assert "libx265" in msg and str(fake) in msg and "VSVSR_FFMPEG" in msg
    assert codec_round_trip(lr, parse_spec("h264:crf=28").codec).shape == lr.shape


# -- an independent ffmpeg command line ---------------------------------------------------------

def test_the_h264_round_trip_equals_a_hand_written_ffmpeg_command(tmp_path: Path) -> None:
    """The clean LR through two plain ffmpeg commands (written out here, not built by vsvsr)
    gives exactly the frames of ``h264:crf=28``."""
    clean = degrade_sequence(HR, DegradeSpec(), scale=2)
    raw = tmp_path / "lr.rgb"
    raw.write_bytes(clean.tobytes())
    ff = find_ffmpeg()
    sws = "bicubic+accurate_rnd+full_chroma_int+bitexact"
    subprocess.run([ff, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48",
                    "-r", "25", "-i", str(raw), "-threads", "1", "-sws_flags", sws,
                    "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
                    "-c:v", "libx264", "-preset", "medium", "-crf", "28",
                    str(tmp_path / "lr.h264")], check=True)
    subprocess.run([ff, "-v", "error", "-i", str(tmp_path / "lr.h264"), "-sws_flags", sws,
                    "-vf", "scale=in_color_matrix=bt709:in_range=tv,format=rgb24",
                    "-f", "rawvideo", str(tmp_path / "out.rgb")], check=True)
    by_hand = np.frombuffer((tmp_path / "out.rgb").read_bytes(), np.uint8).reshape(clean.shape)
    assert np.array_equal(degrade_sequence(HR, parse_spec("h264:crf=28"), scale=2), by_hand)


# -- the cache ----------------------------------------------------------------------------------

def test_cache_stores_reuses_and_keys_on_everything(tmp_path: Path) -> None:
    cache = DegradeCache(tmp_path / "cache")
    spec = parse_spec("noise:sigma=2+h264:crf=30,preset=veryfast")
    first = cache.degrade(HR, spec, scale=2, seed=1, source_key="pan:0:10")
    assert (cache.hits, cache.misses) == (0, 1)
    files = list((tmp_path / "cache").rglob("*"))
    npys = [p for p in files if p.suffix == ".npy"]
    assert len(npys) == 1 and not [p for p in files if p.name.endswith(".tmp")]
    assert npys[0].stat().st_size == first.nbytes + 128  # raw uint8 + the .npy header
    again = cache.degrade(HR, spec, scale=2, seed=1, source_key="pan:0:10")
    assert (cache.hits, cache.misses) == (1, 1) and np.array_equal(first, again)
    assert np.array_equal(first, degrade_sequence(HR, spec, scale=2, seed=1))
    cache.degrade(HR, spec, scale=2, seed=2, source_key="pan:0:10")
    cache.degrade(HR, parse_spec("h264:crf=30,preset=veryfast"), scale=2, seed=1,
                  source_key="pan:0:10")
    cache.degrade(HR, spec, scale=2, seed=1)  # keyed by the frames' hash
    assert (cache.hits, cache.misses) == (1, 4)
    cache.degrade(HR.copy(), spec, scale=2, seed=1)
    assert cache.hits == 2


def test_cache_recomputes_a_damaged_or_mismatched_entry(tmp_path: Path) -> None:
    cache = DegradeCache(tmp_path)
    spec = parse_spec("yuv420")
    good = cache.degrade(HR, spec, scale=2, seed=0, source_key="k")
    path = cache.path(cache.key("k", spec, scale=2, seed=0))
    path.write_bytes(b"garbage")
    assert np.array_equal(cache.degrade(HR, spec, scale=2, seed=0, source_key="k"), good)
    # the same key for other frames (a caller's mistake): the shape tells, it is recomputed
    small = cache.degrade(HR[:, :48, :64], spec, scale=2, seed=0, source_key="k")
    assert small.shape == (10, 24, 32, 3) and cache.misses == 3
    os.chmod(path, 0o644)
