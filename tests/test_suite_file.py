"""Suite files are checked strictly: a typo is an error, not a silent default."""

from __future__ import annotations

import pytest

from ssbm_bench.cli import resolve_suite_path
from ssbm_bench.errors import SuiteError
from ssbm_bench.harness.suite import load_suite

GOOD = """
[suite]
name = "t"
[corpus]
name = "synthetic"
limit = 2
[[models]]
name = "pocketsphinx"
[[methods]]
name = "energy"
"""


def write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_good_suite_parses_with_defaults(tmp_path):
    s = load_suite(write(tmp_path, GOOD))
    assert s.name == "t" and s.utterance_limit == 2
    assert [f.name for f in s.fills] == ["white-noise"]
    assert s.seeds == (0,) and s.executor.name == "inprocess"


def test_digest_ignores_comments_but_not_content(tmp_path):
    a = load_suite(write(tmp_path, GOOD)).digest
    b = load_suite(write(tmp_path, "# a comment\n" + GOOD)).digest
    c = load_suite(write(tmp_path, GOOD.replace("limit = 2", "limit = 3"))).digest
    assert a == b and a != c


def test_typo_key_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path, GOOD.replace("limit = 2", "limt = 2")))
    msg = str(err.value)
    assert "'limt'" in msg and "[corpus]" in msg and "did you mean 'limit'" in msg


def test_typo_section_is_named(tmp_path):
    with pytest.raises(SuiteError, match="unknown key 'method'"):
        load_suite(write(tmp_path, GOOD.replace("[[methods]]", "[[method]]")))


@pytest.mark.parametrize("old,new,expected", [
    ("limit = 2", "limit = 0", "corpus.limit must be at least 1"),
    ("limit = 2", 'limit = "two"', "corpus.limit must be int"),
    ('name = "t"', 'name = "t"\nboards = ["nope"]', "unknown board 'nope'"),
])
def test_bad_values_are_explained(tmp_path, old, new, expected):
    with pytest.raises(SuiteError, match=expected):
        load_suite(write(tmp_path, GOOD.replace(old, new, 1)))


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(SuiteError, match="not valid TOML"):
        load_suite(write(tmp_path, "[suite\nname="))
    with pytest.raises(SuiteError, match="not found"):
        load_suite(tmp_path / "nope.toml")


def test_shipped_suites_parse():
    for name in ("quick", "standard"):
        assert load_suite(resolve_suite_path(name)).name == name
