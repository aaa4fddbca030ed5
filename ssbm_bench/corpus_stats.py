"""Dataset statistics of a corpus's STFT magnitudes, computed once and stored.

Two fills of the SoundLIME paper need them: ``min_data`` (the minimum bin
magnitude across a dataset) and ``gauss_norm`` (Gaussian noise standardised
per frequency band with the dataset's mean and standard deviation). They are
computed over every utterance of the corpus on the benchmark's STFT grid and
kept in the artifacts cache (the results store in a run) under a key made of
the corpus digest and the STFT settings, so a corpus is analysed once.

Per frequency bin f, over all frames of all utterances:

* ``min_magnitude[f]``: the minimum |STFT|; ``global_min`` the minimum over f;
* ``log_mean[f]``, ``log_std[f]``: mean and standard deviation of
  ln(|STFT| + LOG_FLOOR). Standardising in the log domain (as the paper's
  log-mel input is) keeps the drawn magnitudes positive: gauss_norm draws
  exp(log_mean + log_std * z).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from .artifacts import artifact_key
from .audio import StftConfig, stft
from .errors import InputError

LOG_FLOOR = 1e-6
STATS_VERSION = 1


@dataclass(frozen=True)
class CorpusStats:
    corpus_digest: str
    n_utterances: int
    n_frames: int
    min_magnitude: np.ndarray
    log_mean: np.ndarray
    log_std: np.ndarray

    @property
    def global_min(self) -> float:
        return float(self.min_magnitude.min())

    def to_json(self) -> dict:
        return {"version": STATS_VERSION, "corpus_digest": self.corpus_digest, "n_utterances": self.n_utterances,
                "n_frames": self.n_frames, "min_magnitude": self.min_magnitude.tolist(),
                "log_mean": self.log_mean.tolist(), "log_std": self.log_std.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "CorpusStats":
        return cls(d["corpus_digest"], int(d["n_utterances"]), int(d["n_frames"]),
                   np.asarray(d["min_magnitude"], np.float64), np.asarray(d["log_mean"], np.float64),
                   np.asarray(d["log_std"], np.float64))


def compute_corpus_stats(utterances: Iterable, cfg: StftConfig, corpus_digest: str = "") -> CorpusStats:
    """One pass over the utterances (Welford-free: sums in float64 are exact enough)."""
    n_utt = n_frames = 0
    mn = s1 = s2 = None
    for u in utterances:
        if u.sample_rate != cfg.sample_rate:
            raise InputError(f"corpus statistics: utterance {u.id!r} is at {u.sample_rate} Hz, the STFT grid "
                             f"expects {cfg.sample_rate} Hz")
        mag = stft(torch.as_tensor(u.waveform, dtype=torch.float64), cfg).abs().numpy()
        logm = np.log(mag + LOG_FLOOR)
        if mn is None:
            mn, s1, s2 = mag.min(axis=1), logm.sum(axis=1), (logm**2).sum(axis=1)
        else:
            mn = np.minimum(mn, mag.min(axis=1))
            s1 += logm.sum(axis=1)
            s2 += (logm**2).sum(axis=1)
        n_utt += 1
        n_frames += mag.shape[1]
    if not n_utt:
        raise InputError("corpus statistics: the corpus has no utterances")
    mean = s1 / n_frames
    std = np.sqrt(np.maximum(s2 / n_frames - mean**2, 0.0))
    return CorpusStats(corpus_digest, n_utt, n_frames, mn, mean, std)


def corpus_stats(corpus, cfg: StftConfig, artifacts=None) -> CorpusStats:
    """The corpus's statistics from the artifacts cache, computed and stored on first use."""
    digest = corpus.digest()
    key = artifact_key("corpus-stats", corpus=digest, cfg=cfg.to_dict(), version=STATS_VERSION)
    if artifacts is not None:
        cached = artifacts.get(key)
        if cached is not None:
            return CorpusStats.from_json(cached)
    stats = compute_corpus_stats(corpus.utterances(), cfg, digest)
    if artifacts is not None:
        artifacts.put(key, stats.to_json())
    return stats
