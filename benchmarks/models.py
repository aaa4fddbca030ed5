"""Side by side on the same audio: pocketsphinx, Whisper tiny.en (CTranslate2) and
Whisper tiny.en (converted to transformers).

Why: the benchmark leans on two faces of one Whisper (a fast black box for
the many noisy mixtures of SSBM, a white box for gradients). This script
measures what each face costs and checks that they are the same model:

* word error rate on LibriVox sentences (pocketsphinx-testdata) and on the
  synthetic corpus, with the benchmark's own normalisation
  (ssbm_bench.text) and edit-distance alignment (ssbm_bench.metrics);
* decode time per second of audio at batch 1 and batch 8 (Whisper always
  encodes a 30 s window, so its cost per utterance hardly depends on length);
* gradient time per utterance: the target score of one word w.r.t. the STFT
  magnitude (ssbm_bench.frontend.StftFrontEnd), backward included;
* peak memory: each engine runs in its own freshly spawned process, and its
  peak resident set size is that process's ``resource.getrusage`` ru_maxrss
  (RSS, not tracemalloc: tracemalloc cannot see torch's or ctranslate2's
  native allocations). The spawned interpreter's baseline is reported too.

Run: ``.venv/bin/python benchmarks/models.py [--synthetic 20] [--grad 5] [--threads 2] [--json out.json]``.
The converted model is cached (``$SSBM_BENCH_CACHE``); a first run converts
it before measuring, and says how long that took.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


# --- data -------------------------------------------------------------------------
def librivox_set() -> list[tuple[str, "object", list[str]]]:
    """(id, waveform, reference words) for the LibriVox sentences with transcripts."""
    import soundfile as sf

    from ssbm_bench.text import normalise_words

    refs = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, utt = line.rpartition("(")
        refs[utt.strip(" )")] = normalise_words(text)
    out = []
    for utt, ref in sorted(refs.items()):
        wav, sr = sf.read(str(LIBRIVOX / f"{utt}.wav"), dtype="float32")
        assert sr == 16000, (utt, sr)
        out.append((utt, wav, ref))
    return out


def synthetic_set(limit: int):
    from ssbm_bench_plugins.synthetic import SyntheticCorpus

    return [(u.id, u.waveform, u.reference) for u in SyntheticCorpus(limit=limit).utterances()]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _batched(fn, waves, batch):
    out = []
    for i in range(0, len(waves), batch):
        out.extend(fn(waves[i:i + batch]))
    return out


# --- workers (each in a fresh process) ------------------------------------------------
def work_baseline(_args) -> dict:
    import numpy  # noqa: F401

    import ssbm_bench  # noqa: F401

    return {"peak_rss_mb": peak_rss_mb()}


def _pocketsphinx_model():
    """The registered plugin; if it is not installed, a plain fresh-decoder-per-utterance stand-in."""
    from ssbm_bench.plugins import get_registry

    try:
        return get_registry().create("model", "pocketsphinx"), "plugin 'pocketsphinx'"
    except Exception as exc:  # noqa: BLE001 - reported, then the stand-in is used
        reason = f"{type(exc).__name__}: {exc}"
    import numpy as np
    from pocketsphinx import Decoder

    class Direct:
        def transcribe(self, waveforms):
            out = []
            for w in waveforms:
                d = Decoder(loglevel="FATAL")  # fresh each time: a reused decoder carries state
                d.start_utt()
                d.process_raw((np.clip(w, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
                d.end_utt()
                out.append(d.hyp().hypstr.split() if d.hyp() else [])
            return out

    return Direct(), f"pocketsphinx.Decoder directly (plugin unavailable: {reason})"


def work_pocketsphinx(args) -> dict:
    waves = [w for _, w, _ in args["data"]]
    model, how = _pocketsphinx_model()
    model.transcribe(waves[:1])  # warm-up
    words, secs = _timed(model.transcribe, waves)
    return {"how": how, "words": words, "decode_b1_s": secs, "peak_rss_mb": peak_rss_mb()}


def work_ct2(args) -> dict:
    waves = [w for _, w, _ in args["data"]]
    model = _whisper(args["threads"])
    _, load_s = _timed(lambda: (model.ct2, model.ct2_log_mel, model.ct2_tokenizer))
    model.transcribe(waves[:1])  # warm-up
    words_1, b1 = _timed(_batched, model.transcribe, waves, 1)
    words_8, b8 = _timed(_batched, model.transcribe, waves, 8)
    ids = _batched(model.ct2_ids, waves, 8)
    return {"words": words_1, "batched_same": words_1 == words_8, "ids": ids, "load_s": load_s,
            "decode_b1_s": b1, "decode_b8_s": b8, "peak_rss_mb": peak_rss_mb()}


def _whisper(threads: int):
    """tiny.en with both ctranslate2 and torch on `threads` threads."""
    import torch

    from ssbm_bench_plugins.whisper.model import WhisperModel

    torch.set_num_threads(threads)
    return WhisperModel("tiny.en", compute_type="float32", threads=threads)


def work_transformers(args) -> dict:
    waves = [w for _, w, _ in args["data"]]
    model = _whisper(args["threads"])
    _, load_s = _timed(lambda: model.torch)
    model.transcribe_whitebox(waves[:1])  # warm-up
    words_1, b1 = _timed(_batched, model.transcribe_whitebox, waves, 1)
    words_8, b8 = _timed(_batched, model.transcribe_whitebox, waves, 8)
    ids = _batched(model.torch.greedy_ids, waves, 8)
    return {"words": words_1, "batched_same": words_1 == words_8, "ids": ids, "load_s": load_s,
            "decode_b1_s": b1, "decode_b8_s": b8, "peak_rss_mb": peak_rss_mb()}


def work_gradients(args) -> dict:
    import torch

    from ssbm_bench.frontend import StftFrontEnd, score_from_magnitude
    from ssbm_bench.types import Target

    model = _whisper(args["threads"])
    model.torch
    times, norms, skipped = [], [], 0
    for i, (_, wave, _) in enumerate(args["data"]):
        ft = model.forced_transcript(wave)  # not timed: the transcript is computed once per utterance
        if not ft.words:
            skipped += 1
            continue
        target = Target("word", len(ft.words) // 2, ft.words[len(ft.words) // 2])
        front = StftFrontEnd(wave)
        t = time.perf_counter()
        mag = front.magnitude.clone().requires_grad_(True)
        score_from_magnitude(model, front, mag, target, ft).backward()
        if i > 0:  # the first one is a warm-up
            times.append(time.perf_counter() - t)
        g = mag.grad
        norms.append({"finite": bool(torch.isfinite(g).all()), "l2": float(g.norm()),
                      "nonzero_frac": float((g != 0).float().mean())})
    return {"grad_s": times, "norms": norms, "skipped": skipped, "peak_rss_mb": peak_rss_mb()}


def work_convert(args) -> dict:
    """Make sure the conversion cache is warm, outside every measured process."""
    from ssbm_bench_plugins.whisper.cache import converted_dir, entry_dir, is_complete
    from ssbm_bench_plugins.whisper.sources import find_source

    source = find_source("tiny.en")
    cold = not is_complete(entry_dir(source) / "hf", source)
    _, secs = _timed(converted_dir, source)
    return {"converted": cold, "convert_s": secs if cold else 0.0, "cache": str(entry_dir(source))}


def run_isolated(fn, args) -> dict:
    """Run `fn(args)` in a freshly spawned interpreter, so its peak RSS is its own."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, (args,))


