"""The folder corpus (the user's own audio) and the alignment-file parsers.

Real audio throughout: folders are built in tmp_path from the synthetic
corpus's FLAC files, whose synthesiser word times are exact, so the word
times read back from each alignment format, and pocketsphinx's forced
alignment, can be checked against them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ssbm_bench.cache_dir import CACHE_ENV
from ssbm_bench.errors import InputError
from ssbm_bench.plugins import get_registry
from ssbm_bench.types import Word
from ssbm_bench_plugins import folder_corpus
from ssbm_bench_plugins.alignment_formats import (
    decode_text,
    drop_fillers,
    match_transcript,
    parse_ctm,
    parse_json_alignment,
    parse_textgrid,
    parse_textgrid_tiers,
)
from ssbm_bench_plugins.folder_corpus import FolderCorpus, open_folder
from ssbm_bench_plugins.synthetic import SyntheticCorpus
from ssbm_bench_plugins.synthetic.corpus import DEFAULT_PATH as SYNTHETIC_PATH
from ssbm_bench_plugins.synthetic.manifest import ManifestCorpus, write_corpus

FORCED = "forced-alignment:pocketsphinx"


# -- known-answer tests of the parsers -------------------------------------------------

LONG_TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0 
xmax = 1.5 
tiers? <exists> 
size = 3 
item []: 
    item [1]:
        class = "IntervalTier" 
        name = "phones" 
        xmin = 0 
        xmax = 1.5 
        intervals: size = 1 
        intervals [1]:
            xmin = 0 
            xmax = 1.5 
            text = "HH" 
    item [2]:
        class = "TextTier" 
        name = "events" 
        xmin = 0 
        xmax = 1.5 
        points: size = 1 
        points [1]:
            number = 0.7 
            mark = "click" 
    item [3]:
        class = "IntervalTier" 
        name = "Words" 
        xmin = 0 
        xmax = 1.5 
        intervals: size = 4 
        intervals [1]:
            xmin = 0 
            xmax = 0.25 
            text = "" 
        intervals [2]:
            xmin = 0.25 
            xmax = 0.6 
            text = "Hello," 
        intervals [3]:
            xmin = 0.6 
            xmax = 1.2 
            text = "say @@hi@@" 
        intervals [4]:
            xmin = 1.2 
            xmax = 1.5 
            text = "   " 
""".replace("@@", '""')  # Praat doubles a quote inside a string

SHORT_TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

