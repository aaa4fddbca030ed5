"""The paper's figures from a results store, and `ssbm-bench explain`.

Fast tests draw figures from hand-made store rows (every map kind) and run
`explain_word` with bubble noise on a planted recogniser. The end-to-end
tests run a real one-utterance suite with pocketsphinx once per module
(energy at two thresholds, random at one: 8 decodes), then draw its
figures through the CLI and explain one of its words (energy: two decodes).
"""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from e2e_helpers import RECOGNISED, cli
from ssbm_bench.audio import StftConfig
from ssbm_bench.cli import main
from ssbm_bench.errors import InputError
from ssbm_bench.figures import slug
from ssbm_bench_plugins.boards.ssbm import SsbmBoard
from ssbm_bench_plugins.boards.ssbm_figures import binned_accuracy, collect
from ssbm_bench.mixtures import mixture_waveforms, stable_seed
from ssbm_bench.harness.store import CellRow
from ssbm_bench.harness.suite import PluginRef
from ssbm_bench.metrics.ssbm import noise_mask
from ssbm_bench.types import Target
from ssbm_bench.word_explanation import DEFAULT_THRESHOLDS, explain_word, find_word, parse_params
from ssbm_bench.word_figure import n_rows, render, write_wavs
from ssbm_bench_plugins.bubble.method import BubbleMethod
from ssbm_bench_plugins.white_noise import WhiteNoiseFill

CFG = StftConfig()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails unless the file is a PNG."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


# --------------------------------------------------------------------------- figures from rows


def entry(t, lw, le, mw, me, lo=0.5, mo=0.5):
    return {"threshold": t, "lerf": {"a_w": lw, "a_o": lo, "e": le, "hyp": ""},
            "morf": {"a_w": mw, "a_o": mo, "e": me, "hyp": ""}}


def row(key, method, kind, utt, entries, model="m", status="ok"):
    return CellRow(key=key, board="ssbm", suite="s", suite_digest="sd", corpus="synthetic", corpus_digest="cd",
                   model=model, method=method, fill="white-noise", utterance=utt, target="word:0:x", seed=0,
                   status=status, reason=None if status == "ok" else "why", result=None,
                   raw={"thresholds": entries, "level_db": 0.0, "map": {"kind": kind}} if status == "ok" else None,
                   params={"denominator_floor": 0.01}, versions={"ssbm-bench": "t"})


def fake_cells() -> list[CellRow]:
    cells = []
    for u in ("u1", "u2"):
        cells.append(row(f"b{u}", "bubble[n_mixtures=20]", "pvalue", u,
                         [entry(1e-6, 1, 0.95, 0, 0.02), entry(1e-3, 1, 0.9, 0, 0.05), entry(1e-1, 1, 0.6, 0, 0.3)]))
        cells.append(row(f"e{u}", "energy", "magnitude", u,
                         [entry(-60.0, 0, 0.9, 1, 0.2), entry(-40.0, 1, 0.92, 0, 0.1), entry(0.0, 0, 0.99, 1, 0.01)]))
        cells.append(row(f"r{u}", "random", "score", u, [entry(0.05, 0, 0.95, 1, 0.05), entry(0.5, 1, 0.5, 0, 0.5)]))
    cells.append(row("rx", "random", "score", "u3", [], status="error"))
    cells.append(row("other", "energy", "magnitude", "u1", [entry(-40.0, 1, 0.5, 0, 0.5)], model="whisper-tiny-en"))
    return cells


def test_binned_accuracy_rounds_to_the_nearest_percent_and_averages():
    x, y, n = binned_accuracy([0.101, 0.099, 0.5, 0.504, 0.996], [1, 0, 1, 1, 0])
    np.testing.assert_allclose(x, [0.10, 0.50, 1.00])
    np.testing.assert_allclose(y, [0.5, 1.0, 0.0])
    assert n.tolist() == [2, 2, 1]
    assert binned_accuracy([], [])[0].size == 0
    with pytest.raises(InputError):
        binned_accuracy([0.1, 0.2], [1])


