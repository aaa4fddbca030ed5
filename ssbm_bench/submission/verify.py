"""Verifying a submission by re-running a sample of its cells here, and adding it to the leaderboard.

Each board rebuilds a submitted cell's job (``Board.rebuild_job``) and
computes it (``Board.compute``) exactly as a run would; the raw outputs
must agree with the submitted ones (real numbers to a relative 1e-6; a
map's digest may differ in its last bit across BLAS builds and is noted,
not failed). A board that cannot re-run its cells here (ISA needs its seed
families trained) says so, and its cells are checked by re-scoring only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..board import NotRerunnable
from .guards import LEADERBOARDS_DIR, SubmissionError, dumps, read_submission, short
from .validate import Validated, validate_submission

#: relative tolerance for the real-valued outputs of a re-run cell
VERIFY_RTOL = 1e-6


@dataclass
class VerifyContext:
    """Handed to ``Board.rebuild_job``: the validated suite and this process's plugin instances."""

    suite: Any
    worker: Any


def _compare_raw(mine: Any, theirs: Any, where: str, failures: list[str], notes: list[str]) -> None:
    if isinstance(theirs, dict) and isinstance(mine, dict):
        for k in sorted(set(mine) | set(theirs)):
            if k in ("explain_seconds", "map_reused"):
                continue  # timing, and whether this worker had the map already
            sub = f"{where}.{k}"
            if k == "p_speech" and isinstance(mine.get(k), float) and isinstance(theirs.get(k), (int, float)):
                if not math.isclose(mine[k], theirs[k], rel_tol=1e-4, abs_tol=1e-6):
                    notes.append(f"{sub}: P(speech) {theirs[k]!r} submitted, {mine[k]!r} here (it selects "
                                 f"excerpts and is not scored; the model ran on a batch there, on one excerpt here)")
                continue
            if k == "sha256":
                if mine.get(k) != theirs.get(k):
                    notes.append(f"{sub}: map digest differs ({theirs.get(k)} submitted, {mine.get(k)} here); "
                                 f"a last-bit difference in floating point (BLAS threads, CPU) changes it")
                continue
            if k not in mine or k not in theirs:
                failures.append(f"{sub}: present on one side only")
                continue
            _compare_raw(mine[k], theirs[k], sub, failures, notes)
    elif isinstance(theirs, list) and isinstance(mine, list):
        if len(mine) != len(theirs):
            failures.append(f"{where}: {len(theirs)} entries submitted, {len(mine)} here")
            return
        for i, (a, b) in enumerate(zip(mine, theirs)):
            _compare_raw(a, b, f"{where}[{i}]", failures, notes)
    elif isinstance(theirs, float) or isinstance(mine, float):
        if not (isinstance(mine, (int, float)) and isinstance(theirs, (int, float))
                and math.isclose(mine, theirs, rel_tol=VERIFY_RTOL, abs_tol=1e-9)):
            failures.append(f"{where}: {theirs!r} submitted, {mine!r} re-run here")
    elif mine != theirs:
        failures.append(f"{where}: {short(theirs)} submitted, {short(mine)} re-run here")


def rerunnable(doc: dict, registry=None) -> list[int]:
    """Indices of the finished cells of boards that can re-run cells here."""
    from ..plugins import get_registry

    registry = registry or get_registry()
    able = {b.name for b in registry.boards() if b.rerunnable}
    return [i for i, c in enumerate(doc["cells"]) if c["status"] == "ok" and c["board"] in able]


