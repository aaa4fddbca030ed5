"""Content fills (zero, silence, min_inp, mean_inp, min_data, gauss_norm), corpus
statistics computed once and stored, and SoundLIME's components."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssbm_bench import corpus_stats as cs
from ssbm_bench.artifacts import MemoryArtifacts
from ssbm_bench.audio import StftConfig, stft
from ssbm_bench.errors import InputError
from ssbm_bench.fill import FillContext
from ssbm_bench.plugins import build_registry
from ssbm_bench.types import Utterance, Word

CFG = StftConfig()


@pytest.fixture(scope="module")
def registry():
    return build_registry(restrict={"content_fills", "soundlime", "captum_perturbation", "white_noise"})


def utt(uid: str, amp: float, n: int = 8000, seed: int = 0) -> Utterance:
    x = amp * np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    return Utterance(uid, x, 16000, (Word("x", 0.0, n / 16000),))


class Corpus:
    def __init__(self, utts):
        self.utts = utts

    def utterances(self):
        return iter(self.utts)

    def digest(self):
        return "digest-" + "-".join(u.id for u in self.utts)


def ctx(n=8000, seed=0):
    return FillContext(rng=np.random.default_rng(seed), cfg=CFG, n_samples=n)


def spec(u: Utterance) -> torch.Tensor:
    return stft(torch.as_tensor(u.waveform, dtype=torch.float64), CFG)


def test_replacing_fills_by_hand(registry):
    u = utt("a", 0.1)
    x = spec(u)
    mag = x.abs().numpy()
    w = np.zeros(tuple(x.shape))
    w[10:20, 3:5] = 1.0
    w[30, 7] = 0.25
    expected = {"zero": 0.0, "silence": 0.0, "min_inp": mag.min(), "mean_inp": mag.mean()}
    for name, c in expected.items():
        out = registry.create("fill", name).apply(x, w, ctx())
        got = out.abs().numpy()
        np.testing.assert_allclose(got[10:20, 3:5], c, atol=1e-9)
        np.testing.assert_allclose(got[30, 7], 0.75 * mag[30, 7] + 0.25 * c, rtol=1e-9, atol=1e-12)
        untouched = w == 0
        np.testing.assert_allclose(got[untouched], mag[untouched], rtol=1e-12)
        # the clean phase is kept where anything is left
        keep = untouched & (mag > 1e-9)
        np.testing.assert_allclose(np.angle(out.numpy()[keep]), np.angle(x.numpy()[keep]), atol=1e-9)


def test_fills_refuse_bad_weights(registry):
    x = spec(utt("a", 0.1))
    zero = registry.create("fill", "zero")
    with pytest.raises(InputError, match="in \\[0, 1\\]"):
        zero.apply(x, np.full(tuple(x.shape), 1.5), ctx())
    with pytest.raises(InputError, match="does not fit"):
        zero.apply(x, np.ones((3, 3)), ctx())
    with pytest.raises(InputError, match="complex"):
        zero.apply(x.abs(), 1.0, ctx())


def test_corpus_stats_by_hand():
    a, b = utt("a", 0.1, seed=1), utt("b", 0.5, seed=2)
    stats = cs.compute_corpus_stats([a, b], CFG, "d")
    ma, mb = spec(a).abs().numpy(), spec(b).abs().numpy()
    both = np.concatenate([ma, mb], axis=1)
    np.testing.assert_allclose(stats.min_magnitude, both.min(axis=1))
    logs = np.log(both + cs.LOG_FLOOR)
    np.testing.assert_allclose(stats.log_mean, logs.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(stats.log_std, logs.std(axis=1), rtol=1e-6)
    assert stats.n_utterances == 2 and stats.n_frames == both.shape[1]
    assert stats.global_min == pytest.approx(both.min())


def test_corpus_stats_are_computed_once_and_stored(monkeypatch):
    corpus = Corpus([utt("a", 0.1), utt("b", 0.3, seed=4)])
    store = MemoryArtifacts()
    first = cs.corpus_stats(corpus, CFG, store)
    monkeypatch.setattr(cs, "compute_corpus_stats", lambda *a, **k: pytest.fail("computed again"))
    again = cs.corpus_stats(corpus, CFG, store)
    np.testing.assert_array_equal(first.log_mean, again.log_mean)
    assert again.corpus_digest == corpus.digest()


def test_min_data_and_gauss_norm_use_the_corpus(registry):
    corpus = [utt("a", 0.1), utt("b", 0.4, seed=5)]
    stats = cs.compute_corpus_stats(corpus, CFG, "d")
    x = spec(utt("c", 0.2, seed=6))
    ones = np.ones(tuple(x.shape))
    min_data = registry.create("fill", "min_data")
    with pytest.raises(InputError, match="needs the corpus's statistics"):
        min_data.apply(x, ones, ctx())
    min_data.use_corpus_stats(stats)
    np.testing.assert_allclose(min_data.apply(x, ones, ctx()).abs().numpy(), stats.global_min, atol=1e-12)

    gauss = registry.create("fill", "gauss_norm")
    gauss.use_corpus_stats(stats)
    a = gauss.apply(x, ones, ctx(seed=1)).abs().numpy()
    np.testing.assert_array_equal(a, gauss.apply(x, ones, ctx(seed=1)).abs().numpy())  # seeded
    assert not np.array_equal(a, gauss.apply(x, ones, ctx(seed=2)).abs().numpy())
    # standardised per band: the log content has (about) the corpus's mean and spread in every bin
    big = np.concatenate([gauss.apply(x, ones, ctx(seed=s)).abs().numpy() for s in range(20)], axis=1)
    logs = np.log(big + cs.LOG_FLOOR)
    np.testing.assert_allclose(logs.mean(axis=1), stats.log_mean, atol=0.2)
    ratio = logs.std(axis=1) / stats.log_std  # 520 draws per bin: about 3% sampling error
    assert np.mean(np.abs(ratio - 1)) < 0.05 and np.max(np.abs(ratio - 1)) < 0.25
    assert gauss.describe()["corpus_digest"] == "d"


def test_harness_gives_fills_the_stored_corpus_stats(tmp_path):
    from ssbm_bench.harness.store import ResultStore
    from ssbm_bench.harness.suite import PluginRef
    from ssbm_bench.harness.worker import WorkerCache

    with ResultStore(tmp_path / "s.sqlite") as store:
        cache = WorkerCache(build_registry(restrict={"content_fills", "synthetic"}))
        cache.artifacts = store
        fill = cache.fill(PluginRef("min_data"), PluginRef("synthetic", {"limit": 2}), CFG)
        assert fill.stats is not None and fill.stats.n_utterances == 2
        keys = [r[0] for r in store.conn.execute("SELECT key FROM artifacts")]
        assert any(k.startswith("corpus-stats:") for k in keys)


# --- SoundLIME components ----------------------------------------------------------------
def test_temporal_components_by_hand():
    from ssbm_bench_plugins.soundlime import components

    ids, edges = components("temporal", 4, 10, n_components=3)
    assert edges["time"] == [0, 3, 7, 10]
    np.testing.assert_array_equal(ids[0], [0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    assert (ids == ids[0]).all()


def test_spectral_components_are_mel_equal_bands():
    from ssbm_bench_plugins.soundlime import components, mel_edges

    edges = mel_edges(CFG.n_freq, 10, 16000)
    assert edges[0] == 0 and edges[-1] == CFG.n_freq and np.all(np.diff(edges) >= 1)
    mel = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 11)  # equal widths on the mel scale
    exact_bins = 700 * (10 ** (mel / 2595) - 1) / 8000 * (CFG.n_freq - 1)
    assert np.all(np.abs(edges[1:-1] - exact_bins[1:-1]) <= 0.5)  # edges rounded to the nearest bin
    ids, _ = components("spectral", CFG.n_freq, 7, n_components=10)
    assert ids.max() == 9 and (ids[:, 0] == ids[:, 6]).all() and np.all(np.diff(ids[:, 0]) >= 0)


def test_tf_components_by_hand():
    from ssbm_bench_plugins.soundlime import components

    ids, edges = components("tf", CFG.n_freq, 10, n_time=5, n_freq_parts=2)
    assert sorted(np.unique(ids)) == list(range(10))
    assert ids[0, 0] == 0 and ids[-1, 0] == 1 and ids[0, -1] == 8 and ids[-1, -1] == 9
    with pytest.raises(InputError, match="temporal, spectral or tf"):
        components("diagonal", 4, 4)
    with pytest.raises(InputError, match="need at least as many frames"):
        components("temporal", 4, 5, n_components=10)


def test_top3_by_magnitude():
    from ssbm_bench_plugins.soundlime import top_components

    assert top_components(np.array([0.1, -0.9, 0.3, 0.9, 0.0])) == [1, 3, 2]  # tie |0.9|: lower index first


def test_soundlime_finds_the_component_that_matters(registry):
    """The temporal component holding a loud burst, for a model that scores loudness in the band."""
    from fake_models import BAND, BandModel

    from ssbm_bench.method import ExplainRequest
    from ssbm_bench.types import Target

    t = np.arange(16000) / 16000
    x = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    burst = (t >= 0.3) & (t < 0.4)  # inside temporal component 3 of 10
    x[burst] += 0.5 * np.sin(2 * np.pi * 2200 * t[burst])
    u = Utterance("burst", x.astype(np.float32), 16000, (Word("b", 0.0, 1.0),))
    method = registry.create("method", "soundlime-temporal", n_samples=120)
    smap = method.explain(ExplainRequest(BandModel(), u, Target("class", 1, "band"), CFG, seed=0,
                                         fill=registry.create("fill", "mean_inp")))
    assert smap.params["top3"][0] == 3 and len(smap.params["weights"]) == 10
    assert smap.params["n_samples"] == 120 and smap.params["components"] == "temporal"
    # the map is the weights broadcast on the STFT grid
    edges = smap.params["component_edges"]["time"]
    for c in range(10):
        assert np.all(smap.values[:, edges[c]:edges[c + 1]] == smap.params["weights"][c])
    spectral = registry.create("method", "soundlime-spectral", n_samples=120).explain(
        ExplainRequest(BandModel(), u, Target("class", 1, "band"), CFG, seed=0, fill=registry.create("fill", "zero")))
    f_edges = spectral.params["component_edges"]["freq"]
    top = spectral.params["top3"][0]
    assert f_edges[top] < BAND[1] and f_edges[top + 1] > BAND[0]  # the top band overlaps the model's band


def test_a_fully_zeroed_mixture_becomes_faint_dither_not_digital_silence(registry):
    from ssbm_bench.mixtures import SILENCE_DITHER, mixture_waveforms

    u = utt("a", 0.1)
    x = stft(torch.as_tensor(u.waveform), CFG)
    ones, half = np.ones(tuple(x.shape)), np.full(tuple(x.shape), 0.5)
    full, partial = mixture_waveforms(x, [ones, half], registry.create("fill", "zero"), u.waveform, 0.0, 7, CFG)
    assert np.any(full) and np.sqrt(np.mean(full.astype(np.float64) ** 2)) == pytest.approx(SILENCE_DITHER, rel=0.05)
    np.testing.assert_allclose(partial, 0.5 * u.waveform, atol=1e-6)  # anything not silent is left alone
