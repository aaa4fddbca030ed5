"""The `isa` board: inter-seed agreement per family, method and aggregation.

Recomputed from the stored per-input overlaps of every seed pair (see
isa_cell). Per (suite, family, method, aggregation):

* ``score``: ISA, the mean over seed pairs of the mean top-p overlap over
  inputs (eq. 1 of the ISA paper, averaged over the family's pairs);
* ``ci_low`` / ``ci_high``: a 95% percentile bootstrap over inputs (the
  same resampled inputs for every pair);
* ``median`` and the per-pair ``scores`` (the paper's box plots), and the
  shuffled ``baseline`` median (its dashed line).

Read ISA next to the family's agreement on predictions (Fleiss' kappa,
stored with the row): seeds that disagree on what they predict are not
expected to agree on why. ISA measures reliability, not faithfulness: a
method that ignores the model (energy, a seeded random map) agrees with
itself perfectly across seeds; the board flags such methods rather than
ranking them first.

The ISA paper ("On the reliability of feature attribution methods for speech
classification", Shen et al.) measures inter-seed agreement: one classifier
trained with K seeds (a seed family) should, if an explainer is reliable,
get explanations that agree across seeds. A cell (``isa_cell``) explains
every member of a family with one method on the family's test inputs.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssbm_bench.audio import StftConfig
from ssbm_bench.board import Board, CellIdentity, NotRerunnable
from ssbm_bench.board_rows import (BoardRow, by_table, failure_reasons, fmt, nan_row, outcome_counts, rank_rows,
                                   reasons_note, shown_label)
from ssbm_bench.errors import SuiteError
from ssbm_bench.figures import figure_per_group, new_figure
from ssbm_bench.harness.suite import PluginRef, check_keys, expect, plugin_entry
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import BoardPlugin
from ssbm_bench.statistics import bootstrap_ci
from ssbm_bench.submission.checks import SubmissionError, short

from .isa_cell import IsaJob, run_isa_cell

#: methods whose maps do not depend on the model: perfect ISA by construction
MODEL_INDEPENDENT = ("energy", "random")
_SECTION_KEYS = {"families", "seeds", "inputs", "p", "epochs", "methods"}


@dataclass(frozen=True)
class IsaSettings:
    """The ISA board: each family (K seeds) explained by each method on its test inputs."""

    families: tuple[str, ...]
    methods: tuple[PluginRef, ...]
    seeds: int = 3
    inputs: int | None = None  # first N test inputs of each family (None: all)
    p: float = 0.2
    #: training epochs of each member (None: the family's default); part of the members' cache key
    epochs: int | None = None
    #: the model plugin that loads a member's directory
    model: str = "speechbrain-dir"


def parse_isa_settings(isa_doc: dict | None, listed: bool, where: str) -> IsaSettings | None:
    if isa_doc is None:
        if listed:
            raise SuiteError(f"{where}: board 'isa' needs an [isa] section with 'families' and [[isa.methods]]")
        return None
    check_keys(isa_doc, _SECTION_KEYS, "[isa]", where)
    families = isa_doc.get("families")
    if not isinstance(families, list) or not families or not all(isinstance(f, str) for f in families):
        raise SuiteError(f"{where}: isa.families must be a non-empty list of family names, got {families!r}")
    seeds = isa_doc.get("seeds", 3)
    if expect(seeds, int, "isa.seeds", where) < 2:
        raise SuiteError(f"{where}: isa.seeds must be at least 2 (ISA compares pairs of seeds), got {seeds}")
    inputs = isa_doc.get("inputs")
    if inputs is not None and expect(inputs, int, "isa.inputs", where) < 1:
        raise SuiteError(f"{where}: isa.inputs must be at least 1, got {inputs}")
    p = float(expect(isa_doc.get("p", 0.2), (int, float), "isa.p", where))
    if not 0 < p <= 1:
        raise SuiteError(f"{where}: isa.p must be in (0, 1], got {p}")
    methods = []
    items = expect(isa_doc.get("methods", []), list, "[[isa.methods]]", where)
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "name" not in item:
            raise SuiteError(f"{where}: isa.methods[{i}] must be a table with a 'name'")
        methods.append(plugin_entry(item, f"isa.methods[{i}]", where))
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise SuiteError(f"{where}: [[isa.methods]] lists a method twice: {labels}")
    if not methods:
        raise SuiteError(f"{where}: [isa] needs at least one [[isa.methods]] entry")
    epochs = isa_doc.get("epochs")
    if epochs is not None and expect(epochs, int, "isa.epochs", where) < 1:
        raise SuiteError(f"{where}: isa.epochs must be at least 1, got {epochs}")
    return IsaSettings(tuple(families), tuple(methods), int(seeds), inputs, p, epochs)


def bootstrap_isa(overlaps: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of mean(overlaps) over resampled inputs; `overlaps` is (pairs, inputs)."""
    return bootstrap_ci(overlaps, lambda x, axis: x.mean(axis=(0, axis)) if x.ndim > 2 else x.mean(), seed=seed)


