"""The `vad-ground-truth` corpus: excerpts where we know which segments hold speech.

The SoundLIME paper's ground-truth test (Mishra et al., "Reliable Local
Explanations for Machine Listening", sec. V) mixes a vocal and a non-vocal stem: an excerpt is cut
into 10 temporal segments, 3 chosen at random take the vocal stem's content,
the other 7 keep the non-vocal stem's; a fill is then scored by how often
SoundLIME's temporal top-3 for the "vocals present" prediction is exactly
those 3 segments. Here the detector is silero-vad and the stems are:

* speech: a synthetic-corpus utterance (flite / festival Harvard sentences),
  from its first word on, so that every segment of the stem holds speech;
* non-speech, one of three kinds chosen per excerpt: ``chord`` (three
  harmonic tones with slow vibrato and a decaying envelope per segment, the
  nearest we can make to the paper's instrumental stems without a music
  corpus), ``pink`` and ``brown`` noise. Levels: the background's RMS is
  the speech stem's RMS minus 6 dB.

Both stems are taken at the same times, as in the paper. Excerpts are
``segments`` x ``segment_ms`` long (default 10 x 160 ms = 1.6 s, the
paper's input length). Each excerpt is seeded (``seed`` and its index), so
the corpus is a pure function of its parameters and of the synthetic
corpus's digest; its own digest covers the PCM and labels. Labels:
``speech_segments`` ("1,4,7"), ``background``, ``source`` (the utterance).
The excerpts have no words (there is no transcript to score).
"""

from __future__ import annotations

import hashlib
from typing import Iterator

import numpy as np

from ssbm_bench.corpus import Corpus
from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import CorpusPlugin
from ssbm_bench.types import Utterance

VERSION = 1
BACKGROUNDS = ("chord", "pink", "brown")
SR = 16000


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1 / f**exponent (1: pink, 2: brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1]
    x = np.fft.irfft(spec / f ** (exponent / 2.0), n)
    return x / np.sqrt(np.mean(x ** 2))


def chord(n: int, segment: int, rng: np.random.Generator) -> np.ndarray:
    """Three harmonic tones (a major triad on a random root) with vibrato, re-struck every segment; unit RMS."""
    t = np.arange(n) / SR
    root = 110.0 * 2 ** rng.uniform(0, 2)
    x = np.zeros(n)
    for ratio in (1.0, 1.26, 1.5):
        f0 = root * ratio
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.004 * np.sin(2 * np.pi * 5.0 * t))) / SR
        for h in range(1, 6):
            x += np.sin(h * phase) / h
    envelope = np.exp(-3.0 * (np.arange(n) % segment) / segment)
    x *= 0.4 + 0.6 * envelope
    return x / np.sqrt(np.mean(x ** 2))


class VadGroundTruth(Corpus):
    """`n` excerpts of `segments` x `segment_ms`, 3 speech segments each (seeded)."""

    name = "vad-ground-truth"

    def __init__(self, n: int = 40, segments: int = 10, segment_ms: int = 160, speech_segments: int = 3,
                 seed: int = 0, background_db: float = -6.0):
        if not 1 <= int(n) <= 10000:
            raise InputError(f"vad-ground-truth: n must be 1..10000 excerpts, got {n}")
        if not 1 <= speech_segments < segments:
            raise InputError(f"vad-ground-truth: speech_segments must be 1..segments-1, got {speech_segments} "
                             f"of {segments}")
        if segment_ms < 32:
            raise InputError(f"vad-ground-truth: segment_ms must be at least 32 (silero's chunk), got {segment_ms}")
        self.n, self.segments, self.segment_ms = int(n), int(segments), int(segment_ms)
        self.k, self.seed, self.background_db = int(speech_segments), int(seed), float(background_db)
        self._utts: list[Utterance] | None = None
        self._digest: str | None = None

    def _build(self) -> list[Utterance]:
        from ssbm_bench_plugins.synthetic import SyntheticCorpus

        source = SyntheticCorpus()
        seg = SR * self.segment_ms // 1000
        length = seg * self.segments
        candidates = []
        for u in source.utterances():
            start = int(u.words[0].start * SR)
            if len(u.waveform) - start >= length:
                candidates.append((u, start))
        if not candidates:
            raise InputError("vad-ground-truth: no synthetic utterance is long enough for one excerpt")
        out, h = [], hashlib.sha256()
        h.update(f"v{VERSION}:{source.digest()}:{self.n}:{self.segments}:{seg}:{self.k}:{self.seed}:"
                 f"{self.background_db}".encode())
        for i in range(self.n):
            rng = np.random.default_rng([self.seed, i])
            u, start = candidates[int(rng.integers(len(candidates)))]
            speech = np.asarray(u.waveform[start:start + length], dtype=np.float64)
            kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
            if kind == "chord":
                bg = chord(length, seg, rng)
            else:
                bg = coloured_noise(length, 1.0 if kind == "pink" else 2.0, rng)
            bg *= np.sqrt(np.mean(speech ** 2)) * 10 ** (self.background_db / 20)
            chosen = sorted(int(s) for s in rng.choice(self.segments, self.k, replace=False))
            x = bg.copy()
            for s in chosen:
                x[s * seg:(s + 1) * seg] = speech[s * seg:(s + 1) * seg]
            x = np.clip(x, -1.0, 1.0).astype(np.float32)
            uid = f"gt{i:04d}"
            labels = {"speech_segments": ",".join(map(str, chosen)), "background": kind, "source": u.id}
            h.update(uid.encode() + repr(sorted(labels.items())).encode() + x.tobytes())
            out.append(Utterance(uid, x, SR, (), labels, times_source="none",
                                 meta={"segments": self.segments, "segment_samples": seg}))
        self._digest = h.hexdigest()
        return out

    def utterances(self) -> Iterator[Utterance]:
        if self._utts is None:
            self._utts = self._build()
        return iter(self._utts)

    def digest(self) -> str:
        if self._digest is None:
            self._utts = self._build()
        return self._digest


def speech_segments(utt: Utterance) -> list[int]:
    """The ground truth of one excerpt: indices of its speech segments."""
    raw = utt.labels.get("speech_segments")
    if raw is None:
        raise InputError(f"utterance {utt.id!r} has no speech_segments label: not a vad-ground-truth excerpt")
    return [int(s) for s in raw.split(",")]


@hookimpl
def register_corpora(register):
    register(CorpusPlugin.of(
        VadGroundTruth,
        description="SoundLIME's ground-truth test: 1.6 s excerpts of 10 segments, 3 of synthetic speech and 7 "
                    "of chord / pink / brown noise (seeded; labels speech_segments); for silero-vad",
    ))
