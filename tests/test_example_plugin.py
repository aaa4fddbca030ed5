"""The example outside plugin, installed and run exactly as a contributor would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e_helpers import cli, installed, leaderboard_json, write_suite

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ssbm-bench-example-plugin"


@pytest.fixture(scope="module")
def installed_example():
    with installed(EXAMPLE, "ssbm-bench-example-plugin"):
        yield


def test_example_plugin_is_listed(installed_example):
    data = json.loads(cli("plugins", "--json").stdout)
    entry = next(p for p in data["plugins"] if p["name"] == "word-span")
    assert entry["kind"] == "method" and entry["distribution"] == "ssbm-bench-example-plugin"
    assert not data["failures"]


def test_example_plugin_runs_through_the_harness(installed_example, tmp_path):
    suite = write_suite(tmp_path / "ex.toml", "example", ["word-span", "random"], limit=1)
    db = tmp_path / "ex.sqlite"
    cli("run", str(suite), "--db", str(db), "--no-progress")
    rows = {r["method"]: r for r in leaderboard_json(db)}
    assert set(rows) == {"word-span", "random"}
    assert rows["word-span"]["n"] == 1 and rows["word-span"]["score"] is not None
    assert rows["word-span"]["versions"]["plugins"]["method:word-span"] == "ssbm-bench-example-plugin==0.1.0"


def test_a_new_method_joins_a_known_suites_board(installed_example, tmp_path):
    """The outsider's path: run a known suite with your method added, submit, and the maintainer's `add`
    accepts it when the suite's own cells are the board's (re-running every cell of the new method); the
    published table ranks it with the board's methods, each once. A base cell changed on the way is refused."""
    import copy

    from submission_helpers import leaderboard_of

    lb = tmp_path / "maintainers"
    (lb / "suites").mkdir(parents=True)
    base = write_suite(lb / "suites" / "joined.toml", "joined", ["energy", "random"], limit=1)
    cli("run", str(base), "--db", str(tmp_path / "board.sqlite"), "--no-progress")
    cli("submit", "--db", str(tmp_path / "board.sqlite"), "--out", str(tmp_path / "board.json"))
    cli("leaderboard", "add", str(tmp_path / "board.json"), "--dir", str(lb), "--verify", "0")

    # the contributor: the known suite, one [[methods]] entry added after its own
    mine = tmp_path / "joined-with-word-span.toml"
    mine.write_text(base.read_text() + '\n[[methods]]\nname = "word-span"\n')
    cli("run", str(mine), "--db", str(tmp_path / "mine.sqlite"), "--no-progress")
    cli("submit", "--db", str(tmp_path / "mine.sqlite"), "--out", str(tmp_path / "mine.json"), "--submitter",
        "outsider")
    doc = json.loads((tmp_path / "mine.json").read_text())

    forged = copy.deepcopy(doc)
    cell = next(c for c in forged["cells"] if c["method"] == "energy")
    cell["raw"]["thresholds"][0]["lerf"]["a_o"] = 0.5 * cell["raw"]["thresholds"][0]["lerf"]["a_o"] + 0.25
    forged["leaderboard"] = leaderboard_of(forged)
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    refused = cli("leaderboard", "add", str(tmp_path / "forged.json"), "--dir", str(lb), check=False)
    assert refused.returncode == 2 and "differs from the accepted cell with the same key" in refused.stderr

    added = cli("leaderboard", "add", str(tmp_path / "mine.json"), "--dir", str(lb))
    assert "extends suite 'joined' with method(s) word-span" in added.stdout
    assert "the suite's own cells are those on the board" in added.stdout
    assert "every cell of the 1 method(s) new to the board (ssbm:word-span)" in added.stdout

    cli("leaderboard", "publish", "--out", str(lb), "--no-figures")
    (table,) = json.loads((lb / "leaderboard.json").read_text())["tables"]
    assert sorted(r["method"] for r in table["rows"]) == ["energy", "random", "word-span"]
    assert next(r for r in table["rows"] if r["method"] == "word-span")["source"].startswith("outsider (")
