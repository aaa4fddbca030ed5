"""Whisper's special tokens and decoding prompt, read from the tokenizer.

The ids differ between English-only and multilingual models (tiny.en:
<|endoftext|> 50256, <|startoftranscript|> 50257; base: 50257, 50258), so
they are looked up by name in the shipped tokenizer rather than hard-coded.
The prompt is the one both faces of the model decode after:
``<|startoftranscript|> <|notimestamps|>`` for an English-only model and
``<|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>`` for a
multilingual one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ssbm_bench.errors import InputError

_LANGUAGE = re.compile(r"^<\|([a-z]{2,3}|haw|yue)\|>$")


@dataclass(frozen=True)
class SpecialTokens:
    eot: int
    sot: int
    no_timestamps: int
    transcribe: int | None
    translate: int | None
    start_of_prev: int | None
    #: "<|en|>" -> id; empty for an English-only model
    languages: Mapping[str, int]

    @property
    def english_only(self) -> bool:
        return not self.languages

    def prompt(self, language: str | None = "en", task: str = "transcribe") -> tuple[int, ...]:
        """The decoder prompt; language and task are ignored by an English-only model."""
        if self.english_only:
            return (self.sot, self.no_timestamps)
        lang = f"<|{language or 'en'}|>"
        if lang not in self.languages:
            raise InputError(f"whisper: unknown language {language!r}; known: "
                             f"{', '.join(sorted(k[2:-2] for k in self.languages))}")
        task_id = {"transcribe": self.transcribe, "translate": self.translate}.get(task)
        if task_id is None:
            raise InputError(f"whisper: unknown task {task!r}; expected transcribe or translate")
        return (self.sot, self.languages[lang], task_id, self.no_timestamps)

    @classmethod
    def from_vocab(cls, vocab: Mapping[str, int], source: str, english_only: bool) -> "SpecialTokens":
        """From a token -> id mapping that includes the added (special) tokens.

        `english_only` comes from the model, not the tokenizer: tiny.en's
        tokenizer lists the language tokens too, but the model was never
        trained to read them (see :func:`is_english_only`).
        """

        def need(token: str) -> int:
            if token not in vocab:
                raise InputError(f"whisper tokenizer {source}: no {token} token; is this a Whisper tokenizer?")
            return int(vocab[token])

        sot = need("<|startoftranscript|>")
        translate = vocab.get("<|translate|>")
        # language tokens sit between <|startoftranscript|> and <|translate|>
        languages = {
            tok: int(i) for tok, i in vocab.items()
            if not english_only and _LANGUAGE.match(tok) and translate is not None and sot < int(i) < int(translate)
        }
        return cls(
            eot=need("<|endoftext|>"),
            sot=sot,
            no_timestamps=need("<|notimestamps|>"),
            transcribe=vocab.get("<|transcribe|>"),
            translate=translate,
            start_of_prev=vocab.get("<|startofprev|>"),
            languages=languages,
        )

    @classmethod
    def from_tokenizer_json(cls, path: str | Path, english_only: bool) -> "SpecialTokens":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            added = {t["content"]: int(t["id"]) for t in data["added_tokens"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"whisper tokenizer {path}: cannot read its added tokens ({exc})") from exc
        return cls.from_vocab(added, str(path), english_only)


def is_english_only(vocab_size: int) -> bool:
    """Whisper's own rule (openai/whisper, transformers): multilingual models have 51865+ tokens."""
    return vocab_size < 51865
