"""The `bubble` method plugin: Mandel's bubble noise as a saliency method.

* :mod:`.method`: :class:`BubbleMethod`, the p-value map of audibility
  correlated with recognising the word (the SSBM paper's own method), with
  its caching, bubble-rate tuning and the mixtures it shows
  (``ssbm-bench explain``).
* :mod:`.mixer`: the bubble-noise mixtures themselves (bubble placement and
  shape, audibility, speech-shaped noise), following Mandel's
  auditory-bubbles toolbox.
"""

from __future__ import annotations

from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import MethodPlugin

from .method import BubbleMethod
from .mixer import BubbleMixer, BubbleSettings

__all__ = ["BubbleMethod", "BubbleMixer", "BubbleSettings", "register_methods"]


@hookimpl
def register_methods(register):
    register(
        MethodPlugin.of(
            BubbleMethod,
            description="Mandel's bubble noise (SSBM paper): point-biserial correlation of audibility in "
            "speech-shaped bubble noise with recognising the word; p-value map",
        )
    )
