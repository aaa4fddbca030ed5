"""The fill interface: what replaces (or covers) an occluded region.

A fill acts on the complex STFT. `weight` in [0, 1] says how strongly each
time-frequency point is occluded: SSBM's noise masks are continuous (an
amplitude gain on the added noise), occlusion methods use binary masks.

A fill that needs the corpus's statistics (min_data, gauss_norm) declares
the optional protocol :class:`UsesCorpusStats`; the harness hands those
fills the statistics, computed once per corpus and stored, before use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch

from .audio import StftConfig

if TYPE_CHECKING:
    from .corpus_stats import CorpusStats


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

    @abstractmethod
    def apply(self, clean: torch.Tensor, weight: np.ndarray, ctx: FillContext) -> torch.Tensor:
        """Return the perturbed complex STFT, same shape as `clean`."""

    def describe(self) -> dict:
        return {"name": self.name}


@runtime_checkable
class UsesCorpusStats(Protocol):
    """Optional protocol of a fill that needs the corpus's statistics.

    Declare it as a base class (``class MyFill(Fill, UsesCorpusStats)``) and
    implement :meth:`use_corpus_stats`. The harness tests
    ``isinstance(fill, UsesCorpusStats)``, computes the corpus's
    statistics once, stores them, and hands them over before the fill is
    applied. ``needs_corpus_stats`` (True) says the same for callers that
    test the flag.
    """

    needs_corpus_stats: bool = True

    @abstractmethod
    def use_corpus_stats(self, stats: CorpusStats) -> None:
        """Receive the corpus's :class:`ssbm_bench.corpus_stats.CorpusStats`."""
