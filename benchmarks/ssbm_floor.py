"""How much does SSBM's denominator floor decide a ranking? Re-scores a finished run.

SSBM divides accuracy gaps by proportions of speech energy (paper eq. 1):
Delta_LeRF = (a_w - a_o) / (1 - e_LeRF), Delta_MoRF = (a_o - a_w) / e_MoRF,
and ssbm-bench floors each denominator at 0.01 (`[ssbm] denominator_floor`),
so one word can add up to 100 to a threshold's mean. A sparse MoRF mask drops
little speech energy (e_MoRF < 0.01) but, with a loud calibrated noise (+20 dB
re. speech for Whisper tiny.en), the noise it injects there can still destroy
the word: such a word scores +-100 and can decide a method's best threshold.

This script reads the raw per-threshold outcomes of a store (nothing is
decoded) and, per model x method x fill, prints:

* how many words the floor scores at the best threshold (denominator under
  the floor and an accuracy gap that is not 0, so the floor sets the word's
  Delta), and how many words hit the floor anywhere on the curve;
* the best-threshold SSBM, its threshold and a 95% bootstrap interval over
  utterances (the best threshold re-picked in every resample, as the
  leaderboard does) under several scorings:
    - ``paper``: the stored floor (0.01 unless the suite set one), mean over
      words of the per-word ratios: the leaderboard's number;
    - ``floor=F``: the same with another floor;
    - ``exclude``: words whose denominator is below the stored floor are
      left out of that threshold's mean (not a fix: it drops exactly the
      words a specific map is rewarded for);
    - ``pooled``: ratio of means, Delta_LeRF = mean(a_w - a_o) /
      mean(1 - e_LeRF), Delta_MoRF = mean(a_o - a_w) / mean(e_MoRF) over the
      words at a threshold (the stored floor applied to the pooled
      denominators only), i.e. eq. 1 applied to the word-averaged accuracies
      and energies, so every word weighs by its energy instead of one
      near-empty mask weighing 100 words;
* the ranking of methods under each scoring.

Run: ``.venv/bin/python benchmarks/ssbm_floor.py --db results/bubble-vs-energy.sqlite [--suite NAME]
[--floors 0.001 0.05 0.1] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from ssbm_bench.harness.store import ResultStore
from ssbm_bench.metrics.ssbm import DENOMINATOR_FLOOR
from ssbm_bench.statistics import cluster_draws

SAMPLES = 2000


def load(db: str, suite: str | None) -> dict:
    """(model, method, fill) -> arrays over words x thresholds of the raw outcomes."""
    groups: dict[tuple, list] = defaultdict(list)
    with ResultStore(db) as store:
        for c in store.cells(board="ssbm", status="ok"):
            if suite and c.suite != suite or not c.raw:
                continue
            groups[(c.model, c.method, c.fill)].append(c)
    out = {}
    for key, cells in groups.items():
        grid = sorted({e["threshold"] for c in cells for e in c.raw["thresholds"]})
        cells = [c for c in cells if len(c.raw["thresholds"]) == len(grid)]
        arr = {k: np.zeros((len(cells), len(grid))) for k in ("lw", "lo", "le", "mw", "mo", "me")}
        for i, c in enumerate(cells):
            for j, e in enumerate(sorted(c.raw["thresholds"], key=lambda e: e["threshold"])):
                arr["lw"][i, j], arr["lo"][i, j], arr["le"][i, j] = e["lerf"]["a_w"], e["lerf"]["a_o"], e["lerf"]["e"]
                arr["mw"][i, j], arr["mo"][i, j], arr["me"][i, j] = e["morf"]["a_w"], e["morf"]["a_o"], e["morf"]["e"]
        floor = float(cells[0].params.get("denominator_floor", DENOMINATOR_FLOOR))
        out[key] = {"grid": np.array(grid), "utt": [c.utterance for c in cells], "floor": floor, **arr}
    return out


def curve(g: dict, scoring: str, floor: float, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean Delta_LeRF, Delta_MoRF, SSBM per threshold, words weighted by `w` (bootstrap counts)."""
    num_l, num_m = g["lw"] - g["lo"], g["mo"] - g["mw"]
    den_l, den_m = 1.0 - g["le"], g["me"]
    W = np.broadcast_to(w[:, None], num_l.shape)
    if scoring == "pooled":
        tot = W.sum(axis=0)
        dl = (W * num_l).sum(axis=0) / np.maximum((W * den_l).sum(axis=0) / tot, floor) / tot
        dm = (W * num_m).sum(axis=0) / np.maximum((W * den_m).sum(axis=0) / tot, floor) / tot
        return dl, dm, dl + dm
    dl_w = num_l / np.maximum(den_l, floor)
    dm_w = num_m / np.maximum(den_m, floor)
    if scoring == "exclude":
        keep = W * ((den_l >= floor) & (den_m >= floor))
        tot = np.where(keep.sum(axis=0) > 0, keep.sum(axis=0), np.nan)
        dl, dm = (keep * dl_w).sum(axis=0) / tot, (keep * dm_w).sum(axis=0) / tot
        return dl, dm, dl + dm
    tot = W.sum(axis=0)
    dl, dm = (W * dl_w).sum(axis=0) / tot, (W * dm_w).sum(axis=0) / tot
    return dl, dm, dl + dm


