"""The filter in-process: request orders, graph reuse, scene resets, formats round trips."""

from __future__ import annotations

import numpy as np
import pytest
import synth
import vapoursynth as vs
from reference import torch_reference

import vsvsr
from vsvsr.vs import formats

NUM, H, W, CUT = 30, 24, 32, 13
core = vs.core


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return synth.make_frames(NUM, H, W, cuts=[CUT])


@pytest.fixture(scope="module")
def ref(random_model, frames):
    return torch_reference(random_model, frames, {CUT})


def rgb(frame: vs.VideoFrame) -> np.ndarray:
    return synth.planes_of(frame)


def sr_clip(random_model, frames, **kw) -> vs.VideoNode:
    clip = synth.array_clip(frames, scene_props=kw.pop("scene_props", [CUT]))
    return vsvsr.recurrent(clip, random_model, kw.pop("backend", "torch"), output_format="RGBS",
                           threads=1, **kw)


@pytest.mark.parametrize("order", ["reverse", "random", "seek_first"])
def test_request_orders_match_the_sequential_reference(random_model, frames, ref, order) -> None:
    out = sr_clip(random_model, frames)
    idx = {"reverse": list(range(NUM))[::-1],
           "random": [int(i) for i in np.random.default_rng(5).permutation(NUM)],
           "seek_first": [20, *range(NUM)]}[order]
    for n in idx:
        np.testing.assert_array_equal(rgb(out.get_frame(n)), ref[n], err_msg=f"frame {n}")


def test_parallel_async_requests_match(random_model, frames, ref) -> None:
    out = sr_clip(random_model, frames)
    order = [int(i) for i in np.random.default_rng(9).permutation(NUM)]
    futures = [out.get_frame_async(n) for n in order]  # all in flight at once
    for n, fut in zip(order, futures, strict=True):
        np.testing.assert_array_equal(rgb(fut.result()), ref[n], err_msg=f"frame {n}")


def test_out_plus_out_and_side_by_side(random_model, frames, ref) -> None:
    out = sr_clip(random_model, frames)
    joined = out + out
    for n in (3, NUM + 3, 25, NUM + 25, NUM - 1):
        np.testing.assert_array_equal(rgb(joined.get_frame(n)), ref[n % NUM])
    stacked = core.std.StackHorizontal([out, out[::-1]])
    f = rgb(stacked.get_frame(7))
    np.testing.assert_array_equal(f[:, :, :2 * W], ref[7])
    np.testing.assert_array_equal(f[:, :, 2 * W:], ref[NUM - 1 - 7])


def test_builtin_scene_detector_resets_at_a_cut_without_props(random_model, frames, ref) -> None:
    detected = sr_clip(random_model, frames, scene_props=[], scene_detect=True)
    blind = sr_clip(random_model, frames, scene_props=[])
    n = CUT + 3
    np.testing.assert_array_equal(rgb(detected.get_frame(n)), ref[n])
    assert not np.array_equal(rgb(blind.get_frame(n)), ref[n])  # the reset is what mattered


def test_warmup_seek_is_cheap_and_approximate(random_model, frames, ref) -> None:
    out = sr_clip(random_model, frames, scene_props=[], warmup=2)
    got = rgb(out.get_frame(NUM - 1))
    assert not np.array_equal(got, ref[NUM - 1])
    assert np.abs(got - ref[NUM - 1]).mean() < 0.05  # close: same frame content


FORMATS = ["YUV420P8", "YUV420P10", "YUV420P16", "YUV422P10", "YUV444P8", "RGB24", "RGB48",
           "RGBH", "RGBS"]


@pytest.mark.parametrize("name", FORMATS)
def test_format_round_trip_keeps_family_depth_and_matrix(random_model, name) -> None:
    fmt = getattr(vs, name)
    clip = synth.array_clip(synth.make_frames(4, H, W), fmt=fmt)
    out = vsvsr.recurrent(clip, random_model, "ort", threads=1)
    assert out.format.id == clip.format.id
    assert (out.width, out.height, out.num_frames) == (2 * W, 2 * H, 4)
    # The family conversion must be exactly RGBS output converted with the clip's matrix.
    as_rgb = vsvsr.recurrent(clip, random_model, "ort", output_format="RGBS", threads=1)
    if out.format.color_family == vs.YUV:
        assert out.get_frame(3).props["_Matrix"] == 1
        expected = as_rgb.resize.Bicubic(format=fmt, matrix_s="709", range_s="limited")
    else:
        expected = as_rgb.resize.Point(format=fmt)
    for p in range(3):
        got = np.asarray(out.get_frame(3)[p], np.float64)
        want = np.asarray(expected.get_frame(3)[p], np.float64)
        np.testing.assert_allclose(got, want, atol=1e-3 if out.format.sample_type == vs.FLOAT else 1)


