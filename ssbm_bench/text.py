"""Word normalisation shared by corpora, models and scoring.

Recognisers differ in case, punctuation and alternate-pronunciation markers
("the(2)" in pocketsphinx); scoring must compare words, not spellings.
"""

from __future__ import annotations

import re

_ALT_PRON = re.compile(r"\(\d+\)$")
_STRIP = re.compile(r"[^a-z0-9']+")


def normalise_word(word: str) -> str:
    """Lower-case, drop alternate-pronunciation markers and punctuation."""
    w = _ALT_PRON.sub("", word.strip().lower())
    w = _STRIP.sub("", w)
    return w.strip("'")


def normalise_words(text_or_words: str | list[str] | tuple[str, ...]) -> list[str]:
    """Split (if given a string) and normalise, dropping empty tokens and fillers."""
    tokens = text_or_words.split() if isinstance(text_or_words, str) else list(text_or_words)
    out = []
    for t in tokens:
        if t.startswith("<") or t.startswith("[") or t.startswith("++"):
            continue  # <s>, </s>, <sil>, [NOISE], ++garbage++ fillers
        n = normalise_word(t)
        if n:
            out.append(n)
    return out
