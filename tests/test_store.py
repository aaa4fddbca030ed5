"""The SQLite store: atomic cells, survival of a hard kill, clear errors."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from ssbm_bench.errors import InputError
from ssbm_bench.harness.store import CellRow, ResultStore


def row(key: str, status: str = "ok") -> CellRow:
    return CellRow(key=key, board="ssbm", suite="s", suite_digest="d", corpus="c", corpus_digest="cd", model="m",
                   method="x", fill="f", utterance="u", target="word:0:a", seed=0, status=status, reason=None,
                   result=None, raw={"thresholds": [{"threshold": 0.5}]}, params={}, versions={"ssbm-bench": "t"})


def test_cells_round_trip_and_resume_keys(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as s:
        s.put_cell(row("a"))
        s.put_cell(row("b", "skipped"))
    with ResultStore(tmp_path / "r.sqlite") as s:
        assert s.finished_keys() == {"a", "b"}
        got = {c.key: c for c in s.cells()}
        assert got["a"].raw == {"thresholds": [{"threshold": 0.5}]} and got["b"].status == "skipped"
        assert [c.key for c in s.cells(status="ok")] == ["a"]


def test_nan_in_raw_outputs_is_refused_not_stored(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as s:
        bad = row("n")
        bad.raw = {"value": float("nan")}
        with pytest.raises(ValueError):
            s.put_cell(bad)
        assert s.count_cells() == 0


def test_not_a_database_is_named(tmp_path):
    p = tmp_path / "junk.sqlite"
    p.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(InputError, match="junk.sqlite: not a usable SQLite database"):
        ResultStore(p)


def test_clean_and_calibration_are_cached(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as s:
        s.put_clean("mk", "cd", "u1", ["a", "b"], [True, False])
        assert s.get_clean("mk", "cd", "u1") == {"hypothesis": ["a", "b"], "correct": [True, False],
                                                  "all_correct": False}
        assert s.get_clean("mk", "other", "u1") is None
        s.put_calibration("mk", "cd", "white-noise", {"levels": [1]}, 5.0, {"accuracy_by_level": {"5": 0.0}})
        assert s.get_calibration("mk", "cd", "white-noise", {"levels": [1]})["level_db"] == 5.0
        assert s.get_calibration("mk", "cd", "white-noise", {"levels": [2]}) is None


WRITER = textwrap.dedent("""
    import sys
    from ssbm_bench.harness.store import CellRow, ResultStore
    store = ResultStore(sys.argv[1])
    big = {"thresholds": [{"threshold": i, "lerf": {"hyp": "w " * 200}} for i in range(50)]}
    i = 0
    while True:
        store.put_cell(CellRow(key=f"k{i}", board="ssbm", suite="s", suite_digest="d", corpus="c",
            corpus_digest="cd", model="m", method="x", fill="f", utterance="u", target="t", seed=0,
            status="ok", reason=None, result=None, raw=big, params={}, versions={}))
        i += 1
        if i == 20:
            print("ready", flush=True)
""")


def test_hard_kill_mid_write_loses_no_finished_cell(tmp_path):
    """SIGKILL a process that is writing cells as fast as it can; every row
    that is there must be whole, and the database must pass integrity_check."""
    db = tmp_path / "killed.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with ResultStore(db) as s:
        cells = list(s.cells())
        assert len(cells) >= 20
        for c in cells:
            assert len(c.raw["thresholds"]) == 50 and c.raw["thresholds"][-1]["threshold"] == 49
