"""The model interface, by capability.

A model declares what it can do; the harness and methods ask for what they
need and skip (with a stored reason) what a model cannot do.

* ``transcribe``: waveforms -> word lists (ASR), batched.
* ``classify``: waveforms -> class probabilities (classifiers), batched.
* ``differentiable``: a torch forward from a waveform tensor to a scalar
  score for a target: for ASR the sum of the log-probabilities of the target
  word's tokens under teacher forcing against the model's own clean
  transcript (:meth:`SpeechModel.forced_transcript`); for a classifier the
  class logit. Attribution over the STFT goes through the differentiable
  ISTFT front end in :mod:`ssbm_bench.frontend`.
* ``score_tokens``: teacher-forced per-token correctness against a given
  transcript (the SalASR poster's token success rate).
* ``align``: force-align known words to audio, giving word times.
* ``embed``: the model's *embedding*, the output of its fixed front end
  (the first representation every seed of a family shares: wav2vec2's CNN
  output in the ISA paper; Whisper's log-mel; a speechbrain classifier's
  normalised filterbank), and the target score as a function of it, so that
  methods can attribute over the embedding input type
  (:mod:`ssbm_bench.feature_spaces`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
from abc import ABC
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .errors import CapabilityMissing
from .types import Target, Word


class Capability(str, Enum):
    TRANSCRIBE = "transcribe"
    CLASSIFY = "classify"
    DIFFERENTIABLE = "differentiable"
    SCORE_TOKENS = "score_tokens"
    ALIGN = "align"
    EMBED = "embed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ForcedTranscript:
    """What teacher forcing scores against: the model's own clean output.

    `token_ids` are the transcript tokens after the model's prompt;
    `word_of_token[i]` is the index of the (normalised) word that token i
    belongs to, or None for punctuation / special tokens; `words` are the
    normalised words, so `word_of_token` indexes them.
    """

    text: str
    token_ids: tuple[int, ...]
    word_of_token: tuple[int | None, ...]
    words: tuple[str, ...]
    prompt_ids: tuple[int, ...] = ()
    meta: dict = field(default_factory=dict, compare=False)

    def tokens_of_word(self, index: int) -> list[int]:
        return [i for i, w in enumerate(self.word_of_token) if w == index]


@dataclass(frozen=True)
class Embedding:
    """A model's embedding of one waveform (capability ``embed``).

    `values`: (frames, dims) torch tensor, `hop_seconds` apart, frame k
    centred at k * hop_seconds. `frequency_weights` (dims, n_bins) at
    frequencies `bin_hz` say which frequencies each dimension reads (mel
    filters), for projecting attributions back onto the STFT grid; None when
    the dimensions have no frequency meaning. `context`: whatever else the
    model needs to score from the embedding (held fixed, not attributed).
    """

    values: object
    hop_seconds: float
    label: str
    frequency_weights: np.ndarray | None = None
    bin_hz: np.ndarray | None = None
    context: object = None


class SpeechModel(ABC):
    """Base class for model plugins. Override the methods you declare."""

    name: str = "model"
    version: str = "0"
    sample_rate: int = 16000
    capabilities: frozenset[Capability] = frozenset()
    #: longest input in seconds the model accepts, None for no limit;
    #: longer input is refused with an InputError that says so
    max_duration: float | None = None
    #: class names, for classifiers
    labels: tuple[str, ...] = ()

    def has(self, capability: Capability | str) -> bool:
        return Capability(capability) in self.capabilities

    def require(self, capability: Capability | str, for_what: str) -> None:
        if not self.has(capability):
            have = ", ".join(sorted(str(c) for c in self.capabilities)) or "none"
            raise CapabilityMissing(
                f"{for_what} needs capability {Capability(capability)} but model {self.name!r} has only: {have}"
            )

    # --- transcribe / classify -------------------------------------------
    def transcribe(self, waveforms: Sequence[np.ndarray]) -> list[list[str]]:
        """Recognise each waveform; return raw word lists (normalised by the caller)."""
        raise CapabilityMissing(f"model {self.name!r} cannot transcribe")

    def classify(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities, shape (batch, len(self.labels))."""
        raise CapabilityMissing(f"model {self.name!r} cannot classify")

    # --- differentiable ---------------------------------------------------
    def forced_transcript(self, waveform: np.ndarray) -> ForcedTranscript:
        """The model's own greedy transcript of the clean waveform, tokenised
        and mapped to words, for teacher forcing (ASR models)."""
        raise CapabilityMissing(f"model {self.name!r} has no teacher-forced transcript")

    def token_log_probs(self, waveform, transcript: ForcedTranscript):
        """Per-token log-probabilities (torch, shape (len(token_ids),)) of
        `transcript` under teacher forcing, differentiable w.r.t. `waveform`
        (a 1-D float torch tensor at `sample_rate`)."""
        raise CapabilityMissing(f"model {self.name!r} is not differentiable")

    def class_logits(self, waveform):
        """Class logits (torch, shape (len(self.labels),)), differentiable
        w.r.t. `waveform` (a 1-D float torch tensor)."""
        raise CapabilityMissing(f"model {self.name!r} is not a differentiable classifier")

    def target_score(self, waveform, target: Target, transcript: ForcedTranscript | None = None):
        """Scalar torch score for `target`: the sum of the log-probabilities
        of the target word's tokens (kind "word"; index into
        `transcript.words`, all tokens for index -1), or a class logit."""
        self.require(Capability.DIFFERENTIABLE, "a gradient of the target score")
        if target.kind == "class":
            return self.word_or_class_score(self.class_logits(waveform), target, transcript)
        if transcript is None:
            raise CapabilityMissing(f"model {self.name!r}: a word target needs the forced transcript")
        return self.word_or_class_score(self.token_log_probs(waveform, transcript), target, transcript)

    # --- embedding --------------------------------------------------------
    def embed(self, waveform) -> Embedding:
        """The embedding of a 1-D float torch waveform, differentiable w.r.t. it."""
        raise CapabilityMissing(f"model {self.name!r} exposes no embedding")

    def embedding_target_score(self, values, embedding: Embedding, target: Target,
                               transcript: ForcedTranscript | None = None):
        """Scalar torch score for `target` as a function of embedding `values`
        (shape of ``embedding.values``), everything else as in `embedding`."""
        raise CapabilityMissing(f"model {self.name!r} cannot score from its embedding")

    def word_or_class_score(self, log_probs_or_logits, target: Target, transcript: ForcedTranscript | None):
        """The target's score from per-token log-probabilities (words) or logits (classes)."""
        if target.kind == "class":
            return log_probs_or_logits[target.index]
        if transcript is None:
            raise CapabilityMissing(f"model {self.name!r}: a word target needs the forced transcript")
        if target.index == -1:
            return log_probs_or_logits.sum()
        idx = transcript.tokens_of_word(target.index)
        if not idx:
            from .errors import InputError

            raise InputError(f"model {self.name!r}: word {target.index} ({target.label!r}) has no tokens in the "
                             f"transcript {transcript.text!r}")
        return log_probs_or_logits[idx].sum()

    # --- teacher-forced token success ------------------------------------
    def score_tokens(self, waveforms: Sequence[np.ndarray], transcript: ForcedTranscript) -> list[np.ndarray]:
        """For each waveform, one bool per transcript token: does the
        teacher-forced argmax equal that token?"""
        raise CapabilityMissing(f"model {self.name!r} cannot score tokens under teacher forcing")

    # --- alignment --------------------------------------------------------
    def align(self, waveform: np.ndarray, words: Sequence[str]) -> list[Word]:
        raise CapabilityMissing(f"model {self.name!r} cannot force-align")

    def describe(self) -> dict:
        """Identity of the model as stored with every result (name, version, settings)."""
        return {"name": self.name, "version": self.version}

    def check_duration(self, waveform: np.ndarray, what: str = "input") -> None:
        """Refuse audio longer than the model accepts, saying so."""
        if self.max_duration is not None:
            dur = len(waveform) / float(self.sample_rate)
            if dur > self.max_duration + 1e-9:
                from .errors import InputError

                raise InputError(f"model {self.name!r}: {what} is {dur:.2f} s long; it accepts at most "
                                 f"{self.max_duration:g} s (split the audio, or use a corpus of shorter utterances)")


