"""Core value types shared by every part of the benchmark.

They are small, immutable where possible, and validate themselves on
construction so that bad data is rejected where it enters, with its name,
rather than deep inside a metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np

from .errors import InputError
from .text import normalise_words


@dataclass(frozen=True)
class Word:
    """One word of a reference transcript with its span in seconds."""

    text: str
    start: float
    end: float

    def __post_init__(self):
        if not self.text or not self.text.strip():
            raise InputError("word with empty text")
        if not (np.isfinite(self.start) and np.isfinite(self.end)):
            raise InputError(f"word {self.text!r}: start/end must be finite, got {self.start}, {self.end}")
        if self.end < self.start or self.start < 0:
            raise InputError(f"word {self.text!r}: expected 0 <= start <= end, got {self.start}..{self.end}")

    def to_dict(self) -> dict:
        return {"text": self.text, "start": round(self.start, 6), "end": round(self.end, 6)}


def validate_waveform(waveform: Any, name: str, *, allow_silence: bool = False) -> np.ndarray:
    """The one check of audio samples: a float32 mono waveform, or InputError.

    The error starts with `name` (the utterance, file or model input the
    samples belong to) and says what was expected: a 1-D array, at least one
    sample, floating-point samples in [-1, 1], every sample finite, and
    (unless `allow_silence`) not digital silence. A model that must accept
    silence (a speech detector; what occlusion produces) passes
    ``allow_silence=True``; a corpus utterance never may be silent.
    """
    x = np.asarray(waveform)
    if x.ndim != 1:
        raise InputError(f"{name}: expected a mono 1-D waveform, got shape {x.shape}")
    if x.size == 0:
        raise InputError(f"{name}: empty audio (expected at least one sample)")
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"{name}: expected floating-point samples in [-1, 1], got dtype {x.dtype}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise InputError(f"{name}: audio contains NaN or infinite samples ({int(bad.sum())} of {x.size}; "
                         f"expected finite samples)")
    if not allow_silence and float(np.max(np.abs(x))) == 0.0:
        raise InputError(f"{name}: audio is digital silence (every sample is 0; expected sound)")
    return x.astype(np.float32, copy=False)


@dataclass(frozen=True, eq=False)
class Utterance:
    """One recording with its reference words (and times) and labels.

    `words` carry the reference transcript; `times_source` says where their
    times came from ("synthesiser", "corpus", "forced-alignment").
    """

    id: str
    waveform: np.ndarray
    sample_rate: int
    words: tuple[Word, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    times_source: str = "corpus"
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.id:
            raise InputError("utterance with an empty id")
        object.__setattr__(self, "waveform", validate_waveform(self.waveform, f"utterance {self.id!r}"))
        if int(self.sample_rate) <= 0:
            raise InputError(f"utterance {self.id!r}: sample rate must be positive, got {self.sample_rate}")
        object.__setattr__(self, "words", tuple(self.words))
        dur = self.duration
        for w in self.words:
            if w.end > dur + 0.05:
                raise InputError(
                    f"utterance {self.id!r}: word {w.text!r} ends at {w.end:.3f}s, after the audio ({dur:.3f}s)"
                )

    @property
    def duration(self) -> float:
        return len(self.waveform) / float(self.sample_rate)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def reference(self) -> list[str]:
        """Normalised reference words, the unit of scoring."""
        return normalise_words([w.text for w in self.words])


@dataclass(frozen=True)
class Target:
    """What an explanation is about: one word of the transcript, or a class."""

    kind: Literal["word", "class"]
    index: int
    label: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.index}:{self.label}"


@dataclass(frozen=True)
class Transcript:
    """A recogniser's output: normalised words plus the raw text it printed."""

    words: tuple[str, ...]
    raw: str = ""

    @classmethod
    def from_raw(cls, raw: str | list[str]) -> "Transcript":
        text = raw if isinstance(raw, str) else " ".join(raw)
        return cls(tuple(normalise_words(text)), text)


MapKind = Literal["pvalue", "magnitude", "score"]


@dataclass(eq=False)
class SaliencyMap:
    """Importance over a feature grid, for one target.

    `kind` says how SSBM thresholds it: "pvalue" (small = important, bubble
    noise; either `values` are p-values, or `values` are correlations and
    `pvalues` the p-values), "magnitude" (an energy-like amplitude, threshold in dB) or
    "score" (any real score, large = important, thresholded by rank).
    """

    values: np.ndarray
    kind: MapKind = "score"
    space: str = "stft"
    pvalues: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    #: the attribution in the space it was computed in (waveform, embedding,
    #: STFT), for ISA; a ssbm_bench.feature_spaces.NativeAttribution or None
    native: object = None

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim != 2:
            raise InputError(f"saliency map: expected a 2-D (frequency x time) array, got shape {self.values.shape}")
        if self.kind not in ("pvalue", "magnitude", "score"):
            raise InputError(f"saliency map: kind must be pvalue, magnitude or score, got {self.kind!r}")
        bad = ~np.isfinite(self.values)
        if bad.any():
            raise InputError(f"saliency map: {int(bad.sum())} of {bad.size} values are NaN or infinite")
        if self.pvalues is not None:
            self.pvalues = np.asarray(self.pvalues, dtype=np.float64)
            if self.pvalues.shape != self.values.shape:
                raise InputError("saliency map: pvalues must have the same shape as values")

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def thresholded_values(self) -> np.ndarray:
        """What SSBM thresholds. For a "pvalue" map with separate `pvalues`
        (bubble noise: `values` holds the correlation), a point only counts
        as important when its correlation is positive, so points with
        non-positive correlation get p = 1; otherwise `values` itself."""
        if self.kind == "pvalue" and self.pvalues is not None:
            return np.where(self.values > 0, self.pvalues, 1.0)
        return self.values
