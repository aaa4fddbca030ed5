"""TextGrids read by praatio, and what this project checks around it.

praatio (``textgrid_io.parseTextgridStr``) parses both text formats; these
tests pin what ``alignment_formats`` adds: the header check, the declared
tier and item counts (praatio stops quietly at a truncated item), minus
signs and exponents in the long format (its reader drops the one and refuses
the other), and messages that name the file and never quote it -- also not
through a chained praatio exception. Known answers are Praat's own layouts,
written here by hand and by praatio's writer.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from praatio.utilities import textgrid_io

from ssbm_bench.errors import InputError
from ssbm_bench.types import Word
from ssbm_bench_plugins.alignment_formats import parse_textgrid, parse_textgrid_tiers
from test_folder_corpus import LONG_TEXTGRID, SHORT_TEXTGRID

SECRET = "hunter2-TOP-SECRET-do-not-print"


def _long(intervals, name="words", xmax=2.0) -> str:
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0 ", f"xmax = {xmax} ",
           "tiers? <exists> ", "size = 1 ", "item []: ", "    item [1]:", '        class = "IntervalTier" ',
           f'        name = "{name}" ', "        xmin = 0 ", f"        xmax = {xmax} ",
           f"        intervals: size = {len(intervals)} "]
    for i, (a, b, t) in enumerate(intervals, start=1):
        out += [f"        intervals [{i}]:", f"            xmin = {a} ", f"            xmax = {b} ",
                f'            text = "{t}" ']
    return "\n".join(out) + "\n"


def _refused(text: str) -> str:
    with pytest.raises(InputError) as err:
        parse_textgrid(text, "g.TextGrid")
    message = str(err.value)
    assert message.startswith("g.TextGrid") and SECRET not in message
    assert err.value.__cause__ is None or SECRET not in str(err.value.__cause__)
    return message


def test_exponents_in_the_long_format_read_as_the_same_numbers():
    words = parse_textgrid(_long([(0, "1e-05", ""), ("1e-05", "0.5", "a"), ("0.5", "5.0E-1", ""),
                                  ("0.5", "1.25e0", "b")]), "g.TextGrid")
    assert words == [Word("a", 1e-05, 0.5), Word("b", 0.5, 1.25)]


def test_a_negative_time_in_the_long_format_is_refused_by_line():
    # praatio alone would read "xmin = -0.2" as 0.2
    assert _refused(_long([("-0.2", "0.5", "a")])) == (
        "g.TextGrid, line 16: a negative time; expected times of 0 s or more")
    assert parse_textgrid(_long([("-0", "0.5", "a")]), "g.TextGrid") == [Word("a", 0.0, 0.5)]  # Praat writes -0


def test_truncated_files_are_refused_by_their_declared_counts():
    intervals = [(0, 0.5, "a"), (0.5, 1, "b"), (1, 2, "c")]
    full = _long(intervals)
    cut = full[: full.index("        intervals [3]:")]  # ends after a whole interval: praatio reads two
    assert "tier 1 'words' declares 3 intervals but 2 could be read (the file ends early" in _refused(cut)
    three_tiers = LONG_TEXTGRID[: LONG_TEXTGRID.index("    item [3]:")]
    assert "declares 3 tiers but 2 could be read" in _refused(three_tiers)
    assert "could be read" in _refused(SHORT_TEXTGRID[:-20])


@pytest.mark.parametrize(
    "text",
    [
        _long([(0, "0.5", "a")]).replace("xmax = 0.5", f"xmax = {SECRET}"),  # not a number: praatio fails
        _long([(0, "0.5", "a")]).replace("            xmax = 0.5 \n", ""),  # a field missing
        _long([(0, "0.5", "a")]).replace('text = "a"', f"text = {SECRET}"),  # a label not quoted
        SHORT_TEXTGRID.replace("0.4\n0.9", f"0.4\n{SECRET}"),  # read by praatio, refused as not a number
        SHORT_TEXTGRID.replace('"tier one"', f'"{SECRET}"')[:-20],  # a tier name is clipped
        SHORT_TEXTGRID.replace("\n0\n1.5\n<exists>", f"\n{SECRET}\n1.5\n<exists>"),
    ],
)
def test_malformed_files_are_refused_without_quoting_them(text):
    _refused(text)


def test_praatio_failures_name_the_kind_of_failure_and_chain_nothing():
    with pytest.raises(InputError) as err:
        parse_textgrid(_long([(0, "0.5", "a")]).replace("xmax = 0.5", f"xmax = {SECRET}"), "g.TextGrid")
    assert str(err.value).startswith("g.TextGrid: could not be read as a TextGrid (praatio: ")
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_what_praatio_accepts_and_our_old_parser_did_too():
    """Zero-length words and overlapping fillers (praatio's tier objects refuse both), CRLF, a "short" header."""
    tg = _long([(0, 0.5, "<sil>"), (0.3, 0.6, "sp"), (0.6, 0.6, "a"), (0.6, 0.9, "b")])
    assert parse_textgrid(tg, "g.TextGrid") == [Word("<sil>", 0, 0.5), Word("sp", 0.3, 0.6), Word("a", 0.6, 0.6),
                                                 Word("b", 0.6, 0.9)]
    assert parse_textgrid(tg.replace("\n", "\r\n"), "g.TextGrid") == parse_textgrid(tg, "g.TextGrid")
    short = SHORT_TEXTGRID.replace('"ooTextFile"', '"ooTextFile short"')
    assert parse_textgrid(short, "g.TextGrid") == parse_textgrid(SHORT_TEXTGRID, "g.TextGrid")


def test_a_grid_without_tiers_has_no_interval_tier():
    head = 'File type = "ooTextFile"\nObject class = "TextGrid"\n\n'
    for text in (head + "xmin = 0 \nxmax = 1 \ntiers? <absent> \n", head + "0\n1\n<absent>\n"):
        assert parse_textgrid_tiers(text, "g.TextGrid") == []
        assert _refused(text) == 'g.TextGrid: has no interval tier; expected a tier of words (named "words")'


labels = st.sampled_from(["", "the", "cat", 'say "hi"', "naïve", "<sil>", "two words"])


@given(st.lists(st.integers(0, 400_000), min_size=2, max_size=10, unique=True), st.data(),
       st.sampled_from(["long_textgrid", "short_textgrid"]))
def test_what_praatio_writes_reads_back_as_written(bounds, data, fmt):
    """praatio's writer (both formats) -> these words, times to the float, in file order.

    Times are in units of 10 us (1e-05 s is written 1e-05 by repr), none but whole seconds near a whole second
    (praatio's writer writes a time that close to one as the whole number).
    """
    times = [b / 100_000 for b in sorted(bounds)]
    entries = [(a, b, data.draw(labels)) for a, b in zip(times, times[1:])]
    end = times[-1] + 1
    grid = {"xmin": 0.0, "xmax": end, "tiers": [
        {"class": "IntervalTier", "name": "phones", "xmin": 0.0, "xmax": end, "entries": [(0.0, end, "x")]},
        {"class": "IntervalTier", "name": "words", "xmin": 0.0, "xmax": end, "entries": entries}]}
    text = textgrid_io.getTextgridAsStr(grid, fmt, includeBlankSpaces=True, minimumIntervalLength=None)
    expected = [Word(label, s, e) for s, e, label in entries if label]
    assert parse_textgrid(text, "g.TextGrid") == expected
