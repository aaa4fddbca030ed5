"""Leaderboard submissions: one run exported as one JSON file, and its checks.

A submission is data only. It is read with the standard JSON parser (never
unpickled, never imported, never executed), limited in size and depth,
checked against the published JSON Schema
(`leaderboards/schema/submission-v2.json`; version 1 files, which carry the
ssbm and deletion boards of one corpus, are still read), then against what
this checkout knows: the suite must be one of `leaderboards/suites/` (the
`[run]` executor settings may differ: they do not change a result), every
corpus digest must be the digest of that corpus here, names must be the
suite's plugins (its [isa] families and methods, its [stability] model,
method, fills, N_s and runs) and the corpus's utterances, and every
leaderboard row of the four boards is recomputed from the submitted raw
cells with this checkout's scoring and must agree. A sample of cells can be
re-run (`verify_cells`: ssbm, deletion and stability cells; ISA cells need
the seed families trained, so they are checked by re-scoring only). Every
refusal names the field at fault.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import InputError

SCHEMA_NAME = "ssbm-bench-submission"
#: the version `submit` writes
SCHEMA_VERSION = 2
#: the versions `leaderboard add` reads
SCHEMA_VERSIONS = (1, 2)
LEADERBOARDS_DIR = Path(__file__).resolve().parent.parent / "leaderboards"


def schema_path(version: int = SCHEMA_VERSION) -> Path:
    return LEADERBOARDS_DIR / "schema" / f"submission-v{version}.json"


SCHEMA_PATH = schema_path()
#: a file larger than this is refused before it is parsed
MAX_BYTES = 64 * 1024 * 1024
#: deepest nesting of objects and arrays accepted (the format needs 7)
MAX_DEPTH = 32
#: the boards a version-1 submission carries
BOARDS_V1 = ("ssbm", "deletion")
#: the boards a version-2 submission carries
BOARDS = ("ssbm", "deletion", "isa", "stability")
#: boards whose cells `verify_cells` can re-run here (ISA needs the seed families trained)
RERUNNABLE = ("ssbm", "deletion", "stability")
#: relative tolerance when a submitted score is compared with its re-score
RESCORE_RTOL = 1e-9
#: relative tolerance for the real-valued outputs of a re-run cell
VERIFY_RTOL = 1e-6


class SubmissionError(InputError):
    """A submission that cannot be accepted; the message names the field."""


# --- reading: bytes -> plain JSON values, refusing anything odd -------------

class _NonFinite:
    def __init__(self, text: str):
        self.text = text


def _parse_float(text: str):
    x = float(text)
    return x if math.isfinite(x) else _NonFinite(text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise SubmissionError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def path_str(parts) -> str:
    """`cells[3].raw.thresholds[0]` from a sequence of keys and indices."""
    s = ""
    for p in parts:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "(the top level)"


def _scan(value: Any, where: list, depth: int = 0) -> None:
    """Refuse non-finite numbers and deep nesting, naming where they are."""
    if depth > MAX_DEPTH:
        raise SubmissionError(f"{path_str(where)}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, _NonFinite):
        raise SubmissionError(f"{path_str(where)}: {value.text} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _scan(v, where + [k], depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _scan(v, where + [i], depth + 1)


def parse_submission_bytes(data: bytes, source: str = "submission") -> dict:
    if len(data) > MAX_BYTES:
        raise SubmissionError(f"{source}: {len(data)} bytes; a submission may be at most {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{source}: not UTF-8 text (byte {exc.start}): not a JSON submission") from exc
    try:
        doc = json.loads(text, parse_float=_parse_float, parse_constant=_NonFinite,
                         object_pairs_hook=_no_duplicate_keys)
    except SubmissionError as exc:
        raise SubmissionError(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") \
            from None
    except RecursionError:
        raise SubmissionError(f"{source}: nested too deeply to be a submission") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise SubmissionError(f"{source}: not acceptable JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SubmissionError(f"{source}: a submission is a JSON object, got a JSON {type(doc).__name__}")
    _scan(doc, [])
    return doc


def read_submission(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise SubmissionError(f"submission {p}: not found (or not a regular file)")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise SubmissionError(f"submission {p}: {size} bytes; a submission may be at most {MAX_BYTES} bytes")
    with p.open("rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    return parse_submission_bytes(data, f"submission {p}")


# --- schema ------------------------------------------------------------------

def load_schema(version: int = SCHEMA_VERSION) -> dict:
    return json.loads(schema_path(version).read_text())


def _short(value: Any, n: int = 80) -> str:
    s = json.dumps(value) if not isinstance(value, str) else repr(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def _schema_message(err) -> str:
    where = path_str(list(err.absolute_path))
    v = err.validator
    if v == "not":
        return f"{where}: {_short(err.instance)} must not contain '..'"
    if v == "pattern":
        return f"{where}: {_short(err.instance)} is not allowed here (must match {err.validator_value})"
    if v == "type":
        return f"{where}: must be {err.validator_value if isinstance(err.validator_value, str) else ' or '.join(err.validator_value)}, got {_short(err.instance)}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}: {_short(err.instance)} is out of range ({v} {err.validator_value})"
    if v in ("maxItems", "maxLength", "maxProperties"):
        return f"{where}: too large ({v} {err.validator_value})"
    if v == "additionalProperties":
        return f"{where}: {err.message}"
    if v in ("const", "enum"):
        return f"{where}: {_short(err.instance)} is not one of {_short(err.validator_value, 120)}"
    return f"{where}: {err.message[:300]}"


def _validator_class():
    """Draft 2020-12, except that an "integer" must be a JSON integer (the
    standard also accepts 1.0, which would not index a list)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, x: isinstance(x, int) and not isinstance(x, bool))
    return jsonschema.validators.extend(base, type_checker=checker)


