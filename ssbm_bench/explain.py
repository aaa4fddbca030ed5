"""`ssbm-bench explain`: one map, its SSBM masks and noisy mixtures, to look at and listen to.

For one utterance, word, model and method this computes the importance map
exactly as an SSBM cell does (same STFT grid, same request, same artifacts
cache), builds the LeRF and MoRF noise masks at one threshold with the
harness's own functions (:func:`ssbm_bench.metrics.ssbm.noise_mask`,
:func:`~ssbm_bench.metrics.ssbm.dropped_energy`,
:func:`ssbm_bench.harness.ssbm_cell.mixture_waveforms` with the cell's noise
seed), decodes the two mixtures, and draws one PNG:

* row 1: the clean spectrogram (dB) with the words' spans; the importance
  map over it (p-values for bubble maps, dB for energy maps, rank fraction
  for score maps; the outline is where the map crosses the threshold);
* row 2: the LeRF and MoRF noise masks (noise gain in dB, -80 = clean,
  0 = full noise), with the dropped energy e;
* row 3: the LeRF and MoRF noisy mixtures' spectrograms with what the model
  heard and whether the analysed word survived;
* below, for methods that expose their own mixtures (bubble noise,
  ``mixtures_for``), a few of them with their stored hypotheses.

``--wav DIR`` writes the clean utterance, the LeRF and MoRF mixtures and
those method mixtures as 16-bit WAV files, all scaled by one common gain
(only when some file would clip) so their loudness can be compared.

The noise level: ``--level-db`` if given; else, with ``--db``, the level a
finished run stored for the same model, corpus and fill; else calibrated on
this utterance as the harness does (the lowest level of the default grid at
which the fully masked utterance is unrecognisable). The threshold:
``--threshold`` if given; else, with ``--db``, the method's best threshold on
that store's leaderboard; else :data:`DEFAULT_THRESHOLDS` for the map kind.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import StftConfig, stft
from .errors import InputError
from .harness.prepare import calibrate_noise, model_key
from .harness.ssbm_cell import mixture_waveforms, stable_seed
from .harness.store import ResultStore
from .harness.suite import CalibrationSettings, PluginRef
from .method import ExplainRequest
from .metrics.ssbm import D0, dropped_energy, noise_mask, rank_importance
from .metrics.word_accuracy import target_other_accuracy, word_correct
from .text import normalise_word, normalise_words
from .types import SaliencyMap, Target, Utterance

#: threshold used when neither --threshold nor a results store gives one, by map kind:
#: points of the quick suite's grids that mark a visible but not dominant part of a word
DEFAULT_THRESHOLDS = {"pvalue": 1e-2, "magnitude": -40.0, "score": 0.1}
#: pixels per inch, and inches per figure column / row
DPI = 100
WIDTH_IN = 14.0
ROW_IN = 3.0
DIRECTIONS = ("lerf", "morf")
SHORT = {"lerf": "LeRF", "morf": "MoRF"}


# --------------------------------------------------------------------------- parsing user input


def parse_params(items: list[str] | None, what: str) -> dict:
    """``key=value`` strings -> dict; values read as TOML (``20``, ``0.5``, ``true``, ``"x"``), else text."""
    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{what}: expected key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out[key] = value
    return out


def find_utterance(corpus, corpus_name: str, utt_id: str) -> Utterance:
    """The utterance `utt_id`, or an error naming close and known ids."""
    by_id = {u.id: u for u in corpus.utterances()}
    if utt_id in by_id:
        return by_id[utt_id]
    ids = sorted(by_id)
    close = difflib.get_close_matches(utt_id, ids, n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    shown = ", ".join(ids[:12]) + (f", ... ({len(ids)} in all; `ssbm-bench corpus list`)" if len(ids) > 12 else "")
    raise InputError(f"corpus {corpus_name!r} has no utterance {utt_id!r}{hint}; known ids: {shown}")


def find_word(utt: Utterance, word: str) -> Target:
    """A word target from an index (0-based) or the word's text (case and punctuation ignored)."""
    ref = utt.reference
    listing = ", ".join(f"{i}={w}" for i, w in enumerate(ref))
    text = str(word).strip()
    if text.lstrip("-").isdigit():
        i = int(text)
        if not 0 <= i < len(ref):
            raise InputError(f"utterance {utt.id!r} has {len(ref)} words (0..{len(ref) - 1}: {listing}); "
                             f"no word {i}")
        return Target("word", i, ref[i])
    want = normalise_word(text)
    hits = [i for i, w in enumerate(ref) if w == want]
    if not hits:
        raise InputError(f"utterance {utt.id!r} has no word {text!r}; its words: {listing}")
    if len(hits) > 1:
        raise InputError(f"word {text!r} occurs {len(hits)} times in utterance {utt.id!r} (at {hits}); "
                         f"give its index instead ({listing})")
    return Target("word", hits[0], ref[hits[0]])


# --------------------------------------------------------------------------- computing


@dataclass
class Direction:
    mask: np.ndarray
    energy: float
    waveform: np.ndarray
    hypothesis: list[str]
    a_w: float
    a_o: float


@dataclass
class Explanation:
    utterance: Utterance
    target: Target
    model: str
    method: str
    smap: SaliencyMap
    threshold: float
    threshold_source: str
    level_db: float
    level_source: str
    clean_magnitude: np.ndarray
    cfg: StftConfig
    directions: dict[str, Direction]
    #: the method's own mixtures (bubble): dicts with waveform, audibility, hypothesis, recognised, index
    mixtures: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def stored_level(store: ResultStore, model: str, corpus_digest: str, fill: str) -> float | None:
    """The noise level a finished run used for this model, corpus content and fill, if any."""
    for c in store.cells(board="ssbm", status="ok"):
        if c.model == model and c.corpus_digest == corpus_digest and c.fill == fill and c.raw:
            return float(c.raw["level_db"])
    return None


