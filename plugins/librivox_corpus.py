"""The `librivox` corpus plugin: real read speech from pocketsphinx's test data.

What the data holds (Debian ``pocketsphinx-testdata`` at
/usr/share/pocketsphinx/test/data, or ``test/data`` in the pocketsphinx 5
source distribution):

* ``librivox/``: 5 sentences of *Sense and Sensibility*, chapter 1, read for
  LibriVox (public domain), 16 kHz 16-bit WAV, listed in ``fileids`` with
  their words in ``transcription`` (``<s> words </s> (id)``). The sdist also
  ships word times: ``<id>.json`` (pocketsphinx JSON, begin and duration in
  seconds) and ``test-align.matchseg`` (frames at 100 a second); the Debian
  package (0.8+5prealpha) ships neither.
* CMU test utterances: ``cards/001-005.wav`` (16 kHz WAV, transcripts in
  ``cards/cards.transcription``) and ``goforward.raw`` (16 kHz 16-bit
  little-endian headerless PCM), whose words -- "go forward ten meters" --
  are the ones pocketsphinx's own tests expect. No times ship for these.

Left out: ``numbers.raw`` and ``something.raw`` (no transcript ships) and
``tidigits/`` (TIDIGITS is an LDC corpus, not CMU's; its feature files hold
no audio).

Where word times ship they are used (times_source "corpus", ``<id>.json``
first, then ``test-align.matchseg``); otherwise the transcript is
force-aligned with pocketsphinx (times_source
"forced-alignment:pocketsphinx", cached like the folder corpus's).
Labels: ``{"source": "librivox" | "cmu", "licence": ...}``.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import CorpusPlugin

from .alignment_formats import match_transcript, parse_json_alignment, parse_matchseg, parse_sphinx_transcription
from .folder_corpus import SAMPLE_RATE, Item, TranscribedAudioCorpus, read_text_file

#: where the Debian package pocketsphinx-testdata installs the data
DEFAULT_PATH = Path("/usr/share/pocketsphinx/test/data")
SUBSETS = ("all", "librivox", "cmu")
LIBRIVOX_LABELS = {"source": "librivox", "licence": "public domain (LibriVox)"}
CMU_LABELS = {"source": "cmu", "licence": "BSD-2-Clause (CMU Sphinx test data)"}
#: the words of goforward.raw, as asserted by pocketsphinx's own tests (test_jsgf.c, alignment_test.py)
GOFORWARD_TEXT = "go forward ten meters"
BOOK = "Sense and Sensibility, chapter 1, by Jane Austen; LibriVox recording"


def find_data(path: str | os.PathLike | None) -> Path:
    """The test-data directory: `path` itself, or its test/data (an unpacked pocketsphinx sdist)."""
    if path is None:
        if not (DEFAULT_PATH / "librivox" / "fileids").is_file():
            raise InputError(
                f"corpus 'librivox': pocketsphinx test data not found at {DEFAULT_PATH}; install the Debian package "
                "pocketsphinx-testdata (make setup does), or pass path= to a copy (an unpacked pocketsphinx source "
                "distribution holds it under test/data)"
            )
        return DEFAULT_PATH
    p = Path(path).expanduser()
    for candidate in (p, p / "test" / "data", p / "data"):
        if (candidate / "librivox" / "fileids").is_file() or (candidate / "cards" / "cards.fileids").is_file():
            return candidate
    raise InputError(
        f"corpus 'librivox': {p} holds no pocketsphinx test data; expected librivox/fileids or cards/cards.fileids "
        "in it or in its test/data (install the Debian package pocketsphinx-testdata (make setup does) for the "
        f"default copy at {DEFAULT_PATH})"
    )


def read_wav16(path: Path) -> np.ndarray:
    import soundfile as sf

    if not path.is_file():
        raise InputError(f"audio file {path}: not found")
    try:
        data, sr = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as exc:  # soundfile raises several types for damaged files
        raise InputError(f"audio file {path}: cannot be decoded ({exc}); expected 16 kHz 16-bit WAV") from exc
    if sr != SAMPLE_RATE or data.shape[1] != 1:
        raise InputError(f"audio file {path}: {sr} Hz, {data.shape[1]} channels; expected 16 kHz mono")
    return data[:, 0].copy()


def read_raw16(path: Path) -> np.ndarray:
    """Headerless 16-bit little-endian mono PCM at 16 kHz (sphinx's .raw)."""
    if not path.is_file():
        raise InputError(f"audio file {path}: not found")
    data = path.read_bytes()
    if len(data) % 2:
        raise InputError(f"audio file {path}: odd number of bytes; expected 16-bit little-endian PCM at 16 kHz")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"{path}: not found; the pocketsphinx test data seems incomplete")
    return [s.strip() for s in read_text_file(path).splitlines() if s.strip()]


