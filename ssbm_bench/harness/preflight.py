"""A suite checked against the installed plugins before any model is called.

Parsing (harness.suite and each board's ``parse_settings``) checks the
suite file's own shape. This checks what only the installed plugins know,
before a model loads or an utterance is decoded, so a typo costs seconds,
not a calibration:

* every plugin the suite names is installed (unknown names list the known ones);
* every parameter is one the plugin's factory declares (a misspelt one gets
  a did-you-mean and the list), of the declared type where the factory's
  annotation says it (``int``, ``float``, ``str``, ``bool``; a float must be
  finite);
* methods, fills and the executor are built now, so a value their
  constructors refuse (``workers = 0``, ``n_mels = 0``) is refused now,
  naming the plugin; models are not loaded here (that is what a run does
  first anyway, before it asks them anything).
"""

from __future__ import annotations

import difflib
import inspect
import math
from typing import Any, Callable

from ..errors import SsbmBenchError, SuiteError
from .suite import PluginRef, Suite

#: annotation words -> the TOML values they accept (anything else is not checked)
_ACCEPTS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "None": lambda v: False,  # TOML has no null: never the value given
}


def declared_parameters(factory: Callable) -> dict[str, str] | None:
    """{name: annotation text} of the keyword parameters a factory takes; None when it takes any (**kwargs)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    out = {}
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            ann = p.annotation
            out[p.name] = ann if isinstance(ann, str) else getattr(ann, "__name__", "") if ann is not p.empty else ""
    return out


def _type_ok(annotation: str, value: Any) -> bool | None:
    """Whether `value` fits `annotation` (None: the annotation names a type this check does not know)."""
    words = [w.strip() for w in annotation.split("|")] if annotation else []
    if not words or any(w not in _ACCEPTS for w in words):
        return None
    return any(_ACCEPTS[w](value) for w in words)


def check_params(kind: str, ref: PluginRef, factory: Callable, where: str) -> None:
    declared = declared_parameters(factory)
    if declared is None:
        return
    for key, value in ref.params.items():
        if key not in declared:
            hint = difflib.get_close_matches(key, declared, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            listed = ", ".join(sorted(declared)) or "none"
            raise SuiteError(f"{where}: {kind} {ref.name!r} has no parameter {key!r}{did}; its parameters: {listed}")
        ok = _type_ok(declared[key], value)
        if ok is False:
            raise SuiteError(f"{where}: {kind} {ref.name!r} parameter {key!r} must be {declared[key]}, got {value!r}")


def plugin_refs(suite: Suite, registry) -> list[tuple[str, PluginRef]]:
    """(kind, ref) of every plugin the suite's listed boards use: the grid's when a board uses it, each board's
    own (``Board.plugin_refs``), and the executor; once each."""
    refs: list[tuple[str, PluginRef]] = []
    if suite.uses_grid:
        refs += [("corpus", suite.corpus)] + [("model", r) for r in suite.models]
        refs += [("method", r) for r in suite.methods] + [("fill", r) for r in suite.fills]
    for board in registry.boards():
        if board.name in suite.boards:
            refs += board.plugin_refs(suite.settings.get(board.name))
    refs.append(("executor", suite.executor))
    seen, out = set(), []
    for kind, ref in refs:
        ident = (kind, ref.label)
        if ident not in seen:
            seen.add(ident)
            out.append((kind, ref))
    return out


def preflight(suite: Suite, registry, worker: Any = None) -> None:
    """Refuse, naming the plugin and the parameter, what the installed plugins would refuse mid-run."""
    where = f"suite {suite.name!r}"
    refs = plugin_refs(suite, registry)
    for kind, ref in refs:
        record = registry.get(kind, ref.name).record  # an unknown name lists the known ones
        check_params(kind, ref, record.factory, where)
    for kind, ref in refs:
        if kind not in ("method", "fill", "executor"):
            continue
        try:
            if worker is not None and kind != "executor":
                worker.instance(kind, ref)
            else:
                registry.create(kind, ref.name, **ref.params)
        except SsbmBenchError as exc:
            raise SuiteError(f"{where}: {kind} {ref.label!r}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise SuiteError(f"{where}: {kind} {ref.label!r} refused its parameters: {exc}") from None
