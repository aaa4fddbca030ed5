"""Suite files: what a run crosses, as a strictly checked TOML document.

A typo in a key is an error that names the key, its section and the keys
that are allowed (with the closest match), because a silently ignored
setting would produce a leaderboard that is not what its suite file says.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SuiteError

BOARDS = ("ssbm",)


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
class CalibrationSettings:
    levels_db: tuple[float, ...] = (-30.0, -25.0, -20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0, 30.0)
    max_accuracy: float = 0.1
    utterances: int = 4


@dataclass(frozen=True)
class SsbmSettings:
    grid: str = "standard"
    thresholds: dict = field(default_factory=dict)  # kind -> explicit list
    denominator_floor: float = 0.01
    calibration: CalibrationSettings = CalibrationSettings()


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
    ssbm: SsbmSettings
    source: dict
    path: str = ""

    @property
    def digest(self) -> str:
        """Digest of the parsed content (not the bytes: comments do not change it)."""
        blob = json.dumps(self.source, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_SCHEMA: dict[str, set[str]] = {
    "": {"suite", "corpus", "models", "methods", "fills", "ssbm", "run"},
    "suite": {"name", "description", "boards"},
    "corpus": {"name", "params", "limit", "utterances", "words_per_utterance"},
    "models": {"name", "params"},
    "methods": {"name", "params"},
    "fills": {"name", "params"},
    "ssbm": {"grid", "thresholds", "denominator_floor", "calibration"},
    "ssbm.calibration": {"levels_db", "max_accuracy", "utterances"},
    "ssbm.thresholds": {"pvalue", "magnitude", "score"},
    "run": {"seeds", "executor", "executor_params"},
}


def _check_keys(table: dict, section: str, where: str) -> None:
    allowed = _SCHEMA[section]
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            label = f"[{section}]" if section else "the top level"
            raise SuiteError(
                f"{where}: unknown key {key!r} in {label}{did}; allowed keys: {', '.join(sorted(allowed))}"
            )


def _expect(value: Any, types: type | tuple[type, ...], what: str, where: str) -> Any:
    if not isinstance(value, types) or isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise SuiteError(f"{where}: {what} must be {names}, got {value!r}")
    return value


def _plugin_list(doc: dict, section: str, where: str, required: bool = True) -> tuple[PluginRef, ...]:
    items = doc.get(section, [])
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or (required and not items):
        raise SuiteError(f"{where}: [[{section}]] must list at least one entry with a 'name'")
    refs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SuiteError(f"{where}: {section}[{i}] must be a table with a 'name', got {item!r}")
        _check_keys(item, section, where)
        if "name" not in item:
            raise SuiteError(f"{where}: {section}[{i}] has no 'name'")
        params = _expect(item.get("params", {}), dict, f"{section}[{i}].params", where)
        refs.append(PluginRef(_expect(item["name"], str, f"{section}[{i}].name", where), dict(params)))
    return tuple(refs)


def parse_suite(doc: dict, where: str = "suite") -> Suite:
    _check_keys(doc, "", where)
    head = doc.get("suite", {})
    _check_keys(head, "suite", where)
    if "name" not in head:
        raise SuiteError(f"{where}: [suite] needs a 'name'")
    boards = tuple(head.get("boards", ["ssbm"]))
    for b in boards:
        if b not in BOARDS:
            raise SuiteError(f"{where}: unknown board {b!r}; this version knows: {', '.join(BOARDS)}")

    corpus = doc.get("corpus")
    if not isinstance(corpus, dict) or "name" not in corpus:
        raise SuiteError(f"{where}: [corpus] with a 'name' is required")
    _check_keys(corpus, "corpus", where)
    limit = corpus.get("limit")
    if limit is not None and (_expect(limit, int, "corpus.limit", where) < 1):
        raise SuiteError(f"{where}: corpus.limit must be at least 1, got {limit}")
    wpu = corpus.get("words_per_utterance")
    if wpu is not None and _expect(wpu, int, "corpus.words_per_utterance", where) < 1:
        raise SuiteError(f"{where}: corpus.words_per_utterance must be at least 1, got {wpu}")

    ssbm_doc = doc.get("ssbm", {})
    _check_keys(ssbm_doc, "ssbm", where)
    cal_doc = ssbm_doc.get("calibration", {})
    _check_keys(cal_doc, "ssbm.calibration", where)
    thr_doc = ssbm_doc.get("thresholds", {})
    _check_keys(thr_doc, "ssbm.thresholds", where)
    for kind, values in thr_doc.items():
        if not isinstance(values, list) or not values or not all(isinstance(v, (int, float)) for v in values):
            raise SuiteError(f"{where}: ssbm.thresholds.{kind} must be a non-empty list of numbers")
    grid = ssbm_doc.get("grid", "standard")
    if grid not in ("standard", "quick"):
        raise SuiteError(f"{where}: ssbm.grid must be 'standard' or 'quick', got {grid!r}")
    default_cal = CalibrationSettings()
    cal = CalibrationSettings(
        levels_db=tuple(float(x) for x in cal_doc.get("levels_db", default_cal.levels_db)),
        max_accuracy=float(cal_doc.get("max_accuracy", default_cal.max_accuracy)),
        utterances=int(cal_doc.get("utterances", default_cal.utterances)),
    )
    floor = float(ssbm_doc.get("denominator_floor", 0.01))
    if not 0 < floor < 1:
        raise SuiteError(f"{where}: ssbm.denominator_floor must be in (0, 1), got {floor}")

    run = doc.get("run", {})
    _check_keys(run, "run", where)
    seeds = run.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise SuiteError(f"{where}: run.seeds must be a non-empty list of integers, got {seeds!r}")
    fills = _plugin_list(doc, "fills", where, required=False) or (PluginRef("white-noise"),)

    return Suite(
        name=_expect(head["name"], str, "suite.name", where),
        description=str(head.get("description", "")),
        boards=boards,
        corpus=PluginRef(_expect(corpus["name"], str, "corpus.name", where), dict(corpus.get("params", {}))),
        utterance_limit=limit,
        utterance_ids=tuple(corpus.get("utterances", ())),
        words_per_utterance=wpu,
        models=_plugin_list(doc, "models", where),
        methods=_plugin_list(doc, "methods", where),
        fills=fills,
        seeds=tuple(seeds),
        executor=PluginRef(str(run.get("executor", "inprocess")), dict(run.get("executor_params", {}))),
        ssbm=SsbmSettings(grid=grid, thresholds={k: [float(v) for v in vals] for k, vals in thr_doc.items()},
                          denominator_floor=floor, calibration=cal),
        source=doc,
    )


def load_suite(path: str | Path) -> Suite:
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"suite file {p}: not found")
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"suite file {p}: not valid TOML ({exc})") from exc
    suite = parse_suite(doc, where=f"suite file {p}")
    object.__setattr__(suite, "path", str(p))
    return suite
