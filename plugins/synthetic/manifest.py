"""A corpus stored as a JSON-lines manifest beside its 16-bit audio files.

Layout of a manifest directory::

    manifest.jsonl   one JSON object per line, one utterance each, in corpus order
    audio/<id>.flac  16-bit audio (any format soundfile reads; FLAC keeps it small)
    digest.txt       the content digest (hex), checked whenever the corpus is loaded

Each manifest line holds ``id``, ``audio`` (path relative to the directory),
``sample_rate``, ``text`` and ``words`` ([{text, start, end}], seconds), and
may hold ``num_samples`` and ``pcm_sha256`` (so a damaged file is named, not
just detected), ``labels`` (a dict) and anything else (provenance, licence),
which is passed through as utterance metadata.

The content digest covers what a result depends on and nothing else: the
annotation fields (canonical JSON) and the decoded int16 samples of every
file. Re-encoding the audio with another FLAC encoder, or changing
provenance fields, leaves it unchanged; editing a time or a sample does not.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Mapping

import numpy as np

from ssbm_bench.corpus import Corpus
from ssbm_bench.errors import InputError
from ssbm_bench.types import Utterance, Word

MANIFEST_NAME = "manifest.jsonl"
DIGEST_NAME = "digest.txt"
REQUIRED_FIELDS = ("id", "audio", "sample_rate", "text", "words")
#: the annotation fields hashed into the digest (plus the corpus's label fields and ``labels``)
DIGEST_FIELDS = ("id", "sample_rate", "text", "words", "labels")
_DIGEST_PREFIX = b"ssbm-bench manifest digest v1\n"


def canonical_json(obj: Any) -> str:
    """One spelling per value: sorted keys, no spaces, ASCII; floats as Python's shortest repr."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def pcm_sha256(samples: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(samples, dtype="<i2").tobytes()).hexdigest()


def annotation(entry: Mapping[str, Any], label_fields: Collection[str] = ()) -> dict:
    """The part of a manifest entry that the digest covers."""
    keys = [*DIGEST_FIELDS, *label_fields]
    return {k: entry[k] for k in keys if k in entry}


def content_digest(entries: Iterable[Mapping[str, Any]], pcm_of, label_fields: Collection[str] = ()) -> str:
    """sha256 over each entry's annotation (canonical JSON) and its int16 samples, in order.

    `pcm_of(entry)` returns the entry's decoded int16 samples. Lengths are
    hashed before the samples so that no two corpora share a byte stream.
    """
    h = hashlib.sha256(_DIGEST_PREFIX)
    for entry in entries:
        h.update(canonical_json(annotation(entry, label_fields)).encode() + b"\n")
        pcm = np.asarray(pcm_of(entry), dtype="<i2").tobytes()
        h.update(len(pcm).to_bytes(8, "little"))
        h.update(pcm)
    return h.hexdigest()


def manifest_dir(path: str | os.PathLike) -> Path:
    """Accept a manifest directory or the manifest file itself."""
    p = Path(path)
    if p.name == MANIFEST_NAME or p.is_file():
        p = p.parent
    if not (p / MANIFEST_NAME).is_file():
        raise InputError(f"corpus directory {p}: expected a {MANIFEST_NAME} in it; none found")
    return p


def read_manifest(directory: Path) -> list[dict]:
    """Parse and check every line; errors name the file, the line and what was expected."""
    path = directory / MANIFEST_NAME
    entries: list[dict] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {n}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(entry).__name__}")
        missing = [k for k in REQUIRED_FIELDS if k not in entry]
        if missing:
            raise InputError(
                f"{where}: missing field(s) {', '.join(missing)}; each line needs {', '.join(REQUIRED_FIELDS)}"
            )
        uid = entry["id"]
        if not isinstance(uid, str) or not uid:
            raise InputError(f"{where}: id must be a non-empty string, got {uid!r}")
        if uid in seen:
            raise InputError(f"{where}: utterance id {uid!r} already used on line {seen[uid]}")
        seen[uid] = n
        audio = entry["audio"]
        if not isinstance(audio, str) or Path(audio).is_absolute() or ".." in Path(audio).parts:
            raise InputError(f"{where}: audio must be a path inside {directory}, relative to it; got {audio!r}")
        if not isinstance(entry["sample_rate"], int) or entry["sample_rate"] <= 0:
            raise InputError(f"{where}: sample_rate must be a positive integer, got {entry['sample_rate']!r}")
        words = entry["words"]
        if not isinstance(words, list) or not all(
            isinstance(w, dict) and {"text", "start", "end"} <= set(w) for w in words
        ):
            raise InputError(f"{where}: words must be a list of {{text, start, end}} objects")
        try:
            for w in words:
                Word(str(w["text"]), float(w["start"]), float(w["end"]))
        except (InputError, TypeError, ValueError) as exc:
            raise InputError(f"{where} (utterance {uid!r}): {exc}") from exc
        entry["_line"] = n
        entries.append(entry)
    if not entries:
        raise InputError(f"{path}: no utterances (the file is empty)")
    return entries


