"""The plugin documentation is complete and true (in the style of datasette's test that every hook is documented).

* every hook specification, every plugin base class, every public name a
  plugin may import (``ssbm_bench.plugin_api``) and every member of the
  Board protocol is named in CONTRIBUTING.md;
* every installed first-party board is described in the README;
* the "Write a board" example runs: registered as an extra plugin it is a
  board like the others (a suite lists it, its rows rank and print, and a
  results store's cells of it reach the published page);
* every python snippet of CONTRIBUTING.md that defines a plugin runs: every
  kind has one, in the section that a refused plugin's message points to;
  each passes the registration check and does what its section says;
  installed together as one real package (pip, entry points) they are all
  listed by `ssbm-bench plugins --json`; and the fills (one additive, one
  replacing) and the executor run a tiny real suite (pocketsphinx on the
  committed synthetic corpus).
"""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

import ssbm_bench.hookspecs as hookspecs
import ssbm_bench.plugin_api as api
from ssbm_bench.board import Board
from ssbm_bench.plugins import build_registry
from ssbm_bench.records import BASE_CLASS, GUIDE, KIND_OF_RECORD

ROOT = Path(__file__).resolve().parent.parent
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text()
README = (ROOT / "README.md").read_text()


def documented(name: str, text: str = CONTRIBUTING) -> bool:
    return re.search(rf"`[^`]*\b{re.escape(name)}\b[^`]*`", text) is not None


HOOKS = sorted(n for n, f in vars(hookspecs).items() if n.startswith("register_") and callable(f))


def test_there_are_hooks():
    assert "register_boards" in HOOKS and len(HOOKS) == 7


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert documented(hook), f"hook {hook} is not documented in CONTRIBUTING.md"


@pytest.mark.parametrize("name", sorted(api.__all__))
def test_every_public_name_is_documented_and_importable(name):
    assert hasattr(api, name), f"ssbm_bench.plugin_api.__all__ names {name}, which it does not define"
    assert documented(name), f"ssbm_bench.plugin_api.{name} is not documented in CONTRIBUTING.md"


#: the base class of every plugin kind (FamilyPlugin's factory returns a plain object with to_dict())
BASES = {"Board": "board", "Corpus": "corpus", "Executor": "executor", "Fill": "fill", "SaliencyMethod": "method",
         "SpeechModel": "model"}


@pytest.mark.parametrize("name", sorted(BASES))
def test_every_plugin_base_class_is_public_and_documented(name):
    assert inspect.isclass(getattr(api, name)) and name in api.__all__
    assert documented(name), f"base class {name} is not documented in CONTRIBUTING.md"


def test_every_registered_first_party_plugin_builds_its_kind():
    """A registered board's factory builds a Board (the registry refuses anything else, naming the board)."""
    registry = build_registry()
    for name in registry.names("board"):
        assert isinstance(registry.board(name), api.Board)


BOARD_MEMBERS = sorted(n for n in vars(Board) if not n.startswith("_"))


@pytest.mark.parametrize("member", BOARD_MEMBERS)
def test_every_board_member_is_documented(member):
    section = CONTRIBUTING.split("## Write a board", 1)[1].split("\n## ", 1)[0]
    assert documented(member, section), f"Board.{member} is not described under 'Write a board' in CONTRIBUTING.md"


def test_every_installed_board_is_in_the_readme():
    for board in build_registry().boards():
        assert f"`{board.name}`" in README, f"board {board.name} is not described in README.md"


