"""GridBoard: the Board protocol filled in for boards that score the grid's explanations.

Most boards measure one method's map of one target on one utterance (SSBM,
deletion by rank, localisation, ...): their cells are the points of the
shared grid (harness.grid), they re-run a submitted cell from its plugin
labels, they check a submitted cell against the suite's corpus, models,
methods and fills, and a run must carry every method over the same words.
A GridBoard does all of that; a subclass says only what is its own:

* ``key_fields(point, settings)``: what else its cell's key is made of
  (default: the point's fields and the board's name);
* ``row_params(spec, settings, point)``: what else its row stores;
* ``job_spec(grid, settings, point)`` and ``spec_from_params(grid, params)``:
  what ``compute`` receives, at planning and when a cell is re-run;
* ``check_raw(i, cell, settings)``: the raw outcome against the suite;
* ``wants(point)``: whether a point is one of its cells (default: all);
* ``compute``, ``rows``, ``to_markdown`` and the rest of the protocol.
"""

from __future__ import annotations

from typing import Any

from .board import Board, CellJob
from .harness.grid import GridPoint, GridSpec, grid_identity, grid_params, grid_spec, spec_from_cell


class GridBoard(Board):
    uses_grid = True
    rerunnable = True
    paired_unit = "utterance"

    # --- what a grid board says of its own cells -----------------------------------------------

    def wants(self, point: GridPoint) -> bool:
        """Whether this grid point is one of the board's cells."""
        return True

    def key_fields(self, point: GridPoint, settings: Any) -> dict:
        """The fields of the cell's key: the explanation's and what else determines the outcome."""
        return {**point.fields, "board": self.name}

    def row_params(self, spec: GridSpec, settings: Any, point: GridPoint) -> dict:
        """What the cell's row stores besides its columns (and rebuilds the spec from, for --verify)."""
        return grid_params(spec)

    def job_spec(self, grid: GridSpec, settings: Any, point: GridPoint) -> Any:
        """What ``compute`` receives for a planned cell (default: the explanation itself)."""
        return grid

    def spec_from_params(self, grid: GridSpec, params: dict) -> Any:
        """What ``compute`` receives for a stored or submitted cell (default: the explanation itself)."""
        return grid

    def check_raw(self, i: int, cell: dict, settings: Any) -> None:
        """A finished submitted cell's raw outcome against the suite; raise SubmissionError naming the field."""

    # --- the protocol, done once for every grid board -------------------------------------------

    def plan(self, settings: Any, ctx: Any) -> list[CellJob]:
        jobs = []
        for p in ctx.grid().points:
            if not self.wants(p):
                continue
            spec = grid_spec(ctx.suite, p, ctx.cfg)
            jobs.append(ctx.job(self.name, self.key_fields(p, settings),
                                grid_identity(ctx.suite, ctx.corpus_digest, spec), self.row_params(spec, settings, p),
                                self.job_spec(spec, settings, p), order=(p.index, self.order)))
        return jobs

    def check_cell(self, i: int, cell: dict, settings: Any, checks: Any) -> None:
        checks.grid_cell(i, cell)
        if cell["status"] == "ok":
            self.check_raw(i, cell, settings)

    def check_complete(self, cells: list[dict], settings: Any, checks: Any) -> None:
        checks.grid_complete(self.name, cells)

    def rebuild_job(self, cell: dict, settings: Any, ctx: Any) -> CellJob:
        spec = spec_from_cell(cell, ctx.suite)
        return CellJob(cell["key"], self.name, grid_identity(ctx.suite, "", spec), cell["params"],
                       self.spec_from_params(spec, cell["params"]))
