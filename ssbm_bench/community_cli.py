"""The community side of the command line: `submit`, `leaderboard add`,
`leaderboard publish`.

`ssbm-bench leaderboard --db PATH` ranks one store; `leaderboard add FILE`
and `leaderboard publish` are the community leaderboard's two verbs, parsed
here (cli.main hands them over) so that the store-ranking options keep their
meaning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LEADERBOARD_VERBS = ("add", "publish")


def add_submit_parser(sub) -> None:
    sp = sub.add_parser(
        "submit", help="export a finished run as one JSON submission file",
        description="Write the latest finished run of one suite in a results store as a submission: the suite "
                    "(and its digest), every corpus its cells use with its digest, versions, every cell's raw "
                    "outputs and the leaderboard rows of every board that has cells, in the schema "
                    "leaderboards/schema/submission-v3.json (an envelope shared by every board; each board adds "
                    "the schema of its own cells). Send the file to the leaderboard's "
                    "maintainers, who add it with `ssbm-bench leaderboard add FILE`.")
    sp.add_argument("--db", required=True, help="SQLite results store written by `run`")
    sp.add_argument("--out", required=True, metavar="FILE.json", help="submission file to write")
    sp.add_argument("--suite", help="which suite, when the store holds several")
    sp.add_argument("--suite-file", metavar="TOML",
                    help="the suite file the run used, when it is no longer where the run found it")
    sp.add_argument("--submitter", help="a name to show with the submission (letters, digits, ' _.@+-')")
    sp.add_argument("--notes", help="free text kept with the submission (at most 2000 characters)")
    sp.add_argument("--partial", metavar="REASON",
                    help="submit the latest run even if unfinished, with the planned cells it stored, declared "
                         "partial for REASON: published apart, never ranked against complete runs (without it, only "
                         "a finished run is submitted, and a maintainer refuses one that lacks cells)")
    sp.set_defaults(func=cmd_submit)


def rows_summary(rows: dict) -> str:
    """'1 ssbm row and 4 stability rows' (every board the submission has rows of)."""
    parts = [f"{len(v)} {b} row{'' if len(v) == 1 else 's'}" for b, v in rows.items() if v] or ["no rows"]
    return f"{', '.join(parts[:-1])} and {parts[-1]}" if len(parts) > 1 else parts[0]


def cmd_submit(args) -> int:
    from .submission import dumps, export_submission

    doc, facts = export_submission(args.db, args.suite, args.suite_file, args.submitter, args.notes,
                                   partial=args.partial)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(doc))
    extra = (f"; {facts['left_out']} cell(s) left out (of an older version of the suite, or of a board a "
             f"not installed here)" if facts["left_out"] else "")
    if "partial" in doc:
        extra += f"; declared partial: {facts['cells']} of the {facts['planned']} cells its run planned"
    print(f"wrote {out}: suite {facts['suite']} (digest {facts['suite_digest']}), {facts['cells']} cells on "
          f"{facts['corpora']} corpus(es), {rows_summary(doc['leaderboard'])}{extra}")
    return 0


def build_leaderboard_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssbm-bench leaderboard",
                                description="The community leaderboard: add a submission, or publish the tables.")
    sub = p.add_subparsers(dest="verb", required=True)
    sa = sub.add_parser(
        "add", help="validate a submission and add it to leaderboards/submissions/",
        description="Check a submission file (schema version 3, or 2 or 1; known suite and corpus digests, names and "
                    "settings of the suite's boards, plausible ranges, rows of every board re-scored from its "
                    "cells), optionally re-run a random sample of its cells, and copy it into DIR/submissions/. "
                    "A submission is data only: it is never executed or unpickled.")
    sa.add_argument("file", help="submission JSON written by `ssbm-bench submit`")
    sa.add_argument("--verify", type=verify_arg, default="auto", metavar="K|auto",
                    help="re-derive the cells the suite implies (clean decodes and noise calibration, as a run "
                         "plans them; the grid boards' cells must be exactly those), then re-run finished cells here, "
                         "of the boards that can re-run cells (ssbm, deletion, stability, "
                         "and others that can), and compare their raw outputs: K random cells, or 'auto': every cell "
                         "of a method new to the board plus a random sample sized so that a forgery of --catch cells "
                         "is caught with probability --confidence (the default; 0: re-score only, and the page says "
                         "no cell was re-run); ISA cells need the "
                         "seed families trained, so they are checked by re-scoring only. What was verified is kept "
                         "beside the submission and shown on the published page")
    sa.add_argument("--catch", type=int, default=5, metavar="N",
                    help="with --verify auto: the forgery size (cells) to catch (default 5)")
    sa.add_argument("--confidence", type=float, default=0.95, metavar="P",
                    help="with --verify auto: the probability of catching it (default 0.95)")
    sa.add_argument("--seed", type=int, help="seed of the --verify sample (default: random, printed)")
    sa.add_argument("--dir", default=None, metavar="DIR",
                    help="the leaderboards folder (default: this checkout's leaderboards/)")
    sa.add_argument("--suites", default=None, metavar="DIR",
                    help="where the known suites are (default: DIR/suites)")
    sa.add_argument("--dry-run", action="store_true", help="validate (and verify) only; add nothing")
    sa.set_defaults(func=cmd_add)

    sp = sub.add_parser(
        "publish", help="write the published leaderboard: README.md, CSV, JSON and index.html",
        description="Rank every accepted submission (DIR/submissions/*.json) and any --db stores, and write "
                    "OUT/README.md (tables per board with confidence intervals; boards with a paired unit, such as "
                    "SSBM and deletion, with paired tests between neighbours; ISA per aggregation, "
                    "stability per N_s), OUT/leaderboard.csv, OUT/leaderboard.json and OUT/index.html "
                    "(sortable tables, no network), with their figures under OUT/figures/.")
    sp.add_argument("--out", default=None, metavar="DIR", help="where to write (default: leaderboards/)")
    sp.add_argument("--dir", default=None, metavar="DIR",
                    help="the leaderboards folder whose submissions/ to read (default: --out)")
    sp.add_argument("--suites", default=None, metavar="DIR", help="where the known suites are (default: DIR/suites)")
    sp.add_argument("--db", action="append", default=[], metavar="PATH",
                    help="also rank this results store (repeatable)")
    sp.add_argument("--no-figures", action="store_true", help="do not draw figures for --db stores")
    sp.set_defaults(func=cmd_publish)
    return p


def verify_arg(text: str) -> int | str:
    """--verify: "auto" or a number of cells (0: re-score only)."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--verify takes 'auto' or a number of cells, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"--verify must be >= 0, got {n}")
    return n


