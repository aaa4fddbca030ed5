"""Verifying a submission by re-running a sample of its cells here, and adding it to the leaderboard.

Each board rebuilds a submitted cell's job (``Board.rebuild_job``) and
computes it (``Board.compute``) exactly as a run would; the raw outputs
must agree with the submitted ones (real numbers to a relative 1e-6; a
map's digest may differ in its last bit across BLAS builds and is noted,
not failed). A board that cannot re-run its cells here (ISA needs its seed
families trained) says so, and its cells are checked by re-scoring only.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..board import NotRerunnable
from ..harness.store import TIMING_FIELDS
from .guards import LEADERBOARDS_DIR, SubmissionError, dumps, read_submission, short
from .validate import Validated, outcome_text, validate_submission

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
            if k in TIMING_FIELDS:
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


def catch_probability(n_cells: int, n_sampled: int, n_forged: int) -> float:
    """P(a uniform sample of n_sampled of n_cells contains at least one of n_forged forged cells): hypergeometric."""
    if n_forged <= 0:
        return 0.0
    if n_sampled >= n_cells or n_forged > n_cells - n_sampled:
        return 1.0
    return 1.0 - math.comb(n_cells - n_forged, n_sampled) / math.comb(n_cells, n_sampled)


def sample_size(n_cells: int, n_forged: int, confidence: float) -> int:
    """The smallest sample that catches a forgery of n_forged of n_cells cells with at least `confidence`."""
    for n in range(n_cells + 1):
        if catch_probability(n_cells, n, n_forged) >= confidence:
            return n
    return n_cells


@dataclass
class VerifyPlan:
    """Which cells `--verify` re-runs: every re-runnable cell of a method new to the board, and a random sample
    of the others sized so that a forgery of `catch` cells is caught with probability `confidence`."""

    indices: list[int]
    new_methods: list[str]
    sampled: int
    of: int
    catch: int
    probability: float

    def describe(self) -> str:
        new = (f"every cell of the {len(self.new_methods)} method(s) new to the board "
               f"({', '.join(self.new_methods)}) and " if self.new_methods else "")
        other = "other " if self.new_methods else ""
        return (f"re-ran {new}{self.sampled} random cell(s) of the {self.of} {other}re-runnable ones: a forgery of "
                f"{self.catch} cell(s) among them would have been caught with probability {self.probability:.2f}")


def plan_verification(v: Validated, accepted_methods: set, catch: int = 5, confidence: float = 0.95,
                      k: int | None = None, seed: int = 0) -> VerifyPlan:
    """Choose the cells to re-run. `k`: a sample of k cells (the old `--verify K`); None: sized by catch and
    confidence. Cells of (board, method) pairs that no accepted submission has are re-run in full."""
    able = rerunnable(v.doc)
    new = [] if k is not None else sorted({(c["board"], c["method"]) for c in (v.doc["cells"][i] for i in able)}
                                          - accepted_methods)
    mine = [i for i in able if (v.doc["cells"][i]["board"], v.doc["cells"][i]["method"]) in set(new)]
    rest = [i for i in able if i not in set(mine)]
    n = min(k, len(rest)) if k is not None else sample_size(len(rest), min(catch, len(rest)), confidence)
    picked = sorted(random.Random(seed).sample(rest, n))
    return VerifyPlan(sorted(mine + picked), [f"{b}:{m}" for b, m in new], n, len(rest), catch,
                      catch_probability(len(rest), n, min(catch, len(rest))))


def verify_cells(v: Validated, k: int, seed: int | None = None, log=lambda s: None,
                 chosen: list[int] | None = None) -> tuple[list[str], list[str], int]:
    """Re-run k random finished cells (or the `chosen` ones) in this process and compare their raw
    outputs with the submitted ones. (failures, notes, seed used)."""
    from ..harness.runner import describe_cell, run_cell
    from ..harness.store import ResultStore
    from ..harness.worker import WorkerCache
    from ..plugins import get_registry

    registry = get_registry()
    seed = random.SystemRandom().randrange(2 ** 31) if seed is None else int(seed)
    ok = rerunnable(v.doc, registry)
    if chosen is None:
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


def accepted_outcomes(leaderboards_dir: Path) -> dict[str, tuple[str, dict]]:
    """{cell key: (the accepted submission's file name, the cell)} for every accepted cell."""
    out: dict[str, tuple[str, dict]] = {}
    for p in sorted((Path(leaderboards_dir) / "submissions").glob("*.json")):
        for c in read_submission(p).get("cells", []):
            out.setdefault(c["key"], (p.name, c))
    return out


def accepted_cells(leaderboards_dir: Path) -> tuple[dict[str, str], set]:
    """{cell key: the accepted submission's file name} and the (board, method) pairs on the board."""
    outcomes = accepted_outcomes(leaderboards_dir)
    keys = {key: name for key, (name, _) in outcomes.items()}
    methods = {(c.get("board", "ssbm"), c["method"]) for _, c in outcomes.values()}
    return keys, methods


def check_extension_base(v: Validated, leaderboards_dir: Path) -> str:
    """A run of a known suite with methods added: every cell of the suite's own methods must be on the board,
    with the same outcome (timing aside); so the added methods are compared with the board's own cells.
    Returns the accepted file(s) the base cells are in."""
    accepted = accepted_outcomes(leaderboards_dir)
    files = set()
    for i, c in enumerate(v.doc["cells"]):
        if c["method"] in v.extends:
            continue
        where = f"cells[{i}] ({c['board']}, {c['model']}, {c['method']}, {c['utterance']}, {c['target']})"
        if c["key"] not in accepted:
            raise SubmissionError(f"{where}: not on the board; a run that adds method(s) "
                                  f"{', '.join(v.extends)} to suite {v.doc['suite']['name']!r} is compared with "
                                  f"the board's own run of that suite, so that run must be accepted first")
        name, theirs = accepted[c["key"]]
        if c["status"] != theirs["status"] or outcome_text(c["raw"]) != outcome_text(theirs["raw"]):
            raise SubmissionError(f"{where}: differs from the accepted cell with the same key (in {name}); the "
                                  f"suite's own cells must be unchanged when methods are added")
        files.add(name)
    return ", ".join(sorted(files))


def verification_path(dest: Path) -> Path:
    """Where what `--verify` re-ran for an accepted submission is kept: submissions/verified/<its name>."""
    return dest.parent / "verified" / dest.name


def run_verification(v: Validated, leaderboards_dir: Path, verify: int | str, seed: int | None, catch: int,
                     confidence: float, log) -> tuple[dict, list[str]]:
    """Re-run the cells `--verify` asks for ("auto": sized by catch and confidence, plus every cell of a method
    new to the board; an integer: that many random cells); refuse on any difference. (record, notes)."""
    import time

    from .implied import compare_implied, plan_implied

    seed = random.SystemRandom().randrange(2 ** 31) if seed is None else int(seed)
    implied_note = None
    if v.doc["schema_version"] >= 3:
        log("re-deriving the cells the suite implies (clean decodes and noise calibration, as a run plans them)")
        implied = plan_implied(v.suite, log)
        if implied.boards:
            wrong = compare_implied(v.doc, implied)
            if wrong:
                shown = "; ".join(wrong[:5]) + (f"; and {len(wrong) - 5} more" if len(wrong) > 5 else "")
                raise SubmissionError(f"cells: not the cells suite {v.suite.name!r} implies here: {shown}")
            n_here = sum(1 for c in v.doc["cells"] if c["board"] in implied.boards)
            implied_note = (f"the {len(implied.fields)} cell(s) of board(s) {', '.join(implied.boards)} are exactly "
                            f"those the suite implies here (utterances recognised, targets, noise levels re-derived)"
                            if "partial" not in v.doc else
                            f"the {n_here} cell(s) of board(s) {', '.join(implied.boards)} are among the "
                            f"{len(implied.fields)} the suite implies here (utterances recognised, targets, noise "
                            f"levels re-derived)")
    _, on_board = accepted_cells(leaderboards_dir)
    plan = plan_verification(v, on_board, catch, confidence, None if verify == "auto" else int(verify), seed)
    failures, notes, _ = verify_cells(v, len(plan.indices), seed, log, chosen=plan.indices)
    if failures:
        shown = "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
        raise SubmissionError(f"re-running cells (--seed {seed}) gave other outputs than submitted: {shown}")
    summary = plan.describe() + (f"; {implied_note}" if implied_note else "")
    notes.append(f"{summary} (--seed {seed})")
    record = {"verified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seed": seed,
              "cells_rerun": len(plan.indices), "new_methods": plan.new_methods, "sampled": plan.sampled,
              "of": plan.of, "catch": plan.catch, "probability": plan.probability,
              "implied_checked": implied_note is not None, "summary": summary}
    return record, notes


def add_submission(path: str | Path, leaderboards_dir: Path = LEADERBOARDS_DIR, suites_dir: Path | None = None,
                   verify: int | str = 0, seed: int | None = None, log=lambda s: None, catch: int = 5,
                   confidence: float = 0.95) -> tuple[Path, Validated, list[str]]:
    """Validate (and, with `verify`, re-run cells of) a submission, then store its canonical JSON under
    leaderboards_dir/submissions/, with what was verified beside it. Returns (path, validated, notes).

    A submission whose cells are already on the board (the same key: the same computation) is refused: a
    result is submitted once, however its file is dressed."""
    suites_dir = Path(suites_dir) if suites_dir else Path(leaderboards_dir) / "suites"
    doc = read_submission(path)
    v = validate_submission(doc, suites_dir)
    notes = list(v.notes)
    on_board, _ = accepted_cells(leaderboards_dir)
    if v.extends is not None:
        base = check_extension_base(v, Path(leaderboards_dir))
        notes.append(f"the suite's own cells are those on the board (in {base}), unchanged")
    for i, c in enumerate(doc["cells"]):
        if v.extends is not None and c["method"] not in v.extends:
            continue  # checked above: the board's own cells
        if c["key"] in on_board:
            raise SubmissionError(f"cells[{i}]: this cell ({c['board']}, {c['model']}, {c['method']}, "
                                  f"{c['utterance']}) is already on the leaderboard, in {on_board[c['key']]}: a "
                                  f"result is submitted once (a complete run that replaces a partial one: remove "
                                  f"the partial file first)")
    record = None
    if verify:
        record, vnotes = run_verification(v, Path(leaderboards_dir), verify, seed, catch, confidence, log)
        notes += vnotes
    dest_dir = Path(leaderboards_dir) / "submissions"
    dest = dest_dir / submission_filename(v)
    if dest.exists():
        raise SubmissionError(f"this submission is already in the leaderboard as {dest}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    if record is not None:
        verification_path(dest).parent.mkdir(exist_ok=True)
        verification_path(dest).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
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
            v = validate_submission(read_submission(p), suites_dir, check_corpus=check_corpus)
            record = verification_path(p)
            if record.is_file():
                v.notes.append(json.loads(record.read_text()).get("summary", ""))
            out.append((p, v))
        except SubmissionError as exc:
            raise SubmissionError(f"{p}: {exc}") from None
    return out
