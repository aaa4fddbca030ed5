"""The model-output cache: the same input is never evaluated twice.

Perturbation methods, fills and boards ask a model about many waveforms, and
many of those waveforms are the same bytes: the clean utterance scored by
every deletion cell, the random-order deletion masks shared by every method,
the mixtures of thresholds kept when a grid grows, every mixture of a cell
recomputed because only its scoring changed. :class:`CachedModel` wraps a
:class:`~ssbm_bench.model.SpeechModel` and answers the batched,
non-differentiable calls

* ``transcribe(waveforms)`` -> word lists,
* ``classify(waveforms)`` -> class probabilities,
* ``score_tokens(waveforms, transcript)`` -> per-token bools,

from a cache keyed by a digest of the exact input (dtype, shape and sample
bytes), the call kind, the call's arguments (the forced transcript of
``score_tokens``) and the model's identity: its class, the plugin reference
it was built from (name and parameters) and ``describe()``. Only the misses
go to the model, in one batched call (an input repeated in a batch is
evaluated once). Everything else (``name``, ``capabilities``,
``describe()``, the differentiable ``target_score`` / ``token_log_probs`` /
``class_logits`` / ``forced_transcript``, ``align``) passes through to the
model untouched, so stored results and cell keys do not change.

Two layers: memory (per process, bounded), and the run's results store
(table ``model_outputs``), so a rerun hits. Only the harness's single writer
writes the store: a cache collects its new entries as *pending*, the harness
drains them after each cell and sends them back with the cell's result
(executors in other processes read the store read-only, see
:class:`ReadOnlyStore`), and the writer stores them.

A model whose output for an input depends on the rest of its batch, or on
anything ``describe()`` does not name (weights!), would be served stale
answers: ``describe()`` must change when the weights change (CONTRIBUTING.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .errors import InputError, SuiteError
from .model_outputs_table import ReadOnlyStore
from .model import ForcedTranscript

#: the calls answered from the cache
KINDS = ("transcribe", "classify", "score_tokens")

#: entries kept in memory per process (an entry is a few hundred bytes)
DEFAULT_MEMORY_ENTRIES = 100_000

#: counters a cache keeps (and a drain hands over)
STAT_KEYS = ("requested", "memory_hits", "store_hits", "batch_duplicates", "misses", "evaluated", "calls")


@dataclass(frozen=True)
class ModelCacheSettings:
    """How a worker's cache behaves; picklable, so it travels to executor workers."""

    enabled: bool = True
    #: the results store a worker in another process reads (read-only) for
    #: outputs of earlier runs and cells; None: memory only
    store_path: str | None = None
    memory_entries: int = DEFAULT_MEMORY_ENTRIES


def parse_enabled(value: Any, where: str = "run.model_cache") -> bool:
    """The suite option `model_cache`: true or false, nothing else."""
    if not isinstance(value, bool):
        raise SuiteError(f"{where} must be true or false (cache model outputs by input digest, or not), "
                         f"got {value!r}")
    return value


# --- keys -----------------------------------------------------------------------------------------

def waveform_digest(waveform: np.ndarray) -> bytes:
    """SHA-256 of the exact input: dtype, shape and the sample bytes."""
    h = hashlib.sha256()
    h.update(waveform.dtype.str.encode())
    h.update(repr(tuple(waveform.shape)).encode())
    h.update(np.ascontiguousarray(waveform).tobytes())
    return h.digest()


def model_identity(model: Any, ref: dict | None = None) -> dict:
    """What makes two models answer alike: class, plugin reference, describe()."""
    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "ref": ref, "describe": model.describe()}


def transcript_identity(transcript: ForcedTranscript) -> dict:
    """The parts of a forced transcript that determine score_tokens (not its free-form meta)."""
    return {"text": transcript.text, "token_ids": list(transcript.token_ids),
            "word_of_token": list(transcript.word_of_token), "words": list(transcript.words),
            "prompt_ids": list(transcript.prompt_ids)}


def call_prefix(kind: str, identity: dict, args: dict | None = None) -> bytes:
    blob = json.dumps({"kind": kind, "model": identity, "args": args}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).digest()


def entry_key(prefix: bytes, digest: bytes) -> str:
    return hashlib.sha256(prefix + digest).hexdigest()


# --- values -----------------------------------------------------------------------------------------
# Stored as JSON (the store's format); arrays as base64 of their bytes with dtype and shape, so a hit
# returns exactly the bits the model gave (NaN and float32 included).

def _encode_array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def _decode_array(d: dict) -> np.ndarray:
    raw = base64.b64decode(d["b64"])
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


