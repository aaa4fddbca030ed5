"""The structured saliency benchmark (SSBM) as pure functions over arrays.

Reference: the SSBM paper (Trinh & Mandel, "Large scale evaluation of
importance maps in automatic speech recognition", Interspeech 2020,
eqs. 1-5). For one analysed word w of an
utterance and a saliency map thresholded at t:

* a LeRF noise mask puts maximum noise where the map says "unimportant" and
  minimum noise where it says "important"; the MoRF mask does the reverse;
* the recogniser transcribes clean speech + mask x STFT(white noise), giving
  a_w (the word's accuracy) and a_o (the other words' mean accuracy);
* e is the proportion of the utterance's speech energy the mask drops;
* Delta_LeRF = (a_w - a_o) / (1 - e_LeRF), Delta_MoRF = (a_o - a_w) / e_MoRF,
  SSBM = Delta_LeRF + Delta_MoRF, averaged over words at each threshold; a
  method's SSBM is its best threshold.

No I/O here: the harness runs the recogniser and calls these functions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable, Literal, Sequence

import numpy as np

from ..errors import InputError

#: mask floor in dB (paper: d0 = -80 -> minimum mask value 1e-4)
D0 = -80.0
#: mask ceiling in dB (paper: d1 = 0 -> maximum mask value 1)
D1 = 0.0
#: width of the transition region as a fraction of the threshold (paper: 0.5)
ALPHA = 0.5

#: Smallest denominator allowed in Delta_LeRF / Delta_MoRF.
#:
#: With e in [1e-4, 1] a denominator can approach 0 (a LeRF mask that drops
#: almost all energy, 1 - e_LeRF -> 0; or a MoRF mask that drops almost
#: none, e_MoRF -> 1e-4) and one word then dominates the average: the paper
#: reports a spike in its energy LeRF curve at 15 dB caused by a denominator
#: of 0.001. We clamp denominators at 0.01, i.e. a single word can contribute
#: at most |a_w - a_o| / 0.01 <= 100 to a threshold's mean, 100x its
#: unguarded range of [-1, 1] per unit energy, which still rewards very
#: specific maps strongly but cannot turn one near-empty mask into the whole
#: score. Every clamp is counted (`CellOutcome.guarded`,
#: `ThresholdSummary.n_guarded`) so a reader can see where it fired.
DENOMINATOR_FLOOR = 0.01

MapKind = Literal["pvalue", "magnitude", "score"]
Direction = Literal["lerf", "morf"]

_KINDS = ("pvalue", "magnitude", "score")
_DIRECTIONS = ("lerf", "morf")


# --------------------------------------------------------------------------- masks


def _check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise InputError(f"SSBM: map kind must be one of {', '.join(_KINDS)}; got {kind!r}")
    return kind


def _check_direction(direction: str) -> str:
    d = str(direction).lower()
    if d not in _DIRECTIONS:
        raise InputError(f"SSBM: direction must be 'lerf' or 'morf'; got {direction!r}")
    return d


def _check_shape_params(d0: float, d1: float, alpha: float) -> None:
    if not (np.isfinite(d0) and np.isfinite(d1) and d0 < d1):
        raise InputError(f"SSBM: expected finite d0 < d1, got d0={d0}, d1={d1}")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"SSBM: alpha must be in (0, 1) (the transition width), got {alpha}")


def rank_importance(scores: np.ndarray) -> np.ndarray:
    """Map real scores (large = important) to p-value-like u in (0, 1], same shape.

    u = r / N, where r is the rank counted from the top (the highest score
    has r = 1, so the smallest u = 1/N) and N the number of points.

    Ties take the *maximum* rank of their group (scipy's ``method="max"``):
    tied points share one value, and that value is the one of the *last* of
    them, so a tie group only counts as important once the whole group fits
    inside the fraction being marked. Consequences: the number of points
    with u <= f never exceeds f * N (a tie never inflates the marked
    fraction); zero-padded regions of a map (all tied at the bottom, u = 1)
    are never marked important; a constant map gets u = 1 everywhere and is
    marked important at no fraction: its LeRF mask is full noise at every
    threshold. (Its MoRF mask is clean for t <= 2/3 and noisy above, only
    because the MoRF transition band of eq. 3 runs from t to t + (1 - alpha) t
    and so reaches u = 1; at t = 1 the boundary point u = t gets full noise in
    both directions, the paper's convention at p = t.) The "min" rule would
    instead mark a whole tie group at once as soon as its first member
    qualified, letting one large zero region exceed the fraction asked for.

    Why this gives "threshold t = fraction of the spectrogram marked
    important": u <= f holds for exactly the top floor(f N) points (fewer
    with ties). Fed to the p-value transition (eq. 3) with threshold t = f,
    points with u <= alpha t (the top alpha*f of the grid) get the minimum
    LeRF noise (fully clean), points with u >= t (outside the top fraction f)
    get full noise, and the points in between fade linearly in dB, exactly as
    a bubble p-value map thresholded at t. The transform depends only on the
    order of the scores, so it is invariant to any strictly increasing
    transform of them (scale, offset, log, ...).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        raise InputError("rank_importance: empty score map")
    if not np.all(np.isfinite(s)):
        raise InputError("rank_importance: scores contain NaN or infinite values")
    flat = s.ravel()
    n = flat.size
    # rank from the top with ties -> max rank: for each value, how many points score >= it.
    order = np.sort(flat)  # ascending
    n_below = np.searchsorted(order, flat, side="left")  # points strictly below
    rank_from_top = n - n_below  # points >= value, i.e. the max rank of the tie group
    return (rank_from_top / float(n)).reshape(s.shape)


def _threshold_value(threshold: float, kind: str) -> float:
    """The threshold on the map's own axis: p (pvalue), amplitude (magnitude), fraction (score)."""
    try:
        t = float(threshold)
    except (TypeError, ValueError) as exc:
        raise InputError(f"SSBM: threshold must be a number, got {threshold!r}") from exc
    if not np.isfinite(t):
        raise InputError(f"SSBM: threshold must be finite, got {threshold}")
    if kind == "magnitude":
        return float(10.0 ** (0.05 * t))  # t is in dB
    if kind == "pvalue":
        if t <= 0:
            raise InputError(f"SSBM: a p-value threshold must be > 0, got {t}")
        return t
    if not 0.0 < t <= 1.0:
        raise InputError(f"SSBM: a score threshold is a fraction of the map in (0, 1], got {t}")
    return t


def transition_q(
    values: np.ndarray,
    threshold: float,
    kind: str,
    direction: str,
    d0: float = D0,
    d1: float = D1,
    alpha: float = ALPHA,
) -> np.ndarray:
    """Unclipped noise level q in dB at every point of a map (eqs. 3 and 5).

    * kind "pvalue" (small p = important):
      q_LeRF(p) = -(d1 - d0) (p - t) / (alpha t - t)                  (eq. 3)
    * kind "magnitude" (large amplitude = important; `threshold` is t_dB and
      t = 10^(0.05 t_dB)):
      q_LeRF(a) = (d1 - d0) (a - t) / (alpha t - t)                   (eq. 5)
    * kind "score" (large = important): values go through
      :func:`rank_importance` first, then the p-value form with t = the
      fraction of points marked important.

    direction "lerf" or "morf"; q_MoRF = -q_LeRF.
    """
    kind = _check_kind(kind)
    direction = _check_direction(direction)
    _check_shape_params(d0, d1, alpha)
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise InputError("SSBM: map values contain NaN or infinite values")
    t = _threshold_value(threshold, kind)
    span = d1 - d0
    denom = alpha * t - t  # negative: alpha < 1, t > 0
    if kind == "score":
        v = rank_importance(v)
    if kind == "magnitude":
        q = span * (v - t) / denom
    else:
        q = -span * (v - t) / denom
    return -q if direction == "morf" else q


def noise_mask(
    values: np.ndarray,
    threshold: float,
    kind: str,
    direction: str,
    d0: float = D0,
    d1: float = D1,
    alpha: float = ALPHA,
) -> np.ndarray:
    """Noise gain m = 10^(0.05 clip(q, d0, d1)) at every point (eq. 4).

    1 = full noise (the point is dropped), 10^(0.05 d0) (1e-4 by default) =
    the point is kept clean.
    """
    q = transition_q(values, threshold, kind, direction, d0, d1, alpha)
    m = np.power(10.0, 0.05 * np.clip(q, d0, d1))
    # guard round-off at the ends so the documented range holds exactly
    return np.clip(m, 10.0 ** (0.05 * d0), 10.0 ** (0.05 * d1))


def dropped_energy(mask: np.ndarray, clean_magnitude: np.ndarray) -> float:
    """Proportion of the utterance's speech energy a mask drops.

    e = sum(m * |S|^2) / sum(|S|^2): the mask-weighted energy over the total
    energy, with m the noise gain of :func:`noise_mask` (1 =
    dropped) and S the clean STFT (complex or magnitude). With m in
    [1e-4, 1], e lies in [1e-4, 1].
    """
    m = np.asarray(mask, dtype=np.float64)
    s = np.abs(np.asarray(clean_magnitude))
    if m.shape != s.shape:
        raise InputError(f"dropped_energy: mask shape {m.shape} does not match the spectrogram's {s.shape}")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s))):
        raise InputError("dropped_energy: mask or spectrogram contains NaN or infinite values")
    if np.any(m < 0):
        raise InputError("dropped_energy: mask has negative values")
    power = s.astype(np.float64) ** 2
    total = float(power.sum())
    if total <= 0.0:
        raise InputError("dropped_energy: the clean spectrogram has zero energy")
    # m <= 1 makes e <= 1 mathematically; the clip only absorbs round-off
    return float(min(1.0, np.sum(m * power) / total))


