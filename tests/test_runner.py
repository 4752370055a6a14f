"""The recurrent runner alone (no VapourSynth): exactness under any request order."""

from __future__ import annotations

import numpy as np
import pytest

from vsvsr.errors import StateFileError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.recurrence.runner import RecurrentRunner
from vsvsr.recurrence.state_store import StateKey, StateStore
from vsvsr.recurrence.stepper import RecurrentStepper
from vsvsr.runtime.engine import Engine, TensorSpec

H, W, C = 4, 5, 2


class ToyEngine(Engine):
    """A recurrent 'network' whose output depends on the whole history and the step number."""

    backend = "toy"

    def __init__(self) -> None:
        super().__init__(ModelDescriptor(name="toy", arch="toy", scale=1, recurrent=True,
                                         state_channels=C))
        self.model_sha256 = "toy-sha"
        self.calls = 0

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        f = np.dtype(np.float32)
        return (TensorSpec("lr", (1, 3, None, None), f), TensorSpec("lr_prev", (1, 3, None, None), f),
                TensorSpec("state", (1, C, None, None), f), TensorSpec("step", (1, 1, 1, 1), f))

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return ()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        lr, prev, state, step = feeds["lr"], feeds["lr_prev"], feeds["state"], feeds["step"]
        new = 0.9 * state + 0.1 * (lr[:, :C] - prev[:, :C]) + 0.01 * lr[:, 1:1 + C]
        sr = lr + new.mean() + 1e-3 * step.reshape(())
        return {"sr": sr.astype(np.float32), "state_out": new.astype(np.float32)}


class ListSource:
    def __init__(self, frames: list[np.ndarray], resets: set[int]) -> None:
        self.frames, self.resets, self.num_frames = frames, resets, len(frames)
        self.fetches = 0

    def fetch(self, n: int) -> tuple[np.ndarray, bool]:
        self.fetches += 1
        return self.frames[n], n in self.resets


def make_frames(num: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((1, 3, H, W), dtype=np.float32) for _ in range(num)]


def reference(frames: list[np.ndarray], resets: set[int]) -> list[np.ndarray]:
    """Sequential run: the definition of the right answer."""
    stepper = RecurrentStepper(ToyEngine())
    outs, state, prev, step = [], None, None, 0
    for n, f in enumerate(frames):
        if n == 0 or n in resets:
            state, prev, step = stepper.zero_state(H, W), f, 0
        sr, state = stepper.step(f, prev, state, step)
        outs.append(sr)
        prev, step = f, step + 1
    return outs


def make_runner(frames, resets, **kw) -> tuple[RecurrentRunner, ListSource, ToyEngine]:
    engine = ToyEngine()
    source = ListSource(frames, resets)
    return RecurrentRunner(RecurrentStepper(engine), source, **kw), source, engine