0
1.5
<exists>
1
"IntervalTier"
"tier one"
0
1.5
3
0
0.4
""
0.4
0.9
"first"
0.9
1.5
"second word"
"""


def test_textgrid_long_format_known_answer():
    words = parse_textgrid(LONG_TEXTGRID, "a.TextGrid")
    assert words == [Word("Hello,", 0.25, 0.6), Word('say "hi"', 0.6, 1.2)]  # tier "Words", empty intervals skipped
    tiers = parse_textgrid_tiers(LONG_TEXTGRID, "a.TextGrid")
    assert [(t["name"], t["class"]) for t in tiers] == [("phones", "IntervalTier"), ("events", "TextTier"),
                                                        ("Words", "IntervalTier")]
    assert tiers[1]["items"] == [(0.7, "click")]
    assert parse_textgrid(LONG_TEXTGRID, "a.TextGrid", tier="phones") == [Word("HH", 0.0, 1.5)]


def test_textgrid_short_format_known_answer_and_utf16():
    expected = [Word("first", 0.4, 0.9), Word("second word", 0.9, 1.5)]  # no "words" tier: the first interval tier
    assert parse_textgrid(SHORT_TEXTGRID, "b.TextGrid") == expected
    assert parse_textgrid(decode_text(SHORT_TEXTGRID.encode("utf-16"), "b.TextGrid"), "b.TextGrid") == expected


@pytest.mark.parametrize(
    "text, match",
    [
        ("hello", "not a TextGrid"),
        # praatio reads a number where a label belongs as part of a label and stops early: the count names it
        (SHORT_TEXTGRID.replace('"first"', "0.5"), r"tier 1 'tier one' declares 3 intervals but 2 could be read.*expected"),
        (SHORT_TEXTGRID[:-20], "ends early"),
        (LONG_TEXTGRID, "no interval tier named 'nope'"),
    ],
)
def test_textgrid_errors_name_the_file(text, match):
    with pytest.raises(InputError, match=match) as err:
        parse_textgrid(text, "c.TextGrid", tier="nope" if "nope" in match else None)
    assert "c.TextGrid" in str(err.value)


def test_json_known_answers():
    assert parse_json_alignment('[{"word": "a", "start": 0, "end": 0.5}, {"text": "b", "start": 0.5, "end": 1}]',
                                "x.json") == [Word("a", 0, 0.5), Word("b", 0.5, 1.0)]
    assert parse_json_alignment('{"words": [{"word": "a", "start": 0.1, "end": 0.2}]}', "x.json") == [Word("a", 0.1, 0.2)]
    # pocketsphinx 5's JSON output (begin, duration), as in its sdist's test data
    ps = ('{"b":0.000,"d":0.6,"p":1,"t":"he was","w":[{"b":0.000,"d":0.010,"p":1.000,"t":"<s>"},'
          '{"b":0.0,"d":0.21,"p":1,"t":"<sil>"},{"b":0.210,"d":0.120,"p":1,"t":"he"},{"b":0.330,"d":0.230,"p":1,"t":"was(2)"}]}')
    words = parse_json_alignment(ps, "x.json")
    assert [w.text for w in words] == ["<s>", "<sil>", "he", "was(2)"]
    assert drop_fillers(words) == [Word("he", 0.21, 0.33), Word("was(2)", 0.33, 0.56)]


@pytest.mark.parametrize(
    "text, match",
    [
        ("[{", "not valid JSON"),
        ('{"segments": []}', "expected a JSON list"),
        ('[{"word": "a", "start": 0}]', "item 1: missing end"),
        ('[{"word": "a", "start": 0.5, "end": 0.2}]', "start <= end"),
        ('[{"word": "", "start": 0, "end": 1}]', "non-empty string"),
    ],
)
def test_json_errors_name_the_file(text, match):
    with pytest.raises(InputError, match=match) as err:
        parse_json_alignment(text, "bad.json")
    assert "bad.json" in str(err.value)


def test_ctm_known_answer():
    text = ";; comment\nutt2 1 0.50 0.20 WORLD 0.9\nutt1 A 0.00 0.30 hello\n\nutt2 1 0.10 0.30 hello\n"
    assert parse_ctm(text, "x.ctm") == {
        "utt2": [Word("hello", 0.1, 0.4), Word("WORLD", 0.5, 0.7)],  # sorted by start
        "utt1": [Word("hello", 0.0, 0.3)],
    }
    for bad, match in [("utt 1 0.0 word\n", "4 fields"), ("utt 1 x 0.1 w\n", "must be numbers"), ("", "no CTM lines")]:
        with pytest.raises(InputError, match=match):
            parse_ctm(bad, "bad.ctm")


def test_match_transcript_normalises_and_names_the_first_difference():
    aligned = [Word("<sil>", 0, 0.1), Word("THE", 0.1, 0.2), Word("cat(2)", 0.2, 0.5), Word("sp", 0.5, 0.6)]
    got = match_transcript("The cat.", aligned, alignment_source="a.json", transcript_source="a.txt")
    assert got == [Word("the", 0.1, 0.2), Word("cat", 0.2, 0.5)]
    with pytest.raises(InputError, match=r"a\.json: word 2 is 'cat\(2\)' but the transcript a\.txt has 'dog'"):
        match_transcript("the dog", aligned, alignment_source="a.json", transcript_source="a.txt")
    with pytest.raises(InputError, match="ends after 2 words but the transcript a.txt goes on with 'sat'"):
        match_transcript("the cat sat", aligned, alignment_source="a.json", transcript_source="a.txt")
    with pytest.raises(InputError, match="word 2 is 'cat\\(2\\)' but the transcript a.txt ends after 1 words"):
        match_transcript("the", aligned, alignment_source="a.json", transcript_source="a.txt")


# -- folders of real audio ------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth():
    """Three real recordings (one sentence, three voices) with exact synthesiser word times."""
    return list(SyntheticCorpus(limit=3).utterances())


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Forced alignments go to a cache inside tmp_path, never to the user's cache or the folder."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


def test_every_cache_is_under_the_one_cache_root(tmp_path, monkeypatch):
    from ssbm_bench.cache_dir import cache_root
    from ssbm_bench_plugins import commands_corpus, seed_families
    from ssbm_bench_plugins.whisper import cache as whisper_cache

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(CACHE_ENV, "~/elsewhere")  # the user's own spelling: ~ is expanded
    assert cache_root() == tmp_path / "home" / "elsewhere"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "ssbm-bench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == tmp_path / "home" / ".cache" / "ssbm-bench"
    # the plugins that cache ask it, rather than keeping a copy of the rule
    for module in (folder_corpus, commands_corpus, seed_families, whisper_cache):
        assert module.cache_root is cache_root


def _put(root: Path, name: str, utt, text: str | None = None) -> Path:
    dst = root / f"{name}.flac"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(utt.meta["path"], dst)
    (root / f"{name}.txt").write_text((utt.meta["text"] if text is None else text) + "\n", encoding="utf-8")
    return dst


def _textgrid_long(words, duration) -> str:
    items, t = [], 0.0
    for w in words:
        if w.start > t:
            items.append((t, w.start, ""))
        items.append((w.start, w.end, w.text))
        t = w.end
    items.append((t, duration, ""))
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0 ", f"xmax = {duration!r} ",
           "tiers? <exists> ", "size = 2 ", "item []: ",
           "    item [1]:", '        class = "IntervalTier" ', '        name = "phones" ', "        xmin = 0 ",
           f"        xmax = {duration!r} ", "        intervals: size = 1 ", "        intervals [1]:",
           "            xmin = 0 ", f"            xmax = {duration!r} ", '            text = "x" ',
           "    item [2]:", '        class = "IntervalTier" ', '        name = "words" ', "        xmin = 0 ",
           f"        xmax = {duration!r} ", f"        intervals: size = {len(items)} "]
    for i, (a, b, s) in enumerate(items, start=1):
        out += [f"        intervals [{i}]:", f"            xmin = {a!r} ", f"            xmax = {b!r} ",
                f'            text = "{s}" ']
    return "\n".join(out) + "\n"


def _textgrid_short(words, duration) -> str:
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", repr(duration), "<exists>", "1",
           '"IntervalTier"', '"my tier"', "0", repr(duration), str(2 * len(words))]
    t = 0.0
    for w in words:
        out += [repr(t), repr(w.start), '""', repr(w.start), repr(w.end), f'"{w.text.upper()}"']
        t = w.end
    return "\n".join(out) + "\n"


def _ctm(utt_id, words) -> str:
    return "".join(f"{utt_id} 1 {w.start:.6f} {w.end - w.start:.6f} {w.text.upper()} 0.95\n" for w in words)


def _assert_same_times(got, expected, tol=2e-6):
    assert [w.text for w in got] == [w.text for w in expected]
    for a, b in zip(got, expected):
        assert abs(a.start - b.start) <= tol and abs(a.end - b.end) <= tol, (a, b)


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_every_alignment_format_and_forced_alignment(tmp_path, synth):
    root = tmp_path / "mine"
    rms, awb, kal = synth
    _put(root, "json_utt", rms, text=rms.meta["text"].upper())  # case and punctuation differ from the times' words
    (root / "json_utt.json").write_text(json.dumps([{"word": w.text, "start": w.start, "end": w.end} for w in rms.words]))
    _put(root, "tg_long", awb)
    (root / "tg_long.TextGrid").write_text(_textgrid_long(awb.words, awb.duration))
    _put(root, "tg_short", kal)
    (root / "tg_short.TextGrid").write_bytes(_textgrid_short(kal.words, kal.duration).encode("utf-16"))
    _put(root, "sub/ctm_utt", rms)
    (root / "sub/ctm_utt.ctm").write_text(_ctm("whatever", rms.words))
    _put(root, "wide_utt", awb)
    (root / "all.ctm").write_text(_ctm("wide_utt", awb.words))
    _put(root, "forced", kal)
    before = _snapshot(root)

    corpus = get_registry().create("corpus", "folder", path=str(root))
    assert isinstance(corpus, FolderCorpus)
    assert corpus.ids() == ["forced", "json_utt", "sub/ctm_utt", "tg_long", "tg_short", "wide_utt"]
    utts = {u.id: u for u in corpus.utterances()}
    for uid, src in [("json_utt", rms), ("tg_long", awb), ("tg_short", kal), ("sub/ctm_utt", rms), ("wide_utt", awb)]:
        u = utts[uid]
        assert u.times_source == "corpus" and u.sample_rate == 16000
        assert np.array_equal(u.waveform, src.waveform)
        _assert_same_times(u.words, src.words)
        assert u.reference == src.reference
    assert utts["wide_utt"].meta["times_file"] == str(root / "all.ctm")

    forced = utts["forced"]
    assert forced.times_source == FORCED
    assert [w.text for w in forced.words] == [w.text for w in kal.words]
    errors = np.abs([[a.start - b.start, a.end - b.end] for a, b in zip(forced.words, kal.words)])
    assert np.median(errors) < 0.05, errors  # observed: about 0.01 s
    assert all(0 <= w.start < w.end <= forced.duration for w in forced.words)
    assert _snapshot(root) == before  # nothing written into the user's folder
    assert list((tmp_path / "cache" / "alignments").glob("*.json"))  # the alignment went to the cache


def test_digest_is_stable_and_covers_times_and_samples(tmp_path, synth):
    root = tmp_path / "d"
    rms = synth[0]
    _put(root, "a", rms)
    times = [{"text": w.text, "start": w.start, "end": w.end} for w in rms.words]
    (root / "a.json").write_text(json.dumps(times))
    first = FolderCorpus(root).digest()
    assert FolderCorpus(root).digest() == first and len(first) == 64
    times[2]["end"] -= 0.01  # shorter: a longer word 3 would overlap word 4, which is refused
    (root / "a.json").write_text(json.dumps(times))
    assert FolderCorpus(root).digest() != first
    (root / "a.json").unlink()  # forced alignment: another times_source, another digest
    assert FolderCorpus(root).digest() not in (first,)


@pytest.mark.parametrize("rate", [44100, 8000])
def test_other_sample_rates_are_resampled_with_a_warning(tmp_path, synth, rate):
    from scipy.signal import resample_poly

    rms = synth[0]
    root = tmp_path / "r"
    root.mkdir()
    x = resample_poly(rms.waveform.astype(np.float64), rate, 16000)
    sf.write(str(root / "a.wav"), x, rate, subtype="PCM_16")
    (root / "a.txt").write_text(rms.meta["text"])
    (root / "a.json").write_text(json.dumps([w.to_dict() for w in rms.words]))
    with pytest.warns(UserWarning, match=rf"a\.wav: resampled from {rate} Hz to 16000 Hz"):
        corpus = FolderCorpus(root)
    (u,) = list(corpus.utterances())
    assert u.sample_rate == 16000 and abs(u.duration - rms.duration) < 1e-3
    n = min(len(u.waveform), len(rms.waveform))
    corr = np.corrcoef(u.waveform[:n], rms.waveform[:n])[0, 1]
    assert corr > (0.99 if rate > 16000 else 0.5), corr  # 8 kHz keeps only the band below 4 kHz
    with pytest.warns(UserWarning, match="resampled"):  # every load says so
        again = FolderCorpus(root)
    assert again.digest() == corpus.digest()


def test_a_manifest_directory_is_read_as_a_manifest_corpus(tmp_path, synth):
    root = tmp_path / "m"
    entries = [
        {"id": u.id, "audio": f"audio/{u.id}.flac", "sample_rate": 16000, "text": u.meta["text"],
         "words": [w.to_dict() for w in u.words], "labels": {"speaker": u.labels["voice"]}}
        for u in synth
    ]
    write_corpus(root, entries, {u.id: np.round(u.waveform * 32768).astype(np.int16) for u in synth})
    corpus = open_folder(root)
    assert isinstance(corpus, ManifestCorpus) and corpus.name == "folder"
    assert corpus.ids() == [u.id for u in synth]
    assert corpus.digest() == (root / "digest.txt").read_text().strip()
    (u,) = [u for u in corpus.utterances() if u.id == synth[1].id]
    assert u.labels == {"speaker": synth[1].labels["voice"]} and u.times_source == "corpus"
    _assert_same_times(u.words, synth[1].words)

    # the synthetic corpus's own copy: its top-level label field must be declared to reproduce its digest
    copy = tmp_path / "synthetic"
    shutil.copytree(SYNTHETIC_PATH, copy)
    corpus = get_registry().create("corpus", "folder", path=str(copy / "manifest.jsonl"), label_fields=["voice"])
    assert len(corpus) == 100 and corpus.digest() == SyntheticCorpus().digest()


def test_without_a_path_it_says_it_needs_one():
    with pytest.raises(InputError, match="corpus 'folder' needs a `path`"):
        get_registry().create("corpus", "folder")


# -- bad input: each names the file and what was expected --------------------------------------


def _one(root, synth, **kw):
    return _put(root, "utt", synth[0], **kw)


def _case_missing_transcript(root, synth):
    audio = _one(root, synth)
    (root / "utt.txt").unlink()
    return rf"{audio}: no transcript; expected {root / 'utt.txt'}"


def _case_empty_transcript(root, synth):
    _one(root, synth, text="  ... \n")
    return rf"{root / 'utt.txt'}: empty transcript; expected the words spoken in"


def _case_corrupt_audio(root, synth):
    (root / "utt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk" * 10)
    (root / "utt.txt").write_text("hello")
    return rf"{root / 'utt.wav'}: cannot be decoded .*expected audio that libsndfile reads"


def _case_times_past_the_end(root, synth):
    _one(root, synth)
    words = [w.to_dict() for w in synth[0].words]
    words[-1]["end"] = synth[0].duration + 1.0
    (root / "utt.json").write_text(json.dumps(words))
    return rf"{root / 'utt.json'}: word 'planks' ends at .* after the end of .*utt\.flac .*expected times inside"


def _case_unknown_alignment_format(root, synth):
    _one(root, synth)
    (root / "utt.lab").write_text("0.1 0.2 the\n")
    return rf"{root / 'utt.lab'}: word times in a format this corpus does not read \(\.lab\); expected <stem>\.json"


def _case_json_of_another_shape(root, synth):
    _one(root, synth)
    (root / "utt.json").write_text('{"segments": []}')
    return rf"{root / 'utt.json'}: expected a JSON list of"


def _case_not_a_textgrid(root, synth):
    _one(root, synth)
    (root / "utt.TextGrid").write_text("0.1 0.2 the\n")
    return rf"{root / 'utt.TextGrid'}: not a TextGrid; expected a Praat TextGrid"


def _case_bad_ctm(root, synth):
    _one(root, synth)
    (root / "utt.ctm").write_text("utt 1 0.1 the\n")
    return rf"{root / 'utt.ctm'}, line 1: 4 fields; expected CTM lines"


def _case_words_differ_from_transcript(root, synth):
    _one(root, synth)
    words = [w.to_dict() for w in synth[0].words]
    words[2]["text"] = "kayak"
    (root / "utt.json").write_text(json.dumps(words))
    return rf"{root / 'utt.json'}: word 3 is 'kayak' but the transcript {root / 'utt.txt'} has 'canoe'"


def _case_two_alignments(root, synth):
    _one(root, synth)
    (root / "utt.json").write_text(json.dumps([w.to_dict() for w in synth[0].words]))
    (root / "utt.TextGrid").write_text(_textgrid_long(synth[0].words, synth[0].duration))
    return "word times given more than once"


def _case_no_audio(root, synth):
    (root / "utt.txt").write_text("hello")
    (root / "utt.json").write_text("[]")
    return rf"no audio files in {root} .*looked for \*\.wav, \*\.flac"


def _case_not_a_directory(root, synth):
    return rf"{root / 'nowhere'} does not exist; expected a directory of audio files"


BAD_CASES = {f.__name__[6:]: f for f in [
    _case_missing_transcript, _case_empty_transcript, _case_corrupt_audio, _case_times_past_the_end,
    _case_unknown_alignment_format, _case_json_of_another_shape, _case_not_a_textgrid, _case_bad_ctm,
    _case_words_differ_from_transcript, _case_two_alignments, _case_no_audio, _case_not_a_directory,
]}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_names_the_file_and_what_was_expected(tmp_path, synth, case):
    root = tmp_path / "bad"
    root.mkdir()
    pattern = BAD_CASES[case](root, synth)
    with pytest.raises(InputError, match=pattern):
        FolderCorpus(root / "nowhere" if case == "not_a_directory" else root)


def test_a_word_the_aligner_cannot_place_is_named_with_the_file(tmp_path, synth):
    root = tmp_path / "oov"
    audio = _one(root, synth, text="The birch qzxvk slid on the smooth planks.")
    corpus = FolderCorpus(root)  # building checks files; alignment runs when words are needed
    with pytest.raises(InputError, match=rf"{audio}: no word times given, .*pocketsphinx failed: .*'qzxvk'"):
        corpus.digest()
