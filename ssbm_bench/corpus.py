"""The corpus interface: utterances with words, times and labels.

A corpus has a content digest so that every result names exactly the audio
it was computed on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

from .types import Utterance


class Corpus(ABC):
    name: str = "corpus"

    @abstractmethod
    def utterances(self) -> Iterator[Utterance]:
        """Yield utterances in a stable order."""

    @abstractmethod
    def digest(self) -> str:
        """A content digest (hex) of the audio and annotations."""

    def ids(self) -> list[str]:
        return [u.id for u in self.utterances()]

    def get(self, utt_id: str) -> Utterance:
        for u in self.utterances():
            if u.id == utt_id:
                return u
        from .errors import InputError

        raise InputError(f"corpus {self.name!r}: no utterance with id {utt_id!r}")

    def describe(self) -> dict:
        return {"name": self.name, "digest": self.digest()}
