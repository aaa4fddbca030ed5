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
* Praat TextGrid (:func:`parse_textgrid`), long ("text") and short formats:
  the tier named "words" (or "word"), else the first interval tier; empty
  intervals are skipped.
* CTM (:func:`parse_ctm`): ``utt channel start duration word [confidence]``
  per line, several utterances per file; ``;;`` and ``#`` lines are comments.
* Sphinx match-segmentation (:func:`parse_matchseg`, pocketsphinx's
  ``-hypseg`` output): ``utt S scale T score A acoustic L lm`` then
  ``frame ascr lscr word`` per word and the final frame, 100 frames a second.
* Sphinx transcription (:func:`parse_sphinx_transcription`): ``<s> words
  </s> (utt)`` per line (no times).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Sequence

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


def _word(source: str, where: str, text: Any, start: Any, end: Any) -> Word:
    try:
        s, e = float(start), float(end)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}{where}: start and end must be numbers (seconds), got {start!r}, {end!r}") from exc
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{source}{where}: word must be a non-empty string, got {text!r}")
    if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e < s:
        raise InputError(f"{source}{where}: word {text!r}: expected 0 <= start <= end, got {s}..{e}")
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
                f"{alignment_source}: word {i + 1} is {got[i].text!r} but the transcript {transcript_source} has "
                f"{r!r} there; the alignment's words must be the transcript's words"
            )
    if len(keys) < len(ref):
        raise InputError(
            f"{alignment_source}: the alignment ends after {len(keys)} words but the transcript {transcript_source} "
            f"goes on with {ref[len(keys)]!r} (word {len(keys) + 1} of {len(ref)})"
        )
    if len(keys) > len(ref):
        raise InputError(
            f"{alignment_source}: word {len(ref) + 1} is {got[len(ref)].text!r} but the transcript "
            f"{transcript_source} ends after {len(ref)} words"
        )
    return [Word(r, w.start, w.end) for r, w in zip(ref, got)]


# -- JSON ------------------------------------------------------------------------


def parse_json_alignment(text: str, source: str) -> list[Word]:
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
            raise InputError(f"{source}{where}: expected an object with word, start, end; got {item!r}")
        key = "word" if "word" in item else "text" if "text" in item else None
        missing = [k for k in ("start", "end") if k not in item] + ([] if key else ["word (or text)"])
        if missing:
            raise InputError(f"{source}{where}: missing {', '.join(missing)}; expected {JSON_EXPECTED}")
        out.append(_word(source, where, item[key], item["start"], item["end"]))
    return out


def _pocketsphinx_json(items: list, source: str) -> list[Word]:
    out = []
    for i, item in enumerate(items):
        where = f", word {i + 1}"
        if not isinstance(item, dict) or not {"t", "b", "d"} <= set(item):
            raise InputError(f"{source}{where}: pocketsphinx JSON words need t, b and d; got {item!r}")
        try:
            b, d = float(item["b"]), float(item["d"])
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}{where}: b and d must be numbers, got {item['b']!r}, {item['d']!r}") from exc
        out.append(_word(source, where, item["t"], b, round(b + d, 6)))  # to the microsecond: no 0.32999...
    return out


# -- Praat TextGrid --------------------------------------------------------------

_TG_TOKEN = re.compile(
    r'"((?:[^"]|"")*)"'  # a string ("" is an escaped quote)
    r"|(\[[^\]\"]*\])"  # "item [1]:", "intervals [3]:" -- indices, ignored
    r"|(<exists>|<absent>)"
    r"|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(![^\n]*)",  # a comment (short format), ignored
    re.DOTALL,
)


def _textgrid_tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for m in _TG_TOKEN.finditer(text):
        s, _, flag, num, _ = m.groups()
        if s is not None:
            out.append(("str", s.replace('""', '"')))
        elif flag is not None:
            out.append(("flag", flag))
        elif num is not None:
            out.append(("num", float(num)))
    return out


