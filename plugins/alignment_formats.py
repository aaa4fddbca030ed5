"""Word-alignment file formats: pure parsers, no I/O.

Each parser takes the text of a file and a `source` (the file's name, used
in error messages only) and returns words with their spans in seconds, in
the order they are spoken. Parsers are faithful to the file: silence and
filler labels (``<sil>``, ``sp``) and pronunciation variants (``was(2)``)
are kept; :func:`drop_fillers` and :func:`match_transcript` turn a parsed
alignment into reference words for a transcript.

Formats:

* JSON (:func:`parse_json_alignment`): a list of ``{"word"|"text", "start",
  "end"}`` objects, or an object holding such a list under ``"words"``, or
  pocketsphinx 5's JSON output (``{"t": ..., "w": [{"t", "b", "d"}, ...]}``,
  begin and duration in seconds).
* Praat TextGrid (:func:`parse_textgrid`), long ("text") and short formats,
  read by praatio: the tier named "words" (or "word"), else the first
  interval tier; empty intervals are skipped.
* CTM (:func:`parse_ctm`): ``utt channel start duration word [confidence]``
  per line, several utterances per file; ``;;`` and ``#`` lines are comments.
* Sphinx match-segmentation (:func:`parse_matchseg`, pocketsphinx's
  ``-hypseg`` output): ``utt S scale T score A acoustic L lm`` then
  ``frame ascr lscr word`` per word and the final frame, 100 frames a second.
* Sphinx transcription (:func:`parse_sphinx_transcription`): ``<s> words
  </s> (utt)`` per line (no times).

Word order: the JSON, TextGrid and CTM parsers refuse spoken words (fillers
aside: pocketsphinx's own ``<s>`` and ``<sil>`` overlap) that overlap the
previous word or start before it (:func:`check_word_order`), naming the file
and both intervals. Every word time downstream -- masks, deletion curves,
localisation -- assumes one word at a time in spoken order, and an overlap in
a hand-edited file is a typo that would otherwise be measured as if it were
speech. CTM lines are the exception to "in file order": CTM files are often
concatenated or sorted by utterance, so an utterance's lines are ordered by
start time (as before) and only overlaps are refused.

Error messages quote no file contents: a message may hold the file's name, a
position (line, item, interval) and a short description, and a word only as
:func:`quote_word` clips it; a value that should have been a number or a word
is described by its kind ("a string", "a list"), never echoed. A word times
file may be anything (a mistaken symlink, a private document), and errors are
printed, logged and pasted into bug reports.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any, Sequence

from praatio.utilities import textgrid_io
from praatio.utilities.constants import INTERVAL_TIER, POINT_TIER

from ssbm_bench.errors import InputError
from ssbm_bench.text import normalise_word, normalise_words
from ssbm_bench.types import Word

#: labels that mark silence or noise rather than a word, beyond ``<...>``, ``[...]`` and ``++...++``
SILENCE_LABELS = frozenset({"sil", "sp", "pau"})

JSON_EXPECTED = (
    'a JSON list of {"word" (or "text"), "start", "end"} objects (seconds), an object with such a list '
    'under "words", or pocketsphinx JSON ({"w": [{"t", "b", "d"}]})'
)
TEXTGRID_EXPECTED = 'a Praat TextGrid (long or short text format, starting File type = "ooTextFile")'
CTM_EXPECTED = "CTM lines: utterance channel start duration word [confidence]"
#: a word may start this much (seconds) before the previous one ends: rounding in the tool that wrote the times
#: (CTM and pocketsphinx JSON give durations, summed here to 1 µs); a sixth of a sample at 16 kHz
OVERLAP_TOLERANCE = 1e-5
#: the most characters of a word (or tier name, utterance id) an error message quotes
QUOTE_LIMIT = 24


# -- helpers -------------------------------------------------------------------


def decode_text(data: bytes, source: str) -> str:
    """Bytes of a text file -> str: UTF-8 (BOM optional) or UTF-16 with a BOM (Praat writes both)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"{source}: not valid UTF-16 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a text file") from exc


