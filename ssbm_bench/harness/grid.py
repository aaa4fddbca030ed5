"""The grid: the suite's [corpus] x [[models]] x [[methods]] x [[fills]] x words x seeds, prepared once per run.

Boards that measure a method's map of one target on one utterance (SSBM,
deletion by rank, ...) share it, so the expensive preparation
happens once however many of them a suite lists:

* per transcribing model, the utterances it recognises fully when clean
  (a word's loss under noise says nothing about a map when the word was
  never heard) and the target words of each;
* per classifier, the class it gives each clean utterance (the target);
* per model and fill, the calibrated noise level (the lowest level at
  which the fully noised utterances are unrecognisable).

Every point carries the key fields that identify its explanation; a board
adds its own fields (thresholds, fractions, ...) to make its cell's key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import Capability
from ..types import Target, Utterance
from .prepare import CalibrationSettings, calibrate_noise, model_key, select_classified, select_eligible
from .suite import PluginRef

@dataclass
class GridPoint:
    """One explanation: a model, fill (with its noise level), method, utterance, target and seed."""

    index: int
    model_ref: PluginRef
    model: Any
    fill_ref: PluginRef
    fill: Any
    level_db: float
    method_ref: PluginRef
    method: Any
    utterance: Utterance
    target: Target
    seed: int
    #: the key fields every grid board's cell starts from
    fields: dict

    @property
    def transcribes(self) -> bool:
        return self.model.has(Capability.TRANSCRIBE)


@dataclass
class GridModel:
    """A prepared model of the grid: how its targets were chosen, or why it has none."""

    ref: PluginRef
    model: Any
    #: "transcribe", "classify", or "none" (neither: no cells)
    mode: str


@dataclass
class Grid:
    corpus_digest: str
    models: list[GridModel] = field(default_factory=list)
    points: list[GridPoint] = field(default_factory=list)


def choose_targets(utt: Utterance, k: int | None) -> list[Target]:
    """k target words spread evenly over the interior of the utterance (all
    words if k is None): with k=2 of 8 words, words 2 and 5, so that a short
    sample is not dominated by sentence-initial articles."""
    n = len(utt.words)
    idx = range(n) if k is None or k >= n else sorted({int(round(x)) for x in np.linspace(0, n - 1, k + 2)[1:-1]})
    ref = utt.reference
    return [Target("word", i, ref[i] if i < len(ref) else utt.words[i].text) for i in idx]


def calibration_settings(ctx) -> CalibrationSettings:
    """The noise calibration a board's section sets (the first that sets one), else the defaults."""
    for board in ctx.registry.boards():
        if board.name in ctx.suite.settings:
            found = board.noise_calibration(ctx.suite.settings[board.name])
            if found is not None:
                return found
    return CalibrationSettings()