def check_schema(doc: dict) -> None:
    if doc.get("schema") != SCHEMA_NAME:
        raise SubmissionError(f"schema: {_short(doc.get('schema'))} — not an ssbm-bench submission "
                              f"(expected {SCHEMA_NAME!r})")
    version = doc.get("schema_version")
    if isinstance(version, bool) or version not in SCHEMA_VERSIONS:
        raise SubmissionError(f"schema_version: {_short(version)} is not supported; this ssbm-bench reads "
                              f"submission schema versions {', '.join(map(str, SCHEMA_VERSIONS))}")
    from jsonschema.exceptions import best_match

    validator = _validator_class()(load_schema(version))
    err = best_match(validator.iter_errors(doc))
    if err is not None:
        raise SubmissionError(_schema_message(err))


# --- suites and corpora this checkout knows ----------------------------------

def protocol_source(source: dict) -> dict:
    """A suite's parsed source without the settings that cannot change a
    result (where it ran), so a Ray run of a known suite is that suite."""
    out = json.loads(json.dumps(source))
    run = out.get("run")
    if isinstance(run, dict):
        run.pop("executor", None)
        run.pop("executor_params", None)
        if not run:
            out.pop("run")
    return out


def source_digest(source: dict) -> str:
    """The same digest as `Suite.digest`, from a parsed source."""
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def known_suites(suites_dir: Path) -> dict:
    from .harness.suite import load_suite

    from .errors import SsbmBenchError

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
    from .harness.suite import PluginRef

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


def board_corpora(suite) -> dict:
    """label -> PluginRef of the corpora the suite names: [corpus] for ssbm and deletion, the [stability] corpus."""
    out = {suite.corpus.label: suite.corpus}
    if suite.stability is not None:
        out.setdefault(suite.stability.corpus.label, suite.stability.corpus)
    return out


def corpus_ref(label: str, suite):
    """A corpus named by a submission, as a PluginRef: one the suite names, or else (an ISA family's corpus,
    which the suite does not name) the label read back into a name and parameters."""
    return board_corpora(suite).get(label) or parse_label(label)


# --- export ------------------------------------------------------------------

def _cell_dict(c, version_index: int) -> dict:
    return {"key": c.key, "board": c.board, "corpus": c.corpus, "model": c.model, "method": c.method,
            "fill": c.fill, "utterance": c.utterance, "target": c.target, "seed": int(c.seed), "status": c.status,
            "reason": c.reason, "raw": c.raw, "params": c.params, "versions": version_index,
            "seconds": None if c.seconds is None else float(c.seconds)}


def board_rows_json(cells: list) -> dict:
    """Leaderboard rows per board (ssbm, deletion, isa, stability) as plain JSON values, as
    `leaderboard --board B --format json` writes them; a board without cells has no rows."""
    from . import deletion_board, isa_board, stability_board
    from .leaderboard import ssbm_rows, to_json

    by_board: dict[str, list] = {b: [] for b in BOARDS}
    for c in cells:
        by_board.setdefault(c.board, []).append(c)
    scorers = {"ssbm": lambda cs: to_json(ssbm_rows(cs)),
               "deletion": lambda cs: deletion_board.to_json(deletion_board.deletion_rows(cs)),
               "isa": lambda cs: isa_board.to_json(isa_board.isa_rows(cs)),
               "stability": lambda cs: stability_board.to_json(stability_board.stability_rows(cs))}
    return {b: json.loads(scorers[b](by_board[b])) if by_board[b] else [] for b in BOARDS}


