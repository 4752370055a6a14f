"""Saved states: compact and lossless (every bit back), and every damaged file refused with the
clear StateFileError (fuzzed: bit flips, truncations, zeroed runs, appended bytes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vsvsr.errors import StateFileError
from vsvsr.recurrence.state_store import StateKey, StateStore

C, H, W = 6, 24, 32
HASH = "ab" * 16


def key(**changes: object) -> StateKey:
    base = {"model_name": "m", "model_sha256": "s" * 64, "scale": 2, "width": W, "height": H,
            "state_channels": C}
    return StateKey(**{**base, **changes})  # type: ignore[arg-type]


def smooth_state(dtype: type = np.float32, seed: int = 0) -> np.ndarray:
    """Like a network's state: smooth fields with noisy low bits (and a few exact zeros)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W] / 8.0
    planes = [np.sin(x * (c + 1) * 0.3 + y * 0.2 * c) + 0.01 * rng.standard_normal((H, W))
              for c in range(C)]
    state = np.stack(planes)[None].astype(dtype)
    state[0, 0, :2] = 0.0
    return state


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_states_come_back_bit_for_bit(tmp_path: Path, dtype: type) -> None:
    state = smooth_state(dtype)
    store = StateStore(tmp_path, key())
    path = store.save(7, state, 8, HASH)
    got, step = StateStore(tmp_path, key()).load(7, HASH)
    assert step == 8 and got.dtype == np.float32
    # float16 states (fp16 backends) are stored as float16: exact after the float32 widening
    assert np.array_equal(got.astype(dtype).view(np.uint8), state.view(np.uint8))
    assert path.stat().st_size < state.nbytes  # compressed, header included


def test_state_file_is_smaller_than_the_raw_array(tmp_path: Path) -> None:
    """Byte shuffling is what makes float32 compress: zlib alone gains little (real states:
    34.4 MB raw, 31.4 MB zlib alone, 27.7 MB shuffled; docs/recurrent-filter.md)."""
    import zlib

    state = smooth_state()
    path = StateStore(tmp_path, key()).save(0, state, 1, HASH)
    assert path.stat().st_size < 0.85 * state.nbytes
    assert path.stat().st_size < 0.95 * len(zlib.compress(state.tobytes(), 1))


def test_format_1_files_are_still_read(tmp_path: Path) -> None:
    state = smooth_state()
    _save_format1(tmp_path / "state_00000003.vsvsrstate", state, 4)
    got, step = StateStore(tmp_path, key()).load(3, HASH)
    assert step == 4 and np.array_equal(got, state)


def _save_format1(path: Path, state: np.ndarray, step: int) -> None:
    """What vsvsr 0.1 wrote (np.savez of the state and a JSON meta)."""
    from dataclasses import asdict

    meta = {"format": 1, "frame": 3, "step": step, "input_hash": HASH, "key": asdict(key())}
    with path.open("wb") as fh:
        np.savez(fh, state=state, meta=np.array(json.dumps(meta)))


def _damaged(good: bytes, rng: np.random.Generator, kind: str) -> bytes:
    data = bytearray(good)
    n = len(data)
    if kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            pos = int(rng.integers(n))
            data[pos] ^= 1 << int(rng.integers(8))
        return bytes(data)
    if kind == "truncate":
        return bytes(data[:int(rng.integers(n))])
    if kind == "zeros":
        start = int(rng.integers(n))
        data[start:start + int(rng.integers(1, 257))] = bytes(min(n - start, 256))
        return bytes(data[:n])
    return bytes(data) + rng.bytes(int(rng.integers(1, 64)))  # "append"


@pytest.mark.parametrize("version", [2, 1])
def test_every_damaged_state_file_is_refused_clearly(tmp_path: Path, version: int) -> None:
    """300 damaged copies each: all StateFileError, none accepted, none another exception."""
    state = smooth_state()
    store = StateStore(tmp_path, key())
    path = store.path(5)
    if version == 2:
        store.save(5, state, 6, HASH)
    else:
        _save_format1(path, state, 6)
    good = path.read_bytes()
    rng = np.random.default_rng(1234)
    kinds = ("flip", "truncate", "zeros", "append")
    outcomes: dict[str, int] = {}
    for i in range(300):
        kind = kinds[i % len(kinds)]
        bad = _damaged(good, rng, kind)
        if bad == good:
            continue
        path.write_bytes(bad)
        try:
            got, step = StateStore(tmp_path, key()).load(5, HASH)
        except StateFileError as exc:
            assert "delete" in str(exc)
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            continue
        # Only format 1 can accept a damaged file (its zip has no CRC over everything), and then
        # only with the same contents (e.g. damage in a zip field that nothing reads).
        assert version == 1, f"damaged ({kind}) format 2 file accepted"
        assert step == 6 and np.array_equal(got, state), f"{kind}: different contents accepted"
        outcomes["same contents"] = outcomes.get("same contents", 0) + 1
    if version == 2:
        assert outcomes == {"refused": sum(outcomes.values())} and outcomes["refused"] >= 290


def test_files_that_are_not_states(tmp_path: Path) -> None:
    store = StateStore(tmp_path, key())
    for content in (b"", b"VSVSRST\x00", b"PK\x03\x04 not a zip", b"hello world" * 10):
        store.path(1).write_bytes(content)
        with pytest.raises(StateFileError, match="unreadable"):
            StateStore(tmp_path, key()).load(1, HASH)
