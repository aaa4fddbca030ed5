"""Run a suite: open the store, plan every board's cells, compute the ones not yet stored, write each as it finishes.

Each step reads in one place: :func:`open_corpus` (the suite's [corpus]),
:func:`versions_record`, :func:`plan_cells` (every listed board plans through
``Board.plan``), :func:`execute` (the executor runs the cells; this process,
the one writer, stores each with what the model-output cache learnt).

Resume is by key (harness.plan): an unchanged rerun finds every key and
computes nothing; a rerun that computes cells says why (harness.recompute).
Every model a cell uses goes through the model-output cache
(ssbm_bench.model_cache): the same input is evaluated once, across methods,
fills, cells and reruns. Workers never write the store: each cell's new
cache entries travel back with its result.
"""

from __future__ import annotations

import functools
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..board import CellJob, CellResult
from ..errors import SsbmBenchError
from ..executor import JobFailed, call_with_timeout
from ..model_cache import ModelCacheSettings, merge_stats, summarise
from ..plugins import PluginRegistry, get_registry
from .plan import PlanContext, cell_row
from .preflight import plugin_refs, preflight
from .recompute import reason_lines, recompute_reasons, unfinished_run
from .store import ResultStore
from .suite import PluginRef, Suite
from .worker import WorkerCache, cache_from


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
    #: the cells that ended in an error: [{"board", "cell", "reason"}]
    failed: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Finished:
    """What a worker hands back for one cell: its result and what the model-output cache learnt."""

    result: Any
    model_outputs: dict


def plugins_used(suite: Suite, registry: PluginRegistry | None = None) -> list[tuple[str, str]]:
    """(kind, name) of every plugin the suite's boards use, for the versions record of its cells
    (harness.preflight.plugin_refs: the grid's, each listed board's own, the executor)."""
    return list(dict.fromkeys((kind, ref.name) for kind, ref in plugin_refs(suite, registry or get_registry())))


def validate_names(suite: Suite, registry: PluginRegistry, worker: WorkerCache | None = None) -> None:
    """Fail before any work if a suite names a plugin nothing registered, a parameter it does not take, or a
    value a method, fill or executor refuses (harness.preflight)."""
    preflight(suite, registry, worker)


def versions_record(suite: Suite, registry: PluginRegistry) -> dict:
    versions = {"ssbm-bench": __version__, "plugins": {}}
    for kind, name in plugins_used(suite, registry):
        versions["plugins"][f"{kind}:{name}"] = registry.version_of(kind, name)
    return versions


def open_corpus(suite: Suite, cache: WorkerCache) -> tuple[str, list]:
    """The suite's [corpus]: its digest (part of every key) and its utterances (those it names, in order)."""
    corpus = cache.instance("corpus", suite.corpus)
    utterances = list(corpus.utterances())
    if suite.utterance_ids:
        by_id = {u.id: u for u in utterances}
        unknown = [i for i in suite.utterance_ids if i not in by_id]
        if unknown:
            raise SsbmBenchError(f"suite {suite.name!r}: corpus {suite.corpus.name!r} has no utterance(s) "
                                 f"{', '.join(unknown)}")
        utterances = [by_id[i] for i in suite.utterance_ids]
    return corpus.digest(), utterances


def plan_cells(ctx: PlanContext) -> list[CellJob]:
    """Every listed board's cells, in page order of the boards, then by grid point (the cells of one
    explanation on different boards next to each other, so a worker computes its map once)."""
    jobs: list[CellJob] = []
    for board in ctx.registry.boards():
        if board.name in ctx.suite.boards:
            jobs.extend(board.plan(ctx.suite.settings.get(board.name), ctx))
    jobs.sort(key=lambda j: j.order or (float("inf"),))
    return jobs


def _progress(total: int, desc: str, enabled: bool):
    from ..progress import progress_bar

    bar = progress_bar(total, desc, "cell", enabled)
    bar.leave = True  # the cells' bar stays: it is the run's last word on its work
    return bar