# --------------------------------------------------------------------------- deltas


def _guarded(denominator: float, floor: float) -> tuple[float, bool]:
    if not 0.0 < floor < 1.0:
        raise InputError(f"SSBM: denominator floor must be in (0, 1), got {floor}")
    if denominator < floor:
        return floor, True
    return denominator, False


def delta_lerf(a_w: float, a_o: float, e_lerf: float, floor: float = DENOMINATOR_FLOOR) -> tuple[float, bool]:
    """Delta_LeRF = (a_w - a_o) / max(1 - e_LeRF, floor) (eq. 1); second value: the guard fired."""
    den, fired = _guarded(1.0 - float(e_lerf), floor)
    return (float(a_w) - float(a_o)) / den, fired


def delta_morf(a_w: float, a_o: float, e_morf: float, floor: float = DENOMINATOR_FLOOR) -> tuple[float, bool]:
    """Delta_MoRF = (a_o - a_w) / max(e_MoRF, floor) (eq. 1); second value: the guard fired."""
    den, fired = _guarded(float(e_morf), floor)
    return (float(a_o) - float(a_w)) / den, fired


@dataclass(frozen=True)
class CellOutcome:
    """What the recogniser did for one word at one threshold, in both directions."""

    threshold: float
    a_w_lerf: float
    a_o_lerf: float
    e_lerf: float
    a_w_morf: float
    a_o_morf: float
    e_morf: float
    floor: float = DENOMINATOR_FLOOR

    def __post_init__(self):
        for name in ("threshold", "a_w_lerf", "a_o_lerf", "e_lerf", "a_w_morf", "a_o_morf", "e_morf", "floor"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.number)) or not np.isfinite(v):
                raise InputError(f"SSBM cell: {name} must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        for name in ("a_w_lerf", "a_o_lerf", "e_lerf", "a_w_morf", "a_o_morf", "e_morf"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"SSBM cell: {name} must be in [0, 1], got {v}")
        if not 0.0 < self.floor < 1.0:
            raise InputError(f"SSBM cell: floor must be in (0, 1), got {self.floor}")

    @property
    def delta_lerf(self) -> float:
        return delta_lerf(self.a_w_lerf, self.a_o_lerf, self.e_lerf, self.floor)[0]

    @property
    def delta_morf(self) -> float:
        return delta_morf(self.a_w_morf, self.a_o_morf, self.e_morf, self.floor)[0]

    @property
    def ssbm(self) -> float:
        return self.delta_lerf + self.delta_morf

    @property
    def guarded(self) -> bool:
        """True when either denominator was clamped at the floor."""
        return (
            delta_lerf(self.a_w_lerf, self.a_o_lerf, self.e_lerf, self.floor)[1]
            or delta_morf(self.a_w_morf, self.a_o_morf, self.e_morf, self.floor)[1]
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ThresholdSummary:
    """Means over the words scored at one threshold (one point of the paper's Fig. 7)."""

    threshold: float
    n_words: int
    delta_lerf: float
    delta_morf: float
    ssbm: float
    a_w_lerf: float
    a_w_morf: float
    e_lerf: float
    e_morf: float
    n_guarded: int
    a_o_lerf: float = float("nan")
    a_o_morf: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def ssbm_curve(outcomes: Iterable[tuple[str, CellOutcome]]) -> list[ThresholdSummary]:
    """Average Delta_LeRF, Delta_MoRF, SSBM, a_w, a_o and e over words at each threshold.

    `outcomes` holds (word key, outcome) pairs, e.g. ``("utt7:word:3:tree",
    cell)``. Thresholds are grouped by exact value (the grid comes from one
    list, so equal thresholds are bit-identical); each threshold averages
    over the words that have an outcome there (``n_words``). The same word
    twice at one threshold is an error: it would be counted twice. Returned
    sorted by threshold; empty input gives an empty curve.
    """
    groups: dict[float, list[CellOutcome]] = defaultdict(list)
    seen: set[tuple[str, float]] = set()
    for item in outcomes:
        try:
            key, cell = item
        except (TypeError, ValueError) as exc:
            raise InputError(f"ssbm_curve: expected (word key, CellOutcome) pairs, got {item!r}") from exc
        if not isinstance(cell, CellOutcome):
            raise InputError(f"ssbm_curve: word {key!r}: expected a CellOutcome, got {type(cell).__name__}")
        t = float(cell.threshold)
        if (key, t) in seen:
            raise InputError(f"ssbm_curve: word {key!r} has two outcomes at threshold {t}")
        seen.add((key, t))
        groups[t].append(cell)

    curve = []
    for t in sorted(groups):
        cells = groups[t]

        def mean(attr: str) -> float:
            return float(np.mean([getattr(c, attr) for c in cells]))

        curve.append(
            ThresholdSummary(
                threshold=t,
                n_words=len(cells),
                delta_lerf=mean("delta_lerf"),
                delta_morf=mean("delta_morf"),
                ssbm=mean("ssbm"),
                a_w_lerf=mean("a_w_lerf"),
                a_w_morf=mean("a_w_morf"),
                e_lerf=mean("e_lerf"),
                e_morf=mean("e_morf"),
                n_guarded=sum(1 for c in cells if c.guarded),
                a_o_lerf=mean("a_o_lerf"),
                a_o_morf=mean("a_o_morf"),
            )
        )
    return curve


def best_threshold(curve: Sequence[ThresholdSummary]) -> ThresholdSummary:
    """The point of the curve with the highest mean SSBM: the method's score.

    Exact ties go to the numerically smaller threshold, a fixed rule that
    keeps the choice independent of the order of `curve`. For p-value and
    score maps the smaller threshold is the sparser map (fewer points
    marked important), the more specific claim; for magnitude maps (dB) it
    is the lower energy cut-off.
    """
    points = list(curve)
    if not points:
        raise InputError("best_threshold: empty SSBM curve (no scored words)")
    for p in points:
        if not np.isfinite(p.ssbm):
            raise InputError(f"best_threshold: SSBM at threshold {p.threshold} is not finite ({p.ssbm})")
    return min(points, key=lambda p: (-p.ssbm, p.threshold))


# --------------------------------------------------------------------------- grids


def default_thresholds(kind: str, grid: str = "standard") -> np.ndarray:
    """The threshold grid swept for a map kind.

    * pvalue: the paper's 25 values log-spaced 1e-8 .. 1 (3 a decade);
      quick: every 4th of them, 7 values 1e-8 .. 1.
    * magnitude (t_dB): the paper's 21 values -80 .. 20 dB in 5 dB steps;
      quick: -80 .. 20 in 20 dB steps (6 values).
    * score (fraction of the map marked important): 13 values log-spaced
      1e-3 .. 1 (4 a decade); quick: 5 values log-spaced 1e-2 .. 1.
      There is no natural scale to a score, so the grid is in fractions of
      the map (see :func:`rank_importance`). Log spacing because useful maps
      are sparse: the paper's best bubble masks keep a small patch of a
      spectrogram. 1e-3 of a 513 x ~200 STFT grid is ~100 points, about a
      bubble's area; below that, maps mark too little to keep any word. The
      quick grid starts at 1e-2 because quick runs use short utterances
      whose grids are small enough that 1e-3 marks only a few points.

    Each quick grid is an exact subset of its standard grid (same floats),
    so results from a quick run line up with a standard run's.
    """
    kind = _check_kind(kind)
    if grid not in ("standard", "quick"):
        raise InputError(f"SSBM: threshold grid must be 'standard' or 'quick', got {grid!r}")
    if kind == "pvalue":
        standard = np.logspace(-8.0, 0.0, 25)
        return standard if grid == "standard" else standard[::4].copy()
    if kind == "magnitude":
        standard = np.arange(-80.0, 20.0 + 1e-9, 5.0)
        return standard if grid == "standard" else standard[::4].copy()
    standard = np.logspace(-3.0, 0.0, 13)
    return standard if grid == "standard" else standard[4::2].copy()
