"""Leaderboard submissions: one run exported as one JSON file, and its checks.

A submission is data only. It is read with the standard JSON parser (never
unpickled, never imported, never executed), limited in size and depth,
checked against the published JSON Schema
(`leaderboards/schema/submission-v1.json`), then against what this checkout
knows: the suite must be one of `leaderboards/suites/` (the `[run]` executor
settings may differ: they do not change a result), the corpus digest must be
the digest of that corpus here, names must be the suite's plugins and the
corpus's utterances, and every leaderboard row is recomputed from the
submitted raw cells with this checkout's scoring and must agree. A sample of
cells can be re-run (`verify_cells`). Every refusal names the field at fault.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

SCHEMA_NAME = "ssbm-bench-submission"
SCHEMA_VERSION = 1
LEADERBOARDS_DIR = Path(__file__).resolve().parent.parent / "leaderboards"
SCHEMA_PATH = LEADERBOARDS_DIR / "schema" / f"submission-v{SCHEMA_VERSION}.json"
#: a file larger than this is refused before it is parsed
MAX_BYTES = 64 * 1024 * 1024
#: deepest nesting of objects and arrays accepted (the format needs 7)
MAX_DEPTH = 32
#: the boards a version-1 submission carries
BOARDS_V1 = ("ssbm", "deletion")
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

def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


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
    if version != SCHEMA_VERSION:
        raise SubmissionError(f"schema_version: {_short(version)} is not supported; this ssbm-bench reads "
                              f"submission schema version {SCHEMA_VERSION}")
    from jsonschema.exceptions import best_match

    validator = _validator_class()(load_schema())
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


# --- export ------------------------------------------------------------------

def _cell_dict(c, version_index: int) -> dict:
    return {"key": c.key, "board": c.board, "model": c.model, "method": c.method, "fill": c.fill,
            "utterance": c.utterance, "target": c.target, "seed": int(c.seed), "status": c.status,
            "reason": c.reason, "raw": c.raw, "params": c.params, "versions": version_index,
            "seconds": None if c.seconds is None else float(c.seconds)}


def board_rows_json(cells: list) -> dict:
    """Leaderboard rows per board as plain JSON values, as `leaderboard --format json` writes them."""
    from . import deletion_board
    from .leaderboard import ssbm_rows, to_json

    ssbm = [c for c in cells if c.board == "ssbm"]
    deletion = [c for c in cells if c.board == "deletion"]
    return {"ssbm": json.loads(to_json(ssbm_rows(ssbm))) if ssbm else [],
            "deletion": json.loads(deletion_board.to_json(deletion_board.deletion_rows(deletion))) if deletion else []}


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
        cells_all = list(store.cells())
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
    mine = [c for c in cells_all if c.suite == suite_name and c.suite_digest == digest]
    # schema v1 carries the SSBM and deletion boards; cells of other boards stay out, and are counted
    cells = [c for c in mine if c.board in BOARDS_V1]
    left_out = len(mine) - len(cells) + sum(1 for c in cells_all if c.suite == suite_name and c.suite_digest != digest)
    if not cells:
        raise SubmissionError(f"suite {suite_name!r}: no cells of the boards a submission carries "
                              f"({', '.join(BOARDS_V1)})")
    corpus_digests = sorted({c.corpus_digest for c in cells})
    if len(corpus_digests) != 1:
        raise SubmissionError(f"suite {suite_name!r}: its cells span {len(corpus_digests)} corpus digests; a "
                              f"submission holds one corpus")
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
        "corpus": {"name": suite.corpus.name, "label": suite.corpus.label, "digest": corpus_digests[0]},
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
    return doc, {"cells": len(cells), "left_out": left_out, "suite_digest": digest, "suite": suite.name}


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


def cell_rows(doc: dict) -> list:
    from .harness.store import CellRow

    s, c = doc["suite"], doc["corpus"]
    return [CellRow(key=x["key"], board=x["board"], suite=s["name"], suite_digest=s["digest"], corpus=c["label"],
                    corpus_digest=c["digest"], model=x["model"], method=x["method"], fill=x["fill"],
                    utterance=x["utterance"], target=x["target"], seed=x["seed"], status=x["status"],
                    reason=x["reason"], result=None, raw=x["raw"], params=x["params"],
                    versions=doc["versions"][x["versions"]], seconds=x["seconds"])
            for x in doc["cells"]]


def _row_id(row: dict) -> tuple:
    return (row.get("board"), row.get("model"), row.get("method"), row.get("fill"))


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
    for board in ("ssbm", "deletion"):
        mine = {_row_id(r): r for r in rescored[board]}
        theirs = submitted[board]
        seen = set()
        for i, row in enumerate(theirs):
            rid = _row_id(row)
            where = f"leaderboard.{board}[{i}] (model {rid[1]}, method {rid[2]}, fill {rid[3]})"
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
        missing = [r for rid, r in mine.items() if rid not in seen]
        if missing:
            r = missing[0]
            raise SubmissionError(f"leaderboard.{board}: lacks the row for model {r['model']}, method "
                                  f"{r['method']}, fill {r['fill']} that its cells give")


def validate_submission(doc: dict, suites_dir: Path = LEADERBOARDS_DIR / "suites", check_corpus: bool = True
                        ) -> Validated:
    """Everything short of re-running cells; raises SubmissionError naming the field."""
    from .harness.runner import thresholds_for
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
    corpus = doc["corpus"]
    if corpus["name"] != suite.corpus.name or corpus["label"] != suite.corpus.label:
        raise SubmissionError(f"corpus.name: {corpus['label']!r} is not the suite's corpus {suite.corpus.label!r}")
    utterance_ids: set[str] | None = None
    if check_corpus:
        from .plugins import get_registry

        try:
            c = get_registry().create("corpus", suite.corpus.name, **suite.corpus.params)
            here = c.digest()
            utterance_ids = set(c.ids())
        except Exception as exc:
            raise SubmissionError(f"corpus.digest: cannot compute the digest of corpus {suite.corpus.label!r} "
                                  f"here to check it ({type(exc).__name__}: {exc})") from None
        if corpus["digest"] != here:
            raise SubmissionError(f"corpus.digest: {corpus['digest'][:12]}... is not the digest of corpus "
                                  f"{suite.corpus.label!r} here ({here[:12]}...): the results were computed on "
                                  f"other audio")
    labels = {"model": {r.label for r in suite.models}, "method": {r.label for r in suite.methods},
              "fill": {r.label for r in suite.fills}}
    keys: set[str] = set()
    n_versions = len(doc["versions"])
    for i, cell in enumerate(doc["cells"]):
        where = f"cells[{i}]"
        for kind, allowed in labels.items():
            if cell[kind] not in allowed:
                raise SubmissionError(f"{where}.{kind}: {cell[kind]!r} is not a {kind} of suite {name!r} "
                                      f"({', '.join(sorted(allowed))})")
        if not suite.runs(cell["model"], cell["method"]):
            raise SubmissionError(f"{where}.method: suite {name!r} does not run {cell['method']!r} with model "
                                  f"{cell['model']!r} (its [[methods]] entry names other models)")
        if cell["key"] in keys:
            raise SubmissionError(f"{where}.key: {cell['key'][:16]}... appears twice")
        keys.add(cell["key"])
        if cell["versions"] >= n_versions:
            raise SubmissionError(f"{where}.versions: {cell['versions']} but only {n_versions} version record(s)")
        if cell["utterance"] == "*":
            if cell["status"] != "skipped":
                raise SubmissionError(f"{where}.utterance: '*' (all utterances) only marks a skipped cell")
        elif utterance_ids is not None and cell["utterance"] not in utterance_ids:
            raise SubmissionError(f"{where}.utterance: {cell['utterance']!r} is not an utterance of corpus "
                                  f"{suite.corpus.label!r}")
        if cell["status"] == "ok" and cell["board"] == "ssbm":
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


def verify_cells(v: Validated, k: int, seed: int | None = None, log=lambda s: None) -> tuple[list[str], list[str], int]:
    """Re-run k random finished cells in this process and compare their raw
    outputs with the submitted ones. (failures, notes, seed used)."""
    from .audio import StftConfig
    from .harness.deletion_cell import DeletionJob
    from .harness.runner import run_cell
    from .harness.ssbm_cell import SsbmJob
    from .harness.store import ResultStore
    from .harness.worker import WorkerCache

    seed = random.SystemRandom().randrange(2 ** 31) if seed is None else int(seed)
    ok = [i for i, c in enumerate(v.doc["cells"]) if c["status"] == "ok"]
    chosen = sorted(random.Random(seed).sample(ok, min(k, len(ok))))
    suite = v.suite
    refs = {"model": {r.label: r for r in suite.models}, "method": {r.label: r for r in suite.methods},
            "fill": {r.label: r for r in suite.fills}}
    failures: list[str] = []
    notes: list[str] = []
    store = ResultStore(":memory:")
    cache = WorkerCache()
    cache.artifacts = store
    try:
        for n, i in enumerate(chosen, 1):
            c = v.doc["cells"][i]
            p = c["params"]
            where = f"cells[{i}]"
            try:
                common = (c["key"], suite.corpus, refs["model"][c["model"]], refs["method"][c["method"]],
                          refs["fill"][c["fill"]], c["utterance"], _parse_target(c["target"]), c["seed"])
                cfg = StftConfig(**p["cfg"])
                if c["board"] == "ssbm":
                    job = SsbmJob(*common, tuple(float(t) for t in p["thresholds"]), float(p["level_db"]), cfg)
                else:
                    job = DeletionJob(*common, tuple(float(f) for f in p["fractions"]), float(p["level_db"]), cfg)
            except (KeyError, TypeError, ValueError) as exc:
                failures.append(f"{where}.params: cannot rebuild the cell to re-run it ({type(exc).__name__}: {exc})")
                continue
            log(f"verify {n}/{len(chosen)}: {c['board']} {c['model']} / {c['method']} / {c['fill']} / "
                f"{c['utterance']} / {c['target']}")
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
        notes.append(f"verified {min(verify, sum(c['status'] == 'ok' for c in doc['cells']))} random cell(s) "
                     f"(--seed {used})")
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
