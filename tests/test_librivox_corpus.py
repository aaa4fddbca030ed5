"""The librivox corpus: real read speech from the Debian package pocketsphinx-testdata.

The Debian copy (0.8+5prealpha) ships transcripts but no word times, so its
utterances are force-aligned with pocketsphinx; the shipped-times path is
exercised with two timing files of the pocketsphinx 5 sdist (quoted below,
BSD-licensed test data) laid beside a copy of the Debian audio.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ssbm_bench.cache_dir import CACHE_ENV
from ssbm_bench.cli import main
from ssbm_bench.errors import InputError
from ssbm_bench.plugins import get_registry
from ssbm_bench.text import normalise_words
from ssbm_bench_plugins import folder_corpus, librivox_corpus
from ssbm_bench_plugins.alignment_formats import parse_matchseg, parse_sphinx_transcription
from ssbm_bench_plugins.librivox_corpus import DEFAULT_PATH, LibrivoxCorpus

pytestmark = pytest.mark.skipif(
    not (DEFAULT_PATH / "librivox" / "fileids").is_file(),
    reason="needs the Debian package pocketsphinx-testdata (make setup installs it)",
)

FORCED = "forced-alignment:pocketsphinx"
S_AND_S = "sense_and_sensibility_01_austen_64kb-"
LIBRIVOX_IDS = [S_AND_S + n for n in ("0870", "0880", "0890", "0920", "0930")]
CMU_IDS = ["cards-001", "cards-002", "cards-003", "cards-004", "cards-005", "goforward"]
TEXTS = {
    S_AND_S + "0880": "he was not an ill disposed young man",
    "cards-005": "eight of spades four of clubs seven of hearts",
    "goforward": "go forward ten meters",
}

# test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.json of the pocketsphinx 5.1.1 sdist
SDIST_0880_JSON = (
    '{"b":0.000,"d":2.990,"p":0.960,"t":"he was not an ill disposed young man","w":[{"b":0.000,"d":0.010,'
    '"p":1.000,"t":"<s>"},{"b":0.000,"d":0.210,"p":1.000,"t":"<sil>"},{"b":0.210,"d":0.120,"p":1.000,"t":"he"},'
    '{"b":0.330,"d":0.230,"p":1.000,"t":"was(2)"},{"b":0.560,"d":0.570,"p":1.000,"t":"not"},{"b":1.130,'
    '"d":0.170,"p":1.000,"t":"an(2)"},{"b":1.300,"d":0.180,"p":1.000,"t":"ill"},{"b":1.480,"d":0.630,'
    '"p":1.000,"t":"disposed"},{"b":2.110,"d":0.220,"p":1.000,"t":"young"},{"b":2.330,"d":0.410,"p":1.000,'
    '"t":"man"},{"b":2.740,"d":0.240,"p":1.000,"t":"<sil>"}]}\n'
)
SHIPPED_0880 = [("he", 0.21, 0.33), ("was", 0.33, 0.56), ("not", 0.56, 1.13), ("an", 1.13, 1.30),
                ("ill", 1.30, 1.48), ("disposed", 1.48, 2.11), ("young", 2.11, 2.33), ("man", 2.33, 2.74)]
# its line of test/data/librivox/test-align.matchseg (frames at 100 a second)
SDIST_0930_MATCHSEG = (
    "sense_and_sensibility_01_austen_64kb-0930 S 0 T -4129 A -3455 L -674 0 -210 -337 <sil> 21 -157 0 he 38 "
    "-331 0 might 64 -274 0 even 92 -384 0 have 107 -341 0 been 133 -331 0 made 170 -441 0 amiable 227 -830 0 "
    "himself 302 -156 -337 <sil> 327\n"
)
SHIPPED_0930 = [("he", 0.21, 0.38), ("might", 0.38, 0.64), ("even", 0.64, 0.92), ("have", 0.92, 1.07),
                ("been", 1.07, 1.33), ("made", 1.33, 1.70), ("amiable", 1.70, 2.27), ("himself", 2.27, 3.02)]


@pytest.fixture(scope="module")
def corpus(private_cache):
    return LibrivoxCorpus()


@pytest.fixture(scope="module")
def utterances(corpus):
    return {u.id: u for u in corpus.utterances()}


def test_sphinx_format_parsers_known_answers():
    assert parse_sphinx_transcription("<s> ten of clubs  </s> (001)\n<s> five five </s> (004)\n", "t") == {
        "001": "ten of clubs", "004": "five five"}
    (words,) = parse_matchseg(SDIST_0930_MATCHSEG, "m").values()
    assert [(w.text, w.start, w.end) for w in words[:3]] == [("<sil>", 0.0, 0.21), ("he", 0.21, 0.38),
                                                            ("might", 0.38, 0.64)]
    assert words[-1].text == "<sil>" and words[-1].end == 3.27
    with pytest.raises(InputError, match=r"m, line 1: expected utt S scale"):
        parse_matchseg("utt S 0 T 1 A 1 L 0 0 -1 0 he\n", "m")


def test_the_debian_copy_holds_5_librivox_and_6_cmu_utterances(corpus, utterances):
    assert corpus.ids() == LIBRIVOX_IDS + CMU_IDS and len(corpus) == 11
    for uid, u in utterances.items():
        source = "librivox" if uid in LIBRIVOX_IDS else "cmu"
        assert u.labels["source"] == source
        assert u.labels["licence"] == ("public domain (LibriVox)" if source == "librivox" else
                                       "BSD-2-Clause (CMU Sphinx test data)")
        assert u.sample_rate == 16000 and u.waveform.dtype == np.float32 and 1.0 < u.duration < 7.5
        assert u.times_source == FORCED  # the Debian package ships no word times
    for uid, text in TEXTS.items():
        assert [w.text for w in utterances[uid].words] == text.split()
    assert utterances[S_AND_S + "0920"].reference[:6] == ["had", "he", "married", "a", "more", "a"]
    assert utterances["goforward"].meta["path"].endswith("goforward.raw")


def test_words_lie_inside_the_audio_and_over_the_speech(utterances):
    for u in utterances.values():
        assert u.reference == normalise_words(u.meta["text"])
        for w in u.words:
            assert 0.0 <= w.start < w.end <= u.duration + 1e-6, (u.id, w)  # times are kept to the microsecond
        for a, b in zip(u.words, u.words[1:]):
            assert a.end <= b.start + 1e-9, (u.id, a, b)
        x = u.waveform.astype(np.float64)
        inside = np.zeros(len(x), dtype=bool)
        for w in u.words:
            inside[int(w.start * u.sample_rate): int(np.ceil(w.end * u.sample_rate))] = True
        if (~inside).sum() > 0.1 * u.sample_rate:
            ratio_db = 10 * np.log10(np.mean(x[inside] ** 2) / np.mean(x[~inside] ** 2))
            assert ratio_db > 6.0, (u.id, ratio_db)  # observed: 9 dB (goforward) to 30 dB


def test_digest_is_stable_across_loads_with_alignment_recomputed(corpus, tmp_path, monkeypatch):
    first = corpus.digest()
    assert len(first) == 64
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "fresh"))
    monkeypatch.setattr(folder_corpus, "_MEMORY", {})  # nothing remembered: align everything again
    again = LibrivoxCorpus()
    assert again.digest() == first
    assert len(list((tmp_path / "fresh" / "alignments").glob("*.json"))) == 11  # really aligned again
    cmu = LibrivoxCorpus(subset="cmu")
    assert cmu.ids() == CMU_IDS and cmu.digest() != first
    assert LibrivoxCorpus(subset="librivox").ids() == LIBRIVOX_IDS


def test_shipped_times_are_used_and_agree_with_forced_alignment(tmp_path, utterances, private_cache):
    """A copy with the sdist's timing files: .json first, then test-align.matchseg, else forced alignment."""
    data = tmp_path / "test" / "data"
    shutil.copytree(DEFAULT_PATH / "librivox", data / "librivox")
    (data / "librivox" / f"{S_AND_S}0880.json").write_text(SDIST_0880_JSON)
    (data / "librivox" / "test-align.matchseg").write_text(SDIST_0930_MATCHSEG)
    copy = LibrivoxCorpus(path=tmp_path, subset="librivox")  # an sdist root: its test/data is found
    shipped = {u.id: u for u in copy.utterances()}
    assert {k: u.times_source for k, u in shipped.items()} == {
        **{k: FORCED for k in LIBRIVOX_IDS}, S_AND_S + "0880": "corpus", S_AND_S + "0930": "corpus"}
    assert shipped[S_AND_S + "0880"].meta["times_file"].endswith("0880.json")
    for uid, expected in [(S_AND_S + "0880", SHIPPED_0880), (S_AND_S + "0930", SHIPPED_0930)]:
        got = [(w.text, w.start, w.end) for w in shipped[uid].words]
        assert [(t, round(s, 6), round(e, 6)) for t, s, e in got] == expected
        forced = utterances[uid].words
        diffs = np.abs([[a.start - s, a.end - e] for a, (_, s, e) in zip(forced, expected)])
        assert np.median(diffs) <= 0.01 and diffs.max() <= 0.1, diffs  # observed: median 0, max 0.07 s
    assert copy.digest() != LibrivoxCorpus(subset="librivox").digest()  # other times, other digest


