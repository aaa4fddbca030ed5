"""Suite files are checked strictly: a typo is an error, not a silent default."""

from __future__ import annotations

import pytest

from ssbm_bench.cli import resolve_suite_path
from ssbm_bench.errors import SuiteError
from ssbm_bench.harness.suite import load_suite
from ssbm_bench.hookspecs import hookimpl

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


def test_corpus_models_and_methods_are_needed_only_by_the_ssbm_and_deletion_boards(tmp_path):
    only = """
[suite]
name = "st"
boards = ["stability"]
[stability]
excerpts = 2
"""
    suite = load_suite(write(tmp_path, only))
    # the default corpus enters the cell keys only (the excerpts are the stability board's own corpus)
    assert suite.corpus.name == "synthetic" and suite.models == () and suite.methods == ()
    assert suite.settings["stability"].corpus.name == "vad-ground-truth"
    for board in ("ssbm", "deletion"):
        with pytest.raises(SuiteError, match=r"\[corpus\] with a 'name' is required"):
            load_suite(write(tmp_path, only.replace('["stability"]', f'["stability", "{board}"]')))
    no_models = GOOD.replace('[[models]]\nname = "pocketsphinx"\n', "")
    with pytest.raises(SuiteError, match=r"\[\[models\]\] must list at least one entry .* cross the corpus"):
        load_suite(write(tmp_path, no_models))


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(SuiteError, match="not valid TOML"):
        load_suite(write(tmp_path, "[suite\nname="))
    with pytest.raises(SuiteError, match="not found"):
        load_suite(tmp_path / "nope.toml")


def test_shipped_suites_parse():
    for name in ("quick", "standard"):
        assert load_suite(resolve_suite_path(name)).name == name


TWO_MODELS = GOOD + """
[[models]]
name = "whisper-tiny-en"
[[models]]
name = "transformers-dir"
params = { path = "x" }
[[methods]]
name = "random"
"""


def test_a_method_can_be_restricted_to_some_models(tmp_path):
    text = TWO_MODELS.replace('name = "random"', 'name = "random"\nmodels = ["whisper-tiny-en"]')
    s = load_suite(write(tmp_path, text))
    by_model = {m.label: [x.name for x in s.methods_for(m)] for m in s.models}
    assert by_model == {"pocketsphinx": ["energy"], "whisper-tiny-en": ["energy", "random"],
                        "transformers-dir[path=x]": ["energy"]}
    assert s.runs("whisper-tiny-en", "random") and not s.runs("pocketsphinx", "random")
    assert s.runs("pocketsphinx", "energy") and not s.runs("nope", "energy")
    # the method itself (and so every cell key) is unchanged by the restriction; the suite digest is not
    assert s.methods[1].to_dict() == {"name": "random", "params": {}}
    assert s.digest != load_suite(write(tmp_path, TWO_MODELS)).digest
    # without `models` every method runs on every model
    plain = load_suite(write(tmp_path, TWO_MODELS))
    assert all(len(plain.methods_for(m)) == 2 for m in plain.models)


def test_a_restriction_matches_a_name_or_one_labelled_copy(tmp_path):
    s = load_suite(write(tmp_path, TWO_MODELS.replace(
        'name = "random"', 'name = "random"\nmodels = ["transformers-dir[path=x]", "pocketsphinx"]')))
    assert [m.label for m in s.models if s.runs(m.label, "random")] == ["pocketsphinx", "transformers-dir[path=x]"]


@pytest.mark.parametrize("value, expected", [
    ('["whisper-tiny"]', r"'whisper-tiny' is not a model of this suite \(did you mean 'whisper-tiny-en'\?\); "
                         r"its \[\[models\]\] are: pocketsphinx, whisper-tiny-en, transformers-dir\[path=x\]"),
    ('[]', "methods\\[1\\] \\(random\\).models must be a non-empty list of model names"),
    ('"whisper-tiny-en"', "must be a non-empty list of model names"),
    ('[1]', "must be a non-empty list of model names"),
])
def test_unknown_or_malformed_model_restrictions_are_errors(tmp_path, value, expected):
    with pytest.raises(SuiteError, match=expected):
        load_suite(write(tmp_path, TWO_MODELS.replace('name = "random"', f'name = "random"\nmodels = {value}')))


