"""The folder corpus given a user's imperfect folder: bad files are skipped (or refused, strict), named, never echoed.

Each refusal is asserted by its message (the file, and the numbers or
intervals at fault). Folders are built in tmp_path from small WAVs written
with soundfile and hand-written TextGrid/CTM/JSON files, plus the synthetic
corpus's FLAC files where a real recording is wanted (from
test_folder_corpus, whose fixtures and helpers this module shares).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import test_folder_corpus as folder_tests

from ssbm_bench.errors import InputError
from ssbm_bench.plugins import get_registry
from ssbm_bench.types import Word
from ssbm_bench_plugins import folder_corpus
from ssbm_bench_plugins.alignment_formats import (
    parse_ctm,
    parse_json_alignment,
    parse_matchseg,
    parse_textgrid,
)
from ssbm_bench_plugins.folder_corpus import FolderCorpus, read_audio_file

# the shared fixtures: the synthetic recordings, and a private forced-alignment cache for every test
synth = folder_tests.synth
private_cache = folder_tests.private_cache
_put, _textgrid_long = folder_tests._put, folder_tests._textgrid_long

SECRET = "hunter2-TOP-SECRET-do-not-print"
RATE = 16000


def _wav(path: Path, seconds: float = 1.0, channels: int = 1, rate: int = RATE) -> Path:
    """A tone (a different pitch per channel), 16-bit PCM."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * (220 * (c + 1)) * t) for c in range(channels)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x if channels > 1 else x[:, 0], rate, subtype="PCM_16")
    return path


def _times(*words: tuple[str, float, float]) -> str:
    """A JSON word-times file's text."""
    return json.dumps([{"word": w, "start": s, "end": e} for w, s, e in words])


def _utt(root: Path, stem: str, seconds: float = 1.0, channels: int = 1, words=(("la", 0.1, 0.4), ("la", 0.5, 0.9))):
    """A tone with a transcript and JSON word times: a good utterance, needing no forced alignment."""
    audio = _wav(root / f"{stem}.wav", seconds, channels)
    (root / f"{stem}.txt").write_text(" ".join(w for w, _, _ in words) + "\n")
    (root / f"{stem}.json").write_text(_times(*words))
    return audio


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _secret_file(tmp_path: Path) -> Path:
    """A private file outside any corpus folder."""
    other = tmp_path / "elsewhere"
    other.mkdir(exist_ok=True)
    secret = other / "private.txt"
    secret.write_text(f"{SECRET} la la\n")
    return secret


