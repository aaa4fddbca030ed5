"""The published leaderboard: README.md, CSV, JSON and a static HTML page.

Rows come from accepted submissions (leaderboards/submissions/, re-scored
from their cells when read; a version-2 submission carries all four
boards) and from any results stores named on the command line; one table
per board, suite, corpus and model (for ISA also per aggregation, for
stability per N_s: each board's ``sub_key``). Beside each table of a board
with a paired unit, neighbours in rank are compared by a paired test over utterances
(`ssbm_bench.statistics.paired_test`): when the per-utterance scores of two methods do not
differ significantly, the page says so, because a rank alone would claim
more than the data holds. The HTML page is one self-contained file: inline
CSS and vanilla JavaScript (click a header to sort), no network requests;
figures are PNG files beside it.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


from .plugins import get_registry
from .statistics import ALPHA, EXACT_UP_TO, paired_test, smallest_p


# --- gathering rows ----------------------------------------------------------

@dataclass
class Source:
    """One set of cells: an accepted submission or a results store."""

    label: str
    cells: list
    rows: dict  # board -> list of row dicts
    #: who, when and how it was checked, for the page's list of sources
    about: str = ""
    #: for a submission declared partial: how partial and why (its rows get tables of their own, unranked
    #: against complete runs); empty for a complete one
    partial: str = ""


def source_from_submission(v, filename: str) -> Source:
    who = v.doc.get("submitter")
    label = f"{who} ({filename})" if who else filename
    checked = "; ".join(n for n in v.notes if n) or "rows re-scored from its cells; no cell re-run here"
    about = (f"submitted by {who or 'an unnamed submitter'}, created {v.doc.get('created', '?')}, suite "
             f"{v.doc['suite']['name']}, {len(v.cells)} cells; verification: {checked}")
    declared = v.doc.get("partial")
    partial = (f"{len(v.cells)} of {declared['planned']} planned cells: {declared['reason']}" if declared else "")
    cells, rows = v.cells, v.rows
    if v.extends is not None:  # a known suite with methods added: only theirs; the others are the board's own
        cells = [c for c in cells if c.method in v.extends]
        rows = {b: [r for r in rs if r["method"] in v.extends] for b, rs in rows.items()}
    return Source(label, cells, rows, about, partial)


def source_from_store(db: str | Path) -> Source:
    """A results store: its rows of every board, as a submission has them."""
    from .harness.store import ResultStore
    from .submission import board_rows_json

    with ResultStore(db) as store:
        cells = list(store.cells())
    return Source(str(db), cells, board_rows_json(cells), f"a results store, {len(cells)} cells (not a submission: "
                                                           f"nothing verified)")


@dataclass
class Table:
    board: str
    suite: str
    corpus: str
    corpus_digest: str
    model: str
    rows: list  # dicts, ranked
    notes: list[str] = field(default_factory=list)
    #: the value of the board's sub_key in this table (ISA's aggregation, stability's N_s), else None
    sub: object = None
    title: str = ""
    #: the title for markdown: names inside code spans cannot close them (a backtick becomes ')
    md_title: str = ""
    score_note: str = ""
    #: whether the table has a details column (its board reports something beside the score)
    with_details: bool = False
    #: a partial submission's own table: who and how partial (never ranked against complete runs); else empty
    partial: str = ""


def _row_cells(source: Source, row: dict) -> list:
    return [c for c in source.cells if c.board == row["board"] and c.model == row["model"]
            and c.method == row["method"] and c.fill == row["fill"] and c.suite == row["suite"]
            and c.suite_digest == row.get("suite_digest", c.suite_digest)]


def build_tables(sources: list[Source], registry=None) -> list[Table]:
    """One table per board, suite, corpus, model (and the board's sub_key), ranked across sources; neighbours
    of a board with a paired unit get the paired test. A submission declared partial gets tables of its own:
    a subset of a suite's cells is never ranked against complete runs."""
    registry = registry or get_registry()
    boards = registry.boards()
    order = {b.name: i for i, b in enumerate(boards)}
    grouped: dict[tuple, list] = defaultdict(list)
    for s in sources:
        for board in boards:
            for r in s.rows.get(board.name, []):
                sub = r.get(board.sub_key) if board.sub_key else None
                apart = f"{s.label}: {s.partial}" if s.partial else ""
                grouped[(board.name, r["suite"], r["corpus"], r["model"], sub, apart)].append(
                    (s, dict(r, source=s.label, details=board.details(r))))
    tables = []
    for key in sorted(grouped, key=lambda k: _table_order(k, order)):
        board = registry.board(key[0])
        members = grouped[key]
        sign = -1.0 if board.higher_is_better else 1.0

        def rank_key(m, sign=sign, board=board):
            score = m[1]["score"]
            return (board.rank_first(m[1]), sign * score if score is not None else math.inf, m[1]["method"],
                    m[1]["fill"], m[1]["source"])

        members.sort(key=rank_key)
        rows = []
        for i, (s, r) in enumerate(members, 1):
            r["rank"] = i
            rows.append(r)
        safe = {k: str(rows[0].get(k, "")).replace("`", "'").replace("\n", " ") for k in ("suite", "corpus", "model")}
        t = Table(board.name, key[1], key[2], rows[0].get("corpus_digest", ""), key[3], rows, sub=key[4],
                  title=board.table_title(rows[0]), md_title=board.table_title({**rows[0], **safe}),
                  score_note=board.score_note,
                  with_details=any(r.get("details") for r in rows), partial=key[5])
        if t.partial:
            t.title += f" — partial run, not ranked against complete runs ({t.partial})"
            t.md_title += f" — partial run, not ranked against complete runs ({md(t.partial)})"
        if board.paired_unit:
            _paired_notes(t, board, members)
        tables.append(t)
    return tables


def _paired_notes(t: Table, board, members: list) -> None:
    unit = board.paired_unit
    for (s1, r1), (s2, r2) in zip(members, members[1:]):
        if r1["score"] is None or r2["score"] is None:
            continue
        diff, n, p = paired_test(board.per_unit(_row_cells(s1, r1), r1), board.per_unit(_row_cells(s2, r2), r2))
        r1.setdefault("vs_next", {"method": r2["method"], "fill": r2["fill"], "n": n, "p": p})
        if p >= ALPHA:
            floor = smallest_p(n)
            t.notes.append(f"{_name(r1)} and {_name(r2)} (ranks {r1['rank']} and {r2['rank']}) are not "
                           f"significantly different: paired sign-flip test over {n} {unit}(s), p = {p:.3g}"
                           + (f" (with {n} {unit}s no p below {floor:.3g} is possible)"
                              if 0 < n <= EXACT_UP_TO and floor >= ALPHA else ""))
        else:
            t.notes.append(f"{_name(r1)} ranks above {_name(r2)}: paired sign-flip test over {n} {unit}(s), "
                           f"p = {p:.3g}")


def _table_order(key: tuple, order: dict) -> tuple:
    """Boards in page order, then suite, corpus, model, then the sub-table (N_s numerically); a partial run's
    table after the complete ones'."""
    board, suite, corpus, model, sub, apart = key
    sub_order = (0, sub, "") if isinstance(sub, (int, float)) else (1, 0, str(sub))
    return (order[board], suite, corpus, model, sub_order, apart)


def _name(row: dict) -> str:
    return f"{row['method']} ({row['fill']})"


# --- writers -----------------------------------------------------------------

def _f(x, spec: str = ".2f") -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


COLUMNS = [  # (header, key, kind, format)
    ("rank", "rank", "number", "d"),
    ("method", "method", "text", None),
    ("fill", "fill", "text", None),
    ("score", "score", "number", ".3f"),
    ("95% CI low", "ci_low", "number", ".3f"),
    ("95% CI high", "ci_high", "number", ".3f"),
    ("cells", "n", "number", "d"),
    ("utterances", "n_utterances", "number", "d"),
    ("details", "details", "text", None),
    ("source", "source", "text", None),
]

_MD_ESCAPES = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "`": "'", "\n": " ", "\r": " "})


