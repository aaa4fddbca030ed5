"""Suite files: what a run crosses, as a strictly checked TOML document.

A typo in a key is an error that names the key, its section and the keys
that are allowed (with the closest match), because a silently ignored
setting would produce a leaderboard that is not what its suite file says.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..model_cache import parse_enabled

#: the corpus of a suite without grid boards that names none (it enters cell keys only)
DEFAULT_CORPUS = "synthetic"
#: the board a suite without `boards = [...]` runs, and `leaderboard` shows by default
DEFAULT_BOARD = "ssbm"
#: seconds a cell may run by default: generous (a bubble cell of 1000 mixtures decodes for many minutes on a
#: CPU), but a hanging plugin ends
DEFAULT_CELL_TIMEOUT = 7200.0
#: the sections the core owns; every registered board adds its own (``Board.section``)
CORE_SECTIONS = ("suite", "corpus", "models", "methods", "fills", "run")


@dataclass(frozen=True)
class PluginRef:
    """A plugin name plus the parameters passed to its factory."""

    name: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "params": self.params}

    @property
    def label(self) -> str:
        """Name plus parameters, as shown in leaderboards when parameters are set."""
        if not self.params:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}[{inner}]"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    boards: tuple[str, ...]
    corpus: PluginRef
    utterance_limit: int | None
    utterance_ids: tuple[str, ...]
    words_per_utterance: int | None
    models: tuple[PluginRef, ...]
    methods: tuple[PluginRef, ...]
    fills: tuple[PluginRef, ...]
    seeds: tuple[int, ...]
    executor: PluginRef
    source: dict
    path: str = ""
    #: board name -> its parsed section (``Board.parse_settings``), for every board the suite lists or configures
    settings: dict = field(default_factory=dict)
    #: whether any listed board crosses the grid (corpus x models x methods x fills)
    uses_grid: bool = True
    #: seconds one cell may run before it is stopped and stored as an error ([run] cell_timeout; None: no limit)
    cell_timeout: float | None = None
    #: cache model outputs by input digest ([run] model_cache; `run --no-model-cache` turns it off)
    model_cache: bool = True
    #: per entry of `methods`, the labels of the models it runs on (None: every model of the suite);
    #: a ``models = [...]`` list on a [[methods]] entry
    method_models: tuple = ()

    def methods_for(self, model: PluginRef) -> tuple[PluginRef, ...]:
        """The methods crossed with `model` (all of them unless a [[methods]] entry names its models)."""
        out = []
        for i, meth in enumerate(self.methods):
            only = self.method_models[i] if i < len(self.method_models) else None
            if only is None or model.label in only:
                out.append(meth)
        return tuple(out)

    def runs(self, model_label: str, method_label: str) -> bool:
        """Whether the suite crosses this model with this method (used to check submitted cells)."""
        return any(m.label == method_label for r in self.models if r.label == model_label
                   for m in self.methods_for(r))

    @property
    def digest(self) -> str:
        """Digest of the parsed content (not the bytes: comments do not change it)."""
        blob = json.dumps(self.source, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_SCHEMA: dict[str, set[str]] = {
    "suite": {"name", "description", "boards"},
    "corpus": {"name", "params", "limit", "utterances", "words_per_utterance"},
    "models": {"name", "params"},
    "methods": {"name", "params", "models"},
    "fills": {"name", "params"},
    "run": {"seeds", "executor", "executor_params", "model_cache", "cell_timeout"},
}


def check_keys(table: dict, allowed: set[str] | frozenset[str], label: str, where: str) -> None:
    """Refuse a key that is not allowed, naming it, its table, the closest allowed key and all of them."""
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise SuiteError(
                f"{where}: unknown key {key!r} in {label}{did}; allowed keys: {', '.join(sorted(allowed))}"
            )


def _check_keys(table: dict, section: str, where: str) -> None:
    check_keys(table, _SCHEMA[section], f"[{section}]", where)


def expect(value: Any, types: type | tuple[type, ...], what: str, where: str) -> Any:
    """`value` if it is of `types` (a bool is no int), else a SuiteError naming `what` and the value."""
    allowed = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        names = " or ".join(t.__name__ for t in allowed)
        raise SuiteError(f"{where}: {what} must be {names}, got {value!r}")
    return value


def plugin_entry(item: Any, what: str, where: str, allowed: set[str] = frozenset({"name", "params"})) -> PluginRef:
    """A ``{name = ..., params = {...}}`` table (or a bare name) as a PluginRef."""
    if isinstance(item, str):
        return PluginRef(item)
    if not isinstance(item, dict) or "name" not in item:
        raise SuiteError(f"{where}: {what} must be a plugin name or a table with a 'name', got {item!r}")
    check_keys(item, allowed, what, where)
    params = expect(item.get("params", {}), dict, f"{what}.params", where)
    return PluginRef(expect(item["name"], str, f"{what}.name", where), dict(params))


def _plugin_list(doc: dict, section: str, where: str, required: bool = True) -> tuple[PluginRef, ...]:
    items = doc.get(section, [])
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or (required and not items):
        raise SuiteError(f"{where}: [[{section}]] must list at least one entry with a 'name' (the grid boards "
                         f"cross the corpus with every model and method)")
    refs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SuiteError(f"{where}: {section}[{i}] must be a table with a 'name', got {item!r}")
        _check_keys(item, section, where)
        if "name" not in item:
            raise SuiteError(f"{where}: {section}[{i}] has no 'name'")
        refs.append(plugin_entry({k: v for k, v in item.items() if k != "models"}, f"{section}[{i}]", where))
    return tuple(refs)


def _method_models(doc: dict, models: tuple[PluginRef, ...], where: str) -> tuple:
    """Per [[methods]] entry, the model labels named by its optional ``models`` list (None: all models).

    An entry of the list matches a [[models]] entry by name (every model of
    that name) or by label (``name[key=value,...]``, one parametrised copy);
    a name that matches none is an error that lists the suite's models."""
    items = doc.get("methods", [])
    if isinstance(items, dict):
        items = [items]
    labels = [m.label for m in models]
    out = []
    for i, item in enumerate(items):
        if "models" not in item:
            out.append(None)
            continue
        what = f"methods[{i}] ({item.get('name', '?')}).models"
        names = item["models"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise SuiteError(f"{where}: {what} must be a non-empty list of model names from [[models]], "
                             f"got {names!r}")
        chosen: list[str] = []
        for n in names:
            hits = [m.label for m in models if n in (m.name, m.label)]
            if not hits:
                hint = difflib.get_close_matches(n, sorted({m.name for m in models} | set(labels)), n=1)
                did = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise SuiteError(f"{where}: {what}: {n!r} is not a model of this suite{did}; "
                                 f"its [[models]] are: {', '.join(labels)}")
            chosen.extend(h for h in hits if h not in chosen)
        out.append(tuple(chosen))
    return tuple(out)


#: a suite's name names its results store (results/NAME.sqlite): letters, digits, '_', '.', '-', no '..'
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _suite_name(head: dict, where: str) -> str:
    name = expect(head["name"], str, "suite.name", where)
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise SuiteError(f"{where}: suite.name {name!r} must be safe as a file name (letters, digits, '_', '.', "
                         f"'-'; at most 100; no '..'): it names the results store results/NAME.sqlite")
    return name


def _no_duplicates(refs: tuple[PluginRef, ...], section: str, where: str) -> None:
    labels = [r.label for r in refs]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise SuiteError(f"{where}: [[{section}]] lists {', '.join(repr(t) for t in twice)} twice; each entry "
                         f"must differ in its name or parameters (its cells would be counted twice)")


def _boards(head: dict, registry, where: str) -> tuple[str, ...]:
    boards = head.get("boards", [DEFAULT_BOARD])
    if not isinstance(boards, list) or not all(isinstance(b, str) for b in boards):
        raise SuiteError(f"{where}: suite.boards must be a list of board names (e.g. boards = [\"ssbm\"]), "
                         f"got {boards!r}")
    if not boards:
        raise SuiteError(f"{where}: suite.boards is empty: name at least one board (e.g. boards = [\"ssbm\"])")
    if len(set(boards)) != len(boards):
        raise SuiteError(f"{where}: suite.boards lists a board twice: {boards!r}")
    known = registry.names("board")
    for b in boards:
        if b not in known:
            refused = next((r for r in getattr(registry, "refused", []) if (r.kind, r.name) == ("board", b)), None)
            if refused is not None:  # installed, but its plugin could not build it: say so, not "unknown"
                raise SuiteError(f"{where}: {refused.message()}; `ssbm-bench plugins` "
                                 f"lists it under 'refused'")
            hint = difflib.get_close_matches(b, known, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise SuiteError(f"{where}: unknown board {b!r}{did}; installed boards: {', '.join(known) or 'none'}")
    return tuple(boards)


def parse_suite(doc: dict, where: str = "suite", registry=None) -> Suite:
    """A suite from its parsed TOML: the core's sections here, each board's section by the board itself."""
    from ..plugins import get_registry

    registry = registry or get_registry()
    boards_by_section = {}
    for name in registry.names("board"):
        board = registry.board(name)
        if board.section:
            boards_by_section[board.section] = board
    check_keys(doc, set(CORE_SECTIONS) | set(boards_by_section), "the top level", where)
    head = doc.get("suite", {})
    _check_keys(head, "suite", where)
    if "name" not in head:
        raise SuiteError(f"{where}: [suite] needs a 'name'")
    boards = _boards(head, registry, where)

    # [corpus], [[models]] and [[methods]] feed the grid boards; a suite without one (families and excerpts
    # bring their own data) may leave them out
    grid_boards = any(registry.board(b).uses_grid for b in boards)
    corpus = doc.get("corpus")
    if corpus is None and not grid_boards:
        corpus = {"name": DEFAULT_CORPUS}
    if not isinstance(corpus, dict) or "name" not in corpus:
        raise SuiteError(f"{where}: [corpus] with a 'name' is required (boards {', '.join(boards)})")
    _check_keys(corpus, "corpus", where)
    limit = corpus.get("limit")
    if limit is not None and (expect(limit, int, "corpus.limit", where) < 1):
        raise SuiteError(f"{where}: corpus.limit must be at least 1, got {limit}")
    wpu = corpus.get("words_per_utterance")
    if wpu is not None and expect(wpu, int, "corpus.words_per_utterance", where) < 1:
        raise SuiteError(f"{where}: corpus.words_per_utterance must be at least 1, got {wpu}")

    run = doc.get("run", {})
    _check_keys(run, "run", where)
    seeds = run.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise SuiteError(f"{where}: run.seeds must be a non-empty list of integers, got {seeds!r}")
    model_cache = parse_enabled(run.get("model_cache", True), f"{where}: run.model_cache")
    timeout = expect(run.get("cell_timeout", DEFAULT_CELL_TIMEOUT), (int, float), "run.cell_timeout", where)
    if not (timeout >= 0 and timeout != float("inf")):
        raise SuiteError(f"{where}: run.cell_timeout is seconds per cell (0: no limit), got {timeout!r}")
    fills = _plugin_list(doc, "fills", where, required=False) or (PluginRef("white-noise"),)
    models = _plugin_list(doc, "models", where, required=grid_boards)
    methods = _plugin_list(doc, "methods", where, required=grid_boards)
    method_models = _method_models(doc, models, where)
    for refs, section in ((models, "models"), (methods, "methods"), (fills, "fills")):
        _no_duplicates(refs, section, where)

    settings = {}
    for name in registry.names("board"):
        board = registry.board(name)
        present = board.section is not None and board.section in doc
        if present or name in boards:
            section = doc.get(board.section) if board.section else None
            if present and not isinstance(section, dict):
                raise SuiteError(f"{where}: [{board.section}] must be a table, got {section!r}")
            settings[name] = board.parse_settings(section, name in boards, where)

    return Suite(
        name=_suite_name(head, where),
        description=str(head.get("description", "")),
        boards=boards,
        corpus=PluginRef(expect(corpus["name"], str, "corpus.name", where), dict(corpus.get("params", {}))),
        utterance_limit=limit,
        utterance_ids=tuple(corpus.get("utterances", ())),
        words_per_utterance=wpu,
        models=models,
        methods=methods,
        fills=fills,
        seeds=tuple(seeds),
        executor=PluginRef(str(run.get("executor", "inprocess")), dict(run.get("executor_params", {}))),
        source=doc,
        settings=settings,
        uses_grid=grid_boards,
        method_models=method_models,
        model_cache=model_cache,
        cell_timeout=float(timeout) or None,
    )


def load_suite(path: str | Path, registry=None) -> Suite:
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"suite file {p}: not found")
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"suite file {p}: not valid TOML ({exc})") from exc
    suite = parse_suite(doc, where=f"suite file {p}", registry=registry)
    object.__setattr__(suite, "path", str(p))
    return suite
