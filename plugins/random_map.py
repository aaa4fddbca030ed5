"""A uniform random importance map: the floor every leaderboard should beat.

The seed combines the request's seed with a stable hash (SHA-256, not
Python's salted ``hash``) of the utterance id and target key, so a map is
reproducible across processes and machines and differs from word to word.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.method import ExplainRequest, SaliencyMethod
from ssbm_bench.records import MethodPlugin
from ssbm_bench.types import SaliencyMap


def stable_hash(*parts: str) -> int:
    """A 64-bit integer from text, identical in every process (unlike ``hash``)."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


class RandomMethod(SaliencyMethod):
    """Uniform [0, 1) scores over the whole STFT grid."""

    name = "random"
    version = "1"
    map_kind = "score"
    requires = frozenset()

    def explain(self, request: ExplainRequest) -> SaliencyMap:
        utt, cfg = request.utterance, request.cfg
        if request.clean_magnitude is not None:
            shape = tuple(np.shape(request.clean_magnitude))
        else:
            shape = (cfg.n_freq, cfg.n_frames(len(utt.waveform)))
        entropy = [int(request.seed) % 2**64, stable_hash(utt.id, request.target.key)]
        rng = np.random.default_rng(np.random.SeedSequence(entropy))
        return SaliencyMap(rng.random(shape), kind="score", space="stft", params={"seed": int(request.seed)})


@hookimpl
def register_methods(register):
    register(
        MethodPlugin.of(
            RandomMethod,
            description="seeded uniform random map over the STFT grid (the floor of every leaderboard)",
        )
    )
