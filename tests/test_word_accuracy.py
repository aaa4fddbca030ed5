"""Known answers and properties of the edit-distance word scoring."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssbm_bench.errors import InputError
from ssbm_bench.metrics.word_accuracy import align_words, target_other_accuracy, word_correct

WORDS = st.lists(st.sampled_from(["the", "cat", "sat", "on", "a", "mat", "go", "ten"]), min_size=1, max_size=12)


def test_alignment_with_substitution_insertion_deletion():
    ref = "go forward ten meters now".split()
    # "forward" -> "backward" (substitution), "really" inserted, "now" deleted
    hyp = "go backward ten really meters".split()
    assert align_words(ref, hyp) == [(0, 0), (1, 1), (2, 2), (None, 3), (3, 4), (4, None)]
    assert word_correct(ref, hyp).tolist() == [True, False, True, True, False]


def test_empty_sides():
    assert align_words([], []) == []
    assert align_words(["a", "b"], []) == [(0, None), (1, None)]
    assert align_words([], ["a"]) == [(None, 0)]
    assert word_correct(["a", "b"], []).tolist() == [False, False]


def test_tie_break_prefers_matches_then_keeps_the_last_duplicate():
    # two edits either way; the alignment that credits "b" wins
    assert word_correct(["a", "b"], ["b", "c"]).tolist() == [False, True]
    # a repeated word: the documented backtrace matches the last one
    assert align_words(["a", "a"], ["a"]) == [(0, None), (1, 0)]
    assert word_correct(["a", "a"], ["a"]).tolist() == [False, True]


def test_target_other_accuracy():
    correct = np.array([True, False, True, True])
    assert target_other_accuracy(correct, 1) == (0.0, 1.0)
    a_w, a_o = target_other_accuracy(correct, 0)
    assert a_w == 1.0 and a_o == pytest.approx(2 / 3)


def test_one_word_utterance_has_no_other_words():
    assert target_other_accuracy(np.array([True]), 0) == (1.0, 0.0)
    assert target_other_accuracy(np.array([False]), 0) == (0.0, 0.0)


def test_bad_target_index_names_the_range():
    with pytest.raises(InputError, match="outside 0..2"):
        target_other_accuracy(np.array([True, True, False]), 3)
    with pytest.raises(InputError):
        target_other_accuracy(np.array([], dtype=bool), 0)


@settings(max_examples=60, deadline=None)
@given(WORDS)
def test_identical_sequences_are_all_correct(ref):
    assert word_correct(ref, list(ref)).all()
    assert align_words(ref, ref) == [(i, i) for i in range(len(ref))]


@settings(max_examples=60, deadline=None)
@given(WORDS, st.data())
def test_one_deleted_word_gives_exactly_one_false_flag(ref, data):
    k = data.draw(st.integers(0, len(ref) - 1))
    hyp = ref[:k] + ref[k + 1:]
    flags = word_correct(ref, hyp)
    assert flags.shape == (len(ref),)
    assert int((~flags).sum()) == 1


@settings(max_examples=60, deadline=None)
@given(WORDS, WORDS)
def test_alignment_covers_both_sequences_in_order(ref, hyp):
    pairs = align_words(ref, hyp)
    assert [i for i, _ in pairs if i is not None] == list(range(len(ref)))
    assert [j for _, j in pairs if j is not None] == list(range(len(hyp)))
    edits = sum(1 for i, j in pairs if i is None or j is None or ref[i] != hyp[j])
    assert edits == _levenshtein(ref, hyp)


def _levenshtein(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]
