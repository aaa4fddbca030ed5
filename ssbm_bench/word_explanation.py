"""`ssbm-bench explain`, the computation: one word's map, its LeRF and MoRF masks and decoded mixtures.

For one utterance, word, model and method this computes the importance map
exactly as an SSBM cell does (same STFT grid, same request, same artifacts
cache), builds the LeRF and MoRF noise masks at one threshold with the
harness's own functions (:func:`ssbm_bench.metrics.ssbm.noise_mask`,
:func:`~ssbm_bench.metrics.ssbm.dropped_energy`,
:func:`ssbm_bench.mixtures.mixture_waveforms` with the cell's noise
seed) and decodes the two mixtures; :mod:`ssbm_bench.word_figure` draws the
result and writes it as WAV files.

The noise level: ``--level-db`` if given; else, with ``--db``, the level a
finished run stored for the same model, corpus and fill; else calibrated on
this utterance as the harness does (the lowest level of the default grid at
which the fully masked utterance is unrecognisable). The threshold:
``--threshold`` if given; else, with ``--db``, the method's best threshold on
that store's leaderboard; else :data:`DEFAULT_THRESHOLDS` for the map kind.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio import StftConfig, stft
from .errors import InputError
from .harness.prepare import CalibrationSettings, calibrate_noise, model_key
from .harness.store import ResultStore
from .harness.suite import PluginRef
from .method import ExplainRequest, ShowsMixtures
from .metrics.ssbm import dropped_energy, noise_mask
from .metrics.word_accuracy import target_other_accuracy, word_correct
from .mixtures import mixture_waveforms, stable_seed
from .text import normalise_word, normalise_words
from .types import SaliencyMap, Target, Utterance

#: threshold used when neither --threshold nor a results store gives one, by map kind:
#: points of the quick suite's grids that mark a visible but not dominant part of a word
DEFAULT_THRESHOLDS = {"pvalue": 1e-2, "magnitude": -40.0, "score": 0.1}
DIRECTIONS = ("lerf", "morf")
SHORT = {"lerf": "LeRF", "morf": "MoRF"}


# --------------------------------------------------------------------------- parsing user input


def parse_params(items: list[str] | None, what: str) -> dict:
    """``key=value`` strings -> dict; values read as TOML (``20``, ``0.5``, ``true``, ``"x"``), else text."""
    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{what}: expected key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out[key] = value
    return out


def find_utterance(corpus, corpus_name: str, utt_id: str, show: str | None = None) -> Utterance:
    """The utterance `utt_id`, or an error naming close and known ids, and `show`, the command that lists them
    all with their words (default ``ssbm-bench corpus show CORPUS``)."""
    by_id = {u.id: u for u in corpus.utterances()}
    if utt_id in by_id:
        return by_id[utt_id]
    ids = sorted(by_id)
    close = difflib.get_close_matches(utt_id, ids, n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    shown = ", ".join(ids[:12]) + (f", ... ({len(ids)} in all)" if len(ids) > 12 else "")
    show = show or f"ssbm-bench corpus show {corpus_name}"
    raise InputError(f"corpus {corpus_name!r} has no utterance {utt_id!r}{hint}; known ids: {shown}; "
                     f"`{show}` lists them with their words")


def word_listing(ref: list[str]) -> str:
    """An utterance's words as ``--word`` takes them: ``0=the, 1=boy, ...``."""
    return ", ".join(f"{i}={w}" for i, w in enumerate(ref))


