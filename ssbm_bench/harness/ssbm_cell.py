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
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch

from ..audio import StftConfig, istft, stft
from ..errors import CapabilityMissing, InputError
from ..fill import FillContext
from ..method import ExplainRequest
from ..metrics.ssbm import dropped_energy, noise_mask
from ..metrics.word_accuracy import target_other_accuracy, word_correct
from ..text import normalise_words
from ..types import Target
from .suite import PluginRef
from .worker import cache_from

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


def map_digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]


def mixture_waveforms(clean: torch.Tensor, weights: list[np.ndarray], fill, waveform: np.ndarray, level_db: float,
                      noise_seed: int, cfg: StftConfig) -> list[np.ndarray]:
    """Apply `fill` under each weight map. Every mixture draws the same noise
    realisation (same seed), so methods and thresholds differ only by mask."""
    out = []
    n_samples = len(waveform)
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
    for w in weights:
        ctx = FillContext(rng=np.random.default_rng(noise_seed), cfg=cfg, n_samples=n_samples, level_db=level_db,
                          reference_rms=rms)
        y = fill.apply(clean, w, ctx)
        out.append(istft(y, n_samples, cfg).numpy().astype(np.float32))
    return out


def run_ssbm_cell(job: SsbmJob, worker_state: dict) -> CellResult:
    """Compute one cell; failures inside a plugin become an 'error' result, never a crash."""
    t0 = time.perf_counter()
    cache = cache_from(worker_state)
    try:
        model = cache.instance("model", job.model)
        method = cache.instance("method", job.method)
        fill = cache.instance("fill", job.fill)
        utt = cache.utterance(job.corpus, job.utterance)
    except Exception as exc:
        return CellResult(job, "error", f"could not load plugins for the cell: {type(exc).__name__}: {exc}")

    missing = sorted(str(c) for c in method.requires if not model.has(c))
    if missing:
        return CellResult(job, "skipped", f"method {method.name!r} needs {', '.join(missing)}, "
                                          f"which model {model.name!r} does not provide")
    cfg = job.cfg
    clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), cfg)
    magnitude = clean.abs().numpy().astype(np.float64)
    request = ExplainRequest(model=model, utterance=utt, target=job.target, cfg=cfg, seed=job.seed,
                             fill=fill, clean_magnitude=magnitude, artifacts=cache.artifacts,
                             noise_level_db=job.level_db)
    try:
        smap = method.explain(request)
    except CapabilityMissing as exc:
        return CellResult(job, "skipped", str(exc), seconds=time.perf_counter() - t0)
    except InputError as exc:
        return CellResult(job, "error", f"method {method.name!r} on utterance {utt.id!r}, "
                                        f"target {job.target.key}: {exc}", seconds=time.perf_counter() - t0)
    except Exception as exc:
        return CellResult(job, "error", f"method {method.name!r} on utterance {utt.id!r} raised "
                                        f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
                          seconds=time.perf_counter() - t0)
    if smap.shape != magnitude.shape:
        return CellResult(job, "error", f"method {method.name!r} returned a map of shape {smap.shape}; "
                                        f"the STFT grid of utterance {utt.id!r} is {magnitude.shape}")
    explain_seconds = time.perf_counter() - t0

    masks, energies = [], []
    for t in job.thresholds:
        for direction in DIRECTIONS:
            m = noise_mask(smap.thresholded_values(), t, smap.kind, direction)
            masks.append(m)
            energies.append(dropped_energy(m, magnitude))
    noise_seed = stable_seed("noise", job.utterance, job.seed)
    waves = mixture_waveforms(clean, masks, fill, utt.waveform, job.level_db, noise_seed, cfg)
    hyps = model.transcribe(waves)

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
