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
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ssbm_bench.corpus import Corpus
from ssbm_bench.errors import InputError, UnknownPluginError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import CorpusPlugin
from ssbm_bench.text import normalise_words
from ssbm_bench.types import Utterance, Word

from .alignment_formats import (
    CTM_EXPECTED,
    decode_text,
    match_transcript,
    parse_ctm,
    parse_json_alignment,
    parse_textgrid,
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
#: where forced alignments are cached: $SSBM_BENCH_CACHE, else $XDG_CACHE_HOME/ssbm-bench, else ~/.cache/ssbm-bench
CACHE_ENV = "SSBM_BENCH_CACHE"
_ALIGN_KEY_PREFIX = b"ssbm-bench forced alignment v1\n"


# -- forced alignment, cached ------------------------------------------------------


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ssbm-bench"


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
            if not callable(getattr(model, "align", None)):
                raise InputError(f"model {name!r} cannot force-align (it has no align(waveform, words) method)")
            _ALIGNERS[name] = model
        return model


def _aligner_identity(name: str, model: Any) -> dict:
    describe = getattr(model, "describe", None)
    info = describe() if callable(describe) else {}
    return {"plugin": name, "settings": info, "version": str(getattr(model, "version", ""))}


def forced_align(pcm: np.ndarray, words: Sequence[str], aligner: str = "pocketsphinx") -> list[Word]:
    """Word times for `words` (normalised) in 16 kHz int16 `pcm`, from the model plugin `aligner`.

    Cached in memory and on disk (:func:`cache_dir`/alignments) under a
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
    path = cache_dir() / "alignments" / f"{key}.json"
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
                f"{source}: word {w.text!r} ends at {w.end:.3f}s, after the end of {audio} ({duration:.3f}s); "
                "expected times inside the audio"
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
    """

    def __init__(self, items: list[Item], *, name: str, aligner: str = "pocketsphinx"):
        self.name = name
        self.aligner = aligner
        self._items = items
        self._aligned: dict[str, list[Word]] = {}
        self._digest: str | None = None
        for item in items:
            pcm = item.read_pcm()
            item.pcm_sha256, item.num_samples = pcm_sha256(pcm), len(pcm)
            if item.words is not None:
                check_within_audio(item.words, len(pcm) / SAMPLE_RATE, item.meta.get("times_file", item.id), item.audio)
            else:
                item.times_source = f"forced-alignment:{aligner}"

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
                raise InputError(
                    f"{item.audio}: no word times given, and forcing the transcript {item.transcript_source} onto "
                    f"the audio with {self.aligner} failed: {exc}"
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
        return {"name": self.name, "digest": self.digest(), "utterances": len(self)}


# -- the folder layout ----------------------------------------------------------------


def read_text_file(path: Path) -> str:
    try:
        return decode_text(path.read_bytes(), str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc


def read_audio_file(path: Path) -> np.ndarray:
    """Any audio file libsndfile reads -> int16 at 16 kHz (resampled with a warning by load_audio)."""
    import soundfile as sf

    from ssbm_bench.audio import load_audio

    try:
        sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for damaged files
        raise InputError(
            f"audio file {path}: cannot be decoded ({exc}); expected audio that libsndfile reads "
            f"({', '.join(e.lstrip('.') for e in AUDIO_EXTENSIONS[:6])}, ...)"
        ) from exc
    return pcm16(load_audio(path, SAMPLE_RATE))


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
        f"{path}: holds {len(by_utt)} utterances ({', '.join(list(by_utt)[:5])}) and none is {Path(stem).name!r}; "
        f"expected {CTM_EXPECTED} for this utterance"
    )


class FolderCorpus(TranscribedAudioCorpus):
    """A directory of the user's audio files, transcripts and optional word times (see the module doc)."""

    def __init__(self, path: str | os.PathLike | None = None, aligner: str = "pocketsphinx"):
        if path is None:
            raise InputError(
                "corpus 'folder' needs a `path`: a directory of audio files with <stem>.txt transcripts "
                f"(and optional .json/.TextGrid/.ctm word times), or a directory holding a {MANIFEST_NAME}"
            )
        root = Path(path).expanduser()
        if not root.exists():
            raise InputError(f"corpus 'folder': {root} does not exist; expected a directory of audio files")
        if not root.is_dir():
            raise InputError(f"corpus 'folder': {root} is a file; expected a directory of audio files or a {MANIFEST_NAME}")
        self.directory = root
        super().__init__(self._scan(self.directory), name="folder", aligner=aligner)

    def _scan(self, root: Path) -> list[Item]:
        files = sorted(
            p for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )  # fmt: skip

        def stem_of(p: Path) -> str:
            return p.relative_to(root).with_suffix("").as_posix()

        audio: dict[str, Path] = {}
        for p in files:
            if p.suffix.lower() in AUDIO_EXTENSIONS:
                stem = stem_of(p)
                if stem in audio:
                    raise InputError(
                        f"{p} and {audio[stem]}: two audio files for the utterance {stem!r}; expected one per stem"
                    )
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
                raise InputError(
                    f"{p}: word times in a format this corpus does not read ({p.suffix}); expected {ALIGNMENT_HELP}"
                )
        ctm_words: dict[str, tuple[list[Word], Path]] = {}
        for p in shared_ctm:
            for utt, words in parse_ctm(read_text_file(p), str(p)).items():
                if utt in ctm_words:
                    raise InputError(f"{p}: utterance {utt!r} already has word times in {ctm_words[utt][1]}")
                ctm_words[utt] = (words, p)
        by_name = {Path(s).name: s for s in audio}
        unknown = [u for u in ctm_words if u not in audio and u not in by_name]
        if unknown:
            warnings.warn(
                f"{', '.join(sorted({str(ctm_words[u][1]) for u in unknown}))}: word times for utterances with no "
                f"audio file: {', '.join(sorted(unknown)[:5])}{' ...' if len(unknown) > 5 else ''}",
                stacklevel=3,
            )

        items = []
        for stem, audio_path in audio.items():
            txt = transcripts.get(stem)
            if txt is None:
                raise InputError(
                    f"audio file {audio_path}: no transcript; expected {audio_path.with_suffix('.txt')} holding the "
                    "words spoken"
                )
            text = " ".join(read_text_file(txt).split())
            if not normalise_words(text):
                raise InputError(f"{txt}: empty transcript; expected the words spoken in {audio_path}")
            sources = list(per_file.get(stem, []))
            ctm_key = stem if stem in ctm_words else Path(stem).name if by_name.get(Path(stem).name) == stem else None
            if ctm_key in ctm_words:
                sources.append((ctm_words[ctm_key][1], "corpus-wide CTM"))
            if len(sources) > 1:
                raise InputError(
                    f"audio file {audio_path}: word times given more than once "
                    f"({', '.join(str(p) for p, _ in sources)}); expected one alignment per utterance"
                )
            words, times_file = None, None
            if sources:
                times_file, kind = sources[0]
                if kind == "corpus-wide CTM":
                    raw_words = ctm_words[ctm_key][0]
                else:
                    raw_words = _alignment_words(times_file, kind, stem)
                words = match_transcript(text, raw_words, alignment_source=str(times_file), transcript_source=str(txt))
            items.append(
                Item(
                    id=stem,
                    audio=audio_path,
                    text=text,
                    read_pcm=partial(read_audio_file, audio_path),
                    transcript_source=str(txt),
                    words=words,
                    meta={"times_file": str(times_file)} if times_file else {},
                )
            )
        return items

    def describe(self) -> dict:
        return {**super().describe(), "path": str(self.directory)}


def open_folder(
    path: str | os.PathLike | None = None, aligner: str = "pocketsphinx", label_fields: Sequence[str] = ()
) -> Corpus:
    """The plugin's factory: a ManifestCorpus where `path` holds a manifest.jsonl, else a FolderCorpus.

    `label_fields`: top-level manifest fields that are labels (and in its
    digest), as the manifest's writer declared them (the synthetic corpus:
    ["voice"]); labels under the manifest's ``labels`` need no declaring.
    """
    if path is not None:
        p = Path(path).expanduser()
        manifest = p if p.name == MANIFEST_NAME else p / MANIFEST_NAME
        if manifest.is_file():
            return ManifestCorpus(manifest.parent, name="folder", times_source="corpus", label_fields=label_fields)
    if label_fields:
        raise InputError(f"corpus 'folder': label_fields applies to a {MANIFEST_NAME}, and {path} holds none")
    return FolderCorpus(path, aligner=aligner)


@hookimpl
def register_corpora(register):
    register(
        CorpusPlugin(
            name="folder",
            factory=open_folder,
            description=(
                "your own recordings: a directory of audio files (any rate, resampled to 16 kHz) with <stem>.txt "
                "transcripts and optional word times (JSON, Praat TextGrid, CTM; else pocketsphinx forced "
                f"alignment), or a {MANIFEST_NAME}; parameter path"
            ),
        )
    )
