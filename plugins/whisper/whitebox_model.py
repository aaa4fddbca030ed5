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

from ssbm_bench.errors import InputError
from ssbm_bench.model import Capability, Embedding, ForcedTranscript, SpeechModel
from ssbm_bench.types import validate_waveform

if TYPE_CHECKING:  # torch and transformers load with the model, not with the plugin
    from .whitebox import WhisperTorch

#: Whisper's encoder reads exactly one 30 s window; longer audio would be cut silently
MAX_SECONDS = 30.0


class WhisperWhiteBoxModel(SpeechModel):
    capabilities = frozenset({Capability.TRANSCRIBE, Capability.DIFFERENTIABLE, Capability.SCORE_TOKENS,
                              Capability.EMBED})
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

    # --- embedding: the log-mel features the encoder reads ------------------
    def embed(self, waveform) -> Embedding:
        """Whisper's log-mel of the audio's own frames (frames, n_mels), 10 ms
        apart; the frames of the 30 s window's zero padding are the context,
        held at their values for this waveform (Whisper's clamp at peak - 8
        ties them to the audio's loudest frame)."""
        import torch

        wav = torch.as_tensor(waveform, dtype=torch.float32)
        if wav.ndim != 1:
            raise InputError(f"model {self.name!r}: embed expects a 1-D waveform tensor, got {tuple(wav.shape)}")
        self.check_duration(wav)
        lm = self.torch.log_mel
        full = lm(wav)  # (1, n_mels, frames of the 30 s window)
        n = min(full.shape[2], wav.shape[0] // lm.hop_length + 1)
        filters = lm.mel_filters.numpy().T  # (n_mels, n_fft // 2 + 1)
        return Embedding(values=full[0, :, :n].T, hop_seconds=lm.hop_length / float(self.sample_rate),
                         label="log-mel", frequency_weights=filters,
                         bin_hz=np.linspace(0.0, self.sample_rate / 2.0, filters.shape[1]),
                         context=full[:, :, n:].detach())

    def embedding_target_score(self, values, embedding: Embedding, target, transcript=None):
        import torch

        if target.kind != "word":
            raise InputError(f"model {self.name!r} is a recogniser: it explains words, not {target.key}")
        if transcript is None:
            raise InputError(f"model {self.name!r}: a word target needs the forced transcript")
        self.torch._check(transcript)
        feats = torch.cat([values.T.unsqueeze(0).to(torch.float32), embedding.context], dim=2)
        logp = self.torch._logits(feats, transcript)[0].log_softmax(-1)
        ids = torch.tensor(transcript.token_ids, dtype=torch.long)
        return self.word_or_class_score(logp.gather(1, ids[:, None])[:, 0], target, transcript)

    def score_tokens(self, waveforms: Sequence[np.ndarray], transcript: ForcedTranscript) -> list[np.ndarray]:
        return self.torch.score_tokens(self._checked(waveforms, "waveform"), transcript)
