"""A hand-made, valid leaderboard submission (no model is run to make it).

Two utterances of the committed synthetic corpus, one word each, the
`energy` and `random` methods on pocketsphinx, with plausible raw outcomes
written out here; the leaderboard rows are what ssbm-bench's scoring gives
for those cells. Tests copy it and break one thing at a time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from pathlib import Path

SUITE_TOML = """
[suite]
name = "handmade"
description = "a hand-made submission's suite"
[corpus]
name = "synthetic"
utterances = ["rms_h02_01", "awb_h02_01"]
words_per_utterance = 1
[[methods]]
name = "energy"
[[methods]]
name = "random"
[[models]]
name = "pocketsphinx"
[[fills]]
name = "white-noise"
[ssbm]
thresholds = { magnitude = [-40.0, -20.0], score = [0.1, 0.5] }
calibration = { levels_db = [-20.0, -10.0, 0.0], max_accuracy = 0.1, utterances = 1 }
[run]
executor = "inprocess"
"""

#: the committed synthetic corpus's content digest (plugins/synthetic/data/digest.txt)
SYNTHETIC_DIGEST = "633183cae1fc35ca8c177cb3b51d5b1f0f27c21c148b433a5e3985e7b0c4557e"

VERSIONS = {"ssbm-bench": "0.1.0", "plugins": {"corpus:synthetic": "ssbm-bench==0.1.0",
                                               "model:pocketsphinx": "ssbm-bench==0.1.0",
                                               "method:energy": "ssbm-bench==0.1.0",
                                               "method:random": "ssbm-bench==0.1.0",
                                               "fill:white-noise": "ssbm-bench==0.1.0",
                                               "executor:inprocess": "ssbm-bench==0.1.0"}}

# (method, utterance, target) -> per threshold: (a_w, a_o, e) for LeRF, then MoRF
OUTCOMES = {
    ("energy", "rms_h02_01", "word:4:when"): [((1.0, 1.0, 0.02), (0.0, 0.83, 0.98)), ((1.0, 1.0, 0.09), (0.0, 0.5, 0.91))],
    ("energy", "awb_h02_01", "word:4:dark"): [((1.0, 0.86, 0.05), (0.0, 0.71, 0.95)), ((1.0, 0.71, 0.2), (0.0, 0.43, 0.8))],
    ("random", "rms_h02_01", "word:4:when"): [((1.0, 1.0, 0.9), (1.0, 1.0, 0.1)), ((0.0, 0.5, 0.5), (1.0, 0.83, 0.5))],
    ("random", "awb_h02_01", "word:4:dark"): [((0.0, 0.86, 0.9), (1.0, 1.0, 0.1)), ((1.0, 0.71, 0.5), (0.0, 0.57, 0.5))],
}


def write_suites(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handmade.toml").write_text(SUITE_TOML)
    return folder


def _digest(source: dict) -> str:
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def good_submission() -> dict:
    """A version-1 submission (one corpus; ssbm and deletion boards only)."""
    source = tomllib.loads(SUITE_TOML)
    thresholds = {"energy": ("magnitude", [-40.0, -20.0]), "random": ("score", [0.1, 0.5])}
    cells = []
    for (method, utt, target), per_t in OUTCOMES.items():
        kind, grid = thresholds[method]
        entries = []
        for t, (lerf, morf) in zip(grid, per_t):
            entries.append({"threshold": t,
                            "lerf": {"hyp": "the boy was there when the sun rose", "a_w": lerf[0], "a_o": lerf[1],
                                     "e": lerf[2]},
                            "morf": {"hyp": "the boy was there", "a_w": morf[0], "a_o": morf[1], "e": morf[2]}})
        cells.append({
            "key": hashlib.sha256(f"{method}/{utt}/{target}".encode()).hexdigest(),
            "board": "ssbm", "model": "pocketsphinx", "method": method, "fill": "white-noise",
            "utterance": utt, "target": target, "seed": 0, "status": "ok", "reason": None,
            "raw": {"map": {"kind": kind, "sha256": "0123456789abcdef", "shape": [513, 180], "min": 0.0,
                            "max": 1.0, "params": {}},
                    "thresholds": entries, "level_db": 0.0, "explain_seconds": 0.01},
            "params": {"model": {}, "method": {}, "fill": {}, "thresholds": grid, "level_db": 0.0,
                       "cfg": {"sample_rate": 16000, "window_ms": 64.0, "hop_ms": 16.0},
                       "denominator_floor": 0.01},
            "versions": 0, "seconds": 1.5,
        })
    doc = {
        "schema": "ssbm-bench-submission", "schema_version": 1, "created": "2026-01-01T00:00:00Z",
        "submitter": "hand made", "ssbm_bench_version": "0.1.0",
        "suite": {"name": "handmade", "digest": _digest(source), "source": source},
        "corpus": {"name": "synthetic", "label": "synthetic", "digest": SYNTHETIC_DIGEST},
        "run": {"executor": {"name": "inprocess", "params": {}}, "seconds": 12.0, "computed": 4},
        "versions": [VERSIONS], "cells": cells, "leaderboard": {"ssbm": [], "deletion": []},
    }
    doc["leaderboard"] = leaderboard_of(doc)
    return doc


def variant(doc: dict, edit) -> dict:
    d = copy.deepcopy(doc)
    edit(d)
    return d


def redigest(doc: dict) -> None:
    """After editing suite.source, make suite.digest (and the rows, which carry it) match it again."""
    doc["suite"]["digest"] = _digest(doc["suite"]["source"])
    doc["leaderboard"] = leaderboard_of(doc)


def leaderboard_of(doc: dict) -> dict:
    """The rows ssbm-bench's scoring gives for a document's cells, for the boards its version carries."""
    from ssbm_bench.submission import BOARDS_OF_VERSION, board_rows_json, cell_rows

    return board_rows_json(cell_rows(doc), BOARDS_OF_VERSION.get(doc["schema_version"]))


# --- version 2: every board, several corpora ----------------------------------

#: the handmade suite with an [isa] section (two seed families, on two corpora) and a [stability] section
SUITE_ALL_TOML = SUITE_TOML.replace('name = "handmade"', 'name = "handmade-all"\nboards = ["ssbm", "isa", "stability"]') + """
[isa]
families = ["voices", "commands-action"]
seeds = 3
inputs = 2
[[isa.methods]]
name = "saliency"
[[isa.methods]]
name = "random"
[stability]
excerpts = 2
n_samples = [20, 50]
runs = 2
fills = ["zero", "mean_inp"]
"""

#: content digests of the corpora the version-2 submission names (checked by a test against this checkout)
CORPUS_DIGESTS = {"synthetic": SYNTHETIC_DIGEST,
                  "commands[split=test]": "73bf9f6fd58b3111de8a4d42f33342a04659fedefdc32bbda1397edca70f8530",
                  "vad-ground-truth": "13fb2e306e652b207010e49dd576840e9bc9e5cc96faf2d7b1d82ff94446153c"}

#: family -> (corpus label, two test inputs of it)
ISA_FAMILIES = {"voices": ("synthetic", ["rms_h03_01", "awb_h03_01"]),
                "commands-action": ("commands[split=test]", ["kal16_c00", "rms_c00"])}
MEMBERS = ["seed-0", "seed-1", "seed-2"]

#: excerpt -> its speech segments (as the vad-ground-truth corpus labels them)
EXCERPTS = {"gt0000": "3,6,7", "gt0001": "2,6,8"}


def _isa_raw(family: str, method: str, inputs: list[str]) -> dict:
    """Plausible per-pair overlaps: the random map agrees perfectly across seeds (a seeded map)."""
    shift = {"voices": 0.0, "commands-action": 0.1}[family]
    aggs = {}
    for a, agg in enumerate(("none", "frames", "words")):
        pairs = []
        for j, (x, y) in enumerate([(0, 1), (0, 2), (1, 2)]):
            base = 1.0 if method == "random" else round(0.5 + shift + 0.05 * j - 0.1 * a, 4)
            pairs.append({"pair": [MEMBERS[x], MEMBERS[y]],
                          "overlaps": [base, round(base * 0.9, 4)],
                          "baseline": [0.2, round(0.15 + 0.02 * j, 4)]})
        entry = {"pairs": pairs}
        if agg == "words":
            entry["word_maps"] = {m: [[0.1 * (k + 1), 0.3], [0.2, 0.05 * (k + 1), 0.4]] for k, m in enumerate(MEMBERS)}
        aggs[agg] = entry
    return {"p": 0.2, "members": list(MEMBERS), "inputs": list(inputs), "input_type": "stft:magnitude",
            "aggregations": aggs}


def _stability_weights(fill: str, n_s: int, utt: str) -> list[list[float]]:
    speech = [int(s) for s in EXCERPTS[utt].split(",")]
    runs = []
    for r in range(2):
        w = [round(0.01 * ((i * 7 + r * 3 + n_s) % 5) - 0.02, 4) for i in range(10)]
        for k, s in enumerate(speech):
            w[s] = 0.3 - 0.05 * k
        if fill == "mean_inp" and r == 1:  # one run of one fill swaps a speech segment for another component
            w[speech[2]], w[0] = 0.0, 0.4
        runs.append(w)
    return runs


def good_submission_v2() -> dict:
    """A version-2 submission of suite handmade-all: the SSBM cells of good_submission(), an ISA cell per
    family and method, and stability cells per fill, N_s and excerpt; rows as ssbm-bench scores them."""
    v1 = good_submission()
    source = tomllib.loads(SUITE_ALL_TOML)
    cells = [dict(c, corpus="synthetic") for c in v1["cells"]]
    agreement = {"voices": {"accuracy": [0.95, 0.9, 0.85], "kappa": 0.8, "error_kappa": 0.1, "inputs": 20,
                            "inputs_with_an_error": 3},
                 "commands-action": {"accuracy": [0.9, 0.8, 0.75], "kappa": 0.69, "error_kappa": -0.19,
                                     "inputs": 48, "inputs_with_an_error": 17}}
    for family, (corpus, inputs) in ISA_FAMILIES.items():
        for method in ("saliency", "random"):
            cells.append({
                "key": hashlib.sha256(f"isa/{family}/{method}".encode()).hexdigest(), "board": "isa",
                "corpus": corpus, "model": f"family:{family}", "method": method, "fill": "-", "utterance": "*",
                "target": "gold class", "seed": 0, "status": "ok", "reason": None,
                "raw": _isa_raw(family, method, inputs),
                "params": {"method": {}, "p": 0.2, "members": list(MEMBERS), "inputs": len(inputs),
                           "model": "speechbrain-dir", "agreement": dict(agreement[family]),
                           "task_kind": "acoustic" if family == "voices" else "word-based",
                           "cfg": {"sample_rate": 16000, "window_ms": 64.0, "hop_ms": 16.0}},
                "versions": 0, "seconds": 3.5})
    for fill in ("zero", "mean_inp"):
        for n_s in (20, 50):
            for utt, segments in EXCERPTS.items():
                cells.append({
                    "key": hashlib.sha256(f"stability/{fill}/{n_s}/{utt}".encode()).hexdigest(),
                    "board": "stability", "corpus": "vad-ground-truth", "model": "silero-vad",
                    "method": "soundlime-temporal", "fill": fill, "utterance": utt, "target": "class:1:speech",
                    "seed": 0, "status": "ok", "reason": None,
                    "raw": {"weights": _stability_weights(fill, n_s, utt), "n_samples": n_s,
                            "speech_segments": segments, "p_speech": 0.5},
                    "params": {"method": {}, "n_samples": n_s, "runs": 2, "reference_fill": "zero",
                               "cfg": {"sample_rate": 16000, "window_ms": 64.0, "hop_ms": 16.0}},
                    "versions": 0, "seconds": 2.0})
    doc = {
        "schema": "ssbm-bench-submission", "schema_version": 2, "created": "2026-01-01T00:00:00Z",
        "submitter": "hand made", "ssbm_bench_version": "0.1.0",
        "suite": {"name": "handmade-all", "digest": _digest(source), "source": source},
        "corpora": [{"name": label.split("[")[0], "label": label, "digest": digest}
                    for label, digest in CORPUS_DIGESTS.items()],
        "run": {"executor": {"name": "inprocess", "params": {}}, "seconds": 60.0, "computed": len(cells)},
        "versions": [VERSIONS], "cells": cells, "leaderboard": {},
    }
    doc["leaderboard"] = leaderboard_of(doc)
    return doc


def write_suites_all(folder: Path) -> Path:
    """The suites the version-1 and version-2 hand-made submissions need."""
    write_suites(folder)
    (folder / "handmade-all.toml").write_text(SUITE_ALL_TOML)
    return folder
