"""One deletion cell: one model, method, fill, utterance, target and seed.

The cell explains the target (sharing the map with the SSBM cell of the same
explanation, see harness.explain), masks the top / random / bottom fraction r
of the map's points with the fill (binary weights, the same noise draw as
SSBM's for additive fills), and scores every masked version in one batch:

* ASR: teacher-forced token success against the model's own clean
  transcript (``model.score_tokens``): over all tokens ("all") and over the
  tokens of what the map explains ("target": the word's tokens, or all of
  them for a transcript-level map);
* classifiers: the target class's probability (``model.classify``).

The raw outcome keeps every condition's scores, the token flags and the
energy each mask removed, so the board is recomputed from the store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..attribution import forced_transcript, resolve_target
from ..audio import StftConfig, stft
from ..errors import InputError
from ..method import ExplainRequest
from ..metrics.deletion import FRACTIONS, ORDERS, deletion_mask, success_rate
from ..metrics.ssbm import dropped_energy
from ..model import Capability
from ..types import Target
from .explain import explain
from .ssbm_cell import CellResult, map_digest, mixture_waveforms, stable_seed
from .suite import PluginRef
from .worker import cache_from


@dataclass(frozen=True)
class DeletionJob:
    key: str
    corpus: PluginRef
    model: PluginRef
    method: PluginRef
    fill: PluginRef
    utterance: str
    target: Target
    seed: int
    fractions: tuple[float, ...] = FRACTIONS
    level_db: float = 0.0
    cfg: StftConfig = StftConfig()


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


def run_deletion_cell(job: DeletionJob, worker_state: dict) -> CellResult:
    t0 = time.perf_counter()
    cache = cache_from(worker_state)
    try:
        model = cache.instance("model", job.model)
    except Exception as exc:
        return CellResult(job, "error", f"could not load model {job.model.name!r}: {type(exc).__name__}: {exc}")
    kind, why_not = scoring_of(model)
    if kind is None:
        return CellResult(job, "skipped", why_not)
    done = explain(cache, job.corpus, job.model, job.method, job.fill, job.utterance, job.target, job.seed,
                   job.level_db, job.cfg)
    if done.status != "ok":
        return CellResult(job, done.status, done.reason, seconds=time.perf_counter() - t0)
    smap = done.smap
    fill = cache.fill(job.fill, job.corpus, job.cfg)
    utt = cache.utterance(job.corpus, job.utterance)
    cfg = job.cfg
    clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), cfg)
    magnitude = clean.abs().numpy().astype(np.float64)

    conditions, masks = [], []
    for order in ORDERS:
        for r in job.fractions:
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
        return CellResult(job, "error", f"deletion scoring of method {job.method.name!r} on utterance {utt.id!r}, "
                                        f"target {job.target.key}: {exc}", seconds=time.perf_counter() - t0)
    raw = {
        "map": {"kind": smap.kind, "sha256": map_digest(smap.values), "shape": list(smap.shape),
                "min": float(smap.values.min()), "max": float(smap.values.max()), "params": smap.params},
        "scoring": scoring,
        "clean": clean_score,
        "conditions": conditions,
        "level_db": job.level_db,
        "explain_seconds": done.seconds,
        "map_reused": done.cached,
    }
    return CellResult(job, "ok", raw=raw, seconds=time.perf_counter() - t0, decodes=len(waves))
