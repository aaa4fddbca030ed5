"""Bubble noise (Mandel): importance = audibility correlated with recognition.

The SSBM paper's own method (Trinh & Mandel, "Large scale evaluation of
importance maps in automatic speech recognition", sec. 2.1). For
an utterance, N mixtures of loud speech-shaped noise with randomly placed
quiet bubbles are decoded by the model (``transcribe``); every reference
word is marked recognised or not in every mixture (edit-distance alignment,
ssbm_bench.metrics.word_accuracy); for the target word, the point-biserial
correlation r(f, t) between the audibility D_j(f, t) and recognition y_j
over mixtures, and its two-sided t-test p-value, are the map
(``SaliencyMap(values=r, pvalues=p, kind="pvalue")``; SSBM thresholds
p where r > 0, see SaliencyMap.thresholded_values). Mixtures, bubble shape,
audibility and speech-shaped noise: see :mod:`.mixer`.

Cost and reuse. Decoding N mixtures is the whole cost, and it does not
depend on the target word: all words of an utterance share the same
mixtures (seeded by the request's seed and a SHA-256 of the utterance id,
never the word). The normalised hypotheses are kept, as JSON, under an
``artifact_key`` of everything that determines them (model.describe(),
utterance id, digest of the clean PCM, seed, STFT grid, every mixture
parameter, N) in ``request.artifacts`` (the results store, in the harness)
and in memory, so the other words of an utterance, a rerun, or a re-scoring
decode nothing. The audibility maps are regenerated from the seed (cheap,
bubbles only) and reduced, in one pass for all words, to streaming
sufficient statistics (ssbm_bench.metrics.bubbles.PointBiserialSums).

Bubble rate. Mandel tunes the number of bubbles until listeners get about
half of the words right: too few bubbles and nothing is recognised, too many
and everything is, and either way the correlation has nothing to work with.
The fraction depends on the model, the utterance and the noise level (the
harness passes the level it calibrated for white noise; measured with
pocketsphinx on kal16_h02_01 at 10 bubbles/s: 72% of words at -5 dB, 17% at
+5 dB, 2% at +10 dB). So by default (``tune_bubbles=True``) the rate is
tuned per utterance on pilot mixtures (their own seeds, never reused as
analysis mixtures): start at ``bubbles_per_second``; decode
``tune_mixtures`` pilot mixtures; if the fraction of reference words
recognised is within ``tune_tolerance`` of ``target_accuracy`` stop, else
double or halve the rate (bisect in log-rate once the target is bracketed),
for at most ``tune_rounds`` rounds; the rate used is the tested one whose
fraction was closest to the target. The pilot's record is an artifact too,
so tuning happens once per (model, utterance, seed, settings).
``tune_bubbles=False`` uses ``bubbles_per_second`` as given.

Uninformative maps. If the target word is recognised in every mixture or in
none, r = 0 and p = 1 everywhere (nothing marked important at any
threshold); the map is returned anyway, with ``params["informative"] =
False`` and the reason, so SSBM scores it for what it is.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

import numpy as np

from ssbm_bench.artifacts import artifact_key
from ssbm_bench.errors import InputError
from ssbm_bench.method import ExplainRequest, SaliencyMethod, ShowsMixtures
from ssbm_bench.model import Capability
from ssbm_bench.metrics.bubbles import PointBiserialSums
from ssbm_bench.metrics.word_accuracy import word_correct
from ssbm_bench.text import normalise_words
from ssbm_bench.types import SaliencyMap

from .mixer import (
    DEFAULT_BUBBLES_PER_SECOND,
    DEFAULT_DEPTH_DB,
    DEFAULT_DURATION_S,
    DEFAULT_WIDTH_ERB,
    BubbleMixer,
    BubbleSettings,
)

#: noise level (dB re. the clean speech RMS) when neither the request nor
#: the constructor gives one. Measured with pocketsphinx on three fully
#: recognised synthetic utterances (kal16_h02_01, slt_hts_h01_05,
#: rms_h02_05), speech-shaped noise without bubbles: words recognised
#: 29-100% at -20 dB, 0-50% at -10 dB, none at -5 dB and above; 0 dB keeps
#: a 5 dB margin.
DEFAULT_NOISE_LEVEL_DB = 0.0
#: bounds of the tuned rate (bubbles per second)
MIN_RATE, MAX_RATE = 0.5, 200.0
#: how many utterances' statistics an instance keeps in memory
STATS_CACHE_SIZE = 4
#: marks the pilot mixtures' seeds apart from the analysis mixtures'
PILOT_STREAM = 0x70696C6F74


def stable_hash(text: str) -> int:
    """A 64-bit integer from text, the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def pcm_digest(waveform: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(waveform, dtype=np.float32).tobytes()).hexdigest()[:32]


