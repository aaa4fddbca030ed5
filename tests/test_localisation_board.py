"""The `localisation` board: a fifth board written as one plugin file (plugins/localisation_board.py),
registered through the entry-point group and reached only through the Board protocol.

Known answers for the measure, invariants as properties, then the real CLI end to end: `run`, `leaderboard`,
`submit`, `leaderboard add --verify` (localisation cells re-run here) and `publish`, on pocketsphinx and real
synthetic speech.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e2e_helpers import RECOGNISED, cli
from ssbm_bench.types import SaliencyMap
from ssbm_bench_plugins.localisation_board import importance, localise


def test_known_answer_mass_and_top_k():
    # 2 frequencies x 4 frames; the word spans frames 1..2 (half the utterance)
    values = np.array([[0.0, 3.0, 1.0, 0.0],
                       [1.0, 0.0, 0.0, -5.0]])
    got = localise(values, (1, 3), seed=0)
    # positive mass 5, of which 4 (3 + 1) inside the span
    assert got["mass_in"] == pytest.approx(0.8)
    assert got["span_share"] == 0.5 and got["points_in_span"] == 4
    # the 4 most important points: 3.0 (in), 1.0 (in), 1.0 (out) and one of the zeros (3 of 5 zeros are inside)
    assert got["topk_in"] in (0.5, 0.75)


def test_no_positive_mass_is_not_scored():
    got = localise(-np.ones((3, 5)), (0, 2), seed=1)
    assert got["mass_in"] is None and got["span_share"] == pytest.approx(0.4)


def test_a_bare_pvalue_map_is_turned_round():
    p = np.array([[0.01, 0.5], [0.9, 1.0]])
    assert importance(SaliencyMap(p, kind="pvalue")) == pytest.approx(1 - p)
    corr = np.array([[0.3, -0.1], [0.0, 0.2]])
    assert importance(SaliencyMap(corr, kind="pvalue", pvalues=np.full((2, 2), 0.5))) == pytest.approx(corr)


def test_a_span_outside_the_map_is_refused():
    with pytest.raises(ValueError, match="outside the map's 4 frames"):
        localise(np.ones((2, 4)), (3, 6), seed=0)


maps = st.integers(2, 6).flatmap(lambda f: st.integers(3, 12).flatmap(lambda t: st.tuples(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=f * t, max_size=f * t).map(
        lambda v, f=f, t=t: np.array(v).reshape(f, t)),
    st.integers(0, t - 1).flatmap(lambda a, t=t: st.tuples(st.just(a), st.integers(a + 1, t))))))


@settings(max_examples=200, deadline=None)
@given(maps, st.floats(0.1, 100))
def test_shares_are_shares_and_scale_free(case, scale):
    values, span = case
    got = localise(values, span, seed=3)
    assert 0.0 <= got["topk_in"] <= 1.0
    assert got["span_share"] == pytest.approx((span[1] - span[0]) / values.shape[1])
    if got["mass_in"] is not None:
        assert 0.0 <= got["mass_in"] <= 1.0 + 1e-12
        # positive rescaling moves no mass
        assert localise(values * scale, span, seed=3)["mass_in"] == pytest.approx(got["mass_in"])


@settings(max_examples=100, deadline=None)
@given(maps)
def test_all_mass_inside_the_span_scores_one(case):
    values, (a, b) = case
    planted = np.zeros_like(values)
    planted[:, a:b] = np.abs(values[:, a:b]) + 1.0
    assert localise(planted, (a, b), seed=0)["mass_in"] == pytest.approx(1.0)
    assert localise(planted, (a, b), seed=0)["topk_in"] == pytest.approx(1.0)


def test_a_constant_map_is_at_chance_on_average():
    """Ties are broken at random: the top-k of a map without information lands inside in proportion."""
    shares = [localise(np.ones((4, 20)), (5, 10), seed=s)["topk_in"] for s in range(200)]
    assert np.mean(shares) == pytest.approx(0.25, abs=0.03)


SUITE = """
[suite]
name = "localisation-tiny"
description = "end-to-end test of the localisation board: two utterances, one word each"
boards = ["localisation"]
[corpus]
name = "synthetic"
utterances = {utterances}
words_per_utterance = 1
[[models]]
name = "pocketsphinx"
[[methods]]
name = "energy"
[[methods]]
name = "random"
[ssbm]
calibration = {{ levels_db = [-20.0, 0.0], max_accuracy = 0.1, utterances = 1 }}
"""


@pytest.fixture(scope="module")
def localisation_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("localisation")
    suites = d / "lb" / "suites"
    suites.mkdir(parents=True)
    suite = suites / "localisation-tiny.toml"
    suite.write_text(SUITE.format(utterances=json.dumps(RECOGNISED[:2])))
    db = d / "loc.sqlite"
    run = cli("run", str(suite), "--db", str(db), "--no-progress")
    return d, suite, db, run


def test_the_board_is_listed_as_a_plugin():
    out = cli("plugins").stdout
    assert "boards:" in out and "localisation" in out
    listed = json.loads(cli("plugins", "--json").stdout)
    assert {"kind": "board", "name": "localisation"}.items() <= next(
        p for p in listed["plugins"] if p["name"] == "localisation").items()


def test_run_and_leaderboard(localisation_run):
    d, suite, db, run = localisation_run
    assert "4 computed (0 skipped, 0 errors)" in run.stdout
    rows = json.loads(cli("leaderboard", "--db", str(db), "--board", "localisation", "--format", "json").stdout)
    assert {r["method"] for r in rows} == {"energy", "random"}
    for r in rows:
        assert r["board"] == "localisation" and r["n"] == 2 and r["n_utterances"] == 2
        assert 0 < r["span_share"] < 1 and 0 <= r["mass_in"] <= 1
        assert r["score"] == pytest.approx(r["mass_in"] - r["span_share"])
    md = cli("leaderboard", "--db", str(db), "--board", "localisation").stdout
    assert "### Localisation — suite `localisation-tiny`" in md and "| energy |" in md
    csv_text = cli("leaderboard", "--db", str(db), "--board", "localisation", "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith("board,suite,suite_digest,corpus,corpus_digest,model,method,fill,rank")
    figs = cli("leaderboard", "--db", str(db), "--board", "localisation", "--figures", str(d / "figs"))
    assert "wrote 1 figure(s)" in figs.stderr and any((d / "figs").glob("*--localisation.png"))
    again = cli("run", str(suite), "--db", str(db), "--no-progress")
    assert "4 found in the store, 0 computed" in again.stdout


def test_submit_verify_and_publish(localisation_run, tmp_path):
    d, suite, db, _ = localisation_run
    sub = tmp_path / "loc.json"
    out = cli("submit", "--db", str(db), "--out", str(sub), "--submitter", "loc-lab")
    assert "2 localisation rows" in out.stdout
    doc = json.loads(sub.read_text())
    assert doc["schema_version"] == 3 and set(doc["leaderboard"]) == {"localisation"}
    lb = tmp_path / "lb"
    shutil.copytree(suite.parent, lb / "suites")
    added = cli("leaderboard", "add", str(sub), "--dir", str(lb), "--verify", "2", "--seed", "0")
    assert "re-ran 2 random cell(s) of the 4 re-runnable ones" in added.stdout
    assert "verify 1/2: localisation / pocketsphinx" in added.stderr
    # a forged mass is caught by re-scoring: the rows must be what the cells give
    forged = json.loads(sub.read_text())
    i = next(i for i, c in enumerate(forged["cells"]) if c["method"] == "random")
    forged["cells"][i]["raw"]["mass_in"] = 1.0
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged))
    refused = cli("leaderboard", "add", str(bad), "--dir", str(lb), "--dry-run", check=False)
    assert refused.returncode == 2 and "re-scored from its cells" in refused.stderr
    # a cell whose span does not fit its map is refused by the board's own check
    forged["cells"][i]["raw"]["span"] = [0, 10 ** 6]
    bad.write_text(json.dumps(forged))
    refused = cli("leaderboard", "add", str(bad), "--dir", str(lb), "--dry-run", check=False)
    assert refused.returncode == 2 and "raw.span" in refused.stderr
    # a key altered, or a cell moved to another utterance, is caught by re-hashing its fields
    for edit, message in ((lambda c: c.update(key="0" * 64), ".key: 0000000000000000... is not the SHA-256"),
                          (lambda c: c.update(utterance=RECOGNISED[2]), ".fields.utterance: ")):
        moved = json.loads(sub.read_text())
        edit(moved["cells"][i])
        bad.write_text(json.dumps(moved))
        refused = cli("leaderboard", "add", str(bad), "--dir", str(lb), "--dry-run", check=False)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    cli("leaderboard", "publish", "--out", str(lb), "--dir", str(lb))
    readme = (lb / "README.md").read_text()
    assert "## Localisation — suite `localisation-tiny`" in readme and "loc-lab" in readme
    assert "verification: re-ran 2 random cell(s) of the 4 re-runnable ones" in readme  # what was checked, shown
    assert "Localisation — suite localisation-tiny" in (lb / "index.html").read_text()
    assert any((lb / "figures").glob("*--localisation.png"))
