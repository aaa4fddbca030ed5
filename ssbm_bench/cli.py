"""The `ssbm-bench` command line.

    ssbm-bench plugins [--json]
    ssbm-bench corpus list | corpus build NAME [--out DIR]
    ssbm-bench run SUITE [--db PATH]
    ssbm-bench leaderboard --db PATH [--format markdown|csv|json] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import SsbmBenchError

SUITES_DIR = Path(__file__).resolve().parent.parent / "leaderboards" / "suites"


def resolve_suite_path(name_or_path: str) -> Path:
    """A path to a TOML file, or the name of a suite under leaderboards/suites/."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    candidate = SUITES_DIR / f"{name_or_path}.toml"
    if candidate.is_file():
        return candidate
    known = sorted(s.stem for s in SUITES_DIR.glob("*.toml")) if SUITES_DIR.is_dir() else []
    raise SsbmBenchError(f"suite {name_or_path!r}: no such file, and no suite of that name in {SUITES_DIR} "
                         f"(known suites: {', '.join(known) or 'none'})")


def cmd_plugins(args) -> int:
    from .plugins import get_registry

    reg = get_registry()
    if args.json:
        out = {"plugins": [], "failures": []}
        for kind, entries in reg.by_kind.items():
            for name, r in sorted(entries.items()):
                rec = r.record
                item = {"kind": kind, "name": name, "description": rec.description, "plugin": r.plugin,
                        "distribution": r.distribution, "version": r.version}
                if kind == "model":
                    item["capabilities"] = sorted(rec.capabilities)
                if kind == "method":
                    item["requires"] = sorted(rec.requires)
                out["plugins"].append(item)
        out["failures"] = [{"plugin": f.name, "distribution": f.distribution, "module": f.module, "error": f.error}
                           for f in reg.failures]
        print(json.dumps(out, indent=2))
        return 0
    titles = {"model": "models", "method": "saliency methods", "fill": "fills", "corpus": "corpora",
              "executor": "executors"}
    for kind, title in titles.items():
        entries = reg.by_kind.get(kind, {})
        print(f"{title}:")
        if not entries:
            print("  (none)")
        for name, r in sorted(entries.items()):
            extra = ""
            if kind == "model":
                extra = f" [{', '.join(sorted(r.record.capabilities))}]"
            elif kind == "method" and r.record.requires:
                extra = f" [needs {', '.join(sorted(r.record.requires))}]"
            print(f"  {name:<22} {r.record.description}{extra}  ({r.distribution} {r.version})")
    if reg.failures:
        print("failed to load:")
        for f in reg.failures:
            print(f"  {f.name:<22} {f.module} ({f.distribution} {f.version}): {f.error}")
    return 0


def cmd_corpus(args) -> int:
    from .plugins import get_registry

    reg = get_registry()
    if args.corpus_cmd == "list":
        for name in reg.names("corpus"):
            r = reg.get("corpus", name)
            line = f"{name:<14} {r.record.description}"
            try:
                corpus = r.record.factory()
                line += f"  [{len(corpus.ids())} utterances, digest {corpus.digest()[:12]}]"
            except Exception as exc:  # a corpus that needs parameters (a folder) cannot be opened bare
                line += f"  [needs parameters: {exc}]"
            print(line)
        return 0
    r = reg.get("corpus", args.name)
    if r.record.builder is None:
        raise SsbmBenchError(f"corpus {args.name!r} has no generator; corpora with one: "
                             f"{', '.join(n for n in reg.names('corpus') if reg.get('corpus', n).record.builder)}")
    out = r.record.builder(args.out) if args.out else r.record.builder()
    print(out)
    return 0


def cmd_run(args) -> int:
    from .harness.runner import run_suite
    from .harness.suite import load_suite

    suite = load_suite(resolve_suite_path(args.suite))
    db = args.db or f"results/{suite.name}.sqlite"
    s = run_suite(suite, db, progress=not args.no_progress)
    print(f"suite {s.suite}: {s.planned} cells planned, {s.cached} found in the store, {s.computed} computed "
          f"({s.skipped} skipped, {s.errors} errors), {s.decodes} model calls, {s.seconds:.1f} s; results in {db}")
    return 1 if s.errors else 0


def cmd_leaderboard(args) -> int:
    from .harness.store import ResultStore
    from .leaderboard import build_leaderboard, to_csv, to_json, to_markdown

    if not Path(args.db).is_file():
        raise SsbmBenchError(f"results store {args.db}: not found (run `ssbm-bench run SUITE --db {args.db}` first)")
    with ResultStore(args.db) as store:
        rows = build_leaderboard(store, args.board)
    if args.suite:
        rows = [r for r in rows if r.suite == args.suite]
    text = {"markdown": to_markdown, "csv": to_csv, "json": to_json}[args.format](rows)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssbm-bench", description="Benchmark saliency methods on speech models.")
    p.add_argument("--version", action="version", version=f"ssbm-bench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("plugins", help="list installed plugins (and any that failed to load)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_plugins)

    sc = sub.add_parser("corpus", help="list corpora or build one from its generator")
    csub = sc.add_subparsers(dest="corpus_cmd", required=True)
    csub.add_parser("list", help="list corpora with their size and content digest")
    cb = csub.add_parser("build", help="generate a corpus (e.g. synthetic) and print where it was written")
    cb.add_argument("name", help="corpus name, e.g. synthetic")
    cb.add_argument("--out", help="output directory (default: the corpus's own default)")
    sc.set_defaults(func=cmd_corpus)

    sr = sub.add_parser("run", help="run a suite; finished cells in the store are not recomputed")
    sr.add_argument("suite", help="suite file, or a suite name under leaderboards/suites/ (e.g. quick)")
    sr.add_argument("--db", help="SQLite results store (default: results/SUITE.sqlite)")
    sr.add_argument("--no-progress", action="store_true", help="no progress bar")
    sr.set_defaults(func=cmd_run)

    sl = sub.add_parser("leaderboard", help="rank methods from a results store")
    sl.add_argument("--db", required=True, help="SQLite results store written by `run`")
    sl.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    sl.add_argument("--board", choices=("ssbm",), default="ssbm")
    sl.add_argument("--suite", help="only rows of this suite")
    sl.add_argument("--out", help="write to this file instead of standard output")
    sl.set_defaults(func=cmd_leaderboard)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SsbmBenchError as exc:
        print(f"ssbm-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ssbm-bench: interrupted; finished cells are kept in the store", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
