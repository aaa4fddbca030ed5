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

One stability cell: a SoundLIME-style method explaining one ground-truth
excerpt k times (explainer seeds 0..k-1) with one fill and one N_s.

The SoundLIME paper ("Reliable Local Explanations for Machine Listening",
Mishra et al.) asks
two questions of an explainer whose answer is its top-3 components: does it
give the same top-3 when only its own seed changes (U_n over k = 5 runs),
and does the content put into occluded components (the fill) change it
(N_ce against the reference fill)? The ground-truth excerpts
(corpus ``vad-ground-truth``: 3 of 10 segments hold speech) add a third:
is the top-3 the speech segments? The model is a speech detector
(silero-vad) and the target its "speech" class.

The cell stores every run's component weights, so U_n, N_ce and the
ground-truth match are recomputed by the board
from stored numbers, for any reference fill.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssbm_bench.board import Board
from ssbm_bench.board_rows import (BoardRow, by_table, failure_reasons, fmt, outcome_counts, pct, rank_rows,
                                   reasons_note, shown_label)
from ssbm_bench.errors import SuiteError
from ssbm_bench.figures import colour, figure_per_group, new_figure
from ssbm_bench.harness.suite import PluginRef, check_keys, expect, plugin_entry
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.metrics.stability import ground_truth_match, shared_with_reference, unique_components
from ssbm_bench.records import BoardPlugin
from ssbm_bench.statistics import bootstrap_ci
from ssbm_bench.submission.checks import SubmissionError

from .stability_cell import plan_stability, rebuild_stability_job, run_stability_cell

_SECTION_KEYS = {"method", "model", "corpus", "fills", "reference_fill", "n_samples", "runs", "excerpts", "target",
                 "min_probability"}


@dataclass(frozen=True)
class StabilitySettings:
    """The stability board: a component method re-run with k explainer seeds, per fill and N_s."""

    method: PluginRef = PluginRef("soundlime-temporal")
    model: PluginRef = PluginRef("silero-vad")
    corpus: PluginRef = PluginRef("vad-ground-truth")
    fills: tuple[PluginRef, ...] = (PluginRef("zero"), PluginRef("min_inp"), PluginRef("mean_inp"),
                                    PluginRef("gauss_norm"))
    reference_fill: str = "zero"
    n_samples: tuple[int, ...] = (100, 500)
    runs: int = 5
    excerpts: int = 20
    target: str = "speech"
    #: only excerpts the model detects (the paper keeps true positives)
    min_probability: float = 0.3


def parse_stability_settings(st: dict | None, listed: bool, where: str) -> StabilitySettings | None:
    if st is None:
        return StabilitySettings() if listed else None
    check_keys(st, _SECTION_KEYS, "[stability]", where)
    d = StabilitySettings()
    fills = tuple(plugin_entry(f, f"stability.fills[{i}]", where) for i, f in enumerate(st.get("fills", [])) ) or d.fills
    labels = [f.label for f in fills]
    if len(set(labels)) != len(labels):
        raise SuiteError(f"{where}: stability.fills lists a fill twice: {labels}")
    ref = str(st.get("reference_fill", d.reference_fill))
    if ref not in {f.label for f in fills}:
        raise SuiteError(f"{where}: stability.reference_fill {ref!r} is not one of the fills "
                         f"{[f.label for f in fills]}")
    n_samples = st.get("n_samples", list(d.n_samples))
    if (not isinstance(n_samples, list) or not n_samples
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in n_samples)):
        raise SuiteError(f"{where}: stability.n_samples must be a non-empty list of integers >= 2, got {n_samples!r}")
    runs = st.get("runs", d.runs)
    if expect(runs, int, "stability.runs", where) < 2:
        raise SuiteError(f"{where}: stability.runs must be at least 2 (U_n compares runs), got {runs}")
    excerpts = st.get("excerpts", d.excerpts)
    if expect(excerpts, int, "stability.excerpts", where) < 1:
        raise SuiteError(f"{where}: stability.excerpts must be at least 1, got {excerpts}")
    prob = float(expect(st.get("min_probability", d.min_probability), (int, float), "stability.min_probability",
                         where))
    return StabilitySettings(
        method=plugin_entry(st.get("method", d.method.to_dict()), "stability.method", where),
        model=plugin_entry(st.get("model", d.model.to_dict()), "stability.model", where),
        corpus=plugin_entry(st.get("corpus", d.corpus.to_dict()), "stability.corpus", where),
        fills=fills, reference_fill=ref, n_samples=tuple(n_samples), runs=int(runs), excerpts=int(excerpts),
        target=str(st.get("target", d.target)), min_probability=prob)


