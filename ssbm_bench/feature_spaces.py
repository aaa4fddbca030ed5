"""Feature spaces (input types): what an attribution method works over.

The ISA paper (Shen et al., "On the reliability of feature attribution
methods for speech classification") asks which *input type* an attribution is
computed over: the waveform, the spectrogram, or the model's embedding (the
output of its fixed front end, the first representation every seed of a
family shares). Each is a :class:`FeatureSpace`, and all three live here:
:class:`MagnitudeSpace` (the STFT magnitude, or its log), :class:`WaveformSpace`
and :class:`EmbeddingSpace`. :func:`make_space` picks one by name
(:data:`FEATURES`), so that every captum method runs over any of them
unchanged. The protocol:

* ``shape``, ``inputs()``, ``forward(x)`` (a batch of features -> scores),
  ``silence()`` and ``fill_content(fill, seed)`` (captum's baselines: digital
  silence and the fill's content, *converted into the space*, as the ISA
  paper does for its baselines), ``patch_mask`` / ``word_mask`` (feature
  masks for the perturbation methods), and ``evaluations``.
* ``to_stft(values)``: the attribution on the STFT grid (freq x frames), so
  that SSBM and deletion score every input type with the same masks.
* ``native(values)``: the attribution in its own space, with its time step,
  for ISA (which compares attributions where they were computed).
(:mod:`ssbm_bench.feature_projections` says how an attribution comes back
to the STFT grid.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .audio import istft, stft
from .errors import InputError
from .fill import Fill, FillContext
from .frontend import StftFrontEnd
from .feature_projections import (embedding_to_stft, patch_mask, steps_in_words, time_blocks, waveform_to_stft,
                                  word_mask)
from .model import Capability, Embedding, SpeechModel


#: feature spaces (input types): over the STFT grid, the magnitude itself or
#: its natural log; the waveform; the model's embedding (capability "embed").
#: Maps always come back on the STFT grid.
STFT_FEATURES = ("magnitude", "log-magnitude")
FEATURES = (*STFT_FEATURES, "waveform", "embedding")
#: floor added before the log, so silence (magnitude 0) has a finite log
LOG_EPS = 1e-6


@dataclass(frozen=True)
class NativeAttribution:
    """An attribution in the space it was computed in: (time steps, features),
    `step_seconds` apart; `frame_steps` native steps make one aggregation frame."""

    values: np.ndarray
    step_seconds: float
    space: str
    frame_steps: int = 1

    def frame_sums(self) -> np.ndarray:
        """Sum per aggregation frame (the ISA paper's frame-level aggregation)."""
        per_step = self.values.sum(axis=1)
        k = max(1, int(self.frame_steps))
        n = -(-per_step.size // k)
        padded = np.zeros(n * k)
        padded[: per_step.size] = per_step
        return padded.reshape(n, k).sum(axis=1)

    @property
    def frame_seconds(self) -> float:
        return self.step_seconds * max(1, int(self.frame_steps))

    def word_spans(self, words, n_frames: int) -> list[tuple[int, int]]:
        """[start, stop) aggregation frames whose centre lies in each word (at least one)."""
        t = (np.arange(n_frames) + 0.5) * self.frame_seconds if self.frame_steps > 1 \
            else np.arange(n_frames) * self.frame_seconds
        spans = []
        for w in words:
            idx = np.nonzero((t >= w.start) & (t <= w.end))[0]
            if idx.size == 0:
                c = int(np.clip(np.argmin(np.abs(t - 0.5 * (w.start + w.end))), 0, n_frames - 1))
                spans.append((c, c + 1))
            else:
                spans.append((int(idx[0]), int(idx[-1]) + 1))
        return spans


@runtime_checkable
class FeatureSpace(Protocol):
    """One utterance's features as captum's input space (see the module docstring).

    `request` is the method's :class:`ssbm_bench.method.ExplainRequest`;
    `evaluations` counts model calls (the cost of an explanation);
    `space_name` is recorded with the map (``"stft"``, ``"waveform"``,
    ``"embedding"``).
    """

    space_name: str
    request: object
    evaluations: int

    @property
    def shape(self) -> tuple[int, ...]:
        """The features of one input (no batch axis)."""

    def inputs(self, requires_grad: bool = False) -> torch.Tensor:
        """The clean input, (1, *shape)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *shape) features -> (B,) target scores; gradients flow when `x` requires them."""

    def silence(self) -> torch.Tensor:
        """Digital silence converted into the space, (1, *shape)."""

    def fill_content(self, fill: Fill | None, seed: int) -> torch.Tensor:
        """What `fill` puts where everything is occluded, in the space, (1, *shape)."""

    def patch_mask(self, patch_freq: int, patch_frames: int) -> torch.Tensor:
        """(1, *shape) ids of non-overlapping patches of `patch_frames` STFT hops (and `patch_freq` bins)."""

    def word_mask(self, words) -> torch.Tensor:
        """(1, *shape) ids: each word one feature, everything outside the words one more."""

    def to_stft(self, values: np.ndarray) -> np.ndarray:
        """An attribution of `shape` on the STFT grid (freq x frames)."""

    def native(self, values: np.ndarray) -> NativeAttribution:
        """An attribution of `shape` in its own space, for ISA."""


# --- the three spaces ----------------------------------------------------------------------
class _SpaceBase(ABC):
    """What every feature space shares: the request, the model's target, the
    batched forward over :meth:`score`, and the fill's context."""

    space_name = "?"

    def __init__(self, request, model_target: Any):
        self.request = request
        self.model: SpeechModel = request.model
        self.mt = model_target
        self.cfg = request.cfg
        self.evaluations = 0

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The features of one input (no batch axis)."""

    @abstractmethod
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The target score of one input of `shape`."""

    def score_waveform(self, wave: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        return self.model.target_score(wave, self.mt.target, self.mt.transcript)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = 1 + len(self.shape)
        if x.ndim != expected:
            raise InputError(f"{self.space_name} space: expected a batch of shape (B, {', '.join(map(str, self.shape))})"
                             f", got shape {tuple(x.shape)}")
        with torch.set_grad_enabled(torch.is_grad_enabled() and x.requires_grad):
            return torch.stack([self.score(x[b]).reshape(()) for b in range(x.shape[0])])

    def fill_context(self, seed: int) -> FillContext:
        """The context a fill is applied in: random fills draw from a
        generator seeded by `seed`, so the baseline is reproducible."""
        wave = self.request.utterance.waveform
        rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
        return FillContext(rng=np.random.default_rng(seed), cfg=self.cfg, n_samples=len(wave),
                           level_db=float(self.request.noise_level_db or 0.0), reference_rms=rms)


class MagnitudeSpace(_SpaceBase):
    """The STFT magnitude of one utterance as captum's input space.

    `forward(x)` maps a (B, freq, frames) batch of features to (B,) target
    scores through ISTFT(magnitude, clean phase) and the model
    (:class:`ssbm_bench.frontend.StftFrontEnd`). Gradients flow when `x`
    requires them; otherwise the model runs without autograd.

    `feature = "log-magnitude"` attributes over x = ln(|X| + LOG_EPS) instead
    (magnitude = exp(x) - LOG_EPS): what speech models read is a log
    spectrogram, and a gradient w.r.t. the linear magnitude carries the log's
    1/|X| factor, which ranks the quietest points highest (measured: deleting
    the *bottom* of a linear-magnitude gradient map hurts Whisper and
    silero-vad most). The gradient w.r.t. the log magnitude is
    |X| dScore/d|X|, gradient times input. Both give maps on the same grid.
    """

    space_name = "stft"

    def __init__(self, request, model_target: Any, feature: str = "magnitude"):
        if feature not in STFT_FEATURES:
            raise InputError(f"feature must be one of {', '.join(STFT_FEATURES)}, got {feature!r}")
        super().__init__(request, model_target)
        self.feature = feature
        self.front = StftFrontEnd(request.utterance.waveform, request.cfg)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.front.magnitude.shape)  # type: ignore[return-value]

    def to_feature(self, magnitude: torch.Tensor) -> torch.Tensor:
        return torch.log(magnitude + LOG_EPS) if self.feature == "log-magnitude" else magnitude

    def to_magnitude(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.exp(x) - LOG_EPS).clamp_min(0.0) if self.feature == "log-magnitude" else x

    def inputs(self, requires_grad: bool = False) -> torch.Tensor:
        x = self.to_feature(self.front.magnitude.detach().clone()).unsqueeze(0)
        return x.requires_grad_(requires_grad)

    def score(self, feature: torch.Tensor) -> torch.Tensor:
        return self.score_waveform(self.front.waveform(self.to_magnitude(feature)))

    def silence(self) -> torch.Tensor:
        """Digital silence, converted into this space: |STFT(zeros)| (all zero; ln(LOG_EPS) in log space)."""
        zeros = torch.zeros(self.front.n_samples, dtype=torch.float32)
        return self.to_feature(stft(zeros, self.cfg).abs()).unsqueeze(0)

    def fill_content(self, fill: Fill | None, seed: int) -> torch.Tensor:
        """|fill(clean STFT, weight = 1)| in this space (silence when no fill)."""
        if fill is None:
            return self.silence()
        clean = torch.polar(self.front.magnitude, self.front.phase)
        out = fill.apply(clean, np.ones(self.shape), self.fill_context(seed))
        return self.to_feature(out.abs().to(torch.float32).detach()).unsqueeze(0)

    def patch_mask(self, patch_freq: int, patch_frames: int) -> torch.Tensor:
        return patch_mask(*self.shape, patch_freq, patch_frames).unsqueeze(0)

    def word_mask(self, words) -> torch.Tensor:
        n_freq, n_frames = self.shape
        spans = [self.cfg.frame_span(w.start, w.end, n_frames) for w in words]
        return word_mask(n_freq, n_frames, spans).unsqueeze(0)

    def to_stft(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).reshape(self.shape)

    def native(self, values: np.ndarray) -> NativeAttribution:
        return NativeAttribution(np.asarray(values, np.float64).reshape(self.shape).T,
                                 self.cfg.hop / self.cfg.sample_rate, f"stft:{self.feature}")


class _ProjectedSpace(_SpaceBase):
    """A space whose attributions are projected onto the STFT grid by the
    clean spectrum (the waveform and the embedding; see the module docstring)."""

    def __init__(self, request, model_target: Any):
        super().__init__(request, model_target)
        self.waveform = torch.as_tensor(np.asarray(request.utterance.waveform), dtype=torch.float32)
        self.clean_spec = stft(self.waveform, self.cfg)
        self.clean_magnitude = self.clean_spec.abs().double().numpy()

    def fill_waveform(self, fill: Fill | None, seed: int) -> torch.Tensor:
        """The fill's content for a fully occluded utterance, as a waveform (silence when no fill)."""
        if fill is None:
            return torch.zeros_like(self.waveform)
        out = fill.apply(self.clean_spec, np.ones(tuple(self.clean_spec.shape)), self.fill_context(seed))
        return istft(torch.as_tensor(out).to(torch.complex64), self.waveform.numel(), self.cfg).detach()


class WaveformSpace(_ProjectedSpace):
    """The waveform samples as captum's input space (shape (samples,))."""

    space_name = "waveform"

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.waveform.numel()),)

    def inputs(self, requires_grad: bool = False) -> torch.Tensor:
        return self.waveform.detach().clone().unsqueeze(0).requires_grad_(requires_grad)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_waveform(x)

    def silence(self) -> torch.Tensor:
        return torch.zeros(1, *self.shape)

    def fill_content(self, fill: Fill | None, seed: int) -> torch.Tensor:
        return self.fill_waveform(fill, seed).unsqueeze(0)

    def patch_mask(self, patch_freq: int, patch_frames: int) -> torch.Tensor:
        """Time spans of `patch_frames` STFT hops (a waveform has no frequency axis)."""
        return time_blocks(self.shape[0], patch_frames * self.cfg.hop).unsqueeze(0)

    def word_mask(self, words) -> torch.Tensor:
        return steps_in_words(self.shape[0], 1.0 / self.cfg.sample_rate, words).unsqueeze(0)

    def to_stft(self, values: np.ndarray) -> np.ndarray:
        return waveform_to_stft(np.asarray(values).reshape(-1), self.clean_magnitude, self.cfg)

    def native(self, values: np.ndarray) -> NativeAttribution:
        # frame-level aggregation sums the samples of each STFT hop (16 ms by default)
        return NativeAttribution(np.asarray(values, np.float64).reshape(-1, 1), 1.0 / self.cfg.sample_rate,
                                 "waveform", frame_steps=self.cfg.hop)


