"""The model-output cache, side by side in one run: with it and without it.

A small suite per model (pocketsphinx on the SSBM board; Whisper tiny.en on
the SSBM and deletion boards; two synthetic utterances each recognises
fully, one target word each, energy and random, two thresholds per map
kind) is run three times into one store: the first run, an identical rerun,
and a rerun with one method added (default ``energy`` with ``n_mels = 64``:
a different map, so new mixtures); ``--grow-thresholds`` adds a fourth run
with one more threshold per map kind. The runs are then repeated on a fresh store with the
cache off (``[run] model_cache = false``, what ``ssbm-bench run
--no-model-cache`` does). For each run the table gives the cells computed,
the inputs the models evaluated ("model calls"), the cache's hits and
misses, and the wall time (model loading included, as in ``ssbm-bench run``).
The stored raw results of both stores are compared (timings aside): the
cache must not change a single one.

Where the hits come from: a deletion cell scores the clean utterance and the
random-order masks, which do not depend on the map, so every method after
the first finds them in the cache; SSBM mixtures depend on the map and are
shared only where two maps give the same mask (or when cells are recomputed
for a reason that leaves their mixtures unchanged: a longer threshold grid,
a version bump).

Run: ``.venv/bin/python benchmarks/model_cache.py [--models pocketsphinx whisper-tiny-en]
[--add-method energy:n_mels=64] [--grow-thresholds] [--json out.json]``. About 4 minutes on 2 cores
shared with other work (pocketsphinx's noisy mixtures are most of it).
Timings on a shared machine vary with its load; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from pathlib import Path

from ssbm_bench.harness.runner import run_suite
from ssbm_bench.harness.store import comparable_raw
from ssbm_bench.harness.suite import parse_suite

#: synthetic utterances each model recognises fully when clean (tests/e2e_helpers.py), so no scan is paid
UTTERANCES = {"pocketsphinx": ["rms_h02_01", "awb_h02_01"], "whisper-tiny-en": ["awb_h01_02", "slt_hts_h01_02"]}


THRESHOLDS = {"magnitude": [-40.0, -20.0], "score": [0.1, 0.5], "pvalue": [0.01, 0.1]}
#: --grow-thresholds: one more threshold per map kind
GROWN = {"magnitude": [-40.0, -20.0, 0.0], "score": [0.1, 0.5, 0.8], "pvalue": [0.01, 0.1, 0.5]}


def suite_doc(name: str, model: str, methods: list[dict], utterances: list[str], boards: list[str],
              thresholds: dict = THRESHOLDS) -> dict:
    return {
        "suite": {"name": name, "boards": boards},
        "corpus": {"name": "synthetic", "utterances": utterances, "words_per_utterance": 1},
        "models": [{"name": model}],
        "methods": methods,
        "fills": [{"name": "white-noise"}],
        "ssbm": {"thresholds": thresholds,
                 "calibration": {"levels_db": [-20.0, -10.0, 0.0, 10.0, 20.0], "max_accuracy": 0.1,
                                 "utterances": 1}},
        "deletion": {"fractions": [0.2, 0.5, 0.8]},
    }



def parse_method(spec: str) -> dict:
    """NAME or NAME:KEY=VALUE,KEY=VALUE (values read as TOML)."""
    name, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        params[k] = tomllib.loads(f"v = {v}")["v"]
    return {"name": name, "params": params} if params else {"name": name}


def warm_up(model: str) -> None:
    """Load the model once and decode one utterance before anything is timed (imports, first-use set-up)."""
    from ssbm_bench.plugins import get_registry

    reg = get_registry()
    corpus = reg.create("corpus", "synthetic")
    utt = next(u for u in corpus.utterances() if u.id == UTTERANCES[model][0])
    reg.create("model", model).transcribe([utt.waveform])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=["pocketsphinx", "whisper-tiny-en"], choices=sorted(UTTERANCES))
    ap.add_argument("--add-method", default="energy:n_mels=64",
                    help="the method added for the third run, NAME[:KEY=VALUE,...] (default energy:n_mels=64)")
    ap.add_argument("--grow-thresholds", action="store_true",
                    help="a fourth run: one more SSBM threshold per map kind (every SSBM cell recomputed; the "
                         "mixtures of the old thresholds are cached)")
    ap.add_argument("--json", help="also write the results as JSON")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ssbm-model-cache-"))
    log = lambda s: None  # noqa: E731
    base_methods = [{"name": "energy"}, {"name": "random"}]
    added = parse_method(args.add_method)
    print(f"models {', '.join(args.models)}; methods energy, random, then + {args.add_method}; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    results = []
    same = {}
    for model in args.models:
        boards = ["ssbm", "deletion"] if model == "whisper-tiny-en" else ["ssbm"]
        warm_up(model)
        stores = {}
        for cache_on in (True, False):
            db = work / f"{model}-{'on' if cache_on else 'off'}.sqlite"
            stores[cache_on] = db
            steps = [("first run", base_methods, THRESHOLDS), ("identical rerun", base_methods, THRESHOLDS),
                     (f"+ {args.add_method}", base_methods + [added], THRESHOLDS)]
            if args.grow_thresholds:
                steps.append(("+ a threshold per kind", base_methods + [added], GROWN))
            for step, methods, thresholds in steps:
                doc = suite_doc(f"mc-{model}", model, methods, UTTERANCES[model], boards, thresholds)
                suite = replace(parse_suite(doc), model_cache=cache_on)
                t = time.perf_counter()
                s = run_suite(suite, str(db), progress=False, log=log)
                wall = time.perf_counter() - t
                mc = s.model_cache
                row = {"model": model, "boards": boards, "cache": cache_on, "run": step, "cells": s.computed,
                       "model_calls": s.model_calls, "hits": mc.get("hits", 0), "misses": mc.get("misses", 0),
                       "hit_rate": mc.get("hit_rate"), "seconds": wall, "errors": s.errors,
                       "recomputed": s.recomputed, "load_average": os.getloadavg()[0]}
                results.append(row)
                rate = "-" if row["hit_rate"] is None else f"{row['hit_rate']:.1%}"
                print(f"  {model:<16} cache {'on ' if cache_on else 'off'} {step:<24} {s.computed:3d} cells "
                      f"{s.model_calls:4d} model calls  hit rate {rate:>6}  {wall:6.1f} s", flush=True)
        same[model] = comparable_raw(stores[True]) == comparable_raw(stores[False])
    print()
    print("| model | boards | cache | run | cells computed | model calls | cache hits | misses | hit rate | "
          "wall s |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        rate = "-" if r["hit_rate"] is None else f"{r['hit_rate']:.1%}"
        hits = r["hits"] if r["cache"] else "-"
        misses = r["misses"] if r["cache"] else "-"
        print(f"| {r['model']} | {'+'.join(r['boards'])} | {'on' if r['cache'] else 'off'} | {r['run']} | "
              f"{r['cells']} | {r['model_calls']} | {hits} | {misses} | {rate} | {r['seconds']:.1f} |")
    print()
    for model, ok in same.items():
        print(f"{model}: stored results identical with and without the cache: {'yes' if ok else 'NO'}")
    for r in results:
        if r["cache"] and r["run"].startswith("+"):
            for reason in r["recomputed"]:
                print(f"{r['model']}, {r['run']}: computed {reason['cells']} cells: {reason['reason']}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "identical": same}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(same.values()) and not any(r["errors"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