def test_collect_groups_by_model_and_keeps_map_kinds_and_failures():
    groups = collect(fake_cells())
    assert [(g.model, sorted(g.methods)) for g in groups] == [
        ("m", ["bubble[n_mixtures=20]", "energy", "random"]), ("whisper-tiny-en", ["energy"])]
    m = groups[0].methods
    assert m["bubble[n_mixtures=20]"].kind == "pvalue" and m["energy"].kind == "magnitude"
    assert m["random"].kind == "score" and m["random"].errors == 1 and len(m["random"].points) == 4
    assert len(m["energy"].words) == 2


def test_write_figures_one_pair_per_model_with_every_kind(tmp_path):
    paths = SsbmBoard().figures(fake_cells(), tmp_path / "figs")
    names = sorted(p.name for p in paths)
    assert names == ["s--synthetic--m--white-noise--accuracy-vs-energy.png",
                     "s--synthetic--m--white-noise--ssbm-vs-threshold.png",
                     "s--synthetic--whisper-tiny-en--white-noise--accuracy-vs-energy.png",
                     "s--synthetic--whisper-tiny-en--white-noise--ssbm-vs-threshold.png"]
    sizes = {p.name: png_size(p) for p in paths}
    assert sizes["s--synthetic--m--white-noise--accuracy-vs-energy.png"] == (1200, 480)
    assert sizes["s--synthetic--m--white-noise--ssbm-vs-threshold.png"] == (1000, 1020)  # three method panels
    assert sizes["s--synthetic--whisper-tiny-en--white-noise--ssbm-vs-threshold.png"] == (1000, 420)
    assert SsbmBoard().figures(fake_cells(), tmp_path / "none", suite="other-suite") == []


def test_slug_is_file_name_safe():
    assert slug("bubble[n_mixtures=20,tune_bubbles=False]") == "bubble-n_mixtures-20-tune_bubbles-False"
    assert slug("whisper-tiny-en") == "whisper-tiny-en" and slug("/../") == "x"


# --------------------------------------------------------------------------- explain, planted recogniser


def test_explain_bubble_shows_the_analysis_mixtures_with_their_stored_hypotheses(tmp_path):
    from test_bubble_method import PatchRecogniser, _tones

    utt = _tones()
    model = PatchRecogniser(utt.waveform)
    method = BubbleMethod(n_mixtures=40, bubbles_per_second=5.0, tune_bubbles=False, batch_size=40)
    target = find_word(utt, "beta")
    ex = explain_word(model, PluginRef("patch"), method, PluginRef("bubble"), WhiteNoiseFill(),
                      PluginRef("white-noise"), utt, target, "digest", level_db=0.0, n_mixtures=4)
    assert ex.smap.kind == "pvalue" and ex.threshold == DEFAULT_THRESHOLDS["pvalue"]
    assert ex.level_source == "--level-db" and model.decoded == 40 + 2  # analysis mixtures + LeRF/MoRF
    # half of the shown mixtures kept the word, half lost it, and each hypothesis is what the model hears
    assert [m["recognised"] for m in ex.mixtures].count(True) == 2 and len(ex.mixtures) == 4
    for m in ex.mixtures:
        assert m["waveform"].dtype == np.float32 and m["audibility"].shape == ex.smap.shape
        assert m["hypothesis"] == [w.lower() for w in model.transcribe([m["waveform"]])[0]]
    # the LeRF/MoRF masks and mixtures are the harness's own
    for d, r in ex.directions.items():
        np.testing.assert_array_equal(r.mask, noise_mask(ex.smap.thresholded_values(), ex.threshold, "pvalue", d))
    lerf, morf = mixture_waveforms(ex_clean(utt), [ex.directions["lerf"].mask, ex.directions["morf"].mask],
                                   WhiteNoiseFill(), utt.waveform, 0.0, stable_seed("noise", utt.id, 0), CFG)
    np.testing.assert_array_equal(lerf, ex.directions["lerf"].waveform)
    np.testing.assert_array_equal(morf, ex.directions["morf"].waveform)

    png = render(ex, tmp_path / "x.png")
    assert n_rows(ex) == 5 and png_size(png) == (1400, 1500)
    wavs = write_wavs(ex, tmp_path / "wav")
    assert len(wavs) == 3 + 4
    for p in wavs:
        x, sr = sf.read(p)
        assert sr == 16000 and len(x) == len(utt.waveform) and np.abs(x).max() <= 1.0