def plan_isa(settings: IsaSettings, ctx) -> list:
    """Train or load each family of the suite's [isa] section and make one job per (family, method).

    The cell's row: model = the family, utterance = '*' (all its test inputs)."""
    registry, cache, log = ctx.registry, ctx.worker, ctx.log
    jobs = []
    for fam_name in settings.families:
        record = registry.get("family", fam_name).record
        training = {"epochs": settings.epochs} if settings.epochs else None
        # a bar over training when the run shows bars and the family can draw one (its factory takes `progress`)
        shows = "progress" in inspect.signature(record.factory).parameters
        family = record.factory(seeds=settings.seeds, log=log, training=training,
                                **({"progress": ctx.progress} if shows else {})).to_dict()
        ag = family["agreement"]
        log(f"[isa {fam_name}] {len(family['members'])} seeds, test accuracy "
            f"{', '.join(f'{a:.2f}' for a in ag['accuracy'])}; Fleiss' kappa {ag['kappa']:.3f}")
        corpus = PluginRef(family["corpus"], dict(family["corpus_params"]))
        corpus_digest = cache.instance("corpus", corpus).digest()
        inputs = tuple(zip(family["test_ids"], family["test_labels"]))
        if settings.inputs is not None:
            inputs = inputs[: settings.inputs]
        members = tuple(sorted(family["members"].items(), key=lambda kv: int(kv[0].split("-")[1])))
        for mref in settings.methods:
            method = cache.instance("method", mref)
            fields = {"board": "isa", "family": fam_name, "members": [m for m, _ in members],
                      "member_dirs": [d for _, d in members], "model": settings.model, "method": mref.to_dict(),
                      "method_id": method.describe(), "inputs": list(inputs), "p": settings.p,
                      "corpus_digest": corpus_digest}
            spec = IsaJob(fam_name, members, settings.model, mref, corpus, inputs, settings.p, 0, StftConfig(),
                          {"corpus_digest": corpus_digest, "agreement": ag, "task_kind": record.task_kind})
            params = {"method": mref.params, "p": settings.p, "members": [m for m, _ in members],
                      "inputs": len(inputs), "model": settings.model, "agreement": ag,
                      "task_kind": record.task_kind, "cfg": StftConfig().to_dict()}
            jobs.append(ctx.job("isa", fields, CellIdentity(corpus.label, corpus_digest, f"family:{fam_name}",
                                                            mref.label, "-", "*", "gold class", 0), params, spec))
    return jobs


