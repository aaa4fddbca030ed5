"""Results -> ranked tables, with bootstrap confidence intervals.

Scores are recomputed from the raw outcomes in the store (accuracies and
dropped energies per threshold), never from a cached number, so a change to
scoring re-scores every stored run without decoding anything again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from .board_rows import rows_to_csv, rows_to_json
from .harness.store import CellRow, ResultStore
from .metrics.ssbm import DENOMINATOR_FLOOR, CellOutcome, best_threshold, ssbm_curve

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class LeaderboardRow:
    board: str
    suite: str
    suite_digest: str
    corpus: str
    corpus_digest: str
    model: str
    method: str
    fill: str
    score: float
    ci_low: float
    ci_high: float
    best_threshold: float
    delta_lerf: float
    delta_morf: float
    n: int
    n_utterances: int
    n_guarded: int
    skipped: int
    errors: int
    noise_level_db: float | None
    rank: int = 0
    versions: dict = field(default_factory=dict)
    curve: list = field(default_factory=list)

    def to_dict(self, with_curve: bool = False) -> dict:
        d = asdict(self)
        if not with_curve:
            d.pop("curve")
        return d


def _outcome(entry: dict, floor: float = DENOMINATOR_FLOOR) -> CellOutcome:
    lerf, morf = entry["lerf"], entry["morf"]
    return CellOutcome(threshold=entry["threshold"], a_w_lerf=lerf["a_w"], a_o_lerf=lerf["a_o"], e_lerf=lerf["e"],
                       a_w_morf=morf["a_w"], a_o_morf=morf["a_o"], e_morf=morf["e"], floor=floor)


def _floor(cell: CellRow) -> float:
    return float(cell.params.get("denominator_floor", DENOMINATOR_FLOOR))


def bootstrap_best_ssbm(per_word: np.ndarray, utterance_of_word: list[str], samples: int = BOOTSTRAP_SAMPLES,
                        confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the best-threshold SSBM, resampling utterances.

    `per_word` is (words x thresholds). The best threshold is re-chosen in
    every resample, so the interval includes the optimism of picking it.
    """
    utts = sorted(set(utterance_of_word))
    if len(utts) < 2:
        best = float(np.max(per_word.mean(axis=0)))
        return best, best
    index = {u: i for i, u in enumerate(utts)}
    groups = np.array([index[u] for u in utterance_of_word])
    sums = np.zeros((len(utts), per_word.shape[1]))
    np.add.at(sums, groups, per_word)
    counts = np.bincount(groups, minlength=len(utts)).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(utts), np.full(len(utts), 1.0 / len(utts)), size=samples).astype(float)
    means = (draws @ sums) / (draws @ counts)[:, None]
    best = means.max(axis=1)
    lo, hi = np.quantile(best, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(lo), float(hi)


def ssbm_rows(cells: list[CellRow]) -> list[LeaderboardRow]:
    groups: dict[tuple, list[CellRow]] = defaultdict(list)
    for c in cells:
        groups[(c.suite, c.suite_digest, c.corpus, c.corpus_digest, c.model, c.method, c.fill)].append(c)
    rows = []
    for (suite, sdig, corpus, cdig, model, method, fill), members in groups.items():
        ok = [c for c in members if c.status == "ok" and c.raw]
        skipped = sum(c.status == "skipped" for c in members)
        errors = sum(c.status == "error" for c in members)
        versions = members[0].versions
        if not ok:
            rows.append(LeaderboardRow("ssbm", suite, sdig, corpus, cdig, model, method, fill, float("nan"),
                                       float("nan"), float("nan"), float("nan"), float("nan"), float("nan"),
                                       0, 0, 0, skipped, errors, None, versions=versions))
            continue
        outcomes = [(c.key, _outcome(e, _floor(c))) for c in ok for e in c.raw["thresholds"]]
        curve = ssbm_curve(outcomes)
        best = best_threshold(curve)
        thresholds = [s.threshold for s in curve]
        # words x thresholds; every cell of a group shares the suite's threshold grid
        complete = [c for c in ok if len(c.raw["thresholds"]) == len(thresholds)]
        per_word = np.array([[_outcome(e, _floor(c)).ssbm
                              for e in sorted(c.raw["thresholds"], key=lambda e: e["threshold"])] for c in complete])
        lo, hi = bootstrap_best_ssbm(per_word, [c.utterance for c in complete])
        rows.append(LeaderboardRow(
            "ssbm", suite, sdig, corpus, cdig, model, method, fill, score=float(best.ssbm), ci_low=lo, ci_high=hi,
            best_threshold=float(best.threshold), delta_lerf=float(best.delta_lerf),
            delta_morf=float(best.delta_morf), n=len(ok), n_utterances=len({c.utterance for c in ok}),
            n_guarded=int(best.n_guarded), skipped=skipped, errors=errors,
            noise_level_db=ok[0].raw.get("level_db"), versions=versions,
            curve=[asdict(s) for s in curve],
        ))
    _rank(rows)
    return rows


def _rank(rows: list[LeaderboardRow]) -> None:
    by_table: dict[tuple, list[LeaderboardRow]] = defaultdict(list)
    for r in rows:
        by_table[(r.board, r.suite, r.corpus, r.model)].append(r)
    for members in by_table.values():
        members.sort(key=lambda r: (-(r.score if np.isfinite(r.score) else -np.inf), r.method, r.fill))
        for i, r in enumerate(members, 1):
            r.rank = i
    rows.sort(key=lambda r: (r.board, r.suite, r.corpus, r.model, r.rank))


BOARDS = ("ssbm", "deletion", "isa", "stability")


def build_leaderboard(store: ResultStore, board: str = "ssbm") -> list:
    if board == "deletion":
        from .deletion_board import deletion_rows

        return deletion_rows(list(store.cells(board="deletion")))
    if board == "isa":
        from .isa_board import isa_rows

        return isa_rows(list(store.cells(board="isa")))
    if board == "stability":
        from .stability_board import stability_rows

        return stability_rows(list(store.cells(board="stability")))
    if board != "ssbm":
        raise ValueError(f"unknown board {board!r}; known boards: {', '.join(BOARDS)}")
    return ssbm_rows(list(store.cells(board="ssbm")))


def _deletion_format(rows: list, fmt: str) -> str | None:
    """The deletion board's own formatter when `rows` are deletion rows."""
    board = getattr(rows[0], "board", None) if rows else None
    if board == "deletion":
        from . import deletion_board

        return getattr(deletion_board, fmt)(rows)
    if board == "isa":
        from . import isa_board

        return getattr(isa_board, fmt)(rows)
    if board == "stability":
        from . import stability_board

        return getattr(stability_board, fmt)(rows)
    return None


def _fmt(x: float | None, spec: str = ".2f") -> str:
    if x is None or not np.isfinite(x):
        return "—"
    return format(x, spec)


def to_markdown(rows: list[LeaderboardRow]) -> str:
    other = _deletion_format(rows, "to_markdown")
    if other is not None:
        return other
    out = []
    by_table: dict[tuple, list[LeaderboardRow]] = defaultdict(list)
    for r in rows:
        by_table[(r.board, r.suite, r.corpus, r.model)].append(r)
    for (board, suite, corpus, model), members in by_table.items():
        level = members[0].noise_level_db
        out.append(f"### {board.upper()} — suite `{suite}`, corpus `{corpus}` "
                   f"(digest `{members[0].corpus_digest[:12]}`), model `{model}`\n")
        out.append("| rank | method | fill | SSBM | 95% CI | best threshold | ΔLeRF | ΔMoRF | words | utterances |"
                   " skipped | errors |")
        out.append("|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in members:
            out.append(f"| {r.rank} | {r.method} | {r.fill} | {_fmt(r.score)} | [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] | "
                       f"{_fmt(r.best_threshold, 'g')} | {_fmt(r.delta_lerf)} | {_fmt(r.delta_morf)} | {r.n} | "
                       f"{r.n_utterances} | {r.skipped} | {r.errors} |")
        guarded = sum(r.n_guarded for r in members)
        notes = [f"noise level {level:+g} dB re. speech RMS" if level is not None else None,
                 f"{guarded} word(s) at the best threshold hit the denominator floor" if guarded else None]
        notes = [n for n in notes if n]
        if notes:
            out.append("\n" + "; ".join(notes) + ".")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


CSV_FIELDS = ["board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "fill", "rank", "score",
              "ci_low", "ci_high", "best_threshold", "delta_lerf", "delta_morf", "n", "n_utterances", "n_guarded",
              "skipped", "errors", "noise_level_db"]


def to_csv(rows: list[LeaderboardRow]) -> str:
    other = _deletion_format(rows, "to_csv")
    if other is not None:
        return other
    return rows_to_csv(rows, CSV_FIELDS)


def to_json(rows: list[LeaderboardRow], with_curve: bool = False) -> str:
    other = _deletion_format(rows, "to_json")
    if other is not None:
        return other
    return rows_to_json(rows, with_curve=with_curve)