def ex_clean(utt):
    import torch

    from ssbm_bench.audio import stft

    return stft(torch.as_tensor(utt.waveform, dtype=torch.float32), CFG)


# --------------------------------------------------------------------------- explain, bad input


def test_parse_params_reads_toml_values():
    assert parse_params(["n_mixtures=20", "tune_bubbles=false", "rate=2.5", "name=abc", 'q="x y"'], "--param") == {
        "n_mixtures": 20, "tune_bubbles": False, "rate": 2.5, "name": "abc", "q": "x y"}
    with pytest.raises(InputError, match="expected key=value"):
        parse_params(["n_mixtures"], "--param")


def test_find_word_by_index_or_text():
    from test_bubble_method import _tones

    utt = _tones()
    assert find_word(utt, "1") == Target("word", 1, "beta")
    assert find_word(utt, "GAMMA") == Target("word", 2, "gamma")
    with pytest.raises(InputError, match=r"has 3 words \(0..2: 0=alpha, 1=beta, 2=gamma\); no word 3"):
        find_word(utt, "3")
    with pytest.raises(InputError, match="no word 'delta'; its words: 0=alpha"):
        find_word(utt, "delta")


BASE = ["explain", "--utterance", RECOGNISED[0], "--word", "3", "--model", "pocketsphinx", "--method", "energy"]


