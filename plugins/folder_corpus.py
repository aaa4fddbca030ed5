"""The `folder` corpus plugin: the user's own recordings, with transcripts and word times.

Layout (``path`` is the directory; sub-directories are searched too)::

    <stem>.wav|.flac|.ogg|...   audio, any sample rate (resampled to 16 kHz, with a warning)
    <stem>.txt                  the transcript (required)
    <stem>.json                 optional word times: [{"word", "start", "end"}, ...]
    <stem>.TextGrid             or a Praat TextGrid (tier "words", else the first interval tier)
    <stem>.ctm                  or CTM lines; one corpus-wide *.ctm may hold every utterance

Utterance ids are the stems relative to ``path`` ("spk1/utt3"). Where no
word times are given, the transcript is force-aligned with pocketsphinx
(times_source "forced-alignment:pocketsphinx"); alignments are kept in memory
and in the ssbm-bench cache directory, keyed by a digest of the samples, the
words and the aligner's settings, and nothing is written into ``path``.

Alternatively ``path`` holds a ``manifest.jsonl`` in the synthetic corpus's
schema (see :mod:`ssbm_bench_plugins.synthetic.manifest`), read as such.

Served audio is 16-bit at 16 kHz (a resampled file is rounded to the 16-bit
grid, 96 dB below full scale), so that the content digest -- over the
samples, the words with their times, the times' source and the labels --
names exactly what models see. Every bad input is an InputError naming the
file and what was expected.

A user's folder is rarely perfect, and one bad recording should not stop the
good ones from being measured:

* A bad utterance is skipped: ``corpus.skipped`` lists ``(file, reason)``
  for each, and building the corpus says so once (a ``UserWarning`` with the
  count and the first reasons). With the plugin parameter ``strict = true``
  the first bad file is refused instead, with the same reason. A folder in
  which every recording is bad is an error listing the reasons. Corpus-wide
  problems (no audio at all, a missing directory) are always errors.
* The digest covers the utterances served, and only those: for a folder with
  no bad files it is what it always was; with skipped files it is the digest
  of the folder without them, so it changes when a file is fixed (the corpus
  did change) and the skipped files and reasons are in ``describe()``.
* Truncated audio -- a WAV or AIFF whose header declares more sample data than
  the file holds (an interrupted copy), or any file that decodes to fewer
  frames than its header promises -- is refused with both numbers; libsndfile
  would otherwise read the part present as if it were the whole recording.
* Word times that overlap or are out of spoken order are refused (see
  :func:`ssbm_bench_plugins.alignment_formats.check_word_order`).
* Symbolic links (files or directories) whose target lies outside ``path``
  are refused, naming the link: the corpus is the folder, and a link out of it
  is either a mistake or a way to make the benchmark read (and echo) files it
  was never given. Links within the folder are followed for files; directory
  links are not descended into (as before), since what they point at is in
  the folder already.
* Recordings with more than one channel are averaged to mono, as before, and
  the corpus says so: a ``UserWarning`` when it is built, ``corpus.notes``
  and ``describe()["notes"]``, and ``meta["downmix"]`` on each utterance
  (meta, not labels, so the digest of an existing stereo folder is unchanged).

No error message quotes file contents: at most a file's name, a position and
a short description (a word clipped to a few characters), so that a file read
by mistake cannot leak into logs and bug reports.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import threading
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ssbm_bench.cache_dir import cache_root
from ssbm_bench.corpus import Corpus
from ssbm_bench.errors import InputError, UnknownPluginError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.model import Capability, SpeechModel
from ssbm_bench.records import CorpusPlugin
from ssbm_bench.text import normalise_words
from ssbm_bench.types import Utterance, Word

from .alignment_formats import (
    CTM_EXPECTED,
    clip,
    decode_text,
    match_transcript,
    parse_ctm,
    parse_json_alignment,
    parse_textgrid,
    quote_word,
)
from .synthetic.manifest import MANIFEST_NAME, ManifestCorpus, canonical_json, content_digest, pcm_sha256

SAMPLE_RATE = 16000
#: a word may end this far past the end of the audio (rounding in the tool that wrote the times)
END_TOLERANCE = 0.05
AUDIO_EXTENSIONS = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
    ".w64", ".rf64", ".caf", ".sph", ".nist",
)  # fmt: skip
ALIGNMENT_EXTENSIONS = {".json": "JSON", ".textgrid": "TextGrid", ".ctm": "CTM"}
#: suffixes that look like word times in a format this corpus does not read
UNSUPPORTED_ALIGNMENT_EXTENSIONS = (
    ".lab", ".srt", ".vtt", ".tsv", ".csv", ".align", ".seg", ".rttm", ".eaf", ".xml", ".tg", ".wrd", ".mlf",
    ".words", ".phn",
)
ALIGNMENT_HELP = (
    "<stem>.json ([{word, start, end}]), <stem>.TextGrid (Praat, tier \"words\") or <stem>.ctm "
    "(or one corpus-wide *.ctm: utterance channel start duration word [confidence])"
)
_ALIGN_KEY_PREFIX = b"ssbm-bench forced alignment v1\n"
#: WAV format tags whose frames are a fixed number of bytes: PCM, IEEE float, A-law, mu-law, extensible
_WAV_PLAIN_FORMATS = (0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE)
#: the most characters of a forced aligner's error quoted (it may name the transcript's words)
ALIGNER_REASON_LIMIT = 200
#: how many skip reasons the warning (and the all-bad error's summary line) quotes
SHOWN_REASONS = 3


# -- forced alignment, cached ------------------------------------------------------


_ALIGNERS: dict[str, Any] = {}
_MEMORY: dict[str, list[Word]] = {}
_LOCK = threading.Lock()


def _aligner(name: str):
    with _LOCK:
        model = _ALIGNERS.get(name)
        if model is None:
            from ssbm_bench.plugins import get_registry

            try:
                model = get_registry().create("model", name)
            except UnknownPluginError as exc:
                raise InputError(f"forced alignment needs the {name!r} model plugin, which is not available: {exc}") from exc
            if not (isinstance(model, SpeechModel) and model.has(Capability.ALIGN)):
                raise InputError(f"model {name!r} cannot force-align (it does not declare the align capability)")
            _ALIGNERS[name] = model
        return model


def _aligner_identity(name: str, model: SpeechModel) -> dict:
    return {"plugin": name, "settings": model.describe(), "version": str(model.version)}


def forced_align(pcm: np.ndarray, words: Sequence[str], aligner: str = "pocketsphinx") -> list[Word]:
    """Word times for `words` (normalised) in 16 kHz int16 `pcm`, from the model plugin `aligner`.

    Cached in memory and on disk (``alignments/`` in :func:`ssbm_bench.cache_dir.cache_root`) under a
    digest of the samples, the words and the aligner's identity and
    settings; a damaged cache file is ignored and rewritten.
    """
    model = _aligner(aligner)
    pcm = np.asarray(pcm, dtype="<i2")
    ident = _aligner_identity(aligner, model)
    h = hashlib.sha256(_ALIGN_KEY_PREFIX)
    h.update(canonical_json({"aligner": ident, "words": list(words), "sample_rate": SAMPLE_RATE}).encode() + b"\n")
    h.update(pcm.tobytes())
    key = h.hexdigest()
    if key in _MEMORY:
        return list(_MEMORY[key])
    path = cache_root() / "alignments" / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cached = [Word(str(w["text"]), float(w["start"]), float(w["end"])) for w in data["words"]]
        if [w.text for w in cached] == list(words):
            _MEMORY[key] = cached
            return list(cached)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or damaged: recompute
    aligned = model.align(pcm.astype(np.float32) / 32768.0, list(words))
    out = [Word(t, float(w.start), float(w.end)) for t, w in zip(words, aligned)]
    if len(out) != len(words):
        raise InputError(f"aligner {aligner!r} returned {len(aligned)} words for {len(words)}")
    _MEMORY[key] = out
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(canonical_json({"aligner": ident, "words": [w.to_dict() for w in out]}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs time
    return list(out)


# -- a corpus of audio files with transcripts and (optional) word times --------------


def pcm16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16, rounded and saturated."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


@dataclass
class Item:
    """One utterance before alignment: where its audio is and what was said."""

    id: str
    audio: Path
    text: str
    read_pcm: Callable[[], np.ndarray]  # -> int16 samples at 16 kHz (picklable: a functools.partial)
    transcript_source: str
    words: list[Word] | None = None  # reference words with times; None: force-align
    labels: dict[str, str] = field(default_factory=dict)
    times_source: str = "corpus"
    meta: dict[str, Any] = field(default_factory=dict)
    pcm_sha256: str = ""
    num_samples: int = 0


def check_within_audio(words: Sequence[Word], duration: float, source: str, audio: Path) -> None:
    for w in words:
        if w.end > duration + END_TOLERANCE:
            raise InputError(
                f"{source}: word {quote_word(w.text)} ends at {w.end:.3f}s, after the end of {audio} "
                f"({duration:.3f}s); expected times inside the audio"
            )


class TranscribedAudioCorpus(Corpus):
    """Utterances from `Item`s: given word times, or forced alignment (lazily, cached).

    Audio is decoded once when the corpus is built (to check it and the
    times) and again for each utterance served, which must give the same
    samples (a file changed meanwhile is an error, as in ManifestCorpus).
    The digest (:func:`ssbm_bench_plugins.synthetic.manifest.content_digest`
    over id, sample rate, text, words, labels and times_source, and the
    int16 samples) needs every utterance's words, so it runs any pending
    forced alignments.

    `strict` (the default, for corpora whose files come with the benchmark):
    an item whose audio or times fail the checks is an error. Not strict (the
    folder corpus, the user's own files): it is skipped, listed in
    :attr:`skipped` with its reason (after any `skipped` the caller found while
    scanning), and the corpus says so once; only when nothing is left is it
    an error, listing the reasons. The digest covers the items kept.
    """

    def __init__(
        self,
        items: list[Item],
        *,
        name: str,
        aligner: str = "pocketsphinx",
        strict: bool = True,
        skipped: Sequence[tuple[str, str]] = (),
    ):
        self.name = name
        self.aligner = aligner
        self.strict = strict
        #: (file, reason) for each utterance or file left out, in the order found
        self.skipped: list[tuple[str, str]] = list(skipped)
        self._aligned: dict[str, list[Word]] = {}
        self._digest: str | None = None
        self._items = []
        for item in items:
            try:
                pcm = item.read_pcm()
                if item.words is not None:
                    check_within_audio(item.words, len(pcm) / SAMPLE_RATE, item.meta.get("times_file", item.id),
                                       item.audio)
            except InputError as exc:
                skip_or_raise(self.skipped, strict, item.audio, exc)
                continue
            item.pcm_sha256, item.num_samples = pcm_sha256(pcm), len(pcm)
            if item.words is None:
                item.times_source = f"forced-alignment:{aligner}"
            self._items.append(item)
        self._report_skipped()

    def _report_skipped(self) -> None:
        """Nothing left: an error listing every reason. Some skipped: one warning with the count and the first."""
        if not self.skipped:
            return
        n = len(self.skipped)
        if not self._items:
            raise InputError(
                f"corpus {self.name!r}: every recording was refused ({n} file(s)); nothing to run:\n"
                + "\n".join(f"  {reason}" for _, reason in self.skipped)
            )
        first = "; ".join(reason for _, reason in self.skipped[:SHOWN_REASONS])
        warnings.warn(
            f"corpus {self.name!r}: skipped {n} file(s), running the other {len(self._items)} utterance(s) "
            f"(every reason in corpus.skipped and describe(); strict = true refuses instead): {first}"
            f"{' ...' if n > SHOWN_REASONS else ''}",
            stacklevel=4,
        )

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> list[str]:
        return [i.id for i in self._items]

    def _pcm(self, item: Item) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the resampling warning was given when the corpus was built
            pcm = item.read_pcm()
        if pcm_sha256(pcm) != item.pcm_sha256:
            raise InputError(f"audio file {item.audio}: changed since the corpus was loaded and checked")
        return pcm

    def _words(self, item: Item, pcm: np.ndarray) -> list[Word]:
        if item.words is not None:
            return item.words
        if item.id not in self._aligned:
            ref = normalise_words(item.text)
            try:
                self._aligned[item.id] = forced_align(pcm, ref, self.aligner)
            except InputError as exc:
                # the aligner's reason may list the transcript's words; a few are help, a whole file is a leak
                raise InputError(
                    f"{item.audio}: no word times given, and forcing the transcript {item.transcript_source} onto "
                    f"the audio with {self.aligner} failed: {clip(str(exc), ALIGNER_REASON_LIMIT)}"
                ) from exc
        return self._aligned[item.id]

    def _entry(self, item: Item, words: Sequence[Word]) -> dict:
        return {
            "id": item.id,
            "sample_rate": SAMPLE_RATE,
            "text": item.text,
            "words": [w.to_dict() for w in words],
            "labels": dict(item.labels),
            "times_source": item.times_source,
        }

    def _utterance(self, item: Item) -> Utterance:
        pcm = self._pcm(item)
        words = self._words(item, pcm)
        meta = {"text": item.text, "path": str(item.audio), "transcript": item.transcript_source, **item.meta}
        return Utterance(
            id=item.id,
            waveform=pcm.astype(np.float32) / 32768.0,
            sample_rate=SAMPLE_RATE,
            words=tuple(words),
            labels=dict(item.labels),
            times_source=item.times_source,
            meta=meta,
        )

    def utterances(self) -> Iterator[Utterance]:
        for item in self._items:
            yield self._utterance(item)

    def get(self, utt_id: str) -> Utterance:
        for item in self._items:
            if item.id == utt_id:
                return self._utterance(item)
        raise InputError(f"corpus {self.name!r}: no utterance with id {utt_id!r}")

    def digest(self) -> str:
        if self._digest is None:
            entries, pcm = [], {}
            for item in self._items:
                samples = self._pcm(item)
                entries.append(self._entry(item, self._words(item, samples)))
                pcm[item.id] = samples
            # times_source rides on the label_fields hook so that the digest covers it
            self._digest = content_digest(entries, lambda e: pcm[e["id"]], label_fields=("times_source",))
        return self._digest

    def describe(self) -> dict:
        out = {"name": self.name, "digest": self.digest(), "utterances": len(self)}
        if self.skipped:  # absent when nothing was skipped: describe() of a good folder is unchanged
            out["skipped"] = [{"file": f, "reason": r} for f, r in self.skipped]
        return out


def skip_or_raise(skipped: list[tuple[str, str]], strict: bool, file: os.PathLike | str, exc: InputError) -> None:
    """A bad file: strict, re-raise `exc` as it is; else record (file, reason) in `skipped` and carry on."""
    if strict:
        raise exc
    skipped.append((str(file), str(exc)))


# -- the folder layout ----------------------------------------------------------------


def read_text_file(path: Path) -> str:
    try:
        return decode_text(path.read_bytes(), str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc


def _header_frames(path: Path) -> tuple[int, int, int, int] | None:
    """(declared frames, present frames, declared bytes, present bytes) of a WAV or AIFF's sample data.

    Read from the RIFF/FORM chunks themselves: libsndfile, given a truncated
    file, quietly reports the frames present, so its own count cannot tell.
    None for other formats, for compressed WAV/AIFF-C data (whose frames are not
    a fixed number of bytes; :func:`read_audio_file`'s own check covers them),
    and for a WAV whose data size was never filled in (0 or 0xFFFFFFFF: a
    stream's writer that could not seek back).
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12:
            return None
        endian = {(b"RIFF", b"WAVE"): "<", (b"RIFX", b"WAVE"): ">", (b"FORM", b"AIFF"): ">",
                  (b"FORM", b"AIFC"): ">"}.get((head[:4], head[8:]))  # fmt: skip
        if endian is None:
            return None
        size = os.fstat(f.fileno()).st_size
        frame_bytes, pos = 0, 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, n = f.read(4), struct.unpack(endian + "I", f.read(4))[0]
            body = f.read(22)
            if cid == b"fmt " and len(body) >= 14:  # WAV: format tag at 0, block align (bytes per frame) at 12
                tag, align = struct.unpack(endian + "H", body[:2])[0], struct.unpack(endian + "H", body[12:14])[0]
                frame_bytes = align if tag in _WAV_PLAIN_FORMATS else -1
            elif cid == b"COMM" and len(body) >= 8:  # AIFF: channels, frames, bits; AIFF-C: compression at 18
                channels, _, bits = struct.unpack(">hIh", body[:8])
                plain = head[8:] == b"AIFF" or body[18:22] in (b"NONE", b"sowt", b"twos", b"raw ", b"fl32", b"fl64")
                frame_bytes = channels * ((bits + 7) // 8) if plain else -1
            elif cid in (b"data", b"SSND"):
                if frame_bytes <= 0 or (cid == b"data" and n in (0, 0xFFFFFFFF)):
                    return None
                start, declared = pos + 8, n  # the first sample's byte, the samples' bytes
                if cid == b"SSND":  # offset and block size come first; the offset pads before the samples
                    offset = struct.unpack(">I", body[:4])[0] if len(body) >= 4 else 0
                    start, declared = start + 8 + offset, max(0, n - 8 - offset)
                present = max(0, size - start)
                return declared // frame_bytes, present // frame_bytes, declared, present
            pos += 8 + n + (n & 1)
    return None


def probe_audio(path: Path):
    """soundfile's info for `path`, once the file is known to decode and to hold all the samples it declares."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for damaged files
        raise InputError(
            f"audio file {path}: cannot be decoded ({exc}); expected audio that libsndfile reads "
            f"({', '.join(e.lstrip('.') for e in AUDIO_EXTENSIONS[:6])}, ...)"
        ) from exc
    counts = _header_frames(path)
    if counts is not None and counts[1] < counts[0]:
        declared, present, declared_bytes, present_bytes = counts
        raise _truncated(path, info.samplerate, declared, present, f" ({declared_bytes} bytes of samples)",
                         f" ({present_bytes} bytes)")
    return info


def _truncated(path: Path, rate: int, declared: int, present: int, declared_extra: str = "",
               present_extra: str = "") -> InputError:
    return InputError(
        f"audio file {path}: truncated: its header declares {declared} frames{declared_extra}, "
        f"{declared / rate:.3f} s, but only {present} frames{present_extra}, {present / rate:.3f} s, are there; "
        "expected a complete recording (was the file cut short while copying?)"
    )


def read_audio_file(path: Path) -> np.ndarray:
    """Any audio file libsndfile reads -> int16 at 16 kHz (resampled with a warning by load_audio).

    Refused when truncated (:func:`probe_audio`), and when the samples
    decoded are fewer than the header's frame count (compared at 16 kHz: the
    resampler's output is exactly ceil(frames * 16000 / rate) long).
    """
    from ssbm_bench.audio import load_audio

    info = probe_audio(path)
    pcm = pcm16(load_audio(path, SAMPLE_RATE))
    if len(pcm) < math.ceil(info.frames * SAMPLE_RATE / info.samplerate):
        raise _truncated(path, info.samplerate, info.frames, len(pcm) * info.samplerate // SAMPLE_RATE)
    return pcm


def _alignment_words(path: Path, kind: str, stem: str) -> list[Word]:
    """Words of a per-utterance alignment file; a <stem>.ctm holds one utterance (any id) or names the stem."""
    text = read_text_file(path)
    if kind == "JSON":
        return parse_json_alignment(text, str(path))
    if kind == "TextGrid":
        return parse_textgrid(text, str(path))
    by_utt = parse_ctm(text, str(path))
    if len(by_utt) == 1:
        return next(iter(by_utt.values()))
    for key in (stem, Path(stem).name):
        if key in by_utt:
            return by_utt[key]
    raise InputError(
        f"{path}: holds {len(by_utt)} utterances ({', '.join(quote_word(u) for u in list(by_utt)[:5])}) and none "
        f"is {Path(stem).name!r}; expected {CTM_EXPECTED} for this utterance"
    )


def walk_folder(root: Path) -> tuple[list[Path], dict[Path, str]]:
    """Every file under `root` (hidden ones aside), sorted, and {link: reason} for links that lead out of it.

    A link whose target resolves outside `root` -- a file or a directory -- is
    refused, naming the link and never its target's contents: the corpus is
    the folder, and a transcript linked to a system file must not be read, let
    alone quoted. Outside file links are still listed among the files, so that
    the utterance they belong to is refused rather than, say, force-aligned
    without its word times. Directory links are not descended into (pathlib's
    rglob, used before, did not either); those that stay inside `root` point at
    files scanned at their own place. Dangling links inside `root` are ignored,
    as before.
    """
    real_root = Path(os.path.realpath(root))
    files: list[Path] = []
    outside: dict[Path, str] = {}

    def leads_out(p: Path) -> bool:
        return p.is_symlink() and not Path(os.path.realpath(p)).is_relative_to(real_root)

    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into directory links
        here = Path(dirpath)
        dirnames[:] = [n for n in dirnames if not n.startswith(".")]
        for p in (here / n for n in dirnames):
            if leads_out(p):
                outside[p] = _outside_reason(p, root)
        for p in (here / n for n in filenames if not n.startswith(".")):
            if leads_out(p):
                outside[p] = _outside_reason(p, root)
                files.append(p)
            elif p.is_file():
                files.append(p)
    return sorted(files), outside


def _outside_reason(link: Path, root: Path) -> str:
    return (
        f"{link}: a symbolic link leading outside the corpus folder {root}; expected the folder's own files "
        "(copy the file in rather than linking to it)"
    )


class FolderCorpus(TranscribedAudioCorpus):
    """A directory of the user's audio files, transcripts and optional word times (see the module doc).

    `strict` False (the default): a bad utterance is skipped and listed in
    :attr:`skipped`, so one broken file does not keep the good recordings
    from being measured; True: it is refused with the same reason. :attr:`notes`
    says what was done to files that were used as they are not (a downmix).
    """

    name = "folder"

    def __init__(self, path: str | os.PathLike | None = None, aligner: str = "pocketsphinx", strict: bool = False):
        if path is None:
            raise InputError(
                "corpus 'folder' needs a `path`: a directory of audio files with <stem>.txt transcripts "
                f"(and optional .json/.TextGrid/.ctm word times), or a directory holding a {MANIFEST_NAME}"
            )
        if not isinstance(strict, bool):
            raise InputError(f"corpus 'folder': strict must be true or false, got {strict!r}")
        root = Path(path).expanduser()
        if not root.exists():
            raise InputError(f"corpus 'folder': {root} does not exist; expected a directory of audio files")
        if not root.is_dir():
            raise InputError(f"corpus 'folder': {root} is a file; expected a directory of audio files or a {MANIFEST_NAME}")
        self.directory = root
        skipped: list[tuple[str, str]] = []
        items = self._scan(self.directory, strict, skipped)
        super().__init__(items, name=self.name, aligner=aligner, strict=strict, skipped=skipped)
        #: one line per recording used otherwise than as it is (today: more than one channel, averaged)
        self.notes = [f"{i.audio}: {i.meta['downmix']}" for i in self._items if "downmix" in i.meta]
        if self.notes:
            warnings.warn(
                f"corpus {self.name!r}: {len(self.notes)} recording(s) with more than one channel, averaged to "
                f"mono (corpus.notes lists them): {'; '.join(self.notes[:SHOWN_REASONS])}"
                f"{' ...' if len(self.notes) > SHOWN_REASONS else ''}",
                stacklevel=2,
            )

    def _scan(self, root: Path, strict: bool, skipped: list[tuple[str, str]]) -> list[Item]:
        """Items for every recording whose files pass the checks; the others go to `skipped` (strict: raise)."""
        files, outside = walk_folder(root)
        consumed: set[Path] = set()  # outside links reported as the reason an utterance was skipped
        #: problems of one utterance found while sorting the files, raised when that utterance is built
        bad_stems: dict[str, InputError] = {}

        def refuse(stem: str, exc: InputError) -> None:
            if strict:
                raise exc
            bad_stems.setdefault(stem, exc)

        def stem_of(p: Path) -> str:
            return p.relative_to(root).with_suffix("").as_posix()

        audio: dict[str, Path] = {}
        for p in files:
            if p.suffix.lower() in AUDIO_EXTENSIONS:
                stem = stem_of(p)
                if stem in audio:
                    refuse(stem, InputError(
                        f"{p} and {audio[stem]}: two audio files for the utterance {stem!r}; expected one per stem"
                    ))  # fmt: skip
                    continue
                audio[stem] = p
        if not audio:
            raise InputError(
                f"corpus 'folder': no audio files in {root} (searched sub-directories too); looked for "
                f"{', '.join('*' + e for e in AUDIO_EXTENSIONS)}, each with a <stem>.txt transcript, "
                f"or a {MANIFEST_NAME}"
            )
        transcripts: dict[str, Path] = {}
        per_file: dict[str, list[tuple[Path, str]]] = {}
        shared_ctm: list[Path] = []
        for p in files:
            suffix, stem = p.suffix.lower(), stem_of(p)
            if suffix == ".txt" and stem in audio:
                transcripts[stem] = p
            elif suffix in ALIGNMENT_EXTENSIONS:
                if stem in audio:
                    per_file.setdefault(stem, []).append((p, ALIGNMENT_EXTENSIONS[suffix]))
                elif suffix == ".ctm":
                    shared_ctm.append(p)
                else:
                    warnings.warn(f"{p}: word times for no audio file (expected {stem}.wav or another audio file beside it)",
                                  stacklevel=3)
            elif suffix in UNSUPPORTED_ALIGNMENT_EXTENSIONS and stem in audio:
                refuse(stem, InputError(
                    f"{p}: word times in a format this corpus does not read ({p.suffix}); expected {ALIGNMENT_HELP}"
                ))  # fmt: skip
        ctm_words: dict[str, tuple[list[Word], Path]] = {}
        bad_ctm: list[Path] = []  # corpus-wide CTMs refused: which utterances they time is unknown
        for p in shared_ctm:
            try:
                if p in outside:
                    raise InputError(outside[p])
                parsed = parse_ctm(read_text_file(p), str(p))
            except InputError as exc:
                skip_or_raise(skipped, strict, p, exc)
                consumed.add(p)
                bad_ctm.append(p)
                continue
            for utt, words in parsed.items():
                if utt in ctm_words:
                    refuse(utt, InputError(
                        f"{p}: utterance {quote_word(utt)} already has word times in {ctm_words[utt][1]}"
                    ))  # fmt: skip
                    continue
                ctm_words[utt] = (words, p)
        by_name = {Path(s).name: s for s in audio}
        unknown = [u for u in ctm_words if u not in audio and u not in by_name]
        if unknown:
            warnings.warn(
                f"{', '.join(sorted({str(ctm_words[u][1]) for u in unknown}))}: word times for utterances with no "
                f"audio file: {', '.join(quote_word(u) for u in sorted(unknown)[:5])}"
                f"{' ...' if len(unknown) > 5 else ''}",
                stacklevel=3,
            )

        def build(stem: str, audio_path: Path) -> Item:
            """One utterance's Item, or the InputError that refuses it."""
            ctm_key = stem if stem in ctm_words else Path(stem).name if by_name.get(Path(stem).name) == stem else None
            for key in (stem, ctm_key):
                if key in bad_stems:
                    raise bad_stems[key]
            txt = transcripts.get(stem)
            sources = list(per_file.get(stem, []))
            for f in (audio_path, txt, *(p for p, _ in sources)):
                if f in outside:
                    consumed.add(f)
                    raise InputError(outside[f])
            if txt is None:
                raise InputError(
                    f"audio file {audio_path}: no transcript; expected {audio_path.with_suffix('.txt')} holding the "
                    "words spoken"
                )
            text = " ".join(read_text_file(txt).split())
            if not normalise_words(text):
                raise InputError(f"{txt}: empty transcript; expected the words spoken in {audio_path}")
            if ctm_key in ctm_words:
                sources.append((ctm_words[ctm_key][1], "corpus-wide CTM"))
            if len(sources) > 1:
                raise InputError(
                    f"audio file {audio_path}: word times given more than once "
                    f"({', '.join(str(p) for p, _ in sources)}); expected one alignment per utterance"
                )
            if not sources and bad_ctm:
                raise InputError(
                    f"audio file {audio_path}: no word times of its own, and the corpus-wide "
                    f"{', '.join(str(p) for p in bad_ctm)} that may hold them was refused (see its reason); expected "
                    "readable word times, or none at all (forced alignment)"
                )
            words, times_file, meta = None, None, {}
            if sources:
                times_file, kind = sources[0]
                if kind == "corpus-wide CTM":
                    raw_words = ctm_words[ctm_key][0]
                else:
                    raw_words = _alignment_words(times_file, kind, stem)
                words = match_transcript(text, raw_words, alignment_source=str(times_file), transcript_source=str(txt))
                meta["times_file"] = str(times_file)
            channels = probe_audio(audio_path).channels  # decodes, and holds all it declares
            if channels > 1:
                meta["downmix"] = f"{channels} channels averaged to mono"
            return Item(
                id=stem,
                audio=audio_path,
                text=text,
                read_pcm=partial(read_audio_file, audio_path),
                transcript_source=str(txt),
                words=words,
                meta=meta,
            )

        items = []
        for stem, audio_path in audio.items():
            try:
                items.append(build(stem, audio_path))
            except InputError as exc:
                skip_or_raise(skipped, strict, audio_path, exc)
        for link, reason in outside.items():  # links that belong to no utterance (a directory, a stray file)
            if link not in consumed:
                skip_or_raise(skipped, strict, link, InputError(reason))
        return items

    def describe(self) -> dict:
        out = {**super().describe(), "path": str(self.directory)}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def open_folder(
    path: str | os.PathLike | None = None,
    aligner: str = "pocketsphinx",
    label_fields: Sequence[str] = (),
    strict: bool = False,
) -> Corpus:
    """The plugin's factory: a ManifestCorpus where `path` holds a manifest.jsonl, else a FolderCorpus.

    `label_fields`: top-level manifest fields that are labels (and in its
    digest), as the manifest's writer declared them (the synthetic corpus:
    ["voice"]); labels under the manifest's ``labels`` need no declaring.
    `strict`: refuse the folder at its first bad file rather than skip it
    (a manifest is always strict: its writer vouched for every entry).
    """
    if path is not None:
        p = Path(path).expanduser()
        manifest = p if p.name == MANIFEST_NAME else p / MANIFEST_NAME
        if manifest.is_file():
            return ManifestCorpus(manifest.parent, name=FolderCorpus.name, times_source="corpus",
                                  label_fields=label_fields)
    if label_fields:
        raise InputError(f"corpus 'folder': label_fields applies to a {MANIFEST_NAME}, and {path} holds none")
    return FolderCorpus(path, aligner=aligner, strict=strict)


@hookimpl
def register_corpora(register):
    register(
        CorpusPlugin.of(
            FolderCorpus,
            factory=open_folder,
            description=(
                "your own recordings: a directory of audio files (any rate, resampled to 16 kHz) with <stem>.txt "
                "transcripts and optional word times (JSON, Praat TextGrid, CTM; else pocketsphinx forced "
                f"alignment), or a {MANIFEST_NAME}; bad files are skipped and listed (corpus.skipped), or refused "
                "with strict = true; parameters path, strict"
            ),
        )
    )
