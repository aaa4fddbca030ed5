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
from ..model_cache import parse_enabled

BOARDS = ("ssbm", "deletion", "isa", "stability")
#: the corpus of a suite without ssbm or deletion boards that names none (it enters cell keys only)
DEFAULT_CORPUS = "synthetic"


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
class IsaSettings:
    """The ISA board: each family (K seeds) explained by each method on its test inputs."""

    families: tuple[str, ...]
    methods: tuple[PluginRef, ...]
    seeds: int = 3
    inputs: int | None = None  # first N test inputs of each family (None: all)
    p: float = 0.2
    #: training epochs of each member (None: the family's default); part of the members' cache key
    epochs: int | None = None
    #: the model plugin that loads a member's directory
    model: str = "speechbrain-dir"


@dataclass(frozen=True)
class StabilitySettings:
    """The stability board: a component method re-run with k explainer seeds, per fill and N_s."""

    method: PluginRef = PluginRef("soundlime-temporal")
    model: PluginRef = PluginRef("silero-vad")
    corpus: PluginRef = PluginRef("vad-ground-truth")
    fills: tuple[PluginRef, ...] = (PluginRef("zero"), PluginRef("min_inp"), PluginRef("mean_inp"),
                                    PluginRef("gauss_norm"))
    reference_fill: str = "zero"
    n_samples: tuple[int, ...] = (100, 500)
    runs: int = 5
    excerpts: int = 20
    target: str = "speech"
    #: only excerpts the model detects (the paper keeps true positives)
    min_probability: float = 0.3


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
    #: deletion board: fractions r of a map's points masked (top / random / bottom)
    deletion_fractions: tuple[float, ...] = (0.2, 0.5, 0.8)
    #: isa board: seed families and the methods they are explained with
    isa: "IsaSettings | None" = None
    #: stability board: explainer seeds and fills
    stability: "StabilitySettings | None" = None
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
    "": {"suite", "corpus", "models", "methods", "fills", "ssbm", "deletion", "isa", "stability", "run"},
    "suite": {"name", "description", "boards"},
    "corpus": {"name", "params", "limit", "utterances", "words_per_utterance"},
    "models": {"name", "params"},
    "methods": {"name", "params", "models"},
    "fills": {"name", "params"},
    "ssbm": {"grid", "thresholds", "denominator_floor", "calibration"},
    "ssbm.calibration": {"levels_db", "max_accuracy", "utterances"},
    "ssbm.thresholds": {"pvalue", "magnitude", "score"},
    "run": {"seeds", "executor", "executor_params", "model_cache"},
    "deletion": {"fractions"},
    "isa": {"families", "seeds", "inputs", "p", "epochs", "methods"},
    "isa.methods": {"name", "params"},
    "stability": {"method", "model", "corpus", "fills", "reference_fill", "n_samples", "runs", "excerpts", "target",
                  "min_probability"},
    "stability.ref": {"name", "params"},
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
        raise SuiteError(f"{where}: [[{section}]] must list at least one entry with a 'name' (the ssbm and "
                         f"deletion boards cross the corpus with every model and method)")
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

    # [corpus], [[models]] and [[methods]] feed the ssbm and deletion boards; a suite of only isa and
    # stability boards (families and excerpts bring their own data) may leave them out
    grid_boards = bool({"ssbm", "deletion"} & set(boards))
    corpus = doc.get("corpus")
    if corpus is None and not grid_boards:
        corpus = {"name": DEFAULT_CORPUS}
    if not isinstance(corpus, dict) or "name" not in corpus:
        raise SuiteError(f"{where}: [corpus] with a 'name' is required (boards {', '.join(boards)})")
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

    del_doc = doc.get("deletion", {})
    _check_keys(del_doc, "deletion", where)
    fractions = del_doc.get("fractions", [0.2, 0.5, 0.8])
    if (not isinstance(fractions, list) or not fractions
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1 for f in fractions)):
        raise SuiteError(f"{where}: deletion.fractions must be a non-empty list of numbers in (0, 1), "
                         f"got {fractions!r}")

    run = doc.get("run", {})
    _check_keys(run, "run", where)
    seeds = run.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise SuiteError(f"{where}: run.seeds must be a non-empty list of integers, got {seeds!r}")
    model_cache = parse_enabled(run.get("model_cache", True), f"{where}: run.model_cache")
    fills = _plugin_list(doc, "fills", where, required=False) or (PluginRef("white-noise"),)
    isa = _isa_settings(doc, boards, where)
    stability = _stability_settings(doc, boards, where)
    models = _plugin_list(doc, "models", where, required=grid_boards)
    methods = _plugin_list(doc, "methods", where, required=grid_boards)
    method_models = _method_models(doc, models, where)

    return Suite(
        name=_expect(head["name"], str, "suite.name", where),
        description=str(head.get("description", "")),
        boards=boards,
        corpus=PluginRef(_expect(corpus["name"], str, "corpus.name", where), dict(corpus.get("params", {}))),
        utterance_limit=limit,
        utterance_ids=tuple(corpus.get("utterances", ())),
        words_per_utterance=wpu,
        models=models,
        methods=methods,
        fills=fills,
        seeds=tuple(seeds),
        executor=PluginRef(str(run.get("executor", "inprocess")), dict(run.get("executor_params", {}))),
        ssbm=SsbmSettings(grid=grid, thresholds={k: [float(v) for v in vals] for k, vals in thr_doc.items()},
                          denominator_floor=floor, calibration=cal),
        source=doc,
        deletion_fractions=tuple(float(f) for f in fractions),
        isa=isa,
        stability=stability,
        method_models=method_models,
        model_cache=model_cache,
    )


