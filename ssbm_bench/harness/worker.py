"""What a worker keeps between jobs: plugin instances, built once.

Jobs name plugins by reference (name + parameters); the first job that needs
a model loads it and later jobs on the same worker reuse it, so weights load
once per worker rather than once per cell. Models are handed out wrapped in
the worker's model-output cache (ssbm_bench.model_cache): the same input is
evaluated once per worker, and once per store when the harness persists what
the cache learnt.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from ..fill import UsesCorpusStats
from ..model_cache import CachedModel, ModelCacheSettings, ModelOutputCache
from ..plugins import PluginRegistry, get_registry
from ..types import Utterance
from .suite import PluginRef


def ref_key(kind: str, ref: PluginRef) -> str:
    return f"{kind}:{ref.name}:{json.dumps(ref.params, sort_keys=True)}"


class WorkerCache:
    def __init__(self, registry: PluginRegistry | None = None):
        self.registry = registry or get_registry()
        self.instances: dict[str, Any] = {}
        self.utterances: dict[str, dict[str, Utterance]] = {}
        #: where methods keep target-independent work (the results store, in process)
        self.artifacts = None
        #: recent saliency maps, so the SSBM and deletion cells of one
        #: explanation compute it once (see harness.maps)
        self.maps: "OrderedDict[str, Any]" = OrderedDict()
        self.corpus_statistics: dict[str, Any] = {}
        #: the model-output cache every model of this worker goes through (memory only until configured)
        self.model_outputs = ModelOutputCache()

    def configure_model_cache(self, settings: ModelCacheSettings, backend: Any = None) -> None:
        """Switch the cache on or off and give it a store to read (once per worker; later calls do nothing)."""
        self.model_outputs.configure(settings, backend)

    def instance(self, kind: str, ref: PluginRef) -> Any:
        key = ref_key(kind, ref)
        if key not in self.instances:
            made = self.registry.create(kind, ref.name, **ref.params)
            if kind == "model":
                made = CachedModel(made, self.model_outputs, ref.to_dict())
            self.instances[key] = made
        return self.instances[key]

    def corpus_stats(self, corpus_ref: PluginRef, cfg) -> Any:
        """The corpus's STFT statistics (for min_data / gauss_norm), from the store or computed once."""
        from ..corpus_stats import corpus_stats

        key = ref_key("corpus", corpus_ref) + json.dumps(cfg.to_dict(), sort_keys=True)
        if key not in self.corpus_statistics:
            self.corpus_statistics[key] = corpus_stats(self.instance("corpus", corpus_ref), cfg, self.artifacts)
        return self.corpus_statistics[key]

    def fill(self, fill_ref: PluginRef, corpus_ref: PluginRef, cfg) -> Any:
        """A fill instance, given the corpus statistics first when it needs them."""
        fill = self.instance("fill", fill_ref)
        if isinstance(fill, UsesCorpusStats):
            fill.use_corpus_stats(self.corpus_stats(corpus_ref, cfg))
        return fill

    def utterance(self, corpus_ref: PluginRef, utt_id: str) -> Utterance:
        key = ref_key("corpus", corpus_ref)
        if key not in self.utterances:
            corpus = self.instance("corpus", corpus_ref)
            self.utterances[key] = {u.id: u for u in corpus.utterances()}
        return self.utterances[key][utt_id]


def cache_from(worker_state: dict) -> WorkerCache:
    """The executor hands `work` a plain dict; keep our cache inside it."""
    if "ssbm_bench" not in worker_state:
        worker_state["ssbm_bench"] = WorkerCache()
    return worker_state["ssbm_bench"]
