"""Every plugin kind is checked where it registers: a factory that cannot build its kind is refused, named.

A refused record is listed (``PluginRegistry.refused``, ``ssbm-bench plugins``)
with its plugin, package and what was expected, and a suite that names it is
refused before any model runs; it never takes the other plugins down. These
run in-process (extra plugin objects); tests/test_plugin_kinds_cli.py drives the
same through a real entry point and the CLI.
"""

from __future__ import annotations

import functools

import pytest

from ssbm_bench.board import Board
from ssbm_bench.errors import SuiteError
from ssbm_bench.corpus import Corpus
from ssbm_bench.executor import Executor
from ssbm_bench.fill import Fill
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.method import SaliencyMethod
from ssbm_bench.model import SpeechModel
from ssbm_bench.plugins import PluginError, build_registry
from ssbm_bench.records import (BASE_CLASS, GUIDE, KIND_OF_RECORD, BoardPlugin, CorpusPlugin, FamilyPlugin,
                                FillPlugin, MethodPlugin, ModelPlugin, factory_problem)


class PinkNoiseFill(Fill):
    """The contributor's fill: listed by `plugins` before, then AttributeError mid-run (no `apply`)."""

    name = "pink-noise"
    additive = True

    def noise(self, ctx):  # the work is here, but the interface's `apply` is missing
        return ctx.rng.standard_normal(ctx.n_samples)


class GoodFill(Fill):
    name = "good"

    def apply(self, clean, weight, ctx):
        return clean


class NotAFill:
    name = "duck"

    def apply(self, clean, weight, ctx):
        return clean


class DeafModel(SpeechModel):
    """Declares transcribe but never overrides it: every call would raise CapabilityMissing mid-run."""

    name = "deaf"
    capabilities = frozenset({"transcribe"})


class HalfMethod(SaliencyMethod):
    name = "half"


class HalfCorpus(Corpus):
    name = "half"

    def utterances(self):
        return iter(())


class HalfExecutor(Executor):
    name = "half"


class Family:
    def to_dict(self) -> dict:
        return {}


def make_fill() -> GoodFill:
    return GoodFill()


def make_wrong() -> dict:
    return {}


def make_maybe() -> GoodFill | None:
    return None


def make_unannotated():
    return GoodFill()


def make_family(seeds=3, log=print, training=None) -> Family:
    return Family()


def plugin(hook: str, *records, name: str = "kinds_test"):
    """An in-process plugin object whose `hook` registers `records`."""

    @hookimpl
    def impl(register):
        for r in records:
            register(r)

    return type(name, (), {"__name__": name, hook: staticmethod(impl)})()


def record(kind: str, factory, name: str = "x"):
    return KIND_OF_RECORD[kind](name=name, factory=factory, description="test")


@pytest.mark.parametrize("kind, factory, words", [
    ("fill", PinkNoiseFill, ["is abstract", "does not implement apply(self, clean", "ctx: FillContext",
                             "ssbm_bench.fill.Fill", "'Write a fill'"]),
    ("fill", NotAFill, ["does not subclass ssbm_bench.fill.Fill"]),
    ("fill", make_wrong, ["make_wrong() is annotated to return dict", "ssbm_bench.fill.Fill"]),
    ("fill", make_maybe, ["is annotated to return"]),
    ("fill", 42, ["is not callable"]),
    ("method", HalfMethod, ["is abstract", "explain(self, request: ExplainRequest) -> SaliencyMap",
                            "ssbm_bench.method.SaliencyMethod"]),
    ("corpus", HalfCorpus, ["is abstract", "digest(self) -> str", "ssbm_bench.corpus.Corpus"]),
    ("executor", HalfExecutor, ["is abstract", "run(self, jobs", "ssbm_bench.executor.Executor"]),
    ("model", GoodFill, ["does not subclass ssbm_bench.model.SpeechModel"]),
    ("model", DeafModel, ["declares capabilities it does not implement: transcribe (for transcribe)",
                          "overrides the methods of every capability it declares"]),
    ("board", GoodFill, ["does not subclass ssbm_bench.board.Board"]),
    ("family", GoodFill, ["has no to_dict() method", "'Write a seed family'"]),
    ("family", make_wrong, ["annotated to return dict", "to_dict()"]),
])
def test_a_factory_that_cannot_build_its_kind_is_named_with_what_was_expected(kind, factory, words):
    rec = record(kind, factory)
    if kind == "model":
        rec = ModelPlugin(name="x", factory=factory, description="test", capabilities=frozenset({"transcribe"}))
    problem = factory_problem(rec)
    assert problem is not None and "expected" in problem
    for w in words:
        assert w in problem, problem


@pytest.mark.parametrize("kind, factory", [
    ("fill", GoodFill), ("fill", make_fill), ("fill", make_unannotated), ("fill", functools.partial(GoodFill)),
    ("family", make_family), ("family", Family),
])
def test_a_factory_that_fits_passes(kind, factory):
    assert factory_problem(record(kind, factory)) is None


def test_every_kind_has_a_base_class_or_a_rule_and_a_guide():
    assert set(GUIDE) == set(KIND_OF_RECORD)
    assert set(BASE_CLASS) == set(KIND_OF_RECORD) - {"family"}
    assert factory_problem(record("board", Board)) is not None  # the base class itself is abstract


