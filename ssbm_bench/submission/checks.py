"""What a submission is checked against: the suites and corpora this checkout knows, and each cell's board.

The suite must be one of `leaderboards/suites/` (the `[run]` executor
settings may differ: they do not change a result); every corpus digest must
be the digest of that corpus here; every cell must sit where the suite puts
cells of its board. :class:`CellChecks` holds what the checks share (the
corpora and their utterances, one cell per identity, the grid's labels);
each board checks its own cells with it (``Board.check_cell``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .guards import SubmissionError, short  # noqa: F401  (boards import both from here)


def protocol_source(source: dict) -> dict:
    """A suite's parsed source without the settings that cannot change a
    result (where it ran), so a Ray run of a known suite is that suite."""
    out = json.loads(json.dumps(source))
    run = out.get("run")
    if isinstance(run, dict):
        run.pop("executor", None)
        run.pop("executor_params", None)
        run.pop("cell_timeout", None)
        if not run:
            out.pop("run")
    return out


def added_methods(source: dict, base: dict) -> list[str] | None:
    """The labels of the [[methods]] entries `source` adds to the known suite `base`, when that is its only
    difference (besides where it ran); None otherwise. This is how a method new to the board arrives: a run of
    a known suite with the method added, whose other cells must then be the ones already on the board."""
    from ..harness.suite import PluginRef

    mine, theirs = protocol_source(source), protocol_source(base)
    m_methods, b_methods = mine.pop("methods", []), theirs.pop("methods", [])
    if mine != theirs or not isinstance(m_methods, list) or not isinstance(b_methods, list):
        return None
    if m_methods[:len(b_methods)] != b_methods or len(m_methods) == len(b_methods):
        return None
    out = []
    for entry in m_methods[len(b_methods):]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return None
        out.append(PluginRef(entry["name"], entry.get("params", {}) or {}).label)
    return out


def source_digest(source: dict) -> str:
    """The same digest as `Suite.digest`, from a parsed source."""
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def known_suites(suites_dir: Path) -> dict:
    from ..harness.suite import load_suite

    from ..errors import SsbmBenchError

    out = {}
    for p in sorted(Path(suites_dir).glob("*.toml")):
        try:
            s = load_suite(p)
        except SsbmBenchError:  # a broken suite file is no known suite (its own tests say why)
            continue
        out[s.name] = s
    return out


# --- corpora ------------------------------------------------------------------

_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]*([eE][-+]?[0-9]+)?|-?[0-9]+[eE][-+]?[0-9]+")


def _scalar(text: str):
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in ("True", "False"):
        return text == "True"
    return text


def parse_label(label: str):
    """The PluginRef a label such as `commands[split=test]` names, or None when
    the label does not read back as itself (values with ',' or '=' in them)."""
    from ..harness.suite import PluginRef

    name, bracket, rest = label.partition("[")
    params: dict = {}
    if bracket:
        if not rest.endswith("]"):
            return None
        for part in rest[:-1].split(","):
            key, eq, value = part.partition("=")
            if not eq or not key:
                return None
            params[key] = _scalar(value)
    ref = PluginRef(name, params)
    return ref if ref.label == label else None


def board_corpora(suite, registry=None) -> dict:
    """label -> PluginRef of the corpora the suite names: its [corpus], and those its boards name (``Board.corpora``)."""
    from ..plugins import get_registry

    registry = registry or get_registry()
    out = {suite.corpus.label: suite.corpus}
    for board in registry.boards():
        if board.name in suite.settings:
            for ref in board.corpora(suite.settings[board.name]):
                out.setdefault(ref.label, ref)
    return out


def corpus_ref(label: str, suite):
    """A corpus named by a submission, as a PluginRef: one the suite names, or else (an ISA family's corpus,
    which the suite does not name) the label read back into a name and parameters."""
    return board_corpora(suite).get(label) or parse_label(label)


def doc_corpora(doc: dict) -> list[tuple[str, dict]]:
    """(where, entry) for every corpus of a submission: version 1 has one (`corpus`), version 2 a list."""
    if doc.get("schema_version") == 1:
        return [("corpus", doc["corpus"])]
    return [(f"corpora[{j}]", e) for j, e in enumerate(doc["corpora"])]


def cell_corpus(doc: dict, cell: dict) -> str:
    return doc["corpus"]["label"] if doc.get("schema_version") == 1 else cell["corpus"]


def check_corpora(doc: dict, suite, check_corpus: bool) -> dict[str, set | None]:
    """label -> utterance ids (None when check_corpus is off) of every corpus the submission names."""
    from ..plugins import get_registry

    out: dict[str, set | None] = {}
    for where, entry in doc_corpora(doc):
        label = entry["label"]
        if label in out:
            raise SubmissionError(f"{where}.label: {label!r} appears twice")
        if doc.get("schema_version") == 1:
            if entry["name"] != suite.corpus.name or label != suite.corpus.label:
                raise SubmissionError(f"corpus.name: {label!r} is not the suite's corpus {suite.corpus.label!r}")
            ref = suite.corpus
        else:
            ref = corpus_ref(label, suite)
            if ref is None or ref.name != entry["name"]:
                raise SubmissionError(f"{where}.label: {label!r} is not corpus {entry['name']!r} with parameters "
                                      f"(a label reads name[key=value,...])")
        out[label] = None
        if not check_corpus:
            continue
        try:
            c = get_registry().create("corpus", ref.name, **ref.params)
            here = c.digest()
            out[label] = set(c.ids())
        except Exception as exc:
            raise SubmissionError(f"{where}.digest: cannot compute the digest of corpus {label!r} here to check "
                                  f"it ({type(exc).__name__}: {exc})") from None
        if entry["digest"] != here:
            raise SubmissionError(f"{where}.digest: {entry['digest'][:12]}... is not the digest of corpus "
                                  f"{label!r} here ({here[:12]}...): the results were computed on other audio")
    return out


class CellChecks:
    """What the checks of a submission's cells share; each board checks its own cells with it."""

    def __init__(self, doc: dict, suite, name: str, utterances: dict[str, set | None]):
        self.doc, self.suite, self.name, self.utterances = doc, suite, name, utterances
        self.labels = {"model": {r.label for r in suite.models}, "method": {r.label for r in suite.methods},
                       "fill": {r.label for r in suite.fills}}
        self.seen: dict[tuple, int] = {}
        #: per board, what its checks keep across cells (e.g. a family's corpus, excerpts per fill)
        self.state: dict[str, dict] = {}

    def once(self, ident: tuple, i: int, what: str) -> None:
        """Refuse a second cell with this identity, naming both."""
        if ident in self.seen:
            raise SubmissionError(f"cells[{i}]: a second cell of {what} (the first is cells[{self.seen[ident]}])")
        self.seen[ident] = i

    def corpus(self, where: str, cell: dict, want: str | None) -> str:
        """The cell's corpus label; it must be one of the submission's corpora (and `want`, if given)."""
        label = cell_corpus(self.doc, cell)
        if label not in self.utterances:
            raise SubmissionError(f"{where}.corpus: {label!r} is not one of the submission's corpora "
                                  f"({', '.join(sorted(self.utterances))})")
        if want is not None and label != want:
            raise SubmissionError(f"{where}.corpus: {label!r}, but the suite's {cell['board']} cells use corpus "
                                  f"{want!r}")
        return label

    def utterance(self, where: str, label: str, utt: str) -> None:
        """`utt` must be an utterance of corpus `label` (when the corpus was opened here)."""
        ids = self.utterances.get(label)
        if ids is not None and utt not in ids:
            raise SubmissionError(f"{where}: {utt!r} is not an utterance of corpus {label!r}")

    def grid_complete(self, board: str, cells: list[dict]) -> None:
        """A grid board's cells are complete: for every model, each of its fills and seeds has every method the
        suite runs on it, all over the same utterances and targets (the words the run found recognised); a
        method whose cells were dropped, or a fill or seed left out, is refused, naming what is missing."""
        suite = self.suite
        by_model: dict[str, dict[tuple, set]] = {}
        for c in cells:
            by_model.setdefault(c["model"], {}).setdefault((c["fill"], c["seed"], c["method"]), set()).add(
                (c["utterance"], c["target"]))
        for model, groups in sorted(by_model.items()):
            ref = next(r for r in suite.models if r.label == model)
            methods = [m.label for m in suite.methods_for(ref)]
            words = {w for ws in groups.values() for w in ws}
            for fill in (f.label for f in suite.fills):
                for seed in suite.seeds:
                    for method in methods:
                        have = groups.get((fill, seed, method), set())
                        if have != words:
                            missing = sorted(words - have)
                            raise SubmissionError(
                                f"cells: the {board} board is incomplete for model {model!r}: method {method!r}, "
                                f"fill {fill!r}, seed {seed} lacks {len(missing)} of the {len(words)} cells the other "
                                f"methods have (e.g. utterance {missing[0][0]!r}, target {missing[0][1]!r}); a "
                                f"submission carries every cell of its run")

    def grid_cell(self, i: int, cell: dict) -> None:
        """A grid board's cell: the suite's [corpus] x [[models]] x [[methods]] x [[fills]], a real utterance."""
        where, suite, name = f"cells[{i}]", self.suite, self.name
        label = self.corpus(where, cell, suite.corpus.label)
        for kind, allowed in self.labels.items():
            if cell[kind] not in allowed:
                raise SubmissionError(f"{where}.{kind}: {cell[kind]!r} is not a {kind} of suite {name!r} "
                                      f"({', '.join(sorted(allowed))})")
        if not suite.runs(cell["model"], cell["method"]):
            raise SubmissionError(f"{where}.method: suite {name!r} does not run {cell['method']!r} with model "
                                  f"{cell['model']!r} (its [[methods]] entry names other models)")
        self.once((cell["board"], cell["model"], cell["method"], cell["fill"], cell["utterance"], cell["target"],
                   cell["seed"]), i, f"model {cell['model']!r}, method {cell['method']!r}, fill {cell['fill']!r}, "
                                   f"utterance {cell['utterance']!r}, target {cell['target']!r}, seed {cell['seed']}")
        if cell["utterance"] == "*":
            if cell["status"] != "skipped":
                raise SubmissionError(f"{where}.utterance: '*' (all utterances) only marks a skipped cell")
        else:
            self.utterance(f"{where}.utterance", label, cell["utterance"])
