"""vsvsr.overfit: equal to an independent reference under any request order, in-process and
under vspipe at 8 threads; patch mode equals full mode; errors; no PyTorch on the path."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import synth
import vapoursynth as vs
from _overfit_fixtures import make_pack, reference_frames
from conftest import TESTS, tool

import vsvsr
from vsvsr.errors import BackendUnavailableError, ClipFormatError
from vsvsr.stdo.pack import PackError, read_pack
from vsvsr.stdo.runner import PackRunner
from vsvsr.vs.overfit_filter import parallelism

NUM, H, W = 16, 20, 28  # LR; grid 4x3 gives patches of 7x6-7 px (smaller than the receptive field)
core = vs.core


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return synth.make_frames(NUM, H, W, cuts=[5])


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    return make_pack(tmp_path_factory.mktemp("filt") / "p.vsvsr", frames=NUM, lr_size=(W, H),
                     models=3, seed=4)


@pytest.fixture(scope="module")
def ref(pack, frames):
    return reference_frames(pack, frames)


def rgb(frame: vs.VideoFrame) -> np.ndarray:
    return synth.planes_of(frame)


def sr(pack, frames, **kw) -> vs.VideoNode:
    return vsvsr.overfit(synth.array_clip(frames), pack=pack, backend="ort",
                         output_format="RGBS", threads=1, **kw)


def test_the_models_really_differ_per_patch(pack, frames, ref) -> None:
    """Guard: a pack whose models agree would make the selection tests vacuous."""
    one = reference_frames(pack, frames)  # same pack: sanity of the reference itself
    np.testing.assert_array_equal(one[3], ref[3])
    p = read_pack(pack)
    runner = PackRunner(p, "ort", threads=1)
    x = frames[3][None]
    outs = [runner.run_model(k, x) for k in range(3)]
    assert min(float(np.abs(outs[0] - o).max()) for o in outs[1:]) > 1e-3
    assert len(np.unique(p.labels[3])) > 1


@pytest.mark.parametrize("order", ["sequential", "reverse", "random"])
def test_request_orders_equal_the_reference(pack, frames, ref, order) -> None:
    out = sr(pack, frames)
    idx = {"sequential": list(range(NUM)), "reverse": list(range(NUM))[::-1],
           "random": [int(i) for i in np.random.default_rng(7).permutation(NUM)]}[order]
    for n in idx:
        np.testing.assert_array_equal(rgb(out.get_frame(n)), ref[n], err_msg=f"frame {n}")


@pytest.mark.parametrize("streams", [0, 1, 3])
def test_parallel_async_requests_equal_the_reference(pack, frames, ref, streams) -> None:
    out = sr(pack, frames, streams=streams)
    order = [int(i) for i in np.random.default_rng(11).permutation(NUM)] * 2
    futures = [out.get_frame_async(n) for n in order]
    for n, fut in zip(order, futures, strict=True):
        np.testing.assert_array_equal(rgb(fut.result()), ref[n], err_msg=f"frame {n}")


@pytest.mark.parametrize("mode", ["patch", "box"])
def test_patch_and_box_modes_equal_full_mode(pack, frames, ref, mode) -> None:
    out = sr(pack, frames, mode=mode)
    for n in (0, 6, NUM - 1):
        np.testing.assert_allclose(rgb(out.get_frame(n)), ref[n], atol=2e-6, rtol=0)


def test_patch_mode_without_margin_would_show_seams(pack, frames, ref) -> None:
    """The margin is what makes patch mode exact (guards the test above)."""
    p = read_pack(pack)
    from dataclasses import replace

    runner = PackRunner(replace(p, receptive_radius=0), "ort", threads=1, mode="patch")
    got = np.clip(runner.upscale(frames[6][None], 6)[0], 0, 1)
    assert float(np.abs(got - ref[6]).max()) > 1e-3


def test_single_model_pack_is_the_plain_full_frame_model(tmp_path, frames) -> None:
    one = make_pack(tmp_path / "j.vsvsr", frames=NUM, lr_size=(W, H), models=1, method="jstdo")
    out = sr(one, frames)
    want = reference_frames(one, frames)
    for n in (0, 9):
        np.testing.assert_array_equal(rgb(out.get_frame(n)), want[n])


def test_yuv_clip_comes_back_as_yuv(pack, frames) -> None:
    clip = synth.array_clip(frames, fmt=vs.YUV444P16)
    out = vsvsr.overfit(clip, pack=pack, backend="ort", threads=1)
    assert out.format.id == vs.YUV444P16 and (out.width, out.height) == (2 * W, 2 * H)
    out.get_frame(3)


def test_automatic_parallelism_shares_the_cores(monkeypatch) -> None:
    """streams=0: a frame per VapourSynth thread on the CPU, one on CUDA; threads=0 shares the
    cores out so that streams x threads never oversubscribes them."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    old = vs.core.num_threads
    try:
        vs.core.num_threads = 4
        assert parallelism("ort", 0, 0) == (4, 2)
        assert parallelism("ort-cuda", 0, 0) == (1, 8)
        assert parallelism("ort", 3, 0) == (3, 2)
        assert parallelism("ort", 0, 5) == (4, 5)
        vs.core.num_threads = 16  # more VapourSynth threads than cores: one stream per core
        assert parallelism("ort", 0, 0) == (8, 1)
    finally:
        vs.core.num_threads = old


