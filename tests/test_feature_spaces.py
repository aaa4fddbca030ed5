"""Input types: attribution over the waveform and the model's embedding.

Known answers for the projections back onto the STFT grid (hand-worked
window weights, filterbank shares), properties (frame totals kept,
linearity), a narrow fake model whose score depends on one time window only
(so a faithful waveform map must put its mass there), and the real models:
Whisper's log-mel embedding and a speechbrain seed-family member's filterbank
embedding, each checked to score exactly as the waveform path does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ssbm_bench.attribution import resolve_target
from ssbm_bench.audio import StftConfig
from ssbm_bench.errors import InputError, SsbmBenchError
from ssbm_bench.feature_projections import (embedding_to_stft, frequency_projection, share_by_power, steps_in_words,
                                           waveform_frame_sums, waveform_to_stft)
from ssbm_bench.feature_spaces import FeatureSpace, NativeAttribution, make_space
from ssbm_bench.method import ExplainRequest
from ssbm_bench.model import Capability, Embedding, SpeechModel
from ssbm_bench.plugins import build_registry
from ssbm_bench.types import Target, Utterance, Word

CFG = StftConfig()  # 1024-sample window, 256-sample hop at 16 kHz


def test_waveform_frame_sums_hand_worked():
    # an impulse at sample 768 (frame 3's centre): frames 2, 3, 4 see it at window offsets 768, 512, 256,
    # where the periodic Hann window of 1024 is 0.5, 1.0, 0.5; frame 5 sees it at offset 0 (weight 0)
    a = np.zeros(4000)
    a[768] = 1.0
    sums = waveform_frame_sums(a, CFG, CFG.n_frames(a.size))
    assert sums.shape == (CFG.n_frames(4000),)
    np.testing.assert_allclose(sums[2:5], [0.5, 1.0, 0.5], atol=1e-12)
    assert np.abs(np.delete(sums, [2, 3, 4])).max() < 1e-12


def test_share_by_power_hand_worked():
    mag = np.array([[3.0, 0.0], [4.0, 0.0]])  # frame 0: powers 9 and 16; frame 1 silent
    out = share_by_power(np.array([5.0, -2.0]), mag)
    np.testing.assert_allclose(out[:, 0], [5 * 9 / 25, 5 * 16 / 25])
    np.testing.assert_allclose(out[:, 1], [-1.0, -1.0])  # a silent frame is shared evenly


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, 3000, elements=st.floats(-1, 1)), arrays(np.float64, 3000, elements=st.floats(-1, 1)))
def test_waveform_projection_keeps_frame_totals_and_is_linear(a, b):
    rng = np.random.default_rng(0)
    mag = np.abs(rng.standard_normal((CFG.n_freq, CFG.n_frames(3000)))) + 0.01
    pa, pb = waveform_to_stft(a, mag, CFG), waveform_to_stft(b, mag, CFG)
    np.testing.assert_allclose(pa.sum(axis=0), waveform_frame_sums(a, CFG, mag.shape[1]), atol=1e-9)
    np.testing.assert_allclose(waveform_to_stft(a + 2 * b, mag, CFG), pa + 2 * pb, atol=1e-9)


def test_embedding_projection_hand_worked():
    # two "mel" dimensions reading 0-2 kHz and 4-6 kHz; attribution only in dimension 1 at frame 5 (50 ms)
    bin_hz = np.linspace(0, 8000, 9)  # 1 kHz apart
    weights = np.zeros((2, 9))
    weights[0, 0:3] = 1.0
    weights[1, 4:7] = 1.0
    values = np.zeros((20, 2))
    values[5, 1] = 2.0
    emb = Embedding(values=torch.zeros(20, 2), hop_seconds=0.01, label="toy", frequency_weights=weights,
                    bin_hz=bin_hz)
    mag = np.ones((CFG.n_freq, 13))  # STFT frames 16 ms apart
    out = embedding_to_stft(values, emb, mag, CFG)
    freqs = CFG.frequencies()
    # STFT frame k (t = 16k ms) takes the embedding frame nearest in time: frame 3 (48 ms) -> embedding frame 5
    assert set(np.nonzero(out.any(axis=0))[0]) == {3}
    rows = np.nonzero(out[:, 3])[0]
    # only where dimension 1 reads (its weights, linearly interpolated between the 1 kHz points, are > 0)
    assert 3000 < freqs[rows].min() and freqs[rows].max() < 7000 and freqs[rows].min() < 3100
    np.testing.assert_allclose(out[rows, 3], 2.0)  # a bin read by one dimension takes its whole value
    # no frequency weights: the frame's value is shared out by the clean power
    plain = Embedding(values=torch.zeros(20, 2), hop_seconds=0.01, label="toy")
    np.testing.assert_allclose(embedding_to_stft(values, plain, mag, CFG)[:, 3].sum(), 2.0)


def test_frequency_projection_refuses_mismatched_weights():
    with pytest.raises(InputError, match="expected \\(dims, 9\\)"):
        frequency_projection(np.ones((2, 5)), np.linspace(0, 8000, 9), CFG.frequencies())


def test_word_steps_and_native_aggregation():
    words = (Word("a", 0.0, 0.02), Word("b", 0.05, 0.07))
    ids = steps_in_words(10, 0.01, words)  # steps at 0, 10, ..., 90 ms
    assert ids.tolist() == [0, 0, 0, 2, 2, 1, 1, 1, 2, 2]
    native = NativeAttribution(np.arange(12, dtype=float).reshape(12, 1), 0.001, "waveform", frame_steps=4)
    np.testing.assert_allclose(native.frame_sums(), [0 + 1 + 2 + 3, 4 + 5 + 6 + 7, 8 + 9 + 10 + 11])
    # frames of 4 ms centred at 2, 6, 10 ms: a word 5-11 ms covers frames 1 and 2
    assert native.word_spans([Word("w", 0.005, 0.011)], 3) == [(1, 3)]


class WindowModel(SpeechModel):
    """Narrow fake (a real model has no known answer): the class-1 logit is
    the energy of samples 4000-6000 only, so every faithful waveform map puts
    its mass in the STFT frames over that window."""

    name = "window"
    labels = ("rest", "window")
    capabilities = frozenset({Capability.CLASSIFY, Capability.DIFFERENTIABLE})

    def class_logits(self, waveform):
        x = torch.as_tensor(waveform, dtype=torch.float32)
        z = (x[4000:6000] ** 2).sum()
        return torch.stack([-z, z])


def tone(seconds: float = 0.6) -> Utterance:
    t = np.arange(int(16000 * seconds)) / 16000
    x = (0.3 * np.sin(2 * np.pi * 700 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size))
    return Utterance("tone", x.astype(np.float32), 16000, (Word("a", 0.05, 0.2), Word("b", 0.25, 0.4)))


@pytest.fixture(scope="module")
def registry():
    return build_registry(restrict={"captum_gradients", "captum_perturbation", "content_fills"})


@pytest.mark.parametrize("feature", ["magnitude", "log-magnitude", "waveform"])
def test_every_space_keeps_the_feature_space_protocol(registry, feature):
    req = ExplainRequest(WindowModel(), tone(), Target("class", 1, "window"), CFG, seed=0)
    space = make_space(req, resolve_target(req), feature)
    assert isinstance(space, FeatureSpace)
    full = (1, *space.shape)
    fill = registry.create("fill", "zero")
    for x in (space.inputs(), space.silence(), space.fill_content(fill, 0), space.fill_content(None, 0),
              space.patch_mask(4, 2), space.word_mask(req.utterance.words)):
        assert tuple(x.shape) == full
    assert tuple(space.forward(torch.cat([space.inputs(), space.silence()])).shape) == (2,)
    assert space.evaluations == 2
    values = np.ones(space.shape)
    assert space.to_stft(values).shape == (CFG.n_freq, CFG.n_frames(len(req.utterance.waveform)))
    assert space.native(values).values.size == values.size
    with pytest.raises(InputError, match=f"{space.space_name} space: expected a batch of shape"):
        space.forward(space.inputs()[0])


@pytest.mark.parametrize("name, params", [
    ("saliency", {}),
    ("integrated-gradients", {"n_steps": 8}),
    ("feature-ablation", {"patch_frames": 2}),
    ("lime", {"n_samples": 150, "patch_frames": 4}),
])
def test_waveform_maps_land_on_the_window(registry, name, params):
    method = registry.create("method", name, feature="waveform", sign="abs", **params)
    req = ExplainRequest(WindowModel(), tone(), Target("class", 1, "window"), CFG, seed=0)
    smap = method.explain(req)
    assert smap.shape == (CFG.n_freq, CFG.n_frames(9600)) and smap.params["input_type"] == "waveform"
    assert smap.native.values.shape == (9600, 1) and smap.params["input_shape"] == [9600]
    per_frame = smap.values.sum(axis=0)
    # frames whose window overlaps the samples that matter (4000-6000, widened to whole patches)
    patch = CFG.hop * params.get("patch_frames", 0)
    lo, hi = (4000 // patch * patch, -(-6000 // patch) * patch) if patch else (4000, 6000)
    centres = np.arange(per_frame.size) * CFG.hop
    near = (centres > lo - CFG.n_fft // 2) & (centres < hi + CFG.n_fft // 2)
    share = per_frame[near].sum() / per_frame.sum()
    assert share > 0.9


def test_bad_feature_choices_are_named(registry):
    with pytest.raises(InputError, match="feature must be one of magnitude, log-magnitude, waveform, embedding"):
        registry.create("method", "saliency", feature="spectrum")
    with pytest.raises(InputError, match="occlusion: feature must be one of magnitude, log-magnitude"):
        registry.create("method", "occlusion", feature="waveform")
    # the embedding needs the model's capability: the harness skips models without it, saying why
    assert Capability.EMBED in registry.create("method", "saliency", feature="embedding").requires
    with pytest.raises(SsbmBenchError, match="capability embed"):
        req = ExplainRequest(WindowModel(), tone(), Target("class", 1, "window"), CFG)
        make_space(req, resolve_target(req), "embedding")


def test_isa_refuses_attributions_of_mismatched_shapes():
    from ssbm_bench.harness.suite import PluginRef
    from ssbm_bench_plugins.boards.isa_cell import IsaJob, check_shapes

    job = IsaJob("fam", (), "speechbrain-dir", PluginRef("saliency", {}), PluginRef("synthetic", {}),
                 (("u1", "x"),))
    maps = {"seed-0": [NativeAttribution(np.zeros((5, 2)), 0.01, "embedding")],
            "seed-1": [NativeAttribution(np.zeros((6, 2)), 0.01, "embedding")]}
    with pytest.raises(SsbmBenchError, match="input 'u1'.*different shapes across seeds"):
        check_shapes(maps, job)


# --- real models ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def whisper():
    return build_registry().create("model", "whisper-tiny-en")


def test_whisper_embedding_scores_like_the_waveform(whisper):
    utt = next(iter(build_registry().create("corpus", "synthetic").utterances()))
    wave = torch.as_tensor(utt.waveform, dtype=torch.float32)
    ft = whisper.forced_transcript(utt.waveform)
    target = Target("word", 1, ft.words[1])
    emb = whisper.embed(wave)
    assert emb.values.shape == (len(utt.waveform) // 160 + 1, 80) and emb.label == "log-mel"
    with torch.no_grad():
        direct = float(whisper.target_score(wave, target, ft))
        via = float(whisper.embedding_target_score(emb.values, emb, target, ft))
    assert via == pytest.approx(direct, abs=1e-4)
    reg = build_registry()
    smap = reg.create("method", "saliency", feature="embedding").explain(
        ExplainRequest(whisper, utt, Target("word", 1, utt.words[1].text), CFG))
    assert smap.native.values.shape == tuple(emb.values.shape) and smap.params["input_type"] == "embedding"
    assert smap.shape == (CFG.n_freq, CFG.n_frames(len(utt.waveform))) and np.isfinite(smap.values).all()
    # the log-mel reads nothing above 8 kHz... and the map's mass lies below the mel filters' top
    assert smap.values[:, :].std() > 0


def test_speechbrain_member_embedding_scores_like_the_waveform(tmp_path, monkeypatch):
    from ssbm_bench_plugins import seed_families

    monkeypatch.setenv("SSBM_BENCH_CACHE", str(tmp_path / "cache"))
    fam = seed_families.train_family("voices", 2, training={"epochs": 1})
    reg = build_registry()
    model = reg.create("model", "speechbrain-dir", path=str(fam.members["seed-0"]))
    assert model.has(Capability.EMBED)
    utt = next(iter(reg.create("corpus", "synthetic").utterances()))
    wave = torch.as_tensor(utt.waveform, dtype=torch.float32)
    emb = model.embed(wave)
    assert emb.values.shape[1] == 40 and emb.frequency_weights.shape == (40, emb.bin_hz.size)
    with torch.no_grad():
        for c in range(len(model.labels)):
            direct = float(model.class_logits(wave)[c])
            via = float(model.embedding_target_score(emb.values, emb, Target("class", c, model.labels[c])))
            assert via == pytest.approx(direct, abs=1e-5)
    smap = reg.create("method", "feature-ablation", feature="embedding", segments="words").explain(
        ExplainRequest(model, utt, Target("class", 0, model.labels[0]), CFG))
    # word-aligned ablation: one value per word (plus the gaps), constant over each word's frames
    assert len(np.unique(smap.native.values)) <= len(utt.words) + 1