# --- scoring and report -----------------------------------------------------------------
def wer(refs: list[list[str]], hyps: list[list[str]]) -> tuple[float, int, int]:
    """(word error rate, edits, reference words) over a set, by Levenshtein alignment."""
    from ssbm_bench.metrics.word_accuracy import align_words
    from ssbm_bench.text import normalise_words

    edits = words = 0
    for ref, hyp in zip(refs, hyps):
        hyp = normalise_words(hyp)
        edits += sum(1 for i, j in align_words(ref, hyp) if i is None or j is None or ref[i] != hyp[j])
        words += len(ref)
    return edits / max(words, 1), edits, words


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--synthetic", type=int, default=20, help="synthetic utterances (default 20)")
    p.add_argument("--grad", type=int, default=5, help="utterances for the gradient timing (default 5)")
    p.add_argument("--threads", type=int, default=2, help="threads for ctranslate2 and torch (default 2)")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    a = p.parse_args(argv)

    sets = {"librivox": librivox_set(), "synthetic": synthetic_set(a.synthetic)}
    data = sets["librivox"] + sets["synthetic"]
    audio_s = sum(len(w) for _, w, _ in data) / 16000.0
    print(f"audio: {len(sets['librivox'])} LibriVox + {len(sets['synthetic'])} synthetic utterances, "
          f"{audio_s:.1f} s in all; threads={a.threads}; {os.cpu_count()} CPUs; "
          f"load average at start {os.getloadavg()[0]:.2f}", flush=True)
    res = {"convert": run_isolated(work_convert, {})}
    if res["convert"]["converted"]:
        print(f"(converted tiny.en into the cache first: {res['convert']['convert_s']:.1f} s)", flush=True)
    common = {"threads": a.threads}
    res["baseline"] = run_isolated(work_baseline, {})
    for name, fn in [("pocketsphinx", work_pocketsphinx), ("ct2", work_ct2), ("transformers", work_transformers)]:
        res[name] = run_isolated(fn, {**common, "data": data})
        print(f"  {name}: done", flush=True)
    # gradients on LibriVox first, then synthetic, one warm-up extra
    res["grad"] = run_isolated(work_gradients, {**common, "data": data[: a.grad + 1]})

    n_lv = len(sets["librivox"])
    rows = []
    for name, label in [("pocketsphinx", "pocketsphinx"), ("ct2", "whisper-tiny-en, CTranslate2 f32"),
                        ("transformers", "whisper-tiny-en, transformers greedy")]:
        r = res[name]
        w_lv = wer([ref for _, _, ref in sets["librivox"]], r["words"][:n_lv])
        w_sy = wer([ref for _, _, ref in sets["synthetic"]], r["words"][n_lv:])
        b8 = f"{r['decode_b8_s'] / audio_s:.3f}" if "decode_b8_s" in r else "-"
        rows.append([label, f"{w_lv[0]:.1%} ({w_lv[1]}/{w_lv[2]})", f"{w_sy[0]:.1%} ({w_sy[1]}/{w_sy[2]})",
                     f"{r['decode_b1_s'] / audio_s:.3f}", b8, f"{r['peak_rss_mb']:.0f}"])
    print()
    print(table(rows, ["model", "WER LibriVox", "WER synthetic", "s/s audio b1", "s/s audio b8", "peak RSS MB"]))
    g = res["grad"]
    mean_g = sum(g["grad_s"]) / max(len(g["grad_s"]), 1)
    fracs = [n["nonzero_frac"] for n in g["norms"]]
    print(f"\ngradient (one word's target score w.r.t. the STFT magnitude, transformers): "
          f"{mean_g:.2f} s per utterance (mean of {len(g['grad_s'])}), peak RSS {g['peak_rss_mb']:.0f} MB")
    print("  gradient L2 norms: " + ", ".join(f"{n['l2']:.3g}" for n in g["norms"])
          + f"; all finite: {all(n['finite'] for n in g['norms'])}; "
          f"non-zero fraction {min(fracs):.2f}..{max(fracs):.2f}")
    same_ids = sum(x == y for x, y in zip(res["ct2"]["ids"], res["transformers"]["ids"]))
    ct2, tf = res["ct2"], res["transformers"]
    print(f"\nCTranslate2 vs transformers: identical greedy tokens on {same_ids}/{len(data)} utterances; "
          f"batch 8 gives the batch-1 words: CT2 {ct2['batched_same']}, transformers {tf['batched_same']}")
    print("ratios (transformers / CTranslate2): "
          f"decode b1 x{tf['decode_b1_s'] / ct2['decode_b1_s']:.2f}, b8 x{tf['decode_b8_s'] / ct2['decode_b8_s']:.2f}; "
          f"batch-8 speed-up: CT2 x{ct2['decode_b1_s'] / ct2['decode_b8_s']:.2f}, "
          f"transformers x{tf['decode_b1_s'] / tf['decode_b8_s']:.2f}; "
          f"gradient / CT2 decode per utterance x{mean_g / (ct2['decode_b1_s'] / len(data)):.1f}; "
          f"pocketsphinx / CT2 decode b1 x{res['pocketsphinx']['decode_b1_s'] / ct2['decode_b1_s']:.2f}")
    print(f"load: CT2 {ct2['load_s']:.2f} s, transformers (from cache) {tf['load_s']:.2f} s; "
          f"peak RSS of a bare spawned interpreter with ssbm_bench: {res['baseline']['peak_rss_mb']:.0f} MB")
    print(f"pocketsphinx via {res['pocketsphinx']['how']}; load average at end {os.getloadavg()[0]:.2f} "
          f"(timings on a shared machine: compare ratios within one run)")
    if a.json:
        a.json.write_text(json.dumps({k: v for k, v in res.items()}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
