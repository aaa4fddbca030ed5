"""The saliency-method interface.

A method explains one target (a word of the transcript, or a class) of one
utterance for one model, returning a :class:`SaliencyMap` on the STFT grid.
It declares the model capabilities it needs, so that the harness can skip
(with a stored reason) rather than crash, and how SSBM should threshold its
maps (`SaliencyMap.kind`). A method whose maps come from noisy mixtures it
can regenerate (bubble noise) declares the optional protocol
:class:`ShowsMixtures`, so that ``ssbm-bench explain`` can show them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

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


@runtime_checkable
class ShowsMixtures(Protocol):
    """Optional protocol of a method whose maps come from noisy mixtures it
    can regenerate (bubble noise); ``ssbm-bench explain`` draws and plays a
    few of them. Declare it as a base class
    (``class MyMethod(SaliencyMethod, ShowsMixtures)``)."""

    #: how many analysis mixtures one map is made from (indices 0 .. n_mixtures - 1)
    n_mixtures: int

    @abstractmethod
    def mixtures_for(self, request: ExplainRequest, smap: SaliencyMap, indices: Sequence[int]) -> list[dict]:
        """For each index j of the mixtures behind `smap` (the map ``explain(request)`` returned):
        ``index``, ``waveform`` (float32), ``audibility`` (freq x frames, in [0, 1]), and from the
        method's stored results ``hypothesis`` (normalised words) and ``recognised`` (whether the
        target was recognised), each None when nothing is stored."""
