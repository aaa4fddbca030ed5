"""One row shape for every board, its ranking, and its CSV and JSON forms.

A :class:`BoardRow` is identity (board, suite, corpus, model, method, fill
and their digests), score with its interval, rank, counts (cells,
utterances, skipped, errors) and ``details``: whatever else the board
reports (SSBM's best threshold, ISA's baseline, stability's N_ce, ...).
Details read as attributes (``row.best_threshold``) and are written flat
beside the shared fields in JSON and CSV, so a row reads the same as the
board's own table. JSON has no NaN: a missing number is null. CSV has a
fixed column list per board plus the ssbm-bench version.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

#: the fields every row has, in the order rows are written
IDENTITY = ("board", "suite", "suite_digest", "corpus", "corpus_digest", "model", "method", "fill")


@dataclass
class BoardRow:
    board: str
    suite: str
    suite_digest: str
    corpus: str
    corpus_digest: str
    model: str
    method: str
    fill: str
    score: float
    ci_low: float
    ci_high: float
    #: cells (or inputs, excerpts: what the board counts)
    n: int = 0
    #: utterances behind the row; None for boards that do not count them (then absent from JSON)
    n_utterances: int | None = None
    skipped: int = 0
    errors: int = 0
    rank: int = 0
    versions: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # only called for names that are not fields: the board's details
        details = self.__dict__.get("details")
        if details is not None and name in details:
            return details[name]
        raise AttributeError(f"{type(self).__name__} of board {self.__dict__.get('board')!r} has no {name!r}")

    def to_dict(self, with_curve: bool = False) -> dict:
        d = {k: getattr(self, k) for k in (*IDENTITY, "score", "ci_low", "ci_high", "n", "skipped", "errors",
                                           "rank", "versions")}
        if self.n_utterances is not None:
            d["n_utterances"] = self.n_utterances
        d.update(self.details)
        if not with_curve:
            d.pop("curve", None)
        return d


def nan_row(board: str, identity: Sequence, versions: dict, **counts_and_details: Any) -> BoardRow:
    """A row of a group with no finished cell: NaN score and interval, its counts and details."""
    nan = float("nan")
    fields = {k: counts_and_details.pop(k) for k in ("n", "n_utterances", "skipped", "errors")
              if k in counts_and_details}
    return BoardRow(board, *identity, score=nan, ci_low=nan, ci_high=nan, versions=versions,
                    details=counts_and_details, **fields)


def finite_or(x: float, default: float) -> float:
    return x if x is not None and np.isfinite(x) else default


def rank_rows(rows: list[BoardRow], group: Callable[[BoardRow], tuple], higher_is_better: bool = True,
              first: Callable[[BoardRow], Any] = lambda r: False,
              order: Callable[[BoardRow], tuple] | None = None) -> list[BoardRow]:
    """Rank rows within each table (`group`), best first, non-finite scores last; ties by method and fill.

    `first(row)` sorts before the score (ISA puts model-independent methods
    last); rows come back sorted by `order` (default: `group`) and rank."""
    tables: dict[tuple, list[BoardRow]] = defaultdict(list)
    for r in rows:
        tables[group(r)].append(r)
    sign = -1.0 if higher_is_better else 1.0
    for members in tables.values():
        members.sort(key=lambda r: (first(r), finite_or(sign * r.score if r.score is not None else None, np.inf),
                                    r.method, r.fill))
        for i, r in enumerate(members, 1):
            r.rank = i
    key = order or group
    rows.sort(key=lambda r: (*key(r), r.rank))
    return rows


def fmt(x: Any, spec: str = ".2f") -> str:
    """A number for a table: '—' for None, NaN and infinities."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return format(x, spec)


def json_safe(x: Any) -> Any:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    return x


def rows_to_json(rows: Sequence[Any], **to_dict_kwargs: Any) -> str:
    return json.dumps([json_safe(r.to_dict(**to_dict_kwargs)) for r in rows], indent=2, sort_keys=True) + "\n"


def rows_to_csv(rows: Sequence[Any], fields: Sequence[str], extra_fields: Sequence[str] = (),
                extra: Callable[[Any], dict] | None = None) -> str:
    """One CSV line per row: `fields` read off the row, then `extra(row)`'s columns, then the version."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*fields, *extra_fields, "ssbm_bench_version"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        d = {k: getattr(r, k) for k in fields}
        if extra is not None:
            d.update(extra(r))
        d["ssbm_bench_version"] = r.versions.get("ssbm-bench", "")
        w.writerow(d)
    return buf.getvalue()


def pct(x: Any) -> str:
    """A share as a whole percentage for a table: '—' for None."""
    return "—" if x is None else f"{100 * x:.0f}%"


def group_cells(cells: Iterable[Any]) -> dict[tuple, list]:
    """Cells by row identity (suite, its digest, corpus, its digest, model, method, fill), in first-seen order."""
    groups: dict[tuple, list] = defaultdict(list)
    for c in cells:
        groups[(c.suite, c.suite_digest, c.corpus, c.corpus_digest, c.model, c.method, c.fill)].append(c)
    return groups


def outcome_counts(members: Sequence[Any]) -> dict:
    """The counts every row reports besides its finished cells: skipped and failed ones."""
    return {"skipped": sum(c.status == "skipped" for c in members), "errors": sum(c.status == "error" for c in members)}


def failure_reasons(members: Sequence[Any]) -> list[str]:
    """The distinct first lines of the reasons of the cells that did not finish."""
    return sorted({(c.reason or "").splitlines()[0] for c in members if c.status != "ok" and c.reason})


def by_table(rows: Iterable[Any], key: Callable[[Any], tuple]) -> dict[tuple, list]:
    """Rows per table (`key`), in order of first appearance."""
    tables: dict[tuple, list] = defaultdict(list)
    for r in rows:
        tables[key(r)].append(r)
    return tables


def unit_means(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    """{unit: mean of its values}: a row's score per utterance, for the paired test."""
    per: dict[str, list[float]] = defaultdict(list)
    for unit, value in pairs:
        per[unit].append(value)
    return {u: float(np.mean(v)) for u, v in per.items()}


def reasons_note(rows: Sequence[Any], prefix: str = "", suffix: str = "") -> list[str]:
    """Markdown lines under a table: the distinct skip and error reasons of its rows (none when there are none)."""
    reasons = sorted({x for r in rows for x in r.skip_reasons})
    return ["\n" + prefix + "; ".join(reasons) + suffix] if reasons else []


_PATH_PARAM = re.compile(r"(?<=[=])([/~][^,\]]*)")


def shown_label(label: str) -> str:
    """A plugin label for a heading: a parameter that is an absolute path shows as its last component
    (``folder[path=/home/me/recordings]`` -> ``folder[path=.../recordings]``), so a page shows no one's home
    directory; the label itself, which identifies the cells, is unchanged (the digest beside it tells corpora
    apart)."""
    def last(m: re.Match) -> str:
        tail = m.group(1).rstrip("/").rsplit("/", 1)[-1]
        return ".../" + tail if tail and tail != "~" else m.group(1)

    return _PATH_PARAM.sub(last, str(label))
