"""The differentiable face of Whisper: a transformers model behind a torch front end.

Shared by the converted CTranslate2 model (:mod:`.model`) and any Whisper
directory saved with ``save_pretrained`` (:mod:`.hf_directory`). Three
operations, all after the same decoder prompt:

* greedy decoding with transformers' ``generate`` (the suppressed tokens of
  the generation config, as CTranslate2 applies them), giving the model's
  own transcript, cased and punctuated;
* teacher-forced token log-probabilities, differentiable w.r.t. the
  waveform through :class:`.logmel.LogMel`. They are the model's raw
  distribution (no token suppressed), which is what a gradient should see;
* teacher-forced token success: argmax == token at each position, with the
  decoder's suppression applied so that the clean greedy transcript scores
  100% by construction (a suppressed token can never be chosen by decoding,
  so it must not count as the model's choice either).

The EOS token is *not* part of a transcript's tokens: scores cover what the
model said, not where it stopped.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ssbm_bench.errors import InputError
from ssbm_bench.model import ForcedTranscript

from .logmel import LogMel
from .special_tokens import SpecialTokens, is_english_only
from .token_words import build_forced_transcript

#: utterances per forward pass in batched scoring / decoding (30 s of encoder input each)
BATCH = 8


class WhisperTorch:
    """A transformers Whisper model plus tokenizer, feature extractor and prompt."""

    def __init__(self, model, processor, language: str | None = "en", task: str = "transcribe", source: str = ""):
        self.model = model.eval()
        self.tokenizer = processor.tokenizer
        self.feature_extractor = processor.feature_extractor
        self.source = source
        self.log_mel = LogMel.from_feature_extractor(self.feature_extractor)
        cfg = model.config
        if self.log_mel.n_mels != cfg.num_mel_bins:
            raise InputError(f"whisper {source}: feature extractor has {self.log_mel.n_mels} mel bins, "
                             f"the model expects {cfg.num_mel_bins}")
        vocab = self.tokenizer.get_vocab()
        self.special = SpecialTokens.from_vocab(vocab, source, english_only=is_english_only(cfg.vocab_size))
        self.language = None if self.special.english_only else (language or "en")
        self.task = task
        self.prompt_ids = self.special.prompt(self.language, task)
        gen = model.generation_config
        self._suppress = torch.tensor(sorted(set(gen.suppress_tokens or [])), dtype=torch.long)
        self._begin_suppress = torch.tensor(sorted(set(gen.begin_suppress_tokens or [])), dtype=torch.long)

    # --- features -------------------------------------------------------
    def features(self, waveforms: Sequence[np.ndarray] | torch.Tensor) -> torch.Tensor:
        if isinstance(waveforms, torch.Tensor):
            return self.log_mel(waveforms)
        return torch.cat([self.log_mel(torch.as_tensor(np.asarray(w, dtype=np.float32))) for w in waveforms])

    # --- greedy decoding --------------------------------------------------
    def _generate_kwargs(self) -> dict:
        kw: dict = {"do_sample": False, "num_beams": 1, "return_timestamps": False}
        if not self.special.english_only:
            kw.update(language=self.language, task=self.task)
        return kw

    def _strip(self, seq: Sequence[int]) -> list[int]:
        """Generated ids -> transcript tokens: no prompt, nothing from EOS on."""
        ids = [int(t) for t in seq]
        n = len(self.prompt_ids)
        if ids[:n] == list(self.prompt_ids):
            ids = ids[n:]
        elif ids[:1] == [self.special.sot]:
            raise InputError(f"whisper {self.source}: decoding used the prompt {ids[:n]}, expected "
                             f"{list(self.prompt_ids)}")
        if self.special.eot in ids:
            ids = ids[: ids.index(self.special.eot)]
        return ids

    @torch.no_grad()
    def greedy_ids(self, waveforms: Sequence[np.ndarray]) -> list[list[int]]:
        out: list[list[int]] = []
        for i in range(0, len(waveforms), BATCH):
            feats = self.features(waveforms[i:i + BATCH])
            seqs = self.model.generate(input_features=feats, **self._generate_kwargs())
            out.extend(self._strip(s) for s in seqs)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([t for t in ids if t < self.special.eot]).strip()

    def forced_transcript(self, waveform: np.ndarray, meta: dict | None = None) -> ForcedTranscript:
        ids = self.greedy_ids([waveform])[0]
        return build_forced_transcript(self.tokenizer, ids, self.prompt_ids, self.special.eot, meta)

    # --- teacher forcing ------------------------------------------------
    def _check(self, transcript: ForcedTranscript) -> None:
        if tuple(transcript.prompt_ids) != tuple(self.prompt_ids):
            raise InputError(f"whisper {self.source}: transcript was made with prompt {list(transcript.prompt_ids)}, "
                             f"this model decodes after {list(self.prompt_ids)}")

    def _logits(self, features: torch.Tensor, transcript: ForcedTranscript) -> torch.Tensor:
        """Logits predicting each transcript token, shape (batch, n_tokens, vocab)."""
        ids = torch.tensor([list(self.prompt_ids) + list(transcript.token_ids)], dtype=torch.long)
        ids = ids.expand(features.shape[0], -1)
        logits = self.model(input_features=features, decoder_input_ids=ids[:, :-1], use_cache=False).logits
        start = len(self.prompt_ids) - 1
        return logits[:, start:start + len(transcript.token_ids)]

    def token_log_probs(self, waveform: torch.Tensor, transcript: ForcedTranscript) -> torch.Tensor:
        self._check(transcript)
        if not transcript.token_ids:
            return waveform.new_zeros((0,))
        if waveform.ndim != 1:
            raise InputError(f"whisper {self.source}: expected a 1-D waveform tensor, "
                             f"got shape {tuple(waveform.shape)}")
        logp = self._logits(self.log_mel(waveform), transcript)[0].log_softmax(-1)
        target = torch.tensor(transcript.token_ids, dtype=torch.long)
        return logp.gather(1, target[:, None])[:, 0]

    @torch.no_grad()
    def score_tokens(self, waveforms: Sequence[np.ndarray], transcript: ForcedTranscript) -> list[np.ndarray]:
        self._check(transcript)
        n = len(transcript.token_ids)
        if n == 0:
            return [np.zeros(0, dtype=bool) for _ in waveforms]
        target = torch.tensor(transcript.token_ids, dtype=torch.long)
        out: list[np.ndarray] = []
        for i in range(0, len(waveforms), BATCH):
            logits = self._logits(self.features(waveforms[i:i + BATCH]), transcript).clone()
            if self._suppress.numel():
                logits[:, :, self._suppress] = -torch.inf
            if self._begin_suppress.numel():
                logits[:, 0, self._begin_suppress] = -torch.inf
            out.extend((logits.argmax(-1) == target).numpy())
        return out