def score(g: dict, scoring: str, floor: float, samples: int = SAMPLES, seed: int = 0) -> dict:
    n = len(g["utt"])
    dl, dm, s = curve(g, scoring, floor, np.ones(n))
    j = int(np.nanargmax(s))  # ties: first = smallest threshold, as best_threshold()
    utts = sorted(set(g["utt"]))
    best = []
    if len(utts) > 1:  # the boards' cluster bootstrap: the same draws over utterances
        draws, groups = cluster_draws(g["utt"], samples, seed)
        for draw in draws:
            best.append(np.nanmax(curve(g, scoring, floor, draw[groups])[2]))
    lo, hi = (np.quantile(best, [0.025, 0.975]) if best else (s[j], s[j]))
    # words whose denominator is under the floor and whose accuracy gap is not 0: the floor sets their score
    fl = ((1.0 - g["le"][:, j]) < floor) & (g["lw"][:, j] != g["lo"][:, j])
    fm = (g["me"][:, j] < floor) & (g["mw"][:, j] != g["mo"][:, j])
    used = n
    if scoring == "exclude":
        used = int(((1.0 - g["le"][:, j] >= floor) & (g["me"][:, j] >= floor)).sum())
    return {"ssbm": float(s[j]), "ci": [float(lo), float(hi)], "threshold": float(g["grid"][j]),
            "delta_lerf": float(dl[j]), "delta_morf": float(dm[j]), "words": n, "words_used": used,
            "utterances": len(utts), "floor_lerf_at_best": int(fl.sum()), "floor_morf_at_best": int(fm.sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--suite")
    ap.add_argument("--floors", type=float, nargs="*", default=[0.001, 0.05, 0.1])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    groups = load(args.db, args.suite)
    if not groups:
        print("no finished SSBM cells in", args.db)
        return 1
    report: dict = {}
    for (model, method, fill), g in sorted(groups.items()):
        floor = g["floor"]
        below_l = ((1.0 - g["le"]) < floor) & (g["lw"] != g["lo"])
        below_m = (g["me"] < floor) & (g["mw"] != g["mo"])
        rows = {"paper": score(g, "paper", floor)}
        for f in args.floors:
            rows[f"floor={f:g}"] = score(g, "paper", f)
        rows["exclude"] = score(g, "exclude", floor)
        rows["pooled"] = score(g, "pooled", floor)
        report.setdefault(model, {})[method] = {
            "fill": fill, "floor": floor, "scorings": rows,
            "words_x_thresholds": int(below_l.size),
            "floor_lerf_any_threshold": int(below_l.sum()), "floor_morf_any_threshold": int(below_m.sum()),
            "words_hitting_floor_somewhere": int((below_l | below_m).any(axis=1).sum()),
        }
    for model, methods in report.items():
        print(f"\n## {model}\n")
        print("| method | scoring | SSBM | 95% CI | best threshold | ΔLeRF | ΔMoRF | words | "
              "scored by the floor at best (LeRF/MoRF) |")
        print("|---|---|---:|---|---:|---:|---:|---:|---:|")
        for method, r in methods.items():
            for name, s in r["scorings"].items():
                print(f"| {method} | {name} | {s['ssbm']:.2f} | [{s['ci'][0]:.2f}, {s['ci'][1]:.2f}] | "
                      f"{s['threshold']:g} | {s['delta_lerf']:.2f} | {s['delta_morf']:.2f} | {s['words_used']} | "
                      f"{s['floor_lerf_at_best']}/{s['floor_morf_at_best']} |")
        print()
        for method, r in methods.items():
            print(f"{method}: {r['words_hitting_floor_somewhere']} of {r['scorings']['paper']['words']} words are "
                  f"scored by the floor {r['floor']:g} at some threshold; word x threshold points: "
                  f"LeRF {r['floor_lerf_any_threshold']}, MoRF {r['floor_morf_any_threshold']} of "
                  f"{r['words_x_thresholds']}")
        print()
        names = list(next(iter(methods.values()))["scorings"])
        for name in names:
            order = sorted(methods, key=lambda m: -methods[m]["scorings"][name]["ssbm"])
            print(f"ranking, {name}: " + " > ".join(order))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
