"""Patch grid, per-patch PSNR, quantile chunks (inf, ties), JSTDO fractions, time segments."""

from __future__ import annotations

import numpy as np
import pytest

from vsvsr.stdo.chunking import (
    ChunkingError,
    default_fractions,
    jstdo_selection,
    parse_fractions,
    quantile_chunks,
    time_segments,
)
from vsvsr.stdo.grid import GridError, PatchGrid
from vsvsr.stdo.scoring import patch_psnr

INF = np.inf


def test_chunks_follow_the_psnr_order() -> None:
    psnr = np.array([30.0, 10.0, 20.0, 40.0, 25.0, 35.0, 15.0, 5.0])
    # sorted: 5(7) 10(1) 15(6) 20(2) | 25(4) 30(0) 35(5) 40(3)
    np.testing.assert_array_equal(quantile_chunks(psnr, 2), [1, 0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(quantile_chunks(psnr, 4), [2, 0, 1, 3, 2, 3, 1, 0])


def test_infinite_psnr_lands_in_the_last_chunk() -> None:
    psnr = np.array([[INF, 31.0, 12.0], [INF, 50.0, 12.5]])
    labels = quantile_chunks(psnr, 3)
    # sorted: 12(0,2) 12.5(1,2) | 31(0,1) 50(1,1) | inf(0,0) inf(1,0)
    np.testing.assert_array_equal(labels, [[2, 1, 0], [2, 1, 0]])
    assert labels.dtype == np.uint8 and labels.shape == psnr.shape


def test_all_infinite_still_gives_equal_chunks() -> None:
    labels = quantile_chunks(np.full(6, INF), 3)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2])  # ties broken by index


def test_ties_across_a_boundary_keep_equal_sizes_and_index_order() -> None:
    psnr = np.array([20.0, 20.0, 20.0, 20.0, 10.0, 30.0])
    # sorted: 10(4) 20(0) 20(1) | 20(2) 20(3) 30(5): the tie is split by flat index
    np.testing.assert_array_equal(quantile_chunks(psnr, 2), [0, 0, 1, 1, 0, 1])


def test_uneven_counts_differ_by_at_most_one() -> None:
    psnr = np.random.default_rng(0).normal(30, 3, 103)
    psnr[::7] = INF
    labels = quantile_chunks(psnr, 4)
    sizes = np.bincount(labels, minlength=4)
    assert sizes.sum() == 103 and sizes.max() - sizes.min() <= 1
    # monotone: every chunk's max <= the next chunk's min
    for k in range(3):
        assert psnr[labels == k].max() <= psnr[labels == k + 1].min()


@pytest.mark.parametrize("bad, k, words", [
    (np.array([1.0, np.nan, 2.0]), 2, "NaN"),
    (np.array([1.0, -INF, 2.0]), 2, "-inf"),
    (np.array([1.0, 2.0]), 3, "cannot fill"),
    (np.array([1.0, 2.0]), 0, "between 1 and 255"),
])
def test_bad_scores_are_refused(bad, k, words) -> None:
    with pytest.raises(ChunkingError, match=words):
        quantile_chunks(bad, k)


def test_jstdo_fractions_and_selection() -> None:
    assert default_fractions(4) == pytest.approx((1.0, 2 / 3, 1 / 3, 0.0))
    assert default_fractions(2) == (1.0, 0.0)
    assert default_fractions(1) == (1.0,)
    labels = quantile_chunks(np.arange(120, dtype=float), 4).reshape(10, 3, 4)
    keep = jstdo_selection(labels, default_fractions(4), seed=3)
    per_chunk = [int(keep[labels == k].sum()) for k in range(4)]
    assert per_chunk == [30, 20, 10, 0]
    np.testing.assert_array_equal(keep, jstdo_selection(labels, default_fractions(4), seed=3))
    assert parse_fractions("1,0.5,0.25,0", 4) == (1.0, 0.5, 0.25, 0.0)
    for text in ("1,0.5", "1,x,0,0", "1,2,0,0", "0,1,1,1"):
        with pytest.raises(ChunkingError):
            parse_fractions(text, 4)


def test_time_segments() -> None:
    np.testing.assert_array_equal(time_segments(10, 3), [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    with pytest.raises(ChunkingError):
        time_segments(3, 4)


def test_grid_bounds_cover_the_frame_once() -> None:
    g = PatchGrid(50, 23, 4, 3)
    np.testing.assert_array_equal(g.xs(), [0, 12, 25, 37, 50])
    np.testing.assert_array_equal(g.ys(2), [0, 14, 30, 46])
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    pm = g.pixel_map(labels, 2)
    assert pm.shape == (46, 100)
    assert np.bincount(pm.ravel()).tolist() == [int(np.diff(g.ys(2))[r] * np.diff(g.xs(2))[c])
                                                for r in range(3) for c in range(4)]
    assert pm[29, 49] == labels[1, 1] and pm[30, 50] == labels[2, 2]
    assert PatchGrid.default(480, 270, 4).count == 50  # the paper's 10x5 at 1080p / 4
    assert PatchGrid.default(960, 540, 2).count == 200  # 20x10
    with pytest.raises(GridError):
        PatchGrid(8, 8, 9, 1)


def test_patch_psnr_is_infinite_only_where_exact() -> None:
    g = PatchGrid(4, 4, 2, 2)
    ref = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    test = ref.copy()
    test[0, 5] = 255 - test[0, 5]  # top-right patch only
    test[6, 1] = 255 - test[6, 1]  # bottom-left patch only
    p = patch_psnr(test, ref, g, 2)
    assert np.isinf(p[0, 0]) and np.isinf(p[1, 1])
    assert np.isfinite(p[0, 1]) and np.isfinite(p[1, 0])
    assert 10 < p[0, 1] < 60