def cmd_add(args) -> int:
    from .submission import LEADERBOARDS_DIR, add_submission, read_submission, run_verification, validate_submission

    lb_dir = Path(args.dir) if args.dir else LEADERBOARDS_DIR
    suites = Path(args.suites) if args.suites else lb_dir / "suites"
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    if args.dry_run:
        v = validate_submission(read_submission(args.file), suites)
        notes = []
        if args.verify:
            _, notes = run_verification(v, lb_dir, args.verify, args.seed, args.catch, args.confidence, log)
        print(f"{args.file}: valid submission of suite {v.doc['suite']['name']} ({len(v.cells)} cells); "
              f"dry run, nothing added")
    else:
        dest, v, notes = add_submission(args.file, lb_dir, suites, args.verify, args.seed, log, args.catch,
                                        args.confidence)
        print(f"added {args.file} as {dest}: suite {v.doc['suite']['name']}, {len(v.cells)} cells, "
              f"{rows_summary(v.rows)} re-scored and matching")
    if not args.verify:
        notes.append("not verified (--verify 0): rows re-scored from the cells only; an outcome forged with its rows "
                     "recomputed to match would not be caught")
    for n in notes:
        print(f"  note: {n}")
    return 0


def cmd_publish(args) -> int:
    from .publish import publish
    from .submission import LEADERBOARDS_DIR

    out = Path(args.out) if args.out else LEADERBOARDS_DIR
    lb_dir = Path(args.dir) if args.dir else out
    suites = Path(args.suites) if args.suites else lb_dir / "suites"
    written = publish(out, lb_dir, suites, dbs=args.db, figures=not args.no_figures)
    for p in written:
        print(f"wrote {p}")
    return 0


def leaderboard_main(argv: list[str]) -> int:
    args = build_leaderboard_parser().parse_args(argv)
    return args.func(args)
