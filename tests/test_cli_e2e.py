"""End to end: the real CLI, a real recogniser (pocketsphinx), real audio.

One small suite runs once per module (two fully recognised synthetic
utterances, one target word each, two thresholds); the tests read what it
stored and check resume, formats, and the errors a user would meet.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

import pytest

from e2e_helpers import BIN, WHISPER_RECOGNISED, cli, leaderboard_json, write_suite


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    suite = write_suite(d / "tiny.toml", "tiny", ["energy", "random"])
    db = d / "tiny.sqlite"
    first = cli("run", str(suite), "--db", str(db), "--no-progress")
    return suite, db, first


def test_run_stores_cells_and_ranks_methods(finished_run):
    suite, db, first = finished_run
    assert "4 cells planned, 0 already in" in first.stderr
    assert "4 computed (0 skipped, 0 errors)" in first.stdout
    rows = leaderboard_json(db)
    assert {r["method"] for r in rows} == {"energy", "random"}
    for r in rows:
        assert r["board"] == "ssbm" and r["model"] == "pocketsphinx" and r["fill"] == "white-noise"
        assert r["corpus"] == "synthetic" and r["n"] == 2 and r["suite"] == "tiny"
        assert r["versions"]["plugins"]["model:pocketsphinx"].startswith("ssbm-bench==")
        assert r["score"] is not None and r["ci_low"] <= r["score"] <= r["ci_high"]
        assert r["noise_level_db"] in (-20.0, -10.0, 0.0)


def test_rerun_resumes_without_recomputing(finished_run):
    suite, db, _ = finished_run
    again = cli("run", str(suite), "--db", str(db), "--no-progress")
    assert "4 found in the store, 0 computed" in again.stdout
    assert "0 model calls" in again.stdout  # clean transcripts and calibration come from the store too


def test_markdown_and_csv(finished_run):
    _, db, _ = finished_run
    md = cli("leaderboard", "--db", str(db)).stdout
    assert "| rank | method | fill | SSBM | 95% CI |" in md and "energy" in md
    csv_text = cli("leaderboard", "--db", str(db), "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith("board,suite,suite_digest,corpus")


def test_unknown_plugin_is_named_with_known_ones(tmp_path):
    suite = write_suite(tmp_path / "bad.toml", "bad", ["enrgy"])
    proc = cli("run", str(suite), "--db", str(tmp_path / "x.sqlite"), check=False)
    assert proc.returncode == 2
    assert "unknown method 'enrgy'" in proc.stderr and "energy" in proc.stderr and "random" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_suite_typo_is_reported_and_store_untouched(finished_run, tmp_path):
    _, db, _ = finished_run
    before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    bad = tmp_path / "typo.toml"
    bad.write_text(write_suite(tmp_path / "t.toml", "tiny", ["energy"]).read_text().replace("utterances", "utterance"))
    proc = cli("run", str(bad), "--db", str(db), check=False)
    assert proc.returncode == 2 and "unknown key 'utterance'" in proc.stderr
    assert "did you mean 'utterances'" in proc.stderr
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM cells").fetchone()[0] == before


def test_missing_store_is_explained(tmp_path):
    proc = cli("leaderboard", "--db", str(tmp_path / "none.sqlite"), check=False)
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_kill_mid_run_keeps_finished_cells(tmp_path):
    """SIGKILL a real run after its first cell lands; the rerun computes only the rest."""
    suite = write_suite(tmp_path / "kill.toml", "kill", ["random"], limit=3)
    db = tmp_path / "kill.sqlite"
    proc = subprocess.Popen([str(BIN), "run", str(suite), "--db", str(db), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    done_before: dict = {}
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                done_before = dict(sqlite3.connect(db).execute("SELECT key, created FROM cells").fetchall())
            except sqlite3.OperationalError:
                done_before = {}
            if done_before:
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done_before, "the run never stored a cell"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done_now = dict(conn.execute("SELECT key, created FROM cells").fetchall())
    conn.close()
    rerun = cli("run", str(suite), "--db", str(db), "--no-progress")
    assert f"{len(done_now)} found in the store" in rerun.stdout
    final = dict(sqlite3.connect(db).execute("SELECT key, created FROM cells").fetchall())
    assert len(final) == 3
    for key, created in done_now.items():
        assert final[key] == created  # finished cells were kept, not recomputed


def stored_raw(db) -> dict:
    conn = sqlite3.connect(db)
    out = {}
    for key, raw in conn.execute("SELECT key, raw FROM cells"):
        d = json.loads(raw)
        d.pop("explain_seconds")  # timing, the one thing allowed to differ
        out[key] = d
    return out


def test_process_pool_gives_the_same_results(finished_run, tmp_path):
    suite, db, _ = finished_run
    pooled_suite = tmp_path / "tiny.toml"
    pooled_suite.write_text(suite.read_text().replace('executor = "inprocess"',
                                                      'executor = "process-pool"\nexecutor_params = { workers = 2 }'))
    pooled_db = tmp_path / "pooled.sqlite"
    cli("run", str(pooled_suite), "--db", str(pooled_db), "--no-progress")
    assert stored_raw(pooled_db) == stored_raw(db)


def test_whisper_runs_through_the_harness(tmp_path):
    """The quick suite's second recogniser, end to end: Whisper tiny.en
    (CTranslate2 decoding) calibrates its own, much louder, noise level and
    scores energy on a real utterance."""
    suite = write_suite(tmp_path / "whisper.toml", "whisper-tiny", ["energy"], limit=1, model="whisper-tiny-en",
                        utterances=WHISPER_RECOGNISED, levels_db=(0.0, 10.0, 20.0))
    db = tmp_path / "whisper.sqlite"
    run = cli("run", str(suite), "--db", str(db), "--no-progress")
    assert "2 cells planned" not in run.stderr and "1 computed (0 skipped, 0 errors)" in run.stdout
    assert "[whisper-tiny-en] 1 of 1 scanned utterances recognised fully" in run.stderr
    (row,) = leaderboard_json(db)
    assert row["model"] == "whisper-tiny-en" and row["method"] == "energy" and row["n"] == 1
    # Whisper shrugs off noise that silences pocketsphinx (-20 dB there)
    assert row["noise_level_db"] in (0.0, 10.0, 20.0)
    with sqlite3.connect(db) as con:
        raw = json.loads(con.execute("select raw from cells").fetchone()[0])
    lerf = [t["lerf"] for t in raw["thresholds"]]
    assert all(0.0 <= t["e"] <= 1.0 for t in lerf) and len(lerf) == 2