FLAT = {"YUV420P8": [100, 90, 170], "YUV420P10": [400, 360, 680], "YUV422P10": [500, 450, 600],
        "YUV444P8": [16, 128, 128], "YUV420P16": [30000, 20000, 40000],
        "RGB24": [200, 30, 90], "RGB48": [50000, 1000, 30000], "RGBH": [0.2, 0.7, 0.4],
        "RGBS": [0.9, 0.1, 0.5]}


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("full_range", [False, True])
def test_flat_colour_survives_the_whole_chain(bicubic_model, name, full_range) -> None:
    """A pure-bicubic model on a flat colour must give back the same code values: this
    catches a wrong matrix, range, bit depth or plane order anywhere in the chain."""
    fmt = core.get_video_format(getattr(vs, name))
    if fmt.color_family == vs.RGB and full_range:
        pytest.skip("RGB is always full range")
    clip = core.std.BlankClip(width=W, height=H, format=fmt.id, length=2, color=FLAT[name])
    if fmt.color_family == vs.YUV:
        clip = clip.std.SetFrameProps(_Matrix=1, _Range=int(vs.Range.RANGE_FULL if full_range
                                                            else vs.Range.RANGE_LIMITED))
    out = vsvsr.recurrent(clip, bicubic_model, "ort", threads=1)
    f = out.get_frame(1)
    if fmt.color_family == vs.YUV:
        assert formats.is_full_range(f.props) == full_range
    for p, value in enumerate(FLAT[name]):
        plane = np.asarray(f[p], np.float64)
        tol = 2e-3 if fmt.sample_type == vs.FLOAT else 1.01
        assert np.abs(plane - value).max() <= tol, (p, plane.min(), plane.max(), value)


def test_rgbh_output_on_request(random_model) -> None:
    clip = synth.array_clip(synth.make_frames(2, H, W), fmt=vs.YUV420P10)
    out = vsvsr.recurrent(clip, random_model, "ort", output_format="rgbh", threads=1)
    assert out.format.id == vs.RGBH
    assert np.asarray(out.get_frame(1)[0]).dtype == np.float16


def test_limited_range_input_is_clamped_to_unit_range(random_model) -> None:
    # Out-of-range YUV (super-white) becomes RGB > 1; the model must see it clamped.
    clip = core.std.BlankClip(width=W, height=H, format=vs.YUV444P8, length=2,
                              color=[255, 128, 128]).std.SetFrameProps(
        _Matrix=1, _Range=int(vs.Range.RANGE_LIMITED))
    out = vsvsr.recurrent(clip, random_model, "ort", output_format="RGBS", threads=1)
    assert float(rgb(out.get_frame(1)).max()) <= 1.0


def test_gated_model_matches_the_sequential_reference(random_gated_model, frames) -> None:
    """The gated architecture (rvsrg) through the filter (ONNX Runtime) equals a PyTorch run."""
    ref = torch_reference(random_gated_model, frames, {CUT})
    out = sr_clip(random_gated_model, frames, backend="ort")
    for n in (0, 5, CUT, NUM - 1):
        np.testing.assert_allclose(rgb(out.get_frame(n)), ref[n], atol=1e-5)


def test_flow_aligned_model_matches_the_sequential_reference(random_flow_model, frames) -> None:
    """The flow-aligned architecture through the filter (ONNX Runtime) equals a PyTorch run."""
    ref = torch_reference(random_flow_model, frames, {CUT})
    out = sr_clip(random_flow_model, frames, backend="ort")
    for n in (0, 5, CUT, NUM - 1):
        np.testing.assert_allclose(rgb(out.get_frame(n)), ref[n], atol=2e-4)