def export_submission(db: str | Path, suite_name: str | None = None, suite_file: str | Path | None = None,
                      submitter: str | None = None, notes: str | None = None,
                      suites_dir: Path = LEADERBOARDS_DIR / "suites") -> tuple[dict, dict]:
    """(submission, facts) for the latest finished run of one suite in a store."""
    from .harness.store import ResultStore
    from .harness.suite import load_suite

    if not Path(db).is_file():
        raise SubmissionError(f"results store {db}: not found (run `ssbm-bench run SUITE --db {db}` first)")
    with ResultStore(db) as store:
        runs = store.runs()
        paths = dict(store.conn.execute("SELECT run_id, suite_path FROM runs").fetchall())
        cells_all = list(store.cells(every_version=True))
        plans: dict[int, set[str]] = {}
        for run_id, key in store.conn.execute("SELECT run_id, key FROM run_plans").fetchall():
            plans.setdefault(run_id, set()).add(key)
    names = sorted({c.suite for c in cells_all})
    if not names:
        raise SubmissionError(f"results store {db}: holds no cells to submit")
    if suite_name is None:
        if len(names) > 1:
            raise SubmissionError(f"results store {db} holds several suites ({', '.join(names)}): choose one "
                                  f"with --suite")
        suite_name = names[0]
    elif suite_name not in names:
        raise SubmissionError(f"results store {db}: no cells of suite {suite_name!r} (it holds: {', '.join(names)})")
    finished = [r for r in runs if r["suite"] == suite_name and r["status"] == "finished"]
    if not finished:
        raise SubmissionError(f"results store {db}: no finished run of suite {suite_name!r}; finish it first "
                              f"(`ssbm-bench run` again resumes where it stopped)")
    run = finished[-1]
    digest = run["suite_digest"]
    candidates = [Path(suite_file)] if suite_file else [Path(paths.get(run["run_id"]) or ""),
                                                        Path(suites_dir) / f"{suite_name}.toml"]
    suite = None
    for p in candidates:
        if p.is_file() and p.suffix == ".toml":
            s = load_suite(p)
            if s.digest == digest:
                suite = s
                break
    if suite is None:
        tried = ", ".join(str(p) for p in candidates if str(p) not in ("", "."))
        raise SubmissionError(f"suite {suite_name!r}: the run's suite digest is {digest}, and no suite file with "
                              f"that digest was found (tried {tried or 'nothing'}); pass the file with --suite-file")
    ours = [c for c in cells_all if c.suite == suite_name]
    plan = plans.get(run["run_id"])
    # the cells the run planned (a cell an earlier version of the suite computed with the same key is the same
    # computation, reused); a store from before plans were recorded: the cells stored under the run's digest
    mine = [c for c in ours if c.key in plan] if plan is not None else [c for c in ours if c.suite_digest == digest]
    # a reused cell is stored under the digest of the suite version that computed it; in the submission every
    # cell belongs to the submitted run (its rows are re-scored that way by `leaderboard add`)
    mine = [replace(c, suite_digest=digest) for c in mine]
    # cells of a board this version does not know stay out, and are counted
    cells = [c for c in mine if c.board in BOARDS]
    left_out = len(ours) - len(cells)
    if not cells:
        raise SubmissionError(f"suite {suite_name!r}: no cells of the boards a submission carries "
                              f"({', '.join(BOARDS)})")
    # every corpus the cells use, once: the suite's, each ISA family's, the stability excerpts'
    digests: dict[str, set] = {}
    for c in cells:
        digests.setdefault(c.corpus, set()).add(c.corpus_digest)
    corpora = []
    for label in sorted(digests):
        found = sorted(digests[label])
        if len(found) != 1:
            raise SubmissionError(f"suite {suite_name!r}: its cells of corpus {label!r} span {len(found)} corpus "
                                  f"digests ({', '.join(d[:12] for d in found)}); the corpus changed during the "
                                  f"run: run the suite again into a fresh store")
        ref = corpus_ref(label, suite)
        if ref is None:
            raise SubmissionError(f"suite {suite_name!r}: corpus label {label!r} does not read back as a plugin "
                                  f"name and parameters")
        corpora.append({"name": ref.name, "label": label, "digest": found[0]})
    versions: list[dict] = []
    index: dict[str, int] = {}
    out_cells = []
    for c in cells:
        vkey = json.dumps(c.versions, sort_keys=True)
        if vkey not in index:
            index[vkey] = len(versions)
            versions.append(c.versions)
        out_cells.append(_cell_dict(c, index[vkey]))
    from . import __version__

    doc: dict = {
        "schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ssbm_bench_version": __version__,
        "suite": {"name": suite.name, "digest": digest, "source": suite.source},
        "corpora": corpora,
        "run": {"executor": suite.executor.to_dict(),
                "seconds": float((run.get("summary") or {}).get("seconds", 0.0)),
                "computed": int((run.get("summary") or {}).get("computed", 0))},
        "versions": versions,
        "cells": out_cells,
        "leaderboard": board_rows_json(cells),
    }
    if submitter:
        doc["submitter"] = submitter
    if notes:
        doc["notes"] = notes
    # what we write must be what we accept: the same reader and schema
    check_schema(parse_submission_bytes(dumps(doc).encode(), "the exported submission"))
    return doc, {"cells": len(cells), "left_out": left_out, "suite_digest": digest, "suite": suite.name,
                 "corpora": len(corpora)}


