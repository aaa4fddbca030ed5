"""What a board plans its cells with: the suite, the plugins, the store, the grid, and cell keys.

A cell's key is the digest of everything that determines its raw outcome:
the protocol version, the suite's name, the corpus digest and the fields
the board gives (plugin references and identities, utterance, target, seed,
thresholds, noise level, STFT, ...). An unchanged rerun finds every key in
the store and computes nothing; the fields are recorded with the cell so a
rerun that does compute can say what changed (harness.recompute).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from ..audio import StftConfig
from ..board import CellIdentity, CellJob
from ..types import Utterance
from .store import CellRow, ResultStore
from .suite import Suite

PROTOCOL_VERSION = "ssbm-1"


def canonical(fields: dict) -> str:
    """Key fields as canonical JSON (keys sorted, anything else as text): what a cell's key is the SHA-256 of."""
    return json.dumps(fields, sort_keys=True, default=str)


def digest_of(text: str) -> str:
    """A cell's key: the SHA-256 of its canonical key fields."""
    return hashlib.sha256(text.encode()).hexdigest()


def key_text(suite: Suite, corpus_digest: str, job_fields: dict) -> str:
    """Everything a cell's key is a digest of, as canonical JSON (recorded with the cell, parsed, so a rerun
    can say what changed, and a submission's key can be checked)."""
    return canonical({"protocol": PROTOCOL_VERSION, "suite": suite.name, "corpus": corpus_digest, **job_fields})


def cell_row(suite: Suite, key: str, board: str, cell: CellIdentity, status: str, reason: str | None,
             raw: dict | None, params: dict, versions: dict, seconds: float | None = None) -> CellRow:
    """The stored row of a cell: the run's suite, the cell's identity, and what it gave."""
    return CellRow(key=key, board=board, suite=suite.name, suite_digest=suite.digest, corpus=cell.corpus,
                   corpus_digest=cell.corpus_digest, model=cell.model, method=cell.method, fill=cell.fill,
                   utterance=cell.utterance, target=cell.target, seed=cell.seed, status=status, reason=reason,
                   result=None, raw=raw, params=params, versions=versions, seconds=seconds)


@dataclass
class PlanContext:
    """Handed to ``Board.plan``: read the suite, load plugins through ``worker``, make jobs with ``job``."""

    suite: Suite
    registry: Any
    #: the planning process's plugin instances and caches (harness.worker.WorkerCache)
    worker: Any
    store: ResultStore
    #: the run's summary (RunSummary): boards may add per-model facts to ``summary.models``
    summary: Any
    #: digest of the suite's [corpus] (it enters every key) and its utterances
    corpus_digest: str
    utterances: list[Utterance]
    versions: dict
    finished: set[str]
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)
    cfg: StftConfig = StftConfig()
    #: key -> the fields it was made of (parsed key_text), for the cells_fields table
    fields_of: dict = field(default_factory=dict)
    #: keys of rows stored while planning (part of the run's plan)
    stored_keys: list = field(default_factory=list)
    #: whether long planning steps (clean pass, calibration) show progress bars
    progress: bool = False
    _grid: Any = None

    def key(self, fields: dict) -> str:
        text = key_text(self.suite, self.corpus_digest, fields)
        key = digest_of(text)
        self.fields_of[key] = json.loads(text)
        return key

    def job(self, board: str, fields: dict, cell: CellIdentity, params: dict, spec: Any,
            order: tuple = ()) -> CellJob:
        """A cell to compute: its key is made from `fields`; its row will hold `cell` and `params`."""
        return CellJob(self.key(fields), board, cell, params, spec, order)

    def grid(self):
        """The prepared grid (harness.grid), built on first use and shared by every board of the run."""
        if self._grid is None:
            from .grid import prepare_grid

            self._grid = prepare_grid(self)
        return self._grid

    def store_now(self, board: str, fields: dict, cell: CellIdentity, params: dict, status: str,
                  reason: str) -> str:
        """Store a cell decided while planning (a skip: the board cannot measure this model) and plan its key.

        Its key is the digest of `fields`, recorded with it like every cell's."""
        key = self.key(fields)
        self.stored_keys.append(key)
        self.store.put_cell_extras([(key, self.fields_of[key])], [])
        if key not in self.finished:
            self.store.put_cell(cell_row(self.suite, key, board, cell, status, reason, None, params, self.versions))
        return key
