"""Inter-seed agreement (ISA): do models trained with different seeds get
the same attributions? (the ISA paper: Shen et al., "On the reliability of
feature attribution methods for speech classification", eq. 1)

For seeds i and j and N inputs,

    ISA(i, j) = 1/N  sum_n  |top-p(A_i)_n  &  top-p(A_j)_n| / |top-p(A_i)_n|

where top-p returns the indices of the p = 20% largest attribution scores.
The paper reports the distribution of ISA over all seed pairs (9 seeds: 36
pairs) next to a baseline from attributions shuffled per input.

Choices the paper leaves open, made here and tested:

* **Signed scores.** The paper does "no additional processing to the
  attribution score before aggregation", so top-p ranks the signed values
  (a strongly negative attribution is not "important"). ``absolute=True``
  ranks magnitudes instead, for methods whose sign is arbitrary.
* **Size of top-p.** k = ceil(p * n), at least 1, for n scores: with 5
  words and p = 20%, one word; with 6 words, two. |top-p(A_i)| = k for
  both seeds, so the measure is symmetric.
* **Ties** are broken by position (earlier index first), so equal scores
  never make the result depend on sort internals; a constant map therefore
  selects its first k indices (and two constant maps agree fully, which is
  right: they say the same thing).
* **Aggregation** before top-p (the paper's sec. 3.3): none; ``frames``
  (sum over frequency for an STFT-grid map, or over 20 ms for a waveform);
  ``words`` (mean over each aligned word's span, non-word spans dropped).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError

DEFAULT_P = 0.2


def top_p_indices(scores: np.ndarray, p: float = DEFAULT_P, absolute: bool = False) -> np.ndarray:
    """Flat indices of the ceil(p * n) largest scores (ties: earlier index first)."""
    flat = np.asarray(scores, dtype=np.float64).ravel()
    if flat.size == 0:
        raise InputError("top-p of an empty attribution: expected at least one score")
    if not np.all(np.isfinite(flat)):
        raise InputError("attribution holds NaN or infinite scores: expected finite values")
    if not 0.0 < p <= 1.0:
        raise InputError(f"p must be in (0, 1], got {p}")
    k = max(1, math.ceil(p * flat.size - 1e-9))
    key = np.abs(flat) if absolute else flat
    order = np.lexsort((np.arange(flat.size), -key))  # by -score, then by index
    return np.sort(order[:k])


def top_p_overlap(a: np.ndarray, b: np.ndarray, p: float = DEFAULT_P, absolute: bool = False) -> float:
    """|top-p(a) & top-p(b)| / |top-p(a)| for one input."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise InputError(f"attributions of mismatched shapes between seeds: {a.shape} vs {b.shape}")
    ta = top_p_indices(a, p, absolute)
    tb = top_p_indices(b, p, absolute)
    return float(np.intersect1d(ta, tb, assume_unique=True).size / ta.size)


def isa_pair(maps_i: Sequence[np.ndarray], maps_j: Sequence[np.ndarray], p: float = DEFAULT_P,
             absolute: bool = False) -> float:
    """ISA of one seed pair: the mean top-p overlap over the inputs (eq. 1)."""
    if len(maps_i) != len(maps_j):
        raise InputError(f"seeds explained different numbers of inputs: {len(maps_i)} vs {len(maps_j)}")
    if not maps_i:
        raise InputError("no inputs to compare: expected attributions for at least one input")
    return float(np.mean([top_p_overlap(a, b, p, absolute) for a, b in zip(maps_i, maps_j)]))


def shuffled(maps: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Each input's attribution with its scores randomly permuted (the paper's baseline)."""
    out = []
    for m in maps:
        m = np.asarray(m)
        out.append(rng.permutation(m.ravel()).reshape(m.shape))
    return out


@dataclass(frozen=True)
class IsaResult:
    """ISA over all seed pairs, and the shuffled baseline over the same pairs."""

    pairs: tuple[tuple[str, str], ...]
    scores: tuple[float, ...]
    baseline: tuple[float, ...]
    p: float

    @property
    def median(self) -> float:
        return float(np.median(self.scores))

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def baseline_median(self) -> float:
        return float(np.median(self.baseline))

    def to_dict(self) -> dict:
        return {"pairs": [list(p) for p in self.pairs], "scores": list(self.scores),
                "baseline": list(self.baseline), "p": self.p, "median": self.median, "mean": self.mean,
                "baseline_median": self.baseline_median}


def isa(attributions: dict[str, Sequence[np.ndarray]], p: float = DEFAULT_P, absolute: bool = False,
        seed: int = 0) -> IsaResult:
    """ISA for every pair of seeds.

    ``attributions`` maps a seed's name to its attributions of the same
    inputs, in the same order. Refuses fewer than two seeds, different input
    counts, or mismatched shapes, naming which.
    """
    names = sorted(attributions)
    if len(names) < 2:
        raise InputError(f"ISA needs attributions from at least two seeds, got {len(names)}: {names}")
    counts = {n: len(attributions[n]) for n in names}
    if len(set(counts.values())) != 1:
        raise InputError(f"seeds explained different numbers of inputs: {counts}")
    for idx in range(counts[names[0]]):
        shapes = {n: np.shape(attributions[n][idx]) for n in names}
        if len(set(shapes.values())) != 1:
            raise InputError(f"input {idx}: attributions of mismatched shapes between seeds: {shapes}")
    rng = np.random.default_rng(seed)
    shuffled_maps = {n: shuffled(attributions[n], rng) for n in names}
    pairs, scores, base = [], [], []
    for a, b in itertools.combinations(names, 2):
        pairs.append((a, b))
        scores.append(isa_pair(attributions[a], attributions[b], p, absolute))
        base.append(isa_pair(shuffled_maps[a], shuffled_maps[b], p, absolute))
    return IsaResult(tuple(pairs), tuple(scores), tuple(base), p)


# --- aggregation --------------------------------------------------------------------
def aggregate_frames(attribution: np.ndarray, samples_per_frame: int | None = None) -> np.ndarray:
    """Sum per frame: an STFT-grid map (freq, frames) sums over frequency; a
    waveform attribution (samples,) sums over consecutive ``samples_per_frame``
    samples (20 ms = 320 at 16 kHz; a short last frame is kept)."""
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim == 2:
        return a.sum(axis=0)
    if a.ndim == 1:
        if not samples_per_frame or samples_per_frame < 1:
            raise InputError("a waveform attribution needs samples_per_frame (320 for 20 ms at 16 kHz)")
        n = math.ceil(a.size / samples_per_frame)
        padded = np.zeros(n * samples_per_frame)
        padded[: a.size] = a
        return padded.reshape(n, samples_per_frame).sum(axis=1)
    raise InputError(f"expected a (freq, frames) map or a (samples,) waveform attribution, got shape {a.shape}")


def aggregate_words(frame_scores: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mean over each word's [start, stop) span of frame (or sample) scores;
    whatever lies outside the spans (non-word segments) is dropped."""
    s = np.asarray(frame_scores, dtype=np.float64)
    if s.ndim != 1:
        raise InputError(f"word aggregation expects per-frame scores (1-D), got shape {s.shape}")
    out = []
    for k, (start, stop) in enumerate(spans):
        if not 0 <= start < stop <= s.size:
            raise InputError(f"word {k}: span [{start}, {stop}) is empty or outside the {s.size} frames")
        out.append(float(s[start:stop].mean()))
    if not out:
        raise InputError("no word spans: expected at least one aligned word")
    return np.asarray(out)