def read_pcm16(directory: Path, entry: Mapping[str, Any]) -> np.ndarray:
    """Decode an entry's audio as int16 and check it against what the manifest records."""
    import soundfile as sf

    path = directory / entry["audio"]
    what = f"audio file {path} (utterance {entry['id']!r})"
    if not path.is_file():
        raise InputError(f"{what}: not found; the manifest {directory / MANIFEST_NAME} lists it")
    try:
        data, sr = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as exc:  # soundfile raises several types for damaged files
        expected = f"{entry['sample_rate']} Hz 16-bit mono audio"
        raise InputError(f"{what}: cannot be decoded ({exc}); expected {expected}") from exc
    if data.shape[1] != 1:
        raise InputError(f"{what}: expected mono audio, got {data.shape[1]} channels")
    if sr != entry["sample_rate"]:
        raise InputError(f"{what}: expected {entry['sample_rate']} Hz as the manifest says, got {sr} Hz")
    pcm = data[:, 0]
    if "num_samples" in entry and len(pcm) != entry["num_samples"]:
        raise InputError(
            f"{what}: expected {entry['num_samples']} samples, decoded {len(pcm)} (truncated or replaced?)"
        )
    if "pcm_sha256" in entry and pcm_sha256(pcm) != entry["pcm_sha256"]:
        raise InputError(
            f"{what}: decoded samples have sha256 {pcm_sha256(pcm)[:16]}..., the manifest expects "
            f"{entry['pcm_sha256'][:16]}... (the audio was changed or lossily re-encoded)"
        )
    return pcm


def write_corpus(
    directory: str | os.PathLike,
    entries: list[dict],
    pcm: Mapping[str, np.ndarray],
    label_fields: Collection[str] = (),
) -> Path:
    """Write audio (16-bit FLAC), manifest and digest; return the manifest path.

    `entries` must not yet hold num_samples/pcm_sha256 (they are filled in
    from `pcm`, keyed by id). The digest is written last, so a directory with
    a digest.txt is complete.
    """
    import soundfile as sf

    directory = Path(directory)
    (directory / "audio").mkdir(parents=True, exist_ok=True)
    (directory / DIGEST_NAME).unlink(missing_ok=True)
    lines = []
    for entry in entries:
        samples = np.asarray(pcm[entry["id"]], dtype=np.int16)
        sf.write(str(directory / entry["audio"]), samples, entry["sample_rate"], format="FLAC", subtype="PCM_16")
        entry = {**entry, "num_samples": int(len(samples)), "pcm_sha256": pcm_sha256(samples)}
        lines.append(canonical_json(entry))
    manifest = directory / MANIFEST_NAME
    tmp = manifest.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, manifest)
    digest = content_digest(entries, lambda e: pcm[e["id"]], label_fields)
    (directory / DIGEST_NAME).write_text(digest + "\n", encoding="ascii")
    return manifest