class TwoBandModels:
    __name__ = "two_band_models"

    @staticmethod
    @hookimpl
    def register_models(register):
        from ssbm_bench.records import ModelPlugin

        from fake_models import BandModel

        for name in ("band-a", "band-b"):
            register(ModelPlugin(name=name, factory=BandModel, description="test: band classifier",
                                 capabilities=frozenset({"classify", "differentiable"})))


def test_the_runner_crosses_a_restricted_method_only_with_its_models(tmp_path):
    """Cells exist only for the (model, method) pairs the suite crosses; an unrestricted method runs on all."""
    from ssbm_bench.harness.runner import run_suite
    from ssbm_bench.harness.store import ResultStore
    from ssbm_bench.harness.suite import parse_suite
    from ssbm_bench.plugins import build_registry

    registry = build_registry(extra_plugins=[TwoBandModels()])
    suite = parse_suite({
        "suite": {"name": "restricted", "boards": ["deletion"]},
        "corpus": {"name": "synthetic", "utterances": ["rms_h02_01"]},
        "models": [{"name": "band-a"}, {"name": "band-b"}],
        "methods": [{"name": "random", "models": ["band-b"]}, {"name": "saliency"}],
        "fills": [{"name": "zero"}], "deletion": {"fractions": [0.5]},
    })
    logs: list[str] = []
    summary = run_suite(suite, str(tmp_path / "r.sqlite"), registry=registry, progress=False, log=logs.append)
    assert summary.errors == 0
    with ResultStore(tmp_path / "r.sqlite") as store:
        pairs = sorted((c.model, c.method) for c in store.cells(board="deletion"))
    assert pairs == [("band-a", "saliency"), ("band-b", "random"), ("band-b", "saliency")]
    assert any("[band-a] not run with: random" in line for line in logs)


def test_the_versions_record_names_the_plugins_each_board_uses():
    from ssbm_bench.harness.runner import plugins_used
    from ssbm_bench.harness.suite import parse_suite
    import tomllib

    grid = parse_suite(tomllib.loads(GOOD))
    assert plugins_used(grid) == [("corpus", "synthetic"), ("model", "pocketsphinx"), ("method", "energy"),
                                  ("fill", "white-noise"), ("executor", "inprocess")]
    only = parse_suite(tomllib.loads("""
[suite]
name = "r"
boards = ["isa", "stability"]
[isa]
families = ["voices"]
[[isa.methods]]
name = "saliency"
[stability]
fills = ["zero", "mean_inp"]
"""))
    # no default corpus or fill of the unused grid: the families, their loader, the stability board's parts
    assert plugins_used(only) == [("family", "voices"), ("model", "speechbrain-dir"), ("method", "saliency"),
                                  ("model", "silero-vad"), ("method", "soundlime-temporal"),
                                  ("corpus", "vad-ground-truth"), ("fill", "zero"), ("fill", "mean_inp"),
                                  ("executor", "inprocess")]


def test_every_committed_suite_parses_and_names_registered_plugins():
    """A suite under leaderboards/suites/ is a public artefact (make leaderboard, submissions): each must
    load, and each plugin it names must be registered here."""
    from pathlib import Path

    from ssbm_bench.harness.runner import plugins_used
    from ssbm_bench.plugins import get_registry

    registry = get_registry()
    files = sorted((Path(__file__).resolve().parent.parent / "leaderboards" / "suites").glob("*.toml"))
    assert len(files) >= 10
    for f in files:
        suite = load_suite(f)
        assert suite.name == f.stem, f"{f.name}: [suite] name {suite.name!r} differs from the file name"
        for kind, name in plugins_used(suite):
            registry.get(kind, name)  # raises, naming the plugin, when it is not registered
