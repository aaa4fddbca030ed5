"""What a worker keeps between jobs: plugin instances, built once.

Jobs name plugins by reference (name + parameters); the first job that needs
a model loads it and later jobs on the same worker reuse it, so weights load
once per worker rather than once per cell.
"""

from __future__ import annotations

import json
from typing import Any

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

    def instance(self, kind: str, ref: PluginRef) -> Any:
        key = ref_key(kind, ref)
        if key not in self.instances:
            self.instances[key] = self.registry.create(kind, ref.name, **ref.params)
        return self.instances[key]

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
