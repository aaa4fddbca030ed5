"""`explain --word`: a word by index or by text, and errors that say what to type instead.

Real words of the committed synthetic corpus: rms_h02_01 is "the boy was there when the sun rose" (``the``
twice). The resolving function is tested directly; one CLI call shows the error arrives before any model
loads (the CLI names the word right after opening the corpus), so it is fast and prints no traceback.
"""

from __future__ import annotations

import re

import pytest

from e2e_helpers import RECOGNISED
from ssbm_bench.cli import build_parser, main
from ssbm_bench.errors import InputError
from ssbm_bench.plugins import get_registry
from ssbm_bench.types import Target
from ssbm_bench.word_explanation import did_you_mean, find_utterance, find_word

UTT_ID = RECOGNISED[0]
WORDS = ["the", "boy", "was", "there", "when", "the", "sun", "rose"]


@pytest.fixture(scope="module")
def utt():
    corpus = get_registry().create("corpus", "synthetic")
    u = find_utterance(corpus, "synthetic", UTT_ID)
    assert u.reference == WORDS  # what the messages below quote
    return u


def test_a_word_by_index_or_by_text_case_and_punctuation_ignored(utt):
    assert find_word(utt, "4") == Target("word", 4, "when")
    assert find_word(utt, " Sun. ") == Target("word", 6, "sun")
    assert find_word(utt, "ROSE") == Target("word", 7, "rose")


def test_an_unknown_word_gets_a_did_you_mean_with_its_index_and_the_words_listed(utt):
    with pytest.raises(InputError) as info:
        find_word(utt, "bhoy")
    msg = str(info.value)
    assert msg.startswith(f"utterance {UTT_ID!r} has no word 'bhoy'; its words: 0=the, 1=boy, 2=was, 3=there, 4=when, "
                          "5=the, 6=sun, 7=rose")
    assert msg.endswith("(did you mean 'boy' (word 1)?)")


def test_a_suggestion_that_occurs_twice_names_both_indices(utt):
    with pytest.raises(InputError, match=re.escape("(did you mean 'there' (word 3) or 'the' (words 0, 5)?)")):
        find_word(utt, "thee")


def test_nothing_close_gives_the_listing_alone(utt):
    with pytest.raises(InputError) as info:
        find_word(utt, "xylophone")
    assert "did you mean" not in str(info.value) and str(info.value).endswith("7=rose")
    assert did_you_mean(WORDS, "") == ""  # punctuation only: nothing to compare


def test_an_ambiguous_word_names_its_indices_and_asks_for_one(utt):
    with pytest.raises(InputError) as info:
        find_word(utt, "The")
    msg = str(info.value)
    assert msg.startswith(f"word 'The' occurs 2 times in utterance {UTT_ID!r} (at [0, 5]); give its index instead: "
                          "--word 0 or --word 5 (0=the, 1=boy")


def test_an_index_out_of_range_lists_the_words(utt):
    with pytest.raises(InputError, match=re.escape("has 8 words (0..7: 0=the, 1=boy, 2=was")):
        find_word(utt, "8")


def test_the_cli_names_the_word_before_any_model_loads(capsys, tmp_path):
    png = tmp_path / "x.png"
    code = main(["explain", "--utterance", UTT_ID, "--word", "sunn", "--model", "pocketsphinx", "--method", "energy",
                 "--out", str(png)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "has no word 'sunn'; its words: 0=the" in err and "(did you mean 'sun' (word 6)?)" in err
    code = main(["explain", "--utterance", UTT_ID, "--word", "the", "--model", "pocketsphinx", "--method", "energy",
                 "--out", str(png)])
    err = capsys.readouterr().err
    assert code == 2 and "(at [0, 5]); give its index instead: --word 0 or --word 5" in err
    assert not png.exists()


def test_an_unknown_utterance_points_to_corpus_show(capsys):
    code = main(["explain", "--utterance", "rms_h02_1", "--word", "0", "--model", "pocketsphinx", "--method", "energy"])
    err = capsys.readouterr().err
    assert code == 2 and "(did you mean " in err and "'rms_h02_01'" in err
    assert "`ssbm-bench corpus show synthetic` lists them with their words" in err


def test_a_misspelt_plugin_parameter_is_named_before_any_work(capsys):
    code = main(["explain", "--utterance", UTT_ID, "--word", "0", "--model", "pocketsphinx", "--method", "energy",
                 "--corpus-param", "limt=3"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "--corpus-param: corpus 'synthetic' has no parameter 'limt' (did you mean 'limit'?)" in err


def test_explain_help_points_to_corpus_show():
    sub = build_parser()._subparsers._group_actions[0].choices
    text = " ".join(sub["explain"].format_help().split())
    assert "`ssbm-bench corpus show CORPUS` lists them" in text
    assert "as `corpus show` numbers them" in text
