"""Known answers (worked by hand) and properties of the SSBM metric functions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ssbm_bench.errors import InputError
from ssbm_bench.metrics.ssbm import (
    ALPHA,
    D0,
    D1,
    DENOMINATOR_FLOOR,
    CellOutcome,
    best_threshold,
    default_thresholds,
    delta_lerf,
    delta_morf,
    dropped_energy,
    noise_mask,
    rank_importance,
    ssbm_curve,
    transition_q,
)

MIN_MASK = 1e-4


# ----------------------------------------------------------------- known answers: masks


def test_constants_are_the_papers():
    assert (D0, D1, ALPHA, DENOMINATOR_FLOOR) == (-80.0, 0.0, 0.5, 0.01)


def test_pvalue_lerf_matches_paper_fig1():
    # t = 0.01, alpha = 0.5, d0 = -80, d1 = 0 (paper Fig. 1, green line):
    #   q_LeRF(p) = -(d1 - d0)(p - t)/(alpha t - t) = -80 (p - 0.01)/(0.005 - 0.01) = 16000 (p - 0.01)
    #   p = 0.005  -> q = 16000 * -0.005  = -80 -> m = 10^(0.05 * -80) = 1e-4
    #   p = 0.0075 -> q = 16000 * -0.0025 = -40 -> m = 10^-2 = 0.01
    #   p = 0.01   -> q = 0                    -> m = 1
    #   p = 0.5    -> q = 7840, clipped to 0   -> m = 1 (maximum noise)
    #   p = 0.001  -> q = -144, clipped to -80 -> m = 1e-4
    p = np.array([0.005, 0.0075, 0.01, 0.5, 0.001])
    np.testing.assert_allclose(transition_q(p[:3], 0.01, "pvalue", "lerf"), [-80.0, -40.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(noise_mask(p, 0.01, "pvalue", "lerf"), [1e-4, 1e-2, 1.0, 1.0, 1e-4], rtol=1e-9)


def test_pvalue_morf_is_the_mirror():
    # q_MoRF = -q_LeRF = -16000 (p - 0.01):
    #   p = 0.005 -> +80 -> clipped to 0 -> 1 (noise on the important points)
    #   p = 0.0125 -> -40 -> 0.01;  p = 0.015 -> -80 -> 1e-4;  p = 0.5 -> 1e-4
    p = np.array([0.005, 0.01, 0.0125, 0.015, 0.5])
    np.testing.assert_allclose(noise_mask(p, 0.01, "pvalue", "morf"), [1.0, 1.0, 1e-2, 1e-4, 1e-4], rtol=1e-9)
    np.testing.assert_allclose(transition_q(p, 0.01, "pvalue", "morf"), -transition_q(p, 0.01, "pvalue", "lerf"))


def test_magnitude_mask_at_minus_20_db():
    # t_dB = -20 -> t = 10^(0.05 * -20) = 0.1; alpha t - t = -0.05
    #   q_LeRF(a) = 80 (a - 0.1) / -0.05 = -1600 (a - 0.1)
    #   a = 0.05  -> +80 -> clipped to 0 -> 1 (quiet point: full noise)
    #   a = 0.1   -> 0 -> 1
    #   a = 0.125 -> -40 -> 0.01
    #   a = 0.15  -> -80 -> 1e-4 (loud point: kept clean)
    #   a = 1.0   -> -1440 -> clipped -> 1e-4
    a = np.array([0.05, 0.1, 0.125, 0.15, 1.0])
    np.testing.assert_allclose(noise_mask(a, -20.0, "magnitude", "lerf"), [1.0, 1.0, 1e-2, 1e-4, 1e-4], rtol=1e-9)
    # MoRF: a = 0.125 -> +40 -> 1; a = 0.075 -> q_LeRF = +40 -> q_MoRF = -40 -> 0.01; a = 0.05 -> 1e-4
    np.testing.assert_allclose(
        noise_mask(np.array([0.125, 0.075, 0.05]), -20.0, "magnitude", "morf"), [1.0, 1e-2, 1e-4], rtol=1e-9
    )


def test_score_mask_uses_rank_fraction():
    # 100 distinct scores, fraction t = 0.2, alpha = 0.5: u = rank/100.
    # u <= 0.1 (top 10) -> q <= -80 -> 1e-4; u >= 0.2 (ranks 20..100, 81 points) -> 1; 9 in between.
    scores = np.random.default_rng(3).permutation(100).astype(float)
    m = noise_mask(scores, 0.2, "score", "lerf")
    assert int(np.sum(m == MIN_MASK)) == 10
    assert int(np.sum(m == 1.0)) == 81
    top10 = np.argsort(-scores)[:10]
    assert np.all(m[top10] == MIN_MASK)
    # rank 15 -> u = 0.15 -> q = -80 (0.15 - 0.2) / (0.1 - 0.2) = -40 -> 0.01
    assert m[np.argsort(-scores)[14]] == pytest.approx(0.01)


def test_rank_importance_known_answer_and_ties():
    # ranks from the top: 5 -> 1, 3 -> 2, the tied 2s -> max rank 4, 1 -> 5; u = rank / 5
    np.testing.assert_allclose(rank_importance(np.array([3, 1, 2, 2, 5.0])), [0.4, 1.0, 0.8, 0.8, 0.2])
    assert np.all(rank_importance(np.full((3, 4), 7.0)) == 1.0)
    # a constant map marks nothing in LeRF at any fraction
    for t in default_thresholds("score"):
        assert np.all(noise_mask(np.zeros((3, 4)), t, "score", "lerf") == 1.0)
    # 2-D in, same shape out
    assert rank_importance(np.arange(6.0).reshape(2, 3)).shape == (2, 3)


# ----------------------------------------------------------------- known answers: energy and deltas


def test_dropped_energy_on_2x2():
    # |S|^2 = [[1, 4], [0, 9]], total 14
    # m * |S|^2 = [[1, 4e-4], [0, 0.09]] -> 1.0904 -> e = 1.0904 / 14
    s = np.array([[1.0j, -2.0], [0.0, 3.0 + 0.0j]])
    m = np.array([[1.0, 1e-4], [0.5, 0.01]])
    assert dropped_energy(m, s) == pytest.approx(1.0904 / 14)
    assert dropped_energy(m, np.abs(s)) == pytest.approx(1.0904 / 14)
    assert dropped_energy(np.ones((2, 2)), s) == 1.0


def test_dropped_energy_rejects_bad_input():
    with pytest.raises(InputError, match="zero energy"):
        dropped_energy(np.ones((2, 2)), np.zeros((2, 2)))
    with pytest.raises(InputError, match="shape"):
        dropped_energy(np.ones((2, 3)), np.ones((2, 2)))


def test_deltas_and_guard():
    # (1 - 0.25) / (1 - 0.6) = 0.75 / 0.4 = 1.875
    assert delta_lerf(1.0, 0.25, 0.6) == (pytest.approx(1.875), False)
    # 1 - 0.998 = 0.002 < 0.01: guarded, 0.75 / 0.01 = 75
    assert delta_lerf(1.0, 0.25, 0.998) == (pytest.approx(75.0), True)
    # (1 - 0) / 0.2 = 5
    assert delta_morf(0.0, 1.0, 0.2) == (pytest.approx(5.0), False)
    # e_MoRF = 1e-4 (mask drops nothing): guarded, 1 / 0.01 = 100; a looser floor caps lower
    assert delta_morf(0.0, 1.0, 1e-4) == (pytest.approx(100.0), True)
    assert delta_morf(0.0, 1.0, 1e-4, floor=0.1) == (pytest.approx(10.0), True)
    assert delta_morf(1.0, 1.0, 0.5) == (0.0, False)


def test_cell_outcome_combines_both_directions():
    cell = CellOutcome(threshold=0.01, a_w_lerf=1.0, a_o_lerf=0.25, e_lerf=0.6,
                       a_w_morf=0.0, a_o_morf=1.0, e_morf=0.2)
    assert cell.delta_lerf == pytest.approx(1.875)
    assert cell.delta_morf == pytest.approx(5.0)
    assert cell.ssbm == pytest.approx(6.875)
    assert not cell.guarded
    guarded = CellOutcome(0.01, 1.0, 0.25, 0.998, 0.0, 1.0, 0.2)
    assert guarded.guarded and guarded.ssbm == pytest.approx(80.0)
    with pytest.raises(InputError, match="a_w_lerf"):
        CellOutcome(0.01, 1.5, 0.0, 0.5, 0.0, 0.0, 0.5)
    with pytest.raises(InputError, match="e_morf"):
        CellOutcome(0.01, 1.0, 0.0, 0.5, 0.0, 0.0, float("nan"))


def test_curve_averages_over_words_and_sorts():
    cells = [
        ("u1:w0", CellOutcome(0.1, 1.0, 0.0, 0.5, 0.0, 1.0, 0.5)),   # 2 + 2 = 4
        ("u1:w1", CellOutcome(0.1, 0.0, 1.0, 0.5, 1.0, 0.0, 0.5)),   # -2 - 2 = -4
        ("u1:w0", CellOutcome(0.01, 1.0, 0.5, 0.75, 0.0, 0.5, 0.25)),  # 2 + 2 = 4
        ("u1:w1", CellOutcome(0.01, 1.0, 0.0, 0.999, 0.0, 1.0, 0.5)),  # 100 (guarded) + 2 = 102
    ]
    curve = ssbm_curve(cells)
    assert [p.threshold for p in curve] == [0.01, 0.1]
    low, high = curve
    assert low.n_words == 2 and low.n_guarded == 1
    assert low.ssbm == pytest.approx(53.0)
    assert low.delta_lerf == pytest.approx(51.0) and low.delta_morf == pytest.approx(2.0)
    assert low.a_w_lerf == 1.0 and low.a_w_morf == 0.0 and low.a_o_lerf == 0.25
    assert low.e_lerf == pytest.approx((0.75 + 0.999) / 2) and low.e_morf == pytest.approx(0.375)
    assert high.ssbm == pytest.approx(0.0) and high.n_guarded == 0
    assert best_threshold(curve).threshold == 0.01
    assert ssbm_curve([]) == []


def test_curve_rejects_a_word_counted_twice():
    cell = CellOutcome(0.1, 1.0, 0.0, 0.5, 0.0, 1.0, 0.5)
    with pytest.raises(InputError, match="two outcomes"):
        ssbm_curve([("w", cell), ("w", cell)])


def test_best_threshold_tie_goes_to_smaller_threshold():
    same = dict(a_w_lerf=1.0, a_o_lerf=0.0, e_lerf=0.5, a_w_morf=0.0, a_o_morf=1.0, e_morf=0.5)
    curve = ssbm_curve([("w", CellOutcome(threshold=t, **same)) for t in (1e-2, 1e-4, 1e-3)])
    assert best_threshold(list(reversed(curve))).threshold == 1e-4
    with pytest.raises(InputError):
        best_threshold([])


def test_default_threshold_grids():
    p = default_thresholds("pvalue")
    assert len(p) == 25 and p[0] == pytest.approx(1e-8) and p[-1] == pytest.approx(1.0)
    assert np.any(np.isclose(p, 4.64e-7, rtol=1e-3))  # the paper's Fig. 2 threshold is on the grid
    m = default_thresholds("magnitude")
    np.testing.assert_array_equal(m, np.arange(-80, 21, 5, dtype=float))
    s = default_thresholds("score")
    assert len(s) == 13 and s[0] == pytest.approx(1e-3) and s[-1] == pytest.approx(1.0)
    quick = {k: default_thresholds(k, "quick") for k in ("pvalue", "magnitude", "score")}
    assert [len(quick[k]) for k in ("pvalue", "magnitude", "score")] == [7, 6, 5]
    assert quick["score"][0] == pytest.approx(1e-2)
    for k in quick:  # every quick grid is an exact subset of the standard one
        assert set(quick[k]) <= set(default_thresholds(k))
    with pytest.raises(InputError, match="grid"):
        default_thresholds("pvalue", "huge")
    with pytest.raises(InputError, match="kind"):
        default_thresholds("loudness")


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="direction"):
        noise_mask(np.ones(3), 0.1, "pvalue", "sideways")
    with pytest.raises(InputError, match="p-value threshold"):
        noise_mask(np.ones(3), 0.0, "pvalue", "lerf")
    with pytest.raises(InputError, match="fraction"):
        noise_mask(np.ones(3), 1.5, "score", "lerf")
    with pytest.raises(InputError, match="NaN"):
        noise_mask(np.array([0.1, np.nan]), 0.1, "pvalue", "lerf")


# ----------------------------------------------------------------- properties

FINITE = st.floats(-1e6, 1e6, allow_nan=False)
PVALUES = hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(0.0, 1.0))
AMPLITUDES = hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(0.0, 100.0))
P_THRESH = st.sampled_from(list(default_thresholds("pvalue")))
DB_THRESH = st.sampled_from(list(default_thresholds("magnitude")))
FRACTIONS = st.sampled_from(list(default_thresholds("score")))


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["pvalue", "magnitude", "score"]),
    st.sampled_from(["lerf", "morf"]),
    hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(0.0, 1e3)),
    st.floats(1e-9, 1.0),
    st.floats(0.05, 0.95),
)
def test_masks_stay_in_range(kind, direction, values, threshold, alpha):
    t = -80 + 100 * threshold if kind == "magnitude" else threshold
    m = noise_mask(values, t, kind, direction, alpha=alpha)
    assert m.shape == values.shape
    assert np.all(m >= MIN_MASK) and np.all(m <= 1.0)


@settings(max_examples=80, deadline=None)
@given(PVALUES, P_THRESH)
def test_pvalue_masks_are_monotone_in_opposite_directions(p, t):
    p = np.sort(p)
    lerf, morf = noise_mask(p, t, "pvalue", "lerf"), noise_mask(p, t, "pvalue", "morf")
    assert np.all(np.diff(lerf) >= 0)  # larger p (less important) -> more noise
    assert np.all(np.diff(morf) <= 0)


@settings(max_examples=80, deadline=None)
@given(AMPLITUDES, DB_THRESH)
def test_magnitude_masks_are_monotone_in_opposite_directions(a, t_db):
    a = np.sort(a)
    lerf, morf = noise_mask(a, t_db, "magnitude", "lerf"), noise_mask(a, t_db, "magnitude", "morf")
    assert np.all(np.diff(lerf) <= 0)  # louder (more important) -> less noise
    assert np.all(np.diff(morf) >= 0)


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=FINITE), FRACTIONS)
def test_score_masks_are_monotone_in_opposite_directions(scores, f):
    order = np.argsort(scores, kind="stable")
    lerf = noise_mask(scores, f, "score", "lerf")[order]
    morf = noise_mask(scores, f, "score", "morf")[order]
    assert np.all(np.diff(lerf) <= 0)  # higher score (more important) -> less noise
    assert np.all(np.diff(morf) >= 0)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.float64, (3, 5), elements=st.floats(0.0, 1.0)),
    hnp.arrays(np.float64, (3, 5), elements=st.floats(0.0, 1e3)),
)
def test_dropped_energy_is_a_proportion(p, mag):
    mag[0, 0] = 1.0  # some energy
    for direction in ("lerf", "morf"):
        e = dropped_energy(noise_mask(p, 0.01, "pvalue", direction), mag)
        assert 0.0 <= e <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.float64, (4, 6), elements=st.floats(0.0, 1.0)),
    hnp.arrays(np.float64, (4, 6), elements=st.floats(1e-3, 1e3)),
)
def test_lerf_energy_weakly_decreases_as_pvalue_threshold_grows(p, mag):
    e = [dropped_energy(noise_mask(p, t, "pvalue", "lerf"), mag) for t in default_thresholds("pvalue")]
    assert np.all(np.diff(e) <= 1e-12)


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.int64, st.integers(1, 50), elements=st.integers(-500, 500)))
def test_rank_importance_ignores_strictly_increasing_transforms(ints):
    x = ints.astype(np.float64)
    u = rank_importance(x)
    assert np.all(u > 0) and np.all(u <= 1)
    assert u[np.argmax(x)] == u.min()
    for f in (lambda v: 3 * v + 7, lambda v: v**3, lambda v: np.exp(v / 100), np.arctan):
        np.testing.assert_array_equal(rank_importance(f(x)), u)
    # never more than a fraction f of points at u <= f
    for frac in (0.1, 0.5):
        assert np.sum(u <= frac) <= frac * x.size + 1e-9
