"""Stability end to end (silero-vad, SoundLIME, ground-truth excerpts, real
fills through the CLI) and the board's arithmetic on hand-made rows."""

from __future__ import annotations

import json

import pytest

from e2e_helpers import cli
from ssbm_bench.errors import SuiteError
from ssbm_bench.harness.store import CellRow
from ssbm_bench.harness.suite import parse_suite
from ssbm_bench_plugins.boards.stability import stability_rows

SUITE = """
[suite]
name = "stability-tiny"
boards = ["stability"]
[stability]
excerpts = 2
n_samples = [20]
runs = 2
fills = ["zero", "mean_inp"]
"""


def cell(fill, utt, weights, segments="0,1,2", n_s=50):
    return CellRow(key=f"{fill}{utt}", board="stability", suite="s", suite_digest="d", corpus="c", corpus_digest="cd",
                   model="silero-vad", method="soundlime-temporal", fill=fill, utterance=utt, target="class:1:speech",
                   seed=0, status="ok", reason=None, result=None,
                   raw={"weights": weights, "n_samples": n_s, "speech_segments": segments},
                   params={"n_samples": n_s, "reference_fill": "zero"}, versions={}, seconds=2.0)


def test_board_arithmetic_hand_worked():
    a = [9, 8, 7, 0, 0, 0, 0, 0, 0, 0]       # top-3 {0, 1, 2}
    b = [9, 8, 0, 7, 0, 0, 0, 0, 0, 0]       # {0, 1, 3}
    c = [0, 0, 0, 9, 8, 7, 0, 0, 0, 0]       # {3, 4, 5}
    rows = stability_rows([
        cell("zero", "e1", [a, a]),           # U_n 3, full match x2
        cell("zero", "e2", [a, b]),           # U_n 4, full + two-of-three
        cell("mean_inp", "e1", [b, c]),       # U_n |{0,1,3,4,5}| = 5; N_ce vs zero's seed-0 run a: |{0,1,3} & {0,1,2}| = 2
        cell("mean_inp", "e2", [c, c]),       # U_n 3; N_ce |{3,4,5} & {0,1,2}| = 0; no match
    ])
    zero = next(r for r in rows if r.fill == "zero")
    mean = next(r for r in rows if r.fill == "mean_inp")
    assert zero.score == pytest.approx(3.5) and mean.score == pytest.approx(4.0)
    assert zero.rank == 1 and mean.rank == 2  # lower U_n is more stable
    assert zero.n_ce == 3.0 and mean.n_ce == pytest.approx(1.0)
    assert zero.full_match == pytest.approx(0.75) and zero.at_least_two == 1.0
    assert mean.full_match == 0.0 and mean.at_least_two == pytest.approx(0.25)
    assert zero.seconds_per_run == pytest.approx(1.0)


@pytest.mark.parametrize("change, message", [
    ({"runs": 1}, "at least 2"), ({"n_samples": []}, "n_samples"),
    ({"reference_fill": "min_data"}, "not one of the fills"), ({"exerpts": 2}, "did you mean 'excerpts'"),
])
def test_bad_stability_sections_are_named(change, message):
    import tomllib

    doc = tomllib.loads(SUITE)
    doc["stability"].update(change)
    with pytest.raises(SuiteError, match=message):
        parse_suite(doc)


def test_stability_suite_runs_through_the_cli(tmp_path):
    suite = tmp_path / "st.toml"
    suite.write_text(SUITE)
    db = tmp_path / "st.sqlite"
    run = cli("run", str(suite), "--db", str(db), "--no-progress")
    assert "4 computed (0 skipped, 0 errors)" in run.stdout, run.stdout + run.stderr
    rows = json.loads(cli("leaderboard", "--db", str(db), "--board", "stability", "--format", "json").stdout)
    assert {r["fill"] for r in rows} == {"zero", "mean_inp"}
    for r in rows:
        assert r["model"] == "silero-vad" and r["method"] == "soundlime-temporal" and r["n"] == 2
        assert 3.0 <= r["score"] <= 6.0 and r["runs"] == 2 and r["n_samples"] == 20
        assert 0.0 <= r["at_least_two"] <= 1.0
    assert next(r for r in rows if r["fill"] == "zero")["n_ce"] == 3.0
    md = cli("leaderboard", "--db", str(db), "--board", "stability").stdout
    assert "### Stability" in md and "U_n" in md
    # the SoundLIME paper's Figs. 3/5: U_n against N_s per fill, one PNG per (suite, model, method)
    out = cli("leaderboard", "--db", str(db), "--board", "stability", "--figures", str(tmp_path / "fig"))
    assert "wrote 1 figure(s)" in out.stdout + out.stderr
    (png,) = (tmp_path / "fig").glob("*--stability.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # the published leaderboard carries the board from the store, with its figure
    site = tmp_path / "site"
    (tmp_path / "lb").mkdir()
    cli("leaderboard", "publish", "--out", str(site), "--dir", str(tmp_path / "lb"), "--db", str(db))
    readme = (site / "README.md").read_text()
    assert "## Stability — suite `stability-tiny`" in readme and "N_s = 20" in readme
    assert "ground truth: full match" in readme
    assert any(p.name.endswith("--stability.png") for p in (site / "figures").glob("*.png"))
    assert "--stability.png" in (site / "index.html").read_text()


def test_boards_read_the_latest_plan_of_a_suite(tmp_path):
    """Cells that only an earlier version of a suite planned stay in the store (a rerun of that version finds
    them) but leave the board: the rows follow the suite as it is now."""
    from ssbm_bench.harness.store import ResultStore

    suite = tmp_path / "st.toml"
    db = tmp_path / "st.sqlite"
    suite.write_text(SUITE)
    cli("run", str(suite), "--db", str(db), "--no-progress")

    def fills():
        rows = json.loads(cli("leaderboard", "--db", str(db), "--board", "stability", "--format", "json").stdout)
        return sorted(r["fill"] for r in rows)

    assert fills() == ["mean_inp", "zero"]
    suite.write_text(SUITE.replace('fills = ["zero", "mean_inp"]', 'fills = ["zero"]'))
    run = cli("run", str(suite), "--db", str(db), "--no-progress")
    assert "0 computed" in run.stdout
    assert fills() == ["zero"]
    with ResultStore(db) as store:
        assert {c.fill for c in store.cells(every_version=True)} == {"zero", "mean_inp"}
        assert {c.fill for c in store.cells()} == {"zero"}
    suite.write_text(SUITE)
    run = cli("run", str(suite), "--db", str(db), "--no-progress")
    assert "4 found in the store, 0 computed" in run.stdout
    assert fills() == ["mean_inp", "zero"]
    # growing the suite reuses its cells (stored under the older digest) beside the new ones: one row each
    suite.write_text(SUITE.replace("excerpts = 2", "excerpts = 3"))
    run = cli("run", str(suite), "--db", str(db), "--no-progress")
    assert "4 found in the store, 2 computed" in run.stdout
    rows = json.loads(cli("leaderboard", "--db", str(db), "--board", "stability", "--format", "json").stdout)
    assert sorted((r["fill"], r["n"]) for r in rows) == [("mean_inp", 3), ("zero", 3)]
    assert len({r["suite_digest"] for r in rows}) == 1
