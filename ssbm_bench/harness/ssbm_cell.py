"""One SSBM cell: one model, method, fill, utterance, target word and seed.

The cell explains the word once, then for every threshold builds the LeRF
and MoRF noise masks, mixes the masked fill into the clean STFT, decodes all
mixtures in one batch and keeps the raw outcome (hypotheses, accuracies,
dropped energies) so that the leaderboard can be re-scored from the store
without decoding again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..audio import StftConfig, istft, stft
from ..errors import InputError
from ..fill import FillContext
from ..metrics.ssbm import dropped_energy, noise_mask
from ..metrics.word_accuracy import target_other_accuracy, word_correct
from ..text import normalise_words
from ..types import Target
from .suite import PluginRef
from .worker import cache_from
from .explain import explain

DIRECTIONS = ("lerf", "morf")


@dataclass(frozen=True)
class SsbmJob:
    key: str
    corpus: PluginRef
    model: PluginRef
    method: PluginRef
    fill: PluginRef
    utterance: str
    target: Target
    seed: int
    thresholds: tuple[float, ...]
    level_db: float
    cfg: StftConfig = StftConfig()


@dataclass
class CellResult:
    job: SsbmJob
    status: str  # ok | skipped | error
    reason: str | None = None
    raw: dict | None = None
    seconds: float = 0.0
    decodes: int = 0
    extra: dict = field(default_factory=dict)


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, identical across processes and machines."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


#: amplitude of the dither that replaces an all-zero mixture (-100 dB full scale)
SILENCE_DITHER = 1e-5


def map_digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]


def mixture_waveforms(clean: torch.Tensor, weights: list[np.ndarray], fill, waveform: np.ndarray, level_db: float,
                      noise_seed: int, cfg: StftConfig) -> list[np.ndarray]:
    """Apply `fill` under each weight map. Every mixture draws the same noise
    realisation (same seed), so methods and thresholds differ only by mask.

    A replacing fill (zero, silence) under a full mask leaves exact digital
    silence, which models refuse as input (it is what a broken recording
    looks like); such a mixture gets a seeded dither at SILENCE_DITHER
    (-100 dB full scale) instead, which every recogniser hears as silence."""
    out = []
    n_samples = len(waveform)
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
    for w in weights:
        ctx = FillContext(rng=np.random.default_rng(noise_seed), cfg=cfg, n_samples=n_samples, level_db=level_db,
                          reference_rms=rms)
        y = fill.apply(clean, w, ctx)
        wave = istft(y, n_samples, cfg).numpy().astype(np.float32)
        if not np.any(wave):
            wave = (SILENCE_DITHER * np.random.default_rng(noise_seed).standard_normal(n_samples)).astype(np.float32)
        out.append(wave)
    return out


def run_ssbm_cell(job: SsbmJob, worker_state: dict) -> CellResult:
    """Compute one cell; failures inside a plugin become an 'error' result, never a crash."""
    t0 = time.perf_counter()
    cache = cache_from(worker_state)
    done = explain(cache, job.corpus, job.model, job.method, job.fill, job.utterance, job.target, job.seed,
                   job.level_db, job.cfg)
    if done.status != "ok":
        return CellResult(job, done.status, done.reason, seconds=time.perf_counter() - t0)
    smap = done.smap
    model = cache.instance("model", job.model)
    fill = cache.fill(job.fill, job.corpus, job.cfg)
    utt = cache.utterance(job.corpus, job.utterance)
    cfg = job.cfg
    clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), cfg)
    magnitude = clean.abs().numpy().astype(np.float64)
    explain_seconds = done.seconds

    masks, energies = [], []
    for t in job.thresholds:
        for direction in DIRECTIONS:
            m = noise_mask(smap.thresholded_values(), t, smap.kind, direction)
            masks.append(m)
            energies.append(dropped_energy(m, magnitude))
    noise_seed = stable_seed("noise", job.utterance, job.seed)
    waves = mixture_waveforms(clean, masks, fill, utt.waveform, job.level_db, noise_seed, cfg)
    try:
        hyps = model.transcribe(waves)
    except InputError as exc:
        return CellResult(job, "error", f"decoding the SSBM mixtures of utterance {utt.id!r} (method "
                                        f"{job.method.label!r}, fill {job.fill.label!r}): {exc}",
                          seconds=time.perf_counter() - t0)

    reference = utt.reference
    per_threshold = []
    for i, t in enumerate(job.thresholds):
        entry: dict = {"threshold": float(t)}
        for j, direction in enumerate(DIRECTIONS):
            k = 2 * i + j
            hyp = normalise_words(hyps[k])
            a_w, a_o = target_other_accuracy(word_correct(reference, hyp), job.target.index)
            entry[direction] = {"hyp": " ".join(hyp), "a_w": float(a_w), "a_o": float(a_o),
                                "e": float(energies[k])}
        per_threshold.append(entry)
    raw = {
        "map": {"kind": smap.kind, "sha256": map_digest(smap.values), "shape": list(smap.shape),
                "min": float(smap.values.min()), "max": float(smap.values.max()), "params": smap.params},
        "thresholds": per_threshold,
        "level_db": job.level_db,
        "explain_seconds": explain_seconds,
    }
    return CellResult(job, "ok", raw=raw, seconds=time.perf_counter() - t0, decodes=len(waves))
