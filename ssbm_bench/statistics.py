"""The statistics every board uses: bootstrap intervals and the paired test.

One module, so that a statistical fix lands once for every board.

* :func:`bootstrap_ci` — a percentile bootstrap of a statistic over
  independent units (inputs, excerpts), on ``scipy.stats.bootstrap``.
* :func:`cluster_bootstrap_ci` — a percentile bootstrap that resamples
  *clusters* (utterances) of items (words), each resample's statistic being
  the item-weighted mean, optionally reduced (the SSBM board takes the best
  threshold *inside* every resample, so the interval carries the optimism
  of picking it). Items of one utterance share its audio, so they are not
  independent: resampling utterances is the honest unit. The resample is
  drawn as multinomial weights over clusters, which makes a ratio of sums
  one matrix product; scipy's bootstrap resamples i.i.d. observations and
  has no cluster form, so this one is ours.
* :func:`paired_test` — a two-sided sign-flip permutation test of a mean
  paired difference, on ``scipy.stats.permutation_test`` (exact up to
  :data:`EXACT_UP_TO` units).

Every function is seeded, so a row re-scored from the same cells has the
same interval on every machine.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import stats as _stats

#: resamples of every bootstrap
BOOTSTRAP_SAMPLES = 2000
#: coverage of every interval
CONFIDENCE = 0.95
#: level of the paired test between neighbours
ALPHA = 0.05
#: random sign assignments of the paired test when exact enumeration (2^n) would be larger
PERMUTATIONS = 20000
#: the paired test enumerates every sign assignment up to this many units
EXACT_UP_TO = 16


def _quantiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    lo, hi = np.quantile(values, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(lo), float(hi)


def bootstrap_ci(sample: np.ndarray, statistic: Callable = np.mean, samples: int = BOOTSTRAP_SAMPLES,
                 confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of `statistic` over resampled units (the last axis of `sample`).

    `statistic(x, axis)` must reduce the unit axis (and may reduce others:
    ISA averages a (pairs, inputs) array over both, resampling inputs).
    Fewer than two units give the point value twice; no units, NaN."""
    sample = np.asarray(sample, dtype=np.float64)
    n = sample.shape[-1] if sample.ndim else 0
    if n == 0:
        return float("nan"), float("nan")
    if n < 2:
        v = float(statistic(sample, axis=-1))
        return v, v
    res = _stats.bootstrap((sample,), statistic, n_resamples=samples, confidence_level=confidence,
                           method="percentile", vectorized=True, axis=-1, rng=np.random.default_rng(seed))
    # the percentile interval, read off scipy's bootstrap distribution with np.quantile (as the cluster
    # bootstrap does), so every board's interval is computed the same way to the last bit
    return _quantiles(res.bootstrap_distribution, confidence)


def cluster_draws(clusters: Sequence[str], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The resamples of a cluster bootstrap: (draws, groups).

    ``draws`` is (samples, clusters): how often each cluster (in sorted
    order of its name) is drawn in each resample (multinomial, n draws of n
    clusters); ``groups[i]`` is item i's cluster index, so ``draws[:, groups]``
    weighs every item by its cluster's count. Any statistic of weighted items
    (a ratio of weighted sums, a best threshold, a pooled score) is then
    bootstrapped over clusters with the same draws as the boards use."""
    names = sorted(set(clusters))
    index = {u: i for i, u in enumerate(names)}
    groups = np.array([index[u] for u in clusters], dtype=int)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=samples).astype(float)
    return draws, groups


def cluster_bootstrap_ci(values: np.ndarray, clusters: Sequence[str], reduce: Callable | None = None,
                         samples: int = BOOTSTRAP_SAMPLES, confidence: float = CONFIDENCE,
                         seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the item mean (then `reduce`d), resampling clusters.

    `values` is (items,) or (items, K); `clusters[i]` names item i's
    cluster. With K columns each resample's mean is a K-vector, and
    `reduce(means, axis=1)` (e.g. ``np.max``) turns it into the statistic.
    Fewer than two clusters give the point value twice."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] == 0:
        return float("nan"), float("nan")
    names = sorted(set(clusters))
    if len(names) < 2:
        point = values.mean(axis=0)
        v = float(reduce(point) if reduce is not None else point)
        return v, v
    draws, groups = cluster_draws(clusters, samples, seed)
    sums = np.zeros((len(names), *values.shape[1:]))
    np.add.at(sums, groups, values)
    counts = np.bincount(groups, minlength=len(names)).astype(float)
    totals = draws @ counts
    means = (draws @ sums) / (totals[:, None] if values.ndim > 1 else totals)
    stat = reduce(means, axis=1) if reduce is not None else means
    return _quantiles(stat, confidence)


def paired_test(a: dict[str, float], b: dict[str, float], seed: int = 0) -> tuple[float, int, float]:
    """Two-sided sign-flip permutation test of mean(a_u - b_u) = 0 over the units u both have.

    Under the null each difference is as likely positive as negative; p is
    the share of sign assignments whose mean is at least as extreme as the
    observed one (exact for n <= 16, else 20,000 random assignments, with
    scipy's +1 correction). Returns (mean difference, n, p)."""
    common = sorted(set(a) & set(b))
    d = np.array([a[u] - b[u] for u in common], dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return float("nan"), 0, 1.0
    if not np.any(np.abs(d) > 0):
        return 0.0, n, 1.0
    if n == 1:  # both signs of one difference are as extreme as the observed: p = 1 (scipy wants two units)
        return float(d[0]), 1, 1.0
    resamples = 2 ** n if n <= EXACT_UP_TO else PERMUTATIONS
    res = _stats.permutation_test((d, np.zeros_like(d)), lambda x, y, axis: np.mean(x - y, axis=axis),
                                  permutation_type="samples", n_resamples=resamples, vectorized=True,
                                  alternative="two-sided", rng=np.random.default_rng(seed))
    return float(d.mean()), n, float(min(1.0, res.pvalue))


def smallest_p(n: int) -> float:
    """The smallest two-sided p an exact sign-flip test over n units can give (2 / 2^n)."""
    return 2.0 / 2 ** n if n > 0 else 1.0
