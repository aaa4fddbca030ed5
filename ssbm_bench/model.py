"""The model interface, by capability.

A model declares what it can do; the harness and methods ask for what they
need and skip (with a stored reason) what a model cannot do. Only
`transcribe` is needed for SSBM; later capabilities (gradients, teacher
forcing, alignment) are added by the models that have them.
"""

from __future__ import annotations

from abc import ABC
from enum import Enum
from typing import Sequence

import numpy as np

from .errors import CapabilityMissing
from .types import Word


class Capability(str, Enum):
    TRANSCRIBE = "transcribe"          # waveforms -> word lists (ASR)
    CLASSIFY = "classify"              # waveforms -> class probabilities
    DIFFERENTIABLE = "differentiable"  # torch forward to a scalar target score
    SCORE_TOKENS = "score_tokens"      # teacher-forced per-token correctness
    ALIGN = "align"                    # force-align known words to audio

    def __str__(self) -> str:
        return self.value


class SpeechModel(ABC):
    """Base class for model plugins. Override the methods you declare."""

    name: str = "model"
    version: str = "0"
    sample_rate: int = 16000
    capabilities: frozenset[Capability] = frozenset()
    #: longest input in seconds the model accepts, None for no limit
    max_duration: float | None = None

    def has(self, capability: Capability | str) -> bool:
        return Capability(capability) in self.capabilities

    def require(self, capability: Capability | str, for_what: str) -> None:
        if not self.has(capability):
            have = ", ".join(sorted(str(c) for c in self.capabilities)) or "none"
            raise CapabilityMissing(
                f"{for_what} needs capability {Capability(capability)} but model {self.name!r} has only: {have}"
            )

    def transcribe(self, waveforms: Sequence[np.ndarray]) -> list[list[str]]:
        """Recognise each waveform; return raw word lists (normalised by the caller)."""
        raise CapabilityMissing(f"model {self.name!r} cannot transcribe")

    def classify(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        raise CapabilityMissing(f"model {self.name!r} cannot classify")

    def align(self, waveform: np.ndarray, words: Sequence[str]) -> list[Word]:
        raise CapabilityMissing(f"model {self.name!r} cannot force-align")

    def describe(self) -> dict:
        """Identity of the model as stored with every result (name, version, settings)."""
        return {"name": self.name, "version": self.version}
