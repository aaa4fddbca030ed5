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