def _build(root: Path, **kw) -> tuple[FolderCorpus, list[str]]:
    """The corpus and the messages of the warnings it gave while being built."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corpus = FolderCorpus(root, **kw)
    return corpus, [str(w.message) for w in caught]


# -- the digest of a good folder is what it was -------------------------------------------------------------


def test_digest_of_a_good_folder_is_pinned(tmp_path, synth):
    """Pinned before skipping, link refusal and downmix notes were added: none of them may move it."""
    root = tmp_path / "pin"
    _put(root, "a", synth[0])
    (root / "a.json").write_text(json.dumps([w.to_dict() for w in synth[0].words]))
    _put(root, "sub/b", synth[1])
    (root / "sub/b.TextGrid").write_text(_textgrid_long(synth[1].words, synth[1].duration))
    t = np.arange(RATE) / RATE
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 220 * t)], axis=1)
    sf.write(str(root / "tone.wav"), stereo, RATE, subtype="PCM_16")
    (root / "tone.txt").write_text("la la\n")
    (root / "tone.json").write_text(json.dumps([{"word": "la", "start": 0.1, "end": 0.4},
                                                {"word": "la", "start": 0.5, "end": 0.9}]))
    corpus, _ = _build(root)
    assert corpus.skipped == []
    assert corpus.digest() == "bf75a03787b61a70eb4b6a9438b6c3ad9009e020af23ac50dd59ca9b53b5e62c"
    assert set(corpus.describe()) == {"name", "digest", "utterances", "path", "notes"}  # no "skipped" key


# -- one bad file: skipped, listed, said once; strict refuses; all bad is an error ---------------------------


def test_a_bad_file_is_skipped_listed_and_said_once(tmp_path):
    root = tmp_path / "mixed"
    _utt(root, "a")
    _utt(root, "c")
    good_digest = FolderCorpus(root).digest()
    bad = _wav(root / "b.wav")  # no transcript
    corpus, said = _build(root)
    reason = f"audio file {bad}: no transcript; expected {root / 'b.txt'} holding the words spoken"
    assert corpus.ids() == ["a", "c"]
    assert corpus.skipped == [(str(bad), reason)]
    assert len(said) == 1 and "skipped 1 file(s), running the other 2 utterance(s)" in said[0] and reason in said[0]
    assert corpus.describe()["skipped"] == [{"file": str(bad), "reason": reason}]
    assert corpus.digest() == good_digest  # the digest covers the utterances served, and only those

    with pytest.raises(InputError) as err:  # strict: refused, with the same reason
        get_registry().create("corpus", "folder", path=str(root), strict=True)
    assert str(err.value) == reason


def test_every_file_bad_is_an_error_listing_the_reasons(tmp_path):
    root = tmp_path / "allbad"
    _wav(root / "a.wav")
    _utt(root, "b")
    (root / "b.json").write_text(_times(("la", 0.5, 0.9), ("la", 0.1, 0.4)))
    with pytest.raises(InputError) as err:
        FolderCorpus(root)
    msg = str(err.value)
    assert "corpus 'folder': every recording was refused (2 file(s)); nothing to run" in msg
    assert f"audio file {root / 'a.wav'}: no transcript" in msg
    assert f"{root / 'b.json'}: word 2 'la' [0.10, 0.40] starts before word 1 'la' [0.50, 0.90]" in msg


def test_strict_must_be_a_boolean(tmp_path):
    _utt(tmp_path / "s", "a")
    with pytest.raises(InputError, match="corpus 'folder': strict must be true or false, got 'yes'"):
        FolderCorpus(tmp_path / "s", strict="yes")


def test_an_unreadable_corpus_wide_ctm_skips_the_utterances_it_may_time(tmp_path):
    """Serving them force-aligned would silently swap the user's times for the aligner's."""
    root = tmp_path / "ctm"
    _utt(root, "own")  # times of its own: kept
    _wav(root / "a.wav")
    (root / "a.txt").write_text("la\n")
    (root / "all.ctm").write_text("a 1 0.1 la\n")  # four fields
    corpus, said = _build(root)
    assert corpus.ids() == ["own"]
    (ctm_file, ctm_reason), (audio_file, audio_reason) = corpus.skipped
    assert ctm_file == str(root / "all.ctm") and ctm_reason.startswith(f"{root / 'all.ctm'}, line 1: 4 fields")
    assert audio_file == str(root / "a.wav")
    assert (f"no word times of its own, and the corpus-wide {root / 'all.ctm'} that may hold them was refused"
            in audio_reason)
    assert "skipped 2 file(s)" in said[0]


# -- truncated audio ----------------------------------------------------------------------------------------


def test_a_truncated_wav_is_refused_with_declared_and_present_sizes(tmp_path):
    root = tmp_path / "trunc"
    _utt(root, "good")
    audio = _utt(root, "cut", seconds=33000 / RATE)  # 66044 bytes: 44 of header, 66000 of samples
    _truncate(audio, 22000)  # libsndfile alone reads this as 0.686 s of audio, without a word
    expected = (
        f"audio file {audio}: truncated: its header declares 33000 frames (66000 bytes of samples), 2.062 s, "
        "but only 10978 frames (21956 bytes), 0.686 s, are there; expected a complete recording"
    )
    corpus, said = _build(root)
    assert corpus.ids() == ["good"]
    assert corpus.skipped[0][1].startswith(expected)
    with pytest.raises(InputError) as err:
        FolderCorpus(root, strict=True)
    assert str(err.value).startswith(expected)


def test_a_truncated_aiff_is_refused(tmp_path):
    audio = _wav(tmp_path / "a.aiff", seconds=1.0)
    size = audio.stat().st_size
    _truncate(audio, size - 2000)  # 1000 frames short
    with pytest.raises(InputError, match=rf"{audio}: truncated: its header declares 16000 frames .* only 15000 frames"):
        read_audio_file(audio)


def test_fewer_samples_decoded_than_declared_is_refused(tmp_path, monkeypatch):
    """The check behind the header parser, for formats it does not read (a decoder that stops early)."""
    import ssbm_bench.audio

    audio = _wav(tmp_path / "a.wav", seconds=1.0)
    real = ssbm_bench.audio.load_audio
    monkeypatch.setattr(ssbm_bench.audio, "load_audio", lambda *a, **k: real(*a, **k)[:8000])
    with pytest.raises(InputError, match=rf"{audio}: truncated: its header declares 16000 frames, 1.000 s, "
                                         r"but only 8000 frames, 0.500 s, are there"):
        read_audio_file(audio)


def test_complete_wavs_with_trailing_chunks_or_a_streamed_header_are_read(tmp_path):
    """Only less data than declared is truncation: a chunk after the data, or a size never filled in, is not."""
    audio = _wav(tmp_path / "a.wav", seconds=0.5)
    data = audio.read_bytes()
    audio.write_bytes(data[:4] + (len(data) + 4).to_bytes(4, "little") + data[8:] + b"LIST\x04\x00\x00\x00abcd")
    assert len(read_audio_file(audio)) == 8000
    streamed = tmp_path / "s.wav"
    streamed.write_bytes(data[:40] + b"\xff\xff\xff\xff" + data[44:])  # data size unknown
    assert len(read_audio_file(streamed)) == 8000


# -- word times out of order or overlapping -----------------------------------------------------------------

TG_HEAD = ('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n2\n<exists>\n1\n"IntervalTier"\n"words"\n0\n2\n')


def _short_textgrid(intervals) -> str:
    return TG_HEAD + f"{len(intervals)}\n" + "".join(f'{a}\n{b}\n"{t}"\n' for a, b, t in intervals)


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (parse_textgrid, _short_textgrid([(0, 1.1, ""), (1.1, 1.3, "the"), (1.2, 1.5, "cat"), (1.5, 2, "")]),
         "t.TextGrid: tier 'words' interval 3 'cat' [1.20, 1.50] overlaps tier 'words' interval 2 'the' [1.10, 1.30]"),
        (parse_textgrid, _short_textgrid([(1.1, 1.3, "the"), (0.2, 0.5, "cat")]),
         "t.TextGrid: tier 'words' interval 2 'cat' [0.20, 0.50] starts before "
         "tier 'words' interval 1 'the' [1.10, 1.30]"),
        (parse_json_alignment, _times(("the", 1.1, 1.3), ("cat", 1.2, 1.5)),
         "t.json: word 2 'cat' [1.20, 1.50] overlaps word 1 'the' [1.10, 1.30]"),
        (parse_json_alignment, json.dumps({"w": [{"t": "the", "b": 1.1, "d": 0.2}, {"t": "cat", "b": 0.5, "d": 0.1}]}),
         "t.json: word 2 'cat' [0.50, 0.60] starts before word 1 'the' [1.10, 1.30]"),
        (parse_ctm, "u 1 1.10 0.20 the\nx 1 0 1 other\nu 1 1.20 0.30 cat\n",
         "t.ctm, utterance 'u': line 3 'cat' [1.20, 1.50] overlaps line 1 'the' [1.10, 1.30]"),
    ],
)
def test_overlapping_or_out_of_order_words_are_refused(parse, text, message):
    with pytest.raises(InputError) as err:
        parse(text, "t." + {"parse_textgrid": "TextGrid", "parse_json_alignment": "json"}.get(parse.__name__, "ctm"))
    assert str(err.value).startswith(message + "; expected words in spoken order")


def test_touching_words_fillers_and_unordered_ctm_lines_are_accepted():
    """Words may touch (to rounding); pocketsphinx's fillers overlap by design; CTM lines are sorted, as before."""
    ctm = "u 1 0.300000 0.100000 b\nu 1 0.1 0.2000001 a\n"  # a ends 0.3000001, where b starts: rounding
    assert parse_ctm(ctm, "x.ctm") == {"u": [Word("a", 0.1, 0.3), Word("b", 0.3, 0.4)]}
    tg = _short_textgrid([(0, 0.5, "<sil>"), (0.2, 0.6, "sp"), (0.6, 0.9, "hi")])
    assert [w.text for w in parse_textgrid(tg, "x.TextGrid")] == ["<sil>", "sp", "hi"]


