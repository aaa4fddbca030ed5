"""One stability cell: a component method explaining one ground-truth excerpt k times, with one fill and one N_s.

The cell stores every run's component weights, so U_n, N_ce and the
ground-truth match are recomputed by the board (``stability``) from stored
numbers, for any reference fill. Planning (which excerpts the model
detects) and rebuilding a submitted cell for ``--verify`` live here too.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch

from ssbm_bench.audio import StftConfig, stft
from ssbm_bench.board import CellIdentity, CellJob, CellResult
from ssbm_bench.errors import SsbmBenchError
from ssbm_bench.harness.grid import parse_target
from ssbm_bench.harness.suite import PluginRef
from ssbm_bench.method import ExplainRequest
from ssbm_bench.types import Target


@dataclass(frozen=True)
class StabilityJob:
    """A stability cell's spec: the excerpt, the fill, N_s and the number of runs."""

    model: PluginRef
    method: PluginRef  # without n_samples; the cell sets it
    fill: PluginRef
    corpus: PluginRef
    utterance: str
    target: Target
    n_samples: int
    runs: int = 5
    cfg: StftConfig = StftConfig()
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def stored_params(job: StabilityJob, st) -> dict:
    return {"method": job.method.params, "n_samples": job.n_samples, "runs": job.runs,
            "reference_fill": st.reference_fill, "cfg": job.cfg.to_dict()}


def run_stability_cell(cjob, cache) -> CellResult:
    """Explain the excerpt `runs` times (explainer seeds 0..runs-1) with the fill; keep every run's weights."""
    t0 = time.perf_counter()
    job = cjob.spec
    try:
        model = cache.instance("model", job.model)
        method = cache.instance("method", PluginRef(job.method.name, {**job.method.params, "n_samples": job.n_samples}))
        missing = sorted(str(c) for c in method.requires if not model.has(c))
        if missing:
            return CellResult(cjob, "skipped", f"method {job.method.label!r} needs {', '.join(missing)}; model "
                                   f"{job.model.label!r} lacks it", seconds=time.perf_counter() - t0)
        fill = cache.fill(job.fill, job.corpus, job.cfg)
        utt = cache.utterance(job.corpus, job.utterance)
        clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), job.cfg).abs().numpy().astype(np.float64)
        runs = []
        for seed in range(job.runs):
            request = ExplainRequest(model=model, utterance=utt, target=job.target, cfg=job.cfg, seed=seed, fill=fill,
                                     clean_magnitude=clean, params=job.method.params, noise_level_db=0.0)
            smap = method.explain(request)
            weights = smap.params.get("weights")
            if weights is None:
                raise SsbmBenchError(f"method {job.method.label!r} returned no component 'weights': the stability "
                                     f"board needs a component method (soundlime-temporal, -spectral, -tf)")
            w = np.asarray(weights, dtype=np.float64).ravel()
            if not np.all(np.isfinite(w)):
                raise SsbmBenchError(f"method {job.method.label!r} gave NaN or infinite weights for {utt.id!r}, "
                                     f"seed {seed}")
            runs.append(w.tolist())
        raw = {"weights": runs, "n_samples": job.n_samples, "speech_segments": utt.labels.get("speech_segments"),
               "p_speech": job.extra.get("p_speech")}
    except SsbmBenchError as exc:
        return CellResult(cjob, "error", str(exc), seconds=time.perf_counter() - t0)
    except Exception:
        return CellResult(cjob, "error", traceback.format_exc(limit=8), seconds=time.perf_counter() - t0)
    return CellResult(cjob, "ok", raw=raw, seconds=time.perf_counter() - t0)


def plan_stability(st, ctx) -> list:
    """True-positive ground-truth excerpts x fills x N_s, one job each."""
    cache, log = ctx.worker, ctx.log
    model = cache.instance("model", st.model)
    if st.target not in model.labels:
        raise SsbmBenchError(f"stability: model {st.model.label!r} has classes {list(model.labels)}, not the "
                             f"target class {st.target!r}")
    target = Target("class", list(model.labels).index(st.target), st.target)
    corpus = cache.instance("corpus", st.corpus)
    utts = list(corpus.utterances())
    probs = model.classify([u.waveform for u in utts])[:, target.index]
    detected = [(u, float(p)) for u, p in zip(utts, probs) if p >= st.min_probability]
    kept = detected[: st.excerpts]
    log(f"[stability] {len(detected)} of {len(utts)} excerpts detected as {st.target} (P >= {st.min_probability}); "
        f"using {len(kept)}")
    if not kept:
        raise SsbmBenchError(f"stability: model {st.model.label!r} detects {st.target!r} (P >= {st.min_probability}) "
                             f"in none of the {len(utts)} excerpts of corpus {st.corpus.label!r}")
    jobs = []
    for fref in st.fills:
        for n_s in st.n_samples:
            for u, p in kept:
                fields = {"board": "stability", "model": st.model.to_dict(), "model_id": model.describe(),
                          "method": st.method.to_dict(), "fill": fref.to_dict(), "corpus": st.corpus.to_dict(),
                          "corpus_digest": corpus.digest(), "utterance": u.id, "n_samples": n_s, "runs": st.runs}
                spec = StabilityJob(st.model, st.method, fref, st.corpus, u.id, target, n_s, st.runs, StftConfig(),
                                    {"p_speech": p, "corpus_digest": corpus.digest()})
                jobs.append(ctx.job("stability", fields, CellIdentity(st.corpus.label, corpus.digest(), st.model.label,
                                                                      st.method.label, fref.label, u.id, target.key, 0,
                                                                      n_s), stored_params(spec, st), spec))
    return jobs


def rebuild_stability_job(c: dict, st, cache) -> CellJob:
    """The job of a submitted stability cell, with P(speech) of its excerpt computed here."""
    fill = {f.label: f for f in st.fills}[c["fill"]]
    p = c["params"]
    target = parse_target(c["target"])
    model = cache.instance("model", st.model)
    utt = cache.utterance(st.corpus, c["utterance"])
    p_speech = float(model.classify([utt.waveform])[0, target.index])
    spec = StabilityJob(st.model, st.method, fill, st.corpus, c["utterance"], target, int(p["n_samples"]),
                        int(p["runs"]), StftConfig(**p["cfg"]), {"p_speech": p_speech})
    return CellJob(c["key"], "stability", CellIdentity(st.corpus.label, "", st.model.label, st.method.label,
                                                       fill.label, c["utterance"], target.key, 0, spec.n_samples),
                   p, spec)
