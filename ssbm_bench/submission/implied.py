"""The cells a submission's suite implies, re-derived here: no more and no fewer may be submitted.

Which cells a grid board has depends on the models: the utterances a model
recognises fully when clean (and, with a limit, the first so many of them),
the targets chosen in each, and the noise level calibrated per model and
fill. A submitter who dropped the utterances their method does badly on,
claimed an utterance the model does not recognise, or used another noise
level would pass every check that reads the file alone: the cells left are
consistent among themselves. So `leaderboard add --verify` plans the
suite's grid boards here exactly as a run does (clean decodes and the
calibration; no cell is computed) and compares the planned cell keys with
the submitted ones. A key is the digest of everything that determined its
cell, so equal key sets mean the same cells; where they differ, the cell
is named with the field that differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .guards import short

#: how many differences a refusal lists
SHOWN = 5


@dataclass
class Implied:
    """What planning the suite's grid boards here gave: each planned key with its fields."""

    boards: list[str]
    fields: dict[str, dict] = field(default_factory=dict)
    #: per transcribing model: the utterances it recognises fully here (for messages)
    eligible: dict[str, list[str]] = field(default_factory=dict)


def plan_implied(suite: Any, log: Callable[[str], None] = lambda s: None, registry=None) -> Implied:
    """Plan the suite's grid boards here, as `ssbm-bench run` would, in a store of its own (nothing computed)."""
    from ..harness.plan import PlanContext
    from ..harness.runner import RunSummary, open_corpus
    from ..harness.store import ResultStore
    from ..harness.worker import WorkerCache
    from ..plugins import get_registry

    registry = registry or get_registry()
    boards = [b for b in registry.boards() if b.name in suite.boards and b.uses_grid]
    out = Implied([b.name for b in boards])
    if not boards:
        return out
    worker = WorkerCache(registry)
    store = ResultStore(":memory:")
    worker.artifacts = store
    try:
        corpus_digest, utterances = open_corpus(suite, worker)
        summary = RunSummary(suite=suite.name)
        ctx = PlanContext(suite=suite, registry=registry, worker=worker, store=store, summary=summary,
                          corpus_digest=corpus_digest, utterances=utterances, versions={}, finished=set(), log=log)
        for board in boards:
            for job in board.plan(suite.settings.get(board.name), ctx):
                out.fields[job.key] = ctx.fields_of[job.key]
        for key in ctx.stored_keys:
            out.fields[key] = ctx.fields_of[key]
        out.eligible = {m: info.get("eligible", []) for m, info in summary.models.items() if "eligible" in info}
    finally:
        store.close()
    return out


def _label(ref: Any) -> Any:
    from ..harness.suite import PluginRef

    if isinstance(ref, dict) and isinstance(ref.get("name"), str):
        return PluginRef(ref["name"], ref.get("params", {})).label
    return ref


def _slot(fields: dict) -> tuple:
    """Where a cell sits, whatever else its key holds (noise level, identities, settings): board, plugins by
    label, utterance, target and seed."""
    return (fields.get("board"), *(_label(fields.get(k)) for k in ("model", "method", "fill")),
            fields.get("utterance"), fields.get("target"), fields.get("seed"))


def _differences(mine: dict, theirs: dict) -> str:
    keys = [k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
    shown = [f"{k} {short(theirs.get(k, '(missing)'))} submitted, {short(mine.get(k, '(missing)'))} here"
             for k in keys[:3]]
    return "; ".join(shown) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")


def compare_implied(doc: dict, implied: Implied) -> list[str]:
    """Every difference between the submitted cells of the grid boards and the cells the suite implies here,
    each naming the cell (and the field, where a submitted cell sits where a planned one does). A submission
    declared partial may lack cells, but carries none the suite does not imply."""
    from ..harness.runner import fields_summary
    submitted = {c["key"]: (i, c) for i, c in enumerate(doc["cells"]) if c["board"] in implied.boards}
    planned_by_slot: dict[tuple, list[dict]] = {}
    for key, f in implied.fields.items():
        if key not in submitted:
            planned_by_slot.setdefault(_slot(f), []).append(f)
    failures: list[str] = []
    matched_slots: set[tuple] = set()
    for key, (i, c) in submitted.items():
        if key in implied.fields:
            continue
        theirs = c.get("fields", {})
        slot = _slot(theirs)
        if slot in planned_by_slot:
            matched_slots.add(slot)
            failures.append(f"cells[{i}] ({fields_summary(theirs)}): not the cell this suite implies here: "
                            f"{_differences(planned_by_slot[slot][0], theirs)}")
            continue
        model = _label(theirs.get("model"))
        why = ""
        if model in implied.eligible and theirs.get("utterance") not in implied.eligible[model]:
            why = (f": model {model!r} does not recognise utterance {theirs.get('utterance')!r} fully here (or it "
                   f"is past the suite's limit), so the suite has no cell for it")
        failures.append(f"cells[{i}] ({fields_summary(theirs)}): a cell this suite does not imply here{why}")
    missing = [f for slot, fs in planned_by_slot.items() if slot not in matched_slots for f in fs]
    if missing and "partial" not in doc:
        utterances = sorted({str(f.get("utterance")) for f in missing})
        failures.append(f"{len(missing)} cell(s) the suite implies here are not submitted (utterance(s) "
                        f"{', '.join(utterances[:SHOWN])}{' ...' if len(utterances) > SHOWN else ''}), e.g. "
                        f"{fields_summary(missing[0])}: a submission carries every cell of its run")
    return failures