def fields_summary(fields: dict) -> str:
    """A cell named from its key fields (board, model, method, fill, utterance, target, seed, where present)."""
    parts = [str(fields["board"])] if "board" in fields else []
    for k in ("model", "family", "method", "fill", "utterance", "target", "seed", "n_samples"):
        v = fields.get(k)
        if isinstance(v, dict) and "name" in v:
            v = PluginRef(v["name"], v.get("params", {})).label
        if v is not None:
            parts.append(f"{k} {v}")
    return ", ".join(parts)


def describe_cell(job: CellJob) -> str:
    c = job.cell
    parts = [job.board, c.model, c.method, c.fill, c.utterance, c.target]
    if c.variant is not None:
        parts.append(str(c.variant))
    return " / ".join(str(p) for p in parts if p not in ("", "-", "*"))


class _CacheLedger:
    """What the model-output cache learnt during the run, merged from every worker's drain."""

    def __init__(self):
        self.stats: dict = {}
        self.notes: set[str] = set()
        self.stored = 0

    def absorb(self, drained: dict) -> list:
        merge_stats(self.stats, drained["stats"])
        if drained.get("note"):
            self.notes.add(drained["note"])
        return drained["entries"]

    def summarise(self, summary: RunSummary, enabled: bool) -> None:
        summary.model_cache = {**summarise(self.stats, enabled), "stored": self.stored}
        if self.notes:
            summary.model_cache["notes"] = sorted(self.notes)
        summary.model_calls = summary.model_cache["evaluated"]


def execute(ctx: PlanContext, todo: list[CellJob], settings: ModelCacheSettings, ledger: _CacheLedger,
            progress: bool) -> None:
    """Run the cells on the suite's executor; store each as it finishes (one transaction with its key fields
    and model outputs)."""
    suite, store, summary, log = ctx.suite, ctx.store, ctx.summary, ctx.log
    executor = ctx.registry.create("executor", suite.executor.name, **suite.executor.params)
    executor.cell_timeout = suite.cell_timeout
    work = functools.partial(run_cell_caching, settings, suite.cell_timeout)
    bar = _progress(len(todo), f"cells {suite.name}", progress and len(todo) > 0)
    try:
        for done in executor.run(todo, work, local_state={"ssbm_bench": ctx.worker}):
            if isinstance(done, JobFailed):  # its worker died or it ran out of time: the cell's error
                done = Finished(CellResult(done.job, "error", f"cell {describe_cell(done.job)}: {done.reason}"),
                                {"stats": {}, "entries": []})
            res = done.result
            job = res.job
            store.put_cell(cell_row(suite, job.key, job.board, job.cell, res.status, res.reason, res.raw, job.params,
                                    ctx.versions, res.seconds))
            # the cell's key fields were stored before any cell ran; what its model learnt goes with it
            ledger.stored += store.put_cell_extras([], ledger.absorb(done.model_outputs))
            summary.computed += 1
            summary.decodes += res.decodes
            summary.skipped += res.status == "skipped"
            summary.errors += res.status == "error"
            if res.status == "error":
                first = res.reason.splitlines()[0] if res.reason else ""
                summary.failed.append({"board": res.job.board, "cell": describe_cell(res.job), "reason": first})
                log(f"error in cell {describe_cell(res.job)}: {first}")
            bar.update(1)
    finally:
        bar.close()
        executor.close()


