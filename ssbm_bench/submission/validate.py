"""Validating a submission: everything short of re-running cells.

The envelope and each cell's board schema (guards), the suite and corpora
(checks), each cell against its board (``Board.check_cell``), one cell per
key; then every board's rows are re-scored from the submitted cells with
this checkout's scoring and must be exactly the submitted rows.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import CellChecks, added_methods, cell_corpus, check_corpora, doc_corpora, known_suites, \
    protocol_source, source_digest
from .export import board_rows_json
from ..harness.store import TIMING_FIELDS
from .guards import LEADERBOARDS_DIR, SubmissionError, check_schema, dumps, short

#: relative tolerance when a submitted score is compared with its re-score
RESCORE_RTOL = 1e-9


@dataclass
class Validated:
    doc: dict
    suite: Any
    cells: list  # CellRow
    rows: dict
    notes: list[str] = field(default_factory=list)
    #: for a run of a known suite with methods added: their labels (the suite's other cells must be the ones
    #: already on the board, and only these methods' rows are published from it); None for the suite itself
    extends: list[str] | None = None

    @property
    def digest(self) -> str:
        return hashlib.sha256(dumps(self.doc).encode()).hexdigest()


def cell_rows(doc: dict) -> list:
    from ..harness.store import CellRow

    s = doc["suite"]
    digest = {e["label"]: e["digest"] for _, e in doc_corpora(doc)}
    out = []
    for x in doc["cells"]:
        corpus = cell_corpus(doc, x)
        out.append(CellRow(key=x["key"], board=x["board"], suite=s["name"], suite_digest=s["digest"], corpus=corpus,
                           corpus_digest=digest.get(corpus, ""), model=x["model"], method=x["method"],
                           fill=x["fill"], utterance=x["utterance"], target=x["target"], seed=x["seed"],
                           status=x["status"], reason=x["reason"], result=None, raw=x["raw"], params=x["params"],
                           versions=doc["versions"][x["versions"]], seconds=x["seconds"]))
    return out


def _row_id(row: dict, sub_keys: dict) -> tuple:
    """A row's identity: board, corpus, model, method, fill, and the board's sub-table value (named for messages)."""
    board = row.get("board")
    sub, name = sub_keys.get(board, (None, None))
    return (board, row.get("corpus"), row.get("model"), row.get("method"), row.get("fill"),
            name, row.get(sub) if sub else None)


def _row_name(rid: tuple) -> str:
    board, corpus, model, method, fill, sub, value = rid
    return f"model {model}, method {method}, fill {fill}" + (f", {sub} {value}" if sub else "")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=RESCORE_RTOL, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def compare_rows(submitted: dict, rescored: dict, registry=None) -> None:
    """Every board's submitted rows must be the rows its cells give, no more and no fewer."""
    from ..plugins import get_registry

    registry = registry or get_registry()
    sub_keys = {b.name: (b.sub_key, b.variant_name or b.sub_key) for b in registry.boards()}
    for board in [b for b in rescored if b in submitted or rescored.get(b)] + \
            [b for b in submitted if b not in rescored]:
        mine = {_row_id(r, sub_keys): r for r in rescored.get(board, [])}
        theirs = submitted.get(board, [])
        seen = set()
        for i, row in enumerate(theirs):
            rid = _row_id(row, sub_keys)
            where = f"leaderboard.{board}[{i}] ({_row_name(rid)})"
            if rid in seen:
                raise SubmissionError(f"{where}: appears twice")
            seen.add(rid)
            if rid not in mine:
                raise SubmissionError(f"{where}: no such row when the cells are re-scored")
            ref = mine[rid]
            for k in sorted(set(row) | set(ref)):
                if k not in row or k not in ref or not _same(row[k], ref[k]):
                    raise SubmissionError(f"{where}: {k} is {short(row.get(k, '(missing)'))} in the submission "
                                          f"but {short(ref.get(k, '(missing)'))} re-scored from its cells; the "
                                          f"rows must be what its cells give")
        missing = [rid for rid in mine if rid not in seen]
        if missing:
            raise SubmissionError(f"leaderboard.{board}: lacks the row for {_row_name(missing[0])} that its "
                                  f"cells give")


def check_key(i: int, cell: dict, suite_name: str) -> None:
    """A version-3 cell's key is the digest of its fields, which name this suite and agree with the cell's columns:
    a key cannot be altered, nor a cell moved to another identity, without the re-hash saying so."""
    from ..harness.plan import PROTOCOL_VERSION, canonical, digest_of
    from ..harness.suite import PluginRef

    fields, where = cell["fields"], f"cells[{i}]"
    if digest_of(canonical(fields)) != cell["key"]:
        raise SubmissionError(f"{where}.key: {cell['key'][:16]}... is not the SHA-256 of the cell's fields; a cell's "
                              f"key is the digest of everything that determined it")
    for k, want in (("protocol", PROTOCOL_VERSION), ("suite", suite_name)):
        if fields.get(k) != want:
            raise SubmissionError(f"{where}.fields.{k}: {short(fields.get(k))}, not {want!r}")
    for k in ("utterance", "target", "seed"):
        if k in fields and fields[k] != cell[k]:
            raise SubmissionError(f"{where}.fields.{k}: {short(fields[k])}, but the cell's {k} is {short(cell[k])}")
    for k in ("model", "method", "fill"):
        ref = fields.get(k)
        if isinstance(ref, dict) and isinstance(ref.get("name"), str) and isinstance(ref.get("params", {}), dict):
            label = PluginRef(ref["name"], ref.get("params", {})).label
            if label != cell[k]:
                raise SubmissionError(f"{where}.fields.{k}: {label!r}, but the cell's {k} is {short(cell[k])}")


