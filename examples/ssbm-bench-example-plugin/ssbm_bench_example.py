"""An outside saliency method for ssbm-bench: `word-span`.

The smallest honest method: a time-frequency point matters for a word when it
lies inside the word's aligned time span, and more so the louder it is. It
is what CONTRIBUTING.md walks through, and a test installs this package and
runs it through the harness exactly as an outside contributor would.
"""

import numpy as np

from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.method import ExplainRequest, SaliencyMethod
from ssbm_bench.records import MethodPlugin
from ssbm_bench.types import SaliencyMap


class WordSpanMethod(SaliencyMethod):
    name = "word-span"
    version = "0.1.0"
    map_kind = "score"  # any real score; SSBM thresholds it by rank

    def __init__(self, floor_db: float = -60.0):
        self.floor_db = float(floor_db)

    def explain(self, request: ExplainRequest) -> SaliencyMap:
        mag = request.clean_magnitude
        word = request.utterance.words[request.target.index]
        start, stop = request.cfg.frame_span(word.start, word.end, mag.shape[1])
        level = 20 * np.log10(np.maximum(mag, 1e-12) / mag.max())
        scores = np.full(mag.shape, self.floor_db - 1.0)  # outside the word: below every point inside
        scores[:, start:stop] = np.maximum(level[:, start:stop], self.floor_db)
        return SaliencyMap(scores, kind="score", params={"floor_db": self.floor_db, "frames": [start, stop]})

    def describe(self):
        return {"name": self.name, "version": self.version, "floor_db": self.floor_db}


@hookimpl
def register_methods(register):
    # the record reads the name and `requires` from the class, so they are stated once
    register(MethodPlugin.of(WordSpanMethod,
                             description="loudness inside the target word's time span (example outside plugin)"))
