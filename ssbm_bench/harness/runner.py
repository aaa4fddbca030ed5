"""Run a suite: validate, prepare each model, plan the cells, execute the
ones not yet in the store, and write each as it finishes.

Resume is by key: a cell's key is a digest of everything that determines
its raw outcome (corpus content, utterance, target, seed, model, method and
fill with their parameters and versions, thresholds, noise level, STFT), so
an unchanged rerun finds every key and computes nothing.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import __version__
from ..audio import StftConfig
from ..errors import SsbmBenchError
from ..metrics.ssbm import default_thresholds
from ..plugins import PluginRegistry, get_registry
from ..types import Target, Utterance
from .prepare import calibrate_noise, model_key, select_eligible
from .ssbm_cell import CellResult, SsbmJob, run_ssbm_cell
from .store import CellRow, ResultStore
from .suite import PluginRef, Suite
from .worker import WorkerCache

PROTOCOL_VERSION = "ssbm-1"


@dataclass
class RunSummary:
    suite: str
    planned: int = 0
    cached: int = 0
    computed: int = 0
    skipped: int = 0
    errors: int = 0
    decodes: int = 0
    seconds: float = 0.0
    models: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


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


def cell_key(suite: Suite, corpus_digest: str, job_fields: dict) -> str:
    blob = json.dumps({"protocol": PROTOCOL_VERSION, "suite": suite.name, "corpus": corpus_digest, **job_fields},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


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
    for kind, refs in (("corpus", [suite.corpus]), ("model", suite.models), ("method", suite.methods),
                       ("fill", suite.fills), ("executor", [suite.executor])):
        for r in refs:
            versions["plugins"][f"{kind}:{r.name}"] = registry.version_of(kind, r.name)

    with ResultStore(db_path) as store:
        run_id = store.start_run(suite.name, suite.digest, suite.path, versions)
        cache.artifacts = store
        finished = store.finished_keys()
        jobs: list[SsbmJob] = []
        try:
            for mref in suite.models:
                model = cache.instance("model", mref)
                mkey = model_key(mref, model)
                log(f"[{mref.label}] selecting fully recognised utterances ...")
                elig = select_eligible(model, mkey, utterances, corpus_digest, store, suite.utterance_limit,
                                       on_decode=lambda n: setattr(summary, "decodes", summary.decodes + n))
                info = {"eligible": [u.id for u in elig.eligible], "scanned": elig.scanned,
                        "dropped": len(elig.dropped), "clean_word_accuracy": elig.clean_word_accuracy,
                        "noise_level_db": {}}
                summary.models[mref.label] = info
                log(f"[{mref.label}] {len(elig.eligible)} of {elig.scanned} scanned utterances recognised fully "
                    f"(dropped {len(elig.dropped)}; clean word accuracy {elig.clean_word_accuracy:.1%})")
                if not elig.eligible:
                    log(f"[{mref.label}] no utterance is recognised fully: no SSBM cells for this model")
                    continue
                for fref in suite.fills:
                    fill = cache.instance("fill", fref)
                    cal = calibrate_noise(model, mkey, fill, fref.label, elig.eligible, corpus_digest, store,
                                          suite.ssbm.calibration, cfg)
                    info["noise_level_db"][fref.label] = cal["level_db"]
                    if not cal.get("criterion_met", True):
                        log(f"[{mref.label}] warning: no calibration level made the masked speech "
                            f"unrecognisable; using the loudest, {cal['level_db']} dB")
                    log(f"[{mref.label}] {fref.label} noise level {cal['level_db']:+g} dB re. speech RMS "
                        f"(accuracy by level: {cal.get('accuracy_by_level')})")
                    for meth in suite.methods:
                        method = cache.instance("method", meth)
                        thresholds = thresholds_for(suite, method.map_kind)
                        for utt in elig.eligible:
                            for target in choose_targets(utt, suite.words_per_utterance):
                                for seed in suite.seeds:
                                    fields = {"model": mref.to_dict(), "model_id": model.describe(),
                                              "method": meth.to_dict(), "method_id": method.describe(),
                                              "fill": fref.to_dict(), "fill_id": fill.describe(),
                                              "utterance": utt.id, "target": target.key, "seed": seed,
                                              "thresholds": thresholds, "level_db": cal["level_db"],
                                              "cfg": cfg.to_dict()}
                                    key = cell_key(suite, corpus_digest, fields)
                                    jobs.append(SsbmJob(key, suite.corpus, mref, meth, fref, utt.id, target, seed,
                                                        thresholds, float(cal["level_db"]), cfg))
            summary.planned = len(jobs)
            todo = [j for j in jobs if j.key not in finished]
            summary.cached = summary.planned - len(todo)
            log(f"{summary.planned} cells planned, {summary.cached} already in {db_path}, {len(todo)} to compute")

            executor = registry.create("executor", suite.executor.name, **suite.executor.params)
            bar = _progress(len(todo), f"ssbm {suite.name}", progress and len(todo) > 0)
            try:
                for res in executor.run(todo, run_ssbm_cell, local_state={"ssbm_bench": cache}):
                    _store_result(store, suite, corpus_digest, res, versions)
                    summary.computed += 1
                    summary.decodes += res.decodes
                    summary.skipped += res.status == "skipped"
                    summary.errors += res.status == "error"
                    if res.status == "error":
                        log(f"error in cell {res.job.method.label} / {res.job.utterance} / "
                            f"{res.job.target.key}: {res.reason.splitlines()[0] if res.reason else ''}")
                    bar.update(1)
            finally:
                bar.close()
                executor.close()
        except BaseException as exc:
            summary.seconds = time.perf_counter() - t_start
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.finish_run(run_id, status, {**summary.to_dict(), "error": repr(exc)})
            raise
        summary.seconds = time.perf_counter() - t_start
        store.finish_run(run_id, "finished", summary.to_dict())
    return summary


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