def find_word(utt: Utterance, word: str) -> Target:
    """A word target from an index (0-based) or the word's text (case and punctuation ignored).

    Errors say what to type instead, since the user cannot see the normalised reference: an index out
    of range lists the words; a text not in the utterance adds the closest words (difflib) with their
    indices; a text that occurs more than once names its indices and asks for one of them.
    """
    ref = utt.reference
    listing = word_listing(ref)
    text = str(word).strip()
    if text.lstrip("-").isdigit():
        i = int(text)
        if not 0 <= i < len(ref):
            raise InputError(f"utterance {utt.id!r} has {len(ref)} words (0..{len(ref) - 1}: {listing}); "
                             f"no word {i}")
        return Target("word", i, ref[i])
    want = normalise_word(text)
    hits = [i for i, w in enumerate(ref) if w == want]
    if not hits:
        raise InputError(f"utterance {utt.id!r} has no word {text!r}; its words: {listing}{did_you_mean(ref, want)}")
    if len(hits) > 1:
        raise InputError(f"word {text!r} occurs {len(hits)} times in utterance {utt.id!r} (at {hits}); "
                         f"give its index instead: {' or '.join(f'--word {i}' for i in hits)} ({listing})")
    return Target("word", hits[0], ref[hits[0]])


def did_you_mean(ref: list[str], want: str) -> str:
    """`` (did you mean 'boy' (word 1)?)`` for the words of `ref` closest to `want`, or ``""``."""
    close = difflib.get_close_matches(want, list(dict.fromkeys(ref)), n=3) if want else []
    if not close:
        return ""
    named = []
    for w in close:
        at = [i for i, r in enumerate(ref) if r == w]
        named.append(f"{w!r} (word{'s' if len(at) > 1 else ''} {', '.join(map(str, at))})")
    return f" (did you mean {' or '.join(named)}?)"


# --------------------------------------------------------------------------- computing


@dataclass
class Direction:
    mask: np.ndarray
    energy: float
    waveform: np.ndarray
    hypothesis: list[str]
    a_w: float
    a_o: float


@dataclass
class Explanation:
    utterance: Utterance
    target: Target
    model: str
    method: str
    smap: SaliencyMap
    threshold: float
    threshold_source: str
    level_db: float
    level_source: str
    clean_magnitude: np.ndarray
    cfg: StftConfig
    directions: dict[str, Direction]
    #: the method's own mixtures (bubble): dicts with waveform, audibility, hypothesis, recognised, index
    mixtures: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def stored_level(store: ResultStore, model: str, corpus_digest: str, fill: str) -> float | None:
    """The noise level a finished run used for this model, corpus content and fill, if any."""
    for c in store.cells(board="ssbm", status="ok"):
        if c.model == model and c.corpus_digest == corpus_digest and c.fill == fill and c.raw:
            return float(c.raw["level_db"])
    return None


def stored_best_threshold(store: ResultStore, model: str, method: str, corpus_digest: str, fill: str
                          ) -> float | None:
    from .leaderboard import build_leaderboard

    for r in build_leaderboard(store):
        if (r.model, r.method, r.corpus_digest, r.fill) == (model, method, corpus_digest, fill) \
                and np.isfinite(r.best_threshold):
            return float(r.best_threshold)
    return None


