"""The `ssbm-bench` command line.

    ssbm-bench plugins [--json]
    ssbm-bench corpus list | corpus show NAME [--param K=V ...] [--db PATH] [--json] | corpus build NAME [--out DIR]
    ssbm-bench run SUITE [--db PATH] [--no-model-cache] [--json]
    ssbm-bench leaderboard --db PATH [--format markdown|csv|json] [--out FILE] [--figures DIR]
    ssbm-bench leaderboard add FILE [--verify K|auto] | leaderboard publish [--out DIR]   (community_cli.py)
    ssbm-bench submit --db PATH --out FILE.json                                      (community_cli.py)
    ssbm-bench explain --utterance ID --word INDEX|TEXT --model NAME --method NAME [...] [--out PNG] [--wav DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .errors import SsbmBenchError
from .harness.suite import DEFAULT_BOARD

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
        out["refused"] = [r.to_dict() for r in reg.refused]
        print(json.dumps(out, indent=2))
        return 0
    titles = {"board": "boards", "model": "models", "method": "saliency methods", "fill": "fills",
              "corpus": "corpora", "executor": "executors", "family": "seed families"}
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
    if reg.refused:
        print("refused (a suite that names one is refused before it runs):")
        for r in reg.refused:
            print(f"  {r.message()}")
    return 0


def cmd_corpus(args) -> int:
    from .plugins import get_registry

    reg = get_registry()
    if args.corpus_cmd == "show":
        return cmd_corpus_show(args, reg)
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
        print("`ssbm-bench corpus show NAME [--param key=value ...]` lists a corpus's utterance ids with their words "
              "and times (a folder: --param path=DIR; --db PATH adds which models recognise each)")
        return 0
    r = reg.get("corpus", args.name)
    if r.record.builder is None:
        raise SsbmBenchError(f"corpus {args.name!r} has no generator; corpora with one: "
                             f"{', '.join(n for n in reg.names('corpus') if reg.get('corpus', n).record.builder)}")
    out = r.record.builder(args.out) if args.out else r.record.builder()
    print(out)
    return 0


def cmd_corpus_show(args, reg) -> int:
    """`corpus show`: the ids and words that `explain` and a suite's `[corpus] utterances` take."""
    import shutil

    from .corpus_listing import corpus_listing, listing_lines, open_corpus
    from .harness.suite import PluginRef
    from .word_explanation import parse_params

    ref = PluginRef(args.name, parse_params(args.param, "--param"))
    if args.db and not Path(args.db).is_file():
        raise SsbmBenchError(f"results store {args.db}: not found (expected the SQLite file a `ssbm-bench run` wrote)")
    listing = corpus_listing(open_corpus(reg, ref), ref, args.db)
    if args.json:
        text = json.dumps(listing, indent=2) + "\n"
    else:
        text = "".join(line + "\n" for line in listing_lines(listing, shutil.get_terminal_size((100, 24)).columns))
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `corpus show synthetic | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_run(args) -> int:
    from .harness.runner import run_suite
    from .harness.suite import load_suite

    suite = load_suite(resolve_suite_path(args.suite))
    if args.no_model_cache:
        from dataclasses import replace

        suite = replace(suite, model_cache=False)
    db = args.db or f"results/{suite.name}.sqlite"
    s = run_suite(suite, db, progress=not args.no_progress)
    if args.json:
        print(json.dumps({**s.to_dict(), "db": db}, indent=2, default=str))
        return 1 if s.errors else 0
    for line in run_summary_lines(s, db):
        print(line)
    return 1 if s.errors else 0


def run_summary_lines(s, db: str) -> list[str]:
    """What `run` prints at the end: the counts, the model-output cache, and why cells were computed."""
    from .harness.recompute import reason_lines

    lines = [f"suite {s.suite}: {s.planned} cells planned, {s.cached} found in the store, {s.computed} computed "
             f"({s.skipped} skipped, {s.errors} errors), {s.model_calls} model calls, {s.seconds:.1f} s; "
             f"results in {db}"]
    mc = s.model_cache
    if not mc.get("enabled"):
        lines.append(f"model-output cache: off ({mc.get('evaluated', 0)} inputs evaluated by the models)")
    else:
        rate = "n/a, nothing asked" if mc.get("hit_rate") is None else f"{mc['hit_rate']:.1%}"
        lines.append(f"model-output cache: {mc.get('hits', 0)} hits, {mc.get('misses', 0)} misses (hit rate {rate}); "
                     f"{mc.get('stored', 0)} new outputs stored")
        for note in mc.get("notes", []):
            lines.append(f"model-output cache: note: {note}")
    lines.extend(reason_lines(s.recomputed))
    if s.failed:
        lines.append(f"{len(s.failed)} cell(s) ended in an error (the run exits with status 1):")
        lines += [f"  {f['cell']}: {f['reason']}" for f in s.failed[:10]]
        if len(s.failed) > 10:
            lines.append(f"  ... and {len(s.failed) - 10} more (`ssbm-bench run --json` lists them all)")
    return lines


def cmd_leaderboard(args) -> int:
    from .harness.store import ResultStore
    from .leaderboard import build_leaderboard, render
    from .plugins import get_registry

    registry = get_registry()
    known = registry.names("board")
    if args.board not in known:
        raise SsbmBenchError(f"--board {args.board!r}: no such board; installed boards: {', '.join(known)}")
    if not Path(args.db).is_file():
        raise SsbmBenchError(f"results store {args.db}: not found (run `ssbm-bench run SUITE --db {args.db}` first)")
    with ResultStore(args.db) as store:
        rows = build_leaderboard(store, args.board, registry)
        cells = list(store.cells(board=args.board)) if args.figures else []
    if args.suite:
        rows = [r for r in rows if r.suite == args.suite]
    text = render(rows, args.format, args.board, registry)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        paths = registry.board(args.board).figures(cells, Path(args.figures), args.suite)
        print(f"wrote {len(paths)} figure(s) to {args.figures}", file=sys.stderr if not args.out else sys.stdout)
    return 0


def cmd_explain(args) -> int:
    from .corpus_listing import show_command
    from .harness.preflight import check_params
    from .word_explanation import SHORT, explain_word, find_utterance, find_word, parse_params, slug_of
    from .word_figure import render, write_wavs
    from .audio import StftConfig
    from .harness.store import ResultStore
    from .harness.suite import PluginRef
    from .harness.worker import WorkerCache
    from .plugins import get_registry

    reg = get_registry()
    given = (("corpus", args.corpus, args.corpus_param), ("model", args.model, args.model_param),
             ("method", args.method, args.param), ("fill", args.fill, args.fill_param))
    flags = {kind: f"--{kind}-param" if kind != "method" else "--param" for kind, _, _ in given}
    refs = {kind: PluginRef(name, parse_params(items, flags[kind])) for kind, name, items in given}
    for kind, ref in refs.items():
        # unknown names, and parameters a factory does not declare, fail here, naming the known ones, before any work
        check_params(kind, ref, reg.get(kind, ref.name).record.factory, flags[kind])
    if args.db and not Path(args.db).is_file():
        raise SsbmBenchError(f"results store {args.db}: not found")
    if args.mixtures < 0:
        raise SsbmBenchError(f"--mixtures must be >= 0, got {args.mixtures}")
    # plugins are built the harness's way (a fill that needs corpus statistics gets them from the store)
    store = ResultStore(args.db if args.db else ":memory:")
    try:
        cache = WorkerCache(reg)
        cache.artifacts = store
        corpus = cache.instance("corpus", refs["corpus"])
        utt = find_utterance(corpus, refs["corpus"].label, args.utterance, show=show_command(refs["corpus"]))
        target = find_word(utt, args.word)  # a misspelt or repeated word is named here, before any model loads
        model = cache.instance("model", refs["model"])
        method = cache.instance("method", refs["method"])
        fill = cache.fill(refs["fill"], refs["corpus"], StftConfig())
        ex = explain_word(model, refs["model"], method, refs["method"], fill, refs["fill"], utt, target,
                          corpus.digest(), threshold=args.threshold, level_db=args.level_db, store=store,
                          use_stored=bool(args.db), seed=args.seed, n_mixtures=args.mixtures)
    finally:
        store.close()
    out = Path(args.out or f"results/explain/{slug_of(refs['model'].label, refs['method'].label, utt.id, target)}.png")
    render(ex, out)
    print(f"{ex.method} on {ex.model}, {utt.id} word {target.index} {target.label!r}: {ex.smap.kind} map, "
          f"threshold {ex.threshold:g} ({ex.threshold_source}), noise {ex.level_db:+g} dB ({ex.level_source})")
    for d, r in ex.directions.items():
        print(f"  {SHORT[d]}: drops e = {r.energy:.3f} of the speech energy; heard {' '.join(r.hypothesis)!r}; "
              f"a_w = {r.a_w:g}, a_o = {r.a_o:.2f}")
    print(f"wrote {out}")
    if args.wav:
        paths = write_wavs(ex, args.wav)
        print(f"wrote {len(paths)} WAV file(s) to {args.wav}")
    return 0


def cmd_train(args) -> int:
    from .plugins import get_registry

    reg = get_registry()
    rec = reg.get("family", args.family).record
    training = {"epochs": args.epochs} if args.epochs else None
    family = rec.factory(seeds=args.seeds, log=lambda s: print(s, file=sys.stderr), training=training,
                         progress=not args.no_progress)
    summary = family.to_dict()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    ag = summary["agreement"]
    print(f"family {summary['task']} ({summary['kind']}): {len(summary['members'])} seeds "
          f"({len(summary['trained_now'])} trained now, the rest from the cache), {summary['seconds']:.1f} s")
    for name, path in summary["members"].items():
        i = list(summary["members"]).index(name)
        print(f"  {name:<8} test accuracy {ag['accuracy'][i]:.3f}  {path}")
    err = "n/a" if ag["error_kappa"] is None else f"{ag['error_kappa']:.3f}"
    print(f"agreement on {ag['inputs']} test inputs: Fleiss' kappa {ag['kappa']:.3f} overall, {err} on the "
          f"{ag['inputs_with_an_error']} inputs where any seed erred")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssbm-bench", description="Benchmark saliency methods on speech models.")
    p.add_argument("--version", action="version", version=f"ssbm-bench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("plugins", help="list installed plugins (and any that failed to load or were refused, with what was expected)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_plugins)

    sc = sub.add_parser("corpus", help="list corpora, show one's utterances and words, or build one from its generator")
    csub = sc.add_subparsers(dest="corpus_cmd", required=True)
    csub.add_parser("list", help="list corpora with their size and content digest (`corpus show NAME` lists the "
                                 "utterances of one)")
    cs = csub.add_parser(
        "show", help="list a corpus's utterances: ids, durations, words with times; --db: which models recognise each",
        description="List every utterance of a corpus: its id, duration, and words with their start and end times "
                    "(in s), numbered as `explain --word` takes them. With --db, for each model whose clean "
                    "transcripts of this corpus are in that results store: yes when the model recognised the "
                    "utterance fully when clean (only those become SSBM cells), no k/n when it got k of n words, "
                    "- when it was not decoded (the run stopped scanning at its utterance limit), or the class a "
                    "classifier gave.")
    cs.add_argument("name", help="corpus name (`ssbm-bench corpus list`), e.g. synthetic or folder")
    cs.add_argument("--param", action="append", metavar="KEY=VALUE",
                    help="corpus parameter (repeatable), e.g. --param path=DIR for a folder; values read as TOML")
    cs.add_argument("--db", metavar="PATH", help="a results store written by `run`: show which models recognise "
                                                 "each utterance fully when clean")
    cs.add_argument("--json", action="store_true", help="machine-readable output (word times, clean transcripts)")
    cb = csub.add_parser("build", help="generate a corpus (e.g. synthetic) and print where it was written")
    cb.add_argument("name", help="corpus name, e.g. synthetic")
    cb.add_argument("--out", help="output directory (default: the corpus's own default)")
    sc.set_defaults(func=cmd_corpus)

    sr = sub.add_parser(
        "run", help="run a suite; finished cells in the store are not recomputed",
        description="Run a suite. Cells already in the store are not recomputed; a rerun that computes cells "
                    "says why (new method, model, fill, changed parameters, corpus digest or versions). Model "
                    "outputs (transcripts, class probabilities, token scores) are cached in the store by a digest "
                    "of the exact input and the model's identity, so the same input is never evaluated twice "
                    "across methods, fills, cells or reruns.")
    sr.add_argument("suite", help="suite file, or a suite name under leaderboards/suites/ (e.g. quick)")
    sr.add_argument("--db", help="SQLite results store (default: results/SUITE.sqlite)")
    sr.add_argument("--no-progress", action="store_true", help="no progress bar")
    sr.add_argument("--no-model-cache", action="store_true",
                    help="evaluate every model input, neither reading nor adding cached model outputs (the "
                         "suite's [run] model_cache = false does the same); results are identical either way")
    sr.add_argument("--json", action="store_true",
                    help="print the run's summary as JSON (counts, model calls, model-output cache hits and "
                         "misses, why cells were computed)")
    sr.set_defaults(func=cmd_run)

    sl = sub.add_parser("leaderboard", help="rank methods from a results store (also: leaderboard add FILE, "
                                            "leaderboard publish; see `ssbm-bench leaderboard add --help`)")
    sl.add_argument("--db", required=True, help="SQLite results store written by `run`")
    sl.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    sl.add_argument("--board", default=DEFAULT_BOARD,
                    help="the board to rank (default ssbm); `ssbm-bench plugins` lists the installed boards: "
                         "ssbm (faithfulness), deletion (deletion by rank), isa (inter-seed agreement), stability "
                         "(explainer seeds and fills), and any other an installed package registers")
    sl.add_argument("--suite", help="only rows of this suite")
    sl.add_argument("--out", help="write to this file instead of standard output")
    sl.add_argument("--figures", metavar="DIR",
                    help="also write the board's figures as PNG files to DIR. For ssbm, per suite, corpus, model and "
                         "fill: word accuracy against speech energy obscured, LeRF and MoRF (Fig. 6), and "
                         "ΔLeRF, ΔMoRF and SSBM against threshold per method (Fig. 7); with --board isa, the "
                         "ISA paper's box plots per family (per-pair ISA, shuffled baseline dashed); with "
                         "--board stability, U_n against N_s per fill and the ground-truth match (SoundLIME "
                         "paper's Figs. 3/5); other boards draw their own (Board.figures)")
    sl.set_defaults(func=cmd_leaderboard)

    se = sub.add_parser(
        "explain", help="draw one word's importance map, its LeRF/MoRF masks and noisy mixtures (PNG, WAV)",
        description="Compute one method's map for one word of one utterance with one model, build the SSBM "
                    "LeRF and MoRF masks at a threshold, decode the noisy mixtures, and write a PNG: the "
                    "spectrogram with the map over it, the masks, the mixtures with what the model heard, and "
                    "for bubble noise a few of its mixtures. --wav also writes them as WAV files. "
                    "`ssbm-bench corpus show CORPUS` lists the utterance ids and their words (with --db, which "
                    "ones a model recognises fully).")
    se.add_argument("--corpus", default="synthetic", help="corpus name (default: synthetic)")
    se.add_argument("--corpus-param", action="append", metavar="KEY=VALUE", help="corpus parameter (repeatable)")
    se.add_argument("--utterance", required=True, metavar="ID",
                    help="utterance id (`ssbm-bench corpus show CORPUS` lists them)")
    se.add_argument("--word", required=True, metavar="INDEX|TEXT",
                    help="the analysed word: its index (0-based, as `corpus show` numbers them) or its text (case "
                         "and punctuation ignored; a word that occurs more than once needs its index)")
    se.add_argument("--model", required=True, help="model name, e.g. pocketsphinx or whisper-tiny-en")
    se.add_argument("--model-param", action="append", metavar="KEY=VALUE", help="model parameter (repeatable)")
    se.add_argument("--method", required=True, help="saliency method, e.g. energy, bubble, random")
    se.add_argument("--param", action="append", metavar="KEY=VALUE",
                    help="method parameter (repeatable), e.g. --param n_mixtures=50; values read as TOML")
    se.add_argument("--fill", default="white-noise", help="fill of the SSBM mixtures (default: white-noise)")
    se.add_argument("--fill-param", action="append", metavar="KEY=VALUE", help="fill parameter (repeatable)")
    se.add_argument("--threshold", type=float,
                    help="SSBM threshold in the map's units (p-value, dB, or fraction); default: the best "
                         "threshold in --db, else 0.01 (p-value), -40 dB (energy), 0.1 (score)")
    se.add_argument("--level-db", type=float,
                    help="noise level in dB re. speech RMS; default: the level stored in --db, else calibrated "
                         "on this utterance")
    se.add_argument("--db", help="a results store to reuse (and add to): its noise level, best threshold, and "
                                 "cached recognition results (bubble mixtures are not decoded again)")
    se.add_argument("--seed", type=int, default=0, help="seed of the method and of the noise (default 0)")
    se.add_argument("--mixtures", type=int, default=4,
                    help="how many of the method's own mixtures to show (bubble; default 4, 0 for none)")
    se.add_argument("--out", metavar="PNG", help="PNG to write (default: results/explain/MODEL_METHOD_UTT_wN.png)")
    se.add_argument("--wav", metavar="DIR", help="also write the clean, LeRF, MoRF and method mixtures as WAV")
    se.set_defaults(func=cmd_explain)

    st = sub.add_parser("train", help="train a seed family (ISA): one classifier per seed, cached",
                        description="Train the speechbrain recipe classifier on a family's task with seeds "
                                    "0..K-1 (members already in the cache are loaded, not retrained), then "
                                    "report each member's test accuracy and the family's agreement (Fleiss' "
                                    "kappa overall and on the inputs where any seed erred). Families: "
                                    "`ssbm-bench plugins` lists them.")
    st.add_argument("family", help="family task, e.g. commands-action or voices")
    st.add_argument("--seeds", type=int, default=3, help="number of seeds K (quick 3, standard 9; default 3)")
    st.add_argument("--epochs", type=int, help="training epochs (default: the recipe's 20); part of the cache key")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--no-progress", action="store_true",
                    help="no progress bar over each seed's training batches (one line per seed is still printed)")
    st.set_defaults(func=cmd_train)

    from .community_cli import add_submit_parser

    add_submit_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) >= 2 and argv[0] == "leaderboard" and argv[1] in ("add", "publish"):
        # the community leaderboard's verbs have their own parser (community_cli.py)
        from .community_cli import build_leaderboard_parser

        args = build_leaderboard_parser().parse_args(argv[1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SsbmBenchError as exc:
        print(f"ssbm-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ssbm-bench: interrupted; finished cells are kept in the store", file=sys.stderr)
        # every finished cell is committed and the store closed; leave now, without waiting at exit for
        # executor threads that may still be winding down killed workers
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


if __name__ == "__main__":
    sys.exit(main())
