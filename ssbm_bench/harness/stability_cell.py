"""One stability cell: a SoundLIME-style method explaining one ground-truth
excerpt k times (explainer seeds 0..k-1) with one fill and one N_s.

The SoundLIME paper (references/soundlime-content-types-stability.txt) asks
two questions of an explainer whose answer is its top-3 components: does it
give the same top-3 when only its own seed changes (U_n over k = 5 runs),
and does the content put into occluded components (the fill) change it
(N_ce against the reference fill)? The ground-truth excerpts
(corpus ``vad-ground-truth``: 3 of 10 segments hold speech) add a third:
is the top-3 the speech segments? The model is a speech detector
(silero-vad) and the target its "speech" class.

The cell stores every run's component weights, so U_n, N_ce and the
ground-truth match are recomputed by the board (ssbm_bench.stability_board)
from stored numbers, for any reference fill.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch

from ..audio import StftConfig, stft
from ..errors import SsbmBenchError
from ..method import ExplainRequest
from ..types import Target
from .suite import PluginRef
from .worker import cache_from


@dataclass(frozen=True)
class StabilityJob:
    key: str
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


@dataclass
class StabilityResult:
    job: StabilityJob
    status: str
    reason: str | None = None
    raw: dict | None = None
    seconds: float = 0.0
    decodes: int = 0


def run_stability_cell(job: StabilityJob, worker_state: dict) -> StabilityResult:
    t0 = time.perf_counter()
    cache = cache_from(worker_state)
    try:
        model = cache.instance("model", job.model)
        method = cache.instance("method", PluginRef(job.method.name, {**job.method.params, "n_samples": job.n_samples}))
        missing = sorted(str(c) for c in method.requires if not model.has(c))
        if missing:
            return StabilityResult(job, "skipped", f"method {job.method.label!r} needs {', '.join(missing)}; model "
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
        return StabilityResult(job, "error", str(exc), seconds=time.perf_counter() - t0)
    except Exception:
        return StabilityResult(job, "error", traceback.format_exc(limit=8), seconds=time.perf_counter() - t0)
    return StabilityResult(job, "ok", raw=raw, seconds=time.perf_counter() - t0)


def plan_stability_jobs(suite, registry, cache, log, key_of) -> list[StabilityJob]:
    """True-positive ground-truth excerpts x fills x N_s, one job each."""
    st = suite.stability
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
                jobs.append(StabilityJob(key_of(fields), st.model, st.method, fref, st.corpus, u.id, target, n_s,
                                         st.runs, StftConfig(), {"p_speech": p, "corpus_digest": corpus.digest()}))
    return jobs
