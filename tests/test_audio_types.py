"""STFT/ISTFT round trip, framing, loading, and rejection of bad audio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssbm_bench.audio import StftConfig, istft, load_audio, stft
from ssbm_bench.errors import InputError
from ssbm_bench.types import SaliencyMap, Utterance, Word, validate_waveform


def test_default_grid_is_the_papers():
    cfg = StftConfig()
    assert (cfg.n_fft, cfg.hop, cfg.n_freq) == (1024, 256, 513)  # 64 ms / 16 ms at 16 kHz


@settings(max_examples=25, deadline=None)
@given(n=st.integers(min_value=513, max_value=20000), seed=st.integers(0, 2**31 - 1))
def test_stft_istft_round_trip(n, seed):
    x = np.random.default_rng(seed).standard_normal(n)
    spec = stft(torch.as_tensor(x))
    assert spec.shape == (513, StftConfig().n_frames(n))
    y = istft(spec, n).numpy()
    assert np.max(np.abs(x - y)) < 1e-9 * max(1.0, np.max(np.abs(x))) * 1e3


def test_too_short_audio_is_refused_by_name():
    with pytest.raises(InputError, match="300 samples is too short"):
        stft(torch.zeros(300))


def test_istft_is_differentiable():
    x = torch.randn(4000, dtype=torch.float64)
    spec = stft(x).abs().requires_grad_(True)
    phase = torch.angle(stft(x))
    y = istft(torch.polar(spec, phase), 4000)
    (y ** 2).sum().backward()
    assert spec.grad is not None and torch.isfinite(spec.grad).all() and spec.grad.abs().sum() > 0


def test_frame_span_covers_word():
    cfg = StftConfig()
    start, stop = cfg.frame_span(0.5, 0.7, 200)
    times = cfg.frame_times(200)
    assert times[start] >= 0.5 and times[stop - 1] <= 0.7 and stop - start == 12  # centres 0.512 .. 0.688 s


def test_load_audio_resamples_and_says_so(tmp_path):
    t = np.arange(8000) / 8000.0
    sf.write(tmp_path / "a.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 8000)
    with pytest.warns(UserWarning, match="resampled from 8000 Hz to 16000 Hz"):
        x = load_audio(tmp_path / "a.wav")
    assert len(x) == 16000 and x.dtype == np.float32


@pytest.mark.parametrize("content,expected", [
    (None, "not found"),
    (b"this is not audio", "cannot be decoded"),
])
def test_load_audio_rejects_missing_and_corrupt(tmp_path, content, expected):
    p = tmp_path / "bad.wav"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=expected) as err:
        load_audio(p)
    assert "bad.wav" in str(err.value)


def test_load_audio_rejects_silence(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(1600), 16000)
    with pytest.raises(InputError, match="digital silence"):
        load_audio(tmp_path / "silent.wav")


@pytest.mark.parametrize("wave,expected", [
    (np.array([], dtype=np.float32), "empty audio"),
    (np.array([0.1, np.nan], dtype=np.float32), "NaN"),
    (np.zeros((2, 10), dtype=np.float32), "mono"),
    (np.array([1, 2, 3], dtype=np.int16), "floating-point"),
])
def test_utterance_rejects_bad_audio(wave, expected):
    with pytest.raises(InputError, match=expected) as err:
        Utterance("u1", wave, 16000, (Word("a", 0.0, 0.0),))
    assert "'u1'" in str(err.value)


def test_one_waveform_check_names_the_input_and_may_allow_silence():
    silence = np.zeros(160, dtype=np.float64)
    with pytest.raises(InputError, match=r"^model input 3: audio is digital silence .*expected sound"):
        validate_waveform(silence, "model input 3")
    out = validate_waveform(silence, "model input 3", allow_silence=True)  # a speech detector's legitimate input
    assert out.dtype == np.float32 and out.shape == (160,)
    with pytest.raises(InputError, match=r"^x: audio contains NaN or infinite samples \(1 of 2; expected finite"):
        validate_waveform(np.array([0.1, np.inf]), "x", allow_silence=True)
    with pytest.raises(InputError, match=r"^x: empty audio \(expected at least one sample\)"):
        validate_waveform(np.zeros(0, np.float32), "x", allow_silence=True)


def test_utterance_rejects_words_after_the_audio():
    with pytest.raises(InputError, match="after the audio"):
        Utterance("u2", np.ones(1600, dtype=np.float32) * 0.1, 16000, (Word("late", 0.05, 0.5),))


def test_word_rejects_bad_times():
    with pytest.raises(InputError, match="start <= end"):
        Word("x", 1.0, 0.5)


def test_saliency_map_rejects_nan():
    values = np.ones((3, 4))
    values[1, 2] = np.nan
    with pytest.raises(InputError, match="1 of 12 values are NaN"):
        SaliencyMap(values)


def test_pvalue_map_counts_only_positive_correlation():
    corr = np.array([[0.5, -0.5]])
    p = np.array([[0.01, 0.01]])
    assert SaliencyMap(corr, kind="pvalue", pvalues=p).thresholded_values().tolist() == [[0.01, 1.0]]
