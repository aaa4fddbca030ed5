"""silero-vad as a differentiable speech-presence classifier, on real audio.

The model is the real TorchScript network from the silero-vad wheel; the
speech is the synthetic corpus (flite/festival voices), the non-speech white
noise at several levels and digital silence.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ssbm_bench.errors import InputError
from ssbm_bench.frontend import StftFrontEnd, score_from_magnitude
from ssbm_bench.model import Capability
from ssbm_bench.plugins import build_registry
from ssbm_bench.types import Target
from ssbm_bench_plugins.silero_vad_model import CHUNK, SileroVad
from ssbm_bench_plugins.synthetic import SyntheticCorpus

SPEECH = Target("class", 1, "speech")


@pytest.fixture(scope="module")
def model() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="module")
def speech():
    """Two utterances per voice (8 in all)."""
    return list(SyntheticCorpus(limit=8).utterances())


def _noise(level: float, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(16000 * seconds))).astype(np.float32)


def test_registered_through_the_entry_point():
    registry = build_registry(restrict={"silero_vad"})
    reg = registry.get("model", "silero-vad")
    assert reg.record.capabilities == {"classify", "differentiable"}
    m = registry.create("model", "silero-vad")
    assert m.labels == ("non-speech", "speech")
    assert m.has(Capability.CLASSIFY) and m.has(Capability.DIFFERENTIABLE)


def test_speech_is_detected_and_noise_is_not(model, speech):
    probs = model.classify([u.waveform for u in speech])
    assert probs.shape == (len(speech), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert sorted({u.labels["voice"] for u in speech}) == ["awb", "kal16", "rms", "slt_hts"]
    # whole utterances, leading and trailing silence included (measured: 0.79 .. 0.91)
    assert probs[:, 1].min() > 0.7, probs[:, 1]
    non_speech = [_noise(0.1), _noise(0.01, seed=1), _noise(0.001, seed=2), np.zeros(16000, np.float32)]
    p_non = model.classify(non_speech)[:, 1]
    assert p_non.max() < 0.05, p_non  # measured 0.004 .. 0.010


def test_speech_probability_is_silero_own_chunk_mean(model, speech):
    """Our batched, differentiable run equals silero's own ``audio_forward``."""
    for u in speech[:2]:
        ref = model._jit.audio_forward(torch.from_numpy(u.waveform), 16000)[0]
        assert ref.numel() == -(-len(u.waveform) // CHUNK)
        p = model.classify([u.waveform])[0, 1]
        assert p == pytest.approx(float(ref.double().mean()), abs=1e-5)


def test_state_is_reset_per_excerpt(model, speech):
    a = speech[0].waveform
    first = model.classify([a])
    model.classify([speech[1].waveform, _noise(0.1)])  # would leave state behind in silero's stateful API
    again = model.classify([a])
    np.testing.assert_array_equal(first, again)
    batched = model.classify([speech[1].waveform, a])[1]
    np.testing.assert_allclose(batched, first[0], atol=1e-6)
    x = torch.from_numpy(a)
    np.testing.assert_array_equal(model.class_logits(x).detach().numpy(), model.class_logits(x).detach().numpy())


def test_logits_match_probabilities(model, speech):
    x = torch.from_numpy(speech[2].waveform)
    logits = model.class_logits(x)
    assert logits.shape == (2,)
    np.testing.assert_allclose(torch.softmax(logits.double(), 0).detach().numpy(),
                               model.classify([speech[2].waveform])[0], atol=1e-5)


def test_gradients_flow_through_the_torchscript_model(model, speech):
    for u in speech[:4]:
        x = torch.tensor(u.waveform, requires_grad=True)
        model.target_score(x, SPEECH).backward()
        g = x.grad
        assert torch.isfinite(g).all()
        assert g.norm() > 1.0  # measured 15 .. 66
        assert (g != 0).float().mean() > 0.9


def test_gradient_agrees_with_a_finite_difference(model, speech):
    x = torch.tensor(speech[0].waveform[:16000], dtype=torch.float32, requires_grad=True)
    z = model.class_logits(x)[1]
    z.backward()
    rng = np.random.default_rng(3)
    v = torch.from_numpy(rng.standard_normal(x.shape[0]).astype(np.float32))
    v /= v.norm()
    eps = 1e-4  # the network runs in float32 and has ReLU kinks: larger steps leave the linear regime
    with torch.no_grad():
        fd = (model.class_logits(x + eps * v)[1] - model.class_logits(x - eps * v)[1]) / (2 * eps)
    assert float(x.grad @ v) == pytest.approx(float(fd), rel=0.05, abs=1e-3)


def test_digital_silence_gives_finite_gradients(model, speech):
    """silero's scripted STFT has a NaN gradient on all-zero frames; ours is zero there."""
    a = speech[0].waveform[:12000]
    x = torch.tensor(np.concatenate([np.zeros(8000, np.float32), a, np.zeros(3000, np.float32)]), requires_grad=True)
    model.class_logits(x)[1].backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[8000:20000].norm() > 0


def test_gradient_through_the_stft_front_end(model, speech):
    u = speech[3]
    front = StftFrontEnd(u.waveform)
    mag = front.magnitude.clone().requires_grad_(True)
    score_from_magnitude(model, front, mag, SPEECH).backward()
    assert mag.grad.shape == mag.shape
    assert torch.isfinite(mag.grad).all() and mag.grad.abs().sum() > 0


def test_bad_input_is_rejected_by_name(model):
    with pytest.raises(InputError, match="1-D"):
        model.classify([np.zeros((2, 100), np.float32)])
    with pytest.raises(InputError, match="NaN"):
        model.classify([np.array([0.1, np.nan], np.float32)])
    with pytest.raises(InputError, match="empty"):
        model.classify([np.zeros(0, np.float32)])
    with pytest.raises(InputError, match="1-D"):
        model.class_logits(torch.zeros(2, 100))


def test_short_excerpt_is_padded_to_one_chunk(model):
    p = model.classify([_noise(0.01, seconds=0.01)])
    assert p.shape == (1, 2) and np.isfinite(p).all()


def test_describe_names_versions_and_parameters(model):
    d = model.describe()
    json.dumps(d)
    assert d["name"] == "silero-vad"
    assert d["version"].startswith("silero-vad ") and "torch " in d["version"]
    assert d["parameters"]["aggregation"] == "mean"
    assert len(d["weights_sha256"]) == 64
