"""The small typed records a plugin registers.

A plugin's hook receives a `register` callback and calls it with one of
these (in the style of conda's hooks yielding named records). Factories are
called lazily, so listing plugins never loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class ModelPlugin:
    name: str
    factory: Callable[..., Any]
    description: str
    capabilities: frozenset[str] = frozenset()
    kind: str = field(default="model", init=False)


@dataclass(frozen=True)
class MethodPlugin:
    name: str
    factory: Callable[..., Any]
    description: str
    requires: frozenset[str] = frozenset()
    kind: str = field(default="method", init=False)


@dataclass(frozen=True)
class FillPlugin:
    name: str
    factory: Callable[..., Any]
    description: str
    kind: str = field(default="fill", init=False)


@dataclass(frozen=True)
class CorpusPlugin:
    name: str
    factory: Callable[..., Any]
    description: str
    #: optional generator: builder(output_dir) -> path of the built manifest
    builder: Callable[..., Any] | None = None
    kind: str = field(default="corpus", init=False)


@dataclass(frozen=True)
class ExecutorPlugin:
    name: str
    factory: Callable[..., Any]
    description: str
    kind: str = field(default="executor", init=False)


@dataclass(frozen=True)
class FamilyPlugin:
    """A seed-family task: ``factory(seeds, log)`` trains (or loads from its
    cache) one classifier per seed and returns the family, whose
    ``to_dict()`` names the member directories and their agreement."""

    name: str
    factory: Callable[..., Any]
    description: str
    #: "word-based" or "acoustic" (the ISA paper's contrast)
    task_kind: str = ""
    kind: str = field(default="family", init=False)


PluginRecord = ModelPlugin | MethodPlugin | FillPlugin | CorpusPlugin | ExecutorPlugin | FamilyPlugin
KIND_OF_RECORD = {
    "model": ModelPlugin,
    "method": MethodPlugin,
    "fill": FillPlugin,
    "corpus": CorpusPlugin,
    "executor": ExecutorPlugin,
    "family": FamilyPlugin,
}
