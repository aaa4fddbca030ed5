"""The `isa` board: inter-seed agreement per family, method and aggregation.

Recomputed from the stored per-input overlaps of every seed pair (see
ssbm_bench.harness.isa_cell). Per (suite, family, method, aggregation):

* ``score``: ISA, the mean over seed pairs of the mean top-p overlap over
  inputs (eq. 1 of the ISA paper, averaged over the family's pairs);
* ``ci_low`` / ``ci_high``: a 95% percentile bootstrap over inputs (the
  same resampled inputs for every pair);
* ``median`` and the per-pair ``scores`` (the paper's box plots), and the
  shuffled ``baseline`` median (its dashed line); ``above_baseline`` is the
  fraction of pairs above the baseline's largest pair.

Read ISA next to the family's agreement on predictions (Fleiss' kappa,
stored with the row): seeds that disagree on what they predict are not
expected to agree on why. ISA measures reliability, not faithfulness: a
method that ignores the model (energy, a seeded random map) agrees with
itself perfectly across seeds; the board flags such methods rather than
ranking them first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from .board_rows import rows_to_csv, rows_to_json
from .harness.store import CellRow

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95
#: methods whose maps do not depend on the model: perfect ISA by construction
MODEL_INDEPENDENT = ("energy", "random")


@dataclass
class IsaRow:
    board: str
    suite: str
    suite_digest: str
    corpus: str
    corpus_digest: str
    model: str  # "family:<task>"
    method: str
    fill: str
    aggregation: str
    score: float
    ci_low: float
    ci_high: float
    median: float
    baseline: float
    scores: list
    pairs: list
    n: int  # inputs
    n_pairs: int
    kappa: float | None
    error_kappa: float | None
    accuracy: list
    task_kind: str
    model_independent: bool
    #: the input type the attributions were compared in (the ISA paper's condition)
    input_type: str
    seconds: float
    skipped: int
    errors: int
    skip_reasons: list = field(default_factory=list)
    rank: int = 0
    versions: dict = field(default_factory=dict)

    def to_dict(self, with_curve: bool = False) -> dict:
        return asdict(self)


def bootstrap_isa(overlaps: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of mean(overlaps) over resampled inputs; `overlaps` is (pairs, inputs)."""
    n = overlaps.shape[1]
    if n < 2:
        v = float(overlaps.mean())
        return v, v
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(samples, n))
    stats = overlaps[:, idx].mean(axis=(0, 2))
    alpha = (1 - CONFIDENCE) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def isa_rows(cells: list[CellRow]) -> list[IsaRow]:
    rows: list[IsaRow] = []
    groups: dict[tuple, list[CellRow]] = defaultdict(list)
    for c in cells:
        groups[(c.suite, c.corpus, c.model, c.method)].append(c)
    for (suite, corpus, model, method), members in sorted(groups.items()):
        ok = [c for c in members if c.status == "ok" and c.raw]
        bad = [c for c in members if c.status != "ok"]
        reasons = sorted({(c.reason or "").splitlines()[0] for c in bad if c.reason})
        skipped = sum(c.status == "skipped" for c in members)
        errors = sum(c.status == "error" for c in members)
        first = (ok or members)[0]
        params = first.params or {}
        ag = params.get("agreement") or {}
        base_kwargs = dict(board="isa", suite=suite, suite_digest=first.suite_digest, corpus=corpus,
                           corpus_digest=first.corpus_digest, model=model, method=method, fill="-",
                           kappa=ag.get("kappa"), error_kappa=ag.get("error_kappa"),
                           accuracy=list(ag.get("accuracy", [])), task_kind=str(params.get("task_kind") or ""),
                           model_independent=method.split("[")[0] in MODEL_INDEPENDENT,
                           input_type=str(((ok[-1].raw if ok else None) or {}).get("input_type", "stft")),
                           skipped=skipped,
                           errors=errors, skip_reasons=reasons, versions=first.versions or {})
        if not ok:
            rows.append(IsaRow(aggregation="-", score=float("nan"), ci_low=float("nan"), ci_high=float("nan"),
                               median=float("nan"), baseline=float("nan"), scores=[], pairs=[], n=0, n_pairs=0,
                               seconds=0.0, **base_kwargs))
            continue
        cell = ok[-1]  # one cell per (family, method); the latest if a rerun added another
        for agg, entry in cell.raw["aggregations"].items():
            overlaps = np.array([p["overlaps"] for p in entry["pairs"]], dtype=np.float64)
            baseline = np.array([p["baseline"] for p in entry["pairs"]], dtype=np.float64)
            per_pair = overlaps.mean(axis=1)
            lo, hi = bootstrap_isa(overlaps)
            rows.append(IsaRow(aggregation=agg, score=float(per_pair.mean()), ci_low=lo, ci_high=hi,
                               median=float(np.median(per_pair)), baseline=float(np.median(baseline.mean(axis=1))),
                               scores=[float(x) for x in per_pair], pairs=[p["pair"] for p in entry["pairs"]],
                               n=int(overlaps.shape[1]), n_pairs=int(overlaps.shape[0]), seconds=float(cell.seconds),
                               **base_kwargs))
    by_table: dict[tuple, list[IsaRow]] = defaultdict(list)
    for r in rows:
        by_table[(r.suite, r.corpus, r.model, r.aggregation)].append(r)
    for table in by_table.values():
        # model-independent methods agree by construction: ranked after every method that uses the model
        table.sort(key=lambda r: (r.model_independent, -(r.score if np.isfinite(r.score) else -np.inf), r.method))
        for i, r in enumerate(table, 1):
            r.rank = i
    rows.sort(key=lambda r: (r.suite, r.model, r.aggregation, r.rank))
    return rows


