"""Bubble noise throughput: mixtures decoded per second against the model's own batched throughput.

Issue 5 asks for this number, because decoding N mixtures per utterance is
the dominant cost of the whole benchmark. For each model and utterance, in
one run and one process, on the same audio:

1. ``clean``: the model's own batched throughput: the clean utterance,
   repeated N times, transcribed in batches of ``--batch`` (the bubble
   method's batch size). Utterances per second.
2. ``mixtures``: the same model decoding the very N bubble-noise mixtures
   the method will decode (generated beforehand with the method's own
   ``BubbleMixer``, same settings and seeds; generation not timed). This is
   the model's batched throughput on noisy audio, which for a search-based
   decoder such as pocketsphinx is lower than on clean speech.
3. ``bubble``: the bubble method end to end (``BubbleMethod.explain`` with
   an empty artifacts cache): mixture generation + batched decoding +
   point-biserial statistics for one word. Mixtures per second, with the
   method's own split of the time (decode vs generate; the rest is the
   statistics and bookkeeping). A second word of the same utterance is then
   explained to show that it decodes nothing (the recognition results are
   reused).

Ratios printed: bubble / clean (what the issue asks: the cost of a bubble
mixture relative to the model's plain batched throughput on the same
utterance), and bubble / mixtures (the method's own overhead on top of
decoding those same mixtures).

The bubble rate is Mandel's default (10 a second) without tuning (tuning
would add ``tune_mixtures`` pilot decodes per round; ``--tune`` turns it on
and counts them), the noise level 0 dB re. speech RMS (``--level-db``), the
level calibrated for pocketsphinx on these utterances.

Run: ``.venv/bin/python benchmarks/bubble_throughput.py [--mixtures 20] [--batch 16]
[--models pocketsphinx whisper-tiny-en] [--utterances rms_h02_01 kal16_h02_01] [--json out.json]``.
Timings on a shared machine vary with its load; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from ssbm_bench.artifacts import MemoryArtifacts
from ssbm_bench.audio import StftConfig, stft
from ssbm_bench.method import ExplainRequest
from ssbm_bench.plugins import get_registry
from ssbm_bench.text import normalise_words
from ssbm_bench.types import Target
from ssbm_bench_plugins.bubble.method import BubbleMethod, stable_hash
from ssbm_bench_plugins.bubble.mixer import BubbleMixer, BubbleSettings

#: fully recognised when clean by pocketsphinx (tests/e2e_helpers.py) and by Whisper tiny.en
DEFAULT_UTTERANCES = ["rms_h02_01", "kal16_h02_01"]


def batched(fn, waves, batch):
    out = []
    for i in range(0, len(waves), batch):
        out.extend(fn(waves[i:i + batch]))
    return out


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def measure(model, utt, n: int, batch: int, level_db: float, tune: bool, cfg: StftConfig) -> dict:
    # 1. the model's own batched throughput on the clean utterance
    _, clean_s = timed(batched, model.transcribe, [utt.waveform] * n, batch)

    # 2. the same mixtures the method decodes, decoded directly
    method = BubbleMethod(n_mixtures=n, batch_size=batch, noise_level_db=level_db, tune_bubbles=tune)
    mixer = BubbleMixer(utt.waveform, cfg, BubbleSettings(), level_db, [0, stable_hash(utt.id)])
    mixtures = mixer.mixtures(range(n))
    direct, mix_s = timed(batched, model.transcribe, mixtures, batch)

    # 3. the bubble method end to end, nothing cached
    mag = stft(torch.as_tensor(utt.waveform), cfg).abs().numpy()
    ref = utt.reference
    k = len(ref) // 2

    def request(index):
        return ExplainRequest(model=model, utterance=utt, target=Target("word", index, ref[index]), cfg=cfg,
                              seed=0, clean_magnitude=mag, artifacts=artifacts, noise_level_db=level_db)

    artifacts = MemoryArtifacts()
    smap, bubble_s = timed(method.explain, request(k))
    decoded_first = method.decoded
    _, second_s = timed(method.explain, request(k - 1 if k > 0 else k + 1))
    p = smap.params
    stored = artifacts.get(p["artifact"])["hypotheses"]
    same = [" ".join(normalise_words(h)) for h in direct] == stored
    return {
        "same_mixtures_same_hypotheses": same,
        "model": model.name, "utterance": utt.id, "seconds_of_audio": round(utt.duration, 3), "mixtures": n,
        "batch": batch, "level_db": level_db, "bubbles_per_second": p["bubbles_per_second"],
        "clean_per_s": n / clean_s, "mixtures_decode_only_per_s": n / mix_s,
        "bubble_per_s": n / bubble_s, "bubble_seconds": bubble_s,
        "bubble_decoded": decoded_first, "bubble_decode_seconds": p["decode_seconds"],
        "bubble_generate_seconds": p["generate_seconds"],
        "bubble_other_seconds": bubble_s - p["decode_seconds"] - p["generate_seconds"],
        "second_word_seconds": second_s, "second_word_decoded": method.decoded - decoded_first,
        "target_recognised_fraction": p["recognised_fraction"],
        "ratio_bubble_to_clean": (n / bubble_s) / (n / clean_s),
        "ratio_bubble_to_mixtures": (n / bubble_s) / (n / mix_s),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["pocketsphinx", "whisper-tiny-en"])
    ap.add_argument("--utterances", nargs="+", default=DEFAULT_UTTERANCES)
    ap.add_argument("--mixtures", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16, help="batch size (the bubble method's default: 16)")
    ap.add_argument("--level-db", type=float, default=0.0)
    ap.add_argument("--tune", action="store_true", help="tune the bubble rate (pilot decodes are counted)")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    cfg = StftConfig()
    reg = get_registry()
    corpus = reg.create("corpus", "synthetic")
    utts = {u.id: u for u in corpus.utterances()}
    missing = [u for u in args.utterances if u not in utts]
    if missing:
        ap.error(f"unknown synthetic utterance(s): {', '.join(missing)}")
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
    rows = []
    for name in args.models:
        model = reg.create("model", name)
        t0 = time.perf_counter()
        model.transcribe([utts[args.utterances[0]].waveform])  # load weights, warm up: not timed below
        print(f"[{name}] loaded and warmed up in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for uid in args.utterances:
            row = measure(model, utts[uid], args.mixtures, args.batch, args.level_db, args.tune, cfg)
            rows.append(row)
            print(f"[{name}] {uid}: clean {row['clean_per_s']:.2f}/s, mixtures decode-only "
                  f"{row['mixtures_decode_only_per_s']:.2f}/s, bubble end to end {row['bubble_per_s']:.2f}/s",
                  file=sys.stderr)

    print(f"\nBubble noise throughput: {args.mixtures} mixtures per utterance, batch {args.batch}, "
          f"{'tuned' if args.tune else 'untuned'} bubble rate, noise {args.level_db:+g} dB; load average at end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    head = ("| model | utterance | audio s | clean utt/s | mixtures decode-only /s | bubble mixtures/s | "
            "bubble / clean | bubble / decode-only | bubble s: decode + generate + other | 2nd word |")
    print(head)
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['utterance']} | {r['seconds_of_audio']:.2f} | {r['clean_per_s']:.2f} | "
              f"{r['mixtures_decode_only_per_s']:.2f} | {r['bubble_per_s']:.2f} | {r['ratio_bubble_to_clean']:.2f} | "
              f"{r['ratio_bubble_to_mixtures']:.2f} | {r['bubble_seconds']:.1f} = {r['bubble_decode_seconds']:.1f} + "
              f"{r['bubble_generate_seconds']:.2f} + {r['bubble_other_seconds']:.2f} | "
              f"{r['second_word_decoded']} decoded, {r['second_word_seconds']:.2f} s |"
              + ("" if r["same_mixtures_same_hypotheses"] else " (hypotheses differ from the direct decode!)"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
