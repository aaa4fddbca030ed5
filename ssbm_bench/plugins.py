"""The plugin manager: loads the entry-point group ``ssbm_bench`` with pluggy.

First-party plugins (``plugins/``, importable as ``ssbm_bench_plugins``) are
declared in our own pyproject.toml under the same group, so they load through
exactly the path an outside package's plugins do.

* A plugin that fails to import is recorded with its error and skipped
  (``ssbm-bench plugins`` shows it), so one broken package cannot take the
  benchmark down.
* A hook implementation whose name matches no hook specification (a typo)
  fails loudly, naming the plugin.
* Two plugins registering the same name for the same kind is an error naming
  both distributions.
* A record whose factory cannot build its kind (a class that does not
  subclass the kind's base class or is abstract, a function annotated to
  return something else: :func:`ssbm_bench.records.factory_problem`), a
  record of the wrong kind, a hook that raises, and a board that cannot be
  built are *refused*: ``ssbm-bench plugins`` lists each with what was
  expected, and a suite that names one is refused before any model runs
  (``PluginRegistry.get`` raises, naming the plugin and its package), so a
  wrong interface is never found out mid-run, and never takes down the
  benchmark's other plugins.
* ``SSBM_BENCH_PLUGINS=a,b`` loads only the entry points named a and b
  (``SSBM_BENCH_PLUGINS=`` loads none).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import DuplicatePluginError, SsbmBenchError, UnknownPluginError
from .records import KIND_OF_RECORD, factory_problem

ENTRY_POINT_GROUP = "ssbm_bench"
RESTRICT_ENV = "SSBM_BENCH_PLUGINS"

#: hook name -> plugin kind it registers
HOOK_KINDS = {
    "register_models": "model",
    "register_methods": "method",
    "register_fills": "fill",
    "register_corpora": "corpus",
    "register_executors": "executor",
    "register_families": "family",
    "register_boards": "board",
}


class PluginError(SsbmBenchError):
    """A plugin that is wired wrongly (a misspelled hook), or a refused plugin that a suite or command names."""


@dataclass
class Refused:
    """A record (or a whole hook) refused at registration: which plugin, from which package, and why."""

    kind: str
    #: the record's name; "" when the hook failed before naming one
    name: str
    plugin: str
    distribution: str
    version: str
    module: str
    #: what is wrong, ending with what was expected
    problem: str

    @property
    def what(self) -> str:
        thing = f"{self.kind} {self.name!r}" if self.name else f"{self.kind} plugin"
        return f"{thing} from plugin {self.plugin!r} (module {self.module}, package {self.distribution} {self.version})"

    def message(self) -> str:
        return f"{self.what} is refused: {self.problem}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "plugin": self.plugin, "distribution": self.distribution,
                "version": self.version, "module": self.module, "problem": self.problem}


@dataclass
class LoadedPlugin:
    """One entry point: where it came from and whether it imported."""

    name: str
    distribution: str
    version: str
    module: str
    error: str | None = None


@dataclass
class Registered:
    """A record plus the plugin and distribution that registered it."""

    record: Any
    plugin: str
    distribution: str
    version: str

    @property
    def name(self) -> str:
        return self.record.name


@dataclass
class PluginRegistry:
    loaded: list[LoadedPlugin]
    by_kind: dict[str, dict[str, Registered]] = field(default_factory=dict)
    #: records refused at registration, in the order they were met (``ssbm-bench plugins`` lists them)
    refused: list[Refused] = field(default_factory=list)
    _boards: dict = field(default_factory=dict, repr=False)

    @property
    def failures(self) -> list[LoadedPlugin]:
        return [p for p in self.loaded if p.error]

    def names(self, kind: str) -> list[str]:
        return sorted(self.by_kind.get(kind, {}))

    def get(self, kind: str, name: str) -> Registered:
        entries = self.by_kind.get(kind, {})
        if name not in entries:
            for r in self.refused:
                if (r.kind, r.name) == (kind, name):
                    raise PluginError(f"{r.message()}. `ssbm-bench plugins` lists it under 'refused'; fix the "
                                      f"plugin or remove {kind} {name!r} from the suite")
            raise UnknownPluginError(kind, name, list(entries))
        return entries[name]

    def create(self, kind: str, name: str, **params: Any) -> Any:
        """Instantiate a plugin by name with its parameters."""
        return self.get(kind, name).record.factory(**params)

    def board(self, name: str) -> Any:
        """The board of that name (one instance per registry: boards hold no run state)."""
        if name not in self._boards:
            board = self.create("board", name)
            from .board import Board

            if not isinstance(board, Board) or board.name != name:
                raise PluginError(f"board {name!r}: its factory built {board!r}; expected a ssbm_bench.board.Board "
                                  f"subclass instance whose name is {name!r}")
            self._boards[name] = board
        return self._boards[name]

    def refuse(self, kind: str, name: str, plugin: str, problem: str) -> None:
        """List `name` (of `kind`, from `plugin`) as refused, with its package and module."""
        origin = next((p for p in self.loaded if p.name == plugin), LoadedPlugin(plugin, "unknown", "0", "?"))
        self.refused.append(Refused(kind, name, plugin, origin.distribution, origin.version, origin.module, problem))

    def build_boards(self) -> None:
        """Build every board now (they are cheap and hold no state), refusing one that cannot be built: a suite
        is parsed against every installed board, so one broken board must not stop every suite."""
        for name in self.names("board"):
            try:
                self.board(name)
            except Exception as exc:
                reg = self.by_kind["board"].pop(name)
                problem = f"its factory raised {type(exc).__name__}: {exc}"
                if isinstance(exc, PluginError):  # built, but not a Board of that name: the message says so
                    problem = str(exc).split(": ", 1)[1]
                self.refuse("board", name, reg.plugin, problem)

    def boards(self) -> list[Any]:
        """Every registered board, in page order (``Board.order``, then name)."""
        return sorted((self.board(n) for n in self.names("board")), key=lambda b: (b.order, b.name))

    def version_of(self, kind: str, name: str) -> str:
        reg = self.get(kind, name)
        return f"{reg.distribution}=={reg.version}"


def _restriction() -> set[str] | None:
    raw = os.environ.get(RESTRICT_ENV)
    if raw is None:
        return None
    return {s.strip() for s in raw.split(",") if s.strip()}


def _load_entry_points(pm: pluggy.PluginManager, restrict: set[str] | None) -> list[LoadedPlugin]:
    loaded: list[LoadedPlugin] = []
    eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
    for ep in eps:
        if restrict is not None and ep.name not in restrict:
            continue
        dist = ep.dist.name if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "0"
        info = LoadedPlugin(ep.name, dist, version, ep.value)
        loaded.append(info)
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin is reported, not fatal
            info.error = f"{type(exc).__name__}: {exc}"
            info.traceback = traceback.format_exc()  # type: ignore[attr-defined]
            continue
        plugin_name = ep.name if pm.get_plugin(ep.name) is None else f"{dist}:{ep.name}"
        info.name = plugin_name
        try:
            pm.register(module, name=plugin_name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {plugin_name!r} from {dist}: {exc}") from exc
    return loaded


def build_registry(extra_plugins: Iterable[Any] = (), restrict: set[str] | None | str = "env") -> PluginRegistry:
    """Load entry points (and any `extra_plugins` objects) and collect their records."""
    pm = pluggy.PluginManager("ssbm_bench")
    pm.add_hookspecs(hookspecs)
    if restrict == "env":
        restrict = _restriction()
    loaded = _load_entry_points(pm, restrict)  # type: ignore[arg-type]
    for i, obj in enumerate(extra_plugins):
        name = getattr(obj, "__name__", None) or f"extra-{i}"
        pm.register(obj, name=name)
        loaded.append(LoadedPlugin(name, "(in-process)", "0", name))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        plugin = getattr(exc, "plugin", None)
        name = pm.get_name(plugin) if plugin is not None else "?"
        raise PluginError(f"plugin {name!r} implements a hook that does not exist: {exc}") from exc

    dist_of = {p.name: (p.distribution, p.version) for p in loaded}
    registry = PluginRegistry(loaded=loaded, by_kind={k: {} for k in HOOK_KINDS.values()})
    for hook_name, kind in HOOK_KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            dist, version = dist_of.get(impl.plugin_name, ("unknown", "0"))
            register = _registrar(registry, kind, hook_name, impl.plugin_name, dist, version)
            try:
                impl.function(register=register)
            except DuplicatePluginError:
                raise
            except Exception as exc:  # the plugin's own bug: refused, the others load
                registry.refuse(kind, "", impl.plugin_name,
                                f"its hook {hook_name} raised {type(exc).__name__}: {exc}; expected it to call "
                                f"register(...) with a {KIND_OF_RECORD[kind].__name__} per {kind}")
    registry.build_boards()
    return registry


def _registrar(registry: PluginRegistry, kind: str, hook_name: str, plugin: str, dist: str, version: str):
    """The `register` callback one plugin's hook receives: it files each record, or refuses it."""
    record_type = KIND_OF_RECORD[kind]

    def register(record):
        if not isinstance(record, record_type):
            name = getattr(record, "name", "")
            registry.refuse(kind, name if isinstance(name, str) else "", plugin,
                            f"{hook_name} registered a {type(record).__name__}; expected {record_type.__name__}")
            return
        problem = factory_problem(record)
        if problem is not None:
            registry.refuse(kind, record.name, plugin, problem)
            return
        existing = registry.by_kind[kind].get(record.name)
        if existing is not None:
            raise DuplicatePluginError(
                f"{kind} {record.name!r} is registered twice: by plugin {existing.plugin!r} "
                f"from {existing.distribution} and by plugin {plugin!r} from {dist}"
            )
        registry.by_kind[kind][record.name] = Registered(record, plugin, dist, version)

    return register


_CACHED: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process-wide registry (built once)."""
    global _CACHED
    if _CACHED is None:
        _CACHED = build_registry()
    return _CACHED


def reset_registry() -> None:
    global _CACHED
    _CACHED = None
