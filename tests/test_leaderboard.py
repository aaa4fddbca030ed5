"""Leaderboard: hand-worked SSBM from raw outcomes, bootstrap interval, formats."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from ssbm_bench.harness.store import CellRow, ResultStore
from ssbm_bench.leaderboard import build_leaderboard, to_csv, to_json, to_markdown
from ssbm_bench_plugins.boards.ssbm import bootstrap_best_ssbm


def entry(t, lw, lo, le, mw, mo, me):
    return {"threshold": t, "lerf": {"a_w": lw, "a_o": lo, "e": le, "hyp": ""},
            "morf": {"a_w": mw, "a_o": mo, "e": me, "hyp": ""}}


def cell(key, method, utt, entries, status="ok"):
    return CellRow(key=key, board="ssbm", suite="s", suite_digest="sd", corpus="synthetic", corpus_digest="cd",
                   model="m", method=method, fill="white-noise", utterance=utt, target="word:0:x", seed=0,
                   status=status, reason=None if status == "ok" else "why", result=None,
                   raw={"thresholds": entries, "level_db": 5.0} if status == "ok" else None,
                   params={"denominator_floor": 0.01}, versions={"ssbm-bench": "t"})


# word 1 (utterance u1):
#   t=0.1: dLeRF = (1-0)/(1-0.5) = 2, dMoRF = (1-0)/0.25 = 4  -> SSBM 6
#   t=0.5: dLeRF = (1-1)/(1-0.2) = 0, dMoRF = (1-1)/0.5 = 0   -> SSBM 0
# word 2 (utterance u2):
#   t=0.1: dLeRF = (0-0)/(0.5) = 0,   dMoRF = (0.5-0)/0.5 = 1 -> SSBM 1
#   t=0.5: dLeRF = (1-0)/(0.25) = 4,  dMoRF = (1-0)/0.5 = 2   -> SSBM 6
# mean over words: t=0.1 -> 3.5, t=0.5 -> 3.0; best threshold 0.1, SSBM 3.5
GOOD = [cell("a1", "good", "u1", [entry(0.1, 1, 0, 0.5, 0, 1, 0.25), entry(0.5, 1, 1, 0.2, 1, 1, 0.5)]),
        cell("a2", "good", "u2", [entry(0.1, 0, 0, 0.5, 0, 0.5, 0.5), entry(0.5, 1, 0, 0.75, 0, 1, 0.5)])]
# a flat method: every word scores SSBM 0 at every threshold
FLAT = [cell(f"b{i}", "flat", u, [entry(0.1, 1, 1, 0.5, 1, 1, 0.5), entry(0.5, 1, 1, 0.5, 1, 1, 0.5)])
        for i, u in enumerate(["u1", "u2"])] + [cell("b9", "flat", "u3", [], status="skipped")]


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as s:
        for c in GOOD + FLAT:
            s.put_cell(c)
        yield s


def test_hand_worked_scores_and_ranks(store):
    rows = {r.method: r for r in build_leaderboard(store)}
    good, flat = rows["good"], rows["flat"]
    assert good.score == pytest.approx(3.5) and good.best_threshold == 0.1
    assert good.delta_lerf == pytest.approx(1.0) and good.delta_morf == pytest.approx(2.5)
    assert (good.rank, flat.rank) == (1, 2)
    assert flat.score == 0.0 and flat.skipped == 1 and flat.n == 2 and good.n_utterances == 2
    # resampling two utterances: {u1,u1} -> 6, {u2,u2} -> 6, mixed -> 3.5
    assert (good.ci_low, good.ci_high) == (pytest.approx(3.5), pytest.approx(6.0))


def test_bootstrap_single_utterance_is_degenerate():
    per_word = np.array([[1.0, 2.0], [3.0, 0.0]])
    assert bootstrap_best_ssbm(per_word, ["u", "u"]) == (2.0, 2.0)


def test_formats_carry_the_required_fields(store):
    rows = build_leaderboard(store)
    data = json.loads(to_json(rows))
    for r in data:
        for k in ("board", "model", "method", "fill", "corpus", "score", "n", "suite", "versions", "ci_low",
                  "ci_high"):
            assert k in r
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [p["method"] for p in parsed] == ["good", "flat"]
    md = to_markdown(rows)
    assert "| 1 | good | white-noise | 3.50 | [3.50, 6.00] | 0.1 |" in md


def test_headings_show_the_last_component_of_an_absolute_path_parameter():
    from ssbm_bench.board_rows import shown_label
    from ssbm_bench.plugins import get_registry

    assert shown_label("folder[path=/home/me/recordings]") == "folder[path=.../recordings]"
    assert shown_label("folder[aligner=x,path=/home/me/rec/]") == "folder[aligner=x,path=.../rec]"
    assert shown_label("transformers-dir[path=~/models/w2v]") == "transformers-dir[path=.../w2v]"
    assert shown_label("folder[path=mine]") == "folder[path=mine]" and shown_label("synthetic") == "synthetic"
    assert shown_label("x[path=/]") == "x[path=/]"
    title = get_registry().board("ssbm").table_title({"suite": "s", "corpus": "folder[path=/home/me/rec]",
                                                       "corpus_digest": "ab" * 8, "model": "pocketsphinx"})
    assert "corpus `folder[path=.../rec]` (digest `abababababab`)" in title and "/home/me" not in title
