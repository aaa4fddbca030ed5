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
from .records import KIND_OF_RECORD

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
    """A plugin that is wired wrongly (misspelled hook, bad record)."""


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
    _boards: dict = field(default_factory=dict, repr=False)

    @property
    def failures(self) -> list[LoadedPlugin]:
        return [p for p in self.loaded if p.error]

    def names(self, kind: str) -> list[str]:
        return sorted(self.by_kind.get(kind, {}))

    def get(self, kind: str, name: str) -> Registered:
        entries = self.by_kind.get(kind, {})
        if name not in entries:
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
                raise PluginError(f"board {name!r}: its factory must return a ssbm_bench.board.Board subclass "
                                  f"instance whose name is {name!r}, got {board!r}")
            self._boards[name] = board
        return self._boards[name]

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
        record_type = KIND_OF_RECORD[kind]
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            dist, version = dist_of.get(impl.plugin_name, ("unknown", "0"))

            def register(record, _impl=impl, _dist=dist, _version=version, _kind=kind, _type=record_type):
                if not isinstance(record, _type):
                    raise PluginError(
                        f"plugin {_impl.plugin_name!r} registered a {type(record).__name__} from "
                        f"{hook_name}; expected {_type.__name__}"
                    )
                existing = registry.by_kind[_kind].get(record.name)
                if existing is not None:
                    raise DuplicatePluginError(
                        f"{_kind} {record.name!r} is registered twice: by plugin {existing.plugin!r} "
                        f"from {existing.distribution} and by plugin {_impl.plugin_name!r} from {_dist}"
                    )
                registry.by_kind[_kind][record.name] = Registered(record, _impl.plugin_name, _dist, _version)

            impl.function(register=register)
    return registry


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