def md(text) -> str:
    """A name or note as inert markdown text: no table cell break, no HTML, no code span, on one line.
    (Names come from submitted files and stores: nothing in them may become markup on the page.)"""
    return str(text if text is not None else "").translate(_MD_ESCAPES)


def to_markdown(tables: list[Table], n_submissions: int, n_stores: int, about: list | None = None) -> str:
    out = ["# ssbm-bench leaderboard", "",
           "Generated by `ssbm-bench leaderboard publish` from "
           f"{n_submissions} accepted submission(s) in `submissions/`"
           + (f" and {n_stores} results store(s)" if n_stores else "") + ". Do not edit by hand: add a "
           "submission with `ssbm-bench leaderboard add FILE` and publish again. Neighbours in rank are compared "
           f"by a paired sign-flip test over utterances (α = {ALPHA}).", ""]
    if not tables:
        out += ["No results yet.", ""]
    if about:
        out += ["Sources:", ""] + [f"- {md(label)}: {md(text)}" for label, text in about] + [""]
    for t in tables:
        out += [f"## {t.md_title}", "", f"_{t.score_note}._", ""]
        details = t.with_details
        out.append("| rank | method | fill | score | 95% CI | cells | utterances |"
                   + (" details |" if details else "") + " source |")
        out.append("|---:|---|---|---:|---|---:|---:|" + ("---|" if details else "") + "---|")
        for r in t.rows:
            out.append(f"| {r['rank']} | {md(r['method'])} | {md(r['fill'])} | {_f(r['score'])} | "
                       f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}] | {r['n']} | {r.get('n_utterances', '')} | "
                       + (f"{md(r['details'])} | " if details else "") + f"{md(r['source'])} |")
        out.append("")
        for n in t.notes:
            out.append(f"- {md(n)}")
        if t.notes:
            out.append("")
    return "\n".join(out).rstrip() + "\n"


