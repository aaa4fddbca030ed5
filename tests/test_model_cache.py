"""The model-output cache (ssbm_bench.model_cache) and what a rerun says.

Known-answer tests use `CountingModel`, a narrow fake: the point of the
cache is how many inputs reach the model, and only a fake lets a test count
them exactly (and give each input a known answer). The end-to-end tests run
the real CLI on pocketsphinx and one synthetic utterance.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3

import numpy as np
import pytest
import torch

from ssbm_bench.errors import InputError, SuiteError
from ssbm_bench.harness.store import comparable_raw
from ssbm_bench.harness.recompute import reason_lines, recompute_reasons
from ssbm_bench.harness.store import ResultStore
from ssbm_bench.model_outputs_table import ReadOnlyStore
from ssbm_bench.harness.suite import parse_suite
from ssbm_bench.model import Capability, ForcedTranscript, SpeechModel
from ssbm_bench.model_cache import CachedModel, ModelCacheSettings, ModelOutputCache, summarise, unwrap


class CountingModel(SpeechModel):
    """Answers are simple functions of the input; every input it sees is recorded in `seen`."""

    name = "counting"
    labels = ("low", "high")
    capabilities = frozenset({Capability.TRANSCRIBE, Capability.CLASSIFY, Capability.SCORE_TOKENS,
                              Capability.DIFFERENTIABLE})

    def __init__(self, weights: str = "w1"):
        self.weights = weights
        self.seen: list[float] = []  # first sample of every input evaluated
        self.batches: list[int] = []
        self.logit_calls = 0

    def _record(self, waveforms):
        self.batches.append(len(waveforms))
        self.seen.extend(float(w[0]) for w in waveforms)

    def transcribe(self, waveforms):
        self._record(waveforms)
        return [[f"w{float(w[0]):g}", self.weights] for w in waveforms]

    def classify(self, waveforms):
        self._record(waveforms)
        p = np.array([1.0 / (1.0 + np.exp(-float(np.sum(w)))) for w in waveforms], dtype=np.float32)
        return np.stack([1 - p, p], axis=1)

    def score_tokens(self, waveforms, transcript):
        self._record(waveforms)
        return [np.array([float(w[0]) > i for i in range(len(transcript.token_ids))]) for w in waveforms]

    def class_logits(self, waveform):
        self.logit_calls += 1
        z = waveform.sum()
        return torch.stack([-z, z])

    def describe(self):
        return {"name": self.name, "version": self.version, "weights": self.weights}


def wave(first: float, n: int = 8, dtype=np.float32) -> np.ndarray:
    x = np.linspace(0.0, 0.1, n).astype(dtype)
    x[0] = first
    return x


TRANSCRIPT = ForcedTranscript("a b", (5, 6, 7), (0, 1, None), ("a", "b"))


def cached(model=None, cache=None, ref=None):
    model = model or CountingModel()
    cache = cache or ModelOutputCache()
    return CachedModel(model, cache, ref), model, cache


# --- the wrapper -------------------------------------------------------------------------------------

def test_same_waveform_twice_in_one_batch_is_one_model_input():
    m, inner, cache = cached()
    out = m.transcribe([wave(1.0), wave(1.0)])
    assert out == [["w1", "w1"], ["w1", "w1"]]
    assert inner.seen == [1.0] and inner.batches == [1]
    s = cache.drain()["stats"]
    assert s["requested"] == 2 and s["misses"] == 1 and s["batch_duplicates"] == 1


def test_a_repeated_input_is_answered_from_memory():
    m, inner, cache = cached()
    first = m.classify([wave(0.5), wave(2.0)])
    again = m.classify([wave(2.0), wave(0.5)])
    assert inner.batches == [2]  # the second call reached the model not at all
    assert again.dtype == first.dtype == np.float32
    assert np.array_equal(again, first[::-1])
    assert cache.drain()["stats"]["memory_hits"] == 2


def test_only_the_misses_go_to_the_model_in_one_batch_in_order():
    m, inner, _ = cached()
    m.transcribe([wave(1.0)])
    out = m.transcribe([wave(2.0), wave(1.0), wave(3.0), wave(2.0)])
    assert inner.batches == [1, 2] and inner.seen == [1.0, 2.0, 3.0]
    assert [o[0] for o in out] == ["w2", "w1", "w3", "w2"]


def test_byte_different_waveforms_are_separate_entries():
    m, inner, _ = cached()
    a = wave(1.0)
    b = a.copy()
    b[-1] = np.nextafter(b[-1], np.float32(1.0))  # one ulp in one sample
    m.transcribe([a])
    m.transcribe([b])
    m.transcribe([a.astype(np.float64)])  # the same values in another dtype
    m.transcribe([wave(1.0, n=9)])  # another shape
    assert inner.batches == [1, 1, 1, 1]


def test_a_model_with_another_describe_gets_its_own_entries():
    cache = ModelOutputCache()
    m1, inner1, _ = cached(CountingModel("w1"), cache)
    m2, inner2, _ = cached(CountingModel("w2"), cache)
    assert m1.transcribe([wave(1.0)]) == [["w1", "w1"]]
    assert m2.transcribe([wave(1.0)]) == [["w1", "w2"]]  # not the other model's answer
    assert inner1.batches == [1] and inner2.batches == [1]
    # the same identity shares entries; another plugin reference does not
    m3, inner3, _ = cached(CountingModel("w1"), cache)
    m3.transcribe([wave(1.0)])
    assert inner3.batches == []
    m4, inner4, _ = cached(CountingModel("w1"), cache, ref={"name": "counting", "params": {"beam": 2}})
    m4.transcribe([wave(1.0)])
    assert inner4.batches == [1]


def test_call_kind_and_transcript_are_part_of_the_key():
    m, inner, _ = cached()
    m.transcribe([wave(1.0)])
    m.classify([wave(1.0)])
    flags = m.score_tokens([wave(1.5)], TRANSCRIPT)
    assert [f.tolist() for f in flags] == [[True, True, False]]
    m.score_tokens([wave(1.5)], TRANSCRIPT)
    other = ForcedTranscript("a b c", (5, 6, 7, 8), (0, 1, 2, None), ("a", "b", "c"))
    assert m.score_tokens([wave(1.5)], other)[0].tolist() == [True, True, False, False]
    assert inner.batches == [1, 1, 1, 1]
    assert m.score_tokens([wave(1.5)], TRANSCRIPT)[0].dtype == np.bool_


def test_the_wrapper_is_transparent():
    m, inner, _ = cached()
    assert m.name == inner.name and m.capabilities == inner.capabilities and m.labels == inner.labels
    assert m.describe() == inner.describe() and m.has("classify") and unwrap(m) is inner
    m.weights = "w9"  # attribute writes reach the model
    assert inner.weights == "w9" and m.describe()["weights"] == "w9"
    with pytest.raises(InputError, match="expected a batch"):
        CachedModel(_Strict(), ModelOutputCache()).transcribe(wave(1.0))  # odd input: the model's own error


class _Strict(CountingModel):
    def transcribe(self, waveforms):
        if isinstance(waveforms, np.ndarray):
            raise InputError("strict transcribe: expected a batch (list) of waveforms, got one 1-D array")
        return super().transcribe(waveforms)


def test_differentiable_calls_are_not_cached():
    m, inner, cache = cached()
    x = torch.tensor(wave(1.0), requires_grad=True)
    from ssbm_bench.types import Target

    for _ in range(2):
        score = m.target_score(x, Target("class", 1, "high"))
        score.backward()
    assert inner.logit_calls == 2
    assert torch.allclose(x.grad, torch.full_like(x, 2.0))  # d(sum)/dx, accumulated twice
    assert cache.drain()["stats"]["requested"] == 0 and not cache.memory


def test_a_disabled_cache_evaluates_everything_and_counts_it():
    m, inner, cache = cached(cache=ModelOutputCache(ModelCacheSettings(enabled=False)))
    m.transcribe([wave(1.0), wave(1.0)])
    m.transcribe([wave(1.0)])
    assert inner.batches == [2, 1]
    drained = cache.drain()
    assert drained["entries"] == [] and drained["stats"]["evaluated"] == 3
    assert summarise(drained["stats"], enabled=False)["hit_rate"] is None


def test_a_model_returning_the_wrong_number_of_outputs_is_an_error():
    class Short(CountingModel):
        def transcribe(self, waveforms):
            return [["x"]]

    m, _, _ = cached(Short())
    with pytest.raises(InputError, match="returned 1 outputs for 2 inputs"):
        m.transcribe([wave(1.0), wave(2.0)])


def test_memory_is_bounded():
    m, inner, cache = cached(cache=ModelOutputCache(ModelCacheSettings(memory_entries=2)))
    m.transcribe([wave(1.0), wave(2.0), wave(3.0)])
    assert len(cache.memory) == 2
    m.transcribe([wave(1.0)])  # evicted first
    assert inner.batches == [3, 1]


# --- persistence -------------------------------------------------------------------------------------

def test_outputs_persist_across_a_new_store_connection(tmp_path):
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        m, inner, cache = cached(cache=ModelOutputCache(backend=store))
        first = m.classify([wave(0.5), wave(2.0)])
        tokens = m.score_tokens([wave(2.5)], TRANSCRIPT)
        drained = cache.drain()
        assert len(drained["entries"]) == 3
        assert store.put_model_outputs(drained["entries"]) == 3
        assert store.put_model_outputs(drained["entries"]) == 0  # a key already stored is kept
    with ResultStore(db) as store:
        m2, inner2, cache2 = cached(cache=ModelOutputCache(backend=store))
        again = m2.classify([wave(0.5), wave(2.0)])
        tokens2 = m2.score_tokens([wave(2.5)], TRANSCRIPT)
        assert inner2.batches == []
        assert again.dtype == np.float32 and np.array_equal(again, first)  # the same bits
        assert np.array_equal(tokens2[0], tokens[0])
        assert cache2.drain()["stats"]["store_hits"] == 3


def test_workers_read_the_store_read_only(tmp_path):
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        m, _, cache = cached(cache=ModelOutputCache(backend=store))
        m.transcribe([wave(1.0)])
        store.put_model_outputs(cache.drain()["entries"])
        # a worker in another process: settings only, the store opened read-only on first use
        worker = ModelOutputCache()
        worker.configure(ModelCacheSettings(store_path=str(db)))
        assert isinstance(worker.backend, ReadOnlyStore)
        wm, winner, _ = cached(cache=worker)
        assert wm.transcribe([wave(1.0), wave(4.0)]) == [["w1", "w1"], ["w4", "w1"]]
        assert winner.seen == [4.0]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            worker.backend._conn.execute("DELETE FROM model_outputs")
        drained = worker.drain()
        assert [k for k, _, _ in drained["entries"]] and drained["stats"]["store_hits"] == 1
        # the new entry goes to the writer, which stores it; the worker sees it on its next read
        store.put_model_outputs(drained["entries"])
        other = ModelOutputCache()
        other.configure(ModelCacheSettings(store_path=str(db)))
        om, oinner, _ = cached(cache=other)
        om.transcribe([wave(4.0)])
        assert oinner.seen == []


def test_a_worker_without_the_store_evaluates_and_says_why(tmp_path):
    worker = ModelOutputCache()
    worker.configure(ModelCacheSettings(store_path=str(tmp_path / "elsewhere.sqlite")))
    m, inner, _ = cached(cache=worker)
    m.transcribe([wave(1.0)])
    drained = worker.drain()
    assert inner.seen == [1.0] and len(drained["entries"]) == 1
    assert "not on this machine" in drained["note"]


# --- the suite option ----------------------------------------------------------------------------------

SUITE = {"suite": {"name": "t"}, "corpus": {"name": "synthetic"}, "models": [{"name": "pocketsphinx"}],
         "methods": [{"name": "energy"}]}


def test_suite_model_cache_option():
    assert parse_suite(SUITE).model_cache is True
    assert parse_suite({**SUITE, "run": {"model_cache": False}}).model_cache is False
    with pytest.raises(SuiteError, match=r"run\.model_cache must be true or false .*got 'no'"):
        parse_suite({**SUITE, "run": {"model_cache": "no"}})
    with pytest.raises(SuiteError, match=r"run\.model_cache must be true or false .*got 1"):
        parse_suite({**SUITE, "run": {"model_cache": 1}})


# --- why a rerun computes ------------------------------------------------------------------------------

def _row(**kw):
    base = {"key": "k0", "board": "ssbm", "model": "pocketsphinx", "method": "energy", "fill": "white-noise",
            "utterance": "u1", "target": "word:0:a", "seed": 0, "corpus_digest": "c" * 64, "params": {},
            "versions": {"ssbm-bench": "1"}, "fields": None}
    return {**base, **kw}


def _Job(key, method="energy", model="pocketsphinx", utterance="u1", seed=0):
    """An SSBM cell to compute, as the runner plans it (only its key and identity matter here)."""
    from ssbm_bench.board import CellIdentity, CellJob

    return CellJob(key, "ssbm", CellIdentity("synthetic", "c" * 64, model, method, "white-noise", utterance,
                                             "word:0:a", seed), {}, None)


def test_reasons_for_a_new_method_changed_params_and_corpus():
    fields = {"corpus": "c" * 64, "method": {"name": "energy", "params": {}}, "level_db": -20.0}
    previous = [_row(key="old-energy", fields=fields), _row(key="random", method="random", fields=None)]
    # a method added: old cells still planned
    reasons = recompute_reasons("t", [_Job("new", "lime")], {"old-energy", "random", "new"}, {}, previous)
    assert reason_lines(reasons) == ["computed 1 cell: method lime (new in suite)"]
    # energy's parameters changed: its old cells are no longer planned
    new_fields = {**fields, "method": {"name": "energy", "params": {"n_mels": "40"}}}
    reasons = recompute_reasons("t", [_Job("e40", "energy[n_mels=40]")], {"random", "e40"}, {"e40": new_fields},
                                previous)
    assert reasons == [{"reason": "method energy: params changed (none -> n_mels=40)", "cells": 1}]
    # the corpus changed under the same labels, and the noise level was re-calibrated
    moved = {**fields, "corpus": "d" * 64, "level_db": -10.0}
    reasons = recompute_reasons("t", [_Job("e2")], {"random", "e2"}, {"e2": moved}, previous)
    assert reasons[0]["reason"] == (f"corpus digest changed ({'c' * 12} -> {'d' * 12}); "
                                    f"noise level re-calibrated (-20 -> -10 dB)")
    # a store written before key fields were recorded: the columns say what they can
    reasons = recompute_reasons("t", [_Job("r2", "random")], {"old-energy", "r2"}, {}, previous,
                                versions={"ssbm-bench": "2"})
    assert "versions changed (ssbm-bench: 1 -> 2)" in reasons[0]["reason"]
    # new seeds, new models, and the first run
    assert recompute_reasons("t", [_Job("s1", seed=1)], {"s1"}, {}, previous)[0]["reason"] == "seed 1 (new in suite)"
    assert (recompute_reasons("t", [_Job("m", model="whisper-tiny-en")], {"m"}, {}, previous)[0]["reason"]
            == "model whisper-tiny-en (new in suite)")
    assert "no earlier results" in recompute_reasons("t", [_Job("x")], {"x"}, {}, [])[0]["reason"]


def test_cells_an_unfinished_run_left_are_named_as_its_leftovers():
    from ssbm_bench.harness.recompute import unfinished_run

    runs = [{"run_id": 1, "suite": "t", "suite_digest": "d1", "status": "finished"},
            {"run_id": 2, "suite": "t", "suite_digest": "d2", "status": "running"},  # killed: never finished
            {"run_id": 3, "suite": "other", "suite_digest": "d2", "status": "failed"}]
    assert unfinished_run(runs, "t", "d1") is None  # the run of this digest finished
    why = unfinished_run(runs, "t", "d2")
    assert why == "left over by run 2 of the same suite (killed before it finished)"
    previous = [_row(key="old-energy", fields=None)]
    # the killed run never reached lime: not "new in suite", since the suite is unchanged
    reasons = recompute_reasons("t", [_Job("l", "lime")], {"old-energy", "l"}, {}, previous, unfinished=why)
    assert reason_lines(reasons) == [f"computed 1 cell: {why}"]
    # killed before it stored anything at all
    assert recompute_reasons("t", [_Job("x")], {"x"}, {}, [], unfinished=why)[0]["reason"] == why


# --- end to end: the real CLI on pocketsphinx ------------------------------------------------------------

from e2e_helpers import RECOGNISED, cli, write_suite  # noqa: E402

ONE = RECOGNISED[:1]



def _cache_line(stdout: str) -> tuple[int, int]:
    m = re.search(r"model-output cache: (\d+) hits, (\d+) misses", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2))


def _model_calls(stdout: str) -> int:
    return int(re.search(r"(\d+) model calls", stdout).group(1))


def _count_outputs(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM model_outputs").fetchone()[0]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("model-cache")
    suite = write_suite(d / "mc.toml", "mc", ["energy", "random"], limit=1, utterances=ONE)
    db = d / "first.sqlite"
    out = cli("run", str(suite), "--db", str(db), "--no-progress")
    return d, suite, db, out


def test_first_run_stores_model_outputs(first_run):
    _, _, db, out = first_run
    hits, misses = _cache_line(out.stdout)
    assert misses > 0 and _model_calls(out.stdout) == misses
    assert _count_outputs(db) == misses
    assert "computed 2 cells: no earlier results of suite 'mc' in this store" in out.stdout


def test_identical_rerun_asks_the_model_nothing(first_run, tmp_path):
    _, suite, db, _ = first_run
    copy = shutil.copy(db, tmp_path / "again.sqlite")
    again = cli("run", str(suite), "--db", str(copy), "--no-progress")
    assert "2 found in the store, 0 computed" in again.stdout and "0 model calls" in again.stdout
    assert "0 hits, 0 misses (hit rate n/a, nothing asked)" in again.stdout
    assert "computed" not in again.stdout.split("0 computed", 1)[1]  # no reason lines


def test_rerun_with_a_method_added_hits_the_cache_and_names_the_method(first_run, tmp_path):
    """energy[n_mels=30] is energy with its default spelled out: a new method
    entry (new cells, new keys) whose map, and so every mixture, is identical
    to energy's. Its mixtures come from the cache, not from the model."""
    d, suite, db, _ = first_run
    copy = shutil.copy(db, tmp_path / "added.sqlite")
    added = tmp_path / "added.toml"
    added.write_text(suite.read_text().replace('[[methods]]\nname = "random"',
                                               '[[methods]]\nname = "random"\n[[methods]]\nname = "energy"\n'
                                               'params = { n_mels = 30 }'))
    run = cli("run", str(added), "--db", str(copy), "--no-progress")
    assert "3 cells planned, 2 found in the store, 1 computed" in run.stdout
    assert "computed 1 cell: method energy[n_mels=30] (new in suite)" in run.stdout
    hits, misses = _cache_line(run.stdout)
    assert hits == 4 and misses == 0 and "0 model calls" in run.stdout  # 2 thresholds x LeRF/MoRF
    new_raw = comparable_raw(copy)
    old = comparable_raw(db)
    (new_key,) = set(new_raw) - set(old)
    energy_key = next(k for k, (_, r) in old.items() if r["map"]["params"].get("n_mels") == 30)
    assert new_raw[new_key][1]["thresholds"] == old[energy_key][1]["thresholds"]
    # the --json summary says the same
    again = json.loads(cli("run", str(added), "--db", str(copy), "--no-progress", "--json").stdout)
    assert again["computed"] == 0 and again["model_cache"]["enabled"] is True and again["model_calls"] == 0