def run_main(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("change, message", [  # message: a fragment of the error, or several
    ({"--utterance": "rms_h02_1"}, ("corpus 'synthetic' has no utterance 'rms_h02_1' (did you mean", "'rms_h02_01'",
                                    "known ids: awb_h01_01", "(100 in all")),
    ({"--word": "sunset"}, "has no word 'sunset'; its words: 0=the, 1=boy"),
    ({"--word": "the"}, "word 'the' occurs 2 times in utterance 'rms_h02_01' (at [0, 5]); give its index"),
    ({"--word": "42"}, "has 8 words (0..7"),
    ({"--model": "pocketsfinx"}, "unknown model 'pocketsfinx'; known models: "),
    ({"--method": "bubbles"}, ("unknown method 'bubbles'; known methods: ", "bubble, ", "energy", "random")),
    ({"--corpus": "librivocks"}, ("unknown corpus 'librivocks'", "librivox", "synthetic")),
])
def test_explain_bad_input_is_named_without_a_traceback(capsys, tmp_path, change, message):
    argv = list(BASE) + ["--out", str(tmp_path / "x.png")]
    for flag, value in change.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code, out, err = run_main(capsys, argv)
    assert code == 2, (out, err)
    for fragment in (message,) if isinstance(message, str) else message:
        assert fragment in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_explain_bad_method_parameter_is_named(capsys, tmp_path):
    code, _, err = run_main(capsys, BASE[:-2] + ["--method", "bubble", "--param", "n_mixtures=2",
                                                 "--out", str(tmp_path / "x.png")])
    assert code == 2 and "bubble: n_mixtures must be an integer >= 3, got 2" in err
    code, _, err = run_main(capsys, BASE + ["--param", "oops", "--out", str(tmp_path / "x.png")])
    assert code == 2 and "--param: expected key=value, got 'oops'" in err


# --------------------------------------------------------------------------- end to end, real pocketsphinx


#: the smallest real run that has two methods and a curve: one utterance, one word, energy at two thresholds and
#: random at one, one calibration level (pocketsphinx is unrecognisable at 0 dB): 8 decodes in all
TINY_FIGURE_SUITE = f"""
[suite]
name = "tiny"
[corpus]
name = "synthetic"
utterances = ["{RECOGNISED[0]}"]
words_per_utterance = 1
[[models]]
name = "pocketsphinx"
[[methods]]
name = "energy"
[[methods]]
name = "random"
[ssbm]
thresholds = {{ magnitude = [-40.0, -20.0], score = [0.1] }}
calibration = {{ levels_db = [0.0], max_accuracy = 0.1, utterances = 1 }}
"""


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("figs")
    suite = d / "tiny.toml"
    suite.write_text(TINY_FIGURE_SUITE)
    db = d / "tiny.sqlite"
    cli("run", str(suite), "--db", str(db), "--no-progress")
    return db


def test_leaderboard_writes_the_figures_next_to_it(tiny_store, tmp_path):
    out = tmp_path / "board.md"
    proc = cli("leaderboard", "--db", str(tiny_store), "--out", str(out), "--figures", str(tmp_path / "figures"))
    assert "wrote 2 figure(s)" in proc.stdout and out.is_file()
    figs = sorted((tmp_path / "figures").iterdir())
    assert [p.name for p in figs] == ["tiny--synthetic--pocketsphinx--white-noise--accuracy-vs-energy.png",
                                      "tiny--synthetic--pocketsphinx--white-noise--ssbm-vs-threshold.png"]
    assert png_size(figs[0]) == (1200, 480) and png_size(figs[1]) == (1000, 720)
    # stdout stays the table alone when it is printed there (so CSV/JSON can be piped)
    proc = cli("leaderboard", "--db", str(tiny_store), "--format", "csv", "--figures", str(tmp_path / "again"))
    assert proc.stdout.splitlines()[0].startswith("board,") and "figure" not in proc.stdout
    assert "wrote 2 figure(s)" in proc.stderr


def test_explain_energy_end_to_end_png_and_wavs(tiny_store, tmp_path):
    """One word of the stored run: its noise level and best threshold are reused, and the PNG and WAVs written."""
    png, wav = tmp_path / "e.png", tmp_path / "wav"
    proc = cli("explain", "--utterance", RECOGNISED[0], "--word", "when", "--model", "pocketsphinx", "--method",
               "energy", "--db", str(tiny_store), "--out", str(png), "--wav", str(wav))
    assert "magnitude map, threshold " in proc.stdout and "(best threshold in the results store)" in proc.stdout
    assert "noise +0 dB (results store)" in proc.stdout  # the tiny suite calibrated pocketsphinx at 0 dB
    # the masks, noise and decoding are the harness's: the same dropped energy and hypothesis as the stored cell
    best = float(proc.stdout.split("threshold ")[1].split()[0])
    conn = sqlite3.connect(tiny_store)
    raw = json.loads(conn.execute("SELECT raw FROM cells WHERE method='energy'").fetchone()[0])
    conn.close()
    stored = next(e for e in raw["thresholds"] if abs(e["threshold"] - best) < 1e-9)
    for d, name in (("lerf", "LeRF"), ("morf", "MoRF")):
        assert f"{name}: drops e = {stored[d]['e']:.3f} of the speech energy; heard {stored[d]['hyp']!r}" in proc.stdout
    assert png_size(png) == (1400, 900)  # three rows: energy has no mixtures of its own
    files = sorted(p.name for p in wav.iterdir())
    assert len(files) == 3 and files[0] == "rms_h02_01_w4_clean.wav"
    assert files[1].startswith("rms_h02_01_w4_energy_lerf_t") and files[2].startswith("rms_h02_01_w4_energy_morf_t")
    clean, sr = sf.read(wav / files[0], dtype="float32")
    assert sr == 16000
    for name in files[1:]:
        x, sr = sf.read(wav / name, dtype="float32")
        assert sr == 16000 and len(x) == len(clean) and 0 < np.abs(x).max() <= 1.0
        assert not np.allclose(x, clean, atol=1e-3)  # noise was added