CSV_FIELDS = ["board", "suite", "corpus", "corpus_digest", "model", "rank", "method", "fill", "score", "ci_low",
              "ci_high", "n", "n_utterances", "source", "suite_digest", "next_method", "next_fill", "paired_n",
              "paired_p", "aggregation", "input_type", "baseline", "n_samples", "full_match", "at_least_two",
              "n_ce", "details", "partial"]


def csv_safe(value):
    """A text cell a spreadsheet will not run: one that starts like a formula (=, +, -, @) is quoted with '."""
    if isinstance(value, str) and len(value) > 1 and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(tables: list[Table]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for t in tables:
        for r in t.rows:
            nxt = r.get("vs_next") or {}
            row = {**r, "next_method": nxt.get("method", ""), "next_fill": nxt.get("fill", ""),
                   "paired_n": nxt.get("n", ""), "paired_p": nxt.get("p", ""), "partial": t.partial}
            w.writerow({k: csv_safe(v) for k, v in row.items()})
    return buf.getvalue()


def _sub_key(board: str) -> str:
    return get_registry().board(board).sub_key


def to_json(tables: list[Table]) -> str:
    return json.dumps({"alpha": ALPHA, "tables": [
        {"board": t.board, "suite": t.suite, "corpus": t.corpus, "corpus_digest": t.corpus_digest, "model": t.model,
         **({_sub_key(t.board): t.sub} if _sub_key(t.board) else {}), "rows": t.rows, "notes": t.notes,
         **({"partial": t.partial} if t.partial else {})}
        for t in tables]}, indent=2, sort_keys=True, default=str) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; }