def verify_cells(v: Validated, k: int, seed: int | None = None, log=lambda s: None) -> tuple[list[str], list[str], int]:
    """Re-run k random finished cells in this process and compare their raw
    outputs with the submitted ones. (failures, notes, seed used)."""
    from ..harness.runner import describe_cell, run_cell
    from ..harness.store import ResultStore
    from ..harness.worker import WorkerCache
    from ..plugins import get_registry

    registry = get_registry()
    seed = random.SystemRandom().randrange(2 ** 31) if seed is None else int(seed)
    ok = rerunnable(v.doc, registry)
    chosen = sorted(random.Random(seed).sample(ok, min(k, len(ok))))
    failures: list[str] = []
    notes: list[str] = []
    able = {v.doc["cells"][i]["board"] for i in ok}
    for board in sorted({c["board"] for c in v.doc["cells"] if c["status"] == "ok"} - able):
        n = sum(1 for c in v.doc["cells"] if c["status"] == "ok" and c["board"] == board)
        if k:
            notes.append(f"{n} {board} cell(s) not re-run: the {board} board cannot re-run its cells here; they "
                         f"are checked by re-scoring only")
    store = ResultStore(":memory:")
    worker = WorkerCache(registry)
    worker.artifacts = store
    ctx = VerifyContext(v.suite, worker)
    try:
        for n, i in enumerate(chosen, 1):
            c = v.doc["cells"][i]
            where = f"cells[{i}]"
            board = registry.board(c["board"])
            try:
                job = board.rebuild_job(c, v.suite.settings.get(c["board"]), ctx)
            except NotRerunnable as exc:
                notes.append(f"{where}: not re-run ({exc})")
                continue
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                failures.append(f"{where}.params: cannot rebuild the cell to re-run it ({type(exc).__name__}: {exc})")
                continue
            log(f"verify {n}/{len(chosen)}: {describe_cell(job)}")
            res = run_cell(job, {"ssbm_bench": worker})
            if res.status != "ok":
                failures.append(f"{where}: re-run here gave status {res.status!r} ({(res.reason or '')[:200]})")
                continue
            _compare_raw(res.raw, c["raw"], f"{where}.raw", failures, notes)
    finally:
        store.close()
    return failures, notes, seed


# --- adding ------------------------------------------------------------------

def submission_filename(v: Validated) -> str:
    return f"{v.doc['suite']['name']}--{v.digest[:16]}.json"


def add_submission(path: str | Path, leaderboards_dir: Path = LEADERBOARDS_DIR, suites_dir: Path | None = None,
                   verify: int = 0, seed: int | None = None, log=lambda s: None) -> tuple[Path, Validated, list[str]]:
    """Validate (and optionally verify) a submission, then store its
    canonical JSON under leaderboards_dir/submissions/. Returns (path, validated, notes)."""
    suites_dir = Path(suites_dir) if suites_dir else Path(leaderboards_dir) / "suites"
    doc = read_submission(path)
    v = validate_submission(doc, suites_dir)
    notes = list(v.notes)
    if verify:
        failures, vnotes, used = verify_cells(v, verify, seed, log)
        notes += vnotes
        notes.append(f"verified {min(verify, len(rerunnable(doc)))} random cell(s) (--seed {used})")
        if failures:
            shown = "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
            raise SubmissionError(f"re-running cells (--seed {used}) gave other outputs than submitted: {shown}")
    dest_dir = Path(leaderboards_dir) / "submissions"
    dest = dest_dir / submission_filename(v)
    if dest.exists():
        raise SubmissionError(f"this submission is already in the leaderboard as {dest}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".json.tmp")
    tmp.write_text(dumps(v.doc))
    tmp.replace(dest)
    return dest, v, notes


def load_accepted(leaderboards_dir: Path = LEADERBOARDS_DIR, suites_dir: Path | None = None,
                  check_corpus: bool = False) -> list[tuple[Path, Validated]]:
    """(path, validated) for every submission under leaderboards_dir/submissions/,
    validated again (a hand-edited file is refused here too)."""
    suites_dir = Path(suites_dir) if suites_dir else Path(leaderboards_dir) / "suites"
    out = []
    for p in sorted((Path(leaderboards_dir) / "submissions").glob("*.json")):
        try:
            out.append((p, validate_submission(read_submission(p), suites_dir, check_corpus=check_corpus)))
        except SubmissionError as exc:
            raise SubmissionError(f"{p}: {exc}") from None
    return out
