"""The deletion board from stored raw outcomes (hand-worked), and the suite's [deletion] section."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ssbm_bench.errors import SsbmBenchError, SuiteError
from ssbm_bench.harness.store import CellRow, ResultStore
from ssbm_bench.harness.suite import parse_suite
from ssbm_bench.leaderboard import build_leaderboard, to_csv, to_json, to_markdown


def cell(key, method, utt, table=None, status="ok", reason=None, seconds=1.0):
    raw = None
    if status == "ok":
        raw = {"conditions": [{"order": o, "fraction": r, "target": v} for (o, r), v in table.items()],
               "clean": {"target": 1.0}, "scoring": {"kind": "token_success"}, "explain_seconds": seconds}
    return CellRow(key=key, board="deletion", suite="s", suite_digest="sd", corpus="synthetic", corpus_digest="cd",
                   model="m", method=method, fill="zero", utterance=utt, target="word:0:x", seed=0, status=status,
                   reason=reason, result=None, raw=raw, params={}, versions={"ssbm-bench": "t"})


def table(top, random, bottom):
    return {**{("top", r): v for r, v in zip((0.2, 0.5, 0.8), top)},
            **{("random", r): v for r, v in zip((0.2, 0.5, 0.8), random)},
            **{("bottom", r): v for r, v in zip((0.2, 0.5, 0.8), bottom)}}


# good: two utterances; mean table top (0.5, 0.25, 0.0), random (1, 0.75, 0.5), bottom (1, 1, 0.75)
# gap = mean(0.5, 0.5, 0.5) = 0.5; 8 of 9 orderings hold (random = bottom = 1 at r = 0.2, a tie);
# top lowest at 3 of 3
GOOD = [cell("g1", "good", "u1", table((1.0, 0.5, 0.0), (1.0, 1.0, 0.5), (1.0, 1.0, 1.0)), seconds=2.0),
        cell("g2", "good", "u2", table((0.0, 0.0, 0.0), (1.0, 0.5, 0.5), (1.0, 1.0, 0.5)), seconds=4.0)]
# inverted: top hurts least; gap = mean(-0.5, -0.5, -0.5)
BAD = [cell("b1", "inverted", "u1", table((1.0, 1.0, 1.0), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0))),
       cell("b2", "inverted", "u2", status="skipped", reason="needs differentiable")]


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as s:
        for c in GOOD + BAD:
            s.put_cell(c)
        yield s


def test_rows_by_hand(store):
    good, bad = build_leaderboard(store, "deletion")
    assert (good.method, good.rank, bad.method, bad.rank) == ("good", 1, "inverted", 2)
    assert good.score == pytest.approx(0.5) and bad.score == pytest.approx(-0.5)
    assert good.table["top"] == {"0.2": 0.5, "0.5": 0.25, "0.8": 0.0}
    assert good.table["random"] == {"0.2": 1.0, "0.5": 0.75, "0.8": 0.5}
    assert (good.cases_held, good.cases_total, good.top_lowest) == (8, 9, 3)
    assert (bad.cases_held, bad.top_lowest) == (0, 0)
    assert good.seconds_per_explanation == pytest.approx(3.0) and good.n_utterances == 2
    assert bad.skipped == 1 and bad.skip_reasons == ["needs differentiable"]
    # per-utterance gaps are 0.5 (u1: (0+0.5+0.5)/3 = 1/3; u2: (1+0.5+0.5)/3 = 2/3); the interval spans them
    assert good.ci_low == pytest.approx(1 / 3) and good.ci_high == pytest.approx(2 / 3)


def test_formats(store):
    rows = build_leaderboard(store, "deletion")
    md = to_markdown(rows)
    assert "### DELETION" in md and "| 1 | good | zero | 0.500 |" in md and "8/9" in md
    assert "| good | zero | 0.500 | 0.250 | 0.000 | 1.000 | 0.750 | 0.500 | 1.000 | 1.000 | 0.750 |" in md
    assert "Skipped: needs differentiable." in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[0]["method"] == "good" and float(parsed[0]["top_0.5"]) == 0.25
    data = json.loads(to_json(rows))
    assert data[1]["skipped"] == 1 and data[0]["table"]["bottom"]["0.8"] == 0.75


def test_ssbm_board_ignores_deletion_rows(store):
    assert build_leaderboard(store, "ssbm") == []
    with pytest.raises(SsbmBenchError, match="unknown board 'sparkle'; known boards: deletion, isa, localisation, ssbm, stability"):
        build_leaderboard(store, "sparkle")


BASE = {"suite": {"name": "t"}, "corpus": {"name": "synthetic"}, "models": [{"name": "m"}],
        "methods": [{"name": "random"}]}


def test_suite_deletion_section():
    s = parse_suite({**BASE, "suite": {"name": "t", "boards": ["ssbm", "deletion"]},
                     "deletion": {"fractions": [0.1, 0.9]}})
    assert s.boards == ("ssbm", "deletion") and s.settings["deletion"].fractions == (0.1, 0.9)
    # a suite that neither lists the board nor configures it has no deletion settings (its plan uses the defaults)
    assert "deletion" not in parse_suite(BASE).settings
    assert parse_suite({**BASE, "suite": {"name": "t", "boards": ["deletion"]}}).settings["deletion"].fractions \
        == (0.2, 0.5, 0.8)
    with pytest.raises(SuiteError, match="deletion.fractions must be a non-empty list of numbers in \\(0, 1\\)"):
        parse_suite({**BASE, "deletion": {"fractions": [0.5, 1.5]}})
    with pytest.raises(SuiteError, match="unknown key 'fraction' in \\[deletion\\].*did you mean 'fractions'"):
        parse_suite({**BASE, "deletion": {"fraction": [0.5]}})
    with pytest.raises(SuiteError, match="unknown board 'sparkle'"):
        parse_suite({**BASE, "suite": {"name": "t", "boards": ["sparkle"]}})


@pytest.mark.parametrize("name", ["quick-captum", "deletion-whisper"])
def test_committed_suites_parse_and_name_known_plugins(name):
    from ssbm_bench.cli import resolve_suite_path
    from ssbm_bench.harness.runner import validate_names
    from ssbm_bench.harness.suite import load_suite
    from ssbm_bench.plugins import build_registry

    suite = load_suite(resolve_suite_path(name))
    assert "deletion" in suite.boards and suite.settings["deletion"].fractions == (0.2, 0.5, 0.8)
    registry = build_registry()
    validate_names(suite, registry)
    for ref in suite.methods:  # every method's parameters are accepted by its factory
        registry.create("method", ref.name, **ref.params)


def test_deletion_jobs_travel_to_worker_processes():
    """The process-pool executor pickles the work function and the jobs."""
    import pickle

    from ssbm_bench.audio import StftConfig
    from ssbm_bench.board import CellIdentity, CellJob
    from ssbm_bench.harness.grid import GridSpec
    from ssbm_bench.harness.runner import run_cell
    from ssbm_bench.harness.suite import PluginRef
    from ssbm_bench.types import Target
    from ssbm_bench_plugins.boards.deletion import DeletionSpec

    grid = GridSpec(PluginRef("synthetic"), PluginRef("silero-vad"), PluginRef("random"), PluginRef("zero"),
                    "rms_h02_01", Target("class", 1, "speech"), 0, 0.0, StftConfig())
    job = CellJob("k", "deletion", CellIdentity("synthetic", "d", "silero-vad", "random", "zero", "rms_h02_01",
                                                "class:1:speech"), {}, DeletionSpec(grid, (0.2, 0.5, 0.8)))
    assert pickle.loads(pickle.dumps(job)) == job
    assert pickle.loads(pickle.dumps(run_cell)) is run_cell