def run_suite(suite: Suite, db_path: str, registry: PluginRegistry | None = None, progress: bool = True,
              log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> RunSummary:
    registry = registry or get_registry()
    cache = WorkerCache(registry)
    validate_names(suite, registry, cache)
    t_start = time.perf_counter()
    summary = RunSummary(suite=suite.name)
    corpus_digest, utterances = open_corpus(suite, cache)
    versions = versions_record(suite, registry)

    with ResultStore(db_path) as store:
        for killed, fields in store.mark_killed_runs():
            log(f"run {killed} in {db_path} was killed before it finished (its finished cells are kept)"
                + (f"; the cell it was computing: {fields_summary(fields)}" if fields else ""))
        unfinished = unfinished_run(store.runs(), suite.name, suite.digest)
        run_id = store.start_run(suite.name, suite.digest, suite.path, versions)
        cache.artifacts = store
        # this process reads and writes the store; executor workers elsewhere read it read-only
        settings = ModelCacheSettings(enabled=suite.model_cache,
                                      store_path=None if db_path == ":memory:" else str(Path(db_path).resolve()))
        cache.configure_model_cache(settings, backend=store if suite.model_cache else None)
        ledger = _CacheLedger()
        ctx = PlanContext(suite=suite, registry=registry, worker=cache, store=store, summary=summary,
                          corpus_digest=corpus_digest, utterances=utterances, versions=versions,
                          finished=store.finished_keys(), log=log, progress=progress)
        try:
            jobs = plan_cells(ctx)
            summary.planned = len(jobs)
            store.record_plan(run_id, [j.key for j in jobs] + ctx.stored_keys)
            todo = [j for j in jobs if j.key not in ctx.finished]
            summary.cached = summary.planned - len(todo)
            log(f"{summary.planned} cells planned, {summary.cached} already in {db_path}, {len(todo)} to compute")
            ctx.fields_of = {j.key: ctx.fields_of[j.key] for j in todo if j.key in ctx.fields_of}
            # every cell's key fields before any is computed: a crash mid-cell leaves its identity behind
            store.put_cell_extras(list(ctx.fields_of.items()), [])
            if todo:
                boards = {b.name: b for b in registry.boards()}
                summary.recomputed = recompute_reasons(suite.name, todo, {j.key for j in jobs}, ctx.fields_of,
                                                       store.suite_cells(suite.name), versions, unfinished, boards)
                for line in reason_lines(summary.recomputed):
                    log(f"  {line.replace('computed', 'to compute', 1)}")
            # what preparing the models (clean transcripts, calibration) asked them
            ledger.stored += store.put_model_outputs(ledger.absorb(cache.model_outputs.drain()))
            execute(ctx, todo, settings, ledger, progress)
        except BaseException as exc:
            summary.seconds = time.perf_counter() - t_start
            ledger.summarise(summary, suite.model_cache)
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.finish_run(run_id, status, {**summary.to_dict(), "error": repr(exc)})
            raise
        ledger.stored += store.put_model_outputs(ledger.absorb(cache.model_outputs.drain()))
        summary.seconds = time.perf_counter() - t_start
        ledger.summarise(summary, suite.model_cache)
        store.finish_run(run_id, "finished", summary.to_dict())
    return summary


def run_cell_caching(settings: ModelCacheSettings, timeout: float | None, job: CellJob, worker_state: dict
                     ) -> Finished:
    """The executors' work function: run the cell (run_cell, within `timeout` seconds) with the worker's
    model-output cache set up, and hand back what the cache learnt with the result, for the writer to store."""
    cache = cache_from(worker_state)
    cache.configure_model_cache(settings)
    result = run_cell(job, worker_state, timeout)
    return Finished(result, cache.model_outputs.drain())


def run_cell(job: CellJob, worker_state: dict, timeout: float | None = None) -> CellResult:
    """Compute one cell through its board, within `timeout` seconds. Anything a board or plugin raises (a
    timeout included) becomes that cell's stored error, naming the board and the cell, never the end of the run."""
    t0 = time.perf_counter()
    cache = cache_from(worker_state)
    try:
        return call_with_timeout(lambda: cache.registry.board(job.board).compute(job, cache), timeout)
    except Exception as exc:  # a plugin failing outside the guarded calls
        return CellResult(job, "error", f"cell {describe_cell(job)} raised {type(exc).__name__}: {exc}\n"
                                        f"{traceback.format_exc(limit=5)}", seconds=time.perf_counter() - t0)
