"""Generate the synthetic corpus: Harvard sentences x voices, with engine word times.

Run ``python -m ssbm_bench_plugins.synthetic OUTPUT_DIR`` (or call
:func:`build_synthetic`). The result is byte-identical on re-run with the
same engine versions, which the manifest records per utterance so that a
digest that differs on another machine can be traced to its engine.

Nothing is trimmed or padded: the audio starts and ends with the engines'
own silences and the word times are theirs, unshifted. festival's HTS voice
renders at 32 kHz and is resampled to 16 kHz with a zero-phase polyphase
filter (:func:`ssbm_bench.audio.resample`), which moves no time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ssbm_bench.errors import InputError
from ssbm_bench.progress import progress_bar

from . import engines
from .harvard import SENTENCES, sentence_words
from .manifest import write_corpus

SAMPLE_RATE = 16000

#: voice label -> (engine, the engine's voice name, Debian package of the voice)
VOICES: dict[str, tuple[str, str, str]] = {
    "rms": ("flite", "rms", "libflite1"),
    "awb": ("flite", "awb", "libflite1"),
    "kal16": ("flite", "kal16", "libflite1"),
    "slt_hts": ("festival", "cmu_us_slt_arctic_hts", "festvox-us-slt-hts"),
}

LICENCE = {
    "flite": "Harvard sentences (IEEE 1969): public domain; audio synthesised by flite (CMU, BSD-style free "
    "licence) with its built-in voice cmu_us_{voice}; redistributable, credit the engine",
    "festival": "Harvard sentences (IEEE 1969): public domain; audio synthesised by festival (University of "
    "Edinburgh, X11-style free licence) with festvox voice cmu_us_slt_arctic_hts (CMU/NITech, BSD-style free "
    "licences); redistributable, credit the engines",
}


def engine_info(engine: str) -> dict:
    """Name and version (as the engine prints it) plus Debian package versions where known."""
    if engine == "flite":
        info = {"name": "flite", "version": engines.flite_version()}
        packages = ["flite", "libflite1"]
    elif engine == "festival":
        info = {"name": "festival", "version": engines.festival_version()}
        packages = ["festival", "festvox-us-slt-hts"]
    else:
        raise InputError(f"unknown speech engine {engine!r}; expected flite or festival")
    found = {p: engines.debian_package_version(p) for p in packages}
    if all(found.values()):
        info["packages"] = found
    return info


def align_words(engine_words: Sequence[tuple[str, float, float]], written: Sequence[str], what: str) -> list[dict]:
    """Map the engine's words onto the written words.

    Both engines split a clitic off as a word of its own ("man's" -> "man"
    + "'s"); a written word takes the span of the engine words that spell
    it. festival's post-lexical rules can fold the clitic's phone into the
    previous word, leaving it no segments (start = end = 0): such a part
    adds its spelling but no time.
    """
    out, i = [], 0
    for word in written:
        spelled, spans = "", []
        while i < len(engine_words) and len(spelled) < len(word):
            name, s, e = engine_words[i]
            spelled += name.lower()
            if e > s:
                spans.append((s, e))
            i += 1
        if spelled != word or not spans:
            raise engines.EngineError(
                f"{what}: the engine's words {[w[0] for w in engine_words]} do not spell the sentence's words "
                f"{list(written)} with a time for each (stuck at {word!r})"
            )
        start, end = spans[0][0], spans[-1][1]
        if out and start < out[-1]["end"] - 1e-6 or any(b[0] < a[1] - 1e-6 for a, b in zip(spans, spans[1:])):
            raise engines.EngineError(f"{what}: word {word!r} at {start}..{end} s overlaps the word before it")
        out.append({"text": word, "start": round(start, 6), "end": round(end, 6)})
    if i != len(engine_words):
        raise engines.EngineError(f"{what}: the engine spoke extra words {[w[0] for w in engine_words[i:]]}")
    return out


def _to_16k(synth: engines.Synthesis) -> np.ndarray:
    if synth.sample_rate == SAMPLE_RATE:
        return synth.samples
    from ssbm_bench.audio import resample  # imports torch: only when an engine is not at 16 kHz

    x = resample(synth.samples.astype(np.float32) / 32768.0, synth.sample_rate, SAMPLE_RATE)
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def _sentence_ids(sentences: int | Iterable[str] | None) -> list[str]:
    if sentences is None:
        return list(SENTENCES)
    if isinstance(sentences, int):
        if not 1 <= sentences <= len(SENTENCES):
            raise InputError(f"sentences: expected 1..{len(SENTENCES)} (the first N), got {sentences}")
        return list(SENTENCES)[:sentences]
    ids = list(sentences)
    unknown = [s for s in ids if s not in SENTENCES]
    if unknown:
        raise InputError(f"sentences: unknown id(s) {unknown}; known: {', '.join(SENTENCES)}")
    return [s for s in SENTENCES if s in ids]  # corpus order, whatever order was asked


def build_synthetic(
    output_dir: str | os.PathLike,
    voices: Iterable[str] | None = None,
    sentences: int | Iterable[str] | None = None,
) -> Path:
    """Synthesise `sentences` (ids, or the first N; default all 25) with `voices` (default all 4).

    Writes ``manifest.jsonl``, ``audio/<id>.flac`` and ``digest.txt`` into
    `output_dir` (created if needed; files of the same names are replaced)
    and returns the manifest's path. Utterances are ordered by sentence,
    then voice, so the first N of a corpus cover every voice.
    """
    voice_list = list(VOICES) if voices is None else list(voices)
    unknown = [v for v in voice_list if v not in VOICES]
    if unknown or not voice_list:
        raise InputError(f"voices: unknown or none {unknown}; known: {', '.join(VOICES)}")
    voice_list = [v for v in VOICES if v in voice_list]
    sids = _sentence_ids(sentences)
    texts = [SENTENCES[s] for s in sids]
    info = {e: engine_info(e) for e in sorted({VOICES[v][0] for v in voice_list})}

    results: dict[tuple[str, str], engines.Synthesis] = {}
    # a bar over the utterances synthesised (festival's voices arrive as a batch each, when they finish)
    bar = progress_bar(len(sids) * len(voice_list), "synthesising", "utt", sys.stderr.isatty())
    with ThreadPoolExecutor(max_workers=2) as pool:  # festival runs while flite does
        pending = {
            v: pool.submit(engines.synth_festival, VOICES[v][1], texts)
            for v in voice_list
            if VOICES[v][0] == "festival"
        }
        for v in voice_list:
            if VOICES[v][0] == "flite":
                for s, t in zip(sids, texts):
                    results[(s, v)] = engines.synth_flite(VOICES[v][1], t)
                    bar.update(1)
        for v, fut in pending.items():
            for s, synth in zip(sids, fut.result()):
                results[(s, v)] = synth
                bar.update(1)
    bar.close()

    entries, pcm = [], {}
    for s in sids:
        for v in voice_list:
            engine, engine_voice, _ = VOICES[v]
            uid = f"{v}_{s}"
            synth = results[(s, v)]
            what = f"{engine} voice {engine_voice}, sentence {s}"
            words = align_words(synth.words, sentence_words(SENTENCES[s]), what)
            samples = _to_16k(synth)
            duration = len(samples) / SAMPLE_RATE
            if words[-1]["end"] > duration + 0.01:
                raise engines.EngineError(
                    f"{what}: last word ends at {words[-1]['end']} s, after the audio ({duration:.3f} s)"
                )
            pcm[uid] = samples
            entries.append(
                {
                    "id": uid,
                    "audio": f"audio/{uid}.flac",
                    "sample_rate": SAMPLE_RATE,
                    "text": SENTENCES[s],
                    "words": words,
                    "voice": v,
                    "sentence": s,
                    "times_source": "synthesiser",
                    "engine": {**info[engine], "voice": engine_voice, "output_rate": synth.sample_rate},
                    "licence": LICENCE[engine].format(voice=engine_voice),
                }
            )
    return write_corpus(output_dir, entries, pcm, label_fields=("voice",))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ssbm_bench_plugins.synthetic", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--voices", nargs="*", default=None, help=f"subset of {', '.join(VOICES)}")
    parser.add_argument("--sentences", type=int, default=None, help="first N Harvard sentences (default 25)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    manifest = build_synthetic(args.output_dir, voices=args.voices, sentences=args.sentences)
    digest = (manifest.parent / "digest.txt").read_text().strip()
    print(f"wrote {manifest} in {time.perf_counter() - t0:.1f} s; digest {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
