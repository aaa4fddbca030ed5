"""A SpeechModel over :class:`.whitebox.WhisperTorch`, loaded on first use.

Both Whisper models in this plugin are this class: a directory saved with
``save_pretrained`` (:mod:`.hf_directory`) and the converted CTranslate2
export (:mod:`.model`, which swaps in CTranslate2 for ``transcribe``).
Loading is deferred so that creating a model (e.g. to describe it in a
plan) costs nothing until it is asked to work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ssbm_bench.model import Capability, ForcedTranscript, SpeechModel
from ssbm_bench.types import validate_waveform

if TYPE_CHECKING:  # torch and transformers load with the model, not with the plugin
    from .whitebox import WhisperTorch

#: Whisper's encoder reads exactly one 30 s window; longer audio would be cut silently
MAX_SECONDS = 30.0


class WhisperWhiteBoxModel(SpeechModel):
    capabilities = frozenset({Capability.TRANSCRIBE, Capability.DIFFERENTIABLE, Capability.SCORE_TOKENS})
    sample_rate = 16000
    max_duration = MAX_SECONDS

    def __init__(self, language: str | None = "en", task: str = "transcribe"):
        self.language = language
        self.task = task
        self._torch: WhisperTorch | None = None

    def _load_torch(self) -> WhisperTorch:
        raise NotImplementedError

    @property
    def torch(self) -> WhisperTorch:
        """The transformers model, loaded (or converted) on first use."""
        if self._torch is None:
            self._torch = self._load_torch()
        return self._torch

    def _checked(self, waveforms: Sequence[np.ndarray], what: str) -> list[np.ndarray]:
        out = []
        for i, w in enumerate(waveforms):
            x = validate_waveform(w, f"model {self.name!r}: {what} {i}")
            self.check_duration(x, f"{what} {i}")
            out.append(x)
        return out

    def transcribe(self, waveforms: Sequence[np.ndarray]) -> list[list[str]]:
        """Greedy transcripts from transformers' generate, split into raw words."""
        xs = self._checked(waveforms, "waveform")
        return [self.torch.decode(ids).split() for ids in self.torch.greedy_ids(xs)]

    def forced_transcript(self, waveform: np.ndarray) -> ForcedTranscript:
        (x,) = self._checked([waveform], "waveform")
        return self.torch.forced_transcript(x, meta={"model": self.name})

    def token_log_probs(self, waveform, transcript: ForcedTranscript):
        import torch

        wav = torch.as_tensor(waveform)
        if wav.ndim == 1:
            self.check_duration(wav)  # len() of a 1-D tensor is its sample count
        return self.torch.token_log_probs(wav, transcript)

    def score_tokens(self, waveforms: Sequence[np.ndarray], transcript: ForcedTranscript) -> list[np.ndarray]:
        return self.torch.score_tokens(self._checked(waveforms, "waveform"), transcript)
