"""The SSBM paper's figures, drawn from a results store.

Everything is recomputed from the raw per-threshold rows of the store (the
hypotheses' accuracies and the dropped energies that every SSBM cell keeps),
never from cached numbers, exactly like the leaderboard; the curves of
Fig. 7 come from the board's own rows (passed in by the board), so a
figure and the leaderboard next to it always agree.

For every (suite, corpus, model, fill) of the store, two PNG files:

* ``...--accuracy-vs-energy.png`` (the paper's Fig. 6): accuracy of the
  analysed word against the proportion of the utterance's speech energy the
  mask obscures, LeRF (left) and MoRF (right), one line per method. As in
  the paper, masks are grouped by that proportion rounded to the nearest
  percent and the word accuracy is averaged within each group (words,
  thresholds and utterances pooled), since the same threshold obscures
  different amounts for different words. A good map is high on the right of
  the LeRF panel (most speech gone, the word still recognised) and low on
  the left of the MoRF panel (little speech gone, the word lost).
* ``...--ssbm-vs-threshold.png`` (the paper's Fig. 7): Delta_LeRF,
  Delta_MoRF and their sum SSBM, averaged over words, against the threshold,
  one panel per method, because thresholds of different map kinds have
  different units: p-values for bubble maps (log axis), dB below the
  utterance's smoothed peak for energy maps, and the fraction of the
  spectrogram marked important for every rank-normalised ("score") map (log
  axis). The best threshold, the method's leaderboard score, is starred.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssbm_bench.errors import InputError
from ssbm_bench.figures import DPI, colour, new_figure, slug
from ssbm_bench.harness.store import CellRow

#: axis label of a threshold, by map kind
THRESHOLD_LABELS = {
    "pvalue": "threshold t (p-value; smaller = sparser map)",
    "magnitude": "threshold t (dB re. the utterance's smoothed peak)",
    "score": "threshold t (fraction of the spectrogram marked important)",
}
#: map kinds whose thresholds are drawn on a log axis
LOG_KINDS = ("pvalue", "score")


@dataclass
class MethodPoints:
    """The raw outcomes of one method in one figure group."""

    kind: str | None = None
    #: (e_lerf, a_w_lerf, e_morf, a_w_morf), one per word and threshold
    points: list[tuple[float, float, float, float]] = field(default_factory=list)
    words: set = field(default_factory=set)
    skipped: int = 0
    errors: int = 0


@dataclass
class FigureGroup:
    suite: str
    corpus: str
    corpus_digest: str
    model: str
    fill: str
    methods: dict[str, MethodPoints] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"suite {self.suite}, corpus {self.corpus}, model {self.model}, fill {self.fill}"


def collect(cells: list[CellRow]) -> list[FigureGroup]:
    """Group the store's SSBM cells by (suite, corpus, model, fill) and method."""
    groups: dict[tuple, FigureGroup] = {}
    for c in cells:
        if c.board != "ssbm":
            continue
        key = (c.suite, c.corpus, c.corpus_digest, c.model, c.fill)
        g = groups.get(key)
        if g is None:
            g = groups[key] = FigureGroup(c.suite, c.corpus, c.corpus_digest, c.model, c.fill)
        m = g.methods.setdefault(c.method, MethodPoints())
        if c.status == "skipped":
            m.skipped += 1
            continue
        if c.status != "ok" or not c.raw:
            m.errors += 1
            continue
        kind = c.raw.get("map", {}).get("kind")
        if m.kind is None:
            m.kind = kind
        elif kind is not None and kind != m.kind:
            raise InputError(f"results store: method {c.method!r} has maps of two kinds ({m.kind}, {kind}) in "
                             f"suite {c.suite!r}, model {c.model!r}; cannot draw one threshold axis for it")
        m.words.add((c.utterance, c.target, c.seed))
        for e in c.raw.get("thresholds", []):
            m.points.append((float(e["lerf"]["e"]), float(e["lerf"]["a_w"]),
                             float(e["morf"]["e"]), float(e["morf"]["a_w"])))
    return [groups[k] for k in sorted(groups)]