class EmbeddingSpace(_ProjectedSpace):
    """The model's embedding (its fixed front end's output, (frames, dims))."""

    space_name = "embedding"

    def __init__(self, request, model_target):
        super().__init__(request, model_target)
        self.model.require(Capability.EMBED, "attribution over the model's embedding")
        with torch.no_grad():
            self.embedding: Embedding = self.model.embed(self.waveform)
        self.clean_values = self.embedding.values.detach().to(torch.float32)
        if self.clean_values.ndim != 2:
            raise InputError(f"model {self.model.name!r}: embed() must give (frames, dims), "
                             f"got shape {tuple(self.clean_values.shape)}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.clean_values.shape)

    def inputs(self, requires_grad: bool = False) -> torch.Tensor:
        return self.clean_values.clone().unsqueeze(0).requires_grad_(requires_grad)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        return self.model.embedding_target_score(x, self.embedding, self.mt.target, self.mt.transcript)

    def _embed(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            values = self.model.embed(wave).values.detach().to(torch.float32)
        if tuple(values.shape) != self.shape:
            raise InputError(f"model {self.model.name!r}: the embedding of the baseline has shape "
                             f"{tuple(values.shape)}, the utterance's {self.shape}")
        return values.unsqueeze(0)

    def silence(self) -> torch.Tensor:
        """Digital silence converted into the embedding (the ISA paper's baseline)."""
        return self._embed(torch.zeros_like(self.waveform))

    def fill_content(self, fill: Fill | None, seed: int) -> torch.Tensor:
        return self._embed(self.fill_waveform(fill, seed))

    def patch_mask(self, patch_freq: int, patch_frames: int) -> torch.Tensor:
        """Blocks of the same duration as `patch_frames` STFT hops, and of the
        same share of the feature axis as `patch_freq` of the STFT's bins."""
        frames, dims = self.shape
        steps = max(1, round(patch_frames * self.cfg.hop / self.cfg.sample_rate / self.embedding.hop_seconds))
        dim_block = max(1, round(dims * patch_freq / self.cfg.n_freq))
        t = time_blocks(frames, steps)
        d = torch.arange(dims) // dim_block
        per_row = int(d.max()) + 1
        return (t[:, None] * per_row + d[None, :]).long().unsqueeze(0)

    def word_mask(self, words) -> torch.Tensor:
        frames, dims = self.shape
        ids = steps_in_words(frames, self.embedding.hop_seconds, words)
        return ids[:, None].expand(frames, dims).clone().unsqueeze(0)

    def to_stft(self, values: np.ndarray) -> np.ndarray:
        a = np.asarray(values, dtype=np.float64).reshape(self.shape)
        return embedding_to_stft(a, self.embedding, self.clean_magnitude, self.cfg)

    def native(self, values: np.ndarray) -> NativeAttribution:
        return NativeAttribution(np.asarray(values, np.float64).reshape(self.shape), self.embedding.hop_seconds,
                                 f"embedding:{self.embedding.label}")


def make_space(request, model_target: Any, feature: str) -> FeatureSpace:
    # model_target: the resolved target (ssbm_bench.attribution.ModelTarget), whose score the space differentiates
    """The feature space an attribution method works in (see :data:`FEATURES`)."""
    if feature == "waveform":
        return WaveformSpace(request, model_target)
    if feature == "embedding":
        return EmbeddingSpace(request, model_target)
    return MagnitudeSpace(request, model_target, feature)