def stored_best_threshold(store: ResultStore, model: str, method: str, corpus_digest: str, fill: str
                          ) -> float | None:
    from .leaderboard import build_leaderboard

    for r in build_leaderboard(store):
        if (r.model, r.method, r.corpus_digest, r.fill) == (model, method, corpus_digest, fill) \
                and np.isfinite(r.best_threshold):
            return float(r.best_threshold)
    return None


def pick_mixtures(store, smap: SaliencyMap, utt: Utterance, target: Target, n: int, available: int) -> list[int]:
    """Which of a method's mixtures to show: when its stored hypotheses are at hand (bubble keeps them
    under ``params["artifact"]``), the first ones in which the word was recognised and the first ones in
    which it was missed, half and half where possible; otherwise the first `n`."""
    record = store.get(smap.params["artifact"]) if "artifact" in smap.params else None
    if not isinstance(record, dict) or "hypotheses" not in record:
        return list(range(min(n, available)))
    hyps = [h.split() for h in record["hypotheses"]]
    hit = [j for j, h in enumerate(hyps) if word_correct(utt.reference, h)[target.index]]
    miss = [j for j, h in enumerate(hyps) if not word_correct(utt.reference, h)[target.index]]
    take_hit = min(len(hit), max(n // 2, n - len(miss)))
    return sorted(hit[:take_hit] + miss[:n - take_hit])


def explain_word(model, model_ref: PluginRef, method, method_ref: PluginRef, fill, fill_ref: PluginRef,
                 utt: Utterance, target: Target, corpus_digest: str, *, threshold: float | None = None,
                 level_db: float | None = None, store: ResultStore | None = None, use_stored: bool = True,
                 seed: int = 0, n_mixtures: int = 4, cfg: StftConfig = StftConfig(),
                 calibration: CalibrationSettings = CalibrationSettings(utterances=1)) -> Explanation:
    """Map, masks, mixtures and hypotheses for one word (see the module docstring).

    `store`: the results store that backs calibration and the method's artifacts (None: a throw-away one
    in memory); `use_stored`: take the noise level and threshold of a finished run in it when not given.
    """
    import time

    t0 = time.perf_counter()
    model.require("transcribe", "ssbm-bench explain (the LeRF and MoRF mixtures are decoded)")
    missing = sorted(str(c) for c in method.requires if not model.has(c))
    if missing:
        raise InputError(f"method {method_ref.label!r} needs {', '.join(missing)}, which model "
                         f"{model_ref.label!r} does not provide")
    own_store = store is None
    if own_store:
        store, use_stored = ResultStore(":memory:"), False  # calibration and artifacts for this call only
    try:
        if level_db is not None:
            level, level_source = float(level_db), "--level-db"
        else:
            found = stored_level(store, model_ref.label, corpus_digest, fill_ref.label) if use_stored else None
            if found is not None:
                level, level_source = found, "results store"
            else:
                cal = calibrate_noise(model, model_key(model_ref, model), fill, fill_ref.label, [utt], corpus_digest,
                                      store, calibration, cfg)
                level, level_source = float(cal["level_db"]), (
                    f"calibrated on this utterance (word accuracy by level: {cal.get('accuracy_by_level')})")

        clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), cfg)
        magnitude = clean.abs().numpy().astype(np.float64)
        request = ExplainRequest(model=model, utterance=utt, target=target, cfg=cfg, seed=seed, fill=fill,
                                 clean_magnitude=magnitude, artifacts=store, noise_level_db=level)
        smap = method.explain(request)
        if smap.shape != magnitude.shape:
            raise InputError(f"method {method_ref.label!r} returned a map of shape {smap.shape}; the STFT grid "
                             f"of utterance {utt.id!r} is {magnitude.shape}")

        if threshold is not None:
            t, t_source = float(threshold), "--threshold"
        else:
            best = None if not use_stored else stored_best_threshold(store, model_ref.label, method_ref.label,
                                                                  corpus_digest, fill_ref.label)
            if best is not None:
                t, t_source = best, "best threshold in the results store"
            else:
                t, t_source = DEFAULT_THRESHOLDS[smap.kind], f"default for {smap.kind} maps"

        masks = [noise_mask(smap.thresholded_values(), t, smap.kind, d) for d in DIRECTIONS]
        waves = mixture_waveforms(clean, masks, fill, utt.waveform, level, stable_seed("noise", utt.id, seed), cfg)
        hyps = [normalise_words(h) for h in model.transcribe(waves)]
        directions = {}
        for d, m, w, h in zip(DIRECTIONS, masks, waves, hyps):
            a_w, a_o = target_other_accuracy(word_correct(utt.reference, h), target.index)
            directions[d] = Direction(m, dropped_energy(m, magnitude), w, h, float(a_w), float(a_o))

        mixtures = []
        if n_mixtures > 0 and hasattr(method, "mixtures_for"):
            indices = pick_mixtures(store, smap, utt, target, n_mixtures, int(getattr(method, "n_mixtures", 0)))
            mixtures = method.mixtures_for(request, smap, indices)
    finally:
        if own_store:
            store.close()
    return Explanation(utt, target, model_ref.label, method_ref.label, smap, t, t_source, level, level_source,
                       magnitude, cfg, directions, mixtures, time.perf_counter() - t0)


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


def slug_of(model: str, method: str, utt_id: str, target: Target) -> str:
    """Default file stem of an explanation."""
    from .figures import slug

    return "_".join(slug(x) for x in (model, method, utt_id, f"w{target.index}"))
