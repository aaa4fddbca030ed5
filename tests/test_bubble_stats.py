"""Point-biserial statistics of bubble analysis (ssbm_bench.metrics.bubbles)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from ssbm_bench.errors import InputError
from ssbm_bench.metrics.bubbles import PointBiserialSums, correlation_pvalue, point_biserial


def test_input_is_not_modified():
    rng = np.random.default_rng(0)
    d = rng.random((10, 2, 3))
    keep = d.copy()
    y = rng.random(10) < 0.5
    point_biserial(d, y)
    PointBiserialSums((2, 3), 1).add(d, y[:, None])
    np.testing.assert_array_equal(d, keep)


def test_hand_worked_tiny_case():
    # D = 0, 1, 2, 3 with y = 0, 0, 1, 1: centred D = -1.5 -0.5 0.5 1.5, centred y = +-0.5,
    # co-moment 2, sum of squares 5 and 1, r = 2 / sqrt(5); t = r sqrt(2 / (1 - r^2)) = 2 sqrt(2),
    # and for df = 2 the t distribution has sf(t) = 1/2 - t / (2 sqrt(t^2 + 2)), so p = 1 - 2 / sqrt(5).
    d = np.array([0.0, 1.0, 2.0, 3.0]).reshape(4, 1, 1)
    y = np.array([False, False, True, True])
    r, p = point_biserial(d, y)
    assert r.shape == p.shape == (1, 1)
    assert r[0, 0] == pytest.approx(2 / np.sqrt(5), abs=1e-12)
    assert p[0, 0] == pytest.approx(1 - 2 / np.sqrt(5), abs=1e-12)


def test_matches_scipy_pointbiserialr_at_many_points():
    rng = np.random.default_rng(7)
    n, f, t = 57, 6, 9
    y = rng.random(n) < 0.4
    # audibility correlated with y at some points, independent at others
    d = rng.random((n, f, t)) + y[:, None, None] * rng.random((1, f, t)) * 0.8
    r, p = point_biserial(d.astype(np.float32), y)
    for fi, ti in [(0, 0), (1, 3), (5, 8), (2, 7), (4, 4)]:
        ref = stats.pointbiserialr(y, d[:, fi, ti].astype(np.float32).astype(np.float64))
        assert r[fi, ti] == pytest.approx(ref.statistic, abs=1e-9)
        assert p[fi, ti] == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-15)
    # and everywhere, against a direct Pearson correlation
    dc = d - d.mean(0)
    yc = y - y.mean()
    direct = np.tensordot(yc, dc, (0, 0)) / np.sqrt((dc**2).sum(0) * (yc**2).sum())
    np.testing.assert_allclose(r, direct, atol=1e-6)


def test_blocks_do_not_change_the_answer():
    rng = np.random.default_rng(1)
    d = rng.random((40, 13, 11))
    y = rng.random(40) < 0.5
    whole = point_biserial(d, y, max_block_bytes=1 << 40)
    one_row = point_biserial(d, y, max_block_bytes=1)
    np.testing.assert_allclose(whole[0], one_row[0], atol=1e-14)
    np.testing.assert_allclose(whole[1], one_row[1], rtol=1e-12)


def test_degenerate_outcomes_give_r0_p1():
    rng = np.random.default_rng(2)
    d = rng.random((20, 3, 4))
    for y in (np.ones(20, bool), np.zeros(20, bool)):
        r, p = point_biserial(d, y)
        assert np.all(r == 0) and np.all(p == 1)
        acc = PointBiserialSums((3, 4), 1)
        acc.add(d, y[:, None])
        r2, p2 = acc.result(0)
        assert np.all(r2 == 0) and np.all(p2 == 1)


def test_constant_audibility_point_gives_r0_p1():
    rng = np.random.default_rng(3)
    d = rng.random((30, 2, 2))
    d[:, 0, 1] = 0.1  # not exactly representable: a naive variance would not be exactly 0
    d[:, 1, 0] = 0.0
    y = rng.random(30) < 0.5
    r, p = point_biserial(d, y)
    assert r[0, 1] == 0 and p[0, 1] == 1
    assert r[1, 0] == 0 and p[1, 0] == 1
    assert r[0, 0] != 0


def test_perfect_correlation_gives_p0():
    y = np.array([0, 1, 0, 1, 1, 0], dtype=bool)
    d = np.stack([y * 1.0, 1.0 - y], axis=1).reshape(6, 1, 2)
    r, p = point_biserial(d, y)
    np.testing.assert_allclose(r[0], [1.0, -1.0])
    np.testing.assert_array_equal(p[0], [0.0, 0.0])


def test_too_few_mixtures_and_bad_input_are_refused():
    with pytest.raises(InputError, match="at least 3 mixtures"):
        point_biserial(np.zeros((2, 1, 1)), [True, False])
    with pytest.raises(InputError, match="entries"):
        point_biserial(np.zeros((4, 1, 1)), [True, False])
    with pytest.raises(InputError, match="binary"):
        point_biserial(np.zeros((3, 1, 1)), [0.5, 1, 0])
    with pytest.raises(InputError, match="NaN"):
        point_biserial(np.full((3, 1, 1), np.nan), [1, 1, 0])
    with pytest.raises(InputError, match="frequency, time"):
        point_biserial(np.zeros((3, 4)), [1, 1, 0])


def test_streaming_sums_match_the_array_function():
    rng = np.random.default_rng(4)
    n, f, t, k = 73, 5, 7, 3
    d = rng.random((n, f, t))
    d[:, 2, 2] = 0.0  # constant point
    ys = rng.random((n, k)) < np.array([0.3, 0.6, 0.9])
    ys[:, 2] = True  # a word recognised everywhere
    acc = PointBiserialSums((f, t), k)
    for lo in range(0, n, 10):  # uneven batches (10, ..., 3)
        acc.add(d[lo:lo + 10], ys[lo:lo + 10])
    assert acc.n == n
    np.testing.assert_array_equal(acc.positives(), ys.sum(0))
    for j in range(k):
        r, p = point_biserial(d, ys[:, j])
        r2, p2 = acc.result(j)
        np.testing.assert_allclose(r2, r, atol=1e-12)
        np.testing.assert_allclose(p2, p, rtol=1e-9, atol=1e-14)
    r2, p2 = acc.result(2)
    assert np.all(r2 == 0) and np.all(p2 == 1)


def test_correlation_pvalue_matches_scipy_pearson():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(25)
    z = x + rng.standard_normal(25)
    ref = stats.pearsonr(x, z)
    assert correlation_pvalue(np.array(ref.statistic), 25) == pytest.approx(ref.pvalue, rel=1e-9)


# --------------------------------------------------------------------------- properties

def _cases():
    return st.integers(3, 30).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, (n, 2, 3), elements=st.floats(-1e3, 1e3, allow_nan=False, width=32)),
            hnp.arrays(np.bool_, (n,)),
        )
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_ranges(case):
    d, y = case
    r, p = point_biserial(d, y)
    assert np.all(np.isfinite(r)) and np.all(np.isfinite(p))
    assert np.all((r >= -1) & (r <= 1))
    assert np.all((p >= 0) & (p <= 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_flipping_y_flips_r_and_keeps_p(case):
    d, y = case
    r, p = point_biserial(d, y)
    r2, p2 = point_biserial(d, ~y)
    np.testing.assert_allclose(r2, -r, atol=1e-9)
    np.testing.assert_allclose(p2, p, rtol=1e-6, atol=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases(), st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_invariant_to_positive_affine_audibility(case, scale, offset):
    d, y = case
    r, p = point_biserial(d, y)
    r2, p2 = point_biserial(d * scale + offset, y)
    # points that are constant stay constant under an affine map (up to rounding, which may
    # split a constant column: compare only where the original spread is clearly non-zero)
    spread = d.max(0) - d.min(0)
    ok = spread > 1e-6 * (np.abs(d).max(0) + abs(offset) / scale + 1.0)
    np.testing.assert_allclose(r2[ok], r[ok], atol=1e-6)
    np.testing.assert_allclose(p2[ok], p[ok], rtol=1e-4, atol=1e-6)