def stability_rows(cells: list) -> list[BoardRow]:
    groups: dict[tuple, list] = defaultdict(list)
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
        lo, hi = bootstrap_ci(u_n)
        n_ce = [shared_with_reference(first_run[(suite, corpus, model, method, ref, n_s, c.utterance)],
                                      c.raw["weights"][0])
                for c in ok if (suite, corpus, model, method, ref, n_s, c.utterance) in first_run]
        matches = [ground_truth_match(w, [int(s) for s in c.raw["speech_segments"].split(",")])
                   for c in ok if c.raw.get("speech_segments") for w in c.raw["weights"]]
        runs = len(ok[0].raw["weights"]) if ok else 0
        rows.append(BoardRow(
            "stability", suite, first.suite_digest, corpus, first.corpus_digest, model, method, fill,
            score=float(u_n.mean()) if u_n.size else float("nan"), ci_low=lo, ci_high=hi, n=len(ok),
            **outcome_counts(members), versions=first.versions or {}, details=dict(
                n_samples=n_s, runs=runs, n_ce=float(np.mean(n_ce)) if n_ce else None, reference_fill=ref,
                full_match=float(np.mean(np.array(matches) == 3)) if matches else None,
                at_least_two=float(np.mean(np.array(matches) >= 2)) if matches else None,
                seconds_per_run=float(np.mean([c.seconds / max(1, runs) for c in ok])) if ok else 0.0,
                skip_reasons=failure_reasons(members))))
    return rank_rows(rows, lambda r: (r.suite, r.model, r.method, r.n_samples), higher_is_better=False)


def stability_markdown(rows: list) -> str:
    out = []
    for (suite, corpus, model, method), members in by_table(rows, lambda r: (r.suite, r.corpus, r.model,
                                                                               r.method)).items():
        m0 = members[0]
        out.append(f"### Stability — suite `{suite}`, model `{shown_label(model)}`, method `{method}`, corpus `{shown_label(corpus)}` "
                   f"(digest `{m0.corpus_digest[:12]}`)\n")
        out.append(f"U_n over {m0.runs} explainer seeds (3 = perfectly stable); N_ce vs `{m0.reference_fill}`; "
                   "ground truth: top-3 supporting components vs the 3 speech segments.\n")
        out.append("| N_s | rank | fill | U_n | 95% CI | N_ce | full match | ≥ 2 of 3 | excerpts | s/run | errors |")
        out.append("|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for r in members:
            out.append(f"| {r.n_samples} | {r.rank} | {r.fill} | {fmt(r.score)} | [{fmt(r.ci_low)}, "
                       f"{fmt(r.ci_high)}] | {fmt(r.n_ce)} | {fmt(r.full_match, '.0%')} | "
                       f"{fmt(r.at_least_two, '.0%')} | {r.n} | {fmt(r.seconds_per_run)} | {r.errors} |")
        out += reasons_note(members)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


STABILITY_CSV_FIELDS = ["board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "fill", "n_samples",
              "rank", "score", "ci_low", "ci_high", "runs", "n_ce", "reference_fill", "full_match", "at_least_two",
              "n", "skipped", "errors", "seconds_per_run"]


def draw_stability_curves(rows: list, path: Path) -> Path:
    """The SoundLIME paper's Figs. 3/5 for one (suite, model, method): mean U_n
    (with its 95% bootstrap interval) against N_s, one line per fill, and the
    floor U_n = 3 (the same top-3 in every run) dashed; beside it the
    ground-truth full match against N_s where the corpus has speech segments."""
    fills = sorted({r.fill for r in rows})
    with_truth = any(r.full_match is not None for r in rows)
    fig = new_figure(8.0 if with_truth else 4.6, 3.4)
    axes = fig.subplots(1, 2 if with_truth else 1, squeeze=False)[0]
    for i, fill in enumerate(fills):
        pts = sorted((r for r in rows if r.fill == fill), key=lambda r: r.n_samples)
        xs = np.array([r.n_samples for r in pts], dtype=float)
        ys = np.array([r.score for r in pts], dtype=float)
        lo = np.array([r.ci_low for r in pts], dtype=float)
        hi = np.array([r.ci_high for r in pts], dtype=float)
        axes[0].plot(xs, ys, marker="o", color=colour(i), label=fill)
        axes[0].fill_between(xs, lo, hi, color=colour(i), alpha=0.15)
        if with_truth:
            fm = [(r.n_samples, 100.0 * r.full_match) for r in pts if r.full_match is not None]
            if fm:
                axes[1].plot(*zip(*fm), marker="o", color=colour(i), label=fill)
    ticks = sorted({r.n_samples for r in rows})
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks], fontsize=7)
        ax.minorticks_off()
    axes[0].axhline(3.0, color="grey", linestyle="dashed", linewidth=1)
    axes[0].set_xlabel("N_s (samples per explanation)")
    axes[0].set_ylabel(f"U_n over {rows[0].runs} runs (3 = stable)")
    axes[0].legend(fontsize=7, title="fill", title_fontsize=7)
    axes[0].grid(alpha=0.3)
    if with_truth:
        axes[1].set_ylim(0, 102)
        axes[1].set_xlabel("N_s (samples per explanation)")
        axes[1].set_ylabel("top-3 = the 3 speech segments (%)")
        axes[1].grid(alpha=0.3)
    r0 = rows[0]
    fig.suptitle(f"Stability — {r0.method} on {r0.model}, suite {r0.suite}", fontsize=9)
    fig.savefig(path)
    return path