def prepare_grid(ctx) -> Grid:
    suite, cache, store, log, summary = ctx.suite, ctx.worker, ctx.store, ctx.log, ctx.summary
    calibration = calibration_settings(ctx)
    grid = Grid(ctx.corpus_digest)
    for mref in suite.models:
        model = cache.instance("model", mref)
        mkey = model_key(mref, model)
        info: dict = {"noise_level_db": {}}
        summary.models[mref.label] = info
        if model.has(Capability.TRANSCRIBE):
            log(f"[{mref.label}] selecting fully recognised utterances ...")
            elig = select_eligible(model, mkey, ctx.utterances, ctx.corpus_digest, store, suite.utterance_limit,
                                   on_decode=lambda n: setattr(summary, "decodes", summary.decodes + n),
                                   progress=ctx.progress, label=mref.label)
            info.update({"eligible": [u.id for u in elig.eligible], "scanned": elig.scanned,
                         "dropped": len(elig.dropped), "clean_word_accuracy": elig.clean_word_accuracy})
            log(f"[{mref.label}] {len(elig.eligible)} of {elig.scanned} scanned utterances recognised "
                f"fully (dropped {len(elig.dropped)}; clean word accuracy {elig.clean_word_accuracy:.1%})")
            if not elig.eligible:
                log(f"[{mref.label}] no utterance is recognised fully: no cells for this model")
                grid.models.append(GridModel(mref, model, "none"))
                continue
            work = [(u, choose_targets(u, suite.words_per_utterance)) for u in elig.eligible]
            grid.models.append(GridModel(mref, model, "transcribe"))
        elif model.has(Capability.CLASSIFY):
            chosen = select_classified(model, mkey, ctx.utterances, ctx.corpus_digest, store, suite.utterance_limit)
            work = [(u, [Target("class", c, model.labels[c])]) for u, c in chosen]
            info["classified"] = {u.id: model.labels[c] for u, c in chosen}
            grid.models.append(GridModel(mref, model, "classify"))
        else:
            log(f"[{mref.label}] model neither transcribes nor classifies: no cells")
            grid.models.append(GridModel(mref, model, "none"))
            continue
        crossed = suite.methods_for(mref)
        left_out = [m.label for m in suite.methods if not any(m is c for c in crossed)]
        if left_out:
            log(f"[{mref.label}] not run with: {', '.join(left_out)} (their [[methods]] entries name other models)")
        for fref in suite.fills:
            fill = cache.fill(fref, suite.corpus, ctx.cfg)
            if model.has(Capability.TRANSCRIBE):
                cal = calibrate_noise(model, mkey, fill, fref.label, [u for u, _ in work], ctx.corpus_digest,
                                      store, calibration, ctx.cfg, progress=ctx.progress,
                                      label=f"{mref.label} / {fref.label}")
            else:
                cal = {"level_db": 0.0, "note": "a classifier has no word accuracy to calibrate a noise level "
                                                "against; additive fills are added at 0 dB re. speech"}
            info["noise_level_db"][fref.label] = cal["level_db"]
            if not cal.get("criterion_met", True):
                log(f"[{mref.label}] warning: no calibration level made the masked speech unrecognisable; "
                    f"using the loudest, {cal['level_db']} dB")
            by_level = cal.get("accuracy_by_level")
            if by_level:  # numeric order, whatever order the store gave them in
                by_level = dict(sorted(by_level.items(), key=lambda kv: float(kv[0])))
            log(f"[{mref.label}] {fref.label} noise level {cal['level_db']:+g} dB re. speech RMS "
                f"(accuracy by level: {by_level})")
            for meth in crossed:
                method = cache.instance("method", meth)
                for utt, targets in work:
                    for target in targets:
                        for seed in suite.seeds:
                            fields = {"model": mref.to_dict(), "model_id": model.describe(),
                                      "method": meth.to_dict(), "method_id": method.describe(),
                                      "fill": fref.to_dict(), "fill_id": fill.describe(),
                                      "utterance": utt.id, "target": target.key, "seed": seed,
                                      "level_db": cal["level_db"], "cfg": ctx.cfg.to_dict()}
                            grid.points.append(GridPoint(len(grid.points), mref, model, fref, fill,
                                                         float(cal["level_db"]), meth, method, utt, target, seed,
                                                         fields))
    return grid


@dataclass(frozen=True)
class GridSpec:
    """What a grid board's cell needs on a worker: the explanation it scores (plugin references, utterance,
    target, seed, the grid's noise level, the STFT)."""

    corpus: PluginRef
    model: PluginRef
    method: PluginRef
    fill: PluginRef
    utterance: str
    target: Target
    seed: int
    level_db: float
    cfg: Any


def grid_spec(suite, point: GridPoint, cfg) -> GridSpec:
    return GridSpec(suite.corpus, point.model_ref, point.method_ref, point.fill_ref, point.utterance.id,
                    point.target, point.seed, point.level_db, cfg)


def grid_identity(suite, corpus_digest: str, spec: GridSpec):
    """Where a grid cell sits on its board (the row's columns)."""
    from ..board import CellIdentity

    return CellIdentity(corpus=suite.corpus.label, corpus_digest=corpus_digest, model=spec.model.label,
                        method=spec.method.label, fill=spec.fill.label, utterance=spec.utterance,
                        target=spec.target.key, seed=spec.seed)


def grid_params(spec: GridSpec, **extra: Any) -> dict:
    """The params a grid cell's row stores: the plugins' parameters, the noise level, the STFT, and `extra`."""
    return {"model": spec.model.params, "method": spec.method.params, "fill": spec.fill.params, **extra,
            "level_db": spec.level_db, "cfg": spec.cfg.to_dict()}


def parse_target(key: str) -> Target:
    """A target back from its key (``word:3:cat``)."""
    kind, index, label = key.split(":", 2)
    return Target(kind, int(index), label)


def spec_from_cell(cell: dict, suite) -> GridSpec:
    """The GridSpec of a submitted or stored grid cell (its labels are the suite's plugin labels)."""
    from ..audio import StftConfig

    refs = {"model": {r.label: r for r in suite.models}, "method": {r.label: r for r in suite.methods},
            "fill": {r.label: r for r in suite.fills}}
    p = cell["params"]
    return GridSpec(suite.corpus, refs["model"][cell["model"]], refs["method"][cell["method"]],
                    refs["fill"][cell["fill"]], cell["utterance"], parse_target(cell["target"]), int(cell["seed"]),
                    float(p["level_db"]), StftConfig(**p["cfg"]))