def dumps(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


# --- validation --------------------------------------------------------------

@dataclass
class Validated:
    doc: dict
    suite: Any
    cells: list  # CellRow
    rows: dict
    notes: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return hashlib.sha256(dumps(self.doc).encode()).hexdigest()


def doc_corpora(doc: dict) -> list[tuple[str, dict]]:
    """(where, entry) for every corpus of a submission: version 1 has one (`corpus`), version 2 a list."""
    if doc.get("schema_version") == 1:
        return [("corpus", doc["corpus"])]
    return [(f"corpora[{j}]", e) for j, e in enumerate(doc["corpora"])]


def _cell_corpus(doc: dict, cell: dict) -> str:
    return doc["corpus"]["label"] if doc.get("schema_version") == 1 else cell["corpus"]


def cell_rows(doc: dict) -> list:
    from .harness.store import CellRow

    s = doc["suite"]
    digest = {e["label"]: e["digest"] for _, e in doc_corpora(doc)}
    out = []
    for x in doc["cells"]:
        corpus = _cell_corpus(doc, x)
        out.append(CellRow(key=x["key"], board=x["board"], suite=s["name"], suite_digest=s["digest"], corpus=corpus,
                           corpus_digest=digest.get(corpus, ""), model=x["model"], method=x["method"],
                           fill=x["fill"], utterance=x["utterance"], target=x["target"], seed=x["seed"],
                           status=x["status"], reason=x["reason"], result=None, raw=x["raw"], params=x["params"],
                           versions=doc["versions"][x["versions"]], seconds=x["seconds"]))
    return out


def _row_id(row: dict) -> tuple:
    return (row.get("board"), row.get("corpus"), row.get("model"), row.get("method"), row.get("fill"),
            row.get("aggregation"), row.get("n_samples"))


def _row_name(rid: tuple) -> str:
    board, corpus, model, method, fill, aggregation, n_samples = rid
    extra = (f", aggregation {aggregation}" if aggregation is not None else "") + \
        (f", N_s {n_samples}" if n_samples is not None else "")
    return f"model {model}, method {method}, fill {fill}{extra}"


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


def compare_rows(submitted: dict, rescored: dict) -> None:
    """Every board's submitted rows must be the rows its cells give, no more and no fewer."""
    for board in [b for b in BOARDS if b in submitted or rescored.get(b)]:
        mine = {_row_id(r): r for r in rescored.get(board, [])}
        theirs = submitted.get(board, [])
        seen = set()
        for i, row in enumerate(theirs):
            rid = _row_id(row)
            where = f"leaderboard.{board}[{i}] ({_row_name(rid)})"
            if rid in seen:
                raise SubmissionError(f"{where}: appears twice")
            seen.add(rid)
            if rid not in mine:
                raise SubmissionError(f"{where}: no such row when the cells are re-scored")
            ref = mine[rid]
            for k in sorted(set(row) | set(ref)):
                if k not in row or k not in ref or not _same(row[k], ref[k]):
                    raise SubmissionError(f"{where}: {k} is {_short(row.get(k, '(missing)'))} in the submission "
                                          f"but {_short(ref.get(k, '(missing)'))} re-scored from its cells; the "
                                          f"rows must be what its cells give")
        missing = [rid for rid in mine if rid not in seen]
        if missing:
            raise SubmissionError(f"leaderboard.{board}: lacks the row for {_row_name(missing[0])} that its "
                                  f"cells give")


def _check_corpora(doc: dict, suite, check_corpus: bool) -> dict[str, set | None]:
    """label -> utterance ids (None when check_corpus is off) of every corpus the submission names."""
    from .plugins import get_registry

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


class _CellChecks:
    """The checks of each cell against the suite, per board; state for those that span cells."""

    def __init__(self, doc: dict, suite, name: str, utterances: dict[str, set | None]):
        self.doc, self.suite, self.name, self.utterances = doc, suite, name, utterances
        self.labels = {"model": {r.label for r in suite.models}, "method": {r.label for r in suite.methods},
                       "fill": {r.label for r in suite.fills}}
        self.family_corpus: dict[str, str] = {}
        self.seen: dict[tuple, int] = {}
        self.excerpts: dict[tuple, int] = {}

    def _once(self, ident: tuple, i: int, what: str) -> None:
        if ident in self.seen:
            raise SubmissionError(f"cells[{i}]: a second cell of {what} (the first is cells[{self.seen[ident]}])")
        self.seen[ident] = i

    def corpus(self, where: str, cell: dict, want: str | None) -> str:
        label = _cell_corpus(self.doc, cell)
        if label not in self.utterances:
            raise SubmissionError(f"{where}.corpus: {label!r} is not one of the submission's corpora "
                                  f"({', '.join(sorted(self.utterances))})")
        if want is not None and label != want:
            raise SubmissionError(f"{where}.corpus: {label!r}, but the suite's {cell['board']} cells use corpus "
                                  f"{want!r}")
        return label

    def utterance(self, where: str, label: str, utt: str) -> None:
        ids = self.utterances.get(label)
        if ids is not None and utt not in ids:
            raise SubmissionError(f"{where}: {utt!r} is not an utterance of corpus {label!r}")

    def grid(self, i: int, cell: dict) -> None:
        """ssbm and deletion: the suite's [corpus] x [[models]] x [[methods]] x [[fills]]."""
        where, suite, name = f"cells[{i}]", self.suite, self.name
        label = self.corpus(where, cell, suite.corpus.label)
        for kind, allowed in self.labels.items():
            if cell[kind] not in allowed:
                raise SubmissionError(f"{where}.{kind}: {cell[kind]!r} is not a {kind} of suite {name!r} "
                                      f"({', '.join(sorted(allowed))})")
        if not suite.runs(cell["model"], cell["method"]):
            raise SubmissionError(f"{where}.method: suite {name!r} does not run {cell['method']!r} with model "
                                  f"{cell['model']!r} (its [[methods]] entry names other models)")
        if cell["utterance"] == "*":
            if cell["status"] != "skipped":
                raise SubmissionError(f"{where}.utterance: '*' (all utterances) only marks a skipped cell")
        else:
            self.utterance(f"{where}.utterance", label, cell["utterance"])
        if cell["status"] == "ok" and cell["board"] == "ssbm":
            from .harness.runner import thresholds_for

            raw = cell["raw"]
            got = [e["threshold"] for e in raw["thresholds"]]
            want = list(thresholds_for(suite, raw["map"]["kind"]))
            if len(got) != len(want) or not all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
                                                for a, b in zip(got, want)):
                raise SubmissionError(f"{where}.raw.thresholds: {_short(got)} is not the suite's "
                                      f"{raw['map']['kind']} grid {_short(want)}")
            if raw["map"]["min"] > raw["map"]["max"]:
                raise SubmissionError(f"{where}.raw.map: min {raw['map']['min']} above max {raw['map']['max']}")
        if cell["status"] == "ok" and cell["board"] == "deletion":
            for j, cond in enumerate(cell["raw"]["conditions"]):
                if not any(math.isclose(cond["fraction"], f) for f in suite.deletion_fractions):
                    raise SubmissionError(f"{where}.raw.conditions[{j}].fraction: {cond['fraction']} is not one "
                                          f"of the suite's fractions {list(suite.deletion_fractions)}")

    def isa(self, i: int, cell: dict) -> None:
        """isa: model family:F with F in [isa] families, a [[isa.methods]] label, the family's one corpus,
        and raw outputs of the suite's seeds, inputs and p."""
        where, st, name = f"cells[{i}]", self.suite.isa, self.name
        family = cell["model"].split(":", 1)[1]
        if family not in st.families:
            raise SubmissionError(f"{where}.model: {cell['model']!r} is not a seed family of suite {name!r} "
                                  f"([isa] families: {', '.join(st.families)})")
        methods = [m.label for m in st.methods]
        if cell["method"] not in methods:
            raise SubmissionError(f"{where}.method: {cell['method']!r} is not one of suite {name!r}'s "
                                  f"[[isa.methods]] ({', '.join(methods)})")
        label = self.corpus(where, cell, None)
        first = self.family_corpus.setdefault(family, label)
        if first != label:
            raise SubmissionError(f"{where}.corpus: {label!r}, but other cells of family {family!r} use corpus "
                                  f"{first!r}; a family has one corpus")
        self._once(("isa", family, cell["method"]), i, f"family {family!r} with method {cell['method']!r}")
        if cell["status"] != "ok":
            return
        raw = cell["raw"]
        if not math.isclose(raw["p"], st.p, rel_tol=1e-9):
            raise SubmissionError(f"{where}.raw.p: {raw['p']} is not the suite's [isa] p = {st.p}")
        members = raw["members"]
        if len(set(members)) != len(members):
            raise SubmissionError(f"{where}.raw.members: {_short(members)} names a member twice")
        if len(members) != st.seeds:
            raise SubmissionError(f"{where}.raw.members: {len(members)} members, but the suite's [isa] seeds "
                                  f"= {st.seeds}")
        inputs = raw["inputs"]
        if len(set(inputs)) != len(inputs):
            raise SubmissionError(f"{where}.raw.inputs: {_short(inputs)} names an input twice")
        if st.inputs is not None and len(inputs) > st.inputs:
            raise SubmissionError(f"{where}.raw.inputs: {len(inputs)} inputs, but the suite's [isa] inputs "
                                  f"= {st.inputs}")
        for k, uid in enumerate(inputs):
            self.utterance(f"{where}.raw.inputs[{k}]", label, uid)
        want_pairs = sorted(tuple(sorted(p)) for p in itertools.combinations(members, 2))
        for agg, entry in raw["aggregations"].items():
            at = f"{where}.raw.aggregations.{agg}"
            got_pairs = sorted(tuple(sorted(p["pair"])) for p in entry["pairs"])
            if got_pairs != want_pairs:
                raise SubmissionError(f"{at}.pairs: the seed pairs {_short([list(p) for p in got_pairs])} are "
                                      f"not each pair of the members {_short(members)} once")
            for j, pair in enumerate(entry["pairs"]):
                for what in ("overlaps", "baseline"):
                    if len(pair[what]) != len(inputs):
                        raise SubmissionError(f"{at}.pairs[{j}].{what}: {len(pair[what])} values for "
                                              f"{len(inputs)} inputs")
            maps = entry.get("word_maps")
            if maps is not None:
                if sorted(maps) != sorted(members):
                    raise SubmissionError(f"{at}.word_maps: members {_short(sorted(maps))}, not "
                                          f"{_short(sorted(members))}")
                for member, per_input in maps.items():
                    if len(per_input) != len(inputs):
                        raise SubmissionError(f"{at}.word_maps.{member}: {len(per_input)} maps for {len(inputs)} "
                                              f"inputs")

    def stability(self, i: int, cell: dict) -> None:
        """stability: the [stability] model, method, fills, N_s, runs and reference fill, its corpus's
        excerpts (at most `excerpts` per fill and N_s), and raw outputs of that shape."""
        where, st, name = f"cells[{i}]", self.suite.stability, self.name
        label = self.corpus(where, cell, st.corpus.label)
        for kind, want in (("model", st.model.label), ("method", st.method.label)):
            if cell[kind] != want:
                raise SubmissionError(f"{where}.{kind}: {cell[kind]!r} is not suite {name!r}'s [stability] "
                                      f"{kind} {want!r}")
        fills = [f.label for f in st.fills]
        if cell["fill"] not in fills:
            raise SubmissionError(f"{where}.fill: {cell['fill']!r} is not one of suite {name!r}'s [stability] "
                                  f"fills ({', '.join(fills)})")
        if cell["target"].split(":", 2)[2] != st.target:
            raise SubmissionError(f"{where}.target: {cell['target']!r} is not the [stability] target class "
                                  f"{st.target!r}")
        self.utterance(f"{where}.utterance", label, cell["utterance"])
        params = cell["params"]
        n_s = params["n_samples"]
        if n_s not in st.n_samples:
            raise SubmissionError(f"{where}.params.n_samples: {n_s} is not one of suite {name!r}'s [stability] "
                                  f"n_samples {list(st.n_samples)}")
        if params["runs"] != st.runs:
            raise SubmissionError(f"{where}.params.runs: {params['runs']}, but the suite's [stability] runs "
                                  f"= {st.runs}")
        if params["reference_fill"] != st.reference_fill:
            raise SubmissionError(f"{where}.params.reference_fill: {params['reference_fill']!r} is not the "
                                  f"suite's [stability] reference_fill {st.reference_fill!r}")
        self._once(("stability", cell["fill"], n_s, cell["utterance"]), i,
                   f"fill {cell['fill']!r}, N_s {n_s}, excerpt {cell['utterance']!r}")
        group = (cell["fill"], n_s)
        self.excerpts[group] = self.excerpts.get(group, 0) + 1
        if self.excerpts[group] > st.excerpts:
            raise SubmissionError(f"{where}: more than the suite's [stability] excerpts = {st.excerpts} cells "
                                  f"for fill {cell['fill']!r}, N_s {n_s}")
        if cell["status"] != "ok":
            return
        raw = cell["raw"]
        if raw["n_samples"] != n_s:
            raise SubmissionError(f"{where}.raw.n_samples: {raw['n_samples']}, but params.n_samples is {n_s}")
        weights = raw["weights"]
        if len(weights) != st.runs:
            raise SubmissionError(f"{where}.raw.weights: {len(weights)} runs, but the suite's [stability] runs "
                                  f"= {st.runs}")
        for r, w in enumerate(weights):
            if len(w) != len(weights[0]):
                raise SubmissionError(f"{where}.raw.weights[{r}]: {len(w)} components, but run 0 has "
                                      f"{len(weights[0])}")
        if raw["speech_segments"] is not None:
            segs = [int(x) for x in raw["speech_segments"].split(",")]
            if len(set(segs)) != len(segs) or max(segs) >= len(weights[0]):
                raise SubmissionError(f"{where}.raw.speech_segments: {raw['speech_segments']!r} is not a set of "
                                      f"component indices below {len(weights[0])}")