def isa_rows(cells: list) -> list[BoardRow]:
    rows: list[BoardRow] = []
    groups: dict[tuple, list] = defaultdict(list)
    for c in cells:
        groups[(c.suite, c.corpus, c.model, c.method)].append(c)
    for (suite, corpus, model, method), members in sorted(groups.items()):
        ok = [c for c in members if c.status == "ok" and c.raw]
        reasons = failure_reasons(members)
        first = (ok or members)[0]
        params = first.params or {}
        ag = params.get("agreement") or {}
        ident = (suite, first.suite_digest, corpus, first.corpus_digest, model, method, "-")
        base_kwargs = dict(kappa=ag.get("kappa"), error_kappa=ag.get("error_kappa"),
                           accuracy=list(ag.get("accuracy", [])), task_kind=str(params.get("task_kind") or ""),
                           model_independent=method.split("[")[0] in MODEL_INDEPENDENT,
                           input_type=str(((ok[-1].raw if ok else None) or {}).get("input_type", "stft")),
                           skip_reasons=reasons)
        counts = outcome_counts(members)
        if not ok:
            rows.append(nan_row("isa", ident, first.versions or {}, n=0, **counts, aggregation="-",
                                median=float("nan"), baseline=float("nan"), scores=[], pairs=[], n_pairs=0,
                                seconds=0.0, **base_kwargs))
            continue
        cell = ok[-1]  # one cell per (family, method); the latest if a rerun added another
        for agg, entry in cell.raw["aggregations"].items():
            overlaps = np.array([p["overlaps"] for p in entry["pairs"]], dtype=np.float64)
            baseline = np.array([p["baseline"] for p in entry["pairs"]], dtype=np.float64)
            per_pair = overlaps.mean(axis=1)
            lo, hi = bootstrap_isa(overlaps)
            rows.append(BoardRow("isa", *ident, score=float(per_pair.mean()), ci_low=lo, ci_high=hi,
                                 n=int(overlaps.shape[1]), **counts, versions=first.versions or {}, details=dict(
                                     aggregation=agg, median=float(np.median(per_pair)),
                                     baseline=float(np.median(baseline.mean(axis=1))),
                                     scores=[float(x) for x in per_pair], pairs=[p["pair"] for p in entry["pairs"]],
                                     n_pairs=int(overlaps.shape[0]), seconds=float(cell.seconds), **base_kwargs)))
    # model-independent methods agree by construction: ranked after every method that uses the model
    return rank_rows(rows, lambda r: (r.suite, r.corpus, r.model, r.aggregation), first=lambda r: r.model_independent,
                     order=lambda r: (r.suite, r.model, r.aggregation))


def fmt3(x, spec: str = ".3f") -> str:
    return fmt(x, spec)