def quote_word(text: Any, limit: int = QUOTE_LIMIT) -> str:
    """A word (or tier name, utterance id) for an error message: quoted, clipped to `limit` characters.

    Only something already parsed as a single short token is quoted this way;
    anything else is described by :func:`describe_value`. The clip bounds what
    an error can carry out of a file that was never meant to be read.
    """
    if not isinstance(text, str):
        return describe_value(text)
    return repr(clip(text, limit))


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, "..." marking a cut."""
    return text if len(text) <= limit else text[:limit] + "..."


def describe_value(value: Any) -> str:
    """A JSON value for an error message: a number as itself, anything else by its kind (never its text)."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"a string of {len(value)} characters"
    kinds = {list: "a list", dict: "an object"}
    return next((k for t, k in kinds.items() if isinstance(value, t)), f"a {type(value).__name__}")


def _secs(x: float) -> str:
    """Seconds as written in an error: at least two decimals ("1.20"), at most six."""
    s = f"{x:.6f}".rstrip("0")
    return s + "0" * max(0, 2 - len(s.partition(".")[2]))


def _span(label: str, w: Word) -> str:
    return f"{label} {quote_word(w.text)} [{_secs(w.start)}, {_secs(w.end)}]"


def check_word_order(entries: Sequence[tuple[str, Word]], source: str) -> None:
    """Refuse spoken words that start before, or overlap, the previous spoken word.

    `entries`: (position, word) in file order, the position as the message
    should name it ("word 3", "line 7", "tier 'words' interval 5"). Fillers
    (:func:`is_filler`) are left out: pocketsphinx's ``<s>`` and ``<sil>``
    overlap by design, and they are dropped before any word is used. Words may
    touch (one ends where the next starts), up to :data:`OVERLAP_TOLERANCE`.
    Why: every consumer of word times assumes one word at a time in spoken
    order; an overlap or a swap in a hand-written file is a mistake, and
    reading it as given would measure saliency on the wrong spans.
    """
    spoken = [(where, w) for where, w in entries if not is_filler(w.text)]
    for (prev_where, prev), (where, w) in zip(spoken, spoken[1:]):
        if w.start < prev.start - OVERLAP_TOLERANCE:
            problem = "starts before"
        elif w.start < prev.end - OVERLAP_TOLERANCE:
            problem = "overlaps"
        else:
            continue
        raise InputError(
            f"{source}: {_span(where, w)} {problem} {_span(prev_where, prev)}; expected words in spoken order, "
            "each starting at or after the end of the one before"
        )


def _word(source: str, where: str, text: Any, start: Any, end: Any) -> Word:
    try:
        s, e = float(start), float(end)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{source}{where}: start and end must be numbers (seconds), got {describe_value(start)} and "
            f"{describe_value(end)}"
        ) from exc
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{source}{where}: word must be a non-empty string, got {describe_value(text)}")
    if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e < s:
        raise InputError(f"{source}{where}: word {quote_word(text)}: expected 0 <= start <= end, got {s}..{e}")
    return Word(text.strip(), s, e)


def is_filler(label: str) -> bool:
    """True for silence/noise labels: ``<s>``, ``<sil>``, ``[NOISE]``, ``++um++``, ``sil``, ``sp``, ``pau``."""
    t = label.strip()
    if t.startswith(("<", "[", "++")):
        return True
    return t.lower() in SILENCE_LABELS or not normalise_word(t)


def drop_fillers(words: Sequence[Word]) -> list[Word]:
    return [w for w in words if not is_filler(w.text)]


def match_transcript(
    transcript: str | Sequence[str], aligned: Sequence[Word], *, alignment_source: str, transcript_source: str
) -> list[Word]:
    """Reference words of `transcript` with the times of `aligned`.

    Both sides are normalised (:func:`ssbm_bench.text.normalise_word`;
    fillers dropped from the alignment) and must then be the same words in
    the same order; the first difference is an InputError naming both
    sources, the position and the two words. Returns one Word per
    normalised transcript word, its text normalised.
    """
    ref = normalise_words(transcript if isinstance(transcript, str) else list(transcript))
    got = drop_fillers(aligned)
    keys = [normalise_word(w.text) for w in got]
    for i, (r, k) in enumerate(zip(ref, keys)):
        if r != k:
            raise InputError(
                f"{alignment_source}: word {i + 1} is {quote_word(got[i].text)} but the transcript {transcript_source} "
                f"has {quote_word(r)} there; the alignment's words must be the transcript's words"
            )
    if len(keys) < len(ref):
        raise InputError(
            f"{alignment_source}: the alignment ends after {len(keys)} words but the transcript {transcript_source} "
            f"goes on with {quote_word(ref[len(keys)])} (word {len(keys) + 1} of {len(ref)})"
        )
    if len(keys) > len(ref):
        raise InputError(
            f"{alignment_source}: word {len(ref) + 1} is {quote_word(got[len(ref)].text)} but the transcript "
            f"{transcript_source} ends after {len(ref)} words"
        )
    return [Word(r, w.start, w.end) for r, w in zip(ref, got)]