def test_an_overlapping_textgrid_in_a_folder_skips_its_utterance(tmp_path):
    root = tmp_path / "tg"
    _utt(root, "good")
    _wav(root / "bad.wav")
    (root / "bad.txt").write_text("the cat\n")
    (root / "bad.TextGrid").write_text(_short_textgrid([(0.1, 0.5, "the"), (0.4, 0.8, "cat")]))
    corpus, _ = _build(root)
    assert corpus.ids() == ["good"]
    assert corpus.skipped == [(str(root / "bad.wav"), f"{root / 'bad.TextGrid'}: tier 'words' interval 2 'cat' "
                               "[0.40, 0.80] overlaps tier 'words' interval 1 'the' [0.10, 0.50]; expected words in "
                               "spoken order, each starting at or after the end of the one before")]


# -- symbolic links out of the folder; no file contents in any message ---------------------------------------


def _link_transcript(root: Path, secret: Path) -> Path:
    _wav(root / "t.wav")
    (root / "t.txt").symlink_to(secret)  # the reported leak
    return root / "t.txt"


def _link_audio(root: Path, secret: Path) -> Path:
    (root / "au.txt").write_text("la la\n")
    (root / "au.wav").symlink_to(_wav(secret.parent / "outside.wav"))
    return root / "au.wav"