def files_digest(paths: Iterable[str | os.PathLike], root: str | os.PathLike) -> str:
    """The identity of a model's files (its ``weights_sha256``): SHA-256 over
    each file's name and content.

    Each path counts once, in the order of the paths as text; a file is named
    by its path relative to `root`, or by its base name when it lies outside
    `root` (a checkpoint that a model description points to elsewhere). The
    digest enters stored results, so this must not change: a model adapter
    hands it the same files in any order and gets the same digest.
    """
    root = Path(root)
    h = hashlib.sha256(b"ssbm-bench weights digest v1\n")
    for p in sorted({Path(q) for q in paths}, key=str):
        name = str(p.relative_to(root)) if p.is_relative_to(root) else p.name
        h.update(name.encode() + b"\n")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\n")
    return h.hexdigest()


def installed_version(distribution: str) -> str:
    """The installed version of `distribution`, or "unknown"."""
    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return "unknown"


def weights_version(packages: Sequence[str], weights_sha256: str) -> str:
    """A directory model's ``version``: the packages that run it and its weights, e.g.
    ``"transformers 4.57.1, torch 2.11.0, weights sha256 0123456789ab"`` (part of every result's key)."""
    return ", ".join(f"{p} {installed_version(p)}" for p in packages) + f", weights sha256 {weights_sha256[:12]}"


def equal_length_batches(waveforms: Sequence[np.ndarray], size: int) -> Iterator[list[int]]:
    """Indices of equal-length waveforms, in batches of at most `size`, so that no padding enters the model."""
    by_length: dict[int, list[int]] = {}
    for i, x in enumerate(waveforms):
        by_length.setdefault(len(x), []).append(i)
    for idx in by_length.values():
        for start in range(0, len(idx), size):
            yield idx[start : start + size]