th { cursor: pointer; user-select: none; background: #f4f4f4; text-align: left; }
th.num, td.num { text-align: right; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""

# Sorting: click a header; numbers sort by their data-value, text by content;
# a second click reverses. No request leaves the page.
_JS = """
function sortTable(th) {
  var table = th.closest('table'), body = table.tBodies[0];
  var col = Array.prototype.indexOf.call(th.parentNode.children, th);
  var numeric = th.getAttribute('data-type') === 'number';
  var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
  Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute('aria-sort'); });
  th.setAttribute('aria-sort', dir);
  var rows = Array.prototype.slice.call(body.rows);
  function key(row) {
    var cell = row.cells[col];
    if (!numeric) return cell.textContent;
    var v = parseFloat(cell.getAttribute('data-value'));
    return isNaN(v) ? -Infinity : v;
  }
  rows.sort(function (a, b) {
    var x = key(a), y = key(b), c = numeric ? x - y : String(x).localeCompare(String(y));
    return dir === 'ascending' ? c : -c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('table.board th').forEach(function (th) {
    th.addEventListener('click', function () { sortTable(th); });
  });
  document.body.setAttribute('data-ready', '1');
});
"""


def _cell_html(r: dict, key: str, kind: str, spec: str | None) -> str:
    v = r.get(key)
    if kind == "number":
        finite = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        shown = format(v, spec) if finite else "—"
        value = repr(float(v)) if finite else "NaN"
        return f'<td class="num" data-value="{value}">{html.escape(shown)}</td>'
    return f"<td>{html.escape(str(v if v is not None else ''))}</td>"


def to_html(tables: list[Table], figures: list[str], n_submissions: int, n_stores: int,
            about: list | None = None) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             # no request may leave the page: scripts and styles are inline, images are local files
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' data:; "
             "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
             "<title>ssbm-bench leaderboard</title>", f"<style>{_CSS}</style>", f"<script>{_JS}</script>",
             "</head><body>", "<h1>ssbm-bench leaderboard</h1>",
             f"<p class=\"note\">From {n_submissions} accepted submission(s)"
             + (f" and {n_stores} results store(s)" if n_stores else "")
             + f". Click a column header to sort. Neighbours in rank are compared by a paired sign-flip test over "
               f"utterances (α = {ALPHA}).</p>"]
    if not tables:
        parts.append("<p>No results yet.</p>")
    if about:
        parts.append('<ul class="note sources">' + "".join(f"<li><b>{e(label)}</b>: {e(text)}</li>"
                                                            for label, text in about) + "</ul>")
    for i, t in enumerate(tables):
        parts.append(f"<h2>{e(t.title.replace('`', ''))}</h2>")
        parts.append(f'<p class="note">{e(t.score_note)}.</p>')
        parts.append(f'<table class="board" id="table-{i}"><thead><tr>')
        for header, _, kind, _ in COLUMNS:
            cls = ' class="num"' if kind == "number" else ""
            parts.append(f'<th data-type="{kind}"{cls}>{e(header)}</th>')
        parts.append("</tr></thead><tbody>")
        for r in t.rows:
            parts.append("<tr>" + "".join(_cell_html(r, k, kind, spec) for _, k, kind, spec in COLUMNS) + "</tr>")
        parts.append("</tbody></table>")
        if t.notes:
            parts.append("<ul class=\"note\">" + "".join(f"<li>{e(n)}</li>" for n in t.notes) + "</ul>")
    if figures:
        parts.append("<h2>Figures</h2>")
        for f in figures:
            parts.append(f'<figure><img src="{e(f)}" alt="{e(f)}" loading="lazy"><figcaption class="note">'
                         f"{e(f)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def publish(out: Path, leaderboards_dir: Path, suites_dir: Path, dbs: list | None = None,
            figures: bool = True) -> list[Path]:
    from .submission import load_accepted

    sources = [source_from_submission(v, p.name) for p, v in load_accepted(leaderboards_dir, suites_dir)]
    stores = [source_from_store(db) for db in (dbs or [])]
    tables = build_tables(sources + stores)
    about = [(s.label, s.about) for s in sources + stores]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig_paths: list[str] = []
    if figures:
        # one copy of a cell that two sources share (the same key is the same computation)
        cells = list({c.key: c for s in sources + stores for c in s.cells}.values())
        for board in get_registry().boards():
            mine = [c for c in cells if c.board == board.name]
            if mine:
                fig_paths += [p.relative_to(out).as_posix() for p in board.figures(mine, out / "figures")]
    else:
        fig_dir = out / "figures"
        if fig_dir.is_dir():
            fig_paths = sorted(p.relative_to(out).as_posix() for p in fig_dir.glob("*.png"))
    written = []
    for name, text in (("README.md", to_markdown(tables, len(sources), len(stores), about)),
                       ("leaderboard.csv", to_csv(tables)), ("leaderboard.json", to_json(tables)),
                       ("index.html", to_html(tables, fig_paths, len(sources), len(stores), about))):
        (out / name).write_text(text)
        written.append(out / name)
    return written
