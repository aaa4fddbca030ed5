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

:func:`factory_problem` says, without calling it, whether a record's factory
can build its kind (a subclass of the kind's base class that implements
every abstract member; a function whose return annotation fits), so that a
bad plugin is refused where it registers, not found out mid-run.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
import typing
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


#: kind -> the base class its factory must build (a family's factory returns any object with ``to_dict()``)
BASE_CLASS = {
    "model": "ssbm_bench.model.SpeechModel",
    "method": "ssbm_bench.method.SaliencyMethod",
    "fill": "ssbm_bench.fill.Fill",
    "corpus": "ssbm_bench.corpus.Corpus",
    "executor": "ssbm_bench.executor.Executor",
    "board": "ssbm_bench.board.Board",
}
#: kind -> the section of CONTRIBUTING.md that says how to write one (named in every refusal)
GUIDE = {
    "model": "Write a model",
    "method": "Write a saliency method in one file",
    "fill": "Write a fill",
    "corpus": "Write a corpus",
    "executor": "Write an executor",
    "family": "Write a seed family",
    "board": "Write a board",
}
#: a model capability -> the SpeechModel methods of which a class that declares it overrides at least one, per group
CAPABILITY_METHODS = {
    "transcribe": (("transcribe",),),
    "classify": (("classify",),),
    "differentiable": (("target_score", "token_log_probs", "class_logits"),),
    "score_tokens": (("score_tokens",),),
    "align": (("align",),),
    "embed": (("embed",), ("embedding_target_score",)),
}


def base_class(kind: str) -> type | None:
    """The base class of `kind` (imported only now: registering must not import torch for a corpus)."""
    path = BASE_CLASS.get(kind)
    if path is None:
        return None
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def expected(kind: str) -> str:
    """What a factory of `kind` must be, in words, with where it is documented."""
    implements = ("overrides the methods of every capability it declares" if kind == "model"
                  else "implements its abstract members")
    what = (f"a subclass of {BASE_CLASS[kind]} that {implements}, or a function returning one"
            if kind in BASE_CLASS else "a function or class building an object with a to_dict() method")
    return f"expected {what} (CONTRIBUTING.md, '{GUIDE[kind]}')"


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _member_signature(cls: type, member: str) -> str:
    """``apply(self, clean, weight, ctx) -> torch.Tensor``: the abstract member as its base declares it."""
    try:
        sig = str(inspect.signature(getattr(cls, member)))
    except (TypeError, ValueError, AttributeError):
        return member
    return member + sig.replace("'", "")


def _class_problem(kind: str, cls: type, record: Any) -> str | None:
    base = base_class(kind)
    if base is None:
        to_dict = getattr(cls, "to_dict", None)
        return None if callable(to_dict) else f"its factory {_qualname(cls)} has no to_dict() method"
    if not issubclass(cls, base):
        return f"its factory {_qualname(cls)} does not subclass {BASE_CLASS[kind]}"
    if inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        return (f"its factory {_qualname(cls)} is abstract: it does not implement "
                f"{', '.join(_member_signature(cls, m) for m in missing)}")
    if kind == "model":
        return _capability_problem(cls, base, getattr(record, "capabilities", frozenset()))
    return None


def _capability_problem(cls: type, base: type, capabilities: frozenset[str]) -> str | None:
    """A model class that declares a capability overrides its methods (else every call raises CapabilityMissing)."""
    missing = []
    for capability in sorted(capabilities):
        for group in CAPABILITY_METHODS.get(capability, ()):
            if all(getattr(cls, m, None) is getattr(base, m, None) for m in group):
                missing.append(f"{' or '.join(group)} (for {capability})")
    if missing:
        return f"its factory {_qualname(cls)} declares capabilities it does not implement: {'; '.join(missing)}"
    return None


def _fits(kind: str, annotation: Any) -> bool:
    """Whether a return annotation can be what `kind` needs (an annotation this cannot judge fits)."""
    if annotation is type(None):
        return False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_fits(kind, arm) for arm in typing.get_args(annotation))
    cls = typing.get_origin(annotation) or annotation
    if not isinstance(cls, type):
        return True  # Any, a TypeVar, a string nothing resolves: cannot say
    base = base_class(kind)
    if base is None:
        return cls is object or callable(getattr(cls, "to_dict", None))
    return issubclass(cls, base) or issubclass(base, cls)  # a wider annotation (object) says nothing against it


def _function_problem(kind: str, func: Callable) -> str | None:
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # an annotation that names what is not importable here: cannot judge it
        return None
    if "return" not in hints or _fits(kind, hints["return"]):
        return None
    shown = getattr(hints["return"], "__qualname__", None) or str(hints["return"]).replace("typing.", "")
    return f"its factory {_qualname(func)}() is annotated to return {shown}"


def factory_problem(record: Any) -> str | None:
    """What is wrong with `record`'s factory for its kind, ending with what was expected; None when it fits.

    Nothing is called: a class is checked against the kind's base class (and
    must not be abstract: that is the fill without ``apply`` that would
    otherwise fail in the middle of a run), a function by its return
    annotation when it has one. A callable object is left to the run."""
    kind = record.kind
    factory = record.factory
    while isinstance(factory, functools.partial):
        factory = factory.func
    if not callable(factory):
        problem = f"its factory {factory!r} is not callable"
    elif inspect.isclass(factory):
        problem = _class_problem(kind, factory, record)
    elif inspect.isfunction(factory) or inspect.ismethod(factory):
        problem = _function_problem(kind, factory)
    else:
        problem = None
    return None if problem is None else f"{problem}; {expected(kind)}"