# -- JSON ------------------------------------------------------------------------


def parse_json_alignment(text: str, source: str) -> list[Word]:
    """Words of a JSON alignment (see the module doc), in file order, refused if out of order or overlapping."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); expected {JSON_EXPECTED}"
        ) from exc
    if isinstance(data, dict) and isinstance(data.get("w"), list) and "words" not in data:
        return _pocketsphinx_json(data["w"], source)
    if isinstance(data, dict) and "words" in data:
        data = data["words"]
    if not isinstance(data, list):
        raise InputError(f"{source}: expected {JSON_EXPECTED}; got a JSON {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        where = f", item {i + 1}"
        if not isinstance(item, dict):
            raise InputError(f"{source}{where}: expected an object with word, start, end; got {describe_value(item)}")
        key = "word" if "word" in item else "text" if "text" in item else None
        missing = [k for k in ("start", "end") if k not in item] + ([] if key else ["word (or text)"])
        if missing:
            raise InputError(f"{source}{where}: missing {', '.join(missing)}; expected {JSON_EXPECTED}")
        out.append(_word(source, where, item[key], item["start"], item["end"]))
    check_word_order([(f"word {i + 1}", w) for i, w in enumerate(out)], source)
    return out


def _pocketsphinx_json(items: list, source: str) -> list[Word]:
    out = []
    for i, item in enumerate(items):
        where = f", word {i + 1}"
        if not isinstance(item, dict) or not {"t", "b", "d"} <= set(item):
            raise InputError(f"{source}{where}: pocketsphinx JSON words need t, b and d; got {describe_value(item)}")
        try:
            b, d = float(item["b"]), float(item["d"])
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"{source}{where}: b and d must be numbers, got {describe_value(item['b'])} and "
                f"{describe_value(item['d'])}"
            ) from exc
        out.append(_word(source, where, item["t"], b, round(b + d, 6)))  # to the microsecond: no 0.32999...
    check_word_order([(f"word {i + 1}", w) for i, w in enumerate(out)], source)
    return out


# -- Praat TextGrid --------------------------------------------------------------
#
# praatio reads the file: textgrid_io.parseTextgridStr, the parser behind its openTextgrid. Not openTextgrid
# itself: its tier objects sort intervals by time (hiding words out of order, which check_word_order must
# see), refuse zero-length intervals and the overlapping fillers pocketsphinx writes, and quote labels in
# their errors; parseTextgridStr keeps every interval in file order, its times as the file writes them.
# Checked here, as praatio does not: the header (it reads any text), that it read as many tiers and items as
# the file declares (it stops quietly at a truncated or malformed item), minus signs (its long-format
# reader drops the one before an xmin) and exponents (which that reader refuses: written out here).

_TG_HEADER = re.compile(r'\A\ufeff?[ \t]*File type = "ooTextFile(?: short)?"[ \t]*\n[ \t]*Object class = "TextGrid"')
_TG_NO_TIERS = re.compile(r"^[ \t]*(?:tiers\? )?<absent>[ \t]*$", re.MULTILINE)
#: a time in exponent notation (Python's repr writes 1e-05), which praatio's long-format reader cannot read
_TG_EXPONENT = re.compile(r"^([ \t]*(?:xmin|xmax|number) ?= ?)(\d+\.?\d*[eE][-+]?\d+)(?=[ \t]*$)", re.MULTILINE)
_TG_NEGATIVE = re.compile(r"^[ \t]*(?:xmin|xmax|number) ?= ?-(?![ \t]*0*\.?0*[ \t]*$)", re.MULTILINE)


def _tg_declared_counts(text: str) -> tuple[int | None, list[int | None]]:
    """How many tiers, and items in each tier, the file says it holds (None: no count where one belongs)."""
    if "ooTextFile short" in text or "item [" not in text:  # praatio's own test for the short format
        lines = [ln.strip() for ln in text.splitlines()]
        tiers = next((lines[i + 1] for i, ln in enumerate(lines[:-1]) if ln == "<exists>"), None)
        items = [lines[i + 4] if i + 4 < len(lines) else None for i, ln in enumerate(lines)
                 if ln in (f'"{INTERVAL_TIER}"', f'"{POINT_TIER}"')]
    else:
        m = re.search(r"^[ \t]*size = (\d+)[ \t]*$", text, re.MULTILINE)
        tiers = m and m.group(1)
        items = re.findall(r"^[ \t]*(?:intervals|points): size = (\d+)[ \t]*$", text, re.MULTILINE)
    return _tg_count(tiers), [_tg_count(n) for n in items]


def _tg_count(s: str | None) -> int | None:
    return int(s) if s is not None and s.isdigit() else None


def _tg_seconds(value: Any, source: str, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"{source}: {what} is {describe_value(value)}, not a number; expected {TEXTGRID_EXPECTED}"
        ) from None


def parse_textgrid_tiers(text: str, source: str) -> list[dict]:
    """All tiers: [{"name", "class", "items": [(xmin, xmax, text)] or [(time, mark)]}], labels stripped."""
    text = text.replace("\r\n", "\n")  # as praatio does; line numbers stay
    if not _TG_HEADER.match(text):
        raise InputError(f"{source}: not a TextGrid; expected {TEXTGRID_EXPECTED} and Object class = \"TextGrid\"")
    if _TG_NO_TIERS.search(text):
        return []
    negative = _TG_NEGATIVE.search(text)
    if negative:
        line = text.count("\n", 0, negative.start()) + 1
        raise InputError(f"{source}, line {line}: a negative time; expected times of 0 s or more")
    # written out in full, the same decimal: float() of either is the same number
    text = _TG_EXPONENT.sub(lambda m: m.group(1) + format(Decimal(m.group(2)), "f"), text)
    try:
        grid = textgrid_io.parseTextgridStr(text, includeEmptyIntervals=True)
    except Exception as exc:  # praatio fails in many ways (IndexError, ValueError, ParsingError...) on bad input
        # `from None`: its messages may quote the file, and a chained cause would carry them into tracebacks
        raise InputError(
            f"{source}: could not be read as a TextGrid (praatio: {type(exc).__name__}, a field missing or "
            f"malformed); expected {TEXTGRID_EXPECTED}"
        ) from None
    declared_tiers, declared_items = _tg_declared_counts(text)
    if declared_tiers != len(grid["tiers"]):
        raise InputError(
            f"{source}: declares {declared_tiers if declared_tiers is not None else 'no number of'} tiers but "
            f"{len(grid['tiers'])} could be read (the file ends early, or a tier is malformed); "
            f"expected {TEXTGRID_EXPECTED}"
        )
    tiers = []
    for t, tier in enumerate(grid["tiers"]):
        name, cls, entries = tier["name"], tier["class"], list(tier["entries"])
        kind = "interval" if cls == INTERVAL_TIER else "point"
        declared = declared_items[t] if t < len(declared_items) else None
        if declared != len(entries):
            raise InputError(
                f"{source}: tier {t + 1} {quote_word(name)} declares "
                f"{declared if declared is not None else 'no number of'} {kind}s but {len(entries)} could be read "
                f"(the file ends early, or {'an' if kind == 'interval' else 'a'} {kind} is malformed); "
                f"expected {TEXTGRID_EXPECTED}"
            )
        fields = ("xmin", "xmax") if kind == "interval" else ("time",)
        items = [
            (*(_tg_seconds(v, source, f"{kind} {i + 1} of tier {quote_word(name)}: its {f}") for f, v in zip(fields, e)),
             e[-1])
            for i, e in enumerate(entries)
        ]
        tiers.append({"name": name, "class": cls, "items": items})
    return tiers


def parse_textgrid(text: str, source: str, tier: str | None = None) -> list[Word]:
    """Words of a TextGrid: tier `tier` if given, else "words"/"word", else the first interval tier.

    Empty intervals are skipped; the rest must be in spoken order without
    overlaps (:func:`check_word_order`), as Praat itself guarantees for a tier
    it wrote -- an overlap means the file was edited by hand or by a script.
    """
    tiers = [t for t in parse_textgrid_tiers(text, source) if t["class"] == "IntervalTier"]
    if not tiers:
        raise InputError(f"{source}: has no interval tier; expected a tier of words (named \"words\")")
    if tier is not None:
        chosen = [t for t in tiers if t["name"] == tier]
        if not chosen:
            names = ", ".join(quote_word(t["name"]) for t in tiers[:10]) + (" ..." if len(tiers) > 10 else "")
            raise InputError(f"{source}: no interval tier named {tier!r}; interval tiers: {names}")
    else:
        chosen = [t for t in tiers if t["name"].strip().lower() in ("words", "word")] or tiers
    entries = []
    where = f"tier {quote_word(chosen[0]['name'])} interval"
    for i, (xmin, xmax, label) in enumerate(chosen[0]["items"]):
        if not label.strip():
            continue
        entries.append((f"{where} {i + 1}", _word(source, f", {where} {i + 1}", label, xmin, xmax)))
    check_word_order(entries, source)
    return [w for _, w in entries]


# -- CTM ---------------------------------------------------------------------------


def parse_ctm(text: str, source: str) -> dict[str, list[Word]]:
    """{utterance: words sorted by start}, utterances in the order they first appear.

    An utterance's lines may come in any order (they are sorted by start time),
    but its spoken words must not overlap (:func:`check_word_order`, naming the
    two lines).
    """
    out: dict[str, list[tuple[str, Word]]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith((";;", "#")):
            continue
        parts = s.split()
        where = f", line {n}"
        if len(parts) not in (5, 6):
            raise InputError(f"{source}{where}: {len(parts)} fields; expected {CTM_EXPECTED}")
        utt, _channel, start, dur, word = parts[:5]
        try:
            b, d = float(start), float(dur)
            if len(parts) == 6:
                float(parts[5])
        except ValueError as exc:
            raise InputError(f"{source}{where}: start, duration and confidence must be numbers; expected {CTM_EXPECTED}") from exc
        if d < 0:
            raise InputError(f"{source}{where}: negative duration {d}")
        out.setdefault(utt, []).append((f"line {n}", _word(source, where, word, b, round(b + d, 6))))
    if not out:
        raise InputError(f"{source}: no CTM lines; expected {CTM_EXPECTED}")
    by_utt = {}
    for utt, entries in out.items():
        entries.sort(key=lambda e: e[1].start)  # stable: lines starting together keep their file order
        check_word_order(entries, f"{source}, utterance {quote_word(utt)}")
        by_utt[utt] = [w for _, w in entries]
    return by_utt


# -- Sphinx formats ------------------------------------------------------------------


def parse_matchseg(text: str, source: str, frame_rate: float = 100.0) -> dict[str, list[Word]]:
    """pocketsphinx ``-hypseg`` lines -> {utterance: words}; a word runs from its frame to the next one's."""
    out: dict[str, list[Word]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = f", line {n}"
        head, body = parts[:9], parts[9:]
        if len(head) < 9 or [head[1], head[3], head[5], head[7]] != ["S", "T", "A", "L"] or len(body) % 4 != 1:
            raise InputError(
                f"{source}{where}: expected utt S scale T score A acoustic L lm, then frame ascr lscr word per "
                "word, then the final frame"
            )
        try:
            frames = [int(body[i]) for i in range(0, len(body), 4)]
        except ValueError as exc:
            raise InputError(f"{source}{where}: start frames must be integers") from exc
        labels = [body[i + 3] for i in range(0, len(body) - 1, 4)]
        out[head[0]] = [
            _word(source, where, w, frames[i] / frame_rate, frames[i + 1] / frame_rate) for i, w in enumerate(labels)
        ]
    return out


_TRANSCRIPTION_LINE = re.compile(r"^(.*?)\s*\(([^()]+)\)\s*$")


def parse_sphinx_transcription(text: str, source: str) -> dict[str, str]:
    """``<s> words </s> (utt)`` lines -> {utterance: "words"} (sentence markers removed)."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _TRANSCRIPTION_LINE.match(line.strip())
        if not m:
            raise InputError(f"{source}, line {n}: expected <s> words </s> (utterance id)")
        words = [w for w in m.group(1).split() if w not in ("<s>", "</s>")]
        out[m.group(2).strip()] = " ".join(words)
    return out
