"""Stability of an explainer across its own seeds, and its sensitivity to the
fill of occluded regions (the SoundLIME paper: Mishra et al., "Reliable Local
Explanations for Machine Listening").

SoundLIME explains with the top-3 of N_c interpretable components.

* **U_n**: run the explainer k = 5 times with different seeds; U_n is the
  number of distinct components in the union of the k top-3 sets. 3 means
  perfectly stable; min(N_c, 3k) is the worst possible.
* **N_ce**: components shared between the top-3 under the reference fill
  (zero, in the paper) and under another fill, 0..3.
* **Ground truth**: excerpts whose speech lies in known components (3 of 10
  temporal segments); a fill is scored by how often its top-3 is exactly the
  speech segments ("full match") and how often at least two of three are.

Top-k takes the k largest weights by magnitude (SoundLIME's top-3 are the
components "positively or negatively influencing" the prediction) for U_n
and N_ce; for the ground-truth test, where the question is which components
*support* the prediction, ``positive=True`` ranks the signed weights (the
paper: "the top-2 super-samples positively influencing the prediction").
Ties go to the lower index.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError

TOP = 3


def top_components(weights: Sequence[float], k: int = TOP, positive: bool = False) -> frozenset[int]:
    """Indices of the k largest |weights|, or largest weights if `positive` (ties: lower index first)."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    if not np.all(np.isfinite(w)):
        raise InputError("component weights hold NaN or infinity: expected finite values")
    if w.size < k:
        raise InputError(f"top-{k} of {w.size} components: expected at least {k}")
    order = np.lexsort((np.arange(w.size), -(w if positive else np.abs(w))))
    return frozenset(int(i) for i in order[:k])


def unique_components(runs: Iterable[Sequence[float]], k: int = TOP) -> int:
    """U_n: distinct components in the union of the runs' top-k sets."""
    tops = [top_components(w, k) for w in runs]
    if len(tops) < 2:
        raise InputError(f"U_n needs at least two explainer runs, got {len(tops)}")
    return len(frozenset().union(*tops))


def shared_with_reference(reference: Sequence[float], other: Sequence[float], k: int = TOP) -> int:
    """N_ce: components shared by the top-k under the reference fill and under another fill."""
    if len(reference) != len(other):
        raise InputError(f"explanations with different numbers of components: {len(reference)} vs {len(other)}")
    return len(top_components(reference, k) & top_components(other, k))


def ground_truth_match(weights: Sequence[float], speech: Iterable[int], k: int = TOP, positive: bool = True) -> int:
    """How many of the top-k (by default: most positive) components are speech components (0..k)."""
    truth = frozenset(int(s) for s in speech)
    if len(truth) != k:
        raise InputError(f"the ground truth must name exactly {k} speech components, got {sorted(truth)}")
    return len(top_components(weights, k, positive) & truth)


def ground_truth_rates(matches: Sequence[int], k: int = TOP) -> dict:
    """Share of excerpts with a full match (k of k) and with at least k-1 of k."""
    m = np.asarray(matches)
    if m.size == 0:
        raise InputError("no ground-truth excerpts scored")
    return {"full_match": float(np.mean(m == k)), "at_least_two": float(np.mean(m >= k - 1)), "n": int(m.size)}
