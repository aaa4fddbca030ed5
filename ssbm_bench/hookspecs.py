"""Hook specifications: one registration hook per plugin kind.

Each hook receives a `register` callback; the plugin calls it once per thing
it provides with the matching record from :mod:`ssbm_bench.records`.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("ssbm_bench")
hookimpl = HookimplMarker("ssbm_bench")


@hookspec
def register_models(register):
    """Register speech models: ``register(ModelPlugin(...))``."""


@hookspec
def register_methods(register):
    """Register saliency methods: ``register(MethodPlugin(...))``."""


@hookspec
def register_fills(register):
    """Register fills (content for occluded regions): ``register(FillPlugin(...))``."""


@hookspec
def register_corpora(register):
    """Register corpora: ``register(CorpusPlugin(...))``."""


@hookspec
def register_executors(register):
    """Register executors (where crossed jobs run): ``register(ExecutorPlugin(...))``."""


@hookspec
def register_families(register):
    """Register seed-family tasks (ISA: one classifier trained with K seeds): ``register(FamilyPlugin(...))``."""


@hookspec
def register_boards(register):
    """Register boards (ways of measuring explanations, each a leaderboard): ``register(BoardPlugin(...))``.

    The factory returns a :class:`ssbm_bench.board.Board`; the harness,
    leaderboard, submissions and publishing reach the board only through it."""
