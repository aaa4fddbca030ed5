"""The captum method plugins on small fake models whose answer is known.

`BandModel` is a differentiable classifier whose "band" logit is the STFT
magnitude summed over a frequency band (recomputed from the waveform, so the
score runs through the ISTFT front end exactly as a real model's does): a
faithful map must put its importance inside that band. `NanModel` has a
finite output and NaN gradients, to check that NaN attributions become a
stored error, not a score.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssbm_bench.attribution import AttributionError, reference_to_transcript_index
from ssbm_bench.audio import StftConfig
from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.method import ExplainRequest
from ssbm_bench.plugins import build_registry
from ssbm_bench.records import ModelPlugin
from ssbm_bench.types import Target, Utterance, Word

from fake_models import BAND, BandModel, NanModel

CFG = StftConfig()


def tone_utterance(seconds: float = 0.6) -> Utterance:
    """Two tones, one in the band and one below it, plus faint noise."""
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 2200 * t) + 0.3 * np.sin(2 * np.pi * 500 * t)
    x += 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return Utterance("tones", x.astype(np.float32), 16000, (Word("tone", 0.0, seconds),))


def request(model=None, fill=None, seed=0):
    return ExplainRequest(model or BandModel(), tone_utterance(), Target("class", 1, "band"), CFG, seed=seed,
                          fill=fill)


@pytest.fixture(scope="module")
def registry():
    return build_registry(restrict={"captum_gradients", "captum_perturbation", "soundlime", "content_fills"})


def band_share(values: np.ndarray) -> float:
    """Share of the map's absolute mass inside the band."""
    a = np.abs(values)
    return float(a[BAND[0]:BAND[1]].sum() / a.sum())


@pytest.mark.parametrize("name, params", [
    ("saliency", {}),
    ("integrated-gradients", {"n_steps": 16, "internal_batch_size": 8}),
    ("feature-ablation", {"patch_freq": 20, "patch_frames": 8}),
    ("occlusion", {"patch_freq": 20, "patch_frames": 38}),
    ("lime", {"n_samples": 150, "patch_freq": 20, "patch_frames": 38}),
])
def test_importance_lies_in_the_band(registry, name, params):
    method = registry.create("method", name, **params)
    smap = method.explain(request(fill=registry.create("fill", "zero")))
    assert smap.kind == "score" and smap.space == "stft"
    assert smap.shape == (CFG.n_freq, CFG.n_frames(9600))
    band_fraction = (BAND[1] - BAND[0]) / CFG.n_freq  # 16% of the bins
    assert band_share(smap.values) > 0.8 > band_fraction, band_share(smap.values)
    for key, value in params.items():
        assert smap.params[key] == value  # every setting is recorded with the map
    assert smap.params["seed"] == 0 and smap.params["evaluations"] >= 1 and smap.params["seconds"] >= 0


def test_integrated_gradients_completeness_and_delta_recorded(registry):
    smap = registry.create("method", "integrated-gradients", n_steps=32).explain(request())
    span = smap.params["score_difference"]
    # completeness: attributions sum to score(x) - score(silence), up to the recorded delta
    assert smap.values.sum() == pytest.approx(span - smap.params["convergence_delta"], rel=1e-3, abs=1e-4)
    assert abs(smap.params["relative_delta"]) < 0.05
    assert smap.params["baseline"] == "silence"


def test_saliency_signs(registry):
    signed = registry.create("method", "saliency", sign="signed").explain(request()).values
    absolute = registry.create("method", "saliency").explain(request()).values
    np.testing.assert_allclose(absolute, np.abs(signed))
    assert signed.min() < 0 < signed.max() or signed.min() >= 0


def test_lime_is_seeded(registry):
    lime = registry.create("method", "lime", n_samples=40, patch_freq=128, patch_frames=20)
    a = lime.explain(request(seed=1)).values
    b = lime.explain(request(seed=1)).values
    c = lime.explain(request(seed=2)).values
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # and the global torch RNG is left as it was
    torch.manual_seed(5)
    expect = torch.rand(1)
    torch.manual_seed(5)
    lime.explain(request(seed=3))
    assert torch.equal(torch.rand(1), expect)


