"""The fill interface: what replaces (or covers) an occluded region.

A fill acts on the complex STFT. `weight` in [0, 1] says how strongly each
time-frequency point is occluded: SSBM's noise masks are continuous (an
amplitude gain on the added noise), occlusion methods use binary masks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from .audio import StftConfig


@dataclass
class FillContext:
    """Everything a fill may need besides the spectrogram and the weights."""

    rng: np.random.Generator
    cfg: StftConfig
    n_samples: int
    #: level in dB relative to the clean utterance's RMS (additive-noise fills)
    level_db: float = 0.0
    #: RMS of the clean waveform, when the caller knows it (saves an ISTFT);
    #: None: additive fills compute it from the clean STFT
    reference_rms: float | None = None


class Fill(ABC):
    name: str = "fill"
    #: additive fills add content on top of the speech (SSBM's white noise);
    #: replacing fills substitute content for it (zero, mean, ...)
    additive: bool = False
    #: fills that need dataset statistics (min_data, gauss_norm) set this; the
    #: harness computes the corpus's statistics once, stores them, and hands
    #: them to :meth:`use_corpus_stats` before the fill is applied
    needs_corpus_stats: bool = False

    def use_corpus_stats(self, stats) -> None:
        """Receive a :class:`ssbm_bench.corpus_stats.CorpusStats` (no-op unless needed)."""

    @abstractmethod
    def apply(self, clean: torch.Tensor, weight: np.ndarray, ctx: FillContext) -> torch.Tensor:
        """Return the perturbed complex STFT, same shape as `clean`."""

    def describe(self) -> dict:
        return {"name": self.name}