def test_missing_package_and_bad_parameters_are_clear(tmp_path, monkeypatch):
    monkeypatch.setattr(librivox_corpus, "DEFAULT_PATH", tmp_path / "not-installed")
    with pytest.raises(InputError, match=r"install the Debian package pocketsphinx-testdata \(make setup does\)"):
        LibrivoxCorpus()
    with pytest.raises(InputError, match=rf"{tmp_path} holds no pocketsphinx test data; expected librivox/fileids"):
        LibrivoxCorpus(path=tmp_path)
    monkeypatch.undo()
    with pytest.raises(InputError, match="unknown subset 'tidigits'; expected one of all, librivox, cmu"):
        LibrivoxCorpus(subset="tidigits")
    bad = tmp_path / "bad" / "librivox"
    shutil.copytree(DEFAULT_PATH / "librivox", bad)
    (bad / "transcription").write_text("<s> he was </s> (someone-else)\n")
    with pytest.raises(InputError, match=r"transcription: no line for 'sense_and_sensibility_01_austen_64kb-0870'"):
        LibrivoxCorpus(path=bad.parent, subset="librivox")


def test_registered_and_listed(corpus, utterances, capsys):
    reg = get_registry()
    assert {"librivox", "folder"} <= set(reg.names("corpus"))
    assert reg.create("corpus", "librivox", subset="cmu").ids() == CMU_IDS
    assert main(["corpus", "list"]) == 0
    out = capsys.readouterr().out
    assert f"[11 utterances, digest {corpus.digest()[:12]}]" in out
    assert "[needs parameters: corpus 'folder' needs a `path`" in out
