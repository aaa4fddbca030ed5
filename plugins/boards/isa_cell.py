"""One ISA cell: one method explaining every member of a seed family on the
family's test inputs, scored by inter-seed agreement at each aggregation.

The target of every explanation is the input's *gold* class (the same for
every seed), so members are compared on the same question even where they
predict differently. Attributions are compared in the input type they were
computed in (the method's ``feature``: STFT magnitude, waveform, or the
model's embedding; :class:`ssbm_bench.feature_spaces.NativeAttribution`);
aggregation follows the ISA paper (sec. 3.3): ``none`` (every point),
``frames`` (sum per frame: per 16 ms STFT hop, of samples for the waveform,
per native frame for the embedding), ``words`` (mean of the frame sums over
each word's frames, the gaps between words dropped; only for corpora with
word times). ISA per seed pair = mean top-p overlap over the
inputs (ssbm_bench.metrics.isa), beside the shuffled baseline.

What is stored is small and enough to re-score: per aggregation, per pair,
the per-input overlaps of the maps and of the shuffled maps; the word-level
maps themselves (a few numbers per input and seed). Full maps are not kept
(hundreds of MB for a standard family).
"""

from __future__ import annotations

import itertools
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch

from ssbm_bench.audio import StftConfig, stft
from ssbm_bench.board import CellResult
from ssbm_bench.errors import SsbmBenchError
from ssbm_bench.feature_spaces import NativeAttribution
from ssbm_bench.harness.suite import PluginRef
from ssbm_bench.method import ExplainRequest
from ssbm_bench.metrics.isa import DEFAULT_P, aggregate_words, shuffled, top_p_overlap
from ssbm_bench.types import Target

AGGREGATIONS = ("none", "frames", "words")


@dataclass(frozen=True)
class IsaJob:
    """An ISA cell's spec: the family's members, the method, the inputs and their gold labels."""

    family: str
    members: tuple[tuple[str, str], ...]  # (member name, model directory)
    model: str  # the model plugin that loads a member directory (speechbrain-dir)
    method: PluginRef
    corpus: PluginRef
    inputs: tuple[tuple[str, str], ...]  # (utterance id, gold label)
    p: float = DEFAULT_P
    seed: int = 0
    cfg: StftConfig = StftConfig()
    #: what the row records besides the raw result (corpus digest, family agreement, task kind)
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def word_spans(utt, n_frames: int, cfg: StftConfig) -> list[tuple[int, int]]:
    return [cfg.frame_span(w.start, w.end, n_frames) for w in utt.words]


def run_isa_cell(cjob, cache) -> CellResult:
    """Explain every (member, input), then score agreement; a plugin failure is an 'error' result."""
    t0 = time.perf_counter()
    job = cjob.spec
    try:
        method = cache.instance("method", job.method)
        maps: dict[str, list[NativeAttribution]] = {}
        utts = [cache.utterance(job.corpus, uid) for uid, _ in job.inputs]
        for name, directory in job.members:
            model = cache.instance("model", PluginRef(job.model, {"path": directory}))
            missing = sorted(str(c) for c in method.requires if not model.has(c))
            if missing:
                return CellResult(cjob, "skipped", f"method {job.method.label!r} needs {', '.join(missing)}; model "
                                 f"{job.model!r} has {', '.join(sorted(map(str, model.capabilities)))}",
                                 seconds=time.perf_counter() - t0)
            labels = list(model.labels)
            out = []
            for utt, (uid, gold) in zip(utts, job.inputs):
                if gold not in labels:
                    raise SsbmBenchError(f"family {job.family!r}: input {uid!r} has label {gold!r}, but member "
                                         f"{name} knows only {labels}: the task's labels do not match the family's")
                clean = stft(torch.as_tensor(utt.waveform, dtype=torch.float32), job.cfg)
                request = ExplainRequest(model=model, utterance=utt, target=Target("class", labels.index(gold), gold),
                                         cfg=job.cfg, seed=job.seed, clean_magnitude=clean.abs().numpy().astype(np.float64),
                                         params=job.method.params, artifacts=None)
                smap = method.explain(request)
                native = smap.native if smap.native is not None else stft_native(smap.values, job.cfg)
                if not np.all(np.isfinite(native.values)):
                    raise SsbmBenchError(f"method {job.method.label!r} gave NaN or infinite attributions for member "
                                         f"{name}, input {uid!r}")
                out.append(native)
            maps[name] = out
        check_shapes(maps, job)
        raw = score_maps(maps, utts, job)
    except SsbmBenchError as exc:
        return CellResult(cjob, "error", str(exc), seconds=time.perf_counter() - t0)
    except Exception:  # a plugin's bug is this cell's error, not the run's end
        return CellResult(cjob, "error", traceback.format_exc(limit=8), seconds=time.perf_counter() - t0)
    return CellResult(cjob, "ok", raw=raw, seconds=time.perf_counter() - t0)


