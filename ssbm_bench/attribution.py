"""Shared machinery for attribution methods that call captum.

Every captum-based method plugin (gradients, perturbations, SoundLIME)
attributes over the same feature space: the clean STFT magnitude, turned back
into a waveform by the differentiable ISTFT front end with the clean phase
(:mod:`ssbm_bench.frontend`), scored by the model's differentiable target
score. This module holds what they share, so that each plugin is only the
captum call and its parameters:

* :func:`resolve_target`: the model-side target. A word target of the harness
  indexes the *reference* words; the score is defined over the model's own
  clean transcript (teacher forcing), so the index is mapped through an
  edit-distance alignment of the two (identity when they agree, which is
  the case for every utterance SSBM keeps). ``scope="transcript"`` asks for
  the SalASR score: the sum over all the transcript's tokens.
* :class:`MagnitudeSpace`: the batched forward function captum calls,
  (B, freq, frames) magnitudes -> (B,) scores, and the fill's content
  converted into this space (captum's ``baselines``). ``feature =
  "waveform"`` or ``"embedding"`` swaps in the spaces of
  :mod:`ssbm_bench.feature_spaces` (the ISA paper's input types), which
  bring their attributions back onto the STFT grid.
* :func:`finite_attribution`: NaN or infinite attributions raise
  :class:`AttributionError` naming the method, utterance and target, so the
  harness stores an error rather than a score.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from abc import abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from .artifacts import artifact_key
from .errors import InputError
from .fill import Fill, FillContext
from .frontend import StftFrontEnd
from .method import SaliencyMethod
from .model import Capability, ForcedTranscript, SpeechModel
from .text import normalise_words
from .types import SaliencyMap, Target

SCOPES = ("word", "transcript")


class AttributionError(InputError):
    """An attribution that cannot become a map (NaN or infinite values)."""


def _transcript_to_json(ft: ForcedTranscript) -> dict:
    return {"text": ft.text, "token_ids": list(ft.token_ids), "word_of_token": list(ft.word_of_token),
            "words": list(ft.words), "prompt_ids": list(ft.prompt_ids)}


def _transcript_from_json(d: dict) -> ForcedTranscript:
    return ForcedTranscript(d["text"], tuple(d["token_ids"]), tuple(d["word_of_token"]), tuple(d["words"]),
                            tuple(d["prompt_ids"]))


#: in-process memo of forced transcripts: (model describe digest, utterance id, waveform digest) -> transcript
_TRANSCRIPTS: dict[str, ForcedTranscript] = {}


def forced_transcript(model: SpeechModel, utterance, artifacts=None) -> ForcedTranscript:
    """The model's own clean transcript, decoded once per model and utterance
    (kept in memory and, when the caller keeps artifacts, in the store)."""
    wave_digest = hashlib.sha256(np.ascontiguousarray(utterance.waveform).tobytes()).hexdigest()[:16]
    key = artifact_key("forced-transcript", model=model.describe(), utterance=utterance.id, audio=wave_digest)
    if key in _TRANSCRIPTS:
        return _TRANSCRIPTS[key]
    ft = None
    if artifacts is not None:
        cached = artifacts.get(key)
        if cached is not None:
            ft = _transcript_from_json(cached)
    if ft is None:
        ft = model.forced_transcript(utterance.waveform)
        if artifacts is not None:
            artifacts.put(key, _transcript_to_json(ft))
    _TRANSCRIPTS[key] = ft
    return ft


def reference_to_transcript_index(reference: list[str], transcript_words: tuple[str, ...], index: int) -> int | None:
    """Index in the transcript of reference word `index` (None when the
    recogniser did not say that word in its place)."""
    if list(transcript_words) == list(reference):
        return index
    from .metrics.word_accuracy import align_words

    for i, j in align_words(reference, list(transcript_words)):
        if i == index:
            return j if j is not None and transcript_words[j] == reference[index] else None
    return None


@dataclass(frozen=True)
class ModelTarget:
    """The target as the model scores it."""

    target: Target
    transcript: ForcedTranscript | None
    scope: str
    #: what is scored, for the record (the transcript word, or "all tokens")
    label: str
    #: transcript token positions the score sums over (ASR), empty for classes
    token_positions: tuple[int, ...] = ()


def resolve_target(request, scope: str = "word") -> ModelTarget:
    """Map the harness's target onto the model's score (see module docstring)."""
    if scope not in SCOPES:
        raise InputError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    model, utt, target = request.model, request.utterance, request.target
    if target.kind == "class":
        if not model.has(Capability.CLASSIFY):
            raise InputError(f"model {model.name!r} is not a classifier; a class target ({target.key}) needs one")
        if not 0 <= target.index < len(model.labels):
            raise InputError(f"class target {target.key}: model {model.name!r} has classes {list(model.labels)}")
        return ModelTarget(target, None, "class", model.labels[target.index])
    ft = forced_transcript(model, utt, request.artifacts)
    if not ft.token_ids:
        raise InputError(f"model {model.name!r} transcribed utterance {utt.id!r} as nothing; no token to explain")
    if scope == "transcript" or target.index == -1:
        return ModelTarget(Target("word", -1, "<transcript>"), ft, "transcript", "all tokens",
                           tuple(range(len(ft.token_ids))))
    reference = normalise_words([w.text for w in utt.words])
    if not 0 <= target.index < len(reference):
        raise InputError(f"target word index {target.index} is outside utterance {utt.id!r} "
                         f"with {len(reference)} words")
    j = reference_to_transcript_index(reference, ft.words, target.index)
    if j is None or not ft.tokens_of_word(j):
        raise InputError(f"target word {target.index} ({reference[target.index]!r}) of utterance {utt.id!r} is not "
                         f"in model {model.name!r}'s own transcript {ft.text!r}, so it has no score to explain")
    return ModelTarget(Target("word", j, ft.words[j]), ft, "word", ft.words[j], tuple(ft.tokens_of_word(j)))


#: feature spaces (input types): over the STFT grid, the magnitude itself or
#: its natural log; the waveform; the model's embedding (capability "embed").
#: Maps always come back on the STFT grid (ssbm_bench.feature_spaces).
STFT_FEATURES = ("magnitude", "log-magnitude")
FEATURES = (*STFT_FEATURES, "waveform", "embedding")
#: floor added before the log, so silence (magnitude 0) has a finite log
LOG_EPS = 1e-6


class MagnitudeSpace:
    """The STFT magnitude of one utterance as captum's input space.

    `forward(x)` maps a (B, freq, frames) batch of features to (B,) target
    scores through ISTFT(magnitude, clean phase) and the model. Gradients
    flow when `x` requires them; otherwise the model runs without autograd.
    `evaluations` counts model calls (the cost of an explanation).

    `feature = "log-magnitude"` attributes over x = ln(|X| + LOG_EPS) instead
    (magnitude = exp(x) - LOG_EPS): what speech models read is a log
    spectrogram, and a gradient w.r.t. the linear magnitude carries the log's
    1/|X| factor, which ranks the quietest points highest (measured: deleting
    the *bottom* of a linear-magnitude gradient map hurts Whisper and
    silero-vad most). The gradient w.r.t. the log magnitude is
    |X| dScore/d|X|, gradient times input. Both give maps on the same grid.
    """

    space_name = "stft"

    def __init__(self, request, model_target: ModelTarget, feature: str = "magnitude"):
        if feature not in STFT_FEATURES:
            raise InputError(f"feature must be one of {', '.join(STFT_FEATURES)}, got {feature!r}")
        self.request = request
        self.model: SpeechModel = request.model
        self.mt = model_target
        self.feature = feature
        self.front = StftFrontEnd(request.utterance.waveform, request.cfg)
        self.evaluations = 0

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
        wave = self.front.waveform(self.to_magnitude(feature))
        self.evaluations += 1
        return self.model.target_score(wave, self.mt.target, self.mt.transcript)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise InputError(f"expected a (batch, freq, frames) feature batch, got shape {tuple(x.shape)}")
        with torch.set_grad_enabled(torch.is_grad_enabled() and x.requires_grad):
            return torch.stack([self.score(x[b]).reshape(()) for b in range(x.shape[0])])

    # --- baselines --------------------------------------------------------
    def silence(self) -> torch.Tensor:
        """Digital silence, converted into this space: |STFT(zeros)| (all zero; ln(LOG_EPS) in log space)."""
        from .audio import stft

        zeros = torch.zeros(self.front.n_samples, dtype=torch.float32)
        return self.to_feature(stft(zeros, self.request.cfg).abs()).unsqueeze(0)

    def fill_content(self, fill: Fill | None, seed: int) -> torch.Tensor:
        """What `fill` puts where a region is fully occluded, in this space
        (1, freq, frames): |fill(clean STFT, weight = 1)|. Random fills draw
        from a generator seeded by `seed`, so the baseline is reproducible."""
        if fill is None:
            return self.silence()
        clean = torch.polar(self.front.magnitude, self.front.phase)
        utt = self.request.utterance
        rms = float(np.sqrt(np.mean(np.square(utt.waveform, dtype=np.float64))))
        ctx = FillContext(rng=np.random.default_rng(seed), cfg=self.request.cfg, n_samples=self.front.n_samples,
                          level_db=float(self.request.noise_level_db or 0.0), reference_rms=rms)
        out = fill.apply(clean, np.ones(self.shape), ctx)
        return self.to_feature(out.abs().to(torch.float32).detach()).unsqueeze(0)


    # --- masks and maps (the interface every feature space shares) -----------
    def patch_mask(self, patch_freq: int, patch_frames: int) -> torch.Tensor:
        """(1, freq, frames) ids of non-overlapping time-frequency patches."""
        return patch_mask(*self.shape, patch_freq, patch_frames).unsqueeze(0)

    def word_mask(self, words) -> torch.Tensor:
        """(1, freq, frames) ids: each word's frames one feature, the rest one more."""
        n_freq, n_frames = self.shape
        spans = [self.request.cfg.frame_span(w.start, w.end, n_frames) for w in words]
        return word_mask(n_freq, n_frames, spans).unsqueeze(0)

    def to_stft(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).reshape(self.shape)

    def native(self, values: np.ndarray):
        from .feature_spaces import NativeAttribution

        return NativeAttribution(np.asarray(values, np.float64).reshape(self.shape).T,
                                 self.request.cfg.hop / self.request.cfg.sample_rate, f"stft:{self.feature}")


