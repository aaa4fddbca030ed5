"""The results store: SQLite, one row per finished cell.

Every cell is written in one transaction together with the raw outputs
needed to re-score it (hypotheses, dropped energies, thresholds, the map's
digest), so a crash or a kill loses nothing that finished and leaves nothing
half-written. The store is the single source of the leaderboards; a run
that finds a cell's key already present does not recompute it (resume).

Each run records the keys it planned (table ``run_plans``): the boards
read a suite's cells through its latest plan, so cells that only an earlier
version of the suite planned (a dropped method, fewer excerpts) stay in the
store, for a later rerun to find, but no longer count in its rows.

Two tables serve reruns: `model_outputs` (the model-output cache of
ssbm_bench.model_cache: one model's answer to one exact input, by digest)
and `cell_fields` (what each cell's key was made of, so a rerun can say why
it recomputes a cell). Both are only ever added to, by the one writer;
executor workers in other processes read `model_outputs` through
:class:`ssbm_bench.model_outputs_table.ReadOnlyStore`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError
from ..model_outputs_table import read_model_outputs

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    suite TEXT NOT NULL, suite_digest TEXT NOT NULL, suite_path TEXT,
    started REAL NOT NULL, finished REAL, status TEXT NOT NULL,
    versions TEXT NOT NULL, summary TEXT
);
CREATE TABLE IF NOT EXISTS clean (
    model_key TEXT NOT NULL, corpus_digest TEXT NOT NULL, utterance TEXT NOT NULL,
    hypothesis TEXT NOT NULL, correct TEXT NOT NULL, all_correct INTEGER NOT NULL,
    PRIMARY KEY (model_key, corpus_digest, utterance)
);
CREATE TABLE IF NOT EXISTS calibration (
    model_key TEXT NOT NULL, corpus_digest TEXT NOT NULL, fill TEXT NOT NULL, settings TEXT NOT NULL,
    level_db REAL NOT NULL, details TEXT NOT NULL,
    PRIMARY KEY (model_key, corpus_digest, fill, settings)
);
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    board TEXT NOT NULL, suite TEXT NOT NULL, suite_digest TEXT NOT NULL,
    corpus TEXT NOT NULL, corpus_digest TEXT NOT NULL,
    model TEXT NOT NULL, method TEXT NOT NULL, fill TEXT NOT NULL,
    utterance TEXT NOT NULL, target TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'skipped', 'error')),
    reason TEXT, result TEXT, raw TEXT, params TEXT NOT NULL, versions TEXT NOT NULL,
    seconds REAL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS model_outputs (key TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL,
                                          created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cell_fields (key TEXT PRIMARY KEY, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run_plans (run_id INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE INDEX IF NOT EXISTS cells_board ON cells (board, suite, model, method, fill);
"""


@dataclass
class CellRow:
    key: str
    board: str
    suite: str
    suite_digest: str
    corpus: str
    corpus_digest: str
    model: str
    method: str
    fill: str
    utterance: str
    target: str
    seed: int
    status: str
    reason: str | None
    result: dict | None
    raw: dict | None
    params: dict
    versions: dict
    seconds: float | None = None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


