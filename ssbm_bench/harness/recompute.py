"""Why a rerun computes the cells it computes.

A cell's key is a digest of everything that determines its outcome (see
harness.plan.key_text), so a rerun recomputes a cell exactly when one of those
things changed, or when the cell is new. The store records, per cell, what
its key was made of (table ``cell_fields``); this module compares each cell
to compute with the stored cells of the same suite that the run no longer
plans, and names the difference, grouped into one line per reason:

    computed 2 cells: method energy[n_mels=40] (new in suite)
    computed 4 cells: method energy: params changed (none -> n_mels=40)
    computed 8 cells: corpus digest changed (633183cae1fc -> 0c1d2e3f4a5b)
    computed 4 cells: model pocketsphinx: identity changed (describe() lm: a -> b)

Stores written before key fields were recorded fall back to what the
cells table has (labels, corpus digest, versions).
"""

from __future__ import annotations

from typing import Any, Iterable

DIMENSIONS = ("model", "method", "fill")


def job_identity(job: Any) -> dict:
    """A job's cell as the store's row will show it (board, labels, utterance, target, seed, variant)."""
    c = job.cell
    return {"board": job.board, "model": c.model, "method": c.method, "fill": c.fill, "utterance": c.utterance,
            "target": c.target, "seed": c.seed, "variant": c.variant}


def row_identity(row: dict, boards: dict | None = None) -> dict:
    board = (boards or {}).get(row["board"])
    variant = board.variant_of(row["params"]) if board is not None else None
    return {**{k: row[k] for k in ("board", "model", "method", "fill", "utterance", "target", "seed")},
            "variant": variant}


def plugin_name(label: str) -> str:
    return label.split("[", 1)[0]


def _params_of(label: str) -> str:
    return label[len(plugin_name(label)) + 1:-1] if "[" in label else "none"


def _slot(ident: dict) -> tuple:
    """Where a cell sits, with plugins by name only (so a change of parameters finds the old cell)."""
    return (ident["board"], *(plugin_name(ident[d]) for d in DIMENSIONS), ident["utterance"], ident["target"],
            ident["seed"], ident["variant"])


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _dict_change(old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in sorted(set(old) | set(new), key=str) if old.get(k) != new.get(k)]
        shown = [f"{k}: {_short(old.get(k, '-'), 24)} -> {_short(new.get(k, '-'), 24)}" for k in keys[:3]]
        return "; ".join(shown) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")
    return f"{_short(old)} -> {_short(new)}"


def _field_change(key: str, old: Any, new: Any, ident: dict, board: Any = None) -> str | None:
    if board is not None:
        said = board.describe_change(key, old, new)
        if said is not None:
            return said
    if key in DIMENSIONS:  # plugin references: reported from the labels
        return None
    if key in ("corpus", "corpus_digest"):
        return f"corpus digest changed ({str(old)[:12]} -> {str(new)[:12]})"
    if key == "protocol":
        return f"new protocol version of ssbm-bench ({old} -> {new})"
    if key in ("model_id", "method_id", "fill_id"):
        dim = key[:-3]
        return f"{dim} {ident[dim]}: identity changed (describe() {_dict_change(old, new)})"
    if key == "level_db":
        try:
            return f"noise level re-calibrated ({float(old):+g} -> {float(new):+g} dB)"
        except (TypeError, ValueError):
            return "noise level re-calibrated"
    if key == "cfg":
        return f"STFT settings changed ({_dict_change(old, new)})"
    return f"{key} changed ({_short(old)} -> {_short(new)})"


def _changed(old: dict, ident: dict, fields: dict | None, corpus_digest: str | None, versions: dict | None,
             board: Any = None) -> str:
    parts = []
    for dim in DIMENSIONS:
        if old[dim] != ident[dim]:
            parts.append(f"{dim} {plugin_name(ident[dim])}: params changed ({_params_of(old[dim])} -> "
                         f"{_params_of(ident[dim])})")
    if old.get("fields") is not None and fields is not None:
        for key in sorted(set(old["fields"]) | set(fields)):
            a, b = old["fields"].get(key), fields.get(key)
            if a != b:
                text = _field_change(key, a, b, ident, board)
                if text and text not in parts:
                    parts.append(text)
    elif not parts:
        if corpus_digest and old["corpus_digest"] and old["corpus_digest"] != corpus_digest:
            parts.append(f"corpus digest changed ({old['corpus_digest'][:12]} -> {corpus_digest[:12]})")
        elif versions is not None and old["versions"] != versions:
            parts.append(f"versions changed ({_dict_change(_flat(old['versions']), _flat(versions))})")
        else:
            parts.append("cell key changed (a model or method identity, the thresholds, the noise level or the "
                         "STFT; this store predates recorded key fields)")
    return "; ".join(parts) if parts else "cell key changed"