def _link_times(root: Path, secret: Path) -> Path:
    _wav(root / "j.wav")
    (root / "j.txt").write_text("la la\n")
    (root / "j.json").symlink_to(secret)
    return root / "j.json"


def _link_directory(root: Path, secret: Path) -> Path:
    (root / "sub").symlink_to(secret.parent, target_is_directory=True)
    return root / "sub"


def _link_shared_ctm(root: Path, secret: Path) -> Path:
    (root / "shared.ctm").symlink_to(secret)
    return root / "shared.ctm"


def _link_stray(root: Path, secret: Path) -> Path:
    os.symlink(os.path.relpath(secret, root), root / "stray.txt")  # relative, and belonging to no recording
    return root / "stray.txt"


LINK_CASES = {f.__name__[6:]: f for f in [
    _link_transcript, _link_audio, _link_times, _link_directory, _link_shared_ctm, _link_stray,
]}  # fmt: skip


def test_links_out_of_the_folder_are_refused_by_name_never_read(tmp_path):
    secret = _secret_file(tmp_path)
    root = tmp_path / "links"
    _utt(root, "good")
    links = [make(root, secret) for make in LINK_CASES.values()]
    corpus, said = _build(root)
    assert corpus.ids() == ["good"]
    reasons = "\n".join(r for _, r in corpus.skipped)
    for link in links:
        assert f"{link}: a symbolic link leading outside the corpus folder {root}; expected the folder's own" in reasons
    assert SECRET not in reasons + "".join(said) + json.dumps(corpus.describe())
    assert str(secret) not in reasons  # the link is named, not where it leads


@pytest.mark.parametrize("case", sorted(LINK_CASES))
def test_strict_refuses_a_link_out_of_the_folder_by_name(tmp_path, case):
    root = tmp_path / "strict"
    _utt(root, "good")
    link = LINK_CASES[case](root, _secret_file(tmp_path))
    with pytest.raises(InputError) as err:
        FolderCorpus(root, strict=True)
    assert str(err.value).startswith(f"{link}: a symbolic link leading outside the corpus folder {root}")
    assert SECRET not in str(err.value)


def test_links_within_the_folder_are_followed(tmp_path):
    root = tmp_path / "inside"
    _utt(root, "real/a")
    (root / "b.wav").symlink_to(root / "real/a.wav")
    (root / "b.txt").symlink_to("real/a.txt")
    (root / "b.json").symlink_to(root / "real/a.json")
    (root / "again").symlink_to(root / "real", target_is_directory=True)  # not descended: already scanned
    corpus, said = _build(root)
    assert corpus.ids() == ["b", "real/a"] and corpus.skipped == [] and said == []