def encode_value(kind: str, value: Any) -> dict | None:
    """The storable form of one input's output, or None when it cannot be kept exactly."""
    if kind == "transcribe":
        words = list(value) if isinstance(value, (list, tuple)) else None
        if words is None or not all(isinstance(w, str) for w in words):
            return None
        return {"words": words}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return _encode_array(value)
    return None


def decode_value(kind: str, stored: dict) -> Any:
    if kind == "transcribe":
        return list(stored["words"])
    return _decode_array(stored)


# --- the cache ----------------------------------------------------------------------------------------

class ModelOutputCache:
    """Memory layer, an optional store to read, pending new entries and counters.

    `backend` is anything with ``get_model_outputs(keys) -> {key: (kind, value)}``:
    the results store itself (in the writer's process) or a read-only view of
    it (in executor workers). The cache never writes the store; `drain()`
    hands over what is new since the last drain.
    """

    def __init__(self, settings: ModelCacheSettings = ModelCacheSettings(), backend: Any = None):
        self.enabled = bool(settings.enabled)
        self.limit = int(settings.memory_entries)
        self.backend = backend
        self.configured = False
        #: keep new entries for drain() (a cache nobody drains, e.g. `explain`'s, keeps memory only)
        self.collect = backend is not None
        self.memory: "OrderedDict[str, tuple[str, dict]]" = OrderedDict()
        self.pending: dict[str, tuple[str, dict]] = {}
        self.stats = dict.fromkeys(STAT_KEYS, 0)
        #: why the store could not be read, when it could not (said once in the run's summary)
        self.note: str | None = None
        self._lock = threading.RLock()

    def configure(self, settings: ModelCacheSettings, backend: Any = None) -> None:
        """Set up once per worker (later calls are no-ops): on or off, and what to read."""
        with self._lock:
            if self.configured:
                return
            self.enabled = bool(settings.enabled)
            self.limit = int(settings.memory_entries)
            if backend is not None:
                self.backend = backend
            elif settings.enabled and settings.store_path and settings.store_path != ":memory:":
                self.backend = ReadOnlyStore(settings.store_path)
            self.configured = True
            self.collect = True

    # -- lookups ------------------------------------------------------------------------
    def lookup(self, keys: Sequence[str]) -> dict[str, tuple[str, tuple[str, dict]]]:
        """{key: (source, (kind, value))} for the keys known in memory or the store."""
        found: dict[str, tuple[str, tuple[str, dict]]] = {}
        with self._lock:
            rest = []
            for k in keys:
                hit = self.memory.get(k)
                if hit is not None:
                    self.memory.move_to_end(k)
                    found[k] = ("memory", hit)
                else:
                    rest.append(k)
            if rest and self.backend is not None:
                try:
                    stored = self.backend.get_model_outputs(rest)
                except sqlite3.Error as exc:  # a busy or vanished store: evaluate instead, and say so
                    self.note = f"the results store could not be read for cached model outputs ({exc})"
                    stored = {}
                for k, entry in stored.items():
                    found[k] = ("store", entry)
                    self._remember(k, entry)
        return found

    def _remember(self, key: str, entry: tuple[str, dict]) -> None:
        self.memory[key] = entry
        self.memory.move_to_end(key)
        while len(self.memory) > self.limit:
            self.memory.popitem(last=False)

    def add(self, key: str, kind: str, value: dict) -> None:
        with self._lock:
            self._remember(key, (kind, value))
            if self.collect:
                self.pending[key] = (kind, value)

    def count(self, **deltas: int) -> None:
        with self._lock:
            for k, v in deltas.items():
                self.stats[k] += v

    def drain(self) -> dict:
        """New entries and counters since the last drain: {"entries": [(key, kind, value)], "stats": {...}}."""
        with self._lock:
            out = {"entries": [(k, kind, v) for k, (kind, v) in self.pending.items()], "stats": dict(self.stats),
                   "enabled": self.enabled}
            note = self.note or getattr(self.backend, "failed", None)
            if note:
                out["note"] = note
            self.pending = {}
            self.stats = dict.fromkeys(STAT_KEYS, 0)
            return out


def merge_stats(total: dict, stats: dict) -> dict:
    for k in STAT_KEYS:
        total[k] = total.get(k, 0) + int(stats.get(k, 0))
    return total


def summarise(stats: dict, enabled: bool) -> dict:
    """The run summary's view: hits, misses, hit rate (None when nothing was asked or the cache is off)."""
    s = {k: int(stats.get(k, 0)) for k in STAT_KEYS}
    hits = s["memory_hits"] + s["store_hits"] + s["batch_duplicates"]
    asked = hits + s["misses"]
    return {"enabled": enabled, "hits": hits, "misses": s["misses"],
            "hit_rate": (hits / asked) if enabled and asked else None, **s}


