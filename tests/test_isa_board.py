"""ISA end to end: a real seed family (speechbrain, 2 seeds), a captum method
and the energy baseline through the CLI, the store and the `isa` board; and
the board's arithmetic on a hand-made store row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from e2e_helpers import cli
from ssbm_bench.harness.store import CellRow
from ssbm_bench_plugins.boards.isa import bootstrap_isa, isa_rows
from ssbm_bench.errors import SuiteError
from ssbm_bench.harness.suite import parse_suite

SUITE = """
[suite]
name = "isa-tiny"
boards = ["isa"]
[corpus]
name = "synthetic"
[[models]]
name = "pocketsphinx"
[[methods]]
name = "energy"
[isa]
families = ["voices"]
seeds = 2
inputs = 3
epochs = 2
[[isa.methods]]
name = "saliency"
[[isa.methods]]
name = "random"
[[isa.methods]]
name = "saliency"
params = { feature = "embedding" }
"""


def cell(overlaps, baseline, method="saliency"):
    pairs = [{"pair": [f"seed-{i}", f"seed-{i + 1}"], "overlaps": o, "baseline": b}
             for i, (o, b) in enumerate(zip(overlaps, baseline))]
    return CellRow(key=method, board="isa", suite="s", suite_digest="d", corpus="c", corpus_digest="cd",
                   model="family:f", method=method, fill="-", utterance="*", target="gold class", seed=0,
                   status="ok", reason=None, result=None,
                   raw={"p": 0.2, "aggregations": {"none": {"pairs": pairs}}},
                   params={"agreement": {"kappa": 0.5, "error_kappa": 0.1, "accuracy": [0.9, 0.8]},
                           "task_kind": "acoustic"}, versions={}, seconds=1.0)


def test_board_arithmetic_hand_worked():
    # pair 1 overlaps [1, 0.5] -> 0.75; pair 2 [0.5, 0.5] -> 0.5; ISA = mean = 0.625, median 0.625
    rows = isa_rows([cell([[1.0, 0.5], [0.5, 0.5]], [[0.0, 0.5], [0.5, 0.0]]),
                     cell([[1.0, 1.0], [1.0, 1.0]], [[0.5, 0.5], [0.5, 0.5]], method="energy")])
    sal = next(r for r in rows if r.method == "saliency")
    assert sal.score == pytest.approx(0.625) and sal.median == pytest.approx(0.625)
    assert sal.baseline == pytest.approx(0.25) and sal.n == 2 and sal.n_pairs == 2
    assert sal.ci_low <= sal.score <= sal.ci_high
    energy = next(r for r in rows if r.method == "energy")
    # perfect ISA, but energy ignores the model: ranked after a method that uses it
    assert energy.model_independent and energy.rank == 2 and sal.rank == 1


def test_bootstrap_is_degenerate_for_constant_overlaps():
    assert bootstrap_isa(np.full((3, 5), 0.4)) == pytest.approx((0.4, 0.4))


@pytest.mark.parametrize("change, message", [
    ({"seeds": 1}, "at least 2"), ({"families": []}, "non-empty list"), ({"p": 0}, "isa.p"),
    ({"method": None}, "at least one"), ({"familes": ["voices"]}, "did you mean 'families'"),
])
def test_bad_isa_sections_are_named(change, message):
    import tomllib

    doc = tomllib.loads(SUITE)
    if "method" in change:
        del doc["isa"]["methods"]
    else:
        doc["isa"].update(change)
    if "familes" in change:
        del doc["isa"]["families"]
    with pytest.raises(SuiteError, match=message):
        parse_suite(doc)


def test_isa_suite_runs_through_the_cli(tmp_path):
    suite = tmp_path / "isa.toml"
    suite.write_text(SUITE)
    db = tmp_path / "isa.sqlite"
    env = {"SSBM_BENCH_CACHE": str(tmp_path / "cache")}
    run = cli("run", str(suite), "--db", str(db), "--no-progress", env=env)
    assert "3 computed (0 skipped, 0 errors)" in run.stdout, run.stdout + run.stderr
    rows = json.loads(cli("leaderboard", "--db", str(db), "--board", "isa", "--format", "json").stdout)
    assert {(r["method"], r["aggregation"]) for r in rows} == {
        (m, a) for m in ("saliency", "random", "saliency[feature=embedding]") for a in ("none", "frames", "words")}
    # the input type is a condition of its own: the spectrogram, or the members' shared filterbank embedding
    assert {r["input_type"] for r in rows if r["method"] == "saliency"} == {"stft:magnitude"}
    assert {r["input_type"] for r in rows if "embedding" in r["method"]} == {"embedding:normalised fbank"}
    for r in rows:
        assert r["model"] == "family:voices" and r["n"] == 3 and r["n_pairs"] == 1
        assert 0.0 <= r["score"] <= 1.0 and r["kappa"] is not None
    floor = [r for r in rows if r["method"] == "random"]  # seeded, model-independent: identical maps
    assert all(r["score"] == 1.0 and r["model_independent"] for r in floor)
    md = cli("leaderboard", "--db", str(db), "--board", "isa").stdout
    assert "### ISA" in md and "shuffled baseline" in md and "random (model-independent)" in md
    cli("leaderboard", "--db", str(db), "--board", "isa", "--figures", str(tmp_path / "fig"))
    (png,) = (tmp_path / "fig").glob("*--isa.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    again = cli("run", str(suite), "--db", str(db), "--no-progress", env=env)
    assert "3 found in the store, 0 computed" in again.stdout


def test_word_aligned_feature_mask():
    from ssbm_bench.feature_projections import word_mask
    from ssbm_bench_plugins.captum_perturbation import FeatureAblationMethod

    # words on frames [1, 3) and [4, 6); the rest (frames 0, 3, 6, 7) is one more feature
    assert word_mask(3, 8, [(1, 3), (4, 6)])[0].tolist() == [2, 0, 0, 2, 1, 1, 2, 2]
    assert word_mask(3, 8, [(1, 3), (4, 6)]).shape == (3, 8)
    from ssbm_bench.errors import InputError

    with pytest.raises(InputError, match="segments must be 'patches' or 'words'"):
        FeatureAblationMethod(segments="sentences")


@pytest.mark.parametrize("name, families", [("quick", 2), ("standard", 4), ("isa-methods", 2)])
def test_committed_suites_carry_an_isa_section(name, families):
    from pathlib import Path

    from ssbm_bench.harness.suite import load_suite

    suite = load_suite(Path(__file__).resolve().parent.parent / "leaderboards" / "suites" / f"{name}.toml")
    assert "isa" in suite.boards and len(suite.settings["isa"].families) == families and suite.settings["isa"].seeds >= 3
