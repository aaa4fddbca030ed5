"""The small typed records a plugin registers.

A plugin's hook receives a `register` callback and calls it with one of
these (in the style of conda's hooks yielding named records). Factories are
called lazily, so listing plugins never loads a model.

What a plugin class already declares is read from it rather than stated
again: ``MethodPlugin.of(MyMethod, description)`` takes the record's name
and ``requires`` from the class, ``ModelPlugin.of(MyModel, description)``
its name and ``capabilities``, and ``FillPlugin`` / ``CorpusPlugin`` /
``ExecutorPlugin.of`` the name. The class is the factory unless another is
given (a function that picks the class, say), and the name can be given
where one class serves several plugins (Whisper's variants).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


def _declared_name(plugin_class: Any, name: str | None) -> str:
    if name:
        return name
    declared = plugin_class.__dict__.get("name") if isinstance(plugin_class, type) else None
    if not isinstance(declared, str) or not declared:
        raise TypeError(f"{plugin_class!r} declares no `name` of its own; pass name= to the record")
    return declared


def _declared_set(plugin_class: Any, attribute: str) -> frozenset[str]:
    """The class's set of capabilities (``Capability`` members or plain strings), as plain strings."""
    return frozenset(str(c) for c in getattr(plugin_class, attribute))


class _FromClass:
    """``Record.of(plugin_class, description)``: the record of a plugin class (see the module docstring)."""

    #: record field -> the class attribute it is read from
    _FROM_CLASS: dict[str, str] = {}

    @classmethod
    def of(cls, plugin_class: Any, description: str, *, name: str | None = None,
           factory: Callable[..., Any] | None = None, **fields: Any):
        declared = {f: _declared_set(plugin_class, attr) for f, attr in cls._FROM_CLASS.items()}
        return cls(name=_declared_name(plugin_class, name), factory=factory or plugin_class,
                   description=description, **declared, **fields)


@dataclass(frozen=True)
class ModelPlugin(_FromClass):
    name: str
    factory: Callable[..., Any]
    description: str
    capabilities: frozenset[str] = frozenset()
    kind: str = field(default="model", init=False)

    _FROM_CLASS = {"capabilities": "capabilities"}


@dataclass(frozen=True)
class MethodPlugin(_FromClass):
    name: str
    factory: Callable[..., Any]
    description: str
    requires: frozenset[str] = frozenset()
    kind: str = field(default="method", init=False)

    _FROM_CLASS = {"requires": "requires"}


@dataclass(frozen=True)
class FillPlugin(_FromClass):
    name: str
    factory: Callable[..., Any]
    description: str
    kind: str = field(default="fill", init=False)


@dataclass(frozen=True)
class CorpusPlugin(_FromClass):
    name: str
    factory: Callable[..., Any]
    description: str
    #: optional generator: builder(output_dir) -> path of the built manifest
    builder: Callable[..., Any] | None = None
    kind: str = field(default="corpus", init=False)


@dataclass(frozen=True)
class ExecutorPlugin(_FromClass):
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


@dataclass(frozen=True)
class BoardPlugin(_FromClass):
    """A board: ``factory()`` returns a :class:`ssbm_bench.board.Board` (no parameters: a board's settings
    come from its suite section)."""

    name: str
    factory: Callable[..., Any]
    description: str
    kind: str = field(default="board", init=False)


PluginRecord = BoardPlugin | ModelPlugin | MethodPlugin | FillPlugin | CorpusPlugin | ExecutorPlugin | FamilyPlugin
KIND_OF_RECORD = {
    "model": ModelPlugin,
    "method": MethodPlugin,
    "fill": FillPlugin,
    "corpus": CorpusPlugin,
    "executor": ExecutorPlugin,
    "family": FamilyPlugin,
    "board": BoardPlugin,
}
