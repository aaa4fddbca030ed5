"""The store's ``model_outputs`` table, read: the query both readers share, and a read-only view for workers.

The model-output cache (:mod:`ssbm_bench.model_cache`) keeps what models
answered in this table of the results store. Only the harness's one writer
(:mod:`ssbm_bench.harness.store`) writes it; executor workers read it through
:class:`ReadOnlyStore`. Neither reader depends on the harness.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

#: keys per SELECT ... IN (...) (SQLite's variable limit is 999 in old builds)
_IN_CHUNK = 500


def read_model_outputs(conn: sqlite3.Connection, keys) -> dict[str, tuple[str, Any]]:
    keys = list(keys)
    out: dict[str, tuple[str, Any]] = {}
    for i in range(0, len(keys), _IN_CHUNK):
        part = keys[i:i + _IN_CHUNK]
        sql = f"SELECT key, kind, value FROM model_outputs WHERE key IN ({','.join('?' * len(part))})"
        for k, kind, value in conn.execute(sql, part).fetchall():
            out[k] = (kind, json.loads(value))
    return out


class ReadOnlyStore:
    """A read-only view of a store's model outputs, for executor workers.

    Opened on first use with SQLite's read-only mode, so a worker can never
    write (the harness's one writer does); in WAL mode the writer's commits
    become visible to later reads. A store that cannot be opened (a worker
    on another machine, where the path does not exist) reads as empty: the
    worker then evaluates, and its new entries still reach the writer.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self.failed: str | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and self.failed is None:
            if not self.path.is_file():
                self.failed = f"results store {self.path} is not on this machine"
                return None
            try:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0,
                                       check_same_thread=False)
                conn.execute("SELECT 1 FROM model_outputs LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                self.failed = f"results store {self.path}: {exc}"
                return None
            self._conn = conn
        return self._conn

    def get_model_outputs(self, keys) -> dict[str, tuple[str, Any]]:
        conn = self._connect()
        return {} if conn is None else read_model_outputs(conn, keys)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
