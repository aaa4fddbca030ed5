"""The `commands` corpus: spoken commands with action / object / location slots.

A word-based classification task in the manner of Fluent Speech Commands,
the intent data of the ISA paper (Shen et al., "On the reliability of
feature attribution methods for speech classification"):
every utterance is "<action> the <object> in the <location>", so the class
of each slot is carried by one word, at a time the synthesiser knows
exactly. The seed families (``ssbm-bench train commands-action``) learn one
slot; word-aligned attribution should then find that word, which is what
makes the paper's word-based vs acoustic contrast testable here.

4 actions x 4 objects x 3 locations = 48 commands, spoken by the four flite
voices (kal16, rms, awb, slt) = 192 utterances of about 1.5 s, 16 kHz, with
flite's own word times. Labels: action, object, location, voice; ``split``
is "test" for 12 of the 48 commands (those whose slot indices sum to a
multiple of 4: every action, object and location occurs in both splits)
and "train" for the rest, the same for every voice, so test commands
are never heard in training in any voice.

The corpus is synthesised on first use (about 20 s) into the cache
(``$SSBM_BENCH_CACHE/corpora/commands-v1``, see ssbm_bench.cache_dir) and loaded
from there, digest-checked, afterwards. Where flite differs from the version
that made the digest recorded in results, the audio and digest differ too, and
results are kept apart by digest (as with the synthetic corpus).
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Collection

from ssbm_bench.cache_dir import cache_root
from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import CorpusPlugin
from ssbm_bench_plugins.synthetic import engines
from ssbm_bench_plugins.synthetic.build import align_words, engine_info
from ssbm_bench_plugins.synthetic.manifest import DIGEST_NAME, ManifestCorpus, write_corpus

VERSION = 1
ACTIONS = ("activate", "deactivate", "increase", "decrease")
OBJECTS = ("lights", "music", "heat", "volume")
LOCATIONS = ("kitchen", "bedroom", "washroom")
VOICES = ("kal16", "rms", "awb", "slt")
SLOTS = ("action", "object", "location")
LABEL_FIELDS = ("action", "object", "location", "voice", "split")
LICENCE = ("command grammar: ssbm-bench (MIT); audio synthesised by flite (CMU, BSD-style free licence) with its "
           "built-in voice cmu_us_{voice}; redistributable, credit the engine")


def commands() -> list[dict]:
    """The 48 commands in a fixed order, each with its slots and split."""
    out = []
    for i, ((ai, a), (oi, o), (li, loc)) in enumerate(
            itertools.product(enumerate(ACTIONS), enumerate(OBJECTS), enumerate(LOCATIONS))):
        out.append({"index": i, "text": f"{a} the {o} in the {loc}", "action": a, "object": o, "location": loc,
                    # a Latin-square rule: 12 of 48 held out, 3 per action, 3 per object, 4 per location
                    "split": "test" if (ai + oi + li) % 4 == 0 else "train"})
    return out


def build_commands(output_dir: str | os.PathLike, voices: Collection[str] = VOICES) -> Path:
    """Synthesise every command with every voice into `output_dir`; return the manifest path."""
    unknown = [v for v in voices if v not in VOICES]
    if unknown or not voices:
        raise InputError(f"commands corpus: unknown or no voices {unknown}; known: {', '.join(VOICES)}")
    info = engine_info("flite")
    entries, pcm = [], {}
    for cmd in commands():
        for voice in voices:
            uid = f"{voice}_c{cmd['index']:02d}"
            synth = engines.synth_flite(voice, cmd["text"])
            if synth.sample_rate != 16000:
                from ssbm_bench.audio import resample
                import numpy as np

                x = resample(synth.samples.astype(np.float32) / 32768.0, synth.sample_rate, 16000)
                samples = np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
            else:
                samples = synth.samples
            words = align_words(synth.words, cmd["text"].split(), f"flite voice {voice}, command {cmd['text']!r}")
            pcm[uid] = samples
            entries.append({
                "id": uid, "audio": f"audio/{uid}.flac", "sample_rate": 16000, "text": cmd["text"],
                "words": words, "voice": voice, "action": cmd["action"], "object": cmd["object"],
                "location": cmd["location"], "split": cmd["split"], "times_source": "synthesiser",
                "engine": {**info, "voice": voice, "output_rate": synth.sample_rate},
                "licence": LICENCE.format(voice=voice),
            })
    return write_corpus(output_dir, entries, pcm, label_fields=LABEL_FIELDS)


def default_path() -> Path:
    return cache_root() / "corpora" / f"commands-v{VERSION}"


def ensure_built(path: Path | None = None) -> Path:
    """The corpus directory, synthesised first if it is not there (or was left half-written)."""
    path = Path(path) if path is not None else default_path()
    if (path / DIGEST_NAME).is_file():
        return path
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    build_commands(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    if (path / DIGEST_NAME).is_file():  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        return path
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


class CommandsCorpus(ManifestCorpus):
    """Spoken commands; `split` ("train"/"test"), `voices` and `limit` select utterances."""

    name = "commands"

    def __init__(self, path: str | os.PathLike | None = None, split: str | None = None,
                 voices: Collection[str] | str | None = None, limit: int | None = None):
        if split not in (None, "train", "test"):
            raise InputError(f"commands corpus: split must be 'train' or 'test', got {split!r}")
        directory = ensure_built(Path(path) if path is not None else None)
        super().__init__(directory, label_fields=LABEL_FIELDS, times_source="synthesiser",
                         filters={"split": [split] if split else None, "voice": voices}, limit=limit,
                         require_digest=True)


@hookimpl
def register_corpora(register):
    register(CorpusPlugin.of(
        CommandsCorpus,
        description="spoken commands '<action> the <object> in the <location>' (4x4x3) x 4 flite voices, "
                    "exact word times, slot labels and a train/test split; synthesised on first use",
    ))