# --- the wrapper ---------------------------------------------------------------------------------------

def _cacheable_batch(waveforms: Any) -> bool:
    """A list or tuple of numpy arrays: anything else (one array, tensors) goes to the model as given."""
    return isinstance(waveforms, (list, tuple)) and all(isinstance(w, np.ndarray) for w in waveforms)


class CachedModel:
    """A SpeechModel seen through the model-output cache (see the module docstring).

    Attribute reads and writes go to the wrapped model, so the wrapper is
    transparent to everything but the three cached calls; `wrapped_model` is
    the model itself.
    """

    def __init__(self, model: Any, cache: ModelOutputCache, ref: dict | None = None):
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_cache", cache)
        object.__setattr__(self, "_ref", ref)

    @property
    def wrapped_model(self) -> Any:
        return object.__getattribute__(self, "_model")

    @property
    def model_cache(self) -> ModelOutputCache:
        return object.__getattribute__(self, "_cache")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_model", "_cache", "_ref"):
            raise AttributeError(name)  # (un)pickling and copy probe dunders before __init__ ran
        return getattr(object.__getattribute__(self, "_model"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_model"), name, value)

    def __repr__(self) -> str:
        return f"CachedModel({self.wrapped_model!r})"

    # -- the cached calls --------------------------------------------------------------------
    def transcribe(self, waveforms: Sequence[np.ndarray]) -> list[list[str]]:
        return self._call("transcribe", waveforms, None, self._model.transcribe, list)

    def classify(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return self._call("classify", waveforms, None, self._model.classify, np.stack)

    def score_tokens(self, waveforms: Sequence[np.ndarray], transcript: ForcedTranscript) -> list[np.ndarray]:
        if not isinstance(transcript, ForcedTranscript):
            return self._model.score_tokens(waveforms, transcript)
        return self._call("score_tokens", waveforms, transcript_identity(transcript),
                          lambda ws: self._model.score_tokens(ws, transcript), list)

    def _call(self, kind: str, waveforms: Any, args: dict | None, compute: Callable[[Any], Any],
              assemble: Callable[[list], Any]) -> Any:
        cache: ModelOutputCache = self._cache
        if not _cacheable_batch(waveforms) or len(waveforms) == 0:
            return compute(waveforms)  # the model's own answer (or its own error) for odd input
        n = len(waveforms)
        if not cache.enabled:
            out = compute(waveforms)
            cache.count(requested=n, evaluated=n, calls=1)
            return out
        model = self._model
        prefix = call_prefix(kind, model_identity(model, self._ref), args)
        keys = [entry_key(prefix, waveform_digest(w)) for w in waveforms]
        found = cache.lookup(list(dict.fromkeys(keys)))
        miss_keys: list[str] = []
        miss_keys_seen: set[str] = set()
        miss_waves: list[np.ndarray] = []
        for k, w in zip(keys, waveforms):
            if k not in found and k not in miss_keys_seen:
                miss_keys_seen.add(k)
                miss_keys.append(k)
                miss_waves.append(w)
        fresh: dict[str, Any] = {}
        if miss_waves:
            out = compute(miss_waves)
            if len(out) != len(miss_waves):
                raise InputError(f"model {getattr(model, 'name', type(model).__name__)!r}: {kind} returned "
                                 f"{len(out)} outputs for {len(miss_waves)} inputs")
            for k, value in zip(miss_keys, out):
                fresh[k] = value
                stored = encode_value(kind, value)
                if stored is not None:
                    cache.add(k, kind, stored)
        results = []
        first_use: set[str] = set()
        memory_hits = store_hits = duplicates = 0
        for k in keys:
            if k in fresh:
                if k in first_use:
                    duplicates += 1
                    stored = encode_value(kind, fresh[k])
                    results.append(decode_value(kind, stored) if stored is not None else fresh[k])
                else:
                    first_use.add(k)
                    results.append(fresh[k])
            else:
                source, (_, stored) = found[k]
                memory_hits += source == "memory"
                store_hits += source == "store"
                results.append(decode_value(kind, stored))
        cache.count(requested=n, memory_hits=memory_hits, store_hits=store_hits, batch_duplicates=duplicates,
                    misses=len(miss_waves), evaluated=len(miss_waves), calls=1 if miss_waves else 0)
        return assemble(results)


def unwrap(model: Any) -> Any:
    """The model behind a CachedModel (or the model itself)."""
    return model.wrapped_model if isinstance(model, CachedModel) else model