class BubbleMethod(SaliencyMethod, ShowsMixtures):
    """Mandel's bubble noise: p-value map of audibility correlated with recognising the word."""

    name = "bubble"
    version = "1"
    map_kind = "pvalue"
    requires = frozenset({Capability.TRANSCRIBE})

    def __init__(
        self,
        n_mixtures: int = 200,
        bubbles_per_second: float = DEFAULT_BUBBLES_PER_SECOND,
        bubble_width_erb: float = DEFAULT_WIDTH_ERB,
        bubble_duration_s: float = DEFAULT_DURATION_S,
        bubble_depth_db: float = DEFAULT_DEPTH_DB,
        batch_size: int = 16,
        noise_level_db: float | None = None,
        tune_bubbles: bool = True,
        target_accuracy: float = 0.5,
        tune_mixtures: int = 8,
        tune_rounds: int = 4,
        tune_tolerance: float = 0.15,
    ):
        def integer(name, v, lo):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < lo:
                raise InputError(f"bubble: {name} must be an integer >= {lo}, got {v!r}")
            return int(v)

        self.n_mixtures = integer("n_mixtures", n_mixtures, 3)
        self.batch_size = integer("batch_size", batch_size, 1)
        self.tune_mixtures = integer("tune_mixtures", tune_mixtures, 1)
        self.tune_rounds = integer("tune_rounds", tune_rounds, 1)
        self.settings = BubbleSettings(bubbles_per_second, bubble_width_erb, bubble_duration_s, bubble_depth_db)
        if noise_level_db is not None and not np.isfinite(float(noise_level_db)):
            raise InputError(f"bubble: noise_level_db must be finite or None, got {noise_level_db}")
        self.noise_level_db = None if noise_level_db is None else float(noise_level_db)
        self.tune_bubbles = bool(tune_bubbles)
        if not 0.0 < float(target_accuracy) < 1.0:
            raise InputError(f"bubble: target_accuracy must be in (0, 1), got {target_accuracy}")
        self.target_accuracy = float(target_accuracy)
        if not 0.0 <= float(tune_tolerance) < 0.5:
            raise InputError(f"bubble: tune_tolerance must be in [0, 0.5), got {tune_tolerance}")
        self.tune_tolerance = float(tune_tolerance)
        if self.tune_bubbles and not MIN_RATE <= self.settings.bubbles_per_second <= MAX_RATE:
            raise InputError(f"bubble: the starting bubbles_per_second must be in [{MIN_RATE}, {MAX_RATE}] "
                             f"when tuning, got {self.settings.bubbles_per_second}")
        self._memory: dict[str, object] = {}
        self._stats: OrderedDict[str, tuple[PointBiserialSums, np.ndarray]] = OrderedDict()
        #: decoded mixtures over this instance's life (pilot + analysis), for throughput reports
        self.decoded = 0

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "n_mixtures": self.n_mixtures,
            "bubbles_per_second": self.settings.bubbles_per_second,
            "bubble_width_erb": self.settings.width_erb,
            "bubble_duration_s": self.settings.duration_s,
            "bubble_depth_db": self.settings.depth_db,
            "batch_size": self.batch_size,
            "noise_level_db": self.noise_level_db,
            "tune_bubbles": self.tune_bubbles,
            "target_accuracy": self.target_accuracy,
            "tune_mixtures": self.tune_mixtures,
            "tune_rounds": self.tune_rounds,
            "tune_tolerance": self.tune_tolerance,
        }

    # -- caching ------------------------------------------------------------

    def _get(self, request: ExplainRequest, key: str):
        if key in self._memory:
            return self._memory[key]
        if request.artifacts is not None:
            value = request.artifacts.get(key)
            if value is not None:
                self._memory[key] = value
                return value
        return None

    def _put(self, request: ExplainRequest, key: str, value) -> None:
        self._memory[key] = value
        if request.artifacts is not None:
            request.artifacts.put(key, value)

    # -- decoding -------------------------------------------------------------

    def _decode(self, request: ExplainRequest, mixer: BubbleMixer, indices) -> tuple[list[list[str]], float, float]:
        """Normalised hypotheses of mixtures `indices`, in batches of `batch_size`; the seconds
        spent inside the model's transcribe, and the seconds spent building the mixtures."""
        hyps: list[list[str]] = []
        decode = generate = 0.0
        indices = list(indices)
        for lo in range(0, len(indices), self.batch_size):
            t0 = time.perf_counter()
            waves = mixer.mixtures(indices[lo:lo + self.batch_size])
            t1 = time.perf_counter()
            out = request.model.transcribe(waves)
            t2 = time.perf_counter()
            generate += t1 - t0
            decode += t2 - t1
            if len(out) != len(waves):
                raise InputError(f"bubble: model {request.model.name!r} returned {len(out)} transcripts "
                                 f"for {len(waves)} mixtures")
            hyps.extend(normalise_words(list(h)) for h in out)
            self.decoded += len(waves)
        return hyps, decode, generate

    def _identity(self, request: ExplainRequest, level_db: float) -> dict:
        utt = request.utterance
        return {
            "model": request.model.describe(),
            "utterance": utt.id,
            "pcm": pcm_digest(utt.waveform),
            "seed": int(request.seed),
            "cfg": request.cfg.to_dict(),
            "level_db": level_db,
            "width_erb": self.settings.width_erb,
            "duration_s": self.settings.duration_s,
            "depth_db": self.settings.depth_db,
            "generator": "mandel-db-paraboloid/ssn-utterance-q0.97-s0.97/v1",
        }

    def _tune_rate(self, request: ExplainRequest, identity: dict, entropy: list[int]) -> dict:
        """Bubble rate for this utterance (see module docstring), cached as an artifact."""
        key = artifact_key("bubble-rate", **identity, start=self.settings.bubbles_per_second,
                           target=self.target_accuracy, pilot=self.tune_mixtures, rounds=self.tune_rounds,
                           tolerance=self.tune_tolerance)
        cached = self._get(request, key)
        if cached is not None:
            return {**cached, "reused": True}
        utt = request.utterance
        reference = utt.reference
        rate = self.settings.bubbles_per_second
        below, above = None, None  # highest rate under the target, lowest rate over it
        trials = []
        seconds = 0.0
        for round_ in range(self.tune_rounds):
            settings = BubbleSettings(rate, self.settings.width_erb, self.settings.duration_s, self.settings.depth_db)
            mixer = BubbleMixer(utt.waveform, request.cfg, settings, identity["level_db"],
                                entropy + [PILOT_STREAM, round_])
            hyps, sec, _ = self._decode(request, mixer, range(self.tune_mixtures))
            seconds += sec
            acc = float(np.mean([word_correct(reference, h).mean() for h in hyps]))
            trials.append({"rate": rate, "accuracy": acc})
            if abs(acc - self.target_accuracy) <= self.tune_tolerance:
                break
            if acc < self.target_accuracy:
                below = rate if below is None else max(below, rate)
            else:
                above = rate if above is None else min(above, rate)
            if below is not None and above is not None:
                nxt = float(np.sqrt(below * above))
            else:
                nxt = rate * 2.0 if acc < self.target_accuracy else rate / 2.0
            nxt = float(np.clip(nxt, MIN_RATE, MAX_RATE))
            if nxt == rate:
                break
            rate = nxt
        best = min(trials, key=lambda tr: (abs(tr["accuracy"] - self.target_accuracy), tr["rate"]))
        record = {"rate": best["rate"], "accuracy": best["accuracy"], "trials": trials,
                  "decoded": len(trials) * self.tune_mixtures, "decode_seconds": seconds}
        self._put(request, key, record)
        return {**record, "reused": False}

    # -- the method -------------------------------------------------------------

    def explain(self, request: ExplainRequest) -> SaliencyMap:
        utt, target, cfg, model = request.utterance, request.target, request.cfg, request.model
        model.require("transcribe", "bubble noise")
        if target.kind != "word":
            raise InputError(f"bubble: explains words of a transcript, got a {target.kind!r} target ({target.key})")
        reference = utt.reference
        if len(reference) != len(utt.words):
            raise InputError(f"bubble: utterance {utt.id!r} has words that normalise to nothing "
                             f"({[w.text for w in utt.words]}); cannot score them")
        if not 0 <= target.index < len(reference):
            raise InputError(f"bubble: target word index {target.index} is outside utterance {utt.id!r} "
                             f"with {len(reference)} words")
        if utt.sample_rate != cfg.sample_rate or utt.sample_rate != model.sample_rate:
            raise InputError(f"bubble: utterance {utt.id!r} is at {utt.sample_rate} Hz, the STFT grid at "
                             f"{cfg.sample_rate} Hz and model {model.name!r} at {model.sample_rate} Hz; "
                             "resample first")

        if self.noise_level_db is not None:
            level, level_source = self.noise_level_db, "method"
        elif request.noise_level_db is not None:
            level, level_source = float(request.noise_level_db), "request"
        else:
            level, level_source = DEFAULT_NOISE_LEVEL_DB, "default"
        identity = self._identity(request, level)
        entropy = [int(request.seed) % 2**64, stable_hash(utt.id)]

        tuning = None
        rate = self.settings.bubbles_per_second
        if self.tune_bubbles:
            tuning = self._tune_rate(request, identity, entropy)
            rate = tuning["rate"]
        settings = BubbleSettings(rate, self.settings.width_erb, self.settings.duration_s, self.settings.depth_db)
        mixer = BubbleMixer(utt.waveform, cfg, settings, level, entropy)

        key = artifact_key("bubble-hyps", **identity, rate=rate, n_mixtures=self.n_mixtures)
        record = self._get(request, key)
        reused = record is not None
        seconds_now = 0.0
        if record is None:
            hyps, seconds_now, generate = self._decode(request, mixer, range(self.n_mixtures))
            record = {"hypotheses": [" ".join(h) for h in hyps], "decode_seconds": seconds_now,
                      "generate_seconds": generate, "n_mixtures": self.n_mixtures}
            self._put(request, key, record)
        hyps = [h.split() for h in record["hypotheses"]]
        if len(hyps) != self.n_mixtures:
            raise InputError(f"bubble: stored recognition results under {key} hold {len(hyps)} mixtures, "
                             f"expected {self.n_mixtures}")

        sums, outcomes = self._statistics(key, mixer, reference, hyps)
        r, p = sums.result(target.index)
        y = outcomes[:, target.index]
        recognised = float(y.mean())
        informative = 0 < int(y.sum()) < len(y)
        decode_seconds = float(record["decode_seconds"])
        params = {
            "n_mixtures": self.n_mixtures,
            "bubbles_per_second": rate,
            "bubbles_per_mixture": settings.n_bubbles(mixer.duration),
            "bubble_width_erb": settings.width_erb,
            "bubble_duration_s": settings.duration_s,
            "bubble_depth_db": settings.depth_db,
            "noise_level_db": level,
            "noise_level_source": level_source,
            "recognised_fraction": recognised,
            "words_recognised_fraction": float(outcomes.mean()),
            "informative": informative,
            "decode_seconds": decode_seconds,
            "mixtures_per_second": self.n_mixtures / decode_seconds if decode_seconds > 0 else None,
            "decode_seconds_this_call": seconds_now,
            "generate_seconds": float(record.get("generate_seconds", 0.0)),
            "reused_recognition": reused,
            "mean_audibility": float(sums.mean_d.mean()),
            "artifact": key,
        }
        if not informative:
            params["uninformative_reason"] = (
                f"word {target.label!r} recognised in {'all' if y.all() else 'none'} of the "
                f"{len(y)} mixtures: no correlation to measure (r = 0, p = 1 everywhere)")
        if tuning is not None:
            params["tuning"] = {k: tuning[k] for k in ("rate", "accuracy", "trials", "decoded", "decode_seconds",
                                                        "reused")}
        return SaliencyMap(values=r, pvalues=p, kind="pvalue", space="stft", params=params)

    def mixtures_for(self, request: ExplainRequest, smap: SaliencyMap, indices) -> list[dict]:
        """The analysis mixtures behind `smap` (the map ``explain(request)`` returned), for viewing and
        listening (``ssbm-bench explain``): for each index j, ``waveform`` (float32), ``audibility``
        D_j(f, t) and, from the stored recognition results (nothing is decoded), ``hypothesis`` (normalised
        words) and ``recognised`` (whether the target word was recognised in it)."""
        p = smap.params
        if "artifact" not in p or "bubbles_per_second" not in p:
            raise InputError("bubble: this map was not made by the bubble method (no mixture parameters)")
        utt = request.utterance
        settings = BubbleSettings(p["bubbles_per_second"], self.settings.width_erb, self.settings.duration_s,
                                  self.settings.depth_db)
        mixer = BubbleMixer(utt.waveform, request.cfg, settings, float(p["noise_level_db"]),
                            [int(request.seed) % 2**64, stable_hash(utt.id)])
        record = self._get(request, p["artifact"])
        hyps = [h.split() for h in record["hypotheses"]] if record is not None else None
        out = []
        for j in indices:
            if not 0 <= int(j) < self.n_mixtures:
                raise InputError(f"bubble: mixture {j} is outside the {self.n_mixtures} analysis mixtures")
            wave, aud = mixer.mixture(int(j))
            item = {"index": int(j), "waveform": wave, "audibility": aud, "hypothesis": None, "recognised": None}
            if hyps is not None:
                item["hypothesis"] = hyps[int(j)]
                item["recognised"] = bool(word_correct(utt.reference, hyps[int(j)])[request.target.index])
            out.append(item)
        return out

    def _statistics(self, key: str, mixer: BubbleMixer, reference: list[str], hyps: list[list[str]]):
        """Sufficient statistics for every word of the utterance, regenerating the audibility maps."""
        if key in self._stats:
            self._stats.move_to_end(key)
            return self._stats[key]
        outcomes = np.array([word_correct(reference, h) for h in hyps], dtype=bool).reshape(len(hyps), len(reference))
        sums = PointBiserialSums(mixer.shape, len(reference))
        block = 32
        for lo in range(0, len(hyps), block):
            idx = range(lo, min(lo + block, len(hyps)))
            sums.add(np.stack([mixer.audibility(j) for j in idx]), outcomes[lo:lo + len(idx)])
        self._stats[key] = (sums, outcomes)
        while len(self._stats) > STATS_CACHE_SIZE:
            self._stats.popitem(last=False)
        return sums, outcomes