def outcome_text(raw: dict | None) -> str:
    """A cell's raw outcome as canonical text, timing aside (what two computations of one cell share)."""
    return dumps({k: v for k, v in (raw or {}).items() if k not in TIMING_FIELDS})


def _no_copied_outcomes(doc: dict) -> None:
    """Refuse a cell whose raw outcome is another cell's of the same board, copied under another identity:
    real cells differ at least in the map, the target or the noise they were measured with."""
    seen: dict[tuple, int] = {}
    for i, cell in enumerate(doc["cells"]):
        raw = cell["raw"]
        if cell["status"] != "ok" or not isinstance(raw, dict):
            continue
        ident = (cell["board"], hashlib.sha256(outcome_text(raw).encode()).hexdigest())
        if ident in seen:
            j = seen[ident]
            raise SubmissionError(f"cells[{i}].raw: the same outcome as cells[{j}] (another model, method, fill, "
                                  f"utterance, target or seed); a copied cell is not a measurement")
        seen[ident] = i


def validate_submission(doc: dict, suites_dir: Path = LEADERBOARDS_DIR / "suites", check_corpus: bool = True
                        ) -> Validated:
    """Everything short of re-running cells; raises SubmissionError naming the field."""
    from ..errors import SuiteError
    from ..harness.suite import parse_suite
    from ..plugins import get_registry

    check_schema(doc)
    known = known_suites(suites_dir)
    name = doc["suite"]["name"]
    if name not in known:
        raise SubmissionError(f"suite.name: {name!r} is not a known suite (known in {suites_dir}: "
                              f"{', '.join(sorted(known)) or 'none'})")
    source = doc["suite"]["source"]
    if source_digest(source) != doc["suite"]["digest"]:
        raise SubmissionError(f"suite.digest: {doc['suite']['digest']} is not the digest of suite.source "
                              f"({source_digest(source)})")
    extends = None
    if protocol_source(source) != protocol_source(known[name].source):
        extends = added_methods(source, known[name].source)
        if extends is None:
            raise SubmissionError(f"suite.source: differs from the known suite {name!r} ({known[name].path}) in "
                                  f"more than the [run] executor settings and [[methods]] entries added after its "
                                  f"own (the way a new method joins a known suite's board)")
    try:
        suite = parse_suite(source, where="suite.source")
    except (SuiteError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SubmissionError(f"suite.source: not a valid suite ({exc})") from None
    notes: list[str] = []
    used = {cell_corpus(doc, c) for c in doc["cells"]}
    for where, entry in doc_corpora(doc):
        if entry["label"] not in used:
            raise SubmissionError(f"{where}: corpus {entry['label']!r} is used by no cell")
    utterances = check_corpora(doc, suite, check_corpus)
    checks = CellChecks(doc, suite, name, utterances)
    registry = get_registry()
    keys: set[str] = set()
    n_versions = len(doc["versions"])
    for i, cell in enumerate(doc["cells"]):
        where = f"cells[{i}]"
        board = cell["board"]
        if board not in suite.boards:
            raise SubmissionError(f"{where}.board: {board!r} is not a board of suite {name!r} "
                                  f"({', '.join(suite.boards)})")
        if cell["key"] in keys:
            raise SubmissionError(f"{where}.key: {cell['key'][:16]}... appears twice")
        keys.add(cell["key"])
        if cell["versions"] >= n_versions:
            raise SubmissionError(f"{where}.versions: {cell['versions']} but only {n_versions} version record(s)")
        registry.board(board).check_cell(i, cell, suite.settings.get(board), checks)
        if doc["schema_version"] >= 3:
            check_key(i, cell, name)
    partial = doc.get("partial")
    if partial is None:
        for name_ in suite.boards:
            mine = [c for c in doc["cells"] if c["board"] == name_]
            if mine:
                registry.board(name_).check_complete(mine, suite.settings.get(name_), checks)
    else:  # a declared subset: published apart, never ranked against complete runs (publish.build_tables)
        if partial["planned"] <= len(doc["cells"]):
            raise SubmissionError(f"partial.planned: {partial['planned']}, but the submission carries "
                                  f"{len(doc['cells'])} cells; a partial run carries fewer than it planned")
        notes.append(f"declared partial ({partial['reason']}): {len(doc['cells'])} of the {partial['planned']} "
                     f"cells its run planned; not ranked against complete runs")
    _no_copied_outcomes(doc)
    cells = cell_rows(doc)
    try:
        rows = board_rows_json(cells, registry=registry)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise SubmissionError(f"cells: cannot be scored ({type(exc).__name__}: {exc})") from None
    compare_rows(doc["leaderboard"], rows, registry)
    if extends is not None:
        notes.append(f"extends suite {name!r} with method(s) {', '.join(extends)}: only their rows are published "
                     f"from it; the suite's other cells must be the ones on the board")
    return Validated(doc=doc, suite=suite, cells=cells, rows=rows, notes=notes, extends=extends)