def test_wrong_clip_and_arguments_are_refused(pack, frames) -> None:
    with pytest.raises(PackError, match="made for a 28x20 clip"):
        vsvsr.overfit(synth.array_clip(synth.make_frames(NUM, H, W + 2)), pack=pack)
    with pytest.raises(PackError, match="16 frames but the clip has 15"):
        vsvsr.overfit(synth.array_clip(frames[:15]), pack=pack)
    with pytest.raises(PackError, match="x2 pack, not x4"):
        vsvsr.overfit(synth.array_clip(frames), pack=pack, scale=4)
    with pytest.raises(BackendUnavailableError, match="cannot run overfit packs"):
        vsvsr.overfit(synth.array_clip(frames), pack=pack, backend="tensorrt")
    with pytest.raises(ClipFormatError, match="streams must be"):
        vsvsr.overfit(synth.array_clip(frames), pack=pack, streams=-1)
    with pytest.raises(ClipFormatError, match="threads must be"):
        vsvsr.overfit(synth.array_clip(frames), pack=pack, threads=1.5)
    with pytest.raises(ClipFormatError, match="mode must be"):
        vsvsr.overfit(synth.array_clip(frames), pack=pack, mode="tiles")


def vspipe_frames(args: dict[str, object], threads: int) -> list[np.ndarray]:
    cmd = [tool("vspipe"), str(TESTS / "vpy" / "overfit_case.vpy"), "-", "-a",
           f"vs_threads={threads}"]
    for k, v in args.items():
        cmd += ["-a", f"{k}={v}"]
    proc = subprocess.run(cmd, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    h, w = 2 * H, 2 * W
    size = 3 * h * w * 4
    assert len(proc.stdout) % size == 0
    # vspipe writes RGB planes in the order G, B, R
    return [np.frombuffer(proc.stdout[i:i + size], np.float32).reshape(3, h, w)[[2, 0, 1]]
            for i in range(0, len(proc.stdout), size)]


@pytest.mark.parametrize("extra", [{}, {"twice": 1}, {"streams": 4}])
def test_vspipe_8_threads_equals_the_reference(pack, ref, extra) -> None:
    got = vspipe_frames({"pack": pack, "num": NUM, "height": H, "width": W, **extra}, threads=8)
    want = ref if "twice" not in extra else \
        [x for i in range(NUM) for x in (ref[i], ref[min(i + 1, NUM - 1)])]
    assert len(got) == len(want)
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if not np.array_equal(g, w)]
    assert not bad, f"{len(bad)} frames differ, first {bad[:5]}"


def test_filter_path_never_imports_torch(pack) -> None:
    code = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import synth, vsvsr
out = vsvsr.overfit(synth.array_clip(synth.make_frames({NUM}, {H}, {W})), pack={str(pack)!r})
out.get_frame(2)
print('torch' in sys.modules, 'onnxruntime' in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["False", "True"]


def test_wdsr_s_pack_patch_mode_equals_full_mode(tmp_path, frames) -> None:
    w = make_pack(tmp_path / "w.vsvsr", frames=NUM, lr_size=(W, H), models=2, seed=6,
                  arch="wdsr-s")
    full = PackRunner(read_pack(w), "ort", threads=1)
    patch = PackRunner(read_pack(w), "ort", threads=1, mode="patch")
    box = PackRunner(read_pack(w), "ort", threads=1, mode="box")
    n = next(i for i in range(NUM) if len(np.unique(full.pack.labels[i])) > 1)
    x = frames[n][None]
    a, b = full.upscale(x, n), patch.upscale(x, n)
    np.testing.assert_allclose(a, b, atol=2e-6, rtol=0)
    np.testing.assert_allclose(a, box.upscale(x, n), atol=2e-6, rtol=0)
    np.testing.assert_array_equal(np.clip(a[0], 0, 1), reference_frames(w, [frames[n]] * (n + 1))[n])


def test_box_mode_with_small_boxes_in_corners(pack, frames) -> None:
    """Models used by one corner patch each run on a small crop; still exact."""
    from dataclasses import replace

    p = read_pack(pack)
    labels = np.zeros_like(p.labels)
    labels[:, 0, 0], labels[:, 2, 3], labels[:, 1, 1:3] = 1, 2, 1
    q = replace(p, labels=labels)
    calls = []
    box = PackRunner(q, "ort", threads=1, mode="box")
    real = box.run_model
    box.run_model = lambda k, x: calls.append(x.shape[2:]) or real(k, x)  # type: ignore[method-assign]
    full = PackRunner(q, "ort", threads=1)
    x = frames[2][None]
    np.testing.assert_allclose(box.upscale(x, 2), full.upscale(x, 2), atol=2e-6, rtol=0)
    assert calls[0] == (H, W) and all(c[0] < H and c[1] < W for c in calls[1:]), calls