def test_a_refused_fill_is_listed_and_the_rest_of_its_plugin_loads():
    reg = build_registry(extra_plugins=[plugin("register_fills", FillPlugin.of(PinkNoiseFill, "pink"),
                                               FillPlugin.of(GoodFill, "good"))])
    assert "good" in reg.names("fill") and "pink-noise" not in reg.names("fill")
    assert "white-noise" in reg.names("fill")  # other plugins are untouched
    [refused] = reg.refused
    assert (refused.kind, refused.name, refused.plugin) == ("fill", "pink-noise", "kinds_test")
    assert "does not implement apply" in refused.message()
    assert refused.to_dict()["problem"] == refused.problem


def test_a_suite_naming_a_refused_fill_is_refused_before_any_model_runs(tmp_path):
    from ssbm_bench.harness.runner import run_suite
    from ssbm_bench.harness.suite import parse_suite

    reg = build_registry(extra_plugins=[plugin("register_fills", FillPlugin.of(PinkNoiseFill, "pink"))])
    suite = parse_suite({"suite": {"name": "pink"}, "corpus": {"name": "synthetic", "utterances": ["rms_h02_01"]},
                         "models": [{"name": "pocketsphinx"}], "methods": [{"name": "random"}],
                         "fills": [{"name": "pink-noise"}]}, registry=reg)
    db = tmp_path / "pink.sqlite"
    with pytest.raises(PluginError) as err:
        run_suite(suite, str(db), registry=reg, progress=False, log=lambda s: None)
    msg = str(err.value)
    assert "fill 'pink-noise' from plugin 'kinds_test'" in msg and "is refused" in msg
    assert "does not implement apply" in msg and "expected a subclass of ssbm_bench.fill.Fill" in msg
    assert not db.exists()  # refused before the results store opened: no calibration, no decoding


def test_a_hook_that_raises_is_refused_and_the_others_load():
    @hookimpl
    def register_methods(register):
        raise RuntimeError("my plugin's own bug")

    broken = type("broken", (), {"__name__": "broken", "register_methods": staticmethod(register_methods)})()
    reg = build_registry(extra_plugins=[broken])
    [refused] = reg.refused
    assert (refused.kind, refused.name, refused.plugin) == ("method", "", "broken")
    assert "register_methods raised RuntimeError: my plugin's own bug" in refused.message()
    assert "energy" in reg.names("method")


def test_a_board_that_cannot_be_built_is_refused_and_suites_still_parse():
    from ssbm_bench.harness.suite import parse_suite

    def make_board():  # no annotation: only building it shows it is not a Board
        return "not a board"

    def explode():
        raise RuntimeError("cannot build")

    reg = build_registry(extra_plugins=[plugin("register_boards", BoardPlugin(name="junk", factory=make_board,
                                                                              description="test"),
                                               BoardPlugin(name="boom", factory=explode, description="test"))])
    assert {r.name for r in reg.refused} == {"junk", "boom"}
    assert "junk" not in reg.names("board") and "ssbm" in reg.names("board")
    junk = next(r for r in reg.refused if r.name == "junk")
    assert "its factory built 'not a board'; expected a ssbm_bench.board.Board" in junk.problem
    suite = parse_suite({"suite": {"name": "s"}, "corpus": {"name": "synthetic"}, "models": [{"name": "pocketsphinx"}],
                         "methods": [{"name": "random"}]}, registry=reg)
    assert suite.boards == ("ssbm",)
    with pytest.raises(PluginError, match="board 'boom' .* is refused: its factory raised RuntimeError"):
        reg.get("board", "boom")
    # a suite naming it hears that it was refused, and why, not that no such board exists
    with pytest.raises(SuiteError, match=r"board 'junk' .* is refused: its factory built 'not a board'"):
        parse_suite({"suite": {"name": "s", "boards": ["junk"]}, "corpus": {"name": "synthetic"},
                     "models": [{"name": "pocketsphinx"}], "methods": [{"name": "random"}]}, registry=reg)


def test_every_first_party_plugin_passes_the_check():
    reg = build_registry(restrict=None)
    assert not reg.refused, [r.message() for r in reg.refused]
    for kind, entries in reg.by_kind.items():
        for name, r in entries.items():
            assert factory_problem(r.record) is None, (kind, name)


def test_other_records_of_the_kinds_are_accepted():
    reg = build_registry(extra_plugins=[
        plugin("register_fills", FillPlugin(name="made", factory=make_fill, description="t")),
        plugin("register_families", FamilyPlugin(name="fam", factory=make_family, description="t"), name="fam_p"),
        plugin("register_corpora", CorpusPlugin(name="half", factory=HalfCorpus, description="t"), name="corp_p"),
        plugin("register_methods", MethodPlugin(name="half", factory=HalfMethod, description="t"), name="meth_p"),
    ])
    assert "made" in reg.names("fill") and "fam" in reg.names("family")
    assert {(r.kind, r.name) for r in reg.refused} == {("corpus", "half"), ("method", "half")}