def word_mask(n_freq: int, n_frames: int, spans: list[tuple[int, int]]) -> torch.Tensor:
    """(n_freq, n_frames) feature ids for word-aligned perturbation (the ISA
    paper's sec. 3.3): every frame of word k (all frequencies) is feature k;
    the frames outside every word are one more feature, so that they are
    perturbed too but count as a single unit. Overlapping spans go to the
    later word."""
    cols = torch.full((n_frames,), len(spans), dtype=torch.long)
    for k, (start, stop) in enumerate(spans):
        cols[start:stop] = k
    return cols[None, :].expand(n_freq, n_frames).clone()


def patch_mask(n_freq: int, n_frames: int, patch_freq: int, patch_frames: int) -> torch.Tensor:
    """(n_freq, n_frames) integer ids of non-overlapping patches, row-major
    over (frequency band, time block); edge patches are smaller."""
    import math

    per_row = math.ceil(n_frames / patch_frames)
    f = torch.arange(n_freq)[:, None] // patch_freq
    t = torch.arange(n_frames)[None, :] // patch_frames
    return (f * per_row + t).long()


def make_space(request, model_target: ModelTarget, feature: str):
    """The feature space an attribution method works in (see FEATURES)."""
    from .feature_spaces import EmbeddingSpace, WaveformSpace

    if feature == "waveform":
        return WaveformSpace(request, model_target)
    if feature == "embedding":
        return EmbeddingSpace(request, model_target)
    return MagnitudeSpace(request, model_target, feature)