def test_process_pool_with_the_cache_gives_identical_results(first_run, tmp_path):
    """Workers compute on a fresh store and send their outputs back to the
    writer; on a store that has the outputs (cells removed) they read them
    read-only and ask the model nothing. Both give the in-process results."""
    _, suite, db, _ = first_run
    pooled = tmp_path / "pooled.toml"
    pooled.write_text(suite.read_text().replace('executor = "inprocess"',
                                                'executor = "process-pool"\nexecutor_params = { workers = 2 }'))
    fresh = tmp_path / "fresh.sqlite"
    run = cli("run", str(pooled), "--db", str(fresh), "--no-progress")
    assert comparable_raw(fresh) == comparable_raw(db)
    assert _count_outputs(fresh) == _count_outputs(db) > 0
    hits, misses = _cache_line(run.stdout)
    assert misses > 0
    warm = tmp_path / "warm.sqlite"
    shutil.copy(db, warm)
    with sqlite3.connect(warm) as conn:
        conn.execute("DELETE FROM cells")
    run = cli("run", str(pooled), "--db", str(warm), "--no-progress")
    assert "2 computed" in run.stdout and "0 model calls" in run.stdout
    hits, misses = _cache_line(run.stdout)
    assert hits == 8 and misses == 0  # 2 cells x 2 thresholds x LeRF/MoRF, all from the store
    assert comparable_raw(warm) == comparable_raw(db)