def _flat(versions: dict) -> dict:
    out = {k: v for k, v in versions.items() if k != "plugins"}
    out.update(versions.get("plugins", {}))
    return out


def _corpus_digest_of(fields: dict | None) -> str | None:
    if not fields:
        return None
    return fields.get("corpus_digest") or fields.get("corpus")


def unfinished_run(runs: list[dict], suite_name: str, suite_digest: str) -> str | None:
    """How to name an earlier run of this very suite (same digest) that stopped before it finished, if any.

    `runs` is ResultStore.runs() without the run now starting. Such a run
    planned the same cells, so a cell it left out is not "new": it was left
    over (a kill, a crash, Ctrl-C)."""
    for r in reversed(runs):
        if r["suite"] == suite_name and r["suite_digest"] == suite_digest and r["status"] != "finished":
            state = "killed" if r["status"] in ("running", "killed") else r["status"]
            return f"left over by run {r['run_id']} of the same suite ({state} before it finished)"
    return None


def recompute_reasons(suite_name: str, todo: Iterable[Any], planned_keys: set[str], fields_of: dict[str, dict],
                      previous: list[dict], versions: dict | None = None, unfinished: str | None = None,
                      boards: dict | None = None) -> list[dict]:
    """[{"reason": text, "cells": n}] for the jobs to compute, in order of first appearance.

    `previous` is ResultStore.suite_cells(suite_name); `fields_of` maps a job's
    key to what it was made of (harness.plan.key_text, parsed); `unfinished` names an earlier
    run of the same suite digest that did not finish (unfinished_run): cells
    with no changed counterpart in the store are then its leftovers. `boards`
    (name -> Board) lets each board read a cell's variant and word the
    changes of its own key fields."""
    boards = boards or {}
    todo = list(todo)
    if not todo:
        return []
    if not previous and not unfinished:
        return [{"reason": f"no earlier results of suite {suite_name!r} in this store", "cells": len(todo)}]
    stale: dict[tuple, list[dict]] = {}
    seen: dict[str, dict[str, set]] = {}
    for row in previous:
        ident = row_identity(row, boards)
        row = {**row, **ident}
        if row["key"] not in planned_keys:
            stale.setdefault(_slot(ident), []).append(row)
        by = seen.setdefault(ident["board"], {k: set() for k in ("model", "method", "fill", "utterance", "target",
                                                                  "seed", "variant")})
        for k in by:
            by[k].add(ident[k])
    counts: dict[str, int] = {}
    for job in todo:
        ident = job_identity(job)
        fields = fields_of.get(job.key)
        reason = _reason(ident, fields, stale, seen, versions, unfinished, boards.get(ident["board"]))
        counts[reason] = counts.get(reason, 0) + 1
    return [{"reason": r, "cells": n} for r, n in counts.items()]


def _reason(ident: dict, fields: dict | None, stale: dict, seen: dict, versions: dict | None,
            unfinished: str | None = None, board: Any = None) -> str:
    candidates = stale.get(_slot(ident))
    if not candidates and unfinished:
        return unfinished
    if candidates:
        def distance(row: dict) -> int:
            if row.get("fields") is None or fields is None:
                return 0
            return sum(row["fields"].get(k) != fields.get(k) for k in set(row["fields"]) | set(fields))

        old = min(candidates, key=distance)
        return _changed(old, ident, fields, _corpus_digest_of(fields), versions, board)
    by = seen.get(ident["board"])
    if by is None:
        return f"board {ident['board']} (new in suite)"
    for dim in DIMENSIONS:
        if ident[dim] not in by[dim]:
            return f"{dim} {ident[dim]} (new in suite)"
    if ident["variant"] is not None and ident["variant"] not in by["variant"]:
        name = (board.variant_name if board is not None else "") or "variant"
        return f"{name} = {ident['variant']} (new in suite)"
    if ident["seed"] not in by["seed"]:
        return f"seed {ident['seed']} (new in suite)"
    if ident["utterance"] not in by["utterance"]:
        return "utterances new to the suite"
    if ident["target"] not in by["target"]:
        return "target words new to the suite"
    return "not in the store yet (an earlier run stopped before it, or it is new for this combination)"


def reason_lines(reasons: list[dict]) -> list[str]:
    return [f"computed {r['cells']} cell{'s' if r['cells'] != 1 else ''}: {r['reason']}" for r in reasons]