class ResultStore:
    """A thin, transactional wrapper over one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=30.0)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            with self.conn:
                self.conn.executescript(_SCHEMA)
                found = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if found is None:
                    self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(found[0]) != SCHEMA_VERSION:
                    raise InputError(
                        f"results store {self.path}: schema version {found[0]}, this ssbm-bench expects {SCHEMA_VERSION}"
                    )
        except sqlite3.DatabaseError as exc:
            raise InputError(f"results store {self.path}: not a usable SQLite database ({exc})") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- runs -------------------------------------------------------------
    def mark_killed_runs(self) -> list[tuple[int, dict | None]]:
        """Runs still marked 'running' when a new run starts were killed (the store has one writer): mark them
        'killed' and return (run id, the key fields of the first cell of its plan it had not stored, if any).

        Cells run in plan order (in process, exactly; in a pool, nearly), and a run records its plan and
        every planned cell's key fields before it computes any, so the first unfinished cell of a killed
        run's plan is the cell it was computing (in process): a plugin that crashed the process is named."""
        with self.conn:
            ids = [r for (r,) in self.conn.execute("SELECT run_id FROM runs WHERE status='running'").fetchall()]
            self.conn.execute("UPDATE runs SET status='killed' WHERE status='running'")
        out = []
        for run_id in ids:
            row = self.conn.execute(
                "SELECT f.fields FROM run_plans p JOIN cell_fields f ON f.key = p.key "
                "WHERE p.run_id = ? AND p.key != '' AND p.key NOT IN (SELECT key FROM cells) ORDER BY p.rowid LIMIT 1",
                (run_id,)).fetchone()
            out.append((run_id, json.loads(row[0]) if row else None))
        return out

    def start_run(self, suite: str, suite_digest: str, suite_path: str, versions: dict) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (suite, suite_digest, suite_path, started, status, versions) VALUES (?,?,?,?,?,?)",
                (suite, suite_digest, suite_path, time.time(), "running", _dumps(versions)),
            )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, summary: dict) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET finished=?, status=?, summary=? WHERE run_id=?",
                (time.time(), status, _dumps(summary), run_id),
            )

    def runs(self) -> list[dict]:
        rows = self.conn.execute(
            "SELECT run_id, suite, suite_digest, started, finished, status, versions, summary FROM runs ORDER BY run_id"
        ).fetchall()
        keys = ("run_id", "suite", "suite_digest", "started", "finished", "status", "versions", "summary")
        out = []
        for r in rows:
            d = dict(zip(keys, r))
            d["versions"] = json.loads(d["versions"])
            d["summary"] = json.loads(d["summary"]) if d["summary"] else None
            out.append(d)
        return out

    # --- clean recognition and calibration -------------------------------
    def get_clean(self, model_key: str, corpus_digest: str, utterance: str) -> dict | None:
        row = self.conn.execute(
            "SELECT hypothesis, correct, all_correct FROM clean WHERE model_key=? AND corpus_digest=? AND utterance=?",
            (model_key, corpus_digest, utterance),
        ).fetchone()
        if row is None:
            return None
        return {"hypothesis": json.loads(row[0]), "correct": json.loads(row[1]), "all_correct": bool(row[2])}

    def put_clean(self, model_key: str, corpus_digest: str, utterance: str, hypothesis: list[str],
                  correct: list[bool]) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO clean VALUES (?,?,?,?,?,?)",
                (model_key, corpus_digest, utterance, _dumps(hypothesis), _dumps(correct), int(all(correct))),
            )

    def get_calibration(self, model_key: str, corpus_digest: str, fill: str, settings: dict) -> dict | None:
        row = self.conn.execute(
            "SELECT level_db, details FROM calibration WHERE model_key=? AND corpus_digest=? AND fill=? AND settings=?",
            (model_key, corpus_digest, fill, _dumps(settings)),
        ).fetchone()
        return None if row is None else {"level_db": row[0], **json.loads(row[1])}

    def put_calibration(self, model_key: str, corpus_digest: str, fill: str, settings: dict, level_db: float,
                        details: dict) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO calibration VALUES (?,?,?,?,?,?)",
                (model_key, corpus_digest, fill, _dumps(settings), level_db, _dumps(details)),
            )

    # --- artifacts (see ssbm_bench.artifacts) -----------------------------
    def get(self, key: str) -> Any | None:
        row = self.conn.execute("SELECT value FROM artifacts WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO artifacts VALUES (?,?,?)", (key, _dumps(value), time.time()))

    # --- model outputs (see ssbm_bench.model_cache) ----------------------
    def get_model_outputs(self, keys) -> dict[str, tuple[str, Any]]:
        return read_model_outputs(self.conn, keys)

    def put_model_outputs(self, entries) -> int:
        """Store (key, kind, value) entries in one transaction; a key already there is kept. Returns how many
        were new."""
        return self.put_cell_extras([], entries)

    # --- what each cell key was made of -----------------------------------
    def put_cell_extras(self, fields_items, model_outputs) -> int:
        """A finished cell's key fields and the model outputs it learnt, in one transaction; returns how many
        outputs were new to the store (a key already stored is kept)."""
        fields_rows = [(k, _dumps(f)) for k, f in fields_items]
        output_rows = [(k, kind, _dumps(v), time.time()) for k, kind, v in model_outputs]
        added = 0
        if fields_rows or output_rows:
            with self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO cell_fields VALUES (?,?)", fields_rows)
                before = self.conn.total_changes
                self.conn.executemany("INSERT OR IGNORE INTO model_outputs VALUES (?,?,?,?)", output_rows)
                added = self.conn.total_changes - before
        return added

    def cell_fields(self, keys) -> dict[str, dict]:
        """{key: the fields the key is a digest of} for the keys whose fields were recorded."""
        keys = list(keys)
        out: dict[str, dict] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            sql = f"SELECT key, fields FROM cell_fields WHERE key IN ({','.join('?' * len(part))})"
            out.update((k, json.loads(f)) for k, f in self.conn.execute(sql, part).fetchall())
        return out

    def suite_cells(self, suite: str) -> list[dict]:
        """The identity of every stored cell of a suite, with its key fields where they were recorded."""
        sql = ("SELECT c.key, c.board, c.model, c.method, c.fill, c.utterance, c.target, c.seed, c.corpus_digest,"
               " c.params, c.versions, f.fields FROM cells c LEFT JOIN cell_fields f ON f.key = c.key"
               " WHERE c.suite = ?")
        out = []
        for r in self.conn.execute(sql, (suite,)):
            out.append({"key": r[0], "board": r[1], "model": r[2], "method": r[3], "fill": r[4], "utterance": r[5],
                        "target": r[6], "seed": r[7], "corpus_digest": r[8], "params": json.loads(r[9]),
                        "versions": json.loads(r[10]), "fields": json.loads(r[11]) if r[11] else None})
        return out

    # --- cells ------------------------------------------------------------
    def has_cell(self, key: str) -> bool:
        return self.conn.execute("SELECT 1 FROM cells WHERE key=?", (key,)).fetchone() is not None

    def finished_keys(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT key FROM cells")}

    def put_cell(self, row: CellRow) -> None:
        """Write one finished cell atomically (all of it, or nothing)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row.key, row.board, row.suite, row.suite_digest, row.corpus, row.corpus_digest,
                    row.model, row.method, row.fill, row.utterance, row.target, row.seed, row.status,
                    row.reason, None if row.result is None else _dumps(row.result),
                    None if row.raw is None else _dumps(row.raw), _dumps(row.params), _dumps(row.versions),
                    row.seconds, time.time(),
                ),
            )

    # --- what each run planned ------------------------------------------------
    def record_plan(self, run_id: int, keys) -> None:
        """The cell keys a run planned (its suite as it is now), in one transaction."""
        with self.conn:
            self.conn.executemany("INSERT OR IGNORE INTO run_plans VALUES (?,?)", ((run_id, k) for k in keys))
            # a plan with no cells is still a plan: remembered by an empty marker row
            self.conn.execute("INSERT OR IGNORE INTO run_plans VALUES (?,?)", (run_id, ""))

    def current_plans(self) -> dict[str, tuple[str, set[str]]]:
        """{suite: (suite digest, keys) of its latest run that recorded a plan}; suites without one are absent."""
        latest = self.conn.execute(
            "SELECT r.suite, r.suite_digest, r.run_id FROM runs r WHERE r.run_id = (SELECT MAX(q.run_id) FROM runs q "
            "WHERE q.suite = r.suite AND EXISTS (SELECT 1 FROM run_plans p WHERE p.run_id = q.run_id))").fetchall()
        plans: dict[str, tuple[str, set[str]]] = {}
        for suite, digest, run_id in latest:
            plans[suite] = (digest, {k for (k,) in self.conn.execute("SELECT key FROM run_plans WHERE run_id=?",
                                                                       (run_id,)) if k})
        return plans

    def cells(self, board: str | None = None, status: str | None = None,
              every_version: bool = False) -> Iterator[CellRow]:
        """The cells of the store, in a stable order. By default only the cells each suite's latest plan holds
        (see the module docstring), each under that plan's suite digest: a cell the plan reused from an
        earlier version of the suite (same key, same computation) counts with the cells computed for it.
        `every_version` gives every stored cell as stored."""
        plans = {} if every_version else self.current_plans()
        for row in self._cells(board, status):
            plan = plans.get(row.suite)
            if plan is None:
                yield row
            elif row.key in plan[1]:
                yield row if row.suite_digest == plan[0] else replace(row, suite_digest=plan[0])

    def _cells(self, board: str | None, status: str | None) -> Iterator[CellRow]:
        sql = ("SELECT key, board, suite, suite_digest, corpus, corpus_digest, model, method, fill, utterance,"
               " target, seed, status, reason, result, raw, params, versions, seconds FROM cells")
        cond, args = [], []
        if board:
            cond.append("board=?")
            args.append(board)
        if status:
            cond.append("status=?")
            args.append(status)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY suite, model, method, fill, utterance, target, seed"
        for r in self.conn.execute(sql, args):
            yield CellRow(
                *r[:14],
                result=json.loads(r[14]) if r[14] else None,
                raw=json.loads(r[15]) if r[15] else None,
                params=json.loads(r[16]),
                versions=json.loads(r[17]),
                seconds=r[18],
            )

    def count_cells(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0])


#: raw fields that record how long or by which path a cell ran, not what it found
TIMING_FIELDS = ("explain_seconds", "map_reused")


def comparable_raw(db: str | Path) -> dict[str, tuple[str, dict]]:
    """{cell key: (status, raw outputs without timing fields)} of a store: what must be equal when the same
    suite runs on another executor, with or without the model-output cache, or on another machine."""
    conn = sqlite3.connect(db)
    try:
        out = {}
        for key, status, raw in conn.execute("SELECT key, status, raw FROM cells"):
            d = json.loads(raw) if raw else {}
            for k in TIMING_FIELDS:
                d.pop(k, None)
            out[key] = (status, d)
        return out
    finally:
        conn.close()