def validate_submission(doc: dict, suites_dir: Path = LEADERBOARDS_DIR / "suites", check_corpus: bool = True
                        ) -> Validated:
    """Everything short of re-running cells; raises SubmissionError naming the field."""
    from .harness.suite import parse_suite
    from .errors import SuiteError

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
    if protocol_source(source) != protocol_source(known[name].source):
        raise SubmissionError(f"suite.source: differs from the known suite {name!r} ({known[name].path}) in more "
                              f"than the [run] executor settings")
    try:
        suite = parse_suite(source, where="suite.source")
    except (SuiteError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SubmissionError(f"suite.source: not a valid suite ({exc})") from None
    notes: list[str] = []
    used = {_cell_corpus(doc, c) for c in doc["cells"]}
    for where, entry in doc_corpora(doc):
        if entry["label"] not in used:
            raise SubmissionError(f"{where}: corpus {entry['label']!r} is used by no cell")
    utterances = _check_corpora(doc, suite, check_corpus)
    checks = _CellChecks(doc, suite, name, utterances)
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
        if board == "isa":
            checks.isa(i, cell)
        elif board == "stability":
            checks.stability(i, cell)
        else:
            checks.grid(i, cell)
    cells = cell_rows(doc)
    try:
        rows = board_rows_json(cells)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise SubmissionError(f"cells: cannot be scored ({type(exc).__name__}: {exc})") from None
    compare_rows(doc["leaderboard"], rows)
    return Validated(doc=doc, suite=suite, cells=cells, rows=rows, notes=notes)


# --- re-running a sample -----------------------------------------------------

def _parse_target(key: str):
    from .types import Target

    kind, index, label = key.split(":", 2)
    return Target(kind, int(index), label)


def _compare_raw(mine: Any, theirs: Any, where: str, failures: list[str], notes: list[str]) -> None:
    if isinstance(theirs, dict) and isinstance(mine, dict):
        for k in sorted(set(mine) | set(theirs)):
            if k in ("explain_seconds", "map_reused"):
                continue  # timing, and whether this worker had the map already
            sub = f"{where}.{k}"
            if k == "p_speech" and isinstance(mine.get(k), float) and isinstance(theirs.get(k), (int, float)):
                if not math.isclose(mine[k], theirs[k], rel_tol=1e-4, abs_tol=1e-6):
                    notes.append(f"{sub}: P(speech) {theirs[k]!r} submitted, {mine[k]!r} here (it selects "
                                 f"excerpts and is not scored; the model ran on a batch there, on one excerpt here)")
                continue
            if k == "sha256":
                if mine.get(k) != theirs.get(k):
                    notes.append(f"{sub}: map digest differs ({theirs.get(k)} submitted, {mine.get(k)} here); "
                                 f"a last-bit difference in floating point (BLAS threads, CPU) changes it")
                continue
            if k not in mine or k not in theirs:
                failures.append(f"{sub}: present on one side only")
                continue
            _compare_raw(mine[k], theirs[k], sub, failures, notes)
    elif isinstance(theirs, list) and isinstance(mine, list):
        if len(mine) != len(theirs):
            failures.append(f"{where}: {len(theirs)} entries submitted, {len(mine)} here")
            return
        for i, (a, b) in enumerate(zip(mine, theirs)):
            _compare_raw(a, b, f"{where}[{i}]", failures, notes)
    elif isinstance(theirs, float) or isinstance(mine, float):
        if not (isinstance(mine, (int, float)) and isinstance(theirs, (int, float))
                and math.isclose(mine, theirs, rel_tol=VERIFY_RTOL, abs_tol=1e-9)):
            failures.append(f"{where}: {theirs!r} submitted, {mine!r} re-run here")
    elif mine != theirs:
        failures.append(f"{where}: {_short(theirs)} submitted, {_short(mine)} re-run here")


def rerunnable(doc: dict) -> list[int]:
    """Indices of the finished cells `verify_cells` can re-run here."""
    return [i for i, c in enumerate(doc["cells"]) if c["status"] == "ok" and c["board"] in RERUNNABLE]


def _stability_job(c: dict, suite, cache):
    """The StabilityJob of a submitted stability cell, with P(speech) of its excerpt computed here."""
    from .audio import StftConfig
    from .harness.stability_cell import StabilityJob

    st = suite.stability
    fill = {f.label: f for f in st.fills}[c["fill"]]
    p = c["params"]
    target = _parse_target(c["target"])
    model = cache.instance("model", st.model)
    utt = cache.utterance(st.corpus, c["utterance"])
    p_speech = float(model.classify([utt.waveform])[0, target.index])
    return StabilityJob(c["key"], st.model, st.method, fill, st.corpus, c["utterance"], target, int(p["n_samples"]),
                        int(p["runs"]), StftConfig(**p["cfg"]), {"p_speech": p_speech})


def verify_cells(v: Validated, k: int, seed: int | None = None, log=lambda s: None) -> tuple[list[str], list[str], int]:
    """Re-run k random finished cells in this process and compare their raw
    outputs with the submitted ones. (failures, notes, seed used).

    Only ssbm, deletion and stability cells are drawn: an ISA cell explains
    every member of a seed family, which would have to be trained here, so
    ISA cells are checked by re-scoring only (a note says so)."""
    from .audio import StftConfig
    from .harness.deletion_cell import DeletionJob
    from .harness.runner import run_cell
    from .harness.ssbm_cell import SsbmJob
    from .harness.store import ResultStore
    from .harness.worker import WorkerCache

    seed = random.SystemRandom().randrange(2 ** 31) if seed is None else int(seed)
    ok = rerunnable(v.doc)
    chosen = sorted(random.Random(seed).sample(ok, min(k, len(ok))))
    suite = v.suite
    refs = {"model": {r.label: r for r in suite.models}, "method": {r.label: r for r in suite.methods},
            "fill": {r.label: r for r in suite.fills}}
    failures: list[str] = []
    notes: list[str] = []
    n_isa = sum(1 for c in v.doc["cells"] if c["status"] == "ok" and c["board"] == "isa")
    if n_isa and k:
        notes.append(f"{n_isa} ISA cell(s) not re-run: they need the suite's seed families trained here; they are "
                     f"checked by re-scoring only")
    store = ResultStore(":memory:")
    cache = WorkerCache()
    cache.artifacts = store
    try:
        for n, i in enumerate(chosen, 1):
            c = v.doc["cells"][i]
            p = c["params"]
            where = f"cells[{i}]"
            try:
                if c["board"] == "stability":
                    job = _stability_job(c, suite, cache)
                else:
                    common = (c["key"], suite.corpus, refs["model"][c["model"]], refs["method"][c["method"]],
                              refs["fill"][c["fill"]], c["utterance"], _parse_target(c["target"]), c["seed"])
                    cfg = StftConfig(**p["cfg"])
                    if c["board"] == "ssbm":
                        job = SsbmJob(*common, tuple(float(t) for t in p["thresholds"]), float(p["level_db"]), cfg)
                    else:
                        job = DeletionJob(*common, tuple(float(f) for f in p["fractions"]), float(p["level_db"]),
                                          cfg)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                failures.append(f"{where}.params: cannot rebuild the cell to re-run it ({type(exc).__name__}: {exc})")
                continue
            log(f"verify {n}/{len(chosen)}: {c['board']} {c['model']} / {c['method']} / {c['fill']} / "
                f"{c['utterance']} / {c['target']}" + (f" / N_s={p['n_samples']}" if c["board"] == "stability" else ""))
            res = run_cell(job, {"ssbm_bench": cache})
            if res.status != "ok":
                failures.append(f"{where}: re-run here gave status {res.status!r} ({(res.reason or '')[:200]})")
                continue
            _compare_raw(res.raw, c["raw"], f"{where}.raw", failures, notes)
    finally:
        store.close()
    return failures, notes, seed


# --- adding ------------------------------------------------------------------

def submission_filename(v: Validated) -> str:
    return f"{v.doc['suite']['name']}--{v.digest[:16]}.json"


def add_submission(path: str | Path, leaderboards_dir: Path = LEADERBOARDS_DIR, suites_dir: Path | None = None,
                   verify: int = 0, seed: int | None = None, log=lambda s: None) -> tuple[Path, Validated, list[str]]:
    """Validate (and optionally verify) a submission, then store its
    canonical JSON under leaderboards_dir/submissions/. Returns (path, validated, notes)."""
    suites_dir = Path(suites_dir) if suites_dir else Path(leaderboards_dir) / "suites"
    doc = read_submission(path)
    v = validate_submission(doc, suites_dir)
    notes = list(v.notes)
    if verify:
        failures, vnotes, used = verify_cells(v, verify, seed, log)
        notes += vnotes
        notes.append(f"verified {min(verify, len(rerunnable(doc)))} random cell(s) (--seed {used})")
        if failures:
            shown = "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
            raise SubmissionError(f"re-running cells (--seed {used}) gave other outputs than submitted: {shown}")
    dest_dir = Path(leaderboards_dir) / "submissions"
    dest = dest_dir / submission_filename(v)
    if dest.exists():
        raise SubmissionError(f"this submission is already in the leaderboard as {dest}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".json.tmp")
    tmp.write_text(dumps(v.doc))
    tmp.replace(dest)
    return dest, v, notes


def load_accepted(leaderboards_dir: Path = LEADERBOARDS_DIR, suites_dir: Path | None = None,
                  check_corpus: bool = False) -> list[tuple[Path, Validated]]:
    """(path, validated) for every submission under leaderboards_dir/submissions/,
    validated again (a hand-edited file is refused here too)."""
    suites_dir = Path(suites_dir) if suites_dir else Path(leaderboards_dir) / "suites"
    out = []
    for p in sorted((Path(leaderboards_dir) / "submissions").glob("*.json")):
        try:
            out.append((p, validate_submission(read_submission(p), suites_dir, check_corpus=check_corpus)))
        except SubmissionError as exc:
            raise SubmissionError(f"{p}: {exc}") from None
    return out
