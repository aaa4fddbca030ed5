"""The `deletion` board: deletion by rank, recomputed from the store's raw outcomes.

Per (suite, corpus, model, method, fill): the mean score (token success of
the explained target for ASR, the class probability for classifiers) after
masking the top / random / bottom fraction r of each map, over all cells.
Headline: the gap, mean over r of score(random) - score(top) (positive: the
map's top points matter more than random ones), with a bootstrap interval
over utterances; beside it the ordering cases (top < random, top < bottom,
random < bottom at each r: the poster's "7 of 9"), the full
order x fraction table and the cost per explanation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from .board_rows import rows_to_csv, rows_to_json
from .harness.store import CellRow
from .metrics.deletion import ORDERS, deletion_gap, ordering_cases, top_lowest_cases

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class DeletionRow:
    board: str
    suite: str
    suite_digest: str
    corpus: str
    corpus_digest: str
    model: str
    method: str
    fill: str
    score: float  # the gap, random - top, mean over fractions
    ci_low: float
    ci_high: float
    fractions: list
    #: order -> fraction (as text) -> mean score
    table: dict
    clean: float
    cases_held: int
    cases_total: int
    top_lowest: int
    score_kind: str
    seconds_per_explanation: float
    n: int
    n_utterances: int
    skipped: int
    errors: int
    skip_reasons: list = field(default_factory=list)
    rank: int = 0
    versions: dict = field(default_factory=dict)

    def to_dict(self, with_curve: bool = False) -> dict:
        return asdict(self)


def _fkey(r: float) -> str:
    return f"{r:g}"


def _cell_table(cell: CellRow) -> dict[tuple[str, float], float]:
    return {(c["order"], float(c["fraction"])): float(c["target"]) for c in cell.raw["conditions"]}


def _bootstrap_gap(gaps: np.ndarray, utterances: list[str], seed: int = 0) -> tuple[float, float]:
    utts = sorted(set(utterances))
    if len(utts) < 2:
        m = float(np.mean(gaps))
        return m, m
    idx = {u: i for i, u in enumerate(utts)}
    groups = np.array([idx[u] for u in utterances])
    sums = np.bincount(groups, weights=gaps, minlength=len(utts))
    counts = np.bincount(groups, minlength=len(utts)).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(utts), np.full(len(utts), 1.0 / len(utts)), size=BOOTSTRAP_SAMPLES).astype(float)
    means = (draws @ sums) / (draws @ counts)
    lo, hi = np.quantile(means, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
    return float(lo), float(hi)


def deletion_rows(cells: list[CellRow]) -> list[DeletionRow]:
    groups: dict[tuple, list[CellRow]] = defaultdict(list)
    for c in cells:
        groups[(c.suite, c.suite_digest, c.corpus, c.corpus_digest, c.model, c.method, c.fill)].append(c)
    rows = []
    for (suite, sdig, corpus, cdig, model, method, fill), members in groups.items():
        ok = [c for c in members if c.status == "ok" and c.raw and c.raw.get("conditions")]
        skipped = [c for c in members if c.status == "skipped"]
        errors = sum(c.status == "error" for c in members)
        reasons = sorted({c.reason for c in skipped if c.reason})
        fractions = sorted({float(x["fraction"]) for c in ok for x in c.raw["conditions"]})
        nan = float("nan")
        if not ok:
            rows.append(DeletionRow("deletion", suite, sdig, corpus, cdig, model, method, fill, nan, nan, nan,
                                    fractions, {}, nan, 0, 0, 0, "", nan, 0, 0, len(skipped), errors, reasons,
                                    versions=members[0].versions))
            continue
        tables = [_cell_table(c) for c in ok]
        mean_table = {}
        for key in tables[0]:
            vals = np.array([t.get(key, nan) for t in tables], dtype=float)
            mean_table[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else nan
        gaps = np.array([deletion_gap(t, fractions) for t in tables])
        finite = np.isfinite(gaps)
        lo, hi = _bootstrap_gap(gaps[finite], [c.utterance for c, f in zip(ok, finite) if f]) if finite.any() \
            else (nan, nan)
        held, total = ordering_cases(mean_table, fractions)
        lowest, _ = top_lowest_cases(mean_table, fractions)
        clean = [c.raw["clean"]["target"] for c in ok]
        rows.append(DeletionRow(
            "deletion", suite, sdig, corpus, cdig, model, method, fill,
            score=deletion_gap(mean_table, fractions), ci_low=lo, ci_high=hi, fractions=fractions,
            table={o: {_fkey(r): mean_table[(o, r)] for r in fractions} for o in ORDERS},
            clean=float(np.nanmean(clean)), cases_held=held, cases_total=total, top_lowest=lowest,
            score_kind=ok[0].raw["scoring"]["kind"],
            seconds_per_explanation=float(np.mean([c.raw["explain_seconds"] for c in ok])),
            n=len(ok), n_utterances=len({c.utterance for c in ok}), skipped=len(skipped), errors=errors,
            skip_reasons=reasons, versions=members[0].versions,
        ))
    by_table: dict[tuple, list[DeletionRow]] = defaultdict(list)
    for r in rows:
        by_table[(r.suite, r.corpus, r.model)].append(r)
    for members in by_table.values():
        members.sort(key=lambda r: (-(r.score if np.isfinite(r.score) else -np.inf), r.method, r.fill))
        for i, r in enumerate(members, 1):
            r.rank = i
    rows.sort(key=lambda r: (r.suite, r.corpus, r.model, r.rank))
    return rows


def _fmt(x, spec: str = ".3f") -> str:
    if x is None or not np.isfinite(x):
        return "—"
    return format(x, spec)


def to_markdown(rows: list[DeletionRow]) -> str:
    out = []
    by_table: dict[tuple, list[DeletionRow]] = defaultdict(list)
    for r in rows:
        by_table[(r.suite, r.corpus, r.model)].append(r)
    for (suite, corpus, model), members in by_table.items():
        kind = next((r.score_kind for r in members if r.score_kind), "")
        what = {"token_success": "teacher-forced token success of the explained target",
                "class_probability": "probability of the explained class"}.get(kind, kind)
        out.append(f"### DELETION — suite `{suite}`, corpus `{corpus}` (digest `{members[0].corpus_digest[:12]}`), "
                   f"model `{model}`\n")
        if what:
            out.append(f"Score: {what}. Gap = mean over r of score(random) − score(top); higher is better.\n")
        out.append("| rank | method | fill | gap | 95% CI | orderings held | top lowest | s / explanation | clean |"
                   " targets | utterances | skipped | errors |")
        out.append("|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in members:
            out.append(f"| {r.rank} | {r.method} | {r.fill} | {_fmt(r.score)} | [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] "
                       f"| {r.cases_held}/{r.cases_total} | {r.top_lowest}/{len(r.fractions)} | "
                       f"{_fmt(r.seconds_per_explanation, '.2f')} | {_fmt(r.clean, '.2f')} | {r.n} | "
                       f"{r.n_utterances} | {r.skipped} | {r.errors} |")
        fractions = sorted({f for r in members for f in r.fractions})
        if fractions:
            out.append("")
            head = " | ".join(f"{o} {_fkey(f)}" for o in ORDERS for f in fractions)
            out.append(f"| method | fill | {head} |")
            out.append("|---|---|" + "---:|" * (len(ORDERS) * len(fractions)))
            for r in members:
                cells = " | ".join(_fmt(r.table.get(o, {}).get(_fkey(f))) for o in ORDERS for f in fractions)
                out.append(f"| {r.method} | {r.fill} | {cells} |")
        reasons = sorted({x for r in members for x in r.skip_reasons})
        if reasons:
            out.append("\nSkipped: " + "; ".join(reasons) + ".")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


CSV_FIELDS = ["board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "fill", "rank", "score",
              "ci_low", "ci_high", "cases_held", "cases_total", "top_lowest", "clean", "score_kind",
              "seconds_per_explanation", "n", "n_utterances", "skipped", "errors"]


def to_csv(rows: list[DeletionRow]) -> str:
    fractions = sorted({f for r in rows for f in r.fractions})
    extra = [f"{o}_{_fkey(f)}" for o in ORDERS for f in fractions]
    return rows_to_csv(rows, CSV_FIELDS, extra, lambda r: {
        f"{o}_{_fkey(f)}": r.table.get(o, {}).get(_fkey(f)) for o in ORDERS for f in fractions})


def to_json(rows: list[DeletionRow]) -> str:
    return rows_to_json(rows)
