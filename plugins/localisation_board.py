"""The `localisation` board: does a word's map fall on the word?

A planted-ground-truth measure that needs no extra decoding. For a map that
explains one word of an utterance, the word's aligned time span is where its
evidence must be (the corpus gives word times); the rest of the utterance is
other words and silence. Recent audio work ranks explainers this way
(localisation against time annotations), as vision work does against object
boxes ("relevance mass accuracy" and "relevance rank accuracy").

Per cell (one model, method, fill, utterance, word, seed), on the method's
importance (``importance`` below: large = important):

* ``mass_in``: the share of the map's positive attribution mass that lies in
  the word's frames (every frequency);
* ``topk_in``: of the k most important points, the share inside the word's
  frames, with k the number of points the span holds (ties broken in a
  seeded random order);
* ``span_share``: the share of the utterance's frames the word spans, the
  value both take, in expectation, for a map that carries no information
  about the word.

The board's score is the mean over words of ``mass_in - span_share`` (the
excess mass on the word over chance), with a percentile bootstrap over
utterances; ``topk_in`` and the mean shares are shown beside it. A map with
no positive mass says nothing about where the word is: its ``mass_in`` is
null and it is counted, not scored. A target without word times (a
classifier's class) is skipped with that reason.

This file is the whole board: a :class:`~ssbm_bench.grid_board.GridBoard`
(planning from the shared grid, re-running a cell for ``leaderboard add
--verify``, checking a submitted one against the suite and for
completeness) with its own computation, raw-outcome check and schema, rows,
the paired test's units, markdown and a figure. It is registered through the entry-point group ``ssbm_bench`` exactly
as an outside package's board would be, and nothing in ``ssbm_bench/`` names it.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from ssbm_bench.board import CellJob, CellResult
from ssbm_bench.board_rows import (BoardRow, by_table, failure_reasons, fmt, group_cells, nan_row, outcome_counts,
                                   rank_rows, reasons_note, unit_means, shown_label)
from ssbm_bench.figures import colour, new_figure, slug
from ssbm_bench.grid_board import GridBoard
from ssbm_bench.harness.maps import explain_spec
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.metrics.deletion import rank_order
from ssbm_bench.mixtures import map_summary, stable_seed
from ssbm_bench.records import BoardPlugin
from ssbm_bench.statistics import cluster_bootstrap_ci
from ssbm_bench.submission.checks import SubmissionError
from ssbm_bench.types import SaliencyMap


def importance(smap: SaliencyMap) -> np.ndarray:
    """The map as importance, large = important.

    Score and magnitude maps already read that way. A p-value map that
    carries its statistic in ``values`` (bubble noise: correlations, with
    ``pvalues`` beside) reads that way too; a bare p-value map (small =
    important) is turned round as 1 - p."""
    if smap.kind == "pvalue" and smap.pvalues is None:
        return 1.0 - smap.values
    return smap.values


def localise(values: np.ndarray, span: tuple[int, int], seed: int) -> dict:
    """mass_in, topk_in and span_share of an importance map (freq x frames) for the frames span[0]:span[1]."""
    v = np.asarray(values, dtype=np.float64)
    n_frames = v.shape[1]
    a, b = span
    if not 0 <= a < b <= n_frames:
        raise ValueError(f"localisation: span {span} outside the map's {n_frames} frames")
    inside = np.zeros(v.shape, dtype=bool)
    inside[:, a:b] = True
    positive = np.clip(v, 0.0, None)
    total = float(positive.sum())
    mass_in = float(positive[inside].sum() / total) if total > 0 else None
    k = int(inside.sum())
    top = rank_order(v, seed)[:k]
    topk_in = float(inside.ravel()[top].mean())
    return {"mass_in": mass_in, "topk_in": topk_in, "span_share": (b - a) / n_frames, "span": [a, b],
            "points_in_span": k}


def compute(job: CellJob, worker) -> CellResult:
    t0 = time.perf_counter()
    spec = job.spec  # the explanation (a GridSpec): nothing else determines a localisation cell
    if spec.target.kind != "word":
        return CellResult(job, "skipped", f"localisation needs a word target with aligned times; "
                                          f"{spec.target.key} is a {spec.target.kind}")
    done = explain_spec(worker, spec)
    if done.status != "ok":
        return CellResult(job, done.status, done.reason, seconds=time.perf_counter() - t0)
    utt = worker.utterance(spec.corpus, spec.utterance)
    if spec.target.index >= len(utt.words):
        return CellResult(job, "skipped", f"utterance {utt.id!r} has no aligned time for word {spec.target.index}")
    word = utt.words[spec.target.index]
    smap = done.smap
    span = spec.cfg.frame_span(word.start, word.end, smap.shape[1])
    found = localise(importance(smap), span, stable_seed("localisation", spec.utterance, spec.seed))
    raw = {"map": map_summary(smap),
           **found, "word": [float(word.start), float(word.end)], "explain_seconds": done.seconds}
    return CellResult(job, "ok", raw=raw, seconds=time.perf_counter() - t0)


def _excess(cell) -> float:
    return cell.raw["mass_in"] - cell.raw["span_share"] if cell.raw["mass_in"] is not None else float("nan")


def localisation_rows(cells: list) -> list[BoardRow]:
    rows = []
    for ident, members in group_cells(cells).items():
        ok = [c for c in members if c.status == "ok" and c.raw]
        counts, reasons = outcome_counts(members), failure_reasons(members)
        scored = [c for c in ok if np.isfinite(_excess(c))]
        if not scored:
            nan = float("nan")
            rows.append(nan_row("localisation", ident, members[0].versions, n=len(ok), n_utterances=0, **counts,
                                mass_in=nan, topk_in=nan, span_share=nan, no_positive_mass=len(ok),
                                skip_reasons=reasons))
            continue
        excess = np.array([_excess(c) for c in scored])
        lo, hi = cluster_bootstrap_ci(excess, [c.utterance for c in scored])
        rows.append(BoardRow("localisation", *ident, score=float(excess.mean()), ci_low=lo, ci_high=hi,
                             n=len(scored), n_utterances=len({c.utterance for c in scored}), **counts,
                             versions=members[0].versions, details={
                                 "mass_in": float(np.mean([c.raw["mass_in"] for c in scored])),
                                 "topk_in": float(np.mean([c.raw["topk_in"] for c in ok])),
                                 "span_share": float(np.mean([c.raw["span_share"] for c in scored])),
                                 "no_positive_mass": len(ok) - len(scored), "skip_reasons": reasons}))
    return rank_rows(rows, lambda r: (r.suite, r.corpus, r.model))


def _draw(rows_cells: dict, title: str, path: Path) -> Path:
    """Per method, each word's mass on the word against the span's share; the diagonal is chance."""
    fig = new_figure(5.2, 4.4)
    ax = fig.subplots()
    for i, (method, cells) in enumerate(sorted(rows_cells.items())):
        pts = [(c.raw["span_share"], c.raw["mass_in"]) for c in cells if c.raw["mass_in"] is not None]
        if pts:
            ax.scatter(*zip(*pts), s=14, color=colour(i), label=method, alpha=0.8)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="dashed", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("share of the utterance's frames the word spans (chance)")
    ax.set_ylabel("share of positive attribution on the word")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.savefig(path)
    return path


class LocalisationBoard(GridBoard):
    name = "localisation"
    title = "Localisation"
    description = "share of a word map's positive attribution inside the word's aligned span, over chance"
    order = 30
    score_note = ("score: mass on the word minus the span's share of the utterance (relevance mass over chance), "
                  "mean over words; interval: bootstrap over utterances")
    csv_fields = ("board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "fill", "rank",
                  "score", "ci_low", "ci_high", "mass_in", "topk_in", "span_share", "no_positive_mass", "n",
                  "n_utterances", "skipped", "errors")
    cell_schema = {"allOf": [{"if": {"properties": {"status": {"const": "ok"}}}, "then": {"properties": {"raw": {
        "type": "object", "required": ["map", "mass_in", "topk_in", "span_share", "span", "points_in_span", "word"],
        "additionalProperties": False, "properties": {
            "map": {"$ref": "#/$defs/map"},
            "mass_in": {"anyOf": [{"$ref": "#/$defs/unit"}, {"type": "null"}]},
            "topk_in": {"$ref": "#/$defs/unit"}, "span_share": {"$ref": "#/$defs/unit"},
            "span": {"type": "array", "minItems": 2, "maxItems": 2,
                     "items": {"type": "integer", "minimum": 0, "maximum": 10000000}},
            "points_in_span": {"type": "integer", "minimum": 1, "maximum": 100000000},
            "word": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"$ref": "#/$defs/finite"}},
            "explain_seconds": {"$ref": "#/$defs/seconds"}}}}}}]}

    def compute(self, job, worker):
        return compute(job, worker)

    def check_raw(self, i, cell, settings):
        raw, where = cell["raw"], f"cells[{i}].raw"
        a, b = raw["span"]
        frames = raw["map"]["shape"][-1] if raw["map"]["shape"] else 0
        if not 0 <= a < b <= frames:
            raise SubmissionError(f"{where}.span: {raw['span']} is not a span of the map's {frames} frames")
        if not math.isclose(raw["span_share"], (b - a) / frames, rel_tol=1e-9):
            raise SubmissionError(f"{where}.span_share: {raw['span_share']} is not the span's share "
                                  f"{(b - a) / frames} of the map's frames")

    def rows(self, cells):
        return localisation_rows(cells)

    def per_unit(self, cells, row):
        return unit_means((c.utterance, _excess(c)) for c in cells
                          if c.status == "ok" and c.raw and np.isfinite(_excess(c)))

    def to_markdown(self, rows):
        out = []
        for (suite, corpus, model), members in by_table(rows, lambda r: (r.suite, r.corpus, r.model)).items():
            out.append(f"### Localisation — suite `{suite}`, corpus `{shown_label(corpus)}` (digest "
                       f"`{members[0].corpus_digest[:12]}`), model `{shown_label(model)}`\n")
            out.append("Score: share of the map's positive attribution on the word minus the word's share of the "
                       "utterance (0 = chance); higher is better.\n")
            out.append("| rank | method | fill | excess mass | 95% CI | mass on word | top-k on word | span share | "
                       "words | utterances | no positive mass | skipped | errors |")
            out.append("|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in members:
                out.append(f"| {r.rank} | {r.method} | {r.fill} | {fmt(r.score, '.3f')} | [{fmt(r.ci_low, '.3f')}, "
                           f"{fmt(r.ci_high, '.3f')}] | {fmt(r.mass_in, '.3f')} | {fmt(r.topk_in, '.3f')} | "
                           f"{fmt(r.span_share, '.3f')} | {r.n} | {r.n_utterances} | {r.no_positive_mass} | "
                           f"{r.skipped} | {r.errors} |")
            out += reasons_note(members, "Skipped or failed: ", ".")
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def details(self, row):
        return (f"mass on word {fmt(row.get('mass_in'), '.3f')}, top-k on word {fmt(row.get('topk_in'), '.3f')}, "
                f"span share {fmt(row.get('span_share'), '.3f')}")

    def figures(self, cells, out_dir, suite=None):
        groups: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
        for c in cells:
            if c.board == self.name and c.status == "ok" and c.raw and (suite is None or c.suite == suite):
                groups[(c.suite, c.corpus, c.model, c.fill)][c.method].append(c)
        if groups:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        return [_draw(by_method, f"Localisation — {m} ({f}), suite {s}",
                      Path(out_dir) / f"{'--'.join(slug(x) for x in (s, corpus, m, f))}--localisation.png")
                for (s, corpus, m, f), by_method in sorted(groups.items())]


@hookimpl
def register_boards(register):
    register(BoardPlugin.of(LocalisationBoard, LocalisationBoard.description))
