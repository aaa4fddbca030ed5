"""The `ssbm` board: the structured saliency benchmark, one word at a time.

From the SSBM paper (the structured saliency benchmark for speech
recognition, which also proposes bubble-noise importance maps): for one analysed word w and a map
thresholded at t, the LeRF mask puts full noise where the map says
"unimportant" and almost none where it says "important"; the MoRF mask does
the reverse (eqs. 3-5: d0 = -80 dB, d1 = 0 dB, alpha = 0.5). The fill
(white noise at a calibrated level by default) under each mask is added to
the clean STFT and the mixture decoded. With a_w the word's accuracy, a_o
the other words' mean accuracy and e the share of speech energy the mask
drops: Delta_LeRF = (a_w - a_o) / (1 - e_LeRF), Delta_MoRF = (a_o - a_w) /
e_MoRF, SSBM = their sum, averaged over words at each threshold; a method's
score is its best threshold, with a bootstrap interval over utterances that
re-picks the threshold in every resample.

A cell (one model, method, fill, utterance, word and seed) explains the word
once, builds both masks at every threshold, decodes all mixtures in one
batch and keeps the raw outcome (hypotheses, accuracies, dropped energies),
so the board is re-scored from the store without decoding again. A model
that cannot transcribe gets one skipped row per method and fill, saying why.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ssbm_bench.audio import stft
from ssbm_bench.board import CellIdentity, CellJob, CellResult
from ssbm_bench.board_rows import BoardRow, by_table, fmt, group_cells, nan_row, outcome_counts, rank_rows, unit_means, shown_label
from ssbm_bench.errors import InputError, SuiteError
from ssbm_bench.grid_board import GridBoard
from ssbm_bench.harness.grid import grid_params
from ssbm_bench.harness.maps import explain_spec
from ssbm_bench.harness.prepare import CalibrationSettings
from ssbm_bench.harness.suite import check_keys, expect
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.metrics.ssbm import (DENOMINATOR_FLOOR, CellOutcome, best_threshold, default_thresholds,
                                     dropped_energy, noise_mask, ssbm_curve)
from ssbm_bench.metrics.word_accuracy import target_other_accuracy, word_correct
from ssbm_bench.mixtures import map_summary, mixture_waveforms, stable_seed
from ssbm_bench.model import Capability
from ssbm_bench.records import BoardPlugin
from ssbm_bench.statistics import cluster_bootstrap_ci
from ssbm_bench.submission.checks import SubmissionError, short
from ssbm_bench.text import normalise_words

from .ssbm_figures import write_figures

DIRECTIONS = ("lerf", "morf")
_SECTION_KEYS = {"grid", "thresholds", "denominator_floor", "calibration"}
_CALIBRATION_KEYS = {"levels_db", "max_accuracy", "utterances"}
_THRESHOLD_KINDS = {"pvalue", "magnitude", "score"}


@dataclass(frozen=True)
class SsbmSettings:
    grid: str = "standard"
    thresholds: dict = field(default_factory=dict)  # map kind -> explicit list
    denominator_floor: float = DENOMINATOR_FLOOR
    calibration: CalibrationSettings = CalibrationSettings()

    def thresholds_for(self, kind: str) -> tuple[float, ...]:
        explicit = self.thresholds.get(kind)
        values = explicit if explicit is not None else default_thresholds(kind, self.grid)
        return tuple(float(x) for x in values)


@dataclass(frozen=True)
class SsbmSpec:
    grid: object  # harness.grid.GridSpec
    thresholds: tuple[float, ...]


def parse_ssbm_settings(doc: dict | None, where: str) -> SsbmSettings:
    doc = doc or {}
    check_keys(doc, _SECTION_KEYS, "[ssbm]", where)
    cal_doc = expect(doc.get("calibration", {}), dict, "ssbm.calibration", where)
    check_keys(cal_doc, _CALIBRATION_KEYS, "[ssbm.calibration]", where)
    thr_doc = expect(doc.get("thresholds", {}), dict, "ssbm.thresholds", where)
    check_keys(thr_doc, _THRESHOLD_KINDS, "[ssbm.thresholds]", where)
    for kind, values in thr_doc.items():
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in values)):
            raise SuiteError(f"{where}: ssbm.thresholds.{kind} must be a non-empty list of finite numbers, "
                             f"got {values!r}")
    grid = doc.get("grid", "standard")
    if grid not in ("standard", "quick"):
        raise SuiteError(f"{where}: ssbm.grid must be 'standard' or 'quick', got {grid!r}")
    default = CalibrationSettings()
    levels = cal_doc.get("levels_db", list(default.levels_db))
    if (not isinstance(levels, list) or not levels
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in levels)):
        raise SuiteError(f"{where}: ssbm.calibration.levels_db must be a non-empty list of finite numbers (dB re. "
                         f"speech RMS), got {levels!r}")
    max_acc = float(expect(cal_doc.get("max_accuracy", default.max_accuracy), (int, float),
                           "ssbm.calibration.max_accuracy", where))
    if not 0 <= max_acc < 1:
        raise SuiteError(f"{where}: ssbm.calibration.max_accuracy is a word accuracy in [0, 1), got {max_acc}")
    n_utts = expect(cal_doc.get("utterances", default.utterances), int, "ssbm.calibration.utterances", where)
    if n_utts < 1:
        raise SuiteError(f"{where}: ssbm.calibration.utterances must be at least 1, got {n_utts}")
    floor = float(expect(doc.get("denominator_floor", DENOMINATOR_FLOOR), (int, float), "ssbm.denominator_floor",
                         where))
    if not 0 < floor < 1:
        raise SuiteError(f"{where}: ssbm.denominator_floor must be in (0, 1), got {floor}")
    return SsbmSettings(grid=grid, thresholds={k: [float(v) for v in vals] for k, vals in thr_doc.items()},
                        denominator_floor=floor,
                        calibration=CalibrationSettings(tuple(float(x) for x in levels), max_acc, int(n_utts)))


def outcome(entry: dict, floor: float = DENOMINATOR_FLOOR) -> CellOutcome:
    lerf, morf = entry["lerf"], entry["morf"]
    return CellOutcome(threshold=entry["threshold"], a_w_lerf=lerf["a_w"], a_o_lerf=lerf["a_o"], e_lerf=lerf["e"],
                       a_w_morf=morf["a_w"], a_o_morf=morf["a_o"], e_morf=morf["e"], floor=floor)


def floor_of(cell) -> float:
    return float(cell.params.get("denominator_floor", DENOMINATOR_FLOOR))


def bootstrap_best_ssbm(per_word: np.ndarray, utterance_of_word: list[str], seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the best-threshold SSBM, resampling utterances.

    `per_word` is (words x thresholds). The best threshold is re-chosen in
    every resample, so the interval includes the optimism of picking it."""
    return cluster_bootstrap_ci(per_word, utterance_of_word, reduce=np.max, seed=seed)


