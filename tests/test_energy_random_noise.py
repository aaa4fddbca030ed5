"""The energy baseline, the random map and the white-noise fill."""

import numpy as np
import pytest
import torch

from ssbm_bench.audio import StftConfig, istft, stft
from ssbm_bench.errors import InputError
from ssbm_bench.fill import FillContext
from ssbm_bench.method import ExplainRequest
from ssbm_bench.plugins import build_registry
from ssbm_bench.types import Target, Utterance, Word
from ssbm_bench_plugins.energy import EnergyMethod, mel_smooth
from ssbm_bench_plugins.random_map import RandomMethod
from ssbm_bench_plugins.white_noise import WhiteNoiseFill

SR = 16000
CFG = StftConfig()


@pytest.fixture(scope="module")
def utterance():
    """1.2 s: faint noise throughout, a quiet tone in word 0, a loud chirp in word 1."""
    rng = np.random.default_rng(0)
    t = np.arange(int(1.2 * SR)) / SR
    x = 0.003 * rng.standard_normal(t.size)
    x += 0.05 * np.sin(2 * np.pi * 300 * t) * ((t >= 0.1) & (t < 0.4))
    x += 0.5 * np.sin(2 * np.pi * (500 + 1500 * t) * t) * ((t >= 0.6) & (t < 0.9))
    words = (Word("quiet", 0.1, 0.4), Word("loud", 0.6, 0.9), Word("end", 1.0, 1.15))
    return Utterance("synthetic-1", x.astype(np.float32), SR, words)


def _request(utt, index, seed=0, **kw):
    return ExplainRequest(model=None, utterance=utt, target=Target("word", index, utt.words[index].text),
                          cfg=CFG, seed=seed, **kw)


# ----------------------------------------------------------------- energy


def test_energy_is_zero_outside_the_word_and_peaks_at_one(utterance):
    m = EnergyMethod().explain(_request(utterance, 1))
    n_frames = CFG.n_frames(len(utterance.waveform))
    assert m.kind == "magnitude" and m.values.shape == (CFG.n_freq, n_frames)
    start, end = CFG.frame_span(0.6, 0.9, n_frames)
    assert m.params["frames"] == [start, end]
    assert np.all(m.values[:, :start] == 0) and np.all(m.values[:, end:] == 0)
    inside = m.values[:, start:end]
    assert np.all(inside > 0)
    assert inside.max() == pytest.approx(1.0)  # the loud word holds the utterance's peak


def test_energy_scale_is_relative_to_the_utterance_peak(utterance):
    quiet = EnergyMethod().explain(_request(utterance, 0))
    loud = EnergyMethod().explain(_request(utterance, 1))
    assert quiet.params["peak_amplitude"] == pytest.approx(loud.params["peak_amplitude"])
    # the quiet word sits well below 0 dB: about 20 dB lower tone, so its peak is < 0.3
    assert 0 < quiet.values.max() < 0.3


def test_mel_smoothing_leaves_a_flat_spectrum_flat_and_stays_non_negative():
    flat = np.ones((CFG.n_freq, 4))
    np.testing.assert_allclose(mel_smooth(flat, CFG), flat, rtol=1e-9)
    spiky = np.zeros((CFG.n_freq, 2))
    spiky[100] = 1.0
    smooth = mel_smooth(spiky, CFG)
    assert np.all(smooth >= 0) and smooth[100, 0] < 1.0 and np.count_nonzero(smooth[:, 0]) > 1


def test_energy_rejects_bad_targets(utterance):
    with pytest.raises(InputError, match="outside"):
        EnergyMethod().explain(ExplainRequest(None, utterance, Target("word", 7, "x"), CFG))
    with pytest.raises(InputError, match="class"):
        EnergyMethod().explain(ExplainRequest(None, utterance, Target("class", 0, "speech"), CFG))


# ----------------------------------------------------------------- random


