"""Intermediate results a method may keep and reuse: a small key-value cache.

Some methods are expensive for reasons that do not depend on the target:
bubble noise decodes hundreds of mixtures per utterance and derives one map
per word from the same recognition results. Keeping those results (as JSON,
keyed by a digest of everything that determines them) means a map can be
recomputed, for another word or after a change of scoring, without decoding
again. The harness backs this with the results store; tests use memory.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol


def artifact_key(kind: str, **parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return f"{kind}:{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


class Artifacts(Protocol):
    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...


class MemoryArtifacts:
    def __init__(self):
        self._data: dict[str, str] = {}

    def get(self, key: str) -> Any | None:
        raw = self._data.get(key)
        return None if raw is None else json.loads(raw)

    def put(self, key: str, value: Any) -> None:
        self._data[key] = json.dumps(value, allow_nan=False)  # same contract as the store
