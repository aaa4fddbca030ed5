"""`ssbm-bench explain`: one map, its SSBM masks and noisy mixtures, to look at and listen to.

:mod:`ssbm_bench.word_explanation` computes one word's map, masks and
decoded mixtures; this module draws them as one PNG:

* row 1: the clean spectrogram (dB) with the words' spans; the importance
  map over it (p-values for bubble maps, dB for energy maps, rank fraction
  for score maps; the outline is where the map crosses the threshold);
* row 2: the LeRF and MoRF noise masks (noise gain in dB, -80 = clean,
  0 = full noise), with the dropped energy e;
* row 3: the LeRF and MoRF noisy mixtures' spectrograms with what the model
  heard and whether the analysed word survived;
* below, for methods that show their own mixtures (bubble noise; the
  protocol :class:`ssbm_bench.method.ShowsMixtures`), a few of them with
  their stored hypotheses.

``--wav DIR`` writes the clean utterance, the LeRF and MoRF mixtures and
those method mixtures as 16-bit WAV files, all scaled by one common gain
(only when some file would clip) so their loudness can be compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .audio import StftConfig, stft
from .metrics.ssbm import D0, rank_importance
from .types import SaliencyMap
from .word_explanation import DIRECTIONS, SHORT, Explanation

#: pixels per inch, and inches per figure column / row
DPI = 100
WIDTH_IN = 14.0
ROW_IN = 3.0


# --------------------------------------------------------------------------- drawing


def _db(magnitude: np.ndarray, reference: float, floor_db: float = -100.0) -> np.ndarray:
    """20 log10(|X| / reference), floored: every spectrogram of a figure is in dB re. the clean peak."""
    return np.maximum(20.0 * np.log10(np.maximum(np.abs(magnitude) / reference, 1e-12)), floor_db)


def map_display(smap: SaliencyMap) -> tuple[np.ndarray, np.ndarray, str, tuple[float, float], bool]:
    """(values to colour, importance in [0, 1] for the overlay's opacity, colour-bar label, range, log scale)."""
    v = smap.thresholded_values()
    if smap.kind == "pvalue":
        p = np.clip(v, 1e-12, 1.0)
        lo = max(1e-8, float(p.min()))
        imp = np.clip(-np.log10(p) / max(-np.log10(lo), 1e-6), 0.0, 1.0)
        return p, imp, "p-value where r > 0 (small = important)", (lo, 1.0), True
    if smap.kind == "magnitude":
        db = 20.0 * np.log10(np.maximum(v, 1e-12))
        db = np.clip(db, -80.0, max(0.0, float(db.max())))
        return db, (db + 80.0) / (float(db.max()) + 80.0 or 1.0), "energy map (dB re. smoothed peak)", \
            (-80.0, float(db.max())), False
    u = rank_importance(v)
    lo = float(u.min())
    imp = np.clip(np.log10(u) / np.log10(lo), 0.0, 1.0) if lo < 1 else np.zeros_like(u)
    return u, imp, "rank fraction (small = important)", (lo, 1.0), True


def _extent(cfg: StftConfig, n_frames: int) -> list[float]:
    t = cfg.frame_times(n_frames)
    dt = cfg.hop / cfg.sample_rate
    return [float(t[0] - dt / 2), float(t[-1] + dt / 2), 0.0, cfg.sample_rate / 2000.0]


def _words(ax, ex: Explanation, labels: bool) -> None:
    w = ex.utterance.words[ex.target.index]
    ax.axvline(w.start, color="white", linestyle="--", linewidth=1.0)
    ax.axvline(w.end, color="white", linestyle="--", linewidth=1.0)
    if labels:
        top = ex.cfg.sample_rate / 2000.0
        for i, word in enumerate(ex.utterance.words):
            ax.text(0.5 * (word.start + word.end), top * 0.97, word.text, ha="center", va="top", fontsize=8,
                    color="yellow" if i == ex.target.index else "white", fontweight="bold")


def _heard(hyp: list[str], width: int = 70) -> str:
    s = " ".join(hyp) or "(nothing)"
    return s if len(s) <= width else s[:width - 3] + "..."


def n_rows(ex: Explanation) -> int:
    return 3 + (len(ex.mixtures) + 1) // 2


def render(ex: Explanation, path: str | Path) -> Path:
    """Write the explanation's PNG: WIDTH_IN x (ROW_IN x rows) inches at DPI."""
    from matplotlib import colors
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = n_rows(ex)
    fig = Figure(figsize=(WIDTH_IN, ROW_IN * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2, squeeze=False)
    n_frames = ex.clean_magnitude.shape[1]
    ext = _extent(ex.cfg, n_frames)
    ref_peak = float(np.abs(ex.clean_magnitude).max()) or 1.0
    spec_db = _db(ex.clean_magnitude, ref_peak)

    def spectrogram(ax, db, title, cmap="magma"):
        im = ax.imshow(db, origin="lower", aspect="auto", extent=ext, cmap=cmap, vmin=-90, vmax=10,
                       interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("kHz")
        return im

    # row 1: clean spectrogram, importance map over it
    im = spectrogram(axes[0, 0], spec_db,
                     f"clean spectrogram of {ex.utterance.id}\n\"{_heard(ex.utterance.text.split(), 100)}\"")
    fig.colorbar(im, ax=axes[0, 0], label="dB re. clean peak")
    _words(axes[0, 0], ex, labels=True)
    ax = axes[0, 1]
    ax.imshow(spec_db, origin="lower", aspect="auto", extent=ext, cmap="gray", vmin=-90, vmax=0,
              interpolation="nearest")
    values, importance, label, (lo, hi), log = map_display(ex.smap)
    norm = colors.LogNorm(vmin=lo, vmax=hi) if log and lo < hi else colors.Normalize(vmin=lo, vmax=max(hi, lo + 1e-9))
    im = ax.imshow(values, origin="lower", aspect="auto", extent=ext, cmap="viridis_r" if log else "viridis",
                   norm=norm, alpha=0.15 + 0.8 * importance, interpolation="nearest")
    fig.colorbar(im, ax=ax, label=label)
    level = ex.threshold  # on the displayed scale: p, dB or rank fraction, like the values
    if values.min() < level < values.max():
        times = ex.cfg.frame_times(n_frames)
        freqs = ex.cfg.frequencies() / 1000.0
        ax.contour(times, freqs, values, levels=[level], colors="red", linewidths=1.4)
    ax.set_title(f"{ex.method} map for word {ex.target.index} \"{ex.target.label}\" ({ex.model})\n"
                 f"over the spectrogram; red outline: threshold t = {ex.threshold:g}", fontsize=9)
    _words(ax, ex, labels=False)

    # row 2: masks; row 3: mixtures
    names = {"lerf": "LeRF (noise where unimportant)", "morf": "MoRF (noise where important)"}
    for col, d in enumerate(DIRECTIONS):
        r = ex.directions[d]
        ax = axes[1, col]
        gain_db = 20.0 * np.log10(r.mask)
        im = ax.imshow(gain_db, origin="lower", aspect="auto", extent=ext, cmap="cividis", vmin=D0, vmax=0.0,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, label="noise gain (dB)")
        ax.set_title(f"{names[d]} mask at t = {ex.threshold:g} ({ex.threshold_source})\n"
                     f"drops e = {r.energy:.3f} of the utterance's speech energy", fontsize=9)
        _words(ax, ex, labels=False)
        mix = stft(torch.as_tensor(r.waveform, dtype=torch.float32), ex.cfg).abs().numpy()
        ax = axes[2, col]
        im = spectrogram(ax, _db(mix, ref_peak), "")
        ok = "kept" if r.a_w >= 1.0 else "lost"
        ax.set_title(f"{SHORT[d]} mixture at {ex.level_db:+g} dB: heard \"{_heard(r.hypothesis)}\"\n"
                     f"word \"{ex.target.label}\" {ok} (a_w = {r.a_w:.0f}, other words a_o = {r.a_o:.2f})",
                     fontsize=9)
        fig.colorbar(im, ax=ax, label="dB re. clean peak")
        _words(ax, ex, labels=False)

    # the method's own mixtures
    for k, m in enumerate(ex.mixtures):
        ax = axes[3 + k // 2, k % 2]
        mix = stft(torch.as_tensor(m["waveform"], dtype=torch.float32), ex.cfg).abs().numpy()
        im = spectrogram(ax, _db(mix, ref_peak), "")
        if m.get("audibility") is not None:
            times = ex.cfg.frame_times(n_frames)
            ax.contour(times, ex.cfg.frequencies() / 1000.0, m["audibility"], levels=[0.5], colors="cyan",
                       linewidths=0.6)
        heard = "not stored" if m.get("hypothesis") is None else f"\"{_heard(m['hypothesis'])}\""
        word = "" if m.get("recognised") is None else \
            f"; word \"{ex.target.label}\" {'recognised' if m['recognised'] else 'missed'}"
        ax.set_title(f"{ex.method.split('[')[0]} mixture {m['index']}: heard {heard}\n"
                     f"{word.lstrip('; ')} (cyan: bubbles, audibility 0.5)".strip(), fontsize=9)
        fig.colorbar(im, ax=ax, label="dB re. clean peak")
        _words(ax, ex, labels=False)
    if len(ex.mixtures) % 2:
        axes[-1, 1].set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel("time (s)")
    fig.suptitle(f"ssbm-bench explain: {ex.method} on {ex.model}, utterance {ex.utterance.id}, word "
                 f"{ex.target.index} \"{ex.target.label}\"; noise {ex.level_db:+g} dB re. speech RMS "
                 f"({ex.level_source.split(' (')[0]})", fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def write_wavs(ex: Explanation, out_dir: str | Path) -> list[Path]:
    """The clean utterance, the LeRF and MoRF mixtures and the method's mixtures as 16-bit WAV files.

    All files share one gain: 1, or less when some file would clip, so relative loudness is kept.
    """
    import soundfile as sf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{ex.utterance.id}_w{ex.target.index}"
    items = [(f"{stem}_clean.wav", ex.utterance.waveform)]
    items += [(f"{stem}_{ex.method}_{d}_t{ex.threshold:g}.wav", ex.directions[d].waveform) for d in DIRECTIONS]
    items += [(f"{stem}_{ex.method}_mixture{m['index']:03d}.wav", m["waveform"]) for m in ex.mixtures]
    peak = max(float(np.max(np.abs(w))) for _, w in items)
    gain = min(1.0, 0.99 / peak) if peak > 0 else 1.0
    written = []
    for name, wave in items:
        p = out / name.replace("/", "_")
        sf.write(str(p), np.asarray(wave, dtype=np.float32) * gain, ex.cfg.sample_rate, subtype="PCM_16")
        written.append(p)
    return written
