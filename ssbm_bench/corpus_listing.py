"""`ssbm-bench corpus show`: a corpus's utterances, their words with times, and which models recognise them.

Why: ``explain --utterance ID --word W`` and a suite's ``[corpus] utterances``
need ids and words, and only the utterances a model recognises fully when
clean become SSBM cells (:func:`ssbm_bench.harness.prepare.select_eligible`);
before this command a contributor read them out of the results store's tables.

Words are numbered as ``explain --word`` counts them: by the utterance's
normalised reference (:attr:`ssbm_bench.types.Utterance.reference`), so a
corpus word that normalises to nothing (pure punctuation) has no index.

With a results store: the store keeps clean transcripts under a *model key*
(:func:`~ssbm_bench.harness.prepare.model_key`, a digest of the model's
reference and ``describe()``), not under its label, and only for the
corpus content (digest) they were decoded from. Every cell records the
fields its key is made of (table ``cell_fields``), among them the model's
reference and ``describe()``; the model key is recomputed from those, so a
clean transcript is shown under its model's label without loading a model.
A model with no cell in the store (none of its utterances was eligible) is
shown by its key, as stored.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, SsbmBenchError
from .harness.prepare import model_key
from .harness.preflight import check_params, declared_parameters
from .harness.store import ResultStore
from .harness.suite import PluginRef
from .text import normalise_word
from .types import Utterance

#: the narrowest the wrapped words column gets, however many model columns precede it
MIN_WORDS_WIDTH = 30


# --------------------------------------------------------------------------- opening the corpus


def param_text(value: Any) -> str:
    """A parameter value as ``--param`` reads it back (TOML for booleans, numbers and lists; text as given)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, list)):
        return json.dumps(value)
    return str(value)


def show_command(ref: PluginRef) -> str:
    """The command line that lists this corpus (parameters as the user gave them, paths not rewritten)."""
    params = "".join(f" --param {shlex.quote(f'{k}={param_text(v)}')}" for k, v in ref.params.items())
    return f"ssbm-bench corpus show {shlex.quote(ref.name)}{params}"


