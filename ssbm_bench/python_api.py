"""``ssbm_bench.evaluate``: score an explainer on a model in one call, from a notebook.

Quantus's ``quantus.evaluate(...)`` and captum's one-call attribution APIs
are what people who explain models already know, so this is the same
shape: name (or pass) a method, a model and a corpus, pick boards, get a
pandas DataFrame of board rows. Underneath it is an ordinary run: a suite
is built from the arguments, the harness plans and computes its cells and
writes them to a results store, so calling it again with the same arguments
computes nothing (and changing one argument computes only what it changes).

``method`` is a registered method's name, a :class:`SaliencyMethod`
instance, or a plain callable ``fn(request) -> array`` that returns a map
on the STFT grid (frequency bins x frames) for ``request.target`` of
``request.utterance`` (an :class:`ExplainRequest`: the model, the utterance,
the target word or class, the clean STFT magnitude, the fill, the seed).
A callable is wrapped as a method whose identity includes a digest of its
source code, so editing the function re-computes its cells. Methods given
as objects run in this process (they cannot be sent to worker processes).
"""

from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .errors import InputError
from .hookspecs import hookimpl
from .method import ExplainRequest, SaliencyMethod
from .records import MethodPlugin
from .types import SaliencyMap

#: where results go unless `db` says otherwise (relative to the working directory)
DEFAULT_DIR = Path("results")


class CallableMethod(SaliencyMethod):
    """A plain function as a saliency method: ``fn(request) -> array`` (or a SaliencyMap)."""

    version = "callable"

    def __init__(self, fn: Callable[[ExplainRequest], Any], name: str, map_kind: str = "score"):
        if map_kind not in ("score", "magnitude", "pvalue"):
            raise InputError(f"evaluate: map_kind must be 'score', 'magnitude' or 'pvalue', got {map_kind!r}")
        self.fn, self.name, self.map_kind = fn, name, map_kind

    def explain(self, request: ExplainRequest) -> SaliencyMap:
        out = self.fn(request)
        if isinstance(out, SaliencyMap):
            return out
        values = np.asarray(out, dtype=np.float64)
        want = None if request.clean_magnitude is None else tuple(np.shape(request.clean_magnitude))
        if values.ndim != 2 or (want is not None and values.shape != want):
            raise InputError(f"method {self.name!r}: returned an array of shape {values.shape}; expected the STFT "
                             f"grid (frequency bins x frames){f', {want}' if want else ''} for utterance "
                             f"{request.utterance.id!r}")
        return SaliencyMap(values, self.map_kind)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "map_kind": self.map_kind,
                "source_sha256": source_digest(self.fn)}


