"""Whisper from a wheel-shipped CTranslate2 export, with two faces of one model.

* Black box, fast: ``transcribe`` runs ``ctranslate2.models.Whisper.generate``
  on log-mel features, batched, greedy, after the same prompt as the white
  box. ``compute_type`` defaults to float32: measured on Whisper tiny.en,
  int8 changed 4 of 12 clean transcripts (float32 CTranslate2 and the
  converted model agree token for token), and then the two faces would
  disagree about what the model said.
* White box: the same weights converted to transformers (cached on disk,
  see :mod:`.cache`) for teacher-forced log-probabilities, gradients and
  token scoring.

The features for CTranslate2 come from the same torch front end as the
white box's (:class:`.logmel.LogMel`, built from the feature extractor's
parameters, not from the converted model), so both faces read identical
input and ``transcribe`` never waits for a conversion. The CTranslate2 call
takes the features, not faster-whisper's ``transcribe``, which pads and
segments audio its own way.
"""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np

from ssbm_bench.errors import InputError

from .cache import converted_dir, ct2_dir
from .sources import WhisperSource, find_source
from .special_tokens import SpecialTokens
from .whitebox_model import WhisperWhiteBoxModel

#: utterances per CTranslate2 call (the same batch as the white box's)
BATCH = 8

COMPUTE_TYPES = ("float32", "float16", "int8", "int8_float32", "int8_float16", "int16", "bfloat16", "default", "auto")


class WhisperModel(WhisperWhiteBoxModel):
    """Whisper `variant` ("tiny.en", "base") from its installed CTranslate2 export.

    `compute_type`: ctranslate2's (float32 by default, so the black box agrees
    with the float32 white box token for token). `threads`: ctranslate2's
    intra-op threads, 0 for its default; torch's thread count is the
    process's (``torch.set_num_threads``), not set here because it is global.
    `language`/`task`: the prompt of a multilingual model (ignored by an
    English-only one). `name`: the name results are stored under.
    """

    def __init__(self, variant: str = "tiny.en", compute_type: str = "float32", threads: int = 0,
                 language: str | None = "en", task: str = "transcribe", name: str | None = None):
        super().__init__(language=language, task=task)
        if compute_type not in COMPUTE_TYPES:
            raise InputError(f"whisper: compute_type {compute_type!r} is not one of {', '.join(COMPUTE_TYPES)}")
        if int(threads) < 0:
            raise InputError(f"whisper: threads must be >= 0 (0 = ctranslate2's default), got {threads}")
        self.source: WhisperSource = find_source(variant)
        self.compute_type = compute_type
        self.threads = int(threads)
        self.name = name or f"whisper-{variant.replace('.', '-')}"
        self.version = self.source.versions[0]
        self._ct2 = None

    # --- the two faces ----------------------------------------------------
    def _load_torch(self):
        from .hf_directory import load_torch

        return load_torch(converted_dir(self.source), self.language, self.task)

    @property
    def ct2(self):
        """The ctranslate2 model (loaded on first use; the split base model is joined in the cache)."""
        if self._ct2 is None:
            import ctranslate2

            model = ctranslate2.models.Whisper(str(ct2_dir(self.source)), device="cpu",
                                               compute_type=self.compute_type, intra_threads=self.threads)
            if model.is_multilingual == self.source.variant.english_only:
                raise InputError(f"whisper {self.source.name}: ctranslate2 says is_multilingual="
                                 f"{model.is_multilingual}, the variant table says the opposite")
            self._ct2 = model
        return self._ct2

    @cached_property
    def ct2_log_mel(self):
        """The front end for the black box (no converted model needed)."""
        from .convert import build_feature_extractor
        from .logmel import LogMel

        return LogMel.from_feature_extractor(build_feature_extractor(self.ct2.n_mels))

    @cached_property
    def ct2_tokenizer(self):
        from .convert import build_tokenizer

        return build_tokenizer(self.source.tokenizer_json)

    @cached_property
    def special(self) -> SpecialTokens:
        english_only = self.source.variant.english_only
        return SpecialTokens.from_tokenizer_json(self.source.tokenizer_json, english_only=english_only)

    @property
    def prompt_ids(self) -> tuple[int, ...]:
        return self.special.prompt(None if self.special.english_only else (self.language or "en"), self.task)

    # --- black box --------------------------------------------------------
    def ct2_ids(self, waveforms: Sequence[np.ndarray]) -> list[list[int]]:
        """Greedy token ids from CTranslate2 (no prompt, no EOS), `BATCH` utterances per call."""
        import ctranslate2
        import torch

        xs = self._checked(waveforms, "waveform")
        prompt = list(self.prompt_ids)
        out: list[list[int]] = []
        for i in range(0, len(xs), BATCH):
            with torch.no_grad():
                feats = torch.cat([self.ct2_log_mel(torch.from_numpy(x)) for x in xs[i:i + BATCH]]).numpy()
            results = self.ct2.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)),
                                        [prompt] * len(feats), beam_size=1)
            out.extend([int(t) for t in r.sequences_ids[0] if t != self.special.eot] for r in results)
        return out

    def transcribe(self, waveforms: Sequence[np.ndarray]) -> list[list[str]]:
        """CTranslate2's greedy transcript, split into raw words (normalised by the caller)."""
        eot = self.special.eot
        return [self.ct2_tokenizer.decode([t for t in ids if t < eot]).split() for ids in self.ct2_ids(waveforms)]

    def transcribe_whitebox(self, waveforms: Sequence[np.ndarray]) -> list[list[str]]:
        """The same, decoded by the converted transformers model (for comparisons)."""
        return super().transcribe(waveforms)

    def save_pretrained(self, path) -> None:
        """Write the converted model and processor as a transformers directory."""
        self.torch.model.save_pretrained(str(path))
        from transformers import WhisperProcessor

        WhisperProcessor(feature_extractor=self.torch.feature_extractor, tokenizer=self.torch.tokenizer) \
            .save_pretrained(str(path))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "variant": self.source.name,
            "source": self.source.distributions,
            "model_bin_sha256": self.source.digest,
            "compute_type": self.compute_type,
            "threads": self.threads,
            "prompt": list(self.prompt_ids),
            "decoding": "greedy",
        }
