"""Run a suite: validate, prepare each model, plan the cells, execute the
ones not yet in the store, and write each as it finishes.

Resume is by key: a cell's key is a digest of everything that determines
its raw outcome (corpus content, utterance, target, seed, model, method and
fill with their parameters and versions, thresholds, noise level, STFT), so
an unchanged rerun finds every key and computes nothing.

Every model a cell uses goes through the model-output cache
(ssbm_bench.model_cache): the same input is evaluated once, across methods,
fills, cells and reruns. Workers never write the store: each cell's new
cache entries travel back with its result, and this process, the one
writer, stores them with the cell. A rerun that computes cells says why,
one line per reason (ssbm_bench.harness.recompute).
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..audio import StftConfig
from ..errors import SsbmBenchError
from ..metrics.ssbm import default_thresholds
from ..plugins import PluginRegistry, get_registry
from ..types import Target, Utterance
from ..model import Capability
from ..model_cache import ModelCacheSettings, merge_stats, summarise
from .deletion_cell import DeletionJob, run_deletion_cell
from .isa_cell import IsaJob, plan_isa_jobs, run_isa_cell
from .stability_cell import StabilityJob, plan_stability_jobs, run_stability_cell
from .prepare import calibrate_noise, model_key, select_classified, select_eligible
from .recompute import reason_lines, recompute_reasons, unfinished_run
from .ssbm_cell import CellResult, SsbmJob, run_ssbm_cell
from .store import CellRow, ResultStore
from .suite import PluginRef, Suite
from .worker import WorkerCache, cache_from

PROTOCOL_VERSION = "ssbm-1"


@dataclass
class RunSummary:
    suite: str
    planned: int = 0
    cached: int = 0
    computed: int = 0
    skipped: int = 0
    errors: int = 0
    #: waveforms the cells asked their model about (what "model calls" counted before the cache)
    decodes: int = 0
    seconds: float = 0.0
    models: dict = field(default_factory=dict)
    #: inputs the models actually evaluated (transcribe, classify, score_tokens), cache misses included
    model_calls: int = 0
    #: the model-output cache: enabled, hits, misses, hit_rate, stored (entries added to the store), ...
    model_cache: dict = field(default_factory=dict)
    #: why the computed cells were computed: [{"reason": ..., "cells": n}]
    recomputed: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Finished:
    """What a worker hands back for one cell: its result and what the model-output cache learnt."""

    result: Any
    model_outputs: dict


def choose_targets(utt: Utterance, k: int | None) -> list[Target]:
    """k target words spread evenly over the interior of the utterance (all
    words if k is None): with k=2 of 8 words, words 2 and 5, so that a short
    sample is not dominated by sentence-initial articles."""
    n = len(utt.words)
    idx = range(n) if k is None or k >= n else sorted({int(round(x)) for x in np.linspace(0, n - 1, k + 2)[1:-1]})
    ref = utt.reference
    return [Target("word", i, ref[i] if i < len(ref) else utt.words[i].text) for i in idx]


def thresholds_for(suite: Suite, kind: str) -> tuple[float, ...]:
    explicit = suite.ssbm.thresholds.get(kind)
    values = explicit if explicit is not None else default_thresholds(kind, suite.ssbm.grid)
    return tuple(float(x) for x in values)


def key_text(suite: Suite, corpus_digest: str, job_fields: dict) -> str:
    """Everything a cell's key is a digest of, as canonical JSON (recorded with the cell, parsed, so a rerun
    can say what changed)."""
    return json.dumps({"protocol": PROTOCOL_VERSION, "suite": suite.name, "corpus": corpus_digest, **job_fields},
                      sort_keys=True, default=str)


def cell_key(suite: Suite, corpus_digest: str, job_fields: dict) -> str:
    return hashlib.sha256(key_text(suite, corpus_digest, job_fields).encode()).hexdigest()


def validate_names(suite: Suite, registry: PluginRegistry) -> None:
    """Fail before any work if a suite names a plugin nothing registered."""
    registry.get("corpus", suite.corpus.name)
    for r in suite.models:
        registry.get("model", r.name)
    for r in suite.methods:
        registry.get("method", r.name)
    for r in suite.fills:
        registry.get("fill", r.name)
    registry.get("executor", suite.executor.name)


def plugins_used(suite: Suite) -> list[tuple[str, str]]:
    """(kind, name) of every plugin the suite's boards use, for the versions record of its cells: the
    corpus x models x methods x fills grid of the ssbm and deletion boards, the isa board's families, their
    member loader and methods, the stability board's model, method, corpus and fills, and the executor."""
    used: list[tuple[str, str]] = []
    if {"ssbm", "deletion"} & set(suite.boards):
        for kind, refs in (("corpus", [suite.corpus]), ("model", suite.models), ("method", suite.methods),
                           ("fill", suite.fills)):
            used += [(kind, r.name) for r in refs]
    if suite.isa is not None and "isa" in suite.boards:
        used += [("family", f) for f in suite.isa.families] + [("model", suite.isa.model)]
        used += [("method", r.name) for r in suite.isa.methods]
    st = suite.stability
    if st is not None and "stability" in suite.boards:
        used += [("model", st.model.name), ("method", st.method.name), ("corpus", st.corpus.name)]
        used += [("fill", r.name) for r in st.fills]
    used.append(("executor", suite.executor.name))
    return list(dict.fromkeys(used))


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="cell", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def run_suite(suite: Suite, db_path: str, registry: PluginRegistry | None = None, progress: bool = True,
              log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> RunSummary:
    registry = registry or get_registry()
    validate_names(suite, registry)
    t_start = time.perf_counter()
    cfg = StftConfig()
    summary = RunSummary(suite=suite.name)
    cache = WorkerCache(registry)
    corpus = cache.instance("corpus", suite.corpus)
    corpus_digest = corpus.digest()
    utterances = list(corpus.utterances())
    if suite.utterance_ids:
        by_id = {u.id: u for u in utterances}
        unknown = [i for i in suite.utterance_ids if i not in by_id]
        if unknown:
            raise SsbmBenchError(f"suite {suite.name!r}: corpus {suite.corpus.name!r} has no utterance(s) "
                                 f"{', '.join(unknown)}")
        utterances = [by_id[i] for i in suite.utterance_ids]

    versions = {"ssbm-bench": __version__, "plugins": {}}
    for kind, name in plugins_used(suite):
        versions["plugins"][f"{kind}:{name}"] = registry.version_of(kind, name)

    with ResultStore(db_path) as store:
        unfinished = unfinished_run(store.runs(), suite.name, suite.digest)
        run_id = store.start_run(suite.name, suite.digest, suite.path, versions)
        cache.artifacts = store
        # this process reads and writes the store; executor workers elsewhere read it read-only
        settings = ModelCacheSettings(enabled=suite.model_cache,
                                      store_path=None if db_path == ":memory:" else str(Path(db_path).resolve()))
        cache.configure_model_cache(settings, backend=store if suite.model_cache else None)
        cache_stats: dict = {}
        stored_outputs = 0
        notes: set[str] = set()

        def absorb(drained: dict) -> list:
            merge_stats(cache_stats, drained["stats"])
            if drained.get("note"):
                notes.add(drained["note"])
            return drained["entries"]

        fields_of: dict[str, dict] = {}

        def keyed(fields: dict) -> str:
            text = key_text(suite, corpus_digest, fields)
            key = hashlib.sha256(text.encode()).hexdigest()
            fields_of[key] = json.loads(text)
            return key

        finished = store.finished_keys()
        jobs: list[SsbmJob] = []
        plan_extra: list[str] = []  # cells stored while planning (capability skips)
        try:
            # the ssbm and deletion boards cross corpus x models x methods; isa has its own families
            for mref in suite.models if {"ssbm", "deletion"} & set(suite.boards) else ():
                model = cache.instance("model", mref)
                mkey = model_key(mref, model)
                info: dict = {"noise_level_db": {}}
                summary.models[mref.label] = info
                if model.has(Capability.TRANSCRIBE):
                    log(f"[{mref.label}] selecting fully recognised utterances ...")
                    elig = select_eligible(model, mkey, utterances, corpus_digest, store, suite.utterance_limit,
                                           on_decode=lambda n: setattr(summary, "decodes", summary.decodes + n))
                    info.update({"eligible": [u.id for u in elig.eligible], "scanned": elig.scanned,
                                 "dropped": len(elig.dropped), "clean_word_accuracy": elig.clean_word_accuracy})
                    log(f"[{mref.label}] {len(elig.eligible)} of {elig.scanned} scanned utterances recognised "
                        f"fully (dropped {len(elig.dropped)}; clean word accuracy {elig.clean_word_accuracy:.1%})")
                    if not elig.eligible:
                        log(f"[{mref.label}] no utterance is recognised fully: no cells for this model")
                        continue
                    work = [(u, choose_targets(u, suite.words_per_utterance)) for u in elig.eligible]
                elif model.has(Capability.CLASSIFY):
                    chosen = select_classified(model, mkey, utterances, corpus_digest, store, suite.utterance_limit)
                    work = [(u, [Target("class", c, model.labels[c])]) for u, c in chosen]
                    info["classified"] = {u.id: model.labels[c] for u, c in chosen}
                    if "ssbm" in suite.boards:
                        plan_extra += _store_ssbm_skips(store, suite, corpus_digest, mref, model, finished,
                                                        versions)
                else:
                    log(f"[{mref.label}] model neither transcribes nor classifies: no cells")
                    continue
                crossed = suite.methods_for(mref)
                left_out = [m.label for m in suite.methods if not any(m is c for c in crossed)]
                if left_out:
                    log(f"[{mref.label}] not run with: {', '.join(left_out)} (their [[methods]] entries name "
                        f"other models)")
                for fref in suite.fills:
                    fill = cache.fill(fref, suite.corpus, cfg)
                    if model.has(Capability.TRANSCRIBE):
                        cal = calibrate_noise(model, mkey, fill, fref.label, [u for u, _ in work], corpus_digest,
                                              store, suite.ssbm.calibration, cfg)
                    else:
                        cal = {"level_db": 0.0, "note": "a classifier has no word accuracy to calibrate a noise "
                                                        "level against; additive fills are added at 0 dB re. speech"}
                    info["noise_level_db"][fref.label] = cal["level_db"]
                    if not cal.get("criterion_met", True):
                        log(f"[{mref.label}] warning: no calibration level made the masked speech "
                            f"unrecognisable; using the loudest, {cal['level_db']} dB")
                    log(f"[{mref.label}] {fref.label} noise level {cal['level_db']:+g} dB re. speech RMS "
                        f"(accuracy by level: {cal.get('accuracy_by_level')})")
                    for meth in suite.methods_for(mref):
                        method = cache.instance("method", meth)
                        thresholds = thresholds_for(suite, method.map_kind)
                        for utt, targets in work:
                            for target in targets:
                                for seed in suite.seeds:
                                    fields = {"model": mref.to_dict(), "model_id": model.describe(),
                                              "method": meth.to_dict(), "method_id": method.describe(),
                                              "fill": fref.to_dict(), "fill_id": fill.describe(),
                                              "utterance": utt.id, "target": target.key, "seed": seed,
                                              "thresholds": thresholds, "level_db": cal["level_db"],
                                              "cfg": cfg.to_dict()}
                                    if "ssbm" in suite.boards and model.has(Capability.TRANSCRIBE):
                                        key = keyed(fields)
                                        jobs.append(SsbmJob(key, suite.corpus, mref, meth, fref, utt.id, target,
                                                            seed, thresholds, float(cal["level_db"]), cfg))
                                    if "deletion" in suite.boards:
                                        dfields = {**fields, "board": "deletion", "thresholds": None,
                                                   "fractions": list(suite.deletion_fractions)}
                                        key = keyed(dfields)
                                        jobs.append(DeletionJob(key, suite.corpus, mref, meth, fref, utt.id, target,
                                                                seed, suite.deletion_fractions,
                                                                float(cal["level_db"]), cfg))
            if suite.isa is not None and "isa" in suite.boards:
                jobs.extend(plan_isa_jobs(suite, registry, cache, log, keyed))
            if suite.stability is not None and "stability" in suite.boards:
                jobs.extend(plan_stability_jobs(suite, registry, cache, log, keyed))
            summary.planned = len(jobs)
            store.record_plan(run_id, [j.key for j in jobs] + plan_extra)
            todo = [j for j in jobs if j.key not in finished]
            summary.cached = summary.planned - len(todo)
            log(f"{summary.planned} cells planned, {summary.cached} already in {db_path}, {len(todo)} to compute")
            fields_of = {j.key: fields_of[j.key] for j in todo if j.key in fields_of}
            if todo:
                summary.recomputed = recompute_reasons(suite.name, todo, {j.key for j in jobs}, fields_of,
                                                       store.suite_cells(suite.name), versions, unfinished)
                for line in reason_lines(summary.recomputed):
                    log(f"  {line.replace('computed', 'to compute', 1)}")
            # what preparing the models (clean transcripts, calibration) asked them
            stored_outputs += store.put_model_outputs(absorb(cache.model_outputs.drain()))

            executor = registry.create("executor", suite.executor.name, **suite.executor.params)
            work = functools.partial(run_cell_caching, settings)
            bar = _progress(len(todo), f"ssbm {suite.name}", progress and len(todo) > 0)
            try:
                for done in executor.run(todo, work, local_state={"ssbm_bench": cache}):
                    res = done.result
                    if isinstance(res.job, IsaJob):
                        _store_isa(store, suite, res, versions)
                    elif isinstance(res.job, StabilityJob):
                        _store_stability(store, suite, res, versions)
                    elif isinstance(res.job, DeletionJob):
                        _store_deletion(store, suite, corpus_digest, res, versions)
                    else:
                        _store_result(store, suite, corpus_digest, res, versions)
                    key_fields = fields_of.pop(res.job.key, None)
                    stored_outputs += store.put_cell_extras(
                        [(res.job.key, key_fields)] if key_fields is not None else [],
                        absorb(done.model_outputs))
                    summary.computed += 1
                    summary.decodes += res.decodes
                    summary.skipped += res.status == "skipped"
                    summary.errors += res.status == "error"
                    if res.status == "error":
                        where = (f"isa family {res.job.family}" if isinstance(res.job, IsaJob)
                                 else f"{res.job.utterance} / {res.job.target.key}")
                        if isinstance(res.job, StabilityJob):
                            where += f" / {res.job.fill.label} / N_s={res.job.n_samples}"
                        log(f"error in cell {res.job.method.label} / {where}: "
                            f"{res.reason.splitlines()[0] if res.reason else ''}")
                    bar.update(1)
            finally:
                bar.close()
                executor.close()
        except BaseException as exc:
            summary.seconds = time.perf_counter() - t_start
            _cache_summary(summary, cache_stats, suite.model_cache, stored_outputs, notes)
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.finish_run(run_id, status, {**summary.to_dict(), "error": repr(exc)})
            raise
        stored_outputs += store.put_model_outputs(absorb(cache.model_outputs.drain()))
        summary.seconds = time.perf_counter() - t_start
        _cache_summary(summary, cache_stats, suite.model_cache, stored_outputs, notes)
        store.finish_run(run_id, "finished", summary.to_dict())
    return summary


def _cache_summary(summary: RunSummary, stats: dict, enabled: bool, stored: int, notes: set[str]) -> None:
    summary.model_cache = {**summarise(stats, enabled), "stored": stored}
    if notes:
        summary.model_cache["notes"] = sorted(notes)
    summary.model_calls = summary.model_cache["evaluated"]


def run_cell_caching(settings: ModelCacheSettings, job, worker_state: dict) -> Finished:
    """The executors' work function: run the cell (run_cell) with the worker's
    model-output cache set up, and hand back what the cache learnt with the
    result, for the writer to store."""
    cache = cache_from(worker_state)
    cache.configure_model_cache(settings)
    result = run_cell(job, worker_state)
    return Finished(result, cache.model_outputs.drain())


def run_cell(job, worker_state: dict) -> CellResult:
    """The executors' work function: an SSBM or a deletion cell. Anything a
    cell raises becomes that cell's stored error, never the end of the run."""
    t0 = time.perf_counter()
    try:
        if isinstance(job, IsaJob):
            return run_isa_cell(job, worker_state)
        if isinstance(job, StabilityJob):
            return run_stability_cell(job, worker_state)
        if isinstance(job, DeletionJob):
            return run_deletion_cell(job, worker_state)
        return run_ssbm_cell(job, worker_state)
    except Exception as exc:  # a plugin failing outside the guarded calls
        import traceback

        return CellResult(job, "error", f"cell {job.method.label} / {job.utterance} / {job.target.key} raised "
                                        f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
                          seconds=time.perf_counter() - t0)


def _store_ssbm_skips(store: ResultStore, suite: Suite, corpus_digest: str, mref: PluginRef, model, finished: set,
                      versions: dict) -> list[str]:
    """SSBM scores word accuracy: a model that cannot transcribe gets one
    skipped row per method and fill, with the reason, so the board says why.
    Returns the keys of these rows (part of the run's plan)."""
    keys = []
    for meth in suite.methods_for(mref):
        for fref in suite.fills:
            key = cell_key(suite, corpus_digest, {"board": "ssbm", "skip": "cannot transcribe",
                                                  "model": mref.to_dict(), "model_id": model.describe(),
                                                  "method": meth.to_dict(), "fill": fref.to_dict()})
            keys.append(key)
            if key in finished:
                continue
            store.put_cell(CellRow(
                key=key, board="ssbm", suite=suite.name, suite_digest=suite.digest, corpus=suite.corpus.label,
                corpus_digest=corpus_digest, model=mref.label, method=meth.label, fill=fref.label, utterance="*",
                target="*", seed=0, status="skipped",
                reason=f"SSBM scores word accuracy, and model {model.name!r} cannot transcribe "
                       f"(capabilities: {', '.join(sorted(str(c) for c in model.capabilities))})",
                result=None, raw=None, params={"model": mref.params, "method": meth.params, "fill": fref.params},
                versions=versions))
    return keys


def _store_stability(store: ResultStore, suite: Suite, res, versions: dict) -> None:
    job = res.job
    store.put_cell(CellRow(
        key=job.key, board="stability", suite=suite.name, suite_digest=suite.digest, corpus=job.corpus.label,
        corpus_digest=job.extra.get("corpus_digest", ""), model=job.model.label, method=job.method.label,
        fill=job.fill.label, utterance=job.utterance, target=job.target.key, seed=0, status=res.status,
        reason=res.reason, result=None, raw=res.raw,
        params={"method": job.method.params, "n_samples": job.n_samples, "runs": job.runs,
                "reference_fill": suite.stability.reference_fill, "cfg": job.cfg.to_dict()},
        versions=versions, seconds=res.seconds,
    ))


def _store_isa(store: ResultStore, suite: Suite, res, versions: dict) -> None:
    """One ISA row per (family, method): model = the family, utterance = '*' (all test inputs)."""
    job = res.job
    store.put_cell(CellRow(
        key=job.key, board="isa", suite=suite.name, suite_digest=suite.digest, corpus=job.corpus.label,
        corpus_digest=job.extra.get("corpus_digest", ""), model=f"family:{job.family}", method=job.method.label,
        fill="-", utterance="*", target="gold class", seed=job.seed, status=res.status, reason=res.reason,
        result=None, raw=res.raw,
        params={"method": job.method.params, "p": job.p, "members": [m for m, _ in job.members],
                "inputs": len(job.inputs), "model": job.model, "agreement": job.extra.get("agreement"),
                "task_kind": job.extra.get("task_kind"), "cfg": job.cfg.to_dict()},
        versions=versions, seconds=res.seconds,
    ))


def _store_deletion(store: ResultStore, suite: Suite, corpus_digest: str, res: CellResult, versions: dict) -> None:
    job = res.job
    store.put_cell(CellRow(
        key=job.key, board="deletion", suite=suite.name, suite_digest=suite.digest, corpus=suite.corpus.label,
        corpus_digest=corpus_digest, model=job.model.label, method=job.method.label, fill=job.fill.label,
        utterance=job.utterance, target=job.target.key, seed=job.seed, status=res.status, reason=res.reason,
        result=None, raw=res.raw,
        params={"model": job.model.params, "method": job.method.params, "fill": job.fill.params,
                "fractions": list(job.fractions), "level_db": job.level_db, "cfg": job.cfg.to_dict()},
        versions=versions, seconds=res.seconds,
    ))


def _store_result(store: ResultStore, suite: Suite, corpus_digest: str, res: CellResult, versions: dict) -> None:
    job = res.job
    store.put_cell(CellRow(
        key=job.key, board="ssbm", suite=suite.name, suite_digest=suite.digest, corpus=suite.corpus.label,
        corpus_digest=corpus_digest, model=job.model.label, method=job.method.label, fill=job.fill.label,
        utterance=job.utterance, target=job.target.key, seed=job.seed, status=res.status, reason=res.reason,
        result=None, raw=res.raw,
        params={"model": job.model.params, "method": job.method.params, "fill": job.fill.params,
                "thresholds": list(job.thresholds), "level_db": job.level_db, "cfg": job.cfg.to_dict(),
                # a scoring setting, not part of the cell key: changing it re-scores without decoding
                "denominator_floor": suite.ssbm.denominator_floor},
        versions=versions, seconds=res.seconds,
    ))