def _ref(value: Any, what: str, where: str) -> PluginRef:
    if isinstance(value, str):
        return PluginRef(value)
    if not isinstance(value, dict) or "name" not in value:
        raise SuiteError(f"{where}: {what} must be a plugin name or a table with a 'name', got {value!r}")
    _check_keys(value, "stability.ref", where)
    return PluginRef(_expect(value["name"], str, f"{what}.name", where),
                     dict(_expect(value.get("params", {}), dict, f"{what}.params", where)))


def _stability_settings(doc: dict, boards: tuple[str, ...], where: str) -> StabilitySettings | None:
    st = doc.get("stability")
    if st is None:
        return StabilitySettings() if "stability" in boards else None
    _check_keys(st, "stability", where)
    d = StabilitySettings()
    fills = tuple(_ref(f, f"stability.fills[{i}]", where) for i, f in enumerate(st.get("fills", [])) ) or d.fills
    ref = str(st.get("reference_fill", d.reference_fill))
    if ref not in {f.label for f in fills}:
        raise SuiteError(f"{where}: stability.reference_fill {ref!r} is not one of the fills "
                         f"{[f.label for f in fills]}")
    n_samples = st.get("n_samples", list(d.n_samples))
    if (not isinstance(n_samples, list) or not n_samples
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in n_samples)):
        raise SuiteError(f"{where}: stability.n_samples must be a non-empty list of integers >= 2, got {n_samples!r}")
    runs = st.get("runs", d.runs)
    if _expect(runs, int, "stability.runs", where) < 2:
        raise SuiteError(f"{where}: stability.runs must be at least 2 (U_n compares runs), got {runs}")
    excerpts = st.get("excerpts", d.excerpts)
    if _expect(excerpts, int, "stability.excerpts", where) < 1:
        raise SuiteError(f"{where}: stability.excerpts must be at least 1, got {excerpts}")
    prob = float(_expect(st.get("min_probability", d.min_probability), (int, float), "stability.min_probability",
                         where))
    return StabilitySettings(
        method=_ref(st.get("method", d.method.to_dict()), "stability.method", where),
        model=_ref(st.get("model", d.model.to_dict()), "stability.model", where),
        corpus=_ref(st.get("corpus", d.corpus.to_dict()), "stability.corpus", where),
        fills=fills, reference_fill=ref, n_samples=tuple(n_samples), runs=int(runs), excerpts=int(excerpts),
        target=str(st.get("target", d.target)), min_probability=prob)


def _isa_settings(doc: dict, boards: tuple[str, ...], where: str) -> IsaSettings | None:
    isa_doc = doc.get("isa")
    if isa_doc is None:
        if "isa" in boards:
            raise SuiteError(f"{where}: board 'isa' needs an [isa] section with 'families' and [[isa.methods]]")
        return None
    _check_keys(isa_doc, "isa", where)
    families = isa_doc.get("families")
    if not isinstance(families, list) or not families or not all(isinstance(f, str) for f in families):
        raise SuiteError(f"{where}: isa.families must be a non-empty list of family names, got {families!r}")
    seeds = isa_doc.get("seeds", 3)
    if _expect(seeds, int, "isa.seeds", where) < 2:
        raise SuiteError(f"{where}: isa.seeds must be at least 2 (ISA compares pairs of seeds), got {seeds}")
    inputs = isa_doc.get("inputs")
    if inputs is not None and _expect(inputs, int, "isa.inputs", where) < 1:
        raise SuiteError(f"{where}: isa.inputs must be at least 1, got {inputs}")
    p = float(_expect(isa_doc.get("p", 0.2), (int, float), "isa.p", where))
    if not 0 < p <= 1:
        raise SuiteError(f"{where}: isa.p must be in (0, 1], got {p}")
    methods = []
    for i, item in enumerate(isa_doc.get("methods", [])):
        if not isinstance(item, dict) or "name" not in item:
            raise SuiteError(f"{where}: isa.methods[{i}] must be a table with a 'name'")
        _check_keys(item, "isa.methods", where)
        params = _expect(item.get("params", {}), dict, f"isa.methods[{i}].params", where)
        methods.append(PluginRef(_expect(item["name"], str, f"isa.methods[{i}].name", where), dict(params)))
    if not methods:
        raise SuiteError(f"{where}: [isa] needs at least one [[isa.methods]] entry")
    epochs = isa_doc.get("epochs")
    if epochs is not None and _expect(epochs, int, "isa.epochs", where) < 1:
        raise SuiteError(f"{where}: isa.epochs must be at least 1, got {epochs}")
    return IsaSettings(tuple(families), tuple(methods), int(seeds), inputs, p, epochs)


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