def isa_markdown(rows: list) -> str:
    out = []
    for (suite, corpus, model), members in by_table(rows, lambda r: (r.suite, r.corpus, r.model)).items():
        m0 = members[0]
        acc = ", ".join(fmt3(a, ".2f") for a in m0.accuracy)
        out.append(f"### ISA — suite `{suite}`, {shown_label(model)} ({m0.task_kind}), corpus `{shown_label(corpus)}` "
                   f"(digest `{m0.corpus_digest[:12]}`)\n")
        out.append(f"Seeds' test accuracy {acc}; Fleiss' kappa {fmt3(m0.kappa)} overall, "
                   f"{fmt3(m0.error_kappa)} where any seed erred.\n")
        out.append("| aggregation | rank | method | input | ISA | 95% CI | median | shuffled baseline | pairs | "
                   "inputs | skipped | errors |")
        out.append("|---|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for r in members:
            name = f"{r.method} (model-independent)" if r.model_independent else r.method
            out.append(f"| {r.aggregation} | {r.rank} | {name} | {r.input_type} | {fmt3(r.score)} | [{fmt3(r.ci_low)}, "
                       f"{fmt3(r.ci_high)}] | {fmt3(r.median)} | {fmt3(r.baseline)} | {r.n_pairs} | {r.n} | "
                       f"{r.skipped} | {r.errors} |")
        out += reasons_note(members)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


ISA_CSV_FIELDS = ["board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "aggregation", "rank",
              "score", "ci_low", "ci_high", "median", "baseline", "n", "n_pairs", "kappa", "error_kappa",
              "task_kind", "model_independent", "input_type", "skipped", "errors"]


def draw_isa_boxplots(rows: list, path: Path) -> Path:
    """The ISA paper's Figs. 1-3 for one (suite, family): per aggregation a panel,
    per method a box of the per-pair ISA scores, the shuffled baseline's median
    as a dashed red line per method."""
    aggs = [a for a in ("none", "frames", "words") if any(r.aggregation == a for r in rows)]
    methods = sorted({r.method for r in rows})
    fig = new_figure(max(4.0, 1.6 + 1.1 * len(methods)) * len(aggs) / 1.6, 3.6)
    axes = fig.subplots(1, len(aggs), sharey=True, squeeze=False)[0]
    for ax, agg in zip(axes, aggs):
        by_method = {r.method: r for r in rows if r.aggregation == agg}
        present = [m for m in methods if m in by_method and by_method[m].scores]
        ax.boxplot([by_method[m].scores for m in present], widths=0.6)
        for i, m in enumerate(present, 1):
            ax.hlines(by_method[m].baseline, i - 0.35, i + 0.35, colors="red", linestyles="dashed")
        ax.set_xticks(range(1, len(present) + 1))
        ax.set_xticklabels([m.replace("[", "\n[") for m in present], fontsize=7, rotation=30, ha="right")
        ax.set_title(f"aggregation: {agg}", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("ISA per seed pair (top-20% overlap)")
    r0 = rows[0]
    fig.suptitle(f"ISA — {r0.model} ({r0.task_kind}), suite {r0.suite}; red dashes: shuffled baseline", fontsize=9)
    fig.savefig(path)
    return path


def isa_figures(cells: list, out_dir: str | Path) -> list[Path]:
    """One ISA box-plot figure per (suite, family) of `cells` (a store's or a submission's)."""
    isa = [c for c in cells if c.board == "isa"]
    return figure_per_group(isa_rows(isa) if isa else [], lambda r: (r.suite, r.model) if r.scores else None,
                            draw_isa_boxplots, out_dir, "isa")


def check_isa_cell(i: int, cell: dict, st, checks) -> None:
    """isa: model family:F with F in [isa] families, a [[isa.methods]] label, the family's one corpus,
    and raw outputs of the suite's seeds, inputs and p."""
    where, name = f"cells[{i}]", checks.name
    family = cell["model"].split(":", 1)[1]
    if family not in st.families:
        raise SubmissionError(f"{where}.model: {cell['model']!r} is not a seed family of suite {name!r} "
                              f"([isa] families: {', '.join(st.families)})")
    methods = [m.label for m in st.methods]
    if cell["method"] not in methods:
        raise SubmissionError(f"{where}.method: {cell['method']!r} is not one of suite {name!r}'s "
                              f"[[isa.methods]] ({', '.join(methods)})")
    label = checks.corpus(where, cell, None)
    first = checks.state.setdefault("isa", {}).setdefault(family, label)
    if first != label:
        raise SubmissionError(f"{where}.corpus: {label!r}, but other cells of family {family!r} use corpus "
                              f"{first!r}; a family has one corpus")
    checks.once(("isa", family, cell["method"]), i, f"family {family!r} with method {cell['method']!r}")
    if cell["status"] != "ok":
        return
    raw = cell["raw"]
    if not math.isclose(raw["p"], st.p, rel_tol=1e-9):
        raise SubmissionError(f"{where}.raw.p: {raw['p']} is not the suite's [isa] p = {st.p}")
    members = raw["members"]
    if len(set(members)) != len(members):
        raise SubmissionError(f"{where}.raw.members: {short(members)} names a member twice")
    if len(members) != st.seeds:
        raise SubmissionError(f"{where}.raw.members: {len(members)} members, but the suite's [isa] seeds "
                              f"= {st.seeds}")
    inputs = raw["inputs"]
    if len(set(inputs)) != len(inputs):
        raise SubmissionError(f"{where}.raw.inputs: {short(inputs)} names an input twice")
    if st.inputs is not None and len(inputs) > st.inputs:
        raise SubmissionError(f"{where}.raw.inputs: {len(inputs)} inputs, but the suite's [isa] inputs "
                              f"= {st.inputs}")
    for k, uid in enumerate(inputs):
        checks.utterance(f"{where}.raw.inputs[{k}]", label, uid)
    want_pairs = sorted(tuple(sorted(p)) for p in itertools.combinations(members, 2))
    for agg, entry in raw["aggregations"].items():
        at = f"{where}.raw.aggregations.{agg}"
        got_pairs = sorted(tuple(sorted(p["pair"])) for p in entry["pairs"])
        if got_pairs != want_pairs:
            raise SubmissionError(f"{at}.pairs: the seed pairs {short([list(p) for p in got_pairs])} are "
                                  f"not each pair of the members {short(members)} once")
        for j, pair in enumerate(entry["pairs"]):
            for what in ("overlaps", "baseline"):
                if len(pair[what]) != len(inputs):
                    raise SubmissionError(f"{at}.pairs[{j}].{what}: {len(pair[what])} values for "
                                          f"{len(inputs)} inputs")
        maps = entry.get("word_maps")
        if maps is not None:
            if sorted(maps) != sorted(members):
                raise SubmissionError(f"{at}.word_maps: members {short(sorted(maps))}, not "
                                      f"{short(sorted(members))}")
            for member, per_input in maps.items():
                if len(per_input) != len(inputs):
                    raise SubmissionError(f"{at}.word_maps.{member}: {len(per_input)} maps for {len(inputs)} "
                                          f"inputs")



class IsaBoard(Board):
    name = "isa"
    title = "ISA"
    description = "inter-seed agreement: do models trained with different seeds get the same attributions?"
    order = 40
    section = "isa"
    sub_key = "aggregation"
    score_note = ("score: ISA, top-20% overlap of two seeds' attributions, mean over seed pairs and inputs (higher is "
                  "better; compare with the shuffled baseline); interval: bootstrap over inputs; cells: inputs")
    csv_fields = tuple(ISA_CSV_FIELDS)
    cell_schema = json.loads((Path(__file__).parent / "isa.schema.json").read_text())

    def parse_settings(self, section, listed, where):
        return parse_isa_settings(section, listed, where)

    def plugin_refs(self, settings):
        if settings is None:
            return []
        return ([("family", PluginRef(f)) for f in settings.families] + [("model", PluginRef(settings.model))]
                + [("method", r) for r in settings.methods])

    def plan(self, settings, ctx):
        return plan_isa(settings, ctx)

    def compute(self, job, worker):
        return run_isa_cell(job, worker)

    def describe_change(self, key, old, new):
        if key in ("members", "member_dirs"):
            return "seed family members changed"
        return None

    def check_cell(self, i, cell, settings, checks):
        check_isa_cell(i, cell, settings, checks)

    def check_complete(self, cells, settings, checks):
        """Every (family, method) of the [isa] section has its cell."""
        have = {(c["model"], c["method"]) for c in cells}
        for family in settings.families:
            for method in settings.methods:
                if (f"family:{family}", method.label) not in have:
                    raise SubmissionError(f"cells: the isa board lacks the cell of family {family!r} with method "
                                          f"{method.label!r}; a submission carries every cell of its run")

    def rebuild_job(self, cell, settings, ctx):
        raise NotRerunnable("ISA cells need the suite's seed families trained here")

    def rows(self, cells):
        return isa_rows(cells)

    def to_markdown(self, rows):
        return isa_markdown(rows)

    def details(self, r):
        parts = [f"input {r.get('input_type', '?')}", f"shuffled baseline {fmt(r.get('baseline'))}",
                 f"{r.get('n_pairs', 0)} seed pairs"]
        if r.get("kappa") is not None:
            parts.append(f"Fleiss' kappa {fmt(r['kappa'])}")
        if r.get("model_independent"):
            parts.append("model-independent: agrees by construction, ranked last")
        return "; ".join(parts)

    def table_title(self, row):
        return (f"ISA — suite `{row['suite']}`, corpus `{shown_label(row['corpus'])}` (digest "
                f"`{str(row.get('corpus_digest', ''))[:12]}`), model `{shown_label(row['model'])}`, aggregation "
                f"`{row.get('aggregation')}`")

    def rank_first(self, row):
        return bool(row.get("model_independent"))

    def figures(self, cells, out_dir, suite=None):
        return isa_figures([c for c in cells if c.board == "isa" and (suite is None or c.suite == suite)], out_dir)


@hookimpl
def register_boards(register):
    register(BoardPlugin.of(IsaBoard, IsaBoard.description))
