"""Which transcript word each Whisper token belongs to.

A target in the benchmark is a *word* (normalised by ssbm_bench.text), but
Whisper scores *tokens* (byte-level BPE pieces such as " Dash", "wood",
"."). Teacher forcing needs, for each token, the index of the normalised
word it spells, so that a word's score is the sum over its own tokens.

Rule: the decoded text is split on whitespace exactly as
:func:`ssbm_bench.text.normalise_words` splits it, and each piece that
survives normalisation gets the next word index. A token maps to the piece
its characters fall in, unless the token itself spells nothing that
normalisation keeps (punctuation such as "." or "-", or a special token),
which maps to None. Token texts come from their bytes, so a character split
over two tokens (UTF-8) is never mis-counted.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from ssbm_bench.model import ForcedTranscript
from ssbm_bench.text import normalise_word, normalise_words


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: printable stand-in character -> byte."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(tokenizer, token_ids: Sequence[int], first_special: int) -> list[bytes]:
    """The bytes each token spells; special tokens (id >= `first_special`) spell nothing."""
    dec = _byte_decoder()
    pieces = tokenizer.convert_ids_to_tokens([int(t) for t in token_ids])
    out = []
    for tid, piece in zip(token_ids, pieces):
        if int(tid) >= first_special or piece is None:
            out.append(b"")
        else:
            out.append(bytes(dec[ch] for ch in piece if ch in dec))
    return out


def _spans(pieces: list[bytes]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded text and each token's [start, end) character span in it."""
    spans, joined = [], b""
    for p in pieces:
        start = len(joined.decode("utf-8", errors="ignore"))
        joined += p
        spans.append((start, len(joined.decode("utf-8", errors="ignore"))))
    return joined.decode("utf-8", errors="replace"), spans


def map_tokens_to_words(text: str, spans: list[tuple[int, int]]) -> tuple[list[int | None], list[str]]:
    """(word_of_token, words) with words == normalise_words(text)."""
    chunks = []  # (start, end, word index or None)
    n_words = 0
    for m in re.finditer(r"\S+", text):
        kept = normalise_words([m.group()])
        chunks.append((m.start(), m.end(), n_words if kept else None))
        n_words += len(kept)
    mapping: list[int | None] = []
    for start, end in spans:
        piece = text[start:end]
        index = None
        if normalise_word(piece):
            for c_start, c_end, w in chunks:
                if w is not None and c_start < end and start < c_end:
                    index = w
                    break
        mapping.append(index)
    words = normalise_words(text)
    assert len(words) == n_words, (text, words)
    return mapping, words


def build_forced_transcript(tokenizer, token_ids: Sequence[int], prompt_ids: Sequence[int], first_special: int,
                            meta: dict | None = None) -> ForcedTranscript:
    """A ForcedTranscript for `token_ids` (the tokens after the prompt, EOS excluded)."""
    ids = tuple(int(t) for t in token_ids)
    text, spans = _spans(token_bytes(tokenizer, ids, first_special))
    word_of_token, words = map_tokens_to_words(text, spans)
    return ForcedTranscript(text=text.strip(), token_ids=ids, word_of_token=tuple(word_of_token),
                            words=tuple(words), prompt_ids=tuple(int(t) for t in prompt_ids), meta=dict(meta or {}))