def open_corpus(registry, ref: PluginRef):
    """The corpus `ref` names, or an error naming the known corpora or the parameters its factory takes."""
    record = registry.get("corpus", ref.name).record  # an unknown name lists the known corpora
    check_params("corpus", ref, record.factory, "--param")  # a misspelt parameter: did-you-mean and the list
    declared = declared_parameters(record.factory)
    takes = f" (corpus {ref.name!r} takes --param {', '.join(sorted(declared)) or 'nothing'})" if declared else ""
    try:
        return record.factory(**ref.params)
    except SsbmBenchError as exc:  # the plugin's own words (a folder without a path), and what it takes
        raise InputError(f"{exc}{takes}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"corpus {ref.name!r} refused its parameters {ref.params}: {exc}{takes}") from None


# --------------------------------------------------------------------------- what an utterance holds


def word_entries(utt: Utterance) -> list[dict]:
    """{index, text, start, end} per corpus word; index as ``explain --word`` takes it (None: no scoring form)."""
    out, index = [], 0
    for w in utt.words:
        scored = bool(normalise_word(w.text))
        out.append({"index": index if scored else None, "text": w.text, "start": round(w.start, 3),
                    "end": round(w.end, 3)})
        index += scored
    return out


# --------------------------------------------------------------------------- clean transcripts in a store


@dataclass(frozen=True)
class StoredModel:
    """A model whose clean transcripts of this corpus are in the store."""

    key: str
    label: str | None  # None: no cell of the store names the model; shown by its key
    kind: str  # "transcribe", or "classify" (the clean "transcript" is the class the model gives)

    @property
    def shown(self) -> str:
        return self.label if self.label is not None else f"model key {self.key}"


class _Described:
    """Stands in for a model in :func:`model_key`: only ``describe()`` is read, here from a cell's fields."""

    def __init__(self, described: Any):
        self._described = described

    def describe(self) -> Any:
        return self._described


def model_labels(store: ResultStore) -> dict[str, tuple[str, bool]]:
    """{model key: (label, whether a cell of it explains a class)} from the cells' recorded key fields."""
    rows = store.conn.execute(
        "SELECT json_extract(fields, '$.model'), json_extract(fields, '$.model_id'), "
        "MAX(COALESCE(json_extract(fields, '$.target'), '') LIKE 'class:%' "
        "    OR COALESCE(json_extract(fields, '$.skip'), '') = 'cannot transcribe') "
        "FROM cell_fields WHERE json_extract(fields, '$.model_id') IS NOT NULL GROUP BY 1, 2").fetchall()
    out: dict[str, tuple[str, bool]] = {}
    for ref_json, described_json, classifies in rows:
        try:
            ref = PluginRef(**json.loads(ref_json))
        except (TypeError, ValueError):
            continue  # not a model reference (a board's own fields): it names no model
        key = model_key(ref, _Described(json.loads(described_json)))
        label, was = out.get(key, (ref.label, False))
        out[key] = (label, was or bool(classifies))
    return out


def stored_models(store: ResultStore, corpus_digest: str) -> list[StoredModel]:
    """The models with clean transcripts of this corpus content, labelled where a cell names them."""
    keys = [k for (k,) in store.conn.execute(
        "SELECT DISTINCT model_key FROM clean WHERE corpus_digest = ? ORDER BY model_key", (corpus_digest,))]
    labels = model_labels(store)
    models = [StoredModel(k, labels[k][0] if k in labels else None,
                          "classify" if labels.get(k, ("", False))[1] else "transcribe") for k in keys]
    taken = [m.label for m in models]
    # one label, two keys (the model's describe() changed between runs): tell them apart by key
    return [StoredModel(m.key, f"{m.label} (key {m.key[:8]})", m.kind) if m.label and taken.count(m.label) > 1 else m
            for m in sorted(models, key=lambda m: (m.label is None, m.label or "", m.key))]


def clean_entry(model: StoredModel, row: tuple | None) -> dict | None:
    """One model's clean result for one utterance (None: not decoded, e.g. the scan stopped at the limit)."""
    if row is None:
        return None
    hypothesis, correct, all_correct = json.loads(row[0]), json.loads(row[1]), bool(row[2])
    if model.kind == "classify":
        return {"class": hypothesis[0] if hypothesis else None}
    # eligible as select_eligible decides: every reference word recognised, and at least one word
    return {"eligible": all_correct and len(correct) > 0, "hypothesis": hypothesis, "correct": correct}


def store_section(db: str | Path, corpus_digest: str, ids: list[str]) -> tuple[dict, dict[str, dict]]:
    """(what the store holds for this corpus, {utterance id: {model shown: clean entry or None}})."""
    with ResultStore(db) as store:
        models = stored_models(store, corpus_digest)
        rows = {(k, u): (h, c, a) for k, u, h, c, a in store.conn.execute(
            "SELECT model_key, utterance, hypothesis, correct, all_correct FROM clean WHERE corpus_digest = ?",
            (corpus_digest,))}
        others = [d for (d,) in store.conn.execute(
            "SELECT DISTINCT corpus_digest FROM clean WHERE corpus_digest != ?", (corpus_digest,))]
    per_utt = {u: {m.shown: clean_entry(m, rows.get((m.key, u))) for m in models} for u in ids}
    section = {"path": str(db), "models": [{"label": m.label, "shown": m.shown, "model_key": m.key, "kind": m.kind}
                                           for m in models]}
    if not models:
        section["note"] = (f"no clean transcripts of this corpus content (digest {corpus_digest[:12]}) in the store"
                           + (f"; it holds those of {len(others)} other corpus digest(s)" if others else "")
                           + "; a run of a suite on this corpus stores them")
    return section, per_utt


# --------------------------------------------------------------------------- the listing


def corpus_listing(corpus, ref: PluginRef, db: str | Path | None = None) -> dict:
    """Everything `corpus show` prints, as plain data (what ``--json`` writes)."""
    utts = list(corpus.utterances())
    digest = corpus.digest()
    out: dict = {"corpus": ref.name, "params": ref.params, "digest": digest, "count": len(utts),
                 "seconds": round(sum(u.duration for u in utts), 3), "store": None}
    per_utt: dict[str, dict] = {}
    if db is not None:
        out["store"], per_utt = store_section(db, digest, [u.id for u in utts])
    out["utterances"] = [{"id": u.id, "seconds": round(u.duration, 3), "times_source": u.times_source,
                     "words": word_entries(u), **({"clean": per_utt[u.id]} if db is not None else {})}
                    for u in utts]
    out["skipped"] = [{"file": str(f), "reason": r} for f, r in getattr(corpus, "skipped", [])]
    return out


def eligibility_cell(entry: dict | None) -> str:
    """A model's column in the table: yes, no k/n (k of n words right), the class, or - (not decoded)."""
    if entry is None:
        return "-"
    if "class" in entry:
        return str(entry["class"])
    return "yes" if entry["eligible"] else f"no {sum(entry['correct'])}/{len(entry['correct'])}"


def wrap_tokens(tokens: list[str], width: int) -> list[str]:
    """Greedy lines of whole tokens, two spaces apart, at most `width` wide (a longer token has a line alone)."""
    lines, line = [], ""
    for t in tokens:
        if line and len(line) + 2 + len(t) > width:
            lines.append(line)
            line = t
        else:
            line = f"{line}  {t}" if line else t
    return lines + ([line] if line else [])


def listing_lines(listing: dict, width: int = 100) -> list[str]:
    """The human-readable table: one row per utterance, its words wrapped under the WORDS column."""
    ref = PluginRef(listing["corpus"], listing["params"])
    lines = [f"corpus {ref.label}: {listing['count']} utterances, {listing['seconds']:.1f} s of audio, "
             f"content digest {listing['digest'][:12]}"]
    store = listing["store"]
    models = [m["shown"] for m in store["models"]] if store else []
    if store:
        if models:
            lines.append(f"results store {store['path']}: clean transcripts of {len(models)} model(s); yes = "
                         "recognised fully when clean (eligible for SSBM), no k/n = k of n words right, "
                         "- = not decoded")
        else:
            lines.append(f"results store {store['path']}: {store['note']}")
    id_w = max([len("ID")] + [len(u["id"]) for u in listing["utterances"]])
    cols = [(m, max([len(m)] + [len(eligibility_cell(u["clean"][m])) for u in listing["utterances"]])) for m in models]
    head = f"{'ID':<{id_w}}  {'SECONDS':>7}" + "".join(f"  {m:<{w}}" for m, w in cols)
    indent = len(head) + 2
    words_w = max(MIN_WORDS_WIDTH, width - indent)
    lines.append(f"{head}  WORDS (index:word start-end s)")
    for u in listing["utterances"]:
        row = f"{u['id']:<{id_w}}  {u['seconds']:>7.2f}" + "".join(
            f"  {eligibility_cell(u['clean'][m]):<{w}}" for m, w in cols)
        tokens = [f"{'-' if w['index'] is None else w['index']}:{w['text']} {w['start']:.2f}-{w['end']:.2f}"
                  for w in u["words"]]
        wrapped = wrap_tokens(tokens, words_w) or ["(no words)"]
        lines.append(f"{row}  {wrapped[0]}")
        lines += [" " * indent + more for more in wrapped[1:]]
    if listing["skipped"]:
        lines.append(f"skipped {len(listing['skipped'])} file(s), not in the corpus:")
        lines += [f"  {s['reason']}" for s in listing["skipped"]]
    corpus_args = f" --corpus {shlex.quote(ref.name)}" + "".join(
        f" --corpus-param {shlex.quote(f'{k}={param_text(v)}')}" for k, v in ref.params.items())
    lines.append(f"explain one word: ssbm-bench explain{corpus_args} --utterance ID --word INDEX|WORD "
                 f"--model NAME --method NAME")
    return lines