def test_random_map_is_reproducible_and_seeded(utterance):
    method = RandomMethod()
    a = method.explain(_request(utterance, 1, seed=3))
    b = RandomMethod().explain(_request(utterance, 1, seed=3))
    assert a.kind == "score" and a.values.shape == (CFG.n_freq, CFG.n_frames(len(utterance.waveform)))
    np.testing.assert_array_equal(a.values, b.values)
    other_seed = method.explain(_request(utterance, 1, seed=4))
    other_word = method.explain(_request(utterance, 2, seed=3))
    assert not np.array_equal(a.values, other_seed.values)
    assert not np.array_equal(a.values, other_word.values)
    assert 0.0 <= a.values.min() and a.values.max() < 1.0


def test_random_map_follows_the_clean_magnitude_shape(utterance):
    mag = np.ones((CFG.n_freq, 5))
    assert RandomMethod().explain(_request(utterance, 0, clean_magnitude=mag)).values.shape == mag.shape


# ----------------------------------------------------------------- white noise


def _rms(x):
    x = x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def _ctx(utt, seed=0, level_db=0.0, **kw):
    return FillContext(rng=np.random.default_rng(seed), cfg=CFG, n_samples=len(utt.waveform), level_db=level_db, **kw)


def test_white_noise_at_0_db_matches_speech_rms(utterance):
    clean = stft(torch.as_tensor(utterance.waveform, dtype=torch.float64), CFG)
    fill = WhiteNoiseFill()
    assert fill.additive
    mixed = fill.apply(clean, np.ones(tuple(clean.shape)), _ctx(utterance))
    noise = istft(mixed - clean, len(utterance.waveform), CFG)
    assert _rms(noise) == pytest.approx(_rms(utterance.waveform), rel=0.05)
    # +20 dB is ten times the amplitude
    loud = istft(fill.apply(clean, np.ones(tuple(clean.shape)), _ctx(utterance, level_db=20.0)) - clean,
                 len(utterance.waveform), CFG)
    assert _rms(loud) == pytest.approx(10 * _rms(utterance.waveform), rel=0.05)


def test_white_noise_weight_zero_returns_clean_exactly(utterance):
    clean = stft(torch.as_tensor(utterance.waveform, dtype=torch.float32), CFG)
    out = WhiteNoiseFill().apply(clean, np.zeros(tuple(clean.shape)), _ctx(utterance))
    assert out.dtype == clean.dtype
    assert torch.equal(out, clean)


def test_white_noise_uses_reference_rms_and_ctx_rng(utterance):
    clean = stft(torch.as_tensor(utterance.waveform, dtype=torch.float64), CFG)
    ones = np.ones(tuple(clean.shape))
    a = WhiteNoiseFill().apply(clean, ones, _ctx(utterance, seed=1, reference_rms=0.2))
    b = WhiteNoiseFill().apply(clean, ones, _ctx(utterance, seed=1, reference_rms=0.2))
    c = WhiteNoiseFill().apply(clean, ones, _ctx(utterance, seed=2, reference_rms=0.2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert _rms(istft(a - clean, len(utterance.waveform), CFG)) == pytest.approx(0.2, rel=0.05)


def test_white_noise_rejects_mismatched_weights(utterance):
    clean = stft(torch.as_tensor(utterance.waveform, dtype=torch.float64), CFG)
    with pytest.raises(InputError, match="shape"):
        WhiteNoiseFill().apply(clean, np.ones((3, 3)), _ctx(utterance))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        WhiteNoiseFill().apply(clean, np.full(tuple(clean.shape), 2.0), _ctx(utterance))


# ----------------------------------------------------------------- registration


def test_plugins_are_registered_through_entry_points():
    only_ours = build_registry(restrict={"energy", "random", "white_noise"})
    assert {"energy", "random"} <= set(only_ours.names("method"))
    assert "white-noise" in only_ours.names("fill")
    assert isinstance(only_ours.create("method", "energy"), EnergyMethod)
    assert isinstance(only_ours.create("fill", "white-noise"), WhiteNoiseFill)
    full = build_registry()
    assert {"energy", "random"} <= set(full.names("method")) and "white-noise" in full.names("fill")
