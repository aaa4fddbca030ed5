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
* the feature space (:mod:`ssbm_bench.feature_spaces`, chosen by the
  method's ``feature``): the batched forward function captum calls,
  (B, *shape) features -> (B,) scores, and the fill's content converted
  into the space (captum's ``baselines``); the STFT magnitude by default,
  or the waveform or the model's embedding (the ISA paper's input types),
  whose attributions come back onto the STFT grid.
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
from .feature_spaces import FEATURES, FeatureSpace, make_space
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
    def attribute(self, space: FeatureSpace, request) -> tuple[torch.Tensor, dict]:
        """captum's attribution over `space` (shape (1, *space.shape)) plus extra facts to record."""

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