def ssbm_rows(cells: list) -> list[BoardRow]:
    rows = []
    for ident, members in group_cells(cells).items():
        ok = [c for c in members if c.status == "ok" and c.raw]
        counts = outcome_counts(members)
        versions = members[0].versions
        if not ok:
            nan = float("nan")
            rows.append(nan_row("ssbm", ident, versions, n=0, n_utterances=0, **counts,
                                best_threshold=nan, delta_lerf=nan, delta_morf=nan, n_guarded=0,
                                noise_level_db=None, curve=[]))
            continue
        curve = ssbm_curve([(c.key, outcome(e, floor_of(c))) for c in ok for e in c.raw["thresholds"]])
        best = best_threshold(curve)
        # words x thresholds; every cell of a group shares the suite's threshold grid
        complete = [c for c in ok if len(c.raw["thresholds"]) == len(curve)]
        per_word = np.array([[outcome(e, floor_of(c)).ssbm
                              for e in sorted(c.raw["thresholds"], key=lambda e: e["threshold"])] for c in complete])
        lo, hi = bootstrap_best_ssbm(per_word, [c.utterance for c in complete])
        rows.append(BoardRow("ssbm", *ident, score=float(best.ssbm), ci_low=lo, ci_high=hi, n=len(ok),
                             n_utterances=len({c.utterance for c in ok}), **counts,
                             versions=versions, details={
                                 "best_threshold": float(best.threshold), "delta_lerf": float(best.delta_lerf),
                                 "delta_morf": float(best.delta_morf), "n_guarded": int(best.n_guarded),
                                 "noise_level_db": ok[0].raw.get("level_db"), "curve": [asdict(s) for s in curve]}))
    return rank_rows(rows, lambda r: (r.board, r.suite, r.corpus, r.model))