def librivox_items(data: Path) -> list[Item]:
    d = data / "librivox"
    fileids = _lines(d / "fileids")
    texts = parse_sphinx_transcription(read_text_file(d / "transcription"), str(d / "transcription"))
    matchseg_path = d / "test-align.matchseg"
    matchseg = parse_matchseg(read_text_file(matchseg_path), str(matchseg_path)) if matchseg_path.is_file() else {}
    items = []
    for fid in fileids:
        if fid not in texts:
            raise InputError(f"{d / 'transcription'}: no line for {fid!r}, which {d / 'fileids'} lists")
        text = texts[fid]
        words, times_file = None, None
        json_path = d / f"{fid}.json"
        if json_path.is_file():
            times_file = json_path
            raw = parse_json_alignment(read_text_file(json_path), str(json_path))
        elif fid in matchseg:
            times_file, raw = matchseg_path, matchseg[fid]
        if times_file is not None:
            words = match_transcript(text, raw, alignment_source=str(times_file), transcript_source=str(d / "transcription"))
        items.append(
            Item(
                id=fid,
                audio=d / f"{fid}.wav",
                text=text,
                read_pcm=partial(read_wav16, d / f"{fid}.wav"),
                transcript_source=str(d / "transcription"),
                words=words,
                labels=dict(LIBRIVOX_LABELS),
                meta={"book": BOOK, **({"times_file": str(times_file)} if times_file else {})},
            )
        )
    return items


def cmu_items(data: Path) -> list[Item]:
    d = data / "cards"
    fileids = _lines(d / "cards.fileids")
    texts = parse_sphinx_transcription(read_text_file(d / "cards.transcription"), str(d / "cards.transcription"))
    items = []
    for fid in fileids:
        if fid not in texts:
            raise InputError(f"{d / 'cards.transcription'}: no line for {fid!r}, which {d / 'cards.fileids'} lists")
        items.append(
            Item(
                id=f"cards-{fid}",
                audio=d / f"{fid}.wav",
                text=texts[fid],
                read_pcm=partial(read_wav16, d / f"{fid}.wav"),
                transcript_source=str(d / "cards.transcription"),
                labels=dict(CMU_LABELS),
            )
        )
    raw = data / "goforward.raw"
    if raw.is_file():
        items.append(
            Item(
                id="goforward",
                audio=raw,
                text=GOFORWARD_TEXT,
                read_pcm=partial(read_raw16, raw),
                transcript_source="pocketsphinx's tests (goforward.gram, test_jsgf.c)",
                labels=dict(CMU_LABELS),
            )
        )
    return items


class LibrivoxCorpus(TranscribedAudioCorpus):
    """5 LibriVox sentences and 6 CMU test utterances from pocketsphinx's test data (see the module doc).

    `path`: another copy of the data (default: the Debian package's);
    `subset`: "librivox", "cmu" or "all" (default).
    """

    name = "librivox"

    def __init__(self, path: str | os.PathLike | None = None, subset: str = "all", aligner: str = "pocketsphinx"):
        if subset not in SUBSETS:
            raise InputError(f"corpus 'librivox': unknown subset {subset!r}; expected one of {', '.join(SUBSETS)}")
        self.data_path = find_data(path)
        self.subset = subset
        items = []
        if subset in ("all", "librivox"):
            items += librivox_items(self.data_path)
        if subset in ("all", "cmu"):
            items += cmu_items(self.data_path)
        super().__init__(items, name=self.name, aligner=aligner)

    def describe(self) -> dict:
        return {**super().describe(), "path": str(self.data_path), "subset": self.subset}


@hookimpl
def register_corpora(register):
    register(
        CorpusPlugin.of(
            LibrivoxCorpus,
            description=(
                "real read speech from pocketsphinx-testdata: 5 LibriVox sentences (public domain) + 6 CMU test "
                "utterances, 16 kHz; shipped word times where present, else pocketsphinx forced alignment"
            ),
        )
    )
