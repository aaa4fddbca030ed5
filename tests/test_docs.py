"""The plugin documentation is complete and true (in the style of datasette's test that every hook is documented).

* every hook specification, every plugin base class, every public name a
  plugin may import (``ssbm_bench.plugin_api``) and every member of the
  Board protocol is named in CONTRIBUTING.md;
* every installed first-party board is described in the README;
* the "Write a board" example runs: registered as an extra plugin it is a
  board like the others (a suite lists it, its rows rank and print, and a
  results store's cells of it reach the published page).
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
