"""Per-word correctness of a recogniser's output, by edit-distance alignment.

SSBM scores words, not utterances: a word counts as correct when the
hypothesis, aligned to the reference by Levenshtein distance, has that very
word in its place (SSBM paper, sec. 2). Callers pass words
already normalised by :func:`ssbm_bench.text.normalise_words`; comparison
here is exact string equality.

Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError

#: One alignment step: (reference index, hypothesis index). ``(i, j)`` is a
#: match or substitution, ``(i, None)`` a deletion (reference word missed),
#: ``(None, j)`` an insertion (extra hypothesis word).
AlignedPair = tuple[int | None, int | None]


def align_words(reference: Sequence[str], hypothesis: Sequence[str]) -> list[AlignedPair]:
    """Levenshtein alignment of two word sequences, in order.

    Substitution, insertion and deletion each cost 1.

    Tie-break (deterministic): among alignments with the fewest edits, the
    one with the most *matches* wins (so "a b" vs "b c" aligns b with b,
    deleting a and inserting c, rather than substituting twice: both cost 2,
    but only the first credits the recogniser with the word it got right).
    Remaining ties are broken during the backtrace from the end of both
    sequences by preferring, in order, the diagonal step (match or
    substitution), then a deletion, then an insertion. For example, with
    reference "a a" and hypothesis "a", the *last* reference word is matched
    and the first one is deleted.
    """
    ref = list(reference)
    hyp = list(hypothesis)
    n, m = len(ref), len(hyp)
    # cost[i][j] = (edits, -matches) for ref[:i] vs hyp[:j]; tuples compare lexicographically.
    cost: list[list[tuple[int, int]]] = [[(0, 0)] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = (i, 0)
    for j in range(1, m + 1):
        cost[0][j] = (j, 0)
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            e, neg = prev[j - 1]
            diag = (e, neg - 1) if ref[i - 1] == hyp[j - 1] else (e + 1, neg)
            e, neg = prev[j]
            dele = (e + 1, neg)
            e, neg = row[j - 1]
            ins = (e + 1, neg)
            row[j] = min(diag, dele, ins)

    pairs: list[AlignedPair] = []
    i, j = n, m
    while i > 0 or j > 0:
        here = cost[i][j]
        if i > 0 and j > 0:
            e, neg = cost[i - 1][j - 1]
            diag = (e, neg - 1) if ref[i - 1] == hyp[j - 1] else (e + 1, neg)
            if diag == here:
                pairs.append((i - 1, j - 1))
                i, j = i - 1, j - 1
                continue
        if i > 0:
            e, neg = cost[i - 1][j]
            if (e + 1, neg) == here:
                pairs.append((i - 1, None))
                i -= 1
                continue
        # only an insertion can remain
        pairs.append((None, j - 1))
        j -= 1
    pairs.reverse()
    return pairs


def word_correct(reference: Sequence[str], hypothesis: Sequence[str]) -> np.ndarray:
    """One flag per reference word: True when the aligned hypothesis word equals it.

    Deleted and substituted reference words are False; insertions do not
    affect any flag (they are charged to no reference word).
    """
    ref = list(reference)
    hyp = list(hypothesis)
    flags = np.zeros(len(ref), dtype=bool)
    for i, j in align_words(ref, hyp):
        if i is not None and j is not None and ref[i] == hyp[j]:
            flags[i] = True
    return flags


def target_other_accuracy(correct: np.ndarray, target_index: int) -> tuple[float, float]:
    """(a_w, a_o): the target word's correctness and the mean over the other words.

    For a one-word utterance there are no other words and a_o is defined as
    0.0: "no other word survives". Then a_o drops out of both SSBM terms
    (eq. 1: Delta_LeRF = a_w / (1 - e_LeRF) carries no penalty for other
    words kept, Delta_MoRF = -a_w / e_MoRF gives no credit for sparing other
    words), so the score depends on the target word alone rather than being
    flattered or penalised by words that do not exist. (1.0 would hand every
    MoRF mask a free +1 / e_MoRF bonus for "sparing" them.)
    """
    flags = np.asarray(correct)
    if flags.ndim != 1 or flags.size == 0:
        raise InputError(f"target_other_accuracy: expected a non-empty 1-D array of flags, got shape {flags.shape}")
    n = flags.size
    idx = int(target_index)
    if not 0 <= idx < n:
        raise InputError(f"target_other_accuracy: target index {target_index} is outside 0..{n - 1}")
    f = flags.astype(np.float64)
    a_w = float(f[idx])
    if n == 1:
        return a_w, 0.0
    a_o = float((f.sum() - f[idx]) / (n - 1))
    return a_w, a_o