def pick_mixtures(store, smap: SaliencyMap, utt: Utterance, target: Target, n: int, available: int) -> list[int]:
    """Which of a method's mixtures to show: when its stored hypotheses are at hand (bubble keeps them
    under ``params["artifact"]``), the first ones in which the word was recognised and the first ones in
    which it was missed, half and half where possible; otherwise the first `n`."""
    record = store.get(smap.params["artifact"]) if "artifact" in smap.params else None
    if not isinstance(record, dict) or "hypotheses" not in record:
        return list(range(min(n, available)))
    hyps = [h.split() for h in record["hypotheses"]]
    hit = [j for j, h in enumerate(hyps) if word_correct(utt.reference, h)[target.index]]
    miss = [j for j, h in enumerate(hyps) if not word_correct(utt.reference, h)[target.index]]
    take_hit = min(len(hit), max(n // 2, n - len(miss)))
    return sorted(hit[:take_hit] + miss[:n - take_hit])


def explain_word(model, model_ref: PluginRef, method, method_ref: PluginRef, fill, fill_ref: PluginRef,
                 utt: Utterance, target: Target, corpus_digest: str, *, threshold: float | None = None,
                 level_db: float | None = None, store: ResultStore | None = None, use_stored: bool = True,
                 seed: int = 0, n_mixtures: int = 4, cfg: StftConfig = StftConfig(),
                 calibration: CalibrationSettings = CalibrationSettings(utterances=1)) -> Explanation:
    """Map, masks, mixtures and hypotheses for one word (see the module docstring).

    `store`: the results store that backs calibration and the method's artifacts (None: a throw-away one
    in memory); `use_stored`: take the noise level and threshold of a finished run in it when not given.
    """
    import time

    t0 = time.perf_counter()
    model.require("transcribe", "ssbm-bench explain (the LeRF and MoRF mixtures are decoded)")
    missing = sorted(str(c) for c in method.requires if not model.has(c))
    if missing:
        raise InputError(f"method {method_ref.label!r} needs {', '.join(missing)}, which model "
                         f"{model_ref.label!r} does not provide")
    own_store = store is None
    if own_store:
        store, use_stored = ResultStore(":memory:"), False  # calibration and artifacts for this call only
    try:
        if level_db is not None:
            level, level_source = float(level_db), "--level-db"
        else:
            found = stored_level(store, model_ref.label, corpus_digest, fill_ref.label) if use_stored else None
            if found is not None:
                level, level_source = found, "results store"
            else:
                cal = calibrate_noise(model, model_key(model_ref, model), fill, fill_ref.label, [utt], corpus_digest,
                                      store, calibration, cfg)
                level, level_source = float(cal["level_db"]), (
                    f"calibrated on this utterance (word accuracy by level: {cal.get('accuracy_by_level')})")

        clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), cfg)
        magnitude = clean.abs().numpy().astype(np.float64)
        request = ExplainRequest(model=model, utterance=utt, target=target, cfg=cfg, seed=seed, fill=fill,
                                 clean_magnitude=magnitude, artifacts=store, noise_level_db=level)
        smap = method.explain(request)
        if smap.shape != magnitude.shape:
            raise InputError(f"method {method_ref.label!r} returned a map of shape {smap.shape}; the STFT grid "
                             f"of utterance {utt.id!r} is {magnitude.shape}")

        if threshold is not None:
            t, t_source = float(threshold), "--threshold"
        else:
            best = None if not use_stored else stored_best_threshold(store, model_ref.label, method_ref.label,
                                                                  corpus_digest, fill_ref.label)
            if best is not None:
                t, t_source = best, "best threshold in the results store"
            else:
                t, t_source = DEFAULT_THRESHOLDS[smap.kind], f"default for {smap.kind} maps"

        masks = [noise_mask(smap.thresholded_values(), t, smap.kind, d) for d in DIRECTIONS]
        waves = mixture_waveforms(clean, masks, fill, utt.waveform, level, stable_seed("noise", utt.id, seed), cfg)
        hyps = [normalise_words(h) for h in model.transcribe(waves)]
        directions = {}
        for d, m, w, h in zip(DIRECTIONS, masks, waves, hyps):
            a_w, a_o = target_other_accuracy(word_correct(utt.reference, h), target.index)
            directions[d] = Direction(m, dropped_energy(m, magnitude), w, h, float(a_w), float(a_o))

        mixtures = []
        if n_mixtures > 0 and isinstance(method, ShowsMixtures):
            indices = pick_mixtures(store, smap, utt, target, n_mixtures, int(method.n_mixtures))
            mixtures = method.mixtures_for(request, smap, indices)
    finally:
        if own_store:
            store.close()
    return Explanation(utt, target, model_ref.label, method_ref.label, smap, t, t_source, level, level_source,
                       magnitude, cfg, directions, mixtures, time.perf_counter() - t0)


def slug_of(model: str, method: str, utt_id: str, target: Target) -> str:
    """Default file stem of an explanation."""
    from .figures import slug

    return "_".join(slug(x) for x in (model, method, utt_id, f"w{target.index}"))
