"""ssbm-bench: a benchmark for saliency methods on speech models.

The core (this package) knows nothing about any particular model, method,
fill or corpus: those are plugins found through the entry-point group
``ssbm_bench`` (see :mod:`ssbm_bench.plugins`).
"""

__version__ = "0.1.0"
