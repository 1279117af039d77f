"""edge.analytics.assignment against scipy's linear_sum_assignment; the runtime stays
scipy-free."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import linear_sum_assignment

from edge.analytics.assignment import _min_assignment, _min_assignment_small, max_weight_matching


def _check(score: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> None:
    rows, cols = max_weight_matching(score)
    assert rows.dtype == np.intp and cols.dtype == np.intp
    assert rows.shape == cols.shape
    assert len(set(rows.tolist())) == rows.size
    assert len(set(cols.tolist())) == cols.size
    assert np.all(score[rows, cols] > 0)
    ref_rows, ref_cols = linear_sum_assignment(score, maximize=True)
    expected = float(score[ref_rows, ref_cols].astype(np.float64).sum())
    assert float(score[rows, cols].astype(np.float64).sum()) == pytest.approx(expected, abs=1e-6)


@st.composite
def _scores(draw: st.DrawFn) -> npt.NDArray[np.float64]:
    shape = draw(st.tuples(st.integers(0, 12), st.integers(0, 12)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    # Few distinct values make ties; the mask makes the matrix anything from empty to dense.
    values = draw(
        hnp.arrays(dtype, shape, elements=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 1.0]))
        | hnp.arrays(dtype, shape, elements=st.floats(0, 1, width=32))
    )
    density = draw(st.sampled_from([0.1, 0.3, 1.0]))
    mask = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1))) < density
    return np.where(mask, values, 0).astype(dtype)


@settings(max_examples=400, deadline=None)
@given(_scores())
def test_matches_scipy(score: npt.NDArray[np.float64]) -> None:
    _check(score)


def test_random_dense_and_sparse() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        n, m = rng.integers(0, 13, 2)
        score = rng.random((n, m)) * (rng.random((n, m)) < rng.random())
        _check(score)


def test_empty_and_zero() -> None:
    for shape in [(0, 0), (0, 5), (5, 0), (3, 4)]:
        rows, cols = max_weight_matching(np.zeros(shape, np.float32))
        assert rows.size == 0 and cols.size == 0


def test_block_sparse_60x60() -> None:
    rng = np.random.default_rng(7)
    score = np.zeros((60, 60), np.float32)
    start = 0
    while start < 60:  # blocks of 1-9 rows and columns along the diagonal, some rectangular
        h, w = rng.integers(1, 10, 2)
        block = rng.random((h, w)) * (rng.random((h, w)) < 0.7)
        score[start : start + h, start : start + w] = block[: 60 - start, : 60 - start]
        start += int(max(h, w))
    _check(score)
    _check(score.T.copy())


def test_prefers_total_over_greedy() -> None:
    score = np.array([[0.9, 0.8], [0.7, 0.0]])
    rows, cols = max_weight_matching(score)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


def test_runtime_does_not_import_scipy() -> None:
    code = (
        "import sys, edge.analytics.track, edge.analytics.pipeline; "
        "assert 'scipy' not in sys.modules, 'scipy'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("small", [False, True])
def test_both_min_solvers(small: bool) -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 10))
        m = int(rng.integers(n, 12))
        cost = np.round(rng.random((n, m)), int(rng.integers(1, 4)))
        if small:
            pairs = np.array(_min_assignment_small(cost.tolist()), np.intp)
            rows, cols = pairs[:, 0], pairs[:, 1]
        else:
            rows, cols = _min_assignment(cost)
        assert sorted(rows.tolist()) == list(range(n)) and len(set(cols.tolist())) == n
        ref_rows, ref_cols = linear_sum_assignment(cost)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum(), abs=1e-9)