def finite_attribution(attr: torch.Tensor | np.ndarray, method: str, request,
                       shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The attribution as a float64 array of the space's `shape` (default: a
    (freq, frames) map, a leading batch axis dropped), or AttributionError if
    any value is NaN/inf."""
    a = attr.detach().cpu().double().numpy() if isinstance(attr, torch.Tensor) else np.asarray(attr, np.float64)
    if shape is not None:
        a = a.reshape(shape)
    else:
        a = a.reshape(a.shape[-2:]) if a.ndim == 3 else a
    bad = ~np.isfinite(a)
    if bad.any():
        raise AttributionError(
            f"method {method!r}: {int(bad.sum())} of {bad.size} attributions are NaN or infinite "
            f"(utterance {request.utterance.id!r}, target {request.target.key}, model {request.model.name!r}); "
            f"no map was produced")
    return a


SIGNS = ("signed", "abs", "positive")


def signed(values: np.ndarray, sign: str) -> np.ndarray:
    """Importance from an attribution: as is, its magnitude, or its positive part."""
    if sign == "abs":
        return np.abs(values)
    if sign == "positive":
        return np.maximum(values, 0.0)
    return values


def check_choice(name: str, value: str, choices: tuple[str, ...], method: str) -> str:
    if value not in choices:
        raise InputError(f"{method}: {name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_positive_int(name: str, value, method: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise InputError(f"{method}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@contextlib.contextmanager
def seeded(seed: int):
    """A context in which torch's global RNG (captum's LIME sampling) is seeded
    and restored afterwards, so methods are reproducible and side-effect free."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) % (2**63))
        yield