@pytest.mark.parametrize(
    "parse, text",
    [
        (parse_json_alignment, json.dumps([{"word": "a", "start": SECRET, "end": 1}])),
        (parse_json_alignment, json.dumps([SECRET])),
        (parse_json_alignment, json.dumps([{"word": [SECRET], "start": 0, "end": 1}])),
        (parse_json_alignment, json.dumps({"w": [{"t": "a", "b": SECRET, "d": 1}]})),
        (parse_json_alignment, json.dumps({"w": [SECRET]})),
        (parse_textgrid, TG_HEAD + f'1\n0\n"{SECRET}"\n"x"\n'),
        (parse_textgrid, f'File type = "ooTextFile"\nObject class = "TextGrid"\n0\n1\n<exists>\n1\n"{SECRET}"\n"t"\n'),
        (parse_ctm, f"u 1 {SECRET} 0.2 a\n"),
        (parse_matchseg, f"u S 0 T 0 A 0 L 0 {SECRET} 0 0 a 5\n"),
        (parse_json_alignment, json.dumps([{"word": SECRET, "start": 2, "end": 1}])),  # a word is clipped
    ],
)
def test_parser_errors_quote_no_file_contents(parse, text):
    with pytest.raises(InputError) as err:
        parse(text, "f.txt")
    assert "f.txt" in str(err.value) and SECRET not in str(err.value)


def test_folder_errors_quote_no_file_contents(tmp_path):
    """A transcript or times file that is not one (a private document) is refused without a word of it beyond a clip."""
    root = tmp_path / "leak"
    _wav(root / "a.wav")
    (root / "a.txt").write_text(f"la {SECRET}\n")
    (root / "a.json").write_text(_times(("la", 0.1, 0.4), ("la", 0.5, 0.9)))
    _wav(root / "b.wav")
    (root / "b.txt").write_text("la\n")
    (root / "b.json").write_text(json.dumps([{"word": SECRET, "start": 0.1, "end": 5.0}]))
    (root / "all.ctm").write_text(f"{SECRET} 1 0.1 0.2 a\n")  # an utterance with no audio: a warning
    with pytest.raises(InputError) as err:
        _build(root)
    assert SECRET not in str(err.value)
    msg = str(err.value)
    assert "hunter2topsecretdonotprint" not in msg  # nor the transcript's normalised form of it
    assert f"{root / 'a.json'}: word 2 is 'la' but the transcript {root / 'a.txt'} has 'hunter2topsecret" in msg
    assert f"{root / 'b.json'}: word 1 is 'hunter2-TOP-SECRET" in msg and "...' but the transcript" in msg
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError):
            FolderCorpus(root)
    assert caught and not any(SECRET in str(w.message) for w in caught)


# -- more than one channel: averaged, and said ---------------------------------------------------------------


def test_a_stereo_recording_is_averaged_to_mono_and_said_so(tmp_path):
    root = tmp_path / "stereo"
    _utt(root, "mono")
    stereo = _utt(root, "two", channels=2)
    corpus, said = _build(root)
    note = f"{stereo}: 2 channels averaged to mono"
    assert said == [f"corpus 'folder': 1 recording(s) with more than one channel, averaged to mono "
                    f"(corpus.notes lists them): {note}"]
    assert corpus.notes == [note] and corpus.describe()["notes"] == [note]
    utt = corpus.get("two")
    assert utt.meta["downmix"] == "2 channels averaged to mono" and "downmix" not in corpus.get("mono").meta
    x, _ = sf.read(str(stereo), dtype="float64")
    assert np.max(np.abs(utt.waveform - x.mean(axis=1))) < 2 / 32768  # the average, on the 16-bit grid
    assert folder_corpus.SHOWN_REASONS >= 1


def test_a_forced_aligner_error_is_clipped(tmp_path):
    """The aligner names the words it cannot place; a transcript that is really a document must not come back whole."""
    root = tmp_path / "oov"
    _wav(root / "a.wav")
    (root / "a.txt").write_text(" ".join(f"qzx{chr(97 + i % 26)}{i}vk" for i in range(200)) + "\n")
    corpus = FolderCorpus(root)
    with pytest.raises(InputError) as err:
        corpus.digest()
    msg = str(err.value)
    assert "failed: pocketsphinx align: not in the pronunciation dictionary: 'qzxa0vk'" in msg
    assert msg.endswith("...") and len(msg) < len(str(root)) * 2 + folder_corpus.ALIGNER_REASON_LIMIT + 200