def parse_textgrid_tiers(text: str, source: str) -> list[dict]:
    """All tiers: [{"name", "class", "items": [(xmin, xmax, text)] or [(time, mark)]}]."""
    toks = _textgrid_tokens(text)
    pos = 0

    def take(kind: str, what: str):
        nonlocal pos
        if pos >= len(toks):
            raise InputError(f"{source}: ends early, while reading {what}; expected {TEXTGRID_EXPECTED}")
        k, v = toks[pos]
        if k != kind:
            raise InputError(
                f"{source}: expected {what} ({'a number' if kind == 'num' else 'a quoted string'}) but found "
                f"{v!r}; expected {TEXTGRID_EXPECTED}"
            )
        pos += 1
        return v

    if len(toks) < 2 or toks[0] != ("str", "ooTextFile") or toks[1] != ("str", "TextGrid"):
        raise InputError(f"{source}: not a TextGrid; expected {TEXTGRID_EXPECTED} and Object class = \"TextGrid\"")
    pos = 2
    take("num", "the grid's xmin")
    take("num", "the grid's xmax")
    if pos < len(toks) and toks[pos][0] == "flag":
        if toks[pos][1] == "<absent>":
            return []
        pos += 1
    n_tiers = int(take("num", "the number of tiers"))
    tiers = []
    for t in range(n_tiers):
        cls = take("str", f"tier {t + 1}'s class")
        name = take("str", f"tier {t + 1}'s name")
        take("num", f"tier {t + 1}'s xmin")
        take("num", f"tier {t + 1}'s xmax")
        n = int(take("num", f"tier {t + 1}'s number of items"))
        items: list[tuple] = []
        if cls == "IntervalTier":
            for i in range(n):
                what = f"interval {i + 1} of tier {name!r}"
                items.append((take("num", f"{what}'s xmin"), take("num", f"{what}'s xmax"), take("str", f"{what}'s text")))
        elif cls == "TextTier":
            for i in range(n):
                what = f"point {i + 1} of tier {name!r}"
                items.append((take("num", f"{what}'s time"), take("str", f"{what}'s mark")))
        else:
            raise InputError(f"{source}: tier {t + 1} has class {cls!r}; expected IntervalTier or TextTier")
        tiers.append({"name": name, "class": cls, "items": items})
    return tiers


def parse_textgrid(text: str, source: str, tier: str | None = None) -> list[Word]:
    """Words of a TextGrid: tier `tier` if given, else "words"/"word", else the first interval tier."""
    tiers = [t for t in parse_textgrid_tiers(text, source) if t["class"] == "IntervalTier"]
    if not tiers:
        raise InputError(f"{source}: has no interval tier; expected a tier of words (named \"words\")")
    if tier is not None:
        chosen = [t for t in tiers if t["name"] == tier]
        if not chosen:
            names = ", ".join(repr(t["name"]) for t in tiers)
            raise InputError(f"{source}: no interval tier named {tier!r}; interval tiers: {names}")
    else:
        chosen = [t for t in tiers if t["name"].strip().lower() in ("words", "word")] or tiers
    out = []
    for i, (xmin, xmax, label) in enumerate(chosen[0]["items"]):
        if not label.strip():
            continue
        out.append(_word(source, f", tier {chosen[0]['name']!r} interval {i + 1}", label, xmin, xmax))
    return out


# -- CTM ---------------------------------------------------------------------------


def parse_ctm(text: str, source: str) -> dict[str, list[Word]]:
    """{utterance: words sorted by start}, utterances in the order they first appear."""
    out: dict[str, list[Word]] = {}
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
        out.setdefault(utt, []).append(_word(source, where, word, b, round(b + d, 6)))
    if not out:
        raise InputError(f"{source}: no CTM lines; expected {CTM_EXPECTED}")
    return {u: sorted(ws, key=lambda w: w.start) for u, ws in out.items()}


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
            raise InputError(f"{source}{where}: start frames must be integers ({exc})") from exc
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
