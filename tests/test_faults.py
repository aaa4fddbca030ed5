"""Faults a user or an attacker brings, each refused by name or survived (the fast cases).

* bad suites: refused before any model is called, naming the key, plugin or parameter;
* forged submissions: a cell copied under another identity, or a grid cell given twice; a real run's
  submission with an utterance dropped for every method, or its noise level changed (keys re-hashed), refused by
  `--verify` when it re-derives the cells the suite implies;
* a killed run: marked as such by the next run, which keeps what it finished;
* a run with failed cells: exits 1 and names them;
* hostile names: inert in the published markdown.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e2e_helpers import cli
from ssbm_bench.errors import SuiteError
from ssbm_bench.harness.runner import run_suite
from ssbm_bench.harness.store import ResultStore
from ssbm_bench.harness.suite import parse_suite
from ssbm_bench.method import SaliencyMethod
from ssbm_bench.submission import SubmissionError, validate_submission
from submission_helpers import good_submission, leaderboard_of, redigest, write_suites

BASE = {"suite": {"name": "t"}, "corpus": {"name": "synthetic"}, "models": [{"name": "pocketsphinx"}],
        "methods": [{"name": "energy"}]}


def suite(**edits) -> dict:
    doc = copy.deepcopy(BASE)
    for path, value in edits.items():
        node = doc
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return doc


PARSE_REFUSALS = [
    ("boards not a list", suite(suite__boards="ssbm"), "suite.boards must be a list of board names"),
    ("no board", suite(suite__boards=[]), "suite.boards is empty"),
    ("a board twice", suite(suite__boards=["ssbm", "ssbm"]), "lists a board twice"),
    ("unknown board", suite(suite__boards=["sssbm"]), "unknown board 'sssbm' (did you mean 'ssbm'?)"),
    ("escaping name", suite(suite__name="../../escaped"), "must be safe as a file name"),
    ("a method twice", suite(methods=[{"name": "energy"}, {"name": "energy"}]), "[[methods]] lists 'energy' twice"),
    ("a model twice", suite(models=[{"name": "pocketsphinx"}] * 2), "[[models]] lists 'pocketsphinx' twice"),
    ("no calibration levels", suite(ssbm__calibration={"levels_db": []}), "levels_db must be a non-empty list"),
    ("NaN threshold", suite(ssbm__thresholds={"magnitude": [math.nan]}), "must be a non-empty list of finite"),
    ("infinite threshold", suite(ssbm__thresholds={"score": [math.inf]}), "must be a non-empty list of finite"),
    ("accuracy out of range", suite(ssbm__calibration={"max_accuracy": 7}), "max_accuracy is a word accuracy"),
    ("zero calibration utterances", suite(ssbm__calibration={"utterances": 0}), "utterances must be at least 1"),
    ("deletion fraction twice", suite(deletion={"fractions": [0.5, 0.5]}), "lists a fraction twice"),
]


@pytest.mark.parametrize("what,doc,message", PARSE_REFUSALS, ids=[p[0] for p in PARSE_REFUSALS])
def test_a_bad_suite_is_refused_by_name(what, doc, message):
    with pytest.raises(SuiteError) as info:
        parse_suite(doc)
    assert message in str(info.value)


PREFLIGHT_REFUSALS = [
    ("misspelt parameter", suite(methods=[{"name": "energy", "params": {"n_melz": 30}}]),
     "method 'energy' has no parameter 'n_melz' (did you mean 'n_mels'?); its parameters: n_mels, preemphasis"),
    ("wrong parameter type", suite(methods=[{"name": "energy", "params": {"n_mels": "thirty"}}]),
     "method 'energy' parameter 'n_mels' must be int, got 'thirty'"),
    ("a value the method refuses", suite(methods=[{"name": "energy", "params": {"n_mels": 0}}]),
     "method 'energy[n_mels=0]': energy: n_mels must be at least 1"),
    ("no workers", suite(run={"executor": "process-pool", "executor_params": {"workers": 0}}),
     "executor 'process-pool[workers=0]': executor process-pool: workers must be at least 1"),
    ("model parameter typo", suite(models=[{"name": "pocketsphinx", "params": {"pad_second": 0.1}}]),
     "model 'pocketsphinx' has no parameter 'pad_second' (did you mean 'pad_seconds'?)"),
    ("unknown fill", suite(fills=[{"name": "pink-noise"}]), "unknown fill 'pink-noise'"),
]


@pytest.mark.parametrize("what,doc,message", PREFLIGHT_REFUSALS, ids=[p[0] for p in PREFLIGHT_REFUSALS])
def test_plugin_settings_are_refused_before_any_model_is_called(tmp_path, what, doc, message):
    db = tmp_path / "never.sqlite"
    with pytest.raises(Exception) as info:
        run_suite(parse_suite(doc), str(db), progress=False, log=lambda s: None)
    assert message in str(info.value)
    assert not db.exists()  # refused before the store was opened: nothing was decoded, calibrated or stored


def test_the_cli_refuses_a_misspelt_parameter_without_a_traceback(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[suite]\nname = "typo"\n[corpus]\nname = "synthetic"\n[[models]]\nname = "pocketsphinx"\n'
                    '[[methods]]\nname = "energy"\nparams = { n_melz = 30 }\n')
    out = cli("run", str(path), "--db", str(tmp_path / "x.sqlite"), check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "did you mean 'n_mels'?" in out.stderr


# --- forged submissions ------------------------------------------------------------------------------------

@pytest.fixture
def suites_dir(tmp_path):
    return write_suites(tmp_path / "suites")


def test_a_cell_copied_under_another_identity_is_refused(suites_dir):
    doc = good_submission()
    ok = [i for i, c in enumerate(doc["cells"]) if c["status"] == "ok"]
    src, dst = ok[0], next(i for i in ok if doc["cells"][i]["method"] == doc["cells"][ok[0]]["method"]
                           and doc["cells"][i]["utterance"] != doc["cells"][ok[0]]["utterance"])
    doc["cells"][dst]["raw"] = copy.deepcopy(doc["cells"][src]["raw"])
    redigest(doc)
    with pytest.raises(SubmissionError, match=rf"cells\[{max(src, dst)}\]\.raw: the same outcome as "
                                              rf"cells\[{min(src, dst)}\]"):
        validate_submission(doc, suites_dir, check_corpus=False)


def test_a_grid_cell_given_twice_under_a_new_key_is_refused(suites_dir):
    doc = good_submission()
    twin = copy.deepcopy(doc["cells"][0])
    twin["key"] = "f" * 64
    twin["raw"]["thresholds"][0]["lerf"]["hyp"] += " again"  # not a byte copy: only the identity repeats
    doc["cells"].append(twin)
    redigest(doc)
    with pytest.raises(SubmissionError, match=r"cells\[\d+\]: a second cell of model 'pocketsphinx', method"):
        validate_submission(doc, suites_dir, check_corpus=False)


def test_cherry_picked_cells_are_refused(suites_dir):
    """Two cells of one method dropped (its worst words, say): the other methods still have them."""
    doc = good_submission()
    method = doc["cells"][0]["method"]
    drop = [i for i, c in enumerate(doc["cells"]) if c["method"] == method][:1]
    doc["cells"] = [c for i, c in enumerate(doc["cells"]) if i not in drop]
    redigest(doc)
    with pytest.raises(SubmissionError, match=rf"the ssbm board is incomplete for model 'pocketsphinx': method "
                                              rf"'{method}', fill 'white-noise', seed 0 lacks 1 of the"):
        validate_submission(doc, suites_dir, check_corpus=False)


def test_the_verification_sample_is_sized_to_catch_a_forgery():
    from ssbm_bench.submission import catch_probability, sample_size

    assert catch_probability(10, 3, 1) == pytest.approx(0.3)            # one forged cell: caught if drawn
    assert catch_probability(4, 2, 2) == pytest.approx(1 - 1 / 6)       # 1 - C(2,2)/C(4,2)
    assert catch_probability(10, 10, 1) == 1.0 and catch_probability(10, 0, 3) == 0.0
    n = sample_size(100, 5, 0.95)
    assert catch_probability(100, n, 5) >= 0.95 > catch_probability(100, n - 1, 5)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_a_larger_sample_never_catches_less(case):
    from ssbm_bench.submission import catch_probability

    n, k, forged = case
    assert catch_probability(n, k, forged) <= catch_probability(n, min(n, k + 1), forged) + 1e-12


def test_auto_verification_reruns_every_cell_of_a_method_new_to_the_board(suites_dir):
    from ssbm_bench.submission import plan_verification, rerunnable

    v = validate_submission(good_submission(), suites_dir, check_corpus=False)
    able = rerunnable(v.doc)
    fresh = plan_verification(v, accepted_methods=set(), catch=5, confidence=0.95)
    assert fresh.indices == sorted(able) and fresh.sampled == 0 and len(fresh.new_methods) == 2
    known = {(c["board"], c["method"]) for c in v.doc["cells"]}
    seen = plan_verification(v, accepted_methods=known, catch=1, confidence=0.5)
    assert not seen.new_methods and seen.sampled == len(seen.indices) == -(-len(able) // 2)
    assert "caught with probability" in seen.describe()


@pytest.fixture(scope="module")
def real_submission(tmp_path_factory):
    """A real run (pocketsphinx, energy and random, two utterances) exported as a maintainer receives it."""
    from e2e_helpers import write_suite

    d = tmp_path_factory.mktemp("implied")
    suite_file = write_suite(d / "implied.toml", "implied", ["energy", "random"], limit=2)
    ran = cli("run", str(suite_file), "--db", str(d / "run.sqlite"))  # with progress bars, as a user runs it
    (d / "run.stderr").write_text(ran.stderr)
    cli("submit", "--db", str(d / "run.sqlite"), "--out", str(d / "sub.json"), "--submitter", "someone")
    (d / "suites").mkdir()
    (d / "suites" / suite_file.name).write_text(suite_file.read_text())
    return d, json.loads((d / "sub.json").read_text())


def test_a_run_shows_progress_for_the_clean_pass_calibration_and_cells(real_submission):
    err = (real_submission[0] / "run.stderr").read_text()
    for bar in ("clean pass pocketsphinx", "calibration pocketsphinx / white-noise", "cells implied"):
        assert bar in err, bar


def _add(d, doc, tmp_path, name: str):
    from ssbm_bench.submission import add_submission

    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return add_submission(path, leaderboards_dir=tmp_path / name, suites_dir=d / "suites", verify=1, seed=0)


def test_a_real_submission_is_added_with_its_cells_re_derived(real_submission, tmp_path):
    d, doc = real_submission
    dest, v, notes = _add(d, doc, tmp_path, "honest")
    record = json.loads((dest.parent / "verified" / dest.name).read_text())
    assert record["implied_checked"] is True
    assert f"the {len(doc['cells'])} cell(s) of board(s) ssbm are exactly those the suite implies here" in notes[-1]


@pytest.fixture(scope="module")
def implied_here(real_submission):
    """The cells the real run's suite implies here, planned once (clean decodes and calibration), as
    `leaderboard add` verification plans them."""
    from ssbm_bench.harness.suite import load_suite
    from ssbm_bench.submission.implied import plan_implied

    d, _ = real_submission
    return plan_implied(load_suite(d / "suites" / "implied.toml"))


def test_an_utterance_dropped_for_every_method_is_refused_by_verification(real_submission, implied_here, tmp_path):
    """Consistent among themselves (every method has the same words), so only re-deriving the grid sees it."""
    from ssbm_bench.submission.implied import compare_implied

    d, doc = real_submission
    doc = copy.deepcopy(doc)
    dropped = doc["cells"][0]["utterance"]
    doc["cells"] = [c for c in doc["cells"] if c["utterance"] != dropped]
    doc["leaderboard"] = leaderboard_of(doc)
    validate_submission(doc, d / "suites", check_corpus=False)  # reading the file alone cannot tell
    (failure,) = compare_implied(doc, implied_here)
    assert failure.startswith(f"2 cell(s) the suite implies here are not submitted (utterance(s) {dropped}), e.g. ")
    with pytest.raises(SubmissionError, match=rf"2 cell\(s\) the suite implies here are not submitted "
                                              rf"\(utterance\(s\) {dropped}\)"):
        _add(d, doc, tmp_path, "dropped")  # the maintainer's add refuses it (verifying by default)


def test_a_changed_noise_level_is_refused_by_verification(real_submission, implied_here):
    """The level a cell was measured at is part of its key; re-hashed, the key checks out, the grid does not."""
    from ssbm_bench.harness.plan import canonical, digest_of
    from ssbm_bench.submission.implied import compare_implied

    d, doc = real_submission
    doc = copy.deepcopy(doc)
    cell = doc["cells"][0]
    here = cell["fields"]["level_db"]
    cell["fields"]["level_db"] = cell["params"]["level_db"] = here - 10.0
    cell["key"] = digest_of(canonical(cell["fields"]))
    doc["leaderboard"] = leaderboard_of(doc)
    validate_submission(doc, d / "suites", check_corpus=False)
    (failure,) = compare_implied(doc, implied_here)
    assert failure.startswith("cells[0] (model pocketsphinx, ") and failure.endswith(
        f": not the cell this suite implies here: level_db {here - 10.0} submitted, {here} here")


def test_a_declared_partial_run_is_added_and_published_apart_from_complete_runs(real_submission, tmp_path):
    """A run stopped before its last cell: refused as a submission unless declared partial; declared, it is
    checked like any other (its cells must be cells the suite implies) and published in a table of its own."""
    import shutil
    import sqlite3

    from ssbm_bench.publish import publish
    from ssbm_bench.submission import add_submission

    d, complete = real_submission
    db = tmp_path / "stopped.sqlite"
    shutil.copy(d / "run.sqlite", db)
    with sqlite3.connect(db) as conn:  # the run was killed before it stored its last cell
        conn.execute("DELETE FROM cells WHERE key = ?", (complete["cells"][-1]["key"],))
        conn.execute("UPDATE runs SET status = 'killed'")
    refused = cli("submit", "--db", str(db), "--out", str(tmp_path / "p.json"), check=False)
    assert refused.returncode != 0 and "--partial REASON" in refused.stderr and "Traceback" not in refused.stderr
    out = cli("submit", "--db", str(db), "--out", str(tmp_path / "p.json"), "--submitter", "stopper",
              "--partial", "stopped early")
    assert "declared partial: 3 of the 4 cells its run planned" in out.stdout
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["partial"] == {"reason": "stopped early", "planned": 4} and len(doc["cells"]) == 3

    lb = tmp_path / "board"
    dest, v, notes = add_submission(tmp_path / "p.json", leaderboards_dir=lb, suites_dir=d / "suites", verify=1,
                                    seed=0)
    assert any("declared partial (stopped early): 3 of the 4 cells" in n for n in notes)
    assert "the 3 cell(s) of board(s) ssbm are among the 4 the suite implies here" in notes[-1]
    publish(lb, lb, d / "suites", dbs=[d / "run.sqlite"], figures=False)
    page = (lb / "README.md").read_text()
    titles = [line for line in page.splitlines() if line.startswith("## ")]
    assert len(titles) == 2 and not any("partial" in t for t in titles[:1])
    assert titles[1].endswith(f"— partial run, not ranked against complete runs (stopper ({dest.name}): 3 of 4 "
                              f"planned cells: stopped early)")
    tables = json.loads((lb / "leaderboard.json").read_text())["tables"]
    assert [t.get("partial", "") != "" for t in tables] == [False, True]
    assert {r["source"] for r in tables[0]["rows"]} == {str(d / "run.sqlite")}


def test_a_partial_declaration_that_carries_every_cell_is_refused(real_submission):
    d, doc = real_submission
    doc = copy.deepcopy(doc)
    doc["partial"] = {"reason": "modest", "planned": len(doc["cells"])}
    with pytest.raises(SubmissionError, match=r"partial.planned: 4, but the submission carries 4 cells"):
        validate_submission(doc, d / "suites", check_corpus=False)


# --- runs that die, runs that fail -------------------------------------------------------------------------

def test_a_killed_run_is_marked_by_the_next(tmp_path):
    db = tmp_path / "k.sqlite"
    with ResultStore(db) as store:  # a run whose process was killed: it never finished its row
        store.start_run("other", "d", "", {"ssbm-bench": "0"})
    doc = {"suite": {"name": "k", "boards": ["stability"]},
           "stability": {"excerpts": 1, "n_samples": [20], "runs": 2, "fills": ["zero"], "reference_fill": "zero",
                         "method": {"name": "soundlime-temporal"}}}
    said: list[str] = []
    run_suite(parse_suite(doc), str(db), progress=False, log=said.append)
    assert any("run 1 in" in s and "was killed before it finished" in s for s in said)
    with ResultStore(db) as store:
        assert [r["status"] for r in store.runs()] == ["killed", "finished"]


class Explodes(SaliencyMethod):
    """A method plugin that fails inside every cell (a stand-in for a buggy outside method: a narrow unit
    double, since the point is the harness's handling of a plugin that raises, not any real method)."""

    name = "explodes"
    map_kind = "score"
    requires = frozenset()

    def describe(self) -> dict:
        return {"name": self.name}

    def explain(self, request):
        raise RuntimeError("the method's own bug")


class ExplodingPlugin:
    from ssbm_bench.hookspecs import hookimpl

    @staticmethod
    @hookimpl
    def register_methods(register):
        from ssbm_bench.records import MethodPlugin

        register(MethodPlugin("explodes", Explodes, "fails inside every cell"))


def test_a_run_with_failed_cells_names_them_and_exits_1(tmp_path):
    from e2e_helpers import RECOGNISED
    from ssbm_bench.cli import run_summary_lines
    from ssbm_bench.plugins import build_registry

    registry = build_registry(extra_plugins=[ExplodingPlugin])
    doc = suite(corpus={"name": "synthetic", "utterances": RECOGNISED[:1], "words_per_utterance": 1},
                methods=[{"name": "explodes"}, {"name": "random"}],
                ssbm={"thresholds": {"score": [0.1]}, "calibration": {"levels_db": [0.0], "utterances": 1}})
    summary = run_suite(parse_suite(doc, registry=registry), str(tmp_path / "f.sqlite"), registry=registry,
                        progress=False, log=lambda s: None)
    assert summary.computed == 2 and summary.errors == 1  # the other method's cell finished
    [failed] = summary.failed
    assert "explodes" in failed["cell"] and "the method's own bug" in failed["reason"]
    lines = run_summary_lines(summary, "f.sqlite")
    assert "1 cell(s) ended in an error (the run exits with status 1):" in lines
    assert any("explodes" in line and "the method's own bug" in line for line in lines)


# --- hostile names on the published page -------------------------------------------------------------------

def test_names_are_inert_in_the_published_markdown():
    from ssbm_bench.publish import md

    assert md("energy<script>alert(1)</script>") == "energy&lt;script&gt;alert(1)&lt;/script&gt;"
    assert md("a|b") == "a\\|b" and md("x`y") == "x'y" and md("two\nlines") == "two lines"
    assert json.dumps(md("bubble[n_mixtures=32]")) == '"bubble[n_mixtures=32]"'  # ordinary labels unchanged


def test_names_cannot_become_spreadsheet_formulas():
    from ssbm_bench.publish import csv_safe

    assert csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)" and csv_safe("@sum") == "'@sum"
    assert csv_safe("energy") == "energy" and csv_safe(-0.5) == -0.5  # numbers stay numbers
