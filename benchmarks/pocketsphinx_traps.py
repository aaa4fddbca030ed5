"""Measure two suspected pocketsphinx traps side by side, in one run.

The traps, as first reported when pocketsphinx 5 was tried for this
benchmark: (a) audio that ends in exact digital silence fails to align, and
padding the end with 0.2 s of faint noise cures it; (b) a reused decoder
carries state between utterances (about 1 in 6 results changed; a fresh
decoder costs about 0.26 s). What this script measured, and what the model
plugin does about it, is in the docstring of
``plugins/pocketsphinx_asr.py``.

Trap b (decoder state): every utterance is decoded (i) by a fresh decoder,
(ii) by one reused decoder in forward order, (iii) reused in reverse and in
shuffled order, and by reused decoders with a candidate reset before each
utterance (``set_cmn`` back to the initial mean; ``reinit_feat``). Each is
compared with the fresh decoder: hypothesis text, and the full result (text,
score and word segmentation). Both ways of feeding audio are measured:
streaming blocks (``full_utt=False``, the library default) and one block per
utterance (``full_utt=True``, which the model plugin uses).

Trap a (digital silence at the end): forced alignment with and without the
0.2 s faint-noise pad on audio as is, with 0.5 s of exact zeros appended, and
with the last word replaced by zeros; recognition of normal audio with and
without the pad; quiet audio (x 0.01) aligned in both feeding modes.

Audio: pocketsphinx-testdata (goforward, numbers, something, 5 LibriVox
sentences, 5 "cards" utterances) plus the synthetic corpus when its manifest
exists. Usage: ``.venv/bin/python benchmarks/pocketsphinx_traps.py [--limit N]``
(the first N synthetic utterances, default 40: 53 in all, several minutes on
one core; ``--limit 100`` for the whole corpus).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ssbm_bench.errors import InputError
from ssbm_bench.text import normalise_words
from ssbm_bench_plugins.pocketsphinx_asr import PocketsphinxModel, to_pcm16

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
SYNTHETIC_MANIFEST = Path(__file__).resolve().parents[1] / "plugins/synthetic/data/manifest.jsonl"


@dataclass
class Utt:
    id: str
    x: np.ndarray  # float32 at 16 kHz
    ref: list[str] | None  # reference words, None when unknown
    times: list[tuple[float, float]] | None = None  # exact word times (synthetic)

    @property
    def pcm(self) -> bytes:
        return to_pcm16(self.x)

    @property
    def seconds(self) -> float:
        return len(self.x) / 16000


def _transcripts(path: Path) -> dict[str, list[str]]:
    """'<s> words </s> (id)' lines -> {id: words}."""
    out = {}
    for line in path.read_text().splitlines():
        if "(" in line:
            text, _, rest = line.rpartition("(")
            out[rest.rstrip(") ").strip()] = normalise_words(text)
    return out


def load_utterances(limit: int | None) -> list[Utt]:
    raw = lambda p: np.fromfile(p, dtype="<i2").astype(np.float32) / 32768.0  # noqa: E731
    wav = lambda p: sf.read(str(p), dtype="float32")[0]  # noqa: E731
    utts = [
        Utt("goforward", raw(TESTDATA / "goforward.raw"), "go forward ten meters".split()),
        Utt("numbers", raw(TESTDATA / "numbers.raw"), None),
        Utt("something", raw(TESTDATA / "something.raw"), None),
    ]
    for folder, listing in (("librivox", "transcription"), ("cards", "cards.transcription")):
        refs = _transcripts(TESTDATA / folder / listing)
        for p in sorted((TESTDATA / folder).glob("*.wav")):
            short = p.stem.rsplit("-", 1)[-1]  # sense_and_sensibility_01_austen_64kb-0870 -> 0870
            utts.append(Utt(f"{folder}/{short}", wav(p), refs.get(p.stem)))
    if limit == 0:
        pass
    elif SYNTHETIC_MANIFEST.is_file():
        from ssbm_bench_plugins.synthetic import SyntheticCorpus

        for u in SyntheticCorpus(limit=limit).utterances():
            utts.append(Utt(u.id, u.waveform, u.reference, [(w.start, w.end) for w in u.words]))
    else:
        print(f"(no synthetic corpus at {SYNTHETIC_MANIFEST}; testdata only)", file=sys.stderr)
    return utts


# -- trap b: decoder state ----------------------------------------------------


def new_decoder():
    from pocketsphinx import Decoder

    return Decoder(loglevel="FATAL")


def decode(d, pcm: bytes, block: bool):
    """One utterance -> (text, full result) where full = text, score, segmentation."""
    d.start_utt()
    d.process_raw(pcm, full_utt=block)
    d.end_utt()
    hyp = d.hyp()
    if hyp is None:
        return "", ("", None, ())
    segs = tuple((s.word, s.start_frame, s.end_frame) for s in d.seg())
    return hyp.hypstr, (hyp.hypstr, hyp.best_score, segs)


def run_fresh(utts, block):
    out, t_create, t_decode = {}, 0.0, 0.0
    for u in utts:
        t0 = time.perf_counter()
        d = new_decoder()
        t1 = time.perf_counter()
        out[u.id] = decode(d, u.pcm, block)
        t_decode += time.perf_counter() - t1
        t_create += t1 - t0
    return out, t_create / len(utts), t_decode


def run_reused(utts, block, order, reset):
    d = new_decoder()
    initial_cmn = d.get_cmn()
    resets = {
        "none": lambda: None,
        "set_cmn": lambda: d.set_cmn(initial_cmn),
        "reinit_feat": d.reinit_feat,
    }
    out, t_reset, t_decode = {}, 0.0, 0.0
    for u in order(utts):
        t0 = time.perf_counter()
        resets[reset]()
        t1 = time.perf_counter()
        out[u.id] = decode(d, u.pcm, block)
        t_decode += time.perf_counter() - t1
        t_reset += t1 - t0
    return out, t_reset / len(utts), t_decode


ORDERS = {
    "forward": lambda us: list(us),
    "reverse": lambda us: list(us)[::-1],
    "shuffled": lambda us: random.Random(0).sample(list(us), len(us)),
}


def word_errors(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def accuracy(utts, results, prefix="") -> str:
    scored = [(u.ref, normalise_words(results[u.id][0])) for u in utts if u.ref and u.id.startswith(prefix)]
    if not scored:
        return "-"
    n = sum(len(r) for r, _ in scored)
    return f"{100 * (1 - sum(word_errors(r, h) for r, h in scored) / n):.1f}%"


#: (feeding, reset before each utterance, orders) measured against a fresh decoder
PLAN = [
    ("streaming", "none", ("forward", "reverse", "shuffled")),
    ("streaming", "set_cmn", ("reverse",)),
    ("streaming", "reinit_feat", ("shuffled",)),
    ("block", "none", ("forward", "reverse", "shuffled")),
    ("block", "set_cmn", ("shuffled",)),
    ("block", "reinit_feat", ("forward", "reverse", "shuffled")),
]


def trap_b(utts) -> None:
    n, audio = len(utts), sum(u.seconds for u in utts)
    print(f"\n== Trap b: decoder state, {n} utterances, {audio:.0f} s of audio ==")
    print(f"{'feeding':<10} {'decoder':<24} {'order':<9} {'text differs':>13} {'result differs':>15} "
          f"{'create/reset ms':>16} {'decode s per s':>15}")
    fresh = {}
    for mode, reset, orders in PLAN:
        block = mode == "block"
        if mode not in fresh:
            fresh[mode], t_create, t_dec = run_fresh(utts, block)
            print(f"{mode:<10} {'fresh per utterance':<24} {'-':<9} {'(reference)':>13} {'':>15} "
                  f"{1000 * t_create:>16.0f} {t_dec / audio:>15.3f}")
            print(f"{'':<10} word accuracy: LibriVox {accuracy(utts, fresh[mode], 'librivox')}, "
                  f"synthetic {accuracy([u for u in utts if u.times], fresh[mode])}, "
                  f"all with references {accuracy(utts, fresh[mode])}")
        ref = fresh[mode]
        for order_name in orders:
            got, t_reset, t_dec = run_reused(utts, block, ORDERS[order_name], reset)
            texts = [u.id for u in utts if got[u.id][0] != ref[u.id][0]]
            fulls = sum(got[u.id][1] != ref[u.id][1] for u in utts)
            label = "reused" if reset == "none" else f"reused + {reset}"
            print(f"{mode:<10} {label:<24} {order_name:<9} {f'{len(texts)}/{n}':>13} {f'{fulls}/{n}':>15} "
                  f"{1000 * t_reset:>16.3f} {t_dec / audio:>15.3f}  {' '.join(texts[:4])}")
            sys.stdout.flush()


# -- trap a: digital silence and the pad ------------------------------------------


def zero_tail(u: Utt, seconds=0.5) -> np.ndarray:
    return np.concatenate([u.x, np.zeros(int(seconds * 16000), np.float32)])


def zero_last_word(u: Utt) -> np.ndarray:
    y = u.x.copy()
    y[int(u.times[-1][0] * 16000):] = 0.0
    return y


def align_failures(model, utts, variant) -> tuple[int, int, list]:
    fails, results = 0, []
    for u in utts:
        try:
            results.append(model.align(variant(u), u.ref))
        except InputError:
            fails += 1
            results.append(None)
    return fails, len(utts), results


def streaming_align_fails(utts, scale) -> tuple[int, int]:
    """Align with a raw decoder fed in streaming blocks vs one block: the mode, not the pad, matters."""
    counts = []
    for block in (False, True):
        fails = 0
        for u in utts:
            d = new_decoder()
            d.set_align_text(" ".join(u.ref))
            decode(d, to_pcm16(u.x * scale), block)
            words = [s.word for s in (d.seg() or []) if normalise_words([s.word])]
            fails += d.hyp() is None or len(words) != len(u.ref)
        counts.append(fails)
    return tuple(counts)


def trap_a(utts) -> None:
    padded, bare = PocketsphinxModel(pad_seconds=0.2), PocketsphinxModel(pad_seconds=0.0)
    print("\n== Trap a: audio ending in digital silence; the 0.2 s faint-noise pad ==")
    t0 = time.perf_counter()
    with_pad = padded.transcribe([u.x for u in utts])
    t1 = time.perf_counter()
    without = bare.transcribe([u.x for u in utts])
    t2 = time.perf_counter()
    changed = [u.id for u, a, b in zip(utts, with_pad, without) if a != b]
    hyps = {"pad": dict(zip((u.id for u in utts), with_pad)), "none": dict(zip((u.id for u in utts), without))}
    acc = {k: accuracy(utts, {i: (" ".join(h),) for i, h in v.items()}) for k, v in hyps.items()}
    print(f"recognition of normal audio changed by the pad: {len(changed)}/{len(utts)} {' '.join(changed[:4])}")
    print(f"  word accuracy: no pad {acc['none']}, 0.2 s pad {acc['pad']}; "
          f"decode time: no pad {t2 - t1:.1f} s, pad {t1 - t0:.1f} s")

    alignable = [u for u in utts if u.ref]
    lookup = new_decoder().lookup_word
    oov = [u.id for u in alignable if any(lookup(w) is None for w in u.ref)]
    alignable = [u for u in alignable if u.id not in oov]
    timed = [u for u in alignable if u.times]
    variants = [
        ("as is", alignable, lambda u: u.x),
        ("+0.5 s of exact zeros", alignable, zero_tail),
        ("last word -> exact zeros", timed, zero_last_word),
    ]
    print(f"alignment failures ({len(oov)} utterances with out-of-dictionary words skipped):")
    print(f"  {'audio':<28} {'no pad':>9} {'0.2 s pad':>10}")
    for name, subset, variant in variants:
        a, n, _ = align_failures(bare, subset, variant)
        b, _, results = align_failures(padded, subset, variant)
        print(f"  {name:<28} {f'{a}/{n}':>9} {f'{b}/{n}':>10}")
        if name == "as is" and timed:
            by_id = dict(zip((u.id for u in subset), results))
            errs = [
                1000 * abs(edge - ref)
                for u in timed
                if by_id[u.id] is not None
                for w, (s, e) in zip(by_id[u.id], u.times)
                for edge, ref in ((w.start, s), (w.end, e))
            ]
            print(f"    word-boundary error vs synthesiser: median {statistics.median(errs):.0f} ms over {len(errs)} edges")
    if timed:
        quiet = timed[: min(25, len(timed))]
        live, block = streaming_align_fails(quiet, 0.01)
        print(f"  quiet audio (x0.01), no pad: streaming feed {live}/{len(quiet)} fail, one block {block}/{len(quiet)} fail")

    fresh = PocketsphinxModel(fresh_decoder=True)
    _, _, reused_res = align_failures(padded, alignable, lambda u: u.x)
    _, _, fresh_res = align_failures(fresh, alignable, lambda u: u.x)
    diff = sum(a != b for a, b in zip(reused_res, fresh_res))
    print(f"alignment, reused decoder + reinit_feat vs fresh decoder: {diff}/{len(alignable)} differ")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=40, help="synthetic utterances to use (default 40; 0 for none)")
    ap.add_argument("--skip", choices=("a", "b"), help="skip one trap")
    args = ap.parse_args(argv)
    utts = load_utterances(args.limit)
    import pocketsphinx  # noqa: F401  (timed separately: not part of decoder creation)

    t0 = time.perf_counter()
    new_decoder()
    print(f"pocketsphinx {PocketsphinxModel().version.split('==')[1]}; first decoder {time.perf_counter() - t0:.2f} s")
    if args.skip != "b":
        trap_b(utts)
    if args.skip != "a":
        trap_a(utts)


if __name__ == "__main__":
    main()
