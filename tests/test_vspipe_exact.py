"""The filter under real vspipe: bit-exact for any thread count, start offset, trim, reuse."""

from __future__ import annotations

import numpy as np
import pytest
import synth
from reference import ort_reference, torch_reference, vspipe_rgbs

NUM, H, W, CUT = 40, 24, 32, 17


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return synth.make_frames(NUM, H, W, cuts=[CUT])


@pytest.fixture(scope="module")
def torch_ref(random_model, frames):
    return torch_reference(random_model, frames, {CUT})


def case(model, backend: str = "torch", **extra) -> dict[str, object]:
    args = {"model": model, "backend": backend, "num": NUM, "height": H, "width": W,
            "cuts": CUT, "scene_props": CUT}
    args.update(extra)
    return args


def assert_frames_equal(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if not np.array_equal(g, w)]
    assert not bad, f"{len(bad)} frames differ, first {bad[:5]}"


@pytest.mark.parametrize("threads", [1, 2, 8])
def test_vspipe_equals_sequential_pytorch_run(random_model, torch_ref, threads) -> None:
    got, _ = vspipe_rgbs(case(random_model), threads=threads, shape=(2 * H, 2 * W))
    assert_frames_equal(got, torch_ref)


@pytest.mark.parametrize("threads", [1, 8])
def test_vspipe_ort_equals_sequential_ort_run_and_is_close_to_pytorch(
        random_model, frames, torch_ref, threads) -> None:
    got, _ = vspipe_rgbs(case(random_model, "ort"), threads=threads, shape=(2 * H, 2 * W))
    assert_frames_equal(got, ort_reference(random_model, frames, {CUT}))
    worst = max(float(np.abs(g - r).max()) for g, r in zip(got, torch_ref, strict=True))
    assert worst < 1e-5


def test_vspipe_start_offset_and_many_requests(random_model, torch_ref) -> None:
    got, _ = vspipe_rgbs(case(random_model), threads=8, extra=["-s", "23", "-e", "35", "-r", "32"],
                         shape=(2 * H, 2 * W))
    assert_frames_equal(got, torch_ref[23:36])


def test_trim_after_the_filter_keeps_the_untrimmed_history(random_model, torch_ref) -> None:
    got, _ = vspipe_rgbs(case(random_model, trim="5:15"), threads=8, shape=(2 * H, 2 * W))
    assert_frames_equal(got, torch_ref[5:15])


def test_node_used_twice_interleaved_with_itself(random_model, torch_ref) -> None:
    got, _ = vspipe_rgbs(case(random_model, twice="1"), threads=8, shape=(2 * H, 2 * W))
    want = [x for i in range(NUM) for x in (torch_ref[i], torch_ref[min(i + 1, NUM - 1)])]
    assert_frames_equal(got, want)


def test_two_chunks_with_state_dir_equal_one_continuous_run(random_model, torch_ref,
                                                            tmp_path) -> None:
    # One scene from frame 0 to CUT-1: chunk 2 starts mid-scene, so it needs the saved state.
    first, _ = vspipe_rgbs(case(random_model, trim="0:12", state_dir=tmp_path, log=1),
                           threads=8, shape=(2 * H, 2 * W))
    assert (tmp_path / "state_00000011.vsvsrstate").is_file()
    second, err = vspipe_rgbs(case(random_model, trim="12:40", state_dir=tmp_path, log=1),
                              threads=8, shape=(2 * H, 2 * W))
    assert "continuing from the saved state after frame 11" in err
    assert_frames_equal(first + second, torch_ref)