class ManifestCorpus(Corpus):
    """Utterances from a manifest directory, checked against its digest when loaded.

    Loading decodes every file once to recompute the digest (the synthetic
    corpus takes well under a second), so a damaged or edited copy fails
    here, naming the file, instead of producing results under a wrong name.
    `filters` ({label: allowed values}) and `limit` (first N after
    filtering) select utterances; the digest of a selection is derived from
    the full digest and the selected ids, so different selections never
    share a digest.
    """

    name = "manifest"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        name: str | None = None,
        label_fields: Collection[str] = (),
        times_source: str = "corpus",
        filters: Mapping[str, Collection[str]] | None = None,
        limit: int | None = None,
        require_digest: bool = False,
    ):
        if name:
            self.name = name
        self.directory = manifest_dir(path)
        self.label_fields = tuple(label_fields)
        self.times_source = times_source
        self._entries = read_manifest(self.directory)
        self._selected = self._select(self._entries, filters or {}, limit)
        digest_file = self.directory / DIGEST_NAME
        if not digest_file.is_file() and require_digest:
            raise InputError(
                f"corpus {self.name!r} at {self.directory}: expected {DIGEST_NAME} beside the manifest; none found"
            )
        self._pcm_hash: dict[str, str] = {}
        self._full_digest = content_digest(self._entries, self._decode_and_remember, self.label_fields)
        if digest_file.is_file():
            recorded = digest_file.read_text(encoding="ascii").strip()
            if recorded != self._full_digest:
                checked = all("pcm_sha256" in e for e in self._entries)
                cause = (
                    "every audio file matches its pcm_sha256, so the manifest's annotations (ids, texts, word "
                    "times, labels) or digest.txt were edited"
                    if checked
                    else "the audio or the annotations changed"
                )
                raise InputError(
                    f"corpus {self.name!r}: {digest_file} records {recorded[:16]}... but "
                    f"{self.directory / MANIFEST_NAME} and its audio give {self._full_digest[:16]}...; {cause}"
                )

    def _select(self, entries: list[dict], filters: Mapping[str, Collection[str]], limit: int | None) -> list[dict]:
        chosen = entries
        for key, allowed in filters.items():
            if allowed is None:
                continue
            allowed = {str(a) for a in ([allowed] if isinstance(allowed, str) else allowed)}
            known = {str(self._labels(e).get(key)) for e in entries}
            unknown = sorted(allowed - known)
            if unknown:
                raise InputError(
                    f"corpus {self.name!r}: unknown {key} {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                )
            chosen = [e for e in chosen if str(self._labels(e).get(key)) in allowed]
        if limit is not None:
            if int(limit) < 1:
                raise InputError(f"corpus {self.name!r}: limit must be a positive number of utterances, got {limit}")
            chosen = chosen[: int(limit)]
        return chosen

    def _decode_and_remember(self, entry: Mapping[str, Any]) -> np.ndarray:
        pcm = read_pcm16(self.directory, entry)
        self._pcm_hash[entry["id"]] = pcm_sha256(pcm)
        return pcm

    def _labels(self, entry: Mapping[str, Any]) -> dict[str, str]:
        labels = {str(k): str(v) for k, v in (entry.get("labels") or {}).items()}
        labels.update({f: str(entry[f]) for f in self.label_fields if f in entry})
        return labels

    def __len__(self) -> int:
        return len(self._selected)

    def ids(self) -> list[str]:
        return [e["id"] for e in self._selected]

    def utterances(self) -> Iterator[Utterance]:
        for entry in self._selected:
            yield self._utterance(entry)

    def get(self, utt_id: str) -> Utterance:
        for entry in self._selected:
            if entry["id"] == utt_id:
                return self._utterance(entry)
        raise InputError(f"corpus {self.name!r}: no utterance with id {utt_id!r}")

    def _utterance(self, entry: Mapping[str, Any]) -> Utterance:
        pcm = read_pcm16(self.directory, entry)
        if pcm_sha256(pcm) != self._pcm_hash[entry["id"]]:
            path = self.directory / entry["audio"]
            raise InputError(f"audio file {path}: changed since the corpus was loaded and verified")
        where = f"{self.directory / MANIFEST_NAME}, line {entry['_line']} (utterance {entry['id']!r})"
        try:
            words = tuple(Word(str(w["text"]), float(w["start"]), float(w["end"])) for w in entry["words"])
            meta = {k: v for k, v in entry.items() if k not in ("words", "_line")}
            meta["path"] = str(self.directory / entry["audio"])
            return Utterance(
                id=entry["id"],
                waveform=pcm.astype(np.float32) / 32768.0,
                sample_rate=entry["sample_rate"],
                words=words,
                labels=self._labels(entry),
                times_source=str(entry.get("times_source", self.times_source)),
                meta=meta,
            )
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from exc

    def digest(self) -> str:
        if len(self._selected) == len(self._entries):
            return self._full_digest
        h = hashlib.sha256(b"selection of " + self._full_digest.encode() + b"\n")
        for e in self._selected:
            h.update(e["id"].encode() + b"\n")
        return h.hexdigest()

    def full_digest(self) -> str:
        """The digest of the whole manifest (what digest.txt records), whatever is selected."""
        return self._full_digest

    def describe(self) -> dict:
        return {"name": self.name, "digest": self.digest(), "path": str(self.directory), "utterances": len(self)}
