"""One target's saliency map for a grid cell: the map, or the reason there is none.

Shared by every board that scores a map of the grid (SSBM, deletion, ...). A method that needs a capability the
model lacks is *skipped* with that reason; a method that fails (bad input,
NaN or infinite attributions, a crash) gives an *error* naming the method,
the utterance and the target. Maps are kept in a small per-worker cache
keyed by everything that determines them, so the cells of one explanation on
different boards (planned next to each other) compute it once.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch

from ..audio import StftConfig, stft
from ..errors import CapabilityMissing, InputError
from ..method import ExplainRequest
from ..types import SaliencyMap, Target
from .suite import PluginRef
from .worker import WorkerCache

#: maps kept per worker (a map of a 5 s utterance is about 0.3 MB)
MAP_CACHE_SIZE = 64


@dataclass
class Explained:
    status: str  # ok | skipped | error
    reason: str | None = None
    smap: SaliencyMap | None = None
    seconds: float = 0.0
    cached: bool = False


def explain_spec(cache: WorkerCache, spec) -> Explained:
    """The map of a grid cell's explanation (a :class:`~ssbm_bench.harness.grid.GridSpec`)."""
    return explain(cache, spec.corpus, spec.model, spec.method, spec.fill, spec.utterance, spec.target, spec.seed,
                   spec.level_db, spec.cfg)


def explain(cache: WorkerCache, corpus: PluginRef, model_ref: PluginRef, method_ref: PluginRef, fill_ref: PluginRef,
            utterance: str, target: Target, seed: int, level_db: float | None, cfg: StftConfig) -> Explained:
    t0 = time.perf_counter()
    try:
        model = cache.instance("model", model_ref)
        method = cache.instance("method", method_ref)
        fill = cache.fill(fill_ref, corpus, cfg)
        utt = cache.utterance(corpus, utterance)
    except Exception as exc:
        return Explained("error", f"could not load plugins for the cell: {type(exc).__name__}: {exc}")
    missing = sorted(str(c) for c in method.requires if not model.has(c))
    if missing:
        return Explained("skipped", f"method {method.name!r} needs {', '.join(missing)}, "
                                    f"which model {model.name!r} does not provide")
    kinds = getattr(method, "target_kinds", frozenset({"word", "class"}))
    if target.kind not in kinds:
        return Explained("skipped", f"method {method.name!r} explains {' and '.join(sorted(kinds))} targets; "
                                    f"model {model.name!r} gives a {target.kind} target ({target.key})")
    key = json.dumps([model_ref.to_dict(), method_ref.to_dict(), fill_ref.to_dict(), corpus.to_dict(), utterance,
                      target.key, seed, level_db, cfg.to_dict()], sort_keys=True, default=str)
    if key in cache.maps:
        cache.maps.move_to_end(key)
        smap, seconds = cache.maps[key]
        return Explained("ok", smap=smap, seconds=seconds, cached=True)
    magnitude = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), cfg).abs().numpy().astype(np.float64)
    request = ExplainRequest(model=model, utterance=utt, target=target, cfg=cfg, seed=seed, fill=fill,
                             clean_magnitude=magnitude, artifacts=cache.artifacts, noise_level_db=level_db)
    try:
        smap = method.explain(request)
    except CapabilityMissing as exc:
        return Explained("skipped", str(exc), seconds=time.perf_counter() - t0)
    except InputError as exc:
        return Explained("error", f"method {method.name!r} on utterance {utt.id!r}, target {target.key}: {exc}",
                         seconds=time.perf_counter() - t0)
    except Exception as exc:
        return Explained("error", f"method {method.name!r} on utterance {utt.id!r} raised "
                                  f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
                         seconds=time.perf_counter() - t0)
    if smap.shape != magnitude.shape:
        return Explained("error", f"method {method.name!r} returned a map of shape {smap.shape}; "
                                  f"the STFT grid of utterance {utt.id!r} is {magnitude.shape}")
    seconds = time.perf_counter() - t0
    cache.maps[key] = (smap, seconds)
    while len(cache.maps) > MAP_CACHE_SIZE:
        cache.maps.popitem(last=False)
    return Explained("ok", smap=smap, seconds=seconds)