def compute_ssbm_cell(job: CellJob, worker) -> CellResult:
    """Explain the word, build both masks at every threshold, decode every mixture in one batch."""
    t0 = time.perf_counter()
    spec = job.spec.grid
    done = explain_spec(worker, spec)
    if done.status != "ok":
        return CellResult(job, done.status, done.reason, seconds=time.perf_counter() - t0)
    smap = done.smap
    model = worker.instance("model", spec.model)
    fill = worker.fill(spec.fill, spec.corpus, spec.cfg)
    utt = worker.utterance(spec.corpus, spec.utterance)
    clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), spec.cfg)
    magnitude = clean.abs().numpy().astype(np.float64)
    masks, energies = [], []
    for t in job.spec.thresholds:
        for direction in DIRECTIONS:
            m = noise_mask(smap.thresholded_values(), t, smap.kind, direction)
            masks.append(m)
            energies.append(dropped_energy(m, magnitude))
    waves = mixture_waveforms(clean, masks, fill, utt.waveform, spec.level_db,
                              stable_seed("noise", spec.utterance, spec.seed), spec.cfg)
    try:
        hyps = model.transcribe(waves)
    except InputError as exc:
        return CellResult(job, "error", f"decoding the SSBM mixtures of utterance {utt.id!r} (method "
                                        f"{spec.method.label!r}, fill {spec.fill.label!r}): {exc}",
                          seconds=time.perf_counter() - t0)
    per_threshold = []
    for i, t in enumerate(job.spec.thresholds):
        entry: dict = {"threshold": float(t)}
        for j, direction in enumerate(DIRECTIONS):
            hyp = normalise_words(hyps[2 * i + j])
            a_w, a_o = target_other_accuracy(word_correct(utt.reference, hyp), spec.target.index)
            entry[direction] = {"hyp": " ".join(hyp), "a_w": float(a_w), "a_o": float(a_o),
                                "e": float(energies[2 * i + j])}
        per_threshold.append(entry)
    raw = {"map": map_summary(smap),
           "thresholds": per_threshold, "level_db": spec.level_db, "explain_seconds": done.seconds}
    return CellResult(job, "ok", raw=raw, seconds=time.perf_counter() - t0, decodes=len(waves))