def board_example() -> types.ModuleType:
    block = CONTRIBUTING.split("## Write a board", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    module = types.ModuleType("contributing_board_example")
    exec(compile(block, "CONTRIBUTING.md (Write a board)", "exec"), module.__dict__)
    return module


def test_the_board_example_is_a_board_like_the_others(tmp_path):
    from ssbm_bench.harness.store import CellRow, ResultStore
    from ssbm_bench.harness.suite import parse_suite
    from ssbm_bench.publish import build_tables, source_from_store

    registry = build_registry(extra_plugins=[board_example()])
    assert "sparseness" in registry.names("board")
    board = registry.board("sparseness")
    suite = parse_suite({"suite": {"name": "t", "boards": ["ssbm", "sparseness"]}, "corpus": {"name": "synthetic"},
                         "models": [{"name": "pocketsphinx"}], "methods": [{"name": "energy"}, {"name": "random"}]},
                        registry=registry)
    assert suite.boards == ("ssbm", "sparseness") and suite.uses_grid

    def cell(method, utt, share):
        return CellRow(key=f"{method}-{utt}", board="sparseness", suite="t", suite_digest="d", corpus="synthetic",
                       corpus_digest="c", model="pocketsphinx", method=method, fill="white-noise", utterance=utt,
                       target="word:1:x", seed=0, status="ok", reason=None, result=None, raw={"share": share},
                       params={}, versions={"ssbm-bench": "0"})

    cells = [cell("energy", "u1", 0.05), cell("energy", "u2", 0.07), cell("random", "u1", 0.4),
             cell("random", "u2", 0.5)]
    rows = board.rows(cells)
    assert [(r.rank, r.method) for r in rows] == [(1, "energy"), (2, "random")]  # lower is better
    assert rows[0].score == pytest.approx(0.06) and rows[0].ci_low <= 0.06 <= rows[0].ci_high
    assert "| 1 | pocketsphinx | energy | 0.060 |" in board.to_markdown(rows)
    assert board.per_unit(cells[:2], {}) == {"u1": 0.05, "u2": 0.07}

    # a store's cells of the new board reach the published tables, with the paired test between neighbours
    db = tmp_path / "s.sqlite"
    with ResultStore(db) as store:
        run = store.start_run("t", "d", "", {"ssbm-bench": "0"})
        for c in cells:
            store.put_cell(c)
        store.record_plan(run, [c.key for c in cells])
        store.finish_run(run, "finished", {})
    import ssbm_bench.plugins as plugins

    plugins._CACHED = registry
    try:
        tables = build_tables([source_from_store(db)], registry)
    finally:
        plugins.reset_registry()
    [table] = [t for t in tables if t.board == "sparseness"]
    assert [r["method"] for r in table.rows] == ["energy", "random"]
    assert table.title.startswith("Sparseness — suite `t`") and "paired sign-flip test over 2 utterance(s)" in \
        table.notes[0]


# --- every plugin snippet of CONTRIBUTING.md ------------------------------------------------------------------------
def sections() -> dict[str, str]:
    """CONTRIBUTING.md's "## " sections by title."""
    return {part.split("\n", 1)[0].strip(): part for part in CONTRIBUTING.split("\n## ")[1:]}


def plugin_snippets() -> dict[str, str]:
    """Every python block that defines a plugin (has a @hookimpl), keyed by a slug of its section (+ its number)."""
    out = {}
    for title, body in sections().items():
        blocks = [b.split("```", 1)[0] for b in body.split("```python\n")[1:]]
        for i, block in enumerate(b for b in blocks if "@hookimpl" in b):
            out[re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") + (f"_{i}" if i else "")] = block
    return out


SNIPPETS = plugin_snippets()


def snippet_module(slug: str) -> types.ModuleType:
    module = types.ModuleType(f"contributing_{slug}")
    exec(compile(SNIPPETS[slug], f"CONTRIBUTING.md ({slug})", "exec"), module.__dict__)
    return module


def registered_by(slug: str) -> set[tuple[str, str]]:
    """(kind, name) of what a snippet registers, through the real registry (and its check), nothing else loaded."""
    registry = build_registry(extra_plugins=[snippet_module(slug)], restrict=set())
    assert not registry.refused, [r.message() for r in registry.refused]
    return {(kind, name) for kind, entries in registry.by_kind.items() for name in entries}


def test_every_plugin_kind_has_a_snippet_in_its_own_section():
    kinds = {}
    for slug in SNIPPETS:
        for kind, _ in registered_by(slug):
            kinds.setdefault(kind, set()).add(slug)
    assert set(kinds) == set(KIND_OF_RECORD), f"kinds without a CONTRIBUTING.md example: " \
                                              f"{set(KIND_OF_RECORD) - set(kinds)}"
    titles = sections()
    for kind, guide in GUIDE.items():  # a refused plugin's message names this section: it must be there
        assert guide in titles, f"CONTRIBUTING.md has no section {guide!r} (named for {kind} plugins)"
        slug = re.sub(r"[^a-z0-9]+", "_", guide.lower()).strip("_")
        assert slug in kinds[kind], f"section {guide!r} has no example of a {kind} plugin"


@pytest.mark.parametrize("kind, base", sorted((k, b.rsplit(".", 1)[1]) for k, b in BASE_CLASS.items()))
def test_each_kind_section_names_its_base_class(kind, base):
    assert documented(base, sections()[GUIDE[kind]]), f"section {GUIDE[kind]!r} does not name {base}"


def test_the_fill_section_says_additive_calibration_and_the_double_role():
    text = " ".join(sections()["Write a fill"].split())
    for words in ("`apply(clean, weight, ctx) -> torch.Tensor`", "`FillContext`", "`additive = True`",
                  "`additive = False`", "calibrates", "not calibrated", "`[[fills]]`", "replaces",
                  "baseline", "`ExplainRequest.fill`", "`ctx.level_db`", "UsesCorpusStats"):
        assert words in text, f"'Write a fill' does not say {words}"


def test_the_snippets_do_what_their_sections_say(tmp_path, monkeypatch):
    """Beyond registering: the model classifies, the corpus is stable, the executor runs every job, the family
    describes its members, the fills keep a zero weight's point and change a full weight's."""
    import json

    import numpy as np
    import torch

    from ssbm_bench.audio import StftConfig, stft
    from ssbm_bench.errors import InputError
    from ssbm_bench.fill import FillContext

    registry = build_registry(extra_plugins=[snippet_module(s) for s in SNIPPETS if s != "write_a_board"],
                              restrict=set())
    corpus = registry.create("corpus", "beeps", n=3)
    utterances = list(corpus.utterances())
    assert [u.id for u in utterances] == corpus.ids() and corpus.digest() == registry.create("corpus", "beeps",
                                                                                              n=3).digest()
    assert corpus.digest() != registry.create("corpus", "beeps", n=2).digest()
    with pytest.raises(InputError, match="n must be at least 1"):
        registry.create("corpus", "beeps", n=0)

    model = registry.create("model", "loudness")
    probabilities = model.classify([u.waveform for u in utterances] + [utterances[0].waveform * 1e-4])
    assert probabilities.shape == (4, 2) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert model.labels[int(np.argmax(probabilities[0]))] == "loud"
    assert model.labels[int(np.argmax(probabilities[-1]))] == "quiet"

    executor = registry.create("executor", "reversed")
    assert sorted(executor.run(iter(range(5)), lambda job, state: job * 2)) == [0, 2, 4, 6, 8]

    for k in range(2):
        (tmp_path / f"seed-{k}").mkdir()
    (tmp_path / "test.json").write_text(json.dumps({"ids": ["a", "b"], "labels": ["up", "down"], "predictions": {
        "seed-0": ["up", "down"], "seed-1": ["up", "up"]}}))
    monkeypatch.setenv("MY_FAMILY_DIR", str(tmp_path))
    family = registry.get("family", "my-commands").record.factory(seeds=2, log=lambda s: None, training=None)
    summary = family.to_dict()
    assert summary["members"] == {"seed-0": str(tmp_path / "seed-0"), "seed-1": str(tmp_path / "seed-1")}
    assert summary["agreement"]["accuracy"] == [1.0, 0.5] and summary["test_ids"] == ["a", "b"]
    with pytest.raises(InputError, match="missing seeds \\[2\\]"):
        registry.get("family", "my-commands").record.factory(seeds=3, log=lambda s: None, training=None)

    cfg = StftConfig()
    clean = stft(torch.as_tensor(utterances[0].waveform), cfg)
    for name, params in (("pink-noise", {}), ("floor", {"floor_db": -50.0})):
        fill = registry.create("fill", name, **params)
        weight = np.zeros(tuple(clean.shape))
        weight[:, : clean.shape[1] // 2] = 1.0
        ctx = FillContext(rng=np.random.default_rng(0), cfg=cfg, n_samples=len(utterances[0].waveform),
                          level_db=-10.0)
        out = fill.apply(clean, weight, ctx)
        assert out.shape == clean.shape and out.dtype == clean.dtype
        assert torch.allclose(out[:, clean.shape[1] // 2:], clean[:, clean.shape[1] // 2:], atol=1e-5)
        assert not torch.allclose(out[:, : clean.shape[1] // 2], clean[:, : clean.shape[1] // 2], atol=1e-3)
    assert registry.create("fill", "pink-noise").additive and not registry.create("fill", "floor").additive


SNIPPETS_DIST = "ssbm-bench-contributing-examples"


@pytest.fixture(scope="module")
def installed_snippets(tmp_path_factory):
    """Every plugin snippet as a module of one real package (one entry point each), pip-installed for the module;
    yields the environment that loads only those and ssbm-bench's own plugins (so an example plugin a
    contributor installed, which registers `word-span` too, cannot collide with the method snippet)."""
    import importlib.metadata as md

    from e2e_helpers import installed

    root = tmp_path_factory.mktemp("contributing-examples")
    for slug, code in SNIPPETS.items():
        (root / f"contributing_{slug}.py").write_text(code)
    entry_points = "\n".join(f"contributing_{slug} = \"contributing_{slug}\"" for slug in SNIPPETS)
    modules = ", ".join(f'"contributing_{slug}"' for slug in SNIPPETS)
    (root / "pyproject.toml").write_text(f"""[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{SNIPPETS_DIST}"
version = "0.0.1"
dependencies = []

[project.entry-points.ssbm_bench]
{entry_points}

[tool.setuptools]
py-modules = [{modules}]
""")
    own = [ep.name for ep in md.entry_points(group="ssbm_bench") if ep.dist is not None and ep.dist.name == "ssbm-bench"]
    with installed(root, SNIPPETS_DIST):
        yield {"SSBM_BENCH_PLUGINS": ",".join(own + [f"contributing_{slug}" for slug in SNIPPETS])}


def test_every_plugin_snippet_installed_is_listed(installed_snippets):
    import json

    from e2e_helpers import cli

    data = json.loads(cli("plugins", "--json", env=installed_snippets).stdout)
    listed = {(p["kind"], p["name"]): p for p in data["plugins"]}
    for slug in SNIPPETS:
        for kind, name in registered_by(slug):
            entry = listed.get((kind, name))
            assert entry is not None, f"{kind} {name!r} of CONTRIBUTING.md ({slug}) is not listed by `plugins`"
            assert (entry["distribution"], entry["plugin"]) == (SNIPPETS_DIST, f"contributing_{slug}")
    assert not data["failures"] and not data["refused"], (data["failures"], data["refused"])


def test_the_fill_and_executor_snippets_run_a_tiny_suite(installed_snippets, tmp_path):
    """The additive fill is calibrated, the replacing one is not, both are SSBM's noise, the executor runs it all."""
    from e2e_helpers import cli, leaderboard_json, write_suite

    suite = write_suite(tmp_path / "fills.toml", "contributing-fills", ["random"], limit=1, executor="reversed",
                        levels_db=(-10.0, 0.0))
    text = suite.read_text()
    assert '[[fills]]\nname = "white-noise"\n' in text
    suite.write_text(text.replace('[[fills]]\nname = "white-noise"\n', '[[fills]]\nname = "pink-noise"\n'
                                  '[[fills]]\nname = "floor"\nparams = { floor_db = -50.0 }\n'))
    db = tmp_path / "fills.sqlite"
    out = cli("run", str(suite), "--db", str(db), "--no-progress", env=installed_snippets)
    assert "pink-noise noise level" in out.stdout + out.stderr
    rows = {r["fill"]: r for r in leaderboard_json(db)}
    assert set(rows) == {"pink-noise", "floor[floor_db=-50.0]"}
    for fill, row in rows.items():
        assert row["n"] == 1 and row["errors"] == 0 and row["score"] is not None, row
        assert row["versions"]["plugins"][f"fill:{fill.split('[')[0]}"] == f"{SNIPPETS_DIST}==0.0.1"
        assert row["versions"]["plugins"]["executor:reversed"] == f"{SNIPPETS_DIST}==0.0.1"
    assert rows["pink-noise"]["noise_level_db"] in (-10.0, 0.0)  # calibrated: one of the suite's levels
    assert rows["floor[floor_db=-50.0]"]["noise_level_db"] == 0.0  # replacing: nothing to calibrate
