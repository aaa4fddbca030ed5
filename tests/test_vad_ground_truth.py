"""The ground-truth excerpts of the stability board: known speech segments, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from ssbm_bench.errors import InputError
from ssbm_bench_plugins.synthetic import SyntheticCorpus
from ssbm_bench_plugins.vad_ground_truth import BACKGROUNDS, VadGroundTruth, coloured_noise, speech_segments


@pytest.fixture(scope="module")
def excerpts():
    return list(VadGroundTruth(n=12).utterances())


def test_excerpts_are_seeded_and_digested():
    a, b = VadGroundTruth(n=6), VadGroundTruth(n=6)
    assert a.digest() == b.digest()
    assert VadGroundTruth(n=6, seed=1).digest() != a.digest()
    assert [u.labels for u in a.utterances()] == [u.labels for u in b.utterances()]


def test_three_segments_are_the_speech_stem_at_the_same_times(excerpts):
    source = {u.id: u for u in SyntheticCorpus().utterances()}
    seg = 16000 * 160 // 1000
    for u in excerpts:
        chosen = speech_segments(u)
        assert len(chosen) == 3 and chosen == sorted(set(chosen)) and all(0 <= s < 10 for s in chosen)
        assert len(u.waveform) == 10 * seg and u.labels["background"] in BACKGROUNDS
        src = source[u.labels["source"]]
        start = int(src.words[0].start * 16000)
        for s in range(10):
            same = np.allclose(u.waveform[s * seg:(s + 1) * seg], src.waveform[start + s * seg:start + (s + 1) * seg])
            assert same == (s in chosen), (u.id, s)


def test_noise_colours_have_the_right_slope():
    x = coloured_noise(1 << 16, 2.0, np.random.default_rng(0))
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / 16000)
    low, high = spec[(f > 100) & (f < 200)].mean(), spec[(f > 1000) & (f < 2000)].mean()
    assert 30 < low / high < 300  # brown: 1/f^2, a decade up is ~100x weaker
    assert np.sqrt(np.mean(x ** 2)) == pytest.approx(1.0)


def test_silero_hears_the_speech_segments(excerpts):
    from ssbm_bench_plugins.silero_vad_model import SileroVad

    model = SileroVad()
    speech = list(model.labels).index("speech")
    mixed = model.classify([u.waveform for u in excerpts])[:, speech]
    seg = 16000 * 160 // 1000
    # the same excerpts with their speech segments replaced by the background's neighbour segment
    assert np.median(mixed) > 0.2
    backgrounds = []
    for u in excerpts:
        x = u.waveform.copy()
        other = [s for s in range(10) if s not in speech_segments(u)][0]
        for s in speech_segments(u):
            x[s * seg:(s + 1) * seg] = u.waveform[other * seg:(other + 1) * seg]
        backgrounds.append(x)
    assert np.median(model.classify(backgrounds)[:, speech]) < 0.1


@pytest.mark.parametrize("params, message", [({"n": 0}, "n must be"), ({"speech_segments": 10}, "speech_segments"),
                                             ({"segment_ms": 10}, "segment_ms")])
def test_bad_parameters_are_named(params, message):
    with pytest.raises(InputError, match=message):
        VadGroundTruth(**params)