ORDERS = {
    "sequential": lambda n: list(range(n)),
    "reverse": lambda n: list(range(n))[::-1],
    "random": lambda n: list(np.random.default_rng(3).permutation(n)),
    "seek_first": lambda n: [n // 2, *range(n)],
    "jittered": lambda n: [i + d for i in range(0, n - 4, 4) for d in (2, 0, 3, 1)],
    "twice_interleaved": lambda n: [x for i in range(n - 1) for x in (i, i + 1)],
}


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("cache_frames", [1, 16])
def test_any_order_matches_sequential(order: str, cache_frames: int) -> None:
    frames, resets = make_frames(40), {13, 29}
    ref = reference(frames, resets)
    runner, _, _ = make_runner(frames, resets, cache_frames=cache_frames)
    for n in ORDERS[order](40):
        np.testing.assert_array_equal(runner.get(int(n)), ref[n], err_msg=f"frame {n}")


def test_sequential_costs_one_step_per_frame() -> None:
    frames = make_frames(30)
    runner, source, engine = make_runner(frames, set())
    for n in range(30):
        runner.get(n)
    assert engine.calls == 30
    assert runner.stats.new_cursors == 1
    assert source.fetches <= 31  # one per frame, plus the reset scan of frame 0 at most


def test_seek_restarts_from_the_last_scene_change_not_frame_zero() -> None:
    frames = make_frames(50)
    runner, _, engine = make_runner(frames, {30})
    runner.get(40)
    assert engine.calls == 11  # frames 30..40


def test_cache_serves_repeated_requests_without_steps() -> None:
    frames = make_frames(10)
    runner, _, engine = make_runner(frames, set(), cache_frames=4)
    runner.get(9)
    calls = engine.calls
    for n in (9, 8, 7, 6):
        runner.get(n)
    assert engine.calls == calls
    assert runner.stats.cache_hits == 4


def test_out_of_order_miss_behind_all_cursors_recomputes_exactly() -> None:
    frames, resets = make_frames(30), set()
    ref = reference(frames, resets)
    runner, _, _ = make_runner(frames, resets, cache_frames=1, max_cursors=1)
    runner.get(25)
    np.testing.assert_array_equal(runner.get(3), ref[3])
    np.testing.assert_array_equal(runner.get(26), ref[26])


def test_warmup_bounds_seek_work_and_is_documented_as_approximate() -> None:
    frames = make_frames(60)
    ref = reference(frames, set())
    runner, _, engine = make_runner(frames, set(), warmup=5)
    out = runner.get(50)
    assert engine.calls == 6  # frames 45..50 only
    assert not np.array_equal(out, ref[50])  # approximate: the history before 45 is missing
    # With warm-up the seek behaves exactly like a reset at 45.
    np.testing.assert_array_equal(out, reference(frames, {45})[50])


def test_warmup_still_exact_when_a_reset_is_within_reach() -> None:
    frames = make_frames(60)
    ref = reference(frames, {48})
    runner, _, _ = make_runner(frames, {48}, warmup=5)
    np.testing.assert_array_equal(runner.get(50), ref[50])


def key(**over) -> StateKey:
    base = dict(model_name="toy", model_sha256="toy-sha", scale=1, width=W, height=H,
                state_channels=C)
    base.update(over)
    return StateKey(**base)


def test_saved_state_lets_a_second_run_continue_exactly(tmp_path) -> None:
    frames = make_frames(40)
    ref = reference(frames, set())
    first, _, _ = make_runner(frames, set(), store=StateStore(tmp_path, key()))
    for n in range(20):
        first.get(n)
    first.save_states()
    assert (tmp_path / "state_00000019.vsvsrstate").is_file()
    second, _, engine = make_runner(frames, set(), store=StateStore(tmp_path, key()))
    for n in range(20, 40):
        np.testing.assert_array_equal(second.get(n), ref[n])
    assert engine.calls == 20  # nothing before frame 20 was recomputed
    assert second.stats.states_loaded == 1


def test_saved_state_is_ignored_when_a_scene_change_follows_it(tmp_path) -> None:
    frames = make_frames(40)
    ref = reference(frames, {25})
    first, _, _ = make_runner(frames, {25}, store=StateStore(tmp_path, key()))
    for n in range(20):
        first.get(n)
    first.save_states()
    second, _, _ = make_runner(frames, {25}, store=StateStore(tmp_path, key()))
    np.testing.assert_array_equal(second.get(30), ref[30])
    assert second.stats.states_loaded == 0


@pytest.mark.parametrize("field,value,words", [
    ("model_sha256", "other", "another model weights"),
    ("width", W + 2, "another width"),
    ("scale", 2, "another scale"),
])
def test_state_for_another_model_or_size_is_refused(tmp_path, field, value, words) -> None:
    frames = make_frames(20)
    first, _, _ = make_runner(frames, set(), store=StateStore(tmp_path, key()))
    first.get(9)
    first.save_states()
    other, _, _ = make_runner(frames, set(), store=StateStore(tmp_path, key(**{field: value})))
    with pytest.raises(StateFileError, match=words):
        other.get(15)


def test_state_for_another_clip_is_refused(tmp_path) -> None:
    first, _, _ = make_runner(make_frames(20, seed=1), set(), store=StateStore(tmp_path, key()))
    first.get(9)
    first.save_states()
    other, _, _ = make_runner(make_frames(20, seed=2), set(), store=StateStore(tmp_path, key()))
    with pytest.raises(StateFileError, match="another clip"):
        other.get(15)


def test_truncated_state_file_is_refused_with_the_fix(tmp_path) -> None:
    frames = make_frames(20)
    first, _, _ = make_runner(frames, set(), store=StateStore(tmp_path, key()))
    first.get(9)
    first.save_states()
    path = tmp_path / "state_00000009.vsvsrstate"
    path.write_bytes(path.read_bytes()[:100])
    other, _, _ = make_runner(frames, set(), store=StateStore(tmp_path, key()))
    with pytest.raises(StateFileError, match="delete"):
        other.get(15)


def test_runner_rejects_bad_settings() -> None:
    frames = make_frames(3)
    with pytest.raises(ValueError, match="max_cursors"):
        make_runner(frames, set(), max_cursors=0)
    with pytest.raises(ValueError, match="warmup"):
        make_runner(frames, set(), warmup=-1)
    runner, _, _ = make_runner(frames, set())
    with pytest.raises(IndexError):
        runner.get(3)
