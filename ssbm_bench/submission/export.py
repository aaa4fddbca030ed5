"""Exporting a run as a submission: the latest finished run of one suite in a results store, as one JSON file.

The file holds the suite (parsed TOML, so its digest can be recomputed),
every corpus the cells use with its digest, the software versions, every
cell the run planned with its raw outcome, and the rows of each board that
has cells. What is written is read back with the same reader and schema
before it is returned (what we write must be what we accept).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from .checks import corpus_ref
from .guards import LEADERBOARDS_DIR, SCHEMA_NAME, SCHEMA_VERSION, SubmissionError, check_schema, dumps, \
    parse_submission_bytes


def _cell_dict(c, version_index: int, fields: dict) -> dict:
    return {"fields": fields, "key": c.key, "board": c.board, "corpus": c.corpus, "model": c.model, "method": c.method,
            "fill": c.fill, "utterance": c.utterance, "target": c.target, "seed": int(c.seed), "status": c.status,
            "reason": c.reason, "raw": c.raw, "params": c.params, "versions": version_index,
            "seconds": None if c.seconds is None else float(c.seconds)}


def board_rows_json(cells: list, boards: tuple[str, ...] | None = None, registry=None) -> dict:
    """Leaderboard rows per board as plain JSON values, as `leaderboard --board B --format json` writes them.

    Every installed board (or those named in `boards`) has an entry; a board
    without cells has no rows. Cells of a board not installed here are
    refused, naming it."""
    from ..plugins import get_registry

    registry = registry or get_registry()
    names = boards if boards is not None else tuple(b.name for b in registry.boards())
    by_board: dict[str, list] = {b: [] for b in names}
    for c in cells:
        if c.board not in by_board:
            raise SubmissionError(f"cells of board {c.board!r}: no such board installed here "
                                  f"({', '.join(registry.names('board'))})")
        by_board[c.board].append(c)
    out = {}
    for name, mine in by_board.items():
        board = registry.board(name)
        out[name] = json.loads(board.to_json(board.rows(mine))) if mine else []
    return out


def export_submission(db: str | Path, suite_name: str | None = None, suite_file: str | Path | None = None,
                      submitter: str | None = None, notes: str | None = None,
                      suites_dir: Path = LEADERBOARDS_DIR / "suites", partial: str | None = None
                      ) -> tuple[dict, dict]:
    """(submission, facts) for the latest finished run of one suite in a store.

    With `partial` (the reason), the latest run, finished or not, is exported with the planned cells it stored,
    declared partial: such a submission is published apart and never ranked against complete runs."""
    from ..harness.store import ResultStore
    from ..harness.suite import load_suite
    from ..plugins import get_registry

    if not Path(db).is_file():
        raise SubmissionError(f"results store {db}: not found (run `ssbm-bench run SUITE --db {db}` first)")
    with ResultStore(db) as store:
        runs = store.runs()
        paths = dict(store.conn.execute("SELECT run_id, suite_path FROM runs").fetchall())
        cells_all = list(store.cells(every_version=True))
        key_fields = store.cell_fields(c.key for c in cells_all)
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
    if partial is not None and not str(partial).strip():
        raise SubmissionError("--partial: give the reason the run is partial (e.g. 'interrupted after 3 days')")
    wanted = ("finished",) if partial is None else ("finished", "running", "killed", "interrupted", "failed")
    finished = [r for r in runs if r["suite"] == suite_name and r["status"] in wanted]
    if not finished:
        raise SubmissionError(f"results store {db}: no finished run of suite {suite_name!r}; finish it first "
                              f"(`ssbm-bench run` again resumes where it stopped), or submit what it has with "
                              f"--partial REASON (published apart, never ranked against complete runs)")
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
    if plan is not None:
        plan = plan - {""}  # the marker row of a recorded plan (store.record_plan), not a cell
    # the cells the run planned (a cell an earlier version of the suite computed with the same key is the same
    # computation, reused); a store from before plans were recorded: the cells stored under the run's digest
    mine = [c for c in ours if c.key in plan] if plan is not None else [c for c in ours if c.suite_digest == digest]
    # a reused cell is stored under the digest of the suite version that computed it; in the submission every
    # cell belongs to the submitted run (its rows are re-scored that way by `leaderboard add`)
    mine = [replace(c, suite_digest=digest) for c in mine]
    # cells of a board not installed here stay out, and are counted
    installed = get_registry().names("board")
    cells = [c for c in mine if c.board in installed]
    left_out = len(ours) - len(cells)
    if not cells:
        raise SubmissionError(f"suite {suite_name!r}: no cells of an installed board ({', '.join(installed)})")
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
        if c.key not in key_fields:
            raise SubmissionError(f"suite {suite_name!r}: cell {c.key[:12]}... ({c.board}, {c.model}, {c.method}, "
                                  f"{c.utterance}) has no recorded key fields (a store written before they were "
                                  f"recorded): run the suite again into a fresh store to submit it")
        out_cells.append(_cell_dict(c, index[vkey], key_fields[c.key]))
    from .. import __version__

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
        "leaderboard": board_rows_json(cells, tuple(sorted({c.board for c in cells}))),
    }
    if partial is not None:
        if not plan:
            raise SubmissionError(f"suite {suite_name!r}: the run recorded no plan, so how partial it is cannot be "
                                  f"said; run the suite again into a fresh store")
        if len(cells) >= len(plan):
            raise SubmissionError(f"suite {suite_name!r}: --partial, but the run stored every one of its "
                                  f"{len(plan)} planned cells; submit it without --partial")
        doc["partial"] = {"reason": str(partial).strip(), "planned": len(plan)}
    if submitter:
        doc["submitter"] = submitter
    if notes:
        doc["notes"] = notes
    # what we write must be what we accept: the same reader and schema
    check_schema(parse_submission_bytes(dumps(doc).encode(), "the exported submission"))
    return doc, {"cells": len(cells), "left_out": left_out, "suite_digest": digest, "suite": suite.name,
                 "corpora": len(corpora), "planned": len(plan) if plan is not None else None}