def test_fill_is_the_ablation_content(registry):
    fa = registry.create("method", "feature-ablation", patch_freq=64, patch_frames=64)
    zero = fa.explain(request(fill=registry.create("fill", "zero"))).values
    mean = fa.explain(request(fill=registry.create("fill", "mean_inp"))).values
    assert not np.allclose(zero, mean)  # a different content gives a different map
    assert fa.explain(request(fill=registry.create("fill", "zero"))).params["fill"] == {"name": "zero",
                                                                                       "additive": False}


def test_nan_attributions_are_refused_by_name(registry):
    with pytest.raises(AttributionError, match=r"'saliency': \d+ of \d+ attributions are NaN.*utterance 'tones'"):
        registry.create("method", "saliency").explain(request(model=NanModel()))


@pytest.mark.parametrize("name, params, message", [
    ("integrated-gradients", {"n_steps": 1}, "n_steps must be an integer >= 2"),
    ("integrated-gradients", {"method": "simpson"}, "method must be one of"),
    ("saliency", {"scope": "sentence"}, "scope must be one of word, transcript"),
    ("lime", {"n_samples": 0}, "n_samples must be an integer >= 2"),
    ("feature-ablation", {"patch_freq": 0}, "patch_freq must be an integer >= 1"),
    ("occlusion", {"sign": "both"}, "sign must be one of signed, abs, positive"),
])
def test_bad_parameters_are_named(registry, name, params, message):
    with pytest.raises(InputError, match=message):
        registry.create("method", name, **params)


def test_word_target_maps_through_the_alignment():
    ref = ["the", "boy", "was", "there"]
    assert reference_to_transcript_index(ref, ("the", "boy", "was", "there"), 2) == 2
    assert reference_to_transcript_index(ref, ("oh", "the", "boy", "was", "there"), 2) == 3
    assert reference_to_transcript_index(ref, ("the", "toy", "was", "there"), 1) is None


# --- through the harness: NaN becomes a stored error ---------------------------------------
class NanPlugin:
    __name__ = "nan_plugin"

    @staticmethod
    @hookimpl
    def register_models(register):
        register(ModelPlugin(name="nan-model", factory=NanModel, description="test: NaN gradients",
                             capabilities=frozenset({"classify", "differentiable"})))


def test_harness_stores_nan_attributions_as_an_error(tmp_path):
    from ssbm_bench.harness.runner import run_suite
    from ssbm_bench.harness.store import ResultStore
    from ssbm_bench.harness.suite import parse_suite
    from ssbm_bench.leaderboard import build_leaderboard

    registry = build_registry(extra_plugins=[NanPlugin()])
    suite = parse_suite({
        "suite": {"name": "nan", "boards": ["ssbm", "deletion"]},
        "corpus": {"name": "synthetic", "utterances": ["rms_h02_01"]},
        "models": [{"name": "nan-model"}], "methods": [{"name": "saliency"}], "fills": [{"name": "zero"}],
    })
    summary = run_suite(suite, str(tmp_path / "r.sqlite"), registry=registry, progress=False, log=lambda s: None)
    assert summary.errors == 1 and summary.skipped == 0
    with ResultStore(tmp_path / "r.sqlite") as store:
        cells = {c.board: c for c in store.cells()}
        assert cells["deletion"].status == "error"
        assert "NaN or infinite" in cells["deletion"].reason and "rms_h02_01" in cells["deletion"].reason
        # SSBM scores word accuracy: a classifier's SSBM row is skipped with the reason
        assert cells["ssbm"].status == "skipped" and "cannot transcribe" in cells["ssbm"].reason
        (row,) = build_leaderboard(store, "deletion")
        assert row.errors == 1 and np.isnan(row.score)


def test_log_magnitude_gradient_is_gradient_times_input(registry):
    from ssbm_bench.feature_spaces import LOG_EPS

    lin = registry.create("method", "saliency", sign="signed").explain(request()).values
    log = registry.create("method", "saliency", sign="signed", feature="log-magnitude").explain(request())
    from ssbm_bench.frontend import StftFrontEnd

    m = StftFrontEnd(tone_utterance().waveform, CFG).magnitude.double().numpy()
    expected = lin * (m + LOG_EPS)  # chain rule: d/dln(m) = (m + eps) d/dm
    np.testing.assert_allclose(log.values, expected, rtol=1e-2, atol=1e-3 * np.abs(expected).max())
    assert log.params["feature"] == "log-magnitude"
    ig = registry.create("method", "integrated-gradients", n_steps=8, feature="log-magnitude").explain(request())
    assert np.all(np.isfinite(ig.values)) and ig.params["feature"] == "log-magnitude"