def stability_figures(cells: list, out_dir: str | Path) -> list[Path]:
    """One U_n-against-N_s figure per (suite, model, method) of `cells` (a store's or a submission's)."""
    stability = [c for c in cells if c.board == "stability"]
    return figure_per_group(stability_rows(stability) if stability else [],
                            lambda r: (r.suite, r.model, r.method) if np.isfinite(r.score) else None,
                            draw_stability_curves, out_dir, "stability")


def check_stability_cell(i: int, cell: dict, st, checks) -> None:
    """stability: the [stability] model, method, fills, N_s, runs and reference fill, its corpus's
    excerpts (at most `excerpts` per fill and N_s), and raw outputs of that shape."""
    where, name = f"cells[{i}]", checks.name
    label = checks.corpus(where, cell, st.corpus.label)
    for kind, want in (("model", st.model.label), ("method", st.method.label)):
        if cell[kind] != want:
            raise SubmissionError(f"{where}.{kind}: {cell[kind]!r} is not suite {name!r}'s [stability] "
                                  f"{kind} {want!r}")
    fills = [f.label for f in st.fills]
    if cell["fill"] not in fills:
        raise SubmissionError(f"{where}.fill: {cell['fill']!r} is not one of suite {name!r}'s [stability] "
                              f"fills ({', '.join(fills)})")
    if cell["target"].split(":", 2)[2] != st.target:
        raise SubmissionError(f"{where}.target: {cell['target']!r} is not the [stability] target class "
                              f"{st.target!r}")
    checks.utterance(f"{where}.utterance", label, cell["utterance"])
    params = cell["params"]
    n_s = params["n_samples"]
    if n_s not in st.n_samples:
        raise SubmissionError(f"{where}.params.n_samples: {n_s} is not one of suite {name!r}'s [stability] "
                              f"n_samples {list(st.n_samples)}")
    if params["runs"] != st.runs:
        raise SubmissionError(f"{where}.params.runs: {params['runs']}, but the suite's [stability] runs "
                              f"= {st.runs}")
    if params["reference_fill"] != st.reference_fill:
        raise SubmissionError(f"{where}.params.reference_fill: {params['reference_fill']!r} is not the "
                              f"suite's [stability] reference_fill {st.reference_fill!r}")
    checks.once(("stability", cell["fill"], n_s, cell["utterance"]), i,
               f"fill {cell['fill']!r}, N_s {n_s}, excerpt {cell['utterance']!r}")
    excerpts = checks.state.setdefault("stability", {})
    group = (cell["fill"], n_s)
    excerpts[group] = excerpts.get(group, 0) + 1
    if excerpts[group] > st.excerpts:
        raise SubmissionError(f"{where}: more than the suite's [stability] excerpts = {st.excerpts} cells "
                              f"for fill {cell['fill']!r}, N_s {n_s}")
    if cell["status"] != "ok":
        return
    raw = cell["raw"]
    if raw["n_samples"] != n_s:
        raise SubmissionError(f"{where}.raw.n_samples: {raw['n_samples']}, but params.n_samples is {n_s}")
    weights = raw["weights"]
    if len(weights) != st.runs:
        raise SubmissionError(f"{where}.raw.weights: {len(weights)} runs, but the suite's [stability] runs "
                              f"= {st.runs}")
    for r, w in enumerate(weights):
        if len(w) != len(weights[0]):
            raise SubmissionError(f"{where}.raw.weights[{r}]: {len(w)} components, but run 0 has "
                                  f"{len(weights[0])}")
    if raw["speech_segments"] is not None:
        segs = [int(x) for x in raw["speech_segments"].split(",")]
        if len(set(segs)) != len(segs) or max(segs) >= len(weights[0]):
            raise SubmissionError(f"{where}.raw.speech_segments: {raw['speech_segments']!r} is not a set of "
                                  f"component indices below {len(weights[0])}")




