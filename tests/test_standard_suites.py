"""The standard suites hold the SSBM paper's full protocol (issue 5); loaded and checked, never run here."""

from __future__ import annotations

import numpy as np
import pytest

from ssbm_bench.cli import SUITES_DIR, resolve_suite_path
from ssbm_bench.harness.runner import validate_names
from ssbm_bench.harness.suite import load_suite
from ssbm_bench.plugins import get_registry


@pytest.mark.parametrize("name, corpus", [("standard", "synthetic"), ("standard-librivox", "librivox")])
def test_standard_suite_is_the_paper_protocol(name, corpus):
    suite = load_suite(resolve_suite_path(name))
    assert suite.path == str(SUITES_DIR / f"{name}.toml") and suite.name == name
    validate_names(suite, get_registry())  # every plugin it names is installed
    assert suite.corpus.name == corpus and suite.corpus.params == {}
    # every fully recognised utterance, every word of it
    assert suite.utterance_limit is None and suite.utterance_ids == () and suite.words_per_utterance is None
    assert [m.name for m in suite.models] == ["pocketsphinx", "whisper-tiny-en"]
    assert [(m.name, m.params) for m in suite.methods] == [("bubble", {"n_mixtures": 1000}), ("energy", {}),
                                                           ("random", {})]
    assert [f.name for f in suite.fills] == ["white-noise"]
    # the paper's grids: bubble 25 log-spaced 1e-8..1, energy -80..20 dB in 5 dB steps; rank grid for scores
    pvalue, magnitude, score = (np.array(suite.settings["ssbm"].thresholds_for(k)) for k in ("pvalue", "magnitude", "score"))
    np.testing.assert_allclose(pvalue, np.logspace(-8, 0, 25))
    np.testing.assert_allclose(magnitude, np.arange(-80, 21, 5))
    assert len(magnitude) == 21
    np.testing.assert_allclose(score, np.logspace(-3, 0, 13))
    reg = get_registry()
    kinds = {m.name: reg.create("method", m.name, **m.params).map_kind for m in suite.methods}
    assert kinds == {"bubble": "pvalue", "energy": "magnitude", "random": "score"}


def test_standard_captum_suite_holds_the_full_grid():
    """Issue 6: every captum method and SoundLIME, in every input type where it applies, crossed with every fill,
    on SSBM and deletion, with Whisper and silero-vad, all fully recognised utterances and words."""
    suite = load_suite(resolve_suite_path("standard-captum"))
    reg = get_registry()
    validate_names(suite, reg)
    assert set(suite.boards) == {"ssbm", "deletion"} and suite.utterance_limit is None
    assert [m.name for m in suite.models] == ["whisper-tiny-en", "silero-vad"]
    methods = {m.name for m in suite.methods}
    assert methods == {"random", "energy", "saliency", "integrated-gradients", "feature-ablation", "occlusion", "lime",
                       "soundlime-temporal", "soundlime-spectral", "soundlime-tf"}
    fills = {f.name for f in suite.fills}
    assert fills == set(reg.names("fill"))  # every installed fill
    for name in ("saliency", "integrated-gradients"):
        features = {m.params.get("feature", "magnitude") for m in suite.methods if m.name == name}
        assert features == {"magnitude", "log-magnitude", "waveform", "embedding"}
    for m in suite.methods:  # every entry builds
        reg.create("method", m.name, **m.params)
