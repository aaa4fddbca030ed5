"""The saliency-method interface.

A method explains one target (a word of the transcript, or a class) of one
utterance for one model, returning a :class:`SaliencyMap` on the STFT grid.
It declares the model capabilities it needs, so that the harness can skip
(with a stored reason) rather than crash, and how SSBM should threshold its
maps (`SaliencyMap.kind`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from .artifacts import Artifacts
from .audio import StftConfig
from .fill import Fill
from .model import Capability, SpeechModel
from .types import SaliencyMap, Target, Utterance


@dataclass
class ExplainRequest:
    model: SpeechModel
    utterance: Utterance
    target: Target
    cfg: StftConfig
    seed: int = 0
    fill: Fill | None = None
    #: clean complex STFT magnitude, computed once by the harness
    clean_magnitude: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    #: the model's calibrated noise level (dB re. speech RMS) at which fully
    #: masked speech is unrecognisable; perturbation methods may use it
    noise_level_db: float | None = None
    #: a key-value cache for target-independent work (see ssbm_bench.artifacts);
    #: None when the caller keeps nothing
    artifacts: Artifacts | None = None


class SaliencyMethod(ABC):
    name: str = "method"
    version: str = "0"
    requires: frozenset[Capability] = frozenset()
    #: "magnitude" maps use the energy transition with thresholds in dB,
    #: "pvalue" maps the bubble transition, "score" maps the rank transition
    map_kind: str = "score"
    #: the target kinds the method can explain ("word", "class"); the harness
    #: skips (with the reason stored) a target of another kind
    target_kinds: frozenset[str] = frozenset({"word", "class"})

    @abstractmethod
    def explain(self, request: ExplainRequest) -> SaliencyMap:
        """Return the importance map for `request.target`."""

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version}
