"""Deletion by rank (the SalASR poster: Johnson et al., "SalASR: Legitimacy
using SALiency highlighting for Automatic Speech Recognition").

Mask the top, a random, or the bottom fraction r of a saliency map's points
with a fill, and score what the model still gets right: the teacher-forced
token success rate against its own clean transcript (ASR) or the target
class's probability (classifiers). A faithful map hurts most when its top
points go: score(top) < score(random) < score(bottom).

Pure functions over arrays, no I/O:

* :func:`n_masked`: how many of N points a fraction r masks: round(r N),
  halves rounded up, so 0.5 of 5 points is 3.
* :func:`rank_order`: points from most to least important. Ties are broken
  by a random permutation drawn from the seed (component maps such as
  SoundLIME's are piecewise constant, and a fixed tie-break would always
  mask low frequencies or early frames first).
* :func:`deletion_mask`: the boolean mask for (fraction, order, seed).
* :func:`success_rate`: mean of per-token flags (optionally over some positions).
* :func:`deletion_gap`: the headline, mean over fractions of
  score(random) - score(top): positive when the map's top points matter
  more than random ones.
* :func:`ordering_cases`: of the 3 pairwise orderings (top < random,
  top < bottom, random < bottom) at each fraction, how many hold (strictly):
  9 cases for 3 fractions, the poster's "7 of 9".
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError

FRACTIONS = (0.2, 0.5, 0.8)
ORDERS = ("top", "random", "bottom")
PAIRS = (("top", "random"), ("top", "bottom"), ("random", "bottom"))


def _check_fraction(fraction: float) -> float:
    r = float(fraction)
    if not (0.0 <= r <= 1.0):
        raise InputError(f"deletion: fraction must be in [0, 1], got {fraction}")
    return r


def n_masked(n_points: int, fraction: float) -> int:
    r = _check_fraction(fraction)
    if n_points < 0:
        raise InputError(f"deletion: number of points must be >= 0, got {n_points}")
    return min(int(n_points), int(np.floor(r * n_points + 0.5)))


def rank_order(values: np.ndarray, seed: int) -> np.ndarray:
    """Flat indices of `values`, most important (largest) first, ties in a seeded random order."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise InputError("deletion: empty map")
    if not np.all(np.isfinite(v)):
        raise InputError("deletion: map contains NaN or infinite values")
    perm = np.random.default_rng(seed).permutation(v.size)
    return perm[np.argsort(-v[perm], kind="stable")]


def deletion_mask(values: np.ndarray, fraction: float, order: str, seed: int) -> np.ndarray:
    """Boolean mask (shape of `values`) of the points to delete."""
    if order not in ORDERS:
        raise InputError(f"deletion: order must be one of {', '.join(ORDERS)}, got {order!r}")
    v = np.asarray(values, dtype=np.float64)
    k = n_masked(v.size, fraction)
    mask = np.zeros(v.size, dtype=bool)
    if order == "random":
        if not np.all(np.isfinite(v)):
            raise InputError("deletion: map contains NaN or infinite values")
        mask[np.random.default_rng(seed).choice(v.size, size=k, replace=False)] = True
    else:
        ranked = rank_order(v, seed)
        mask[ranked[:k] if order == "top" else ranked[v.size - k:]] = True
    return mask.reshape(v.shape)


def success_rate(flags: Sequence[bool] | np.ndarray, positions: Sequence[int] | None = None) -> float:
    """Fraction of True flags (at `positions` when given); NaN for no flags."""
    f = np.asarray(flags, dtype=bool)
    if positions is not None:
        pos = np.asarray(list(positions), dtype=int)
        if pos.size and (pos.min() < 0 or pos.max() >= f.size):
            raise InputError(f"deletion: token positions {pos.tolist()} outside {f.size} tokens")
        f = f[pos]
    return float(f.mean()) if f.size else float("nan")


Table = Mapping[tuple[str, float], float]


def deletion_gap(table: Table, fractions: Sequence[float] = FRACTIONS) -> float:
    """Mean over fractions of score(random, r) - score(top, r)."""
    gaps = [table[("random", r)] - table[("top", r)] for r in fractions]
    return float(np.mean(gaps)) if gaps else float("nan")


def ordering_cases(table: Table, fractions: Sequence[float] = FRACTIONS) -> tuple[int, int]:
    """(cases that hold, cases) over PAIRS x fractions; a tie does not hold."""
    held = sum(table[(a, r)] < table[(b, r)] for r in fractions for a, b in PAIRS)
    return int(held), len(PAIRS) * len(fractions)


def top_lowest_cases(table: Table, fractions: Sequence[float] = FRACTIONS) -> tuple[int, int]:
    """(fractions at which top is strictly below both random and bottom, fractions)."""
    held = sum(table[("top", r)] < min(table[("random", r)], table[("bottom", r)]) for r in fractions)
    return int(held), len(fractions)