def stft_native(values: np.ndarray, cfg: StftConfig) -> NativeAttribution:
    """A map on the STFT grid (freq, frames) as a native attribution (methods that work there)."""
    return NativeAttribution(np.asarray(values, np.float64).T, cfg.hop / cfg.sample_rate, "stft")


def check_shapes(maps: dict[str, list[NativeAttribution]], job: IsaJob) -> None:
    """Seeds are compared point by point: their attributions of one input must have one shape."""
    names = list(maps)
    for k, (uid, _) in enumerate(job.inputs):
        shapes = {n: maps[n][k].values.shape for n in names}
        if len(set(shapes.values())) > 1:
            raise SsbmBenchError(f"family {job.family!r}, input {uid!r}: method {job.method.label!r} gave "
                                 f"attributions of different shapes across seeds ({shapes}); ISA compares them "
                                 f"point by point, so they must match")


def aggregated(maps: dict[str, list[NativeAttribution]], utts, cfg: StftConfig) -> dict[str, dict[str, list[np.ndarray]]]:
    """{aggregation: {member: [per-input vector]}}; 'words' only where every input has word times.

    ``none`` compares the attribution where it was computed (every sample,
    time-frequency point or embedding value); ``frames`` sums it per frame
    (per STFT hop of samples for the waveform, per native frame otherwise);
    ``words`` mean-pools the frame sums over each word's frames, the gaps
    between words dropped (the ISA paper's sec. 3.3)."""
    out: dict[str, dict[str, list[np.ndarray]]] = {"none": {}, "frames": {}, "words": {}}
    with_words = all(len(u.words) > 0 for u in utts)
    for name, per_input in maps.items():
        out["none"][name] = [n.values for n in per_input]
        frames = [n.frame_sums() for n in per_input]
        out["frames"][name] = frames
        if with_words:
            out["words"][name] = [aggregate_words(f, n.word_spans(u.words, f.size))
                                  for f, n, u in zip(frames, per_input, utts)]
    if not with_words:
        del out["words"]
    return out


def input_type(maps: dict) -> str:
    """The space the attributions were computed in ("stft:magnitude", "waveform", "embedding:log-mel", ...)."""
    for per_input in maps.values():
        for native in per_input:
            return getattr(native, "space", "stft")
    return "stft"


def score_maps(maps: dict[str, list[np.ndarray]], utts, job: IsaJob) -> dict:
    rng = np.random.default_rng(job.seed)
    names = sorted(maps, key=lambda s: (len(s), s))
    result: dict = {"p": job.p, "members": names, "inputs": [u.id for u in utts], "aggregations": {},
                    "input_type": input_type(maps)}
    for agg, by_member in aggregated(maps, utts, job.cfg).items():
        shuffled_maps = {n: shuffled(by_member[n], rng) for n in names}
        pairs = []
        for a, b in itertools.combinations(names, 2):
            pairs.append({
                "pair": [a, b],
                "overlaps": [top_p_overlap(x, y, job.p) for x, y in zip(by_member[a], by_member[b])],
                "baseline": [top_p_overlap(x, y, job.p) for x, y in zip(shuffled_maps[a], shuffled_maps[b])],
            })
        entry = {"pairs": pairs}
        if agg == "words":
            entry["word_maps"] = {n: [v.tolist() for v in by_member[n]] for n in names}
        result["aggregations"][agg] = entry
    return result


def isa_summary(raw: dict, aggregation: str) -> dict:
    """Per-pair ISA (mean over inputs) and baseline, from a stored cell."""
    entry = raw["aggregations"][aggregation]
    scores = [float(np.mean(p["overlaps"])) for p in entry["pairs"]]
    base = [float(np.mean(p["baseline"])) for p in entry["pairs"]]
    return {"pairs": [p["pair"] for p in entry["pairs"]], "scores": scores, "baseline": base,
            "median": float(np.median(scores)), "baseline_median": float(np.median(base))}