def source_digest(fn: Callable) -> str:
    """A digest of a function's source (its qualified name where the source cannot be read)."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        text = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Provided:
    """A pluggy plugin object that registers the methods given as objects (in-process only)."""

    def __init__(self, methods: dict[str, SaliencyMethod]):
        self.methods = methods
        self.__name__ = "ssbm_bench.evaluate"

    @hookimpl
    def register_methods(self, register):
        for name, instance in self.methods.items():
            register(MethodPlugin.of(type(instance), f"given to ssbm_bench.evaluate ({name})", name=name,
                                     factory=_factory(instance)))


def _factory(instance: SaliencyMethod) -> Callable[[], SaliencyMethod]:
    def make() -> SaliencyMethod:
        return instance

    return make


def _as_ref(value: Any, what: str, params: dict | None) -> dict:
    if not isinstance(value, str) or not value:
        raise InputError(f"evaluate: {what} must be a registered {what} name, got {value!r}")
    return {"name": value, **({"params": dict(params)} if params else {})}


def _method_entries(method: Any, baselines: Iterable[str], method_params: dict | None, map_kind: str
                    ) -> tuple[list[dict], dict[str, SaliencyMethod], str]:
    provided: dict[str, SaliencyMethod] = {}
    if isinstance(method, str):
        main = _as_ref(method, "method", method_params)
    elif isinstance(method, SaliencyMethod):
        provided[method.name] = method
        main = {"name": method.name}
    elif callable(method):
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", getattr(method, "__name__", "") or "callable").strip("-.") or "callable"
        provided[name] = CallableMethod(method, name, map_kind)
        main = {"name": name}
    else:
        raise InputError(f"evaluate: method must be a method name, a SaliencyMethod or a callable "
                         f"fn(request) -> map, got {type(method).__name__}")
    entries = [main] + [{"name": b} for b in baselines if b != main["name"]]
    return entries, provided, main["name"]


def evaluate(method: Any, model: str = "pocketsphinx", corpus: str = "synthetic", boards: Iterable[str] = ("ssbm",),
             *, baselines: Iterable[str] = ("random",), fills: Iterable[str] = ("white-noise",),
             utterances: Iterable[str] | None = None, limit: int | None = None,
             words_per_utterance: int | None = None, seeds: Iterable[int] = (0,), method_params: dict | None = None,
             model_params: dict | None = None, corpus_params: dict | None = None, settings: dict | None = None,
             map_kind: str = "score", db: str | Path | None = None, name: str | None = None,
             progress: bool = True, log: Callable[[str], None] | None = None):
    """Run `method` (and `baselines`) on `model` over `corpus` for `boards`; return the boards' rows.

    The rows are a pandas DataFrame, one per board, method and fill (and each board's own sub-table), with
    the score, its 95% interval and the counts, as ``ssbm-bench leaderboard --format json`` gives them; a
    ``board`` column says which. ``df.attrs`` holds the store (``db``), the suite (``suite``) and how many
    cells this call computed (``computed``; 0 on a rerun). `settings` holds board sections as a suite
    file has them (e.g. ``{"ssbm": {"calibration": {"utterances": 1}}}``); `utterances` (ids) or `limit`
    (how many recognised utterances) bound the corpus. Results go to `db` (default
    ``results/evaluate-NAME.sqlite``), so a rerun resumes.
    """
    import pandas as pd

    from .harness.runner import run_suite
    from .harness.store import ResultStore
    from .harness.suite import parse_suite
    from .plugins import build_registry
    from .submission import board_rows_json

    entries, provided, main = _method_entries(method, tuple(baselines), method_params, map_kind)
    registry = build_registry(extra_plugins=[_Provided(provided)] if provided else [])
    boards = list(boards)
    suite_name = name or f"evaluate-{main}"
    corpus_section: dict = {"name": corpus, **({"params": dict(corpus_params)} if corpus_params else {})}
    if utterances is not None:
        corpus_section["utterances"] = list(utterances)
    if limit is not None:
        corpus_section["limit"] = limit
    if words_per_utterance is not None:
        corpus_section["words_per_utterance"] = words_per_utterance
    doc = {"suite": {"name": suite_name, "boards": boards, "description": f"ssbm_bench.evaluate of {main}"},
           "corpus": corpus_section, "models": [_as_ref(model, "model", model_params)], "methods": entries,
           "fills": [{"name": f} for f in fills], "run": {"executor": "inprocess", "seeds": list(seeds)},
           **(settings or {})}
    suite = parse_suite(doc, where="evaluate", registry=registry)
    path = Path(db) if db is not None else DEFAULT_DIR / f"{suite.name}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = run_suite(suite, str(path), registry=registry, progress=progress,
                        **({"log": log} if log is not None else {}))
    with ResultStore(path) as store:
        cells = [c for c in store.cells() if c.suite == suite.name]
    rows = board_rows_json(cells, tuple(boards), registry=registry)
    frame = pd.DataFrame([{"board": b, **r} for b in boards for r in rows.get(b, [])])
    frame.attrs.update({"db": str(path), "suite": suite.name, "computed": summary.computed,
                        "errors": summary.errors, "failed": summary.failed})
    return frame