def test_no_model_cache_evaluates_everything_with_identical_results(first_run, tmp_path):
    _, suite, db, _ = first_run
    cold = tmp_path / "cold.sqlite"
    shutil.copy(db, cold)
    with sqlite3.connect(cold) as conn:
        conn.execute("DELETE FROM cells")
    before = _count_outputs(cold)
    run = cli("run", str(suite), "--db", str(cold), "--no-progress", "--no-model-cache")
    assert "model-output cache: off (8 inputs evaluated by the models)" in run.stdout
    assert _model_calls(run.stdout) == 8
    assert _count_outputs(cold) == before  # nothing read, nothing added
    assert comparable_raw(cold) == comparable_raw(db)


def test_ray_actors_read_cached_outputs_and_give_identical_results(first_run, tmp_path):
    """Ray actors (separate processes) read the store's cached outputs read-only:
    the cells are recomputed without a model call, with the in-process results."""
    pytest.importorskip("ray")
    _, suite, db, _ = first_run
    ray_suite = tmp_path / "ray.toml"
    ray_suite.write_text(suite.read_text().replace('executor = "inprocess"',
                                                   'executor = "ray"\nexecutor_params = { workers = 2 }'))
    warm = tmp_path / "warm.sqlite"
    shutil.copy(db, warm)
    with sqlite3.connect(warm) as conn:
        conn.execute("DELETE FROM cells")
    run = cli("run", str(ray_suite), "--db", str(warm), "--no-progress")
    assert "2 computed (0 skipped, 0 errors)" in run.stdout and "0 model calls" in run.stdout
    assert _cache_line(run.stdout) == (8, 0)
    assert comparable_raw(warm) == comparable_raw(db)


def test_a_cache_nobody_drains_keeps_memory_only():
    """WorkerCache() outside a run (explain, verifying a submission): answers are
    reused, but nothing piles up waiting for a writer that never comes."""
    from ssbm_bench.harness.worker import WorkerCache

    cache = WorkerCache()
    m, inner, _ = cached(cache=cache.model_outputs)
    m.transcribe([wave(1.0)])
    m.transcribe([wave(1.0)])
    assert inner.batches == [1] and cache.model_outputs.pending == {}


def test_the_worker_hands_out_real_models_wrapped_and_unchanged():
    from ssbm_bench.harness.suite import PluginRef
    from ssbm_bench.harness.worker import WorkerCache

    cache = WorkerCache()
    model = cache.instance("model", PluginRef("pocketsphinx"))
    assert isinstance(model, CachedModel) and cache.instance("model", PluginRef("pocketsphinx")) is model
    inner = unwrap(model)
    assert model.describe() == inner.describe() and model.name == inner.name == "pocketsphinx"
    assert model.capabilities == inner.capabilities
    assert not isinstance(cache.instance("method", PluginRef("energy")), CachedModel)
