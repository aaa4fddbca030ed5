"""The `deletion` board: deletion by rank, recomputed from the store's raw outcomes.

Per (suite, corpus, model, method, fill): the mean score (token success of
the explained target for ASR, the class probability for classifiers) after
masking the top / random / bottom fraction r of each map, over all cells.
Headline: the gap, mean over r of score(random) - score(top) (positive: the
map's top points matter more than random ones), with a bootstrap interval
over utterances; beside it the ordering cases (top < random, top < bottom,
random < bottom at each r: the poster's "7 of 9"), the full
order x fraction table and the cost per explanation.

A cell explains the target (sharing the map with the other grid boards'
cells of the same explanation, see harness.maps), masks the top / random /
bottom fraction r of the map's points with the fill (binary weights, the
same noise draw as SSBM's for additive fills), and scores every masked
version in one batch: for ASR, teacher-forced token success against the
model's own clean transcript (``model.score_tokens``), over all tokens and
over the tokens of what the map explains; for classifiers, the target
class's probability. The raw outcome keeps every condition's scores, the
token flags and the energy each mask removed, so the board is recomputed
from the store.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssbm_bench.attribution import forced_transcript, resolve_target
from ssbm_bench.audio import stft
from ssbm_bench.board import CellJob, CellResult
from ssbm_bench.board_rows import BoardRow, by_table, fmt, group_cells, nan_row, rank_rows, rows_to_csv, shown_label
from ssbm_bench.errors import InputError, SuiteError
from ssbm_bench.grid_board import GridBoard
from ssbm_bench.harness.grid import grid_params
from ssbm_bench.harness.maps import explain_spec
from ssbm_bench.harness.suite import check_keys
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.method import ExplainRequest
from ssbm_bench.metrics.deletion import FRACTIONS, ORDERS, deletion_gap, deletion_mask, ordering_cases, \
    success_rate, top_lowest_cases
from ssbm_bench.metrics.ssbm import dropped_energy
from ssbm_bench.mixtures import map_summary, mixture_waveforms, stable_seed
from ssbm_bench.model import Capability
from ssbm_bench.records import BoardPlugin
from ssbm_bench.statistics import cluster_bootstrap_ci
from ssbm_bench.submission.checks import SubmissionError


@dataclass(frozen=True)
class DeletionSettings:
    #: fractions r of a map's points masked (top / random / bottom)
    fractions: tuple[float, ...] = FRACTIONS


@dataclass(frozen=True)
class DeletionSpec:
    grid: object  # harness.grid.GridSpec
    fractions: tuple[float, ...]


def parse_deletion_settings(doc: dict | None, where: str) -> DeletionSettings:
    doc = doc or {}
    check_keys(doc, {"fractions"}, "[deletion]", where)
    fractions = doc.get("fractions", list(FRACTIONS))
    if (not isinstance(fractions, list) or not fractions
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1 for f in fractions)):
        raise SuiteError(f"{where}: deletion.fractions must be a non-empty list of numbers in (0, 1), "
                         f"got {fractions!r}")
    if len(set(fractions)) != len(fractions):
        raise SuiteError(f"{where}: deletion.fractions lists a fraction twice: {fractions!r}")
    return DeletionSettings(tuple(float(f) for f in fractions))


def scoring_of(model) -> tuple[str | None, str | None]:
    """(score kind, None) or (None, the reason the model cannot be scored)."""
    if model.has(Capability.TRANSCRIBE):
        if model.has(Capability.SCORE_TOKENS):
            return "token_success", None
        return None, (f"deletion scores teacher-forced token success, and model {model.name!r} cannot score tokens "
                      f"(no score_tokens capability)")
    if model.has(Capability.CLASSIFY):
        return "class_probability", None
    return None, f"deletion needs a model that transcribes with score_tokens or classifies; {model.name!r} does neither"


def compute_deletion_cell(cjob: CellJob, cache) -> CellResult:
    """Mask the top / random / bottom fraction r of the map with the fill; score every version in one batch."""
    t0 = time.perf_counter()
    job, fractions = cjob.spec.grid, cjob.spec.fractions
    try:
        model = cache.instance("model", job.model)
    except Exception as exc:
        return CellResult(cjob, "error", f"could not load model {job.model.name!r}: {type(exc).__name__}: {exc}")
    kind, why_not = scoring_of(model)
    if kind is None:
        return CellResult(cjob, "skipped", why_not)
    done = explain_spec(cache, job)
    if done.status != "ok":
        return CellResult(cjob, done.status, done.reason, seconds=time.perf_counter() - t0)
    smap = done.smap
    fill = cache.fill(job.fill, job.corpus, job.cfg)
    utt = cache.utterance(job.corpus, job.utterance)
    cfg = job.cfg
    clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), cfg)
    magnitude = clean.abs().numpy().astype(np.float64)

    conditions, masks = [], []
    for order in ORDERS:
        for r in fractions:
            m = deletion_mask(smap.values, r, order, stable_seed("deletion", job.utterance, job.seed, order, r))
            masks.append(m.astype(np.float64))
            conditions.append({"order": order, "fraction": float(r), "points": int(m.sum()),
                               "energy": float(dropped_energy(m.astype(np.float64), magnitude))})
    noise_seed = stable_seed("noise", job.utterance, job.seed)
    waves = [utt.waveform] + mixture_waveforms(clean, masks, fill, utt.waveform, job.level_db, noise_seed, cfg)

    try:
        if kind == "token_success":
            scope = "transcript" if smap.params.get("target_scope") == "transcript" else "word"
            request = ExplainRequest(model=model, utterance=utt, target=job.target, cfg=cfg, seed=job.seed,
                                     artifacts=cache.artifacts)
            mt = resolve_target(request, scope)
            ft = forced_transcript(model, utt, cache.artifacts)
            flags = model.score_tokens(waves, ft)
            positions = list(mt.token_positions)
            clean_score = {"all": success_rate(flags[0]), "target": success_rate(flags[0], positions)}
            for c, f in zip(conditions, flags[1:]):
                c.update(all=success_rate(f), target=success_rate(f, positions),
                         flags="".join("1" if x else "0" for x in f))
            scoring = {"kind": kind, "target_scope": mt.scope, "target_label": mt.label, "token_positions": positions,
                       "transcript": ft.text, "n_tokens": len(ft.token_ids)}
        else:
            if job.target.kind != "class":
                raise InputError(f"model {model.name!r} is a classifier; target {job.target.key} is not a class")
            probs = model.classify(waves)[:, job.target.index]
            clean_score = {"target": float(probs[0])}
            for c, p in zip(conditions, probs[1:]):
                c.update(target=float(p))
            scoring = {"kind": kind, "target_scope": "class", "target_label": job.target.label}
    except InputError as exc:
        return CellResult(cjob, "error", f"deletion scoring of method {job.method.name!r} on utterance {utt.id!r}, "
                                        f"target {job.target.key}: {exc}", seconds=time.perf_counter() - t0)
    raw = {
        "map": map_summary(smap),
        "scoring": scoring,
        "clean": clean_score,
        "conditions": conditions,
        "level_db": job.level_db,
        "explain_seconds": done.seconds,
        "map_reused": done.cached,
    }
    return CellResult(cjob, "ok", raw=raw, seconds=time.perf_counter() - t0, decodes=len(waves))
def _fkey(r: float) -> str:
    return f"{r:g}"


def _cell_table(cell) -> dict[tuple[str, float], float]:
    return {(c["order"], float(c["fraction"])): float(c["target"]) for c in cell.raw["conditions"]}


def deletion_rows(cells: list) -> list[BoardRow]:
    rows = []
    for ident, members in group_cells(cells).items():
        ok = [c for c in members if c.status == "ok" and c.raw and c.raw.get("conditions")]
        skipped = [c for c in members if c.status == "skipped"]
        errors = sum(c.status == "error" for c in members)
        reasons = sorted({c.reason for c in skipped if c.reason})
        fractions = sorted({float(x["fraction"]) for c in ok for x in c.raw["conditions"]})
        nan = float("nan")
        if not ok:
            rows.append(nan_row("deletion", ident, members[0].versions, n=0, n_utterances=0, skipped=len(skipped),
                                errors=errors, fractions=fractions, table={}, clean=nan, cases_held=0,
                                cases_total=0, top_lowest=0, score_kind="", seconds_per_explanation=nan,
                                skip_reasons=reasons))
            continue
        tables = [_cell_table(c) for c in ok]
        mean_table = {}
        for key in tables[0]:
            vals = np.array([t.get(key, nan) for t in tables], dtype=float)
            mean_table[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else nan
        gaps = np.array([deletion_gap(t, fractions) for t in tables])
        finite = np.isfinite(gaps)
        lo, hi = cluster_bootstrap_ci(gaps[finite], [c.utterance for c, f in zip(ok, finite) if f]) \
            if finite.any() else (nan, nan)
        held, total = ordering_cases(mean_table, fractions)
        lowest, _ = top_lowest_cases(mean_table, fractions)
        clean = [c.raw["clean"]["target"] for c in ok]
        rows.append(BoardRow(
            "deletion", *ident, score=deletion_gap(mean_table, fractions), ci_low=lo, ci_high=hi, n=len(ok),
            n_utterances=len({c.utterance for c in ok}), skipped=len(skipped), errors=errors,
            versions=members[0].versions, details={
                "fractions": fractions, "table": {o: {_fkey(r): mean_table[(o, r)] for r in fractions} for o in ORDERS},
                "clean": float(np.nanmean(clean)), "cases_held": held, "cases_total": total, "top_lowest": lowest,
                "score_kind": ok[0].raw["scoring"]["kind"],
                "seconds_per_explanation": float(np.mean([c.raw["explain_seconds"] for c in ok])),
                "skip_reasons": reasons}))
    return rank_rows(rows, lambda r: (r.suite, r.corpus, r.model))


def deletion_per_utterance(cells: list) -> dict[str, float]:
    """Per utterance, the mean gap of its cells (the paired test's units)."""
    per: dict[str, list[float]] = defaultdict(list)
    for c in cells:
        if c.status != "ok" or not c.raw or not c.raw.get("conditions"):
            continue
        table = {(x["order"], float(x["fraction"])): float(x["target"]) for x in c.raw["conditions"]}
        fractions = sorted({r for _, r in table})
        try:
            per[c.utterance].append(deletion_gap(table, fractions))
        except KeyError:  # a cell without the random or top order: nothing to pair
            continue
    return {u: float(np.mean(v)) for u, v in per.items() if np.isfinite(np.mean(v))}


def deletion_markdown(rows: list) -> str:
    out = []
    for (suite, corpus, model), members in by_table(rows, lambda r: (r.suite, r.corpus, r.model)).items():
        kind = next((r.score_kind for r in members if r.score_kind), "")
        what = {"token_success": "teacher-forced token success of the explained target",
                "class_probability": "probability of the explained class"}.get(kind, kind)
        out.append(f"### DELETION — suite `{suite}`, corpus `{shown_label(corpus)}` (digest `{members[0].corpus_digest[:12]}`), "
                   f"model `{shown_label(model)}`\n")
        if what:
            out.append(f"Score: {what}. Gap = mean over r of score(random) − score(top); higher is better.\n")
        out.append("| rank | method | fill | gap | 95% CI | orderings held | top lowest | s / explanation | clean |"
                   " targets | utterances | skipped | errors |")
        out.append("|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in members:
            out.append(f"| {r.rank} | {r.method} | {r.fill} | {fmt(r.score, '.3f')} | [{fmt(r.ci_low, '.3f')}, {fmt(r.ci_high, '.3f')}] "
                       f"| {r.cases_held}/{r.cases_total} | {r.top_lowest}/{len(r.fractions)} | "
                       f"{fmt(r.seconds_per_explanation)} | {fmt(r.clean)} | {r.n} | "
                       f"{r.n_utterances} | {r.skipped} | {r.errors} |")
        fractions = sorted({f for r in members for f in r.fractions})
        if fractions:
            out.append("")
            head = " | ".join(f"{o} {_fkey(f)}" for o in ORDERS for f in fractions)
            out.append(f"| method | fill | {head} |")
            out.append("|---|---|" + "---:|" * (len(ORDERS) * len(fractions)))
            for r in members:
                cells = " | ".join(fmt(r.table.get(o, {}).get(_fkey(f)), '.3f') for o in ORDERS for f in fractions)
                out.append(f"| {r.method} | {r.fill} | {cells} |")
        reasons = sorted({x for r in members for x in r.skip_reasons})
        if reasons:
            out.append("\nSkipped: " + "; ".join(reasons) + ".")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


DELETION_CSV_FIELDS = ["board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "fill", "rank", "score",
              "ci_low", "ci_high", "cases_held", "cases_total", "top_lowest", "clean", "score_kind",
              "seconds_per_explanation", "n", "n_utterances", "skipped", "errors"]


def deletion_csv(rows: list) -> str:
    fractions = sorted({f for r in rows for f in r.fractions})
    extra = [f"{o}_{_fkey(f)}" for o in ORDERS for f in fractions]
    return rows_to_csv(rows, DELETION_CSV_FIELDS, extra, lambda r: {
        f"{o}_{_fkey(f)}": r.table.get(o, {}).get(_fkey(f)) for o in ORDERS for f in fractions})




class DeletionBoard(GridBoard):
    name = "deletion"
    title = "Deletion by rank"
    description = "mask the top, random or bottom fraction of a map; teacher-forced token success (or class probability)"
    order = 20
    section = "deletion"
    score_note = ("score: deletion gap, mean over fractions of score(random) − score(top); interval: bootstrap "
                  "over utterances")
    csv_fields = tuple(DELETION_CSV_FIELDS)
    cell_schema = json.loads((Path(__file__).parent / "deletion.schema.json").read_text())

    def parse_settings(self, section, listed, where):
        return parse_deletion_settings(section, where)

    def key_fields(self, point, settings):
        fractions = (settings or DeletionSettings()).fractions
        return {**point.fields, "board": "deletion", "thresholds": None, "fractions": list(fractions)}

    def row_params(self, spec, settings, point):
        return grid_params(spec, fractions=list((settings or DeletionSettings()).fractions))

    def job_spec(self, grid, settings, point):
        return DeletionSpec(grid, (settings or DeletionSettings()).fractions)

    def spec_from_params(self, grid, params):
        return DeletionSpec(grid, tuple(float(f) for f in params["fractions"]))

    def compute(self, job, worker):
        return compute_deletion_cell(job, worker)

    def describe_change(self, key, old, new):
        if key == "fractions":
            return f"deletion fractions changed ({old} -> {new})"
        return None

    def check_raw(self, i, cell, settings):
        fractions = (settings or DeletionSettings()).fractions
        for j, cond in enumerate(cell["raw"]["conditions"]):
            if not any(math.isclose(cond["fraction"], f) for f in fractions):
                raise SubmissionError(f"cells[{i}].raw.conditions[{j}].fraction: {cond['fraction']} is not one "
                                      f"of the suite's fractions {list(fractions)}")

    def rows(self, cells):
        return deletion_rows(cells)

    def per_unit(self, cells, row):
        return deletion_per_utterance(cells)

    def to_markdown(self, rows):
        return deletion_markdown(rows)

    def to_csv(self, rows):
        return deletion_csv(rows)


@hookimpl
def register_boards(register):
    register(BoardPlugin.of(DeletionBoard, DeletionBoard.description))