def binned_accuracy(energies, accuracies, decimals: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean accuracy per proportion of energy rounded to `decimals` (the paper: nearest percent).

    Returns (bin centres, mean accuracy, count), sorted by proportion.
    """
    e = np.round(np.asarray(energies, dtype=np.float64), decimals)
    a = np.asarray(accuracies, dtype=np.float64)
    if e.shape != a.shape:
        raise InputError(f"binned_accuracy: {e.size} energies but {a.size} accuracies")
    if e.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
    centres, inverse, counts = np.unique(e, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=a, minlength=len(centres))
    return centres, sums / counts, counts


def draw_accuracy_vs_energy(group: FigureGroup, path: Path) -> Path:
    """The paper's Fig. 6 for one group: two panels (LeRF, MoRF), one line per method."""
    fig = new_figure(12.0, 4.8)
    axes = fig.subplots(1, 2, sharey=True)
    panels = (("LeRF: least relevant features dropped (higher on the right is better)", 0, 1, axes[0]),
              ("MoRF: most relevant features dropped (lower on the left is better)", 2, 3, axes[1]))
    for title, ie, ia, ax in panels:
        for i, (method, m) in enumerate(sorted(group.methods.items())):
            if not m.points:
                continue
            pts = np.asarray(m.points)
            x, y, n = binned_accuracy(pts[:, ie], pts[:, ia])
            ax.plot(x, y, "-o", color=colour(i), markersize=3.5, linewidth=1.6,
                    label=f"{method} ({len(m.words)} words, {len(pts)} masks)")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("proportion of speech energy obscured by the mask (rounded to 1%)")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("accuracy of the analysed word (mean per 1% bin)")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(loc="lower left", fontsize=8)
    else:
        for ax in axes:
            ax.text(0.5, 0.5, "no finished cells", ha="center", va="center", transform=ax.transAxes)
    notes = _notes(group)
    fig.suptitle(f"Accuracy of the analysed word against speech energy obscured (SSBM paper, Fig. 6)\n"
                 f"{group.title}{notes}", fontsize=11)
    fig.savefig(path, dpi=DPI)
    return path


def _notes(group: FigureGroup) -> str:
    bits = [f"{m}: {p.skipped} skipped, {p.errors} errors" for m, p in sorted(group.methods.items())
            if p.skipped or p.errors]
    return f"  ({'; '.join(bits)})" if bits else ""


def draw_ssbm_vs_threshold(group: FigureGroup, rows_by_method: dict, path: Path) -> Path:
    """The paper's Fig. 7 for one group: Delta_LeRF, Delta_MoRF and SSBM against threshold, one panel per method."""
    from matplotlib.ticker import FuncFormatter

    methods = [m for m in sorted(group.methods) if m in rows_by_method and rows_by_method[m].curve]
    n = max(1, len(methods))
    fig = new_figure(10.0, 1.2 + 3.0 * n)
    axes = np.atleast_1d(fig.subplots(n, 1, squeeze=False)[:, 0])
    if not methods:
        axes[0].text(0.5, 0.5, "no finished cells", ha="center", va="center", transform=axes[0].transAxes)
    for ax, method in zip(axes, methods):
        row = rows_by_method[method]
        kind = group.methods[method].kind or "score"
        curve = sorted(row.curve, key=lambda s: s["threshold"])
        t = np.array([s["threshold"] for s in curve])
        # SSBM first and wide, the two deltas over it, so that a delta equal to SSBM stays visible
        ax.plot(t, [s["ssbm"] for s in curve], "-o", color="#2ca02c", linewidth=3.2, markersize=5, alpha=0.8,
                label="SSBM = ΔLeRF + ΔMoRF", zorder=2)
        ax.plot(t, [s["delta_lerf"] for s in curve], "--o", color="#1f77b4", markersize=3, label="ΔLeRF", zorder=3)
        ax.plot(t, [s["delta_morf"] for s in curve], ":o", color="#d62728", markersize=3, label="ΔMoRF", zorder=3)
        ax.plot([row.best_threshold], [row.score], "*", color="black", markersize=13, zorder=5,
                label=f"best: SSBM {row.score:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}] at t = {row.best_threshold:g}")
        guarded = sum(int(s.get("n_guarded", 0)) for s in curve)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        if kind in LOG_KINDS and np.all(t > 0):
            ax.set_xscale("log")
        if len(t) <= 8:  # a coarse grid: tick exactly the thresholds swept
            ax.set_xticks(t, [f"{v:g}" for v in t])
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        elif kind == "score":  # fractions read better as 0.01 than as 10^-2
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(THRESHOLD_LABELS.get(kind, "threshold"))
        ax.set_ylabel("per unit of energy")
        extra = f"; {guarded} word-threshold(s) hit the denominator floor" if guarded else ""
        ax.set_title(f"{method} ({kind} map; {row.n} words, {row.n_utterances} utterances{extra})", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"ΔLeRF, ΔMoRF and SSBM against threshold, mean over words (SSBM paper, Fig. 7)\n"
                 f"{group.title}{_notes(group)}", fontsize=11)
    fig.savefig(path, dpi=DPI)
    return path


def write_figures(cells: list[CellRow], rows: list, out_dir: str | Path) -> list[Path]:
    """Both figures for every (suite, corpus, model, fill) of `cells`, whose board rows are `rows` (the
    leaderboard's own, so the starred best threshold is its score); returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups = collect(cells)
    by_group: dict[tuple, dict] = defaultdict(dict)
    for r in rows:
        by_group[(r.suite, r.corpus, r.corpus_digest, r.model, r.fill)][r.method] = r
    digests = defaultdict(set)
    for g in groups:
        digests[(g.suite, g.corpus, g.model, g.fill)].add(g.corpus_digest)
    written = []
    for g in groups:
        stem = "--".join(slug(x) for x in (g.suite, g.corpus, g.model, g.fill))
        if len(digests[(g.suite, g.corpus, g.model, g.fill)]) > 1:  # the same corpus name with other audio
            stem += f"--{g.corpus_digest[:8]}"
        written.append(draw_accuracy_vs_energy(g, out / f"{stem}--accuracy-vs-energy.png"))
        written.append(draw_ssbm_vs_threshold(g, by_group[(g.suite, g.corpus, g.corpus_digest, g.model, g.fill)],
                                              out / f"{stem}--ssbm-vs-threshold.png"))
    return written
