"""Results -> ranked tables, through each board.

Scores are recomputed from the raw outcomes in the store, never from a
cached number, so a change to scoring re-scores every stored run without
decoding anything again. Which board, and how its rows read in markdown,
CSV and JSON, is the board's own business (ssbm_bench.board.Board).
"""

from __future__ import annotations

from .harness.store import ResultStore
from .harness.suite import DEFAULT_BOARD
from .plugins import get_registry

FORMATS = ("markdown", "csv", "json")


def board_names(registry=None) -> list[str]:
    return [b.name for b in (registry or get_registry()).boards()]


def build_leaderboard(store: ResultStore, board: str = DEFAULT_BOARD, registry=None) -> list:
    """The board's rows from every cell of that board in the store (through each suite's latest plan)."""
    return (registry or get_registry()).board(board).rows(list(store.cells(board=board)))


def render(rows: list, fmt: str, board: str | None = None, registry=None) -> str:
    """Rows in one of FORMATS, written by their board (the rows' own board unless `board` names one)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    name = board or (rows[0].board if rows else DEFAULT_BOARD)
    b = (registry or get_registry()).board(name)
    return {"markdown": b.to_markdown, "csv": b.to_csv, "json": b.to_json}[fmt](rows)


def to_markdown(rows: list) -> str:
    return render(rows, "markdown")


def to_csv(rows: list) -> str:
    return render(rows, "csv")


def to_json(rows: list) -> str:
    return render(rows, "json")