class AttributionMethod(SaliencyMethod):
    """Template for captum-based methods: resolve the target, build the
    magnitude space, call :meth:`attribute`, reject NaN/inf, return a
    "score" map on the STFT grid whose params record every setting, the
    seed, the number of model evaluations and the seconds it took."""

    requires = frozenset({Capability.DIFFERENTIABLE})
    map_kind = "score"
    #: default sign of the importance taken from the attribution
    default_sign = "signed"

    def __init__(self, scope: str = "word", sign: str | None = None, feature: str = "magnitude"):
        self.scope = check_choice("scope", scope, SCOPES, self.name)
        self.sign = check_choice("sign", sign or self.default_sign, SIGNS, self.name)
        self.feature = check_choice("feature", feature, FEATURES, self.name)
        if self.feature == "embedding":  # the harness skips models without one, saying so
            self.requires = self.requires | {Capability.EMBED}

    def settings(self) -> dict:
        """The method's parameters, recorded with every result (and in the cell key)."""
        return {"scope": self.scope, "sign": self.sign, "feature": self.feature}

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, **self.settings()}

    @abstractmethod
    def attribute(self, space: MagnitudeSpace, request) -> tuple[torch.Tensor, dict]:
        """captum's attribution over `space` (shape (1, freq, frames)) plus extra facts to record."""

    def explain(self, request) -> SaliencyMap:
        t0 = time.perf_counter()
        mt = resolve_target(request, self.scope)
        space = make_space(request, mt, self.feature)
        attr, extra = self.attribute(space, request)
        values = signed(finite_attribution(attr, self.name, request, space.shape), self.sign)
        params = {**self.settings(), "seed": int(request.seed), "target_scope": mt.scope, "target_label": mt.label,
                  "token_positions": list(mt.token_positions), "evaluations": space.evaluations,
                  "fill": request.fill.describe() if request.fill is not None else None,
                  "input_type": space.space_name, "input_shape": list(space.shape),
                  "seconds": round(time.perf_counter() - t0, 3), **extra}
        return SaliencyMap(space.to_stft(values), kind="score", space="stft", params=params,
                           native=space.native(values))


# --- LIME's pieces: the kernel and the interpretable model -------------------------
def interpretable_kernel(kernel_width: float = 0.25):
    """LIME's exponential kernel on the *interpretable* representation (the
    binary vector of components kept), cosine distance to the all-on vector:
    d = 1 - sqrt(k / n) for k of n components on, weight = exp(-d^2 / w^2).
    That is the original LIME's choice for images and SoundLIME's; captum's
    default kernel measures the distance in input space instead."""
    w2 = float(kernel_width) ** 2

    def similarity(original_inp, perturbed_inp, perturbed_interpretable_inp, **kwargs):
        z = perturbed_interpretable_inp.float()
        n = z.shape[-1]
        k = z.sum(dim=-1).clamp_min(0.0)
        d = 1.0 - torch.sqrt(k / float(n))
        return torch.exp(-(d * d) / w2)

    return similarity


def weighted_ridge_train(model, dataloader, construct_kwargs, alpha: float = 1.0, **fit_kwargs):
    """Closed-form weighted ridge regression for captum's ``LinearModel``
    (captum's own closed-form trainers need scikit-learn, which we do not
    install; its SGD trainers are stochastic and slow). The intercept is not
    penalised. Returns captum's training-stats dict."""
    xs, ys, ws = [], [], []
    for batch in dataloader:
        x, y = batch[0], batch[1]
        w = batch[2] if len(batch) > 2 else torch.ones(x.shape[0])
        xs.append(x.double().reshape(x.shape[0], -1))
        ys.append(y.double().reshape(-1))
        ws.append(w.double().reshape(-1))
    x, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws)
    sw = w.sum().clamp_min(1e-12)
    xm = (w[:, None] * x).sum(0) / sw
    ym = (w * y).sum() / sw
    xc, yc = x - xm, y - ym
    a = xc.T @ (w[:, None] * xc) + float(alpha) * torch.eye(x.shape[1], dtype=x.dtype)
    coef = torch.linalg.solve(a, xc.T @ (w * yc))
    intercept = ym - xm @ coef
    model._construct_model_params(norm_type=None, weight_values=coef.float().reshape(1, -1),
                                  bias_value=intercept.float().reshape(1))
    return {"train_time": 0.0}


def ridge_model(alpha: float = 1.0):
    """captum LinearModel trained by :func:`weighted_ridge_train`."""
    from functools import partial

    from captum._utils.models.linear_model import LinearModel

    return LinearModel(train_fn=partial(weighted_ridge_train, alpha=alpha))