class SsbmBoard(GridBoard):
    name = "ssbm"
    title = "SSBM"
    description = "structured saliency benchmark: LeRF/MoRF noise per word, per unit of speech energy kept"
    order = 10
    section = "ssbm"
    score_note = ("score: SSBM at the best threshold (ΔLeRF + ΔMoRF, mean over words); interval: percentile "
                  "bootstrap over utterances that re-picks the threshold")
    csv_fields = ("board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "fill", "rank",
                  "score", "ci_low", "ci_high", "best_threshold", "delta_lerf", "delta_morf", "n", "n_utterances",
                  "n_guarded", "skipped", "errors", "noise_level_db")
    cell_schema = json.loads((Path(__file__).parent / "ssbm.schema.json").read_text())

    def parse_settings(self, section, listed, where):
        return parse_ssbm_settings(section, where)

    def noise_calibration(self, settings):
        return settings.calibration

    def plan(self, settings, ctx):
        suite = ctx.suite
        for gm in ctx.grid().models:
            if gm.mode == "classify":  # SSBM scores word accuracy: say why a classifier has no cells
                for meth in suite.methods_for(gm.ref):
                    for fref in suite.fills:
                        ctx.store_now("ssbm", {"board": "ssbm", "skip": "cannot transcribe", "model": gm.ref.to_dict(),
                                               "model_id": gm.model.describe(), "method": meth.to_dict(),
                                               "fill": fref.to_dict()},
                                      CellIdentity(suite.corpus.label, ctx.corpus_digest, gm.ref.label, meth.label,
                                                   fref.label, "*", "*", 0),
                                      {"model": gm.ref.params, "method": meth.params, "fill": fref.params},
                                      "skipped", f"SSBM scores word accuracy, and model {gm.model.name!r} cannot "
                                                 f"transcribe (capabilities: "
                                                 f"{', '.join(sorted(str(c) for c in gm.model.capabilities))})")
        return super().plan(settings, ctx)

    def wants(self, point):
        return point.model.has(Capability.TRANSCRIBE)

    def key_fields(self, point, settings):
        return {**point.fields, "thresholds": settings.thresholds_for(point.method.map_kind)}

    def row_params(self, spec, settings, point):
        # the floor is a scoring setting, not part of the key: changing it re-scores without decoding
        return grid_params(spec, thresholds=list(settings.thresholds_for(point.method.map_kind)),
                           denominator_floor=settings.denominator_floor)

    def job_spec(self, grid, settings, point):
        return SsbmSpec(grid, settings.thresholds_for(point.method.map_kind))

    def spec_from_params(self, grid, params):
        return SsbmSpec(grid, tuple(float(t) for t in params["thresholds"]))

    def compute(self, job, worker):
        return compute_ssbm_cell(job, worker)

    def describe_change(self, key, old, new):
        if key == "thresholds":
            return f"thresholds changed ({short(old, 50)} -> {short(new, 50)})"
        return None

    def check_raw(self, i, cell, settings):
        where, raw = f"cells[{i}]", cell["raw"]
        got = [e["threshold"] for e in raw["thresholds"]]
        want = list(settings.thresholds_for(raw["map"]["kind"]))
        if len(got) != len(want) or not all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
                                            for a, b in zip(got, want)):
            raise SubmissionError(f"{where}.raw.thresholds: {short(got)} is not the suite's {raw['map']['kind']} "
                                  f"grid {short(want)}")
        if raw["map"]["min"] > raw["map"]["max"]:
            raise SubmissionError(f"{where}.raw.map: min {raw['map']['min']} above max {raw['map']['max']}")

    def rows(self, cells):
        return ssbm_rows(cells)

    def per_unit(self, cells, row):
        t = row.get("best_threshold")
        if t is None:
            return {}
        return unit_means((c.utterance, outcome(e, floor_of(c)).ssbm) for c in cells if c.status == "ok" and c.raw
                          for e in c.raw["thresholds"]
                          if math.isclose(e["threshold"], t, rel_tol=1e-9, abs_tol=1e-12))

    def to_markdown(self, rows):
        out = []
        for (suite, corpus, model), members in by_table(rows, lambda r: (r.suite, r.corpus, r.model)).items():
            level = members[0].noise_level_db
            out.append(f"### SSBM — suite `{suite}`, corpus `{shown_label(corpus)}` (digest `{members[0].corpus_digest[:12]}`), "
                       f"model `{shown_label(model)}`\n")
            out.append("| rank | method | fill | SSBM | 95% CI | best threshold | ΔLeRF | ΔMoRF | words | utterances |"
                       " skipped | errors |")
            out.append("|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
            for r in members:
                out.append(f"| {r.rank} | {r.method} | {r.fill} | {fmt(r.score)} | [{fmt(r.ci_low)}, "
                           f"{fmt(r.ci_high)}] | {fmt(r.best_threshold, 'g')} | {fmt(r.delta_lerf)} | "
                           f"{fmt(r.delta_morf)} | {r.n} | {r.n_utterances} | {r.skipped} | {r.errors} |")
            guarded = sum(r.n_guarded for r in members)
            notes = [f"noise level {level:+g} dB re. speech RMS" if level is not None else None,
                     f"{guarded} word(s) at the best threshold hit the denominator floor" if guarded else None]
            notes = [n for n in notes if n]
            if notes:
                out.append("\n" + "; ".join(notes) + ".")
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def figures(self, cells, out_dir, suite=None):
        mine = [c for c in cells if c.board == self.name and (suite is None or c.suite == suite)]
        return write_figures(mine, ssbm_rows(mine), out_dir)


@hookimpl
def register_boards(register):
    register(BoardPlugin.of(SsbmBoard, SsbmBoard.description))
