"""Executor throughput: the same suite's cells on every executor, side by side in one run.

The suite (default: leaderboards/suites/quick.toml) is first run in process
into a base store, which then holds its clean transcripts and noise
calibrations. For each executor configuration (inprocess; process-pool and
ray with 1 and 2 workers) the base store is copied with its cells removed
and the suite is run again on that executor: only the cells are computed,
so the time is the executor's (start-up, model loading per worker, cells).
Every configuration's stored raw outputs are compared with the in-process
ones (timings aside) and the result is printed as a table.

Run: ``.venv/bin/python benchmarks/executors.py [--suite quick] [--models pocketsphinx]
[--executors inprocess process-pool:1 process-pool:2 ray:1 ray:2] [--json out.json]``.
Timings on a shared machine vary with its load; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ssbm_bench.cli import resolve_suite_path
from ssbm_bench.harness.runner import run_suite
from ssbm_bench.harness.store import comparable_raw
from ssbm_bench.harness.suite import PluginRef, load_suite



def without_cells(base: Path, dest: Path) -> Path:
    """The base store without its cells, and without the model outputs its cells cached (else every
    executor would read the cells' outputs from the cache and the timing would not be the executor's)."""
    shutil.copy(base, dest)
    conn = sqlite3.connect(dest)
    with conn:
        conn.execute("DELETE FROM cells")
        conn.execute("DELETE FROM model_outputs")
    conn.close()
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="quick", help="suite file or name (default quick)")
    ap.add_argument("--models", nargs="*", help="keep only these models of the suite")
    ap.add_argument("--executors", nargs="*",
                    default=["inprocess", "process-pool:1", "process-pool:2", "ray:1", "ray:2"],
                    help="NAME or NAME:WORKERS (default: inprocess, process-pool and ray with 1 and 2 workers)")
    ap.add_argument("--json", help="also write the results as JSON")
    args = ap.parse_args(argv)

    suite = load_suite(resolve_suite_path(args.suite))
    if args.models:
        suite = replace(suite, models=tuple(m for m in suite.models if m.name in args.models))
    work = Path(tempfile.mkdtemp(prefix="ssbm-executors-"))
    log = lambda s: None  # noqa: E731
    print(f"suite {suite.name}: models {', '.join(m.label for m in suite.models)}; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    base = work / "base.sqlite"
    t0 = time.perf_counter()
    first = run_suite(replace(suite, executor=PluginRef("inprocess")), str(base), progress=False, log=log)
    print(f"base store (clean transcripts, calibration, cells in process): {first.planned} cells, "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    reference = comparable_raw(base)
    results = []
    for spec in args.executors:
        name, _, workers = spec.partition(":")
        params = {"workers": int(workers)} if workers else {}
        db = without_cells(base, work / f"{name}-{workers or 1}.sqlite")
        t = time.perf_counter()
        s = run_suite(replace(suite, executor=PluginRef(name, params)), str(db), progress=False, log=log)
        wall = time.perf_counter() - t
        same = comparable_raw(db) == reference
        results.append({"executor": name, "workers": int(workers or 1), "cells": s.computed, "seconds": wall,
                        "cells_per_s": s.computed / wall if wall else float("nan"), "identical": same,
                        "errors": s.errors, "load_average": os.getloadavg()[0]})
        print(f"  {spec:<16} {s.computed} cells in {wall:6.1f} s  ({results[-1]['cells_per_s']:.3f} cells/s); "
              f"identical to inprocess: {same}", flush=True)
    print()
    print("| executor | workers | cells | seconds | cells/s | vs inprocess | identical raw results | load avg |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    ref = next((r for r in results if r["executor"] == "inprocess"), results[0])
    for r in results:
        print(f"| {r['executor']} | {r['workers']} | {r['cells']} | {r['seconds']:.1f} | {r['cells_per_s']:.3f} | "
              f"{r['cells_per_s'] / ref['cells_per_s']:.2f}x | {'yes' if r['identical'] else 'NO'} | "
              f"{r['load_average']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
