"""Submissions: hand-made good files (version 1: SSBM on one corpus; version
2: SSBM, ISA on two seed families' corpora and stability) are accepted, and
every kind of bad file (corrupt, hostile, implausible, or inconsistent with
its own cells) is refused with a message that names the field at fault; a
real stability run is exported, added (one cell re-run) and published."""

from __future__ import annotations

import json
import pickle

import pytest

from submission_helpers import (CORPUS_DIGESTS, SYNTHETIC_DIGEST, good_submission, good_submission_v2, leaderboard_of,
                                redigest, variant, write_suites_all)
from ssbm_bench import submission as sub
from ssbm_bench.cli import main
from ssbm_bench.submission import SubmissionError, add_submission, dumps, parse_submission_bytes, validate_submission


@pytest.fixture(scope="module")
def good():
    return good_submission()


@pytest.fixture(scope="module")
def good2():
    return good_submission_v2()


@pytest.fixture()
def lb(tmp_path):
    """A leaderboards folder that knows the hand-made suites."""
    write_suites_all(tmp_path / "lb" / "suites")
    return tmp_path / "lb"


def write(tmp_path, doc, name="s.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_the_published_schemas_are_valid_json_schema(version):
    import jsonschema

    schema = sub.load_schema(version)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"] == {"const": version}


def test_a_good_submission_validates_and_is_added_once(tmp_path, lb, good):
    path = write(tmp_path, good)
    dest, v, notes = add_submission(path, lb)
    assert dest.parent == lb / "submissions" and dest.name.startswith("handmade--") and dest.suffix == ".json"
    assert json.loads(dest.read_text()) == good
    assert len(v.rows["ssbm"]) == 2
    with pytest.raises(SubmissionError, match="is already on the leaderboard, in handmade--.*: a result is submitted once"):
        add_submission(path, lb)
    assert sorted(p.name for p in (lb / "submissions").iterdir()) == [dest.name]


def test_the_cli_adds_and_reports(tmp_path, lb, good, capsys):
    path = write(tmp_path, good)
    assert main(["leaderboard", "add", path, "--dir", str(lb), "--dry-run", "--verify", "0"]) == 0
    assert "valid submission of suite handmade" in capsys.readouterr().out
    assert not (lb / "submissions").exists()
    # hand-made outcomes cannot be re-run: re-scored only, which the output says
    assert main(["leaderboard", "add", path, "--dir", str(lb), "--verify", "0"]) == 0
    out = capsys.readouterr().out
    assert "re-scored and matching" in out and "not verified (--verify 0)" in out


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
    ("schema version", lambda d: set_path(d, ["schema_version"], 4), "schema_version: 4 is not supported"),
    ("v1 read as v2", lambda d: set_path(d, ["schema_version"], 2), "'corpus' was unexpected"),
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
    monkeypatch.setattr(sub.guards, "MAX_BYTES", 1000)
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


# --- version 2: ISA and stability boards, several corpora ---------------------
# good_submission_v2(): cells[0..3] SSBM (synthetic), cells[4] voices/saliency, cells[5] voices/random,
# cells[6] commands-action/saliency, cells[7] commands-action/random, cells[8..15] stability
# (zero N_s 20 gt0000, gt0001, zero N_s 50 ..., mean_inp N_s 20 ..., mean_inp N_s 50 ...)

def test_the_corpus_digests_in_the_helper_are_this_checkouts():
    from ssbm_bench.plugins import get_registry
    from ssbm_bench.submission import parse_label

    for label, digest in CORPUS_DIGESTS.items():
        ref = parse_label(label)
        assert get_registry().create("corpus", ref.name, **ref.params).digest() == digest


def test_a_version_2_submission_carries_every_board_and_is_added(tmp_path, lb, good2, capsys):
    path = write(tmp_path, good2)
    dest, v, notes = add_submission(path, lb)
    assert json.loads(dest.read_text()) == good2
    assert {b: len(r) for b, r in v.rows.items() if r} == {"ssbm": 2, "isa": 12, "stability": 4}
    # the cells keep their corpora: ISA per family, stability on the excerpts
    assert {(c.board, c.corpus, c.corpus_digest[:12]) for c in v.cells} == {
        ("ssbm", "synthetic", SYNTHETIC_DIGEST[:12]), ("isa", "synthetic", SYNTHETIC_DIGEST[:12]),
        ("isa", "commands[split=test]", CORPUS_DIGESTS["commands[split=test]"][:12]),
        ("stability", "vad-ground-truth", CORPUS_DIGESTS["vad-ground-truth"][:12])}
    isa = {(r["model"], r["method"], r["aggregation"]): r for r in v.rows["isa"]}
    assert isa[("family:voices", "saliency", "none")]["score"] == pytest.approx((0.5 + 0.55 + 0.6) * 0.95 / 3)
    assert isa[("family:voices", "random", "none")]["model_independent"] is True
    st = {(r["fill"], r["n_samples"]): r for r in v.rows["stability"]}
    assert st[("zero", 20)]["score"] == 3.0 and st[("mean_inp", 20)]["score"] == 4.0
    # with --verify the ISA cells are not re-run (they need trained families) and a note says so
    failures, vnotes, _ = sub.verify_cells(v, 0)
    assert failures == [] and vnotes == []
    assert sub.rerunnable(good2) == [0, 1, 2, 3] + list(range(8, 16))


def test_a_version_1_submission_still_validates_beside_version_2(lb, good, good2):
    v1 = validate_submission(good, lb / "suites")
    v2 = validate_submission(good2, lb / "suites")
    assert v1.doc["schema_version"] == 1 and v2.doc["schema_version"] == 2
    # the same SSBM cells give the same scores in either version
    assert [r["score"] for r in v1.rows["ssbm"]] == [r["score"] for r in v2.rows["ssbm"]]
    assert v1.rows["isa"] == [] and v1.rows["stability"] == []


def _retarget_stability(d, i, n_s):
    d["cells"][i]["params"]["n_samples"] = n_s
    d["cells"][i]["raw"]["n_samples"] = n_s


def _rescore(d):
    d["leaderboard"] = leaderboard_of(d)


BAD_V2 = [
    # ISA
    ("overlap above 1", lambda d: set_path(d, ["cells", 4, "raw", "aggregations", "none", "pairs", 0, "overlaps", 1], 1.5),
     "cells[4].raw.aggregations.none.pairs[0].overlaps[1]: 1.5 is out of range"),
    ("negative baseline", lambda d: set_path(d, ["cells", 6, "raw", "aggregations", "frames", "pairs", 2, "baseline", 0], -0.1),
     "cells[6].raw.aggregations.frames.pairs[2].baseline[0]: -0.1 is out of range"),
    ("unknown family", lambda d: set_path(d, ["cells", 4, "model"], "family:speakers"),
     "cells[4].model: 'family:speakers' is not a seed family of suite 'handmade-all'"),
    ("path-like family", lambda d: set_path(d, ["cells", 4, "model"], "family:../../etc"), "cells[4].model"),
    ("ISA model not a family", lambda d: set_path(d, ["cells", 4, "model"], "pocketsphinx"), "cells[4].model"),
    ("ISA method not in [isa]", lambda d: set_path(d, ["cells", 4, "method"], "energy"),
     "cells[4].method: 'energy' is not one of suite 'handmade-all''s [[isa.methods]] (saliency, random)"),
    ("ISA fill", lambda d: set_path(d, ["cells", 5, "fill"], "white-noise"), "cells[5].fill"),
    ("ISA target", lambda d: set_path(d, ["cells", 5, "target"], "class:0:x"), "cells[5].target"),
    ("ISA unknown aggregation", lambda d: set_path(d, ["cells", 4, "raw", "aggregations", "bogus"], {"pairs": []}),
     "cells[4].raw.aggregations"),
    ("ISA p", lambda d: set_path(d, ["cells", 4, "raw", "p"], 0.5), "cells[4].raw.p: 0.5 is not the suite's [isa] p"),
    ("ISA seeds", lambda d: (d["cells"][4]["raw"]["members"].pop(),),
     "cells[4].raw.members: 2 members, but the suite's [isa] seeds = 3"),
    ("ISA pair twice", lambda d: set_path(d, ["cells", 4, "raw", "aggregations", "none", "pairs", 2, "pair"], ["seed-0", "seed-1"]),
     "cells[4].raw.aggregations.none.pairs: the seed pairs"),
    ("ISA too many inputs", lambda d: (d["cells"][6]["raw"]["inputs"].append("awb_c00"),),
     "cells[6].raw.inputs: 3 inputs, but the suite's [isa] inputs = 2"),
    ("ISA overlaps per input", lambda d: (d["cells"][6]["raw"]["aggregations"]["frames"]["pairs"][1]["overlaps"].pop(),),
     "cells[6].raw.aggregations.frames.pairs[1].overlaps: 1 values for 2 inputs"),
    ("ISA input of another corpus", lambda d: set_path(d, ["cells", 4, "raw", "inputs", 0], "kal16_c00"),
     "cells[4].raw.inputs[0]: 'kal16_c00' is not an utterance of corpus 'synthetic'"),
    ("ISA path-like input", lambda d: set_path(d, ["cells", 4, "raw", "inputs", 0], "../x"), "cells[4].raw.inputs[0]"),
    ("ISA family on two corpora", lambda d: set_path(d, ["cells", 5, "corpus"], "commands[split=test]"),
     "cells[5].corpus: 'commands[split=test]', but other cells of family 'voices' use corpus 'synthetic'"),
    ("ISA cell twice", lambda d: d["cells"].append(dict(d["cells"][4], key="e" * 64)),
     "cells[16]: a second cell of family 'voices' with method 'saliency' (the first is cells[4])"),
    ("ISA kappa", lambda d: set_path(d, ["cells", 4, "params", "agreement", "kappa"], 7.0),
     "cells[4].params.agreement.kappa: 7.0 is out of range"),
    ("ISA unknown raw field", lambda d: set_path(d, ["cells", 4, "raw", "payload"], "x"), "cells[4].raw"),
    ("ISA word map member", lambda d: d["cells"][4]["raw"]["aggregations"]["words"]["word_maps"].pop("seed-2"),
     "cells[4].raw.aggregations.words.word_maps: members"),
    ("ISA score tampered", lambda d: set_path(d, ["leaderboard", "isa", 0, "score"], d["leaderboard"]["isa"][0]["score"] + 0.1),
     "leaderboard.isa[0] (model family:commands-action, method saliency, fill -, aggregation frames): score is"),
    ("ISA baseline tampered", lambda d: set_path(d, ["leaderboard", "isa", 3, "baseline"], 0.01), "baseline is 0.01"),
    ("ISA row missing", lambda d: d["leaderboard"]["isa"].pop(), "leaderboard.isa: lacks the row for model family:voices"),
    ("ISA cell outcome changed", lambda d: set_path(d, ["cells", 4, "raw", "aggregations", "none", "pairs", 0, "overlaps", 0], 0.9),
     "in the submission but"),
    # stability
    ("N_s not in the suite", lambda d: _retarget_stability(d, 8, 37),
     "cells[8].params.n_samples: 37 is not one of suite 'handmade-all''s [stability] n_samples [20, 50]"),
    ("raw N_s differs", lambda d: set_path(d, ["cells", 8, "raw", "n_samples"], 50),
     "cells[8].raw.n_samples: 50, but params.n_samples is 20"),
    ("runs", lambda d: set_path(d, ["cells", 9, "params", "runs"], 5), "cells[9].params.runs: 5, but the suite's [stability] runs = 2"),
    ("weights of 3 runs", lambda d: d["cells"][9]["raw"]["weights"].append([0.0] * 10),
     "cells[9].raw.weights: 3 runs, but the suite's [stability] runs = 2"),
    ("ragged weights", lambda d: d["cells"][9]["raw"]["weights"][1].pop(), "cells[9].raw.weights[1]: 9 components"),
    ("absurd weight", lambda d: set_path(d, ["cells", 9, "raw", "weights", 0, 3], 1e9),
     "cells[9].raw.weights[0][3]: 1000000000.0 is out of range"),
    ("fill not in [stability]", lambda d: set_path(d, ["cells", 12, "fill"], "gauss_norm"),
     "cells[12].fill: 'gauss_norm' is not one of suite 'handmade-all''s [stability] fills (zero, mean_inp)"),
    ("stability model", lambda d: set_path(d, ["cells", 12, "model"], "pocketsphinx"),
     "cells[12].model: 'pocketsphinx' is not suite 'handmade-all''s [stability] model 'silero-vad'"),
    ("stability method", lambda d: set_path(d, ["cells", 12, "method"], "soundlime-spectral"), "cells[12].method"),
    ("reference fill", lambda d: set_path(d, ["cells", 12, "params", "reference_fill"], "mean_inp"),
     "cells[12].params.reference_fill: 'mean_inp' is not the suite's [stability] reference_fill 'zero'"),
    ("stability target", lambda d: set_path(d, ["cells", 12, "target"], "class:0:non-speech"), "cells[12].target"),
    ("unknown excerpt", lambda d: set_path(d, ["cells", 10, "utterance"], "gt9999"),
     "cells[10].utterance: 'gt9999' is not an utterance of corpus 'vad-ground-truth'"),
    ("excerpt twice", lambda d: set_path(d, ["cells", 9, "utterance"], "gt0000"),
     "cells[9]: a second cell of fill 'zero', N_s 20, excerpt 'gt0000' (the first is cells[8])"),
    ("too many excerpts", lambda d: d["cells"].append(dict(d["cells"][8], key="e" * 64, utterance="gt0002")),
     "cells[16]: more than the suite's [stability] excerpts = 2 cells for fill 'zero', N_s 20"),
    ("segments out of range", lambda d: set_path(d, ["cells", 8, "raw", "speech_segments"], "3,6,17"),
     "cells[8].raw.speech_segments: '3,6,17' is not a set of component indices below 10"),
    ("stability on the suite's corpus", lambda d: set_path(d, ["cells", 8, "corpus"], "synthetic"),
     "cells[8].corpus: 'synthetic', but the suite's stability cells use corpus 'vad-ground-truth'"),
    ("U_n tampered", lambda d: set_path(d, ["leaderboard", "stability", 0, "score"], 2.0),
     "leaderboard.stability[0] (model silero-vad, method soundlime-temporal, fill zero, N_s 20): score is 2.0"),
    ("N_ce tampered", lambda d: set_path(d, ["leaderboard", "stability", 1, "n_ce"], 0.0), "n_ce is 0.0"),
    ("stability weights changed", lambda d: set_path(d, ["cells", 8, "raw", "weights", 1, 0], 0.9),
     "leaderboard.stability[0] (model silero-vad, method soundlime-temporal, fill zero, N_s 20): ci_high is"),
    # corpora
    ("corpus digest", lambda d: set_path(d, ["corpora", 1, "digest"], "f" * 64),
     "corpora[1].digest: ffffffffffff... is not the digest of corpus 'commands[split=test]' here"),
    ("corpus not named", lambda d: set_path(d, ["cells", 6, "corpus"], "librivox"),
     "cells[6].corpus: 'librivox' is not one of the submission's corpora"),
    ("corpus twice", lambda d: d["corpora"].append(dict(d["corpora"][0])), "corpora[3].label: 'synthetic' appears twice"),
    ("corpus unused", lambda d: d["corpora"].append({"name": "commands", "label": "commands", "digest": "0" * 64}),
     "corpora[3]: corpus 'commands' is used by no cell"),
    ("corpus label and name", lambda d: set_path(d, ["corpora", 1, "name"], "synthetic"),
     "corpora[1].label: 'commands[split=test]' is not corpus 'synthetic'"),
    ("path-like corpus", lambda d: set_path(d, ["corpora", 1, "label"], "folder[path=/etc]"), "corpora[1].label"),
    ("a board's rows missing", lambda d: d["leaderboard"].pop("stability"), "'stability' is a required property"),
]


@pytest.mark.parametrize("what,edit,message", BAD_V2, ids=[b[0] for b in BAD_V2])
def test_a_bad_version_2_submission_is_refused_naming_the_field(tmp_path, lb, good2, what, edit, message):
    path = write(tmp_path, variant(good2, edit))
    with pytest.raises(SubmissionError) as info:
        add_submission(path, lb)
    assert message in str(info.value)
    assert not (lb / "submissions").exists(), "nothing is added when a check fails"


def test_a_forged_cell_with_matching_rows_is_still_checked_against_the_suite(lb, good2):
    """Re-scoring catches rows that do not follow from the cells; the cell checks catch cells that follow no
    suite even when the rows were recomputed to match them."""
    def edit(d):
        _retarget_stability(d, 8, 37)
        _rescore(d)

    with pytest.raises(SubmissionError, match=r"cells\[8\]\.params\.n_samples: 37 is not one of"):
        validate_submission(variant(good2, edit), lb / "suites")


def test_a_board_the_suite_does_not_have_is_refused(tmp_path, good):
    """A version-2 file of the ssbm-only handmade suite with a stability cell slipped in."""
    from submission_helpers import write_suites

    folder = write_suites(tmp_path / "suites")
    doc = good_submission_v2()
    stab = doc["cells"][8]

    def edit(d):
        d["schema_version"] = 2
        d["corpora"] = [dict(d.pop("corpus")), {"name": "vad-ground-truth", "label": "vad-ground-truth",
                                                "digest": CORPUS_DIGESTS["vad-ground-truth"]}]
        d["cells"] = [dict(c, corpus="synthetic") for c in d["cells"]] + [stab]
        _rescore(d)

    with pytest.raises(SubmissionError, match=r"cells\[4\]\.board: 'stability' is not a board of suite 'handmade'"):
        validate_submission(variant(good, edit), folder)


def test_export_writes_every_corpus_the_cells_use(tmp_path, lb, good2):
    """A store holding the hand-made cells of all boards exports as version 2 with the three corpora
    (an ISA family's corpus label read back into name and parameters), and that file validates."""
    from submission_helpers import SUITE_ALL_TOML
    from ssbm_bench.harness.store import ResultStore
    import hashlib
    from dataclasses import replace

    from ssbm_bench.submission import cell_rows, export_submission, parse_label

    suite_file = tmp_path / "handmade-all.toml"
    suite_file.write_text(SUITE_ALL_TOML)
    db = tmp_path / "all.sqlite"
    with ResultStore(db) as store:
        run = store.start_run("handmade-all", good2["suite"]["digest"], str(suite_file), good2["versions"][0])
        for c in cell_rows(good2):
            # what a run records with every cell: the fields its key is the digest of
            fields = {"protocol": "ssbm-1", "suite": "handmade-all", "corpus": c.corpus_digest, "board": c.board,
                      "method": parse_label(c.method).to_dict(), "utterance": c.utterance, "target": c.target,
                      "seed": c.seed, "handmade": c.key}
            key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
            store.put_cell(replace(c, key=key))
            store.put_cell_extras([(key, fields)], [])
        store.finish_run(run, "finished", {"seconds": 60.0, "computed": 16})
    doc, facts = export_submission(db, submitter="hand made")
    assert doc["schema_version"] == 3 and facts["cells"] == 16 and facts["corpora"] == 3
    assert sorted(doc["corpora"], key=lambda e: e["label"]) == sorted(good2["corpora"], key=lambda e: e["label"])
    assert {c["corpus"] for c in doc["cells"] if c["model"] == "family:commands-action"} == {"commands[split=test]"}
    v = validate_submission(doc, lb / "suites")
    assert {b: len(r) for b, r in v.rows.items() if r} == {"ssbm": 2, "isa": 12, "stability": 4}
    # version 3 carries the rows of the boards that have cells, the same rows version 2 carried
    assert doc["leaderboard"] == {b: r for b, r in good2["leaderboard"].items() if r}


# --- a real stability run: export, add with one cell re-run, publish ----------

@pytest.fixture(scope="module")
def stability_run(tmp_path_factory):
    from e2e_helpers import cli
    from test_stability_board import SUITE

    d = tmp_path_factory.mktemp("stability-submission")
    suite = d / "stability-tiny.toml"
    suite.write_text(SUITE)
    db = d / "st.sqlite"
    cli("run", str(suite), "--db", str(db), "--no-progress")
    out = cli("submit", "--db", str(db), "--out", str(d / "sub.json"), "--submitter", "vad-lab")
    return d, suite, out.stdout


def test_a_stability_run_is_submitted_added_with_a_rerun_cell_and_published(stability_run, tmp_path):
    from e2e_helpers import cli

    d, suite, submitted = stability_run
    assert "4 cells on 1 corpus(es), 2 stability rows" in submitted
    doc = json.loads((d / "sub.json").read_text())
    assert doc["schema_version"] == 3
    assert [(e["name"], e["label"]) for e in doc["corpora"]] == [("vad-ground-truth", "vad-ground-truth")]
    assert {c["board"] for c in doc["cells"]} == {"stability"} and len(doc["leaderboard"]["stability"]) == 2
    assert all(len(c["raw"]["weights"]) == 2 for c in doc["cells"])  # both runs' weights travel, enough to re-score

    lb = tmp_path / "maintainers"
    (lb / "suites").mkdir(parents=True)
    (lb / "suites" / suite.name).write_text(suite.read_text())
    added = cli("leaderboard", "add", str(d / "sub.json"), "--dir", str(lb), "--verify", "1", "--seed", "0")
    assert "4 cells, 2 stability rows re-scored and matching" in added.stdout
    assert "re-ran 1 random cell(s) of the 4 re-runnable ones" in added.stdout
    (stored,) = (lb / "submissions").glob("stability-tiny--*.json")

    cli("leaderboard", "publish", "--out", str(lb))
    readme = (lb / "README.md").read_text()
    assert "## Stability — suite `stability-tiny`, corpus `vad-ground-truth`" in readme and "N_s = 20" in readme
    assert f"vad-lab ({stored.name})" in readme and "ground truth: full match" in readme
    # the U_n curve is drawn from the submission's cells (no store is named)
    (png,) = (lb / "figures").glob("*--stability.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"figures/{png.name}" in (lb / "index.html").read_text()


def test_a_forged_stability_cell_is_caught_by_the_rerun(stability_run, lb):
    """Weights changed and the rows recomputed to match pass every check but the re-run of that cell."""
    from test_stability_board import SUITE

    d, suite, _ = stability_run
    (lb / "suites" / "stability-tiny.toml").write_text(SUITE)
    doc = json.loads((d / "sub.json").read_text())
    # swap the top weight of run 1 with the smallest in one cell; re-run every cell, so the forged one is drawn
    w = doc["cells"][0]["raw"]["weights"][1]
    hi, lo = w.index(max(w)), w.index(min(w))
    w[hi], w[lo] = w[lo], w[hi]
    _rescore(doc)
    v = validate_submission(doc, lb / "suites")
    failures, notes, _ = sub.verify_cells(v, len(doc["cells"]), seed=0)
    assert any(f.startswith(f"cells[0].raw.weights[1][{hi}]") and "re-run here" in f for f in failures), failures


def test_a_run_that_reused_cells_of_an_earlier_suite_version_exports_them_and_validates(tmp_path):
    """Shrinking a suite reuses the cells it keeps (same keys, stored under the old suite digest): the export
    takes the run's plan, gives every cell the run's digest, and `leaderboard add` re-scores to the same rows."""
    from e2e_helpers import cli
    from test_stability_board import SUITE

    suite = tmp_path / "stability-tiny.toml"
    db = tmp_path / "st.sqlite"
    suite.write_text(SUITE)
    cli("run", str(suite), "--db", str(db), "--no-progress")
    suite.write_text(SUITE.replace('fills = ["zero", "mean_inp"]', 'fills = ["zero"]'))
    assert "0 computed" in cli("run", str(suite), "--db", str(db), "--no-progress").stdout
    out = cli("submit", "--db", str(db), "--out", str(tmp_path / "sub.json"), "--suite-file", str(suite))
    assert "2 cells on 1 corpus(es)" in out.stdout
    doc = json.loads((tmp_path / "sub.json").read_text())
    assert {c["fill"] for c in doc["cells"]} == {"zero"}
    lb = tmp_path / "lb"
    (lb / "suites").mkdir(parents=True)
    (lb / "suites" / suite.name).write_text(suite.read_text())
    v = validate_submission(doc, lb / "suites")
    assert [r["fill"] for r in v.rows["stability"]] == ["zero"]
    assert {r["suite_digest"] for r in doc["leaderboard"]["stability"]} == {doc["suite"]["digest"]}
