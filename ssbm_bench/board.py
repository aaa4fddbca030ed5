"""The Board protocol: everything one leaderboard owns, in one object.

A board is a way of measuring explanations (SSBM, deletion by rank,
inter-seed agreement, stability, ...). It is a plugin like a
model or a method: a package registers a :class:`Board` subclass with
``register_boards(register)`` and ``register(BoardPlugin(...))``, and the
harness, the leaderboard, submissions, verification, publishing and the CLI
reach it only through this protocol. Nothing in the core names a board.

A board owns, from suite file to published page:

* its suite section (``section``, parsed and checked by :meth:`parse_settings`);
* planning its cells from a suite (:meth:`plan`, with a :class:`~ssbm_bench.harness.plan.PlanContext`
  that offers the shared corpus x models x methods x fills grid);
* computing one cell on a worker (:meth:`compute`);
* the stored row (a :class:`CellJob` carries its identity and stored parameters);
* rebuilding a job from a stored cell for ``leaderboard add --verify`` (:meth:`rebuild_job`);
* checking a submitted cell against the suite (:meth:`check_cell`, :attr:`cell_schema`);
* ranking rows with intervals (:meth:`rows`, producing :class:`~ssbm_bench.board_rows.BoardRow`);
* the per-unit values of the paired test (:meth:`per_unit`) and the score direction;
* titles, columns and details for markdown, CSV, JSON and HTML; its figures.

Jobs and results are plain picklable data, so a cell runs the same in
process, in a process pool or on a Ray worker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar



@dataclass(frozen=True)
class CellIdentity:
    """Where a cell sits on its board: the columns of its stored row.

    ``variant`` is a further axis some boards have (the stability board's
    N_s); it is not stored as a column but read back from the row's params
    by :meth:`Board.variant_of`."""

    corpus: str
    corpus_digest: str
    model: str
    method: str
    fill: str
    utterance: str
    target: str
    seed: int = 0
    variant: Any = None


@dataclass(frozen=True)
class CellJob:
    """One cell to compute: its key, its board, where it sits, what its row stores, and the board's own spec.

    ``spec`` is whatever the board's :meth:`Board.compute` needs (plugin
    references, thresholds, ...); it must pickle. ``order`` places the job
    in the run (cells of one explanation on different boards run next to
    each other, so a worker computes the map once)."""

    key: str
    board: str
    cell: CellIdentity
    params: dict
    spec: Any
    order: tuple = field(default=(), compare=False)


@dataclass
class CellResult:
    """What computing a cell gave: ``ok`` with the raw outcome, or ``skipped``/``error`` with the reason."""

    job: CellJob
    status: str  # ok | skipped | error
    reason: str | None = None
    raw: dict | None = None
    seconds: float = 0.0
    #: waveforms the cell asked its model about
    decodes: int = 0


class NotRerunnable(Exception):
    """A board cannot re-run this cell here (e.g. it needs seed families trained); verification says so."""


class Board(ABC):
    """Base class of every board plugin. Subclass it, fill in the class attributes, implement the abstract methods."""

    #: the board's name in suite files (``boards = [...]``), stores and submissions
    name: ClassVar[str]
    #: its name in titles (e.g. "SSBM")
    title: ClassVar[str]
    #: one line for ``ssbm-bench plugins``
    description: ClassVar[str] = ""
    #: position on the published page and in listings (lower first)
    order: ClassVar[int] = 100
    #: the score's direction
    higher_is_better: ClassVar[bool] = True
    #: the top-level suite section this board owns (``[ssbm]``), or None
    section: ClassVar[str | None] = None
    #: whether the board's cells cross the suite's [corpus] x [[models]] x [[methods]] x [[fills]]
    uses_grid: ClassVar[bool] = False
    #: a row field that splits the board's tables further (ISA's aggregation, stability's N_s)
    sub_key: ClassVar[str | None] = None
    #: what the cells' further axis is called in messages ("N_s"), when the board has one (``variant_of``)
    variant_name: ClassVar[str] = ""
    #: the unit the paired test compares neighbours over ("utterance"), or None for no paired test
    paired_unit: ClassVar[str | None] = None
    #: whether ``leaderboard add --verify`` can re-run this board's cells here (``rebuild_job``)
    rerunnable: ClassVar[bool] = False
    #: under each published table: what the score and its interval are
    score_note: ClassVar[str] = ""
    #: the columns of ``leaderboard --format csv``
    csv_fields: ClassVar[tuple[str, ...]] = ()
    #: a JSON Schema every submitted cell of this board must satisfy (``#/$defs/...`` of the envelope may be used)
    cell_schema: ClassVar[dict] = {}

    # --- the suite section ---------------------------------------------------

    def parse_settings(self, section: dict | None, listed: bool, where: str) -> Any:
        """This board's settings from its suite section (None when the suite has none).

        Called when the section is present or the board is listed in
        ``boards``. Raise :class:`~ssbm_bench.errors.SuiteError` naming the
        key and what was expected. The default: no section allowed."""
        if section is not None:
            from .errors import SuiteError

            raise SuiteError(f"{where}: board {self.name!r} takes no [{self.section}] section")
        return None

    def plugin_refs(self, settings: Any) -> list[tuple[str, Any]]:
        """(kind, PluginRef) of the plugins this board's cells use beyond the grid: checked before a run
        (names, parameters) and named in every cell's versions record."""
        return []

    def corpora(self, settings: Any) -> list:
        """PluginRefs of the corpora this board's cells use besides the suite's [corpus] (named in its section)."""
        return []

    def noise_calibration(self, settings: Any) -> Any:
        """The grid's noise calibration settings, if this board's section sets them (else None)."""
        return None

    # --- planning and computing ----------------------------------------------

    @abstractmethod
    def plan(self, settings: Any, ctx: Any) -> list[CellJob]:
        """The cells of this board for the suite; `ctx` is a :class:`~ssbm_bench.harness.plan.PlanContext`
        (``ctx.job(...)`` makes a cell with its key, ``ctx.grid()`` gives the shared grid)."""

    @abstractmethod
    def compute(self, job: CellJob, worker: Any) -> CellResult:
        """Compute one cell on a worker (``worker`` is the worker's plugin instances and caches).

        A plugin that fails must become an ``error`` result naming the
        plugin and the cell; anything that escapes is caught by the harness."""

    def variant_of(self, params: dict) -> Any:
        """The cell's further axis read back from its stored params (see :class:`CellIdentity`)."""
        return None

    def describe_change(self, key: str, old: Any, new: Any) -> str | None:
        """Why a rerun recomputes a cell, for a key field only this board has (None: the generic wording)."""
        return None

    # --- submissions and verification ------------------------------------------

    def check_cell(self, i: int, cell: dict, settings: Any, checks: Any) -> None:
        """Check one submitted cell against the suite (`checks`: a :class:`~ssbm_bench.submission.checks.CellChecks`);
        raise SubmissionError naming the field."""

    def check_complete(self, cells: list[dict], settings: Any, checks: Any) -> None:
        """After every cell passed `check_cell`: the board's submitted cells must be all a run of the suite
        gives, so that no one is cherry-picked (grid boards: ``checks.grid_complete``)."""

    def rebuild_job(self, cell: dict, settings: Any, ctx: Any) -> CellJob:
        """The job that re-computes a submitted cell here (``leaderboard add --verify``); `ctx` is a
        :class:`~ssbm_bench.submission.verify.VerifyContext` (the suite, this process's plugin instances)."""
        raise NotRerunnable(f"the {self.name} board cannot re-run its cells here")

    # --- rows, statistics, formats, figures ------------------------------------

    @abstractmethod
    def rows(self, cells: list) -> list:
        """Ranked :class:`~ssbm_bench.board_rows.BoardRow` s with intervals, recomputed from the stored cells
        (:class:`~ssbm_bench.harness.store.CellRow`)."""

    def per_unit(self, cells: list, row: dict) -> dict[str, float]:
        """{unit: score} of one row's cells, for the paired test between neighbours (``paired_unit``)."""
        return {}

    @abstractmethod
    def to_markdown(self, rows: list) -> str:
        """The board's tables for ``leaderboard --format markdown``."""

    def to_csv(self, rows: list) -> str:
        """``leaderboard --format csv``: the ``csv_fields`` of every row, then the ssbm-bench version."""
        from .board_rows import rows_to_csv

        return rows_to_csv(rows, self.csv_fields)

    def to_json(self, rows: list, with_curve: bool = False) -> str:
        """``leaderboard --format json``: every row's fields (details flat beside the shared ones)."""
        from .board_rows import rows_to_json

        return rows_to_json(rows, with_curve=with_curve)

    def details(self, row: dict) -> str:
        """What the published page shows beside the score, in its details column."""
        return ""

    def figures(self, cells: list, out_dir: Path, suite: str | None = None) -> list[Path]:
        """Draw the board's figures from its cells into out_dir; return the PNG paths."""
        return []

    def rank_first(self, row: dict) -> bool:
        """Sorts before the score when the published page ranks rows of several sources (True: after the rest)."""
        return False

    def table_title(self, row: dict) -> str:
        """The heading of a published table, from its first row."""
        from .board_rows import shown_label

        extra = f", {self.sub_key} `{row.get(self.sub_key)}`" if self.sub_key else ""
        return (f"{self.title} — suite `{row['suite']}`, corpus `{shown_label(row['corpus'])}` (digest "
                f"`{str(row.get('corpus_digest', ''))[:12]}`), model `{shown_label(row['model'])}`{extra}")
