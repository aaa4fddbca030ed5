"""The Harvard sentences used by the synthetic corpus.

Source: IEEE Subcommittee on Subjective Measurements, "IEEE Recommended
Practice for Speech Quality Measurements", IEEE Trans. Audio Electroacoust.
17(3), 1969 (lists 1-3; public domain). They are phonetically balanced and
contain no numbers or abbreviations, so every text normaliser speaks them the
same way and the engines' words map one-to-one onto the written words.

The ids (``h<list>_<sentence>``) never change meaning: utterance ids and
therefore results refer to them.
"""

from __future__ import annotations

import re

#: (list, sentence) -> text, in list order; the corpus uses the first 25.
_LISTS: dict[int, tuple[str, ...]] = {
    1: (
        "The birch canoe slid on the smooth planks.",
        "Glue the sheet to the dark blue background.",
        "It's easy to tell the depth of a well.",
        "These days a chicken leg is a rare dish.",
        "Rice is often served in round bowls.",
        "The juice of lemons makes fine punch.",
        "The box was thrown beside the parked truck.",
        "The hogs were fed chopped corn and garbage.",
        "Four hours of steady work faced us.",
        "A large size in stockings is hard to sell.",
    ),
    2: (
        "The boy was there when the sun rose.",
        "A rod is used to catch pink salmon.",
        "The source of the huge river is the clear spring.",
        "Kick the ball straight and follow through.",
        "Help the woman get back to her feet.",
        "A pot of tea helps to pass the evening.",
        "Smoky fires lack flame and heat.",
        "The soft cushion broke the man's fall.",
        "The salt breeze came across from the sea.",
        "The girl at the booth sold fifty bonds.",
    ),
    3: (
        "The small pup gnawed a hole in the sock.",
        "The fish twisted and turned on the bent hook.",
        "Press the pants and sew a button on the vest.",
        "The swan dive was far short of perfect.",
        "The beauty of the view stunned the young boy.",
    ),
}

#: sentence id -> text, in a stable order (list 1, 2, then 3).
SENTENCES: dict[str, str] = {
    f"h{lst:02d}_{i + 1:02d}": text for lst, texts in _LISTS.items() for i, text in enumerate(texts)
}

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def sentence_words(text: str) -> list[str]:
    """The written words of a sentence: lower case, punctuation dropped, "it's" kept whole."""
    return _WORD.findall(text.lower())
