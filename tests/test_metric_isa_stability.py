"""Known answers and invariants for ISA, Fleiss' kappa and SoundLIME stability."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ssbm_bench.errors import InputError
from ssbm_bench.metrics.agreement import family_agreement, fleiss_kappa
from ssbm_bench.metrics.isa import (aggregate_frames, aggregate_words, isa, isa_pair, top_p_indices,
                                    top_p_overlap)
from ssbm_bench.metrics.stability import (ground_truth_match, ground_truth_rates, shared_with_reference,
                                          top_components, unique_components)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


# --- top-p and ISA: hand-worked ------------------------------------------------------
def test_top_p_sizes_round_up():
    assert top_p_indices(np.arange(10.0)).tolist() == [8, 9]          # 20% of 10 = 2
    assert top_p_indices(np.arange(6.0)).tolist() == [4, 5]           # ceil(1.2) = 2
    assert top_p_indices(np.arange(5.0)).tolist() == [4]              # exactly 1
    assert top_p_indices(np.array([3.0])).tolist() == [0]             # never empty


def test_top_p_ranks_signed_scores_unless_absolute():
    a = np.array([-9.0, 1.0, 2.0, 0.0, 0.5])
    assert top_p_indices(a).tolist() == [2]
    assert top_p_indices(a, absolute=True).tolist() == [0]


def test_ties_go_to_the_earlier_index():
    assert top_p_indices(np.zeros(10)).tolist() == [0, 1]
    assert top_p_indices(np.array([1.0, 5.0, 5.0, 5.0, 0.0, 0, 0, 0, 0, 0])).tolist() == [1, 2]


def test_isa_pair_hand_worked():
    # input 1: top-2 of a = {0, 1}, of b = {1, 3}: overlap 1/2; input 2 identical: 1
    a1 = np.array([5, 4, 3, 2, 1, 0, 0, 0, 0, 0], float)
    b1 = np.array([1, 9, 0, 8, 0, 0, 0, 0, 0, 0], float)
    assert top_p_overlap(a1, b1) == 0.5
    assert isa_pair([a1, a1], [b1, a1]) == pytest.approx(0.75)


def test_isa_over_three_seeds_lists_three_pairs_and_a_baseline():
    rng = np.random.default_rng(0)
    common = rng.normal(size=(4, 50))
    maps = {f"s{i}": [m + 0.01 * rng.normal(size=50) for m in common] for i in range(3)}
    res = isa(maps, seed=1)
    assert res.pairs == (("s0", "s1"), ("s0", "s2"), ("s1", "s2"))
    assert min(res.scores) > 0.8            # nearly identical maps agree
    assert res.baseline_median < 0.5        # shuffled ones do not (chance is p = 0.2)


def test_2d_maps_are_flattened_consistently():
    a = np.array([[0.0, 9.0], [1.0, 2.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    b = a.T.copy().T  # same values, same layout
    assert top_p_overlap(a, b) == 1.0
    assert top_p_indices(a).tolist() == [1, 4]  # 10 scores, top-2: 9.0 (flat 1) and 3.0 (flat 4)


@pytest.mark.parametrize("maps, message", [
    ({"s0": [np.zeros(5)]}, "at least two seeds"),
    ({"s0": [np.zeros(5)], "s1": [np.zeros(5), np.zeros(5)]}, "different numbers of inputs"),
    ({"s0": [np.zeros(5)], "s1": [np.zeros(6)]}, "mismatched shapes"),
    ({"s0": [np.array([np.nan, 1.0])], "s1": [np.zeros(2)]}, "NaN"),
])
def test_bad_families_are_refused_by_name(maps, message):
    with pytest.raises(InputError, match=message):
        isa(maps)


@given(arrays(np.float64, st.integers(1, 60), elements=finite))
def test_a_map_agrees_with_itself_and_any_increasing_transform(a):
    assert top_p_overlap(a, a) == 1.0
    assert top_p_overlap(a, 4.0 * a) == 1.0  # exact scaling: the same order, no new ties


@given(st.integers(1, 40).flatmap(lambda n: st.tuples(arrays(np.float64, n, elements=finite),
                                                      arrays(np.float64, n, elements=finite))))
def test_overlap_is_a_symmetric_proportion(ab):
    a, b = ab
    o = top_p_overlap(a, b)
    assert 0.0 <= o <= 1.0 and o == top_p_overlap(b, a)


def test_shuffled_baseline_sits_at_chance():
    rng = np.random.default_rng(3)
    maps = {f"s{i}": [rng.normal(size=1000) for _ in range(20)] for i in range(3)}
    assert np.mean(isa(maps).baseline) == pytest.approx(0.2, abs=0.02)


# --- aggregation ---------------------------------------------------------------------
def test_frames_sum_over_frequency_or_20_ms():
    assert aggregate_frames(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).tolist() == [5.0, 7.0, 9.0]
    wav = np.arange(7.0)  # frames of 3 samples: [0+1+2, 3+4+5, 6]
    assert aggregate_frames(wav, samples_per_frame=3).tolist() == [3.0, 12.0, 6.0]
    with pytest.raises(InputError, match="samples_per_frame"):
        aggregate_frames(wav)


def test_words_mean_pool_and_drop_the_gaps():
    frames = np.array([9.0, 1.0, 3.0, 9.0, 9.0, 2.0, 4.0, 6.0, 9.0])
    assert aggregate_words(frames, [(1, 3), (5, 8)]).tolist() == [2.0, 4.0]
    with pytest.raises(InputError, match="outside"):
        aggregate_words(frames, [(5, 12)])


# --- Fleiss' kappa -------------------------------------------------------------------
def test_fleiss_kappa_two_raters_hand_worked():
    # P_bar = (1 + 0) / 2 = 0.5; p_a = 3/4, p_b = 1/4, P_e = 10/16; kappa = -0.125 / 0.375
    assert fleiss_kappa([["a", "a"], ["a", "b"]]) == pytest.approx(-1 / 3)


def test_fleiss_kappa_wikipedia_table():
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
              [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    rows = [[c for c, n in enumerate(r) for _ in range(n)] for r in counts]
    assert fleiss_kappa(rows) == pytest.approx(0.20993, abs=1e-4)


def test_perfect_agreement_and_error_subset():
    assert fleiss_kappa([["x", "x", "x"], ["y", "y", "y"]]) == 1.0
    assert fleiss_kappa([["x", "x"], ["x", "x"]]) == 1.0  # one category only: complete agreement
    got = family_agreement([["a", "a", "a"], ["b", "a", "b"], ["a", "b", "b"]], ["a", "b", "b"])
    assert got["accuracy"] == pytest.approx([2 / 3, 2 / 3, 1.0])
    assert got["inputs_with_an_error"] == 2 and got["error_kappa"] == pytest.approx(fleiss_kappa(
        [["b", "a", "b"], ["a", "b", "b"]]))
    with pytest.raises(InputError, match="same number"):
        fleiss_kappa([["a", "b"], ["a"]])


# --- stability -----------------------------------------------------------------------
def test_top_components_by_magnitude_or_sign():
    assert top_components([0.1, -5.0, 2.0, 0.0, 3.0]) == {1, 2, 4}
    assert top_components([0.1, -5.0, 2.0, 0.0, 3.0], positive=True) == {0, 2, 4}
    # ground truth counts supporting components only: -5 is influential but against the prediction
    assert ground_truth_match([0.1, -5.0, 2.0, 0.0, 3.0], [1, 2, 4]) == 2


def test_unique_components_hand_worked():
    runs = [[9, 8, 7, 0, 0, 0], [9, 8, 0, 7, 0, 0], [9, 0, 8, 0, 0, 7]]  # {0,1,2} {0,1,3} {0,2,5}
    assert unique_components(runs) == 5
    assert unique_components([runs[0]] * 5) == 3  # perfectly stable
    with pytest.raises(InputError, match="at least two"):
        unique_components([runs[0]])


def test_shared_with_reference_and_ground_truth():
    ref = [5, 4, 3, 0, 0, 0, 0, 0, 0, 0]
    other = [0, 4, 3, 5, 0, 0, 0, 0, 0, 0]
    assert shared_with_reference(ref, other) == 2
    assert ground_truth_match(ref, [0, 1, 2]) == 3 and ground_truth_match(other, [0, 1, 2]) == 2
    assert ground_truth_rates([3, 2, 1, 3]) == {"full_match": 0.5, "at_least_two": 0.75, "n": 4}
    with pytest.raises(InputError, match="exactly 3"):
        ground_truth_match(ref, [0, 1])


@given(st.lists(arrays(np.float64, 10, elements=finite), min_size=2, max_size=6))
def test_unique_components_is_between_3_and_its_worst_case(runs):
    u = unique_components(runs)
    assert 3 <= u <= min(10, 3 * len(runs))
