"""Bubble-noise statistics: point-biserial correlation of audibility with recognition.

Bubble analysis (SSBM paper sec. 2.1; Mandel's auditory bubbles) mixes an
utterance with J instances of loud noise that is reduced inside randomly
placed "bubbles". For mixture j, D_j(f, t) in [0, 1] is the audibility of
point (f, t) (0 = full noise, 1 = no noise) and y_j is 1 when the recogniser
got the analysed word right. A point matters for the word when its
audibility is correlated with recognition: the point-biserial correlation
r(f, t) between D_j(f, t) and y_j over j, tested two-sided with
t = r sqrt((J - 2) / (1 - r^2)), df = J - 2.

The point-biserial correlation is Pearson's correlation with a binary
variable,

    r = sum_j (D_j - mean D)(y_j - mean y) / sqrt(sum_j (D_j - mean D)^2 * sum_j (y_j - mean y)^2)
      = (M1 - M0) sqrt(n1 n0 / J) / sqrt(sum_j (D_j - mean D)^2),

with M1, M0 the mean audibility over the n1 mixtures with y = 1 and the n0
with y = 0, vectorised over the whole spectrogram. Two entry points give the same
numbers:

* :func:`point_biserial` on a (J, F, T) array, processed in blocks of
  frequency rows so the float64 temporaries stay within ``max_block_bytes``
  (a J=1000, F=513, T=200 float32 input is 410 MB; its temporaries never
  hold more than one block);
* :class:`PointBiserialSums`, which never holds more than one batch of
  mixtures: it keeps centred sufficient statistics (means, sums of squared
  deviations, co-moments with every outcome) merged batch by batch with
  Chan et al.'s pairwise update, so a bubble method can stream its mixtures
  and derive every word's map from one pass.

Degenerate cases (each yields a number, never NaN):

* all y equal (the word recognised in every mixture, or in none): there is
  no variance to correlate with, r = 0 and p = 1 everywhere;
* a point whose audibility is the same in every mixture (exactly: max ==
  min, e.g. never touched by any bubble): r = 0, p = 1 at that point;
* |r| = 1 (after rounding, r is clipped to [-1, 1]): t is infinite, p = 0.

Fewer than 3 mixtures leave no degree of freedom for the test and are
refused. Pure numpy/scipy, no I/O.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats

from ..errors import InputError

#: default bound on the float64 temporaries of one block in point_biserial
DEFAULT_MAX_BLOCK_BYTES = 64 * 2**20


def _check_outcome(outcome, n: int | None = None, name: str = "outcome") -> np.ndarray:
    y = np.asarray(outcome)
    if y.ndim != 1:
        raise InputError(f"point-biserial: {name} must be a 1-D array of flags, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise InputError(f"point-biserial: {name} has {y.shape[0]} entries but there are {n} mixtures")
    if y.dtype != bool:
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isin(y, (0, 1))):
            raise InputError(f"point-biserial: {name} must be binary (bool or 0/1), got dtype {y.dtype}")
        y = y.astype(bool)
    return y


def _check_audibility(audibility, name: str = "audibility") -> np.ndarray:
    d = np.asarray(audibility)
    if d.ndim != 3:
        raise InputError(f"point-biserial: {name} must be a (mixtures, frequency, time) array, got shape {d.shape}")
    if not (np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer) or d.dtype == bool):
        raise InputError(f"point-biserial: {name} must be numeric, got dtype {d.dtype}")
    return d


def _min_mixtures(n: int) -> None:
    if n < 3:
        raise InputError(f"point-biserial: needs at least 3 mixtures for a t-test with J - 2 degrees of freedom, "
                         f"got {n}")


def correlation_pvalue(r: np.ndarray, n: int) -> np.ndarray:
    """Two-sided p-value of Pearson / point-biserial correlations `r` over `n` samples.

    t = r sqrt((n - 2) / (1 - r^2)), p = 2 * sf(|t|, n - 2) (Student's t);
    |r| >= 1 gives p = 0. The same test as scipy.stats.pearsonr and
    scipy.stats.pointbiserialr, which write it with the beta distribution.
    """
    _min_mixtures(int(n))
    r = np.clip(np.asarray(r, dtype=np.float64), -1.0, 1.0)
    df = float(n - 2)
    one_minus = 1.0 - r * r
    exact = one_minus <= 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(r) * np.sqrt(df / np.where(exact, 1.0, one_minus))
    p = 2.0 * stats.t.sf(t, df)
    p = np.where(exact, 0.0, p)
    return np.clip(p, 0.0, 1.0)


def _finish(numerator: np.ndarray, ss_d: np.ndarray, scale: float, constant: np.ndarray, n: int):
    """r = numerator * scale / sqrt(ss_d) and its p-value; `constant` points (and scale 0) get r = 0, p = 1."""
    if scale <= 0.0:
        shape = np.shape(numerator)
        return np.zeros(shape), np.ones(shape)
    bad = constant | ~(ss_d > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = numerator * scale / np.sqrt(np.where(bad, 1.0, ss_d))
    r = np.where(bad, 0.0, np.clip(r, -1.0, 1.0))
    p = correlation_pvalue(r, n)
    p = np.where(bad, 1.0, p)
    return r, p


def point_biserial(audibility, outcome, max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES):
    """Point-biserial correlation and two-sided p-value at every point.

    `audibility`: (J, F, T), D_j(f, t) for mixture j (any finite reals; the
    bubble method's are in [0, 1]). `outcome`: (J,) flags y_j. Returns
    ``(r, p)``, each (F, T) float64, with the degenerate cases of the module
    docstring. Frequency rows are processed in blocks so that the float64
    temporaries of a block stay under `max_block_bytes` (at least one row).
    """
    d = _check_audibility(audibility)
    n, n_f, n_t = d.shape
    y = _check_outcome(outcome, n)
    _min_mixtures(n)
    n1 = int(y.sum())
    n0 = n - n1
    r = np.zeros((n_f, n_t))
    p = np.ones((n_f, n_t))
    if n1 == 0 or n0 == 0 or n_f == 0 or n_t == 0:
        return r, p
    # r = (M1 - M0) sqrt(n1 n0 / n) / sqrt(sum_j (D_j - mean D)^2), with M1, M0 the mean
    # (centred) audibility of the mixtures with y = 1 and y = 0: the same number as the
    # centred-product formula, and exactly antisymmetric when y is flipped
    w1 = y / float(n1)
    w0 = ~y / float(n0)
    scale = float(np.sqrt(n1 * n0 / n))
    row_bytes = max(1, n * n_t * 8 * 2)  # a block and its centred copy
    rows = max(1, int(max_block_bytes) // row_bytes)
    for f0 in range(0, n_f, rows):
        block = np.array(d[:, f0:f0 + rows, :], dtype=np.float64)  # a copy: centred in place below
        if not np.all(np.isfinite(block)):
            raise InputError("point-biserial: audibility contains NaN or infinite values")
        constant = block.max(axis=0) == block.min(axis=0)
        block -= block.mean(axis=0)
        diff = np.tensordot(w1, block, axes=(0, 0)) - np.tensordot(w0, block, axes=(0, 0))
        ss_d = np.einsum("jft,jft->ft", block, block)
        r[f0:f0 + rows], p[f0:f0 + rows] = _finish(diff, ss_d, scale, constant, n)
    return r, p


class PointBiserialSums:
    """Streaming point-biserial statistics for several outcomes at once.

    ``add(audibility_batch, outcomes_batch)`` takes a (B, F, T) block of
    audibility and a (B, K) block of flags (one column per outcome, e.g.
    per word of the utterance); :meth:`result` gives (r, p) for outcome k,
    identical (to rounding) to :func:`point_biserial` on all the mixtures at
    once. Memory: (K + 4) arrays of F x T float64, whatever the number of
    mixtures. Batches are merged with the pairwise update of Chan, Golub &
    LeVeque (centred within each batch), which avoids the cancellation of
    the textbook sum / sum-of-squares formula.
    """

    def __init__(self, shape: Sequence[int], n_outcomes: int):
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise InputError(f"point-biserial: expected a (frequency, time) shape, got {shape}")
        if int(n_outcomes) < 1:
            raise InputError(f"point-biserial: needs at least one outcome, got {n_outcomes}")
        self.shape = shape
        self.n_outcomes = int(n_outcomes)
        self.n = 0
        self.mean_d = np.zeros(shape)
        self.ss_d = np.zeros(shape)
        self.min_d = np.full(shape, np.inf)
        self.max_d = np.full(shape, -np.inf)
        self.mean_y = np.zeros(self.n_outcomes)
        self.ss_y = np.zeros(self.n_outcomes)
        self.comoment = np.zeros((self.n_outcomes,) + shape)

    def add(self, audibility, outcomes) -> None:
        d = _check_audibility(audibility)
        if d.shape[1:] != self.shape:
            raise InputError(f"point-biserial: audibility blocks must be (B,) + {self.shape}, got {d.shape}")
        y = np.asarray(outcomes)
        if y.ndim == 1 and self.n_outcomes == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape != (d.shape[0], self.n_outcomes):
            raise InputError(f"point-biserial: outcomes must be ({d.shape[0]}, {self.n_outcomes}) flags, "
                             f"got shape {y.shape}")
        y = np.stack([_check_outcome(y[:, k], name=f"outcome {k}") for k in range(self.n_outcomes)], axis=1)
        nb = d.shape[0]
        if nb == 0:
            return
        block = np.array(d, dtype=np.float64)  # a copy: centred in place below
        if not np.all(np.isfinite(block)):
            raise InputError("point-biserial: audibility contains NaN or infinite values")
        np.minimum(self.min_d, block.min(axis=0), out=self.min_d)
        np.maximum(self.max_d, block.max(axis=0), out=self.max_d)
        yb = y.astype(np.float64)
        mb_d = block.mean(axis=0)
        mb_y = yb.mean(axis=0)
        block -= mb_d
        yc = yb - mb_y
        ss_db = np.einsum("jft,jft->ft", block, block)
        ss_yb = np.einsum("jk,jk->k", yc, yc)
        com_b = np.tensordot(yc, block, axes=(0, 0))  # (K, F, T)
        na = self.n
        n = na + nb
        delta_d = mb_d - self.mean_d
        delta_y = mb_y - self.mean_y
        w = na * nb / n
        self.ss_d += ss_db + delta_d * delta_d * w
        self.ss_y += ss_yb + delta_y * delta_y * w
        self.comoment += com_b + (delta_y[:, None, None] * w) * delta_d[None]
        self.mean_d += delta_d * (nb / n)
        self.mean_y += delta_y * (nb / n)
        self.n = n

    def positives(self) -> np.ndarray:
        """How many mixtures had each outcome True, shape (K,)."""
        return np.rint(self.mean_y * self.n).astype(int)

    def result(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(r, p) for outcome `k` over all mixtures added so far."""
        if not 0 <= int(k) < self.n_outcomes:
            raise InputError(f"point-biserial: outcome {k} is outside 0..{self.n_outcomes - 1}")
        _min_mixtures(self.n)
        constant = self.max_d == self.min_d
        ss_y = float(self.ss_y[int(k)])
        scale = 1.0 / np.sqrt(ss_y) if ss_y > 0 else 0.0
        return _finish(self.comoment[int(k)], self.ss_d, scale, constant, self.n)