class StabilityBoard(Board):
    name = "stability"
    title = "Stability"
    description = "does an explainer give the same top components when re-run, and when the fill changes?"
    order = 50
    higher_is_better = False
    section = "stability"
    sub_key = "n_samples"
    variant_name = "N_s"
    rerunnable = True
    score_note = ("score: U_n, distinct components among the top-3 over the runs (lower is better; 3 = perfectly "
                  "stable); interval: bootstrap over excerpts; cells: excerpts")
    csv_fields = tuple(STABILITY_CSV_FIELDS)
    cell_schema = json.loads((Path(__file__).parent / "stability.schema.json").read_text())

    def parse_settings(self, section, listed, where):
        return parse_stability_settings(section, listed, where)

    def plugin_refs(self, st):
        if st is None:
            return []
        return [("model", st.model), ("method", st.method), ("corpus", st.corpus)] + [("fill", r) for r in st.fills]

    def corpora(self, st):
        return [st.corpus] if st is not None else []

    def plan(self, settings, ctx):
        return plan_stability(settings, ctx)

    def compute(self, job, worker):
        return run_stability_cell(job, worker)

    def variant_of(self, params):
        return params.get("n_samples")

    def check_cell(self, i, cell, settings, checks):
        check_stability_cell(i, cell, settings, checks)

    def check_complete(self, cells, settings, checks):
        """Every fill and N_s of the [stability] section, each over the same excerpts."""
        groups: dict[tuple, set] = {}
        for c in cells:
            groups.setdefault((c["fill"], c["params"]["n_samples"]), set()).add(c["utterance"])
        excerpts = set().union(*groups.values()) if groups else set()
        for fill in settings.fills:
            for n_s in settings.n_samples:
                have = groups.get((fill.label, n_s), set())
                if have != excerpts:
                    raise SubmissionError(f"cells: the stability board lacks {len(excerpts - have)} of the "
                                          f"{len(excerpts)} excerpts for fill {fill.label!r}, N_s {n_s}; a "
                                          f"submission carries every cell of its run")

    def rebuild_job(self, cell, settings, ctx):
        return rebuild_stability_job(cell, settings, ctx.worker)

    def rows(self, cells):
        return stability_rows(cells)

    def to_markdown(self, rows):
        return stability_markdown(rows)

    def details(self, r):
        return (f"{r.get('runs', '?')} runs; N_ce vs {r.get('reference_fill', '?')} {fmt(r.get('n_ce'))}; "
                f"ground truth: full match {pct(r.get('full_match'))}, at least 2 of 3 "
                f"{pct(r.get('at_least_two'))}")

    def table_title(self, row):
        return (f"Stability — suite `{row['suite']}`, corpus `{shown_label(row['corpus'])}` (digest "
                f"`{str(row.get('corpus_digest', ''))[:12]}`), model `{shown_label(row['model'])}`, N_s = {row.get('n_samples')}")

    def figures(self, cells, out_dir, suite=None):
        return stability_figures([c for c in cells if c.board == "stability" and (suite is None or c.suite == suite)],
                                 out_dir)


@hookimpl
def register_boards(register):
    register(BoardPlugin.of(StabilityBoard, StabilityBoard.description))
