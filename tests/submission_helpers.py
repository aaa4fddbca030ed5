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
    from ssbm_bench.submission import board_rows_json, cell_rows

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
    doc["leaderboard"] = board_rows_json(cell_rows(doc))
    return doc


def variant(doc: dict, edit) -> dict:
    d = copy.deepcopy(doc)
    edit(d)
    return d


def redigest(doc: dict) -> None:
    """After editing suite.source, make suite.digest (and the rows, which carry it) match it again."""
    from ssbm_bench.submission import board_rows_json, cell_rows

    doc["suite"]["digest"] = _digest(doc["suite"]["source"])
    doc["leaderboard"] = board_rows_json(cell_rows(doc))
