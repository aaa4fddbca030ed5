"""The `stability` board: U_n, N_ce and the ground-truth match per fill and N_s.

From the stored component weights of every run (ssbm_bench.harness.
stability_cell), per (suite, model, method, fill, N_s):

* ``score`` = mean U_n over excerpts (distinct components in the union of
  the k runs' top-3; 3 is perfectly stable, lower is better, so rank 1 is
  the most stable fill), with a 95% bootstrap interval over excerpts;
* ``n_ce``: mean components shared between the top-3 with this fill and
  with the reference fill (seed 0 runs of the same excerpt and N_s), 0..3;
* ``full_match`` / ``at_least_two``: share of (excerpt, run) pairs whose
  top-3 *supporting* components (largest positive weights) are exactly the
  3 speech segments / include at least 2 of them (the paper: mean_inp 34% /
  83.68%, zero 23.9%, min_inp 7.16%, gauss_norm 18.44%).

Components are matched to segments by index, which holds when the method's
temporal components are the excerpt's segments (soundlime-temporal with
n_components = the corpus's segments, 10 by default).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from .board_rows import rows_to_csv, rows_to_json
from .harness.store import CellRow
from .metrics.stability import ground_truth_match, shared_with_reference, unique_components

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class StabilityRow:
    board: str
    suite: str
    suite_digest: str
    corpus: str
    corpus_digest: str
    model: str
    method: str
    fill: str
    n_samples: int
    score: float  # mean U_n (lower is more stable)
    ci_low: float
    ci_high: float
    runs: int
    n_ce: float | None
    reference_fill: str
    full_match: float | None
    at_least_two: float | None
    n: int
    skipped: int
    errors: int
    seconds_per_run: float
    skip_reasons: list = field(default_factory=list)
    rank: int = 0
    versions: dict = field(default_factory=dict)

    def to_dict(self, with_curve: bool = False) -> dict:
        return asdict(self)


def _bootstrap_mean(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    if values.size < 2:
        v = float(values.mean()) if values.size else float("nan")
        return v, v
    rng = np.random.default_rng(seed)
    stats = values[rng.integers(0, values.size, size=(BOOTSTRAP_SAMPLES, values.size))].mean(axis=1)
    alpha = (1 - CONFIDENCE) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def stability_rows(cells: list[CellRow]) -> list[StabilityRow]:
    groups: dict[tuple, list[CellRow]] = defaultdict(list)
    for c in cells:
        groups[(c.suite, c.corpus, c.model, c.method, c.fill, int((c.params or {}).get("n_samples", 0)))].append(c)
    # seed-0 weights per (suite, model, method, fill, n_s, excerpt), for N_ce against the reference fill
    first_run: dict[tuple, list[float]] = {}
    for (suite, corpus, model, method, fill, n_s), members in groups.items():
        for c in members:
            if c.status == "ok" and c.raw:
                first_run[(suite, corpus, model, method, fill, n_s, c.utterance)] = c.raw["weights"][0]
    rows = []
    for (suite, corpus, model, method, fill, n_s), members in sorted(groups.items()):
        ok = [c for c in members if c.status == "ok" and c.raw]
        first = (ok or members)[0]
        ref = str((first.params or {}).get("reference_fill", "zero"))
        u_n = np.array([unique_components(c.raw["weights"]) for c in ok], dtype=np.float64)
        lo, hi = _bootstrap_mean(u_n)
        n_ce = [shared_with_reference(first_run[(suite, corpus, model, method, ref, n_s, c.utterance)],
                                      c.raw["weights"][0])
                for c in ok if (suite, corpus, model, method, ref, n_s, c.utterance) in first_run]
        matches = [ground_truth_match(w, [int(s) for s in c.raw["speech_segments"].split(",")])
                   for c in ok if c.raw.get("speech_segments") for w in c.raw["weights"]]
        runs = len(ok[0].raw["weights"]) if ok else 0
        rows.append(StabilityRow(
            board="stability", suite=suite, suite_digest=first.suite_digest, corpus=corpus,
            corpus_digest=first.corpus_digest, model=model, method=method, fill=fill, n_samples=n_s,
            score=float(u_n.mean()) if u_n.size else float("nan"), ci_low=lo, ci_high=hi, runs=runs,
            n_ce=float(np.mean(n_ce)) if n_ce else None, reference_fill=ref,
            full_match=float(np.mean(np.array(matches) == 3)) if matches else None,
            at_least_two=float(np.mean(np.array(matches) >= 2)) if matches else None,
            n=len(ok), skipped=sum(c.status == "skipped" for c in members),
            errors=sum(c.status == "error" for c in members),
            seconds_per_run=float(np.mean([c.seconds / max(1, runs) for c in ok])) if ok else 0.0,
            skip_reasons=sorted({(c.reason or "").splitlines()[0] for c in members if c.status != "ok" and c.reason}),
            versions=first.versions or {}))
    tables: dict[tuple, list[StabilityRow]] = defaultdict(list)
    for r in rows:
        tables[(r.suite, r.model, r.method, r.n_samples)].append(r)
    for t in tables.values():
        t.sort(key=lambda r: (r.score if np.isfinite(r.score) else np.inf, r.fill))
        for i, r in enumerate(t, 1):
            r.rank = i
    rows.sort(key=lambda r: (r.suite, r.model, r.method, r.n_samples, r.rank))
    return rows


def _fmt(x, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return format(x, spec)


def to_markdown(rows: list[StabilityRow]) -> str:
    out = []
    tables: dict[tuple, list[StabilityRow]] = defaultdict(list)
    for r in rows:
        tables[(r.suite, r.corpus, r.model, r.method)].append(r)
    for (suite, corpus, model, method), members in tables.items():
        m0 = members[0]
        out.append(f"### Stability — suite `{suite}`, model `{model}`, method `{method}`, corpus `{corpus}` "
                   f"(digest `{m0.corpus_digest[:12]}`)\n")
        out.append(f"U_n over {m0.runs} explainer seeds (3 = perfectly stable); N_ce vs `{m0.reference_fill}`; "
                   "ground truth: top-3 supporting components vs the 3 speech segments.\n")
        out.append("| N_s | rank | fill | U_n | 95% CI | N_ce | full match | ≥ 2 of 3 | excerpts | s/run | errors |")
        out.append("|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for r in members:
            out.append(f"| {r.n_samples} | {r.rank} | {r.fill} | {_fmt(r.score)} | [{_fmt(r.ci_low)}, "
                       f"{_fmt(r.ci_high)}] | {_fmt(r.n_ce)} | {_fmt(r.full_match, '.0%')} | "
                       f"{_fmt(r.at_least_two, '.0%')} | {r.n} | {_fmt(r.seconds_per_run)} | {r.errors} |")
        reasons = sorted({s for r in members for s in r.skip_reasons})
        if reasons:
            out.append("\n" + "; ".join(reasons))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


CSV_FIELDS = ["board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "fill", "n_samples",
              "rank", "score", "ci_low", "ci_high", "runs", "n_ce", "reference_fill", "full_match", "at_least_two",
              "n", "skipped", "errors", "seconds_per_run"]


def to_csv(rows: list[StabilityRow]) -> str:
    return rows_to_csv(rows, CSV_FIELDS)


def to_json(rows: list[StabilityRow]) -> str:
    return rows_to_json(rows)
