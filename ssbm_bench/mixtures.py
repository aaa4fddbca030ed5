"""Noisy mixtures: a fill applied under weight maps, and the seeds that make them reproducible.

Shared by every board that perturbs audio (SSBM's LeRF/MoRF masks, deletion
by rank, noise calibration, the ``explain`` figure): every mixture of one
utterance and seed draws the same noise realisation, so conditions differ
only by their mask.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from .audio import StftConfig, istft
from .fill import FillContext


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


def map_summary(smap) -> dict:
    """What a cell's raw outcome keeps of the map it scored: its kind, digest, shape, range and parameters
    (the map itself is not stored; the digest lets a re-run cell be compared)."""
    return {"kind": smap.kind, "sha256": map_digest(smap.values), "shape": list(smap.shape),
            "min": float(smap.values.min()), "max": float(smap.values.max()), "params": smap.params}
