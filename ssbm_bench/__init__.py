"""ssbm-bench: a benchmark for saliency methods on speech models.

The core (this package) knows nothing about any particular model, method,
fill or corpus: those are plugins found through the entry-point group
``ssbm_bench`` (see :mod:`ssbm_bench.plugins`).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``ssbm_bench.evaluate``: the one-call Python API (:mod:`ssbm_bench.python_api`), imported on first use so
    that ``import ssbm_bench`` stays light."""
    if name == "evaluate":
        from .python_api import evaluate

        return evaluate
    raise AttributeError(f"module 'ssbm_bench' has no attribute {name!r}")
