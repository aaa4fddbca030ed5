"""Submissions: a hand-made good file is accepted, and every kind of bad
file (corrupt, hostile, implausible, or inconsistent with its own cells) is
refused with a message that names the field at fault."""

from __future__ import annotations

import json
import pickle

import pytest

from submission_helpers import SYNTHETIC_DIGEST, good_submission, redigest, variant, write_suites
from ssbm_bench import submission as sub
from ssbm_bench.cli import main
from ssbm_bench.submission import SubmissionError, add_submission, dumps, parse_submission_bytes, validate_submission


@pytest.fixture(scope="module")
def good():
    return good_submission()


@pytest.fixture()
def lb(tmp_path):
    """A leaderboards folder that knows the hand-made suite."""
    write_suites(tmp_path / "lb" / "suites")
    return tmp_path / "lb"


def write(tmp_path, doc, name="s.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


def test_the_published_schema_is_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(sub.load_schema())


def test_a_good_submission_validates_and_is_added_once(tmp_path, lb, good):
    path = write(tmp_path, good)
    dest, v, notes = add_submission(path, lb)
    assert dest.parent == lb / "submissions" and dest.name.startswith("handmade--") and dest.suffix == ".json"
    assert json.loads(dest.read_text()) == good
    assert len(v.rows["ssbm"]) == 2
    with pytest.raises(SubmissionError, match="already in the leaderboard"):
        add_submission(path, lb)
    assert sorted(p.name for p in (lb / "submissions").iterdir()) == [dest.name]


def test_the_cli_adds_and_reports(tmp_path, lb, good, capsys):
    path = write(tmp_path, good)
    assert main(["leaderboard", "add", path, "--dir", str(lb), "--dry-run"]) == 0
    assert "valid submission of suite handmade" in capsys.readouterr().out
    assert not (lb / "submissions").exists()
    assert main(["leaderboard", "add", path, "--dir", str(lb)]) == 0
    assert "re-scored and matching" in capsys.readouterr().out


def test_a_run_on_another_executor_is_the_same_suite(tmp_path, lb, good):
    def edit(d):
        d["suite"]["source"]["run"] = {"executor": "ray", "executor_params": {"workers": 2}}
        redigest(d)

    validate_submission(variant(good, edit), lb / "suites")


def set_path(doc, path, value):
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


BAD = [
    # (what, edit of the document, fragment of the expected message)
    ("schema version", lambda d: set_path(d, ["schema_version"], 2), "schema_version: 2 is not supported"),
    ("not a submission", lambda d: set_path(d, ["schema"], "other"), "not an ssbm-bench submission"),
    ("wrong type", lambda d: set_path(d, ["cells", 1, "seed"], "0"), "cells[1].seed: must be integer"),
    ("float for integer", lambda d: set_path(d, ["cells", 0, "versions"], 0.0), "cells[0].versions: must be integer"),
    ("accuracy above 1", lambda d: set_path(d, ["cells", 0, "raw", "thresholds", 0, "lerf", "a_w"], 1.5),
     "cells[0].raw.thresholds[0].lerf.a_w: 1.5 is out of range"),
    ("negative energy", lambda d: set_path(d, ["cells", 2, "raw", "thresholds", 1, "morf", "e"], -0.1),
     "cells[2].raw.thresholds[1].morf.e: -0.1 is out of range"),
    ("absurd threshold", lambda d: set_path(d, ["cells", 0, "raw", "thresholds", 0, "threshold"], 1e300),
     "cells[0].raw.thresholds[0].threshold"),
    ("huge map", lambda d: set_path(d, ["cells", 0, "raw", "map", "shape"], [10 ** 12]), "cells[0].raw.map.shape[0]"),
    ("path-like utterance", lambda d: set_path(d, ["cells", 0, "utterance"], "../../etc/passwd"),
     "cells[0].utterance"),
    ("dotdot utterance", lambda d: set_path(d, ["cells", 0, "utterance"], "a..b"), "cells[0].utterance"),
    ("path-like method", lambda d: set_path(d, ["cells", 0, "method"], "energy/../../x"), "cells[0].method"),
    ("path-like suite name", lambda d: set_path(d, ["suite", "name"], "../suites/quick"), "suite.name"),
    ("unknown field", lambda d: set_path(d, ["payload"], "__import__('os')"), "payload"),
    ("unknown suite", lambda d: set_path(d, ["suite", "name"], "nosuch"), "suite.name: 'nosuch' is not a known suite"),
    ("digest not of source", lambda d: set_path(d, ["suite", "digest"], "0" * 16), "suite.digest"),
    ("suite changed", lambda d: (set_path(d["suite"]["source"], ["ssbm", "denominator_floor"], 0.5), redigest(d)),
     "suite.source: differs from the known suite"),
    ("corpus digest", lambda d: set_path(d, ["corpus", "digest"], "f" * 64), "corpus.digest"),
    ("method not in suite", lambda d: set_path(d, ["cells", 0, "method"], "bubble"),
     "cells[0].method: 'bubble' is not a method of suite"),
    ("unknown utterance", lambda d: set_path(d, ["cells", 0, "utterance"], "rms_h99_99"),
     "cells[0].utterance: 'rms_h99_99' is not an utterance"),
    ("duplicate cell", lambda d: set_path(d, ["cells", 1, "key"], d["cells"][0]["key"]), "cells[1].key"),
    ("grid differs", lambda d: set_path(d, ["cells", 0, "raw", "thresholds", 0, "threshold"], -35.0),
     "cells[0].raw.thresholds"),
    ("score tampered", lambda d: set_path(d, ["leaderboard", "ssbm", 0, "score"], d["leaderboard"]["ssbm"][0]["score"] + 1),
     "leaderboard.ssbm[0] (model pocketsphinx, method"),
    ("ci tampered", lambda d: set_path(d, ["leaderboard", "ssbm", 1, "ci_high"], 99.0), "ci_high is 99.0"),
    ("row missing", lambda d: d["leaderboard"]["ssbm"].pop(), "lacks the row"),
    ("cell outcome changed", lambda d: set_path(d, ["cells", 0, "raw", "thresholds", 0, "morf", "a_w"], 1.0),
     "in the submission but"),
    ("versions index", lambda d: set_path(d, ["cells", 0, "versions"], 7), "cells[0].versions"),
    ("long notes", lambda d: set_path(d, ["notes"], "x" * 5000), "notes: too large"),
]


@pytest.mark.parametrize("what,edit,message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_submission_is_refused_naming_the_field(tmp_path, lb, good, what, edit, message):
    path = write(tmp_path, variant(good, edit))
    with pytest.raises(SubmissionError) as info:
        add_submission(path, lb)
    assert message in str(info.value)
    assert not (lb / "submissions").exists(), "nothing is added when a check fails"


RAW_BAD = [
    ("not JSON", b"{\"schema\": ", "not valid JSON"),
    ("a pickle", pickle.dumps({"schema": "ssbm-bench-submission"}), "not UTF-8"),
    ("not UTF-8", b"\xff\xfe{}", "not UTF-8"),
    ("a list", b"[1, 2]", "a submission is a JSON object"),
    ("duplicate keys", b'{"schema": 1, "schema": 2}', "key 'schema' appears twice"),
    ("deep nesting", b"[" * 100000 + b"]" * 100000, "nested"),
    ("huge integer", b'{"a": ' + b"9" * 5000 + b"}", "not acceptable JSON"),
]


@pytest.mark.parametrize("what,data,message", RAW_BAD, ids=[b[0] for b in RAW_BAD])
def test_corrupt_bytes_are_refused(what, data, message):
    with pytest.raises(SubmissionError, match="submission") as info:
        parse_submission_bytes(data)
    assert message in str(info.value)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_where_they_are(good, token):
    text = dumps(good)
    needle = '"a_w":1.0'
    assert needle in text
    bad = text.replace(needle, f'"a_w":{token}', 1)
    with pytest.raises(SubmissionError, match=r"cells\[0\]\.raw\.thresholds\[0\]\.lerf\.a_w: .* is not a finite number"):
        parse_submission_bytes(bad.encode())


def test_an_oversized_file_is_refused_before_parsing(tmp_path, monkeypatch, good):
    path = write(tmp_path, good)
    monkeypatch.setattr(sub, "MAX_BYTES", 1000)
    with pytest.raises(SubmissionError, match="may be at most 1000 bytes"):
        sub.read_submission(path)


def test_the_cli_prints_a_clear_error(tmp_path, lb, good, capsys):
    path = write(tmp_path, variant(good, lambda d: set_path(d, ["cells", 0, "raw", "thresholds", 0, "lerf", "e"], 3)))
    assert main(["leaderboard", "add", path, "--dir", str(lb)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssbm-bench: error: ") and "cells[0].raw.thresholds[0].lerf.e: 3 is out of range" in err
    assert "Traceback" not in err


def test_the_synthetic_digest_in_the_helper_is_the_committed_one():
    from ssbm_bench.plugins import get_registry

    assert get_registry().create("corpus", "synthetic").digest() == SYNTHETIC_DIGEST


def test_a_cell_of_a_method_the_suite_does_not_run_on_that_model_is_refused(tmp_path, good):
    """A [[methods]] entry with `models = [...]`: cells pairing it with another model are not the suite's."""
    import tomllib

    from submission_helpers import SUITE_TOML

    toml = SUITE_TOML.replace('name = "random"', 'name = "random"\nmodels = ["whisper-tiny-en"]').replace(
        '[[models]]\nname = "pocketsphinx"', '[[models]]\nname = "pocketsphinx"\n[[models]]\nname = "whisper-tiny-en"')
    folder = tmp_path / "lb" / "suites"
    folder.mkdir(parents=True)
    (folder / "handmade.toml").write_text(toml)

    def edit(d):
        d["suite"]["source"] = tomllib.loads(toml)
        redigest(d)

    with pytest.raises(SubmissionError, match=r"cells\[2\].method: suite 'handmade' does not run 'random' with model "
                                              r"'pocketsphinx'"):
        validate_submission(variant(good, edit), folder)
