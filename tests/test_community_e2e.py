"""End to end: a real run is submitted from one checkout's store, added to
another leaderboards folder (re-scored, one cell re-run and compared), and
published; the submission appears on the page."""

from __future__ import annotations

import json

from e2e_helpers import cli, write_suite


def test_run_submit_add_verify_publish(tmp_path):
    suite = write_suite(tmp_path / "tiny-community.toml", "tiny-community", ["energy"], limit=1)
    db = tmp_path / "run.sqlite"
    cli("run", str(suite), "--db", str(db), "--no-progress")

    out = cli("submit", "--db", str(db), "--out", str(tmp_path / "sub.json"), "--submitter", "e2e")
    assert "1 cells on 1 corpus(es), 1 ssbm row" in out.stdout
    doc = json.loads((tmp_path / "sub.json").read_text())
    assert doc["schema"] == "ssbm-bench-submission" and doc["schema_version"] == 3
    assert [e["label"] for e in doc["corpora"]] == ["synthetic"] and doc["cells"][0]["corpus"] == "synthetic"
    assert doc["cells"][0]["raw"]["thresholds"][0]["lerf"]["hyp"]  # raw outputs travel, enough to re-score

    # the maintainers' checkout: it knows the suite, nothing else of the run
    lb = tmp_path / "maintainers" / "leaderboards"
    (lb / "suites").mkdir(parents=True)
    (lb / "suites" / suite.name).write_text(suite.read_text())
    added = cli("leaderboard", "add", str(tmp_path / "sub.json"), "--dir", str(lb), "--verify", "1", "--seed", "0")
    assert "re-scored and matching" in added.stdout and "re-ran 1 random cell(s) of the 1 re-runnable ones" in added.stdout
    (stored,) = (lb / "submissions").glob("tiny-community--*.json")

    cli("leaderboard", "publish", "--out", str(lb), "--no-figures")
    readme = (lb / "README.md").read_text()
    assert "suite `tiny-community`" in readme and f"e2e ({stored.name})" in readme
    page = (lb / "index.html").read_text()
    assert "tiny-community" in page and "<th data-type=\"number\" class=\"num\">score</th>" in page

    # a cell's outcome changed after the fact is caught by the re-score
    for entry in doc["cells"][0]["raw"]["thresholds"]:
        entry["lerf"]["a_w"], entry["morf"]["a_w"] = 1.0 - entry["lerf"]["a_w"], 1.0 - entry["morf"]["a_w"]
    (tmp_path / "forged.json").write_text(json.dumps(doc))
    refused = cli("leaderboard", "add", str(tmp_path / "forged.json"), "--dir", str(lb), check=False)
    assert refused.returncode == 2 and "re-scored from its cells" in refused.stderr