def _fmt(x, spec: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return format(x, spec)


def to_markdown(rows: list[IsaRow]) -> str:
    out = []
    tables: dict[tuple, list[IsaRow]] = defaultdict(list)
    for r in rows:
        tables[(r.suite, r.corpus, r.model)].append(r)
    for (suite, corpus, model), members in tables.items():
        m0 = members[0]
        acc = ", ".join(_fmt(a, ".2f") for a in m0.accuracy)
        out.append(f"### ISA — suite `{suite}`, {model} ({m0.task_kind}), corpus `{corpus}` "
                   f"(digest `{m0.corpus_digest[:12]}`)\n")
        out.append(f"Seeds' test accuracy {acc}; Fleiss' kappa {_fmt(m0.kappa)} overall, "
                   f"{_fmt(m0.error_kappa)} where any seed erred.\n")
        out.append("| aggregation | rank | method | input | ISA | 95% CI | median | shuffled baseline | pairs | "
                   "inputs | skipped | errors |")
        out.append("|---|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for r in members:
            name = f"{r.method} (model-independent)" if r.model_independent else r.method
            out.append(f"| {r.aggregation} | {r.rank} | {name} | {r.input_type} | {_fmt(r.score)} | [{_fmt(r.ci_low)}, "
                       f"{_fmt(r.ci_high)}] | {_fmt(r.median)} | {_fmt(r.baseline)} | {r.n_pairs} | {r.n} | "
                       f"{r.skipped} | {r.errors} |")
        reasons = sorted({s for r in members for s in r.skip_reasons})
        if reasons:
            out.append("\n" + "; ".join(reasons))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


CSV_FIELDS = ["board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "aggregation", "rank",
              "score", "ci_low", "ci_high", "median", "baseline", "n", "n_pairs", "kappa", "error_kappa",
              "task_kind", "model_independent", "input_type", "skipped", "errors"]


def to_csv(rows: list[IsaRow]) -> str:
    return rows_to_csv(rows, CSV_FIELDS)


def to_json(rows: list[IsaRow]) -> str:
    return rows_to_json(rows)
