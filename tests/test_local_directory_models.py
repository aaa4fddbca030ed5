"""Models from local directories: speechbrain's layout and transformers' save_pretrained.

speechbrain-dir: a small real classifier is trained here with speechbrain's
``Brain`` (voice identification on the synthetic corpus, 4 voices), exported
in speechbrain's own layout, loaded back by path, and checked against the
in-memory model it was saved from.

transformers-dir: tiny models are built from configs with randomly
initialised weights. These tests are about *loading* (the right class, the
right feature extractor and tokenizer, the same outputs as the in-memory
model, gradients, and naming what is missing), not about accuracy.

No hub is reached: HF_HUB_OFFLINE is set and everything comes from tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ssbm_bench.errors import CapabilityMissing, InputError  # noqa: E402
from ssbm_bench.frontend import StftFrontEnd, score_from_magnitude  # noqa: E402
from ssbm_bench.model import Capability, files_digest  # noqa: E402
from ssbm_bench.plugins import build_registry  # noqa: E402
from ssbm_bench.types import Target  # noqa: E402
from ssbm_bench_plugins.hf_layout import weight_files  # noqa: E402
from ssbm_bench_plugins.speechbrain_dir import SpeechBrainDirectory  # noqa: E402
from ssbm_bench_plugins.speechbrain_recipe import LOADABLES, predict_log_probs, train_classifier  # noqa: E402
from ssbm_bench_plugins.synthetic import SyntheticCorpus  # noqa: E402
from ssbm_bench_plugins.transformers_dir import TransformersDirectory, load_transformers_directory  # noqa: E402

VOICES = ["awb", "kal16", "rms", "slt_hts"]


@pytest.fixture(scope="module")
def registry():
    return build_registry(restrict={"speechbrain_dir", "transformers_dir"})


def test_both_plugins_are_registered(registry):
    assert {"speechbrain-dir", "transformers-dir"} <= set(registry.names("model"))


# --------------------------------------------------------------------------
# speechbrain-dir
# --------------------------------------------------------------------------

def _sentence(utt_id: str) -> str:
    return utt_id.rsplit("_", 2)[-2] + "_" + utt_id.rsplit("_", 1)[-1]  # e.g. h01_03


@pytest.fixture(scope="module")
def voices_model(tmp_path_factory):
    """The recipe classifier trained on 20 sentences x 4 voices, tested on the other 5 sentences."""
    utts = list(SyntheticCorpus().utterances())
    sentences = sorted({_sentence(u.id) for u in utts})
    train = [u for u in utts if _sentence(u.id) in sentences[:20]]
    held_out = [u for u in utts if _sentence(u.id) in sentences[20:]]
    live: dict = {}
    out = tmp_path_factory.mktemp("sb") / "voices"
    result = train_classifier(
        [u.waveform for u in train], [u.labels["voice"] for u in train], out, seed=0, epochs=4,
        valid=([u.waveform for u in held_out], [u.labels["voice"] for u in held_out]), keep_modules=live,
    )
    return result, live, held_out


def test_recipe_trains_a_real_classifier(voices_model):
    result, _, held_out = voices_model
    assert result.labels == tuple(VOICES)
    assert len(held_out) == 20
    assert result.steps == 40  # 80 utterances, batches of 8, 4 epochs
    assert result.losses[-1] < result.losses[0]
    # measured: train / held-out 1.00 / 1.00 (seed 0), 0.99 / 1.00 (seed 1); chance is 0.25
    assert result.train_accuracy >= 0.75 and result.valid_accuracy >= 0.6
    record = json.loads((result.directory / "training.json").read_text())
    assert record["seed"] == 0 and record["labels"] == VOICES


def test_directory_is_in_speechbrain_layout(voices_model, tmp_path):
    result, live, held_out = voices_model
    names = {p.name for p in result.directory.iterdir()}
    assert {"hyperparams.yaml", *(f"{n}.ckpt" for n in LOADABLES)} <= names
    from speechbrain.inference.classifiers import EncoderClassifier

    sb = EncoderClassifier.from_hparams(source=str(result.directory), savedir=str(tmp_path / "sb"))
    out, _, _, text = sb.classify_batch(torch.from_numpy(held_out[0].waveform)[None])
    ref = predict_log_probs(live, [held_out[0].waveform])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    assert text[0] == VOICES[int(ref.argmax())]


def test_loaded_by_path_predicts_like_the_trained_model(voices_model, registry):
    result, live, held_out = voices_model
    model = registry.create("model", "speechbrain-dir", path=str(result.directory))
    assert model.labels == tuple(VOICES)
    assert model.has(Capability.CLASSIFY) and model.has(Capability.DIFFERENTIABLE)
    assert not model.has(Capability.TRANSCRIBE)
    waves = [u.waveform for u in held_out]
    rng_state = torch.get_rng_state()
    probs = model.classify(waves)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global generator is left alone
    assert probs.shape == (20, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    ref = np.exp(predict_log_probs(live, waves))
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=1), ref.argmax(axis=1))
    d = model.describe()
    json.dumps(d)
    assert d["output"] == "log_probabilities" and d["parameters"]["path"] == str(result.directory)
    assert d["version"].startswith("speechbrain ") and len(d["weights_sha256"]) == 64


def test_class_logits_are_differentiable(voices_model):
    result, _, held_out = voices_model
    model = SpeechBrainDirectory(str(result.directory))
    u = held_out[1]
    x = torch.tensor(u.waveform, requires_grad=True)
    logits = model.class_logits(x)
    assert logits.shape == (4,)
    np.testing.assert_allclose(torch.softmax(logits.double(), 0).detach().numpy(), model.classify([u.waveform])[0],
                               atol=1e-5)
    target = Target("class", VOICES.index(u.labels["voice"]), u.labels["voice"])
    model.target_score(x, target).backward()
    assert torch.isfinite(x.grad).all() and x.grad.norm() > 0
    front = StftFrontEnd(u.waveform)
    mag = front.magnitude.clone().requires_grad_(True)
    score_from_magnitude(model, front, mag, target).backward()
    assert torch.isfinite(mag.grad).all() and mag.grad.abs().sum() > 0


def test_hub_style_paths_are_found_in_the_directory(voices_model, tmp_path):
    """A downloaded model repository names a hub id in its yaml; the files beside it are used."""
    result, live, held_out = voices_model
    copy = tmp_path / "repo"
    shutil.copytree(result.directory, copy)
    text = (copy / "hyperparams.yaml").read_text()
    text = "pretrained_path: speechbrain/not-a-real-repo\n" + text
    text = text.replace(
        "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n",
        "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
        "    paths:\n"
        "        classifier: !ref <pretrained_path>/classifier.ckpt\n"
        "        label_encoder: someone/else/label_encoder.ckpt\n",
    )
    (copy / "hyperparams.yaml").write_text(text)
    model = SpeechBrainDirectory(str(copy))
    np.testing.assert_allclose(model.classify([held_out[2].waveform]),
                               np.exp(predict_log_probs(live, [held_out[2].waveform])), atol=1e-5)


def test_wrong_speechbrain_layout_names_the_missing_file(voices_model, tmp_path):
    result, _, _ = voices_model
    with pytest.raises(InputError, match="not a directory"):
        SpeechBrainDirectory(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="missing hyperparams.yaml"):
        SpeechBrainDirectory(str(tmp_path / "empty"))
    broken = tmp_path / "broken"
    shutil.copytree(result.directory, broken)
    (broken / "classifier.ckpt").unlink()
    with pytest.raises(InputError, match=r"missing classifier\.ckpt.*loadable 'classifier'"):
        SpeechBrainDirectory(str(broken))
    with pytest.raises(InputError, match="supported: EncoderClassifier"):
        SpeechBrainDirectory(str(result.directory), interface="SpeakerRecognition")
    (broken / "classifier.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="do not load"):
        SpeechBrainDirectory(str(broken))
    (broken / "hyperparams.yaml").write_text("modules: {}\n")
    with pytest.raises(InputError, match="no 'pretrainer'"):
        SpeechBrainDirectory(str(broken))


CTC_YAML = """\
sample_rate: 16000
encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
    features: !new:speechbrain.lobes.features.Fbank
        n_mels: 20
    norm: !new:speechbrain.processing.features.InputNormalization
        norm_type: sentence
    linear: !new:speechbrain.nnet.linear.Linear
        input_size: 20
        n_neurons: 6
    log_softmax: !new:speechbrain.nnet.activations.Softmax
        apply_log: True
tokenizer: !new:speechbrain.dataio.encoder.CTCTextEncoder
decoding_function: !name:speechbrain.decoders.ctc_greedy_decode
    blank_id: 0
modules:
    encoder: !ref <encoder>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        encoder: !ref <encoder>
        tokenizer: !ref <tokenizer>
"""


def test_speechbrain_ctc_asr_directory_transcribes(tmp_path, registry):
    """An EncoderASR directory (random weights, character CTC): transcripts equal the in-memory decoding."""
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.decoders import ctc_greedy_decode

    torch.manual_seed(0)
    hp = load_hyperpyyaml(CTC_YAML)
    tok = hp["tokenizer"]
    tok.insert_blank("<blank>", index=0)
    for c in ["a", "b", " ", "c", "d"]:
        tok.add_label(c)
    tok.expect_len(6)
    tok.save(tmp_path / "tokenizer.ckpt")
    torch.save(hp["encoder"].state_dict(), tmp_path / "encoder.ckpt")
    (tmp_path / "hyperparams.yaml").write_text(CTC_YAML)
    model = registry.create("model", "speechbrain-dir", path=str(tmp_path))
    assert model.capabilities == {Capability.TRANSCRIBE}
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 12000)]
    got = model.transcribe(waves)
    enc = hp["encoder"].eval()
    with torch.no_grad():
        for w, words in zip(waves, got):
            ids = ctc_greedy_decode(enc(torch.from_numpy(w)[None], torch.ones(1)), torch.ones(1), blank_id=0)
            assert words == "".join(tok.decode_ndim(ids[0])).split()
            assert words
    with pytest.raises(CapabilityMissing, match="needs capability classify"):
        model.classify(waves)


# --------------------------------------------------------------------------
# transformers-dir
# --------------------------------------------------------------------------

LABELS = {0: "cat", 1: "dog", 2: "bird"}
VOCAB = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("dehlorw")}}


def _tiny_wav2vec2_config(**extra):
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8),
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, **extra)


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory):
    """Wav2Vec2ForCTC (random weights) + Wav2Vec2CTCTokenizer (vocab.json written here) + extractor."""
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor

    root = tmp_path_factory.mktemp("ctc")
    vocab = root.parent / "vocab_source.json"
    vocab.write_text(json.dumps(VOCAB))
    tok = Wav2Vec2CTCTokenizer(str(vocab), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False)
    processor = Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok)
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(_tiny_wav2vec2_config(vocab_size=len(VOCAB), pad_token_id=0)).eval()
    model.save_pretrained(root)
    processor.save_pretrained(root)
    return root, model, processor


def _ast(root):
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    cfg = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                    num_mel_bins=32, max_length=128, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    return ASTForAudioClassification(cfg).eval(), ASTFeatureExtractor(num_mel_bins=32, max_length=128)


def _wav2vec2_classifier(root):
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    cfg = _tiny_wav2vec2_config(classifier_proj_size=16, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
                                feat_extract_norm="layer", do_stable_layer_norm=True)
    return Wav2Vec2ForSequenceClassification(cfg).eval(), Wav2Vec2FeatureExtractor(do_normalize=True,
                                                                                   return_attention_mask=True)


@pytest.fixture(scope="module", params=["ast", "wav2vec2"])
def classifier_dir(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(1)
    model, fe = {"ast": _ast, "wav2vec2": _wav2vec2_classifier}[request.param](root)
    model.save_pretrained(root)
    fe.save_pretrained(root)
    return root, model, fe


def _noise(n: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_ctc_directory_transcribes_like_the_in_memory_model(ctc_dir, registry):
    root, model, processor = ctc_dir
    loaded = registry.create("model", "transformers-dir", path=str(root))
    assert isinstance(loaded, TransformersDirectory)
    assert loaded.capabilities == {Capability.TRANSCRIBE} and loaded.architecture == "Wav2Vec2ForCTC"
    waves = [_noise(16000, 0), _noise(16000, 1), _noise(9000, 2)]
    got = loaded.transcribe(waves)
    with torch.no_grad():
        for w, words in zip(waves, got):
            ids = model(processor(w, sampling_rate=16000, return_tensors="pt").input_values).logits.argmax(-1)
            assert words == processor.batch_decode(ids)[0].split()
    d = loaded.describe()
    json.dumps(d)
    assert d["kind"] == "ctc" and d["feature_extractor"] == "Wav2Vec2FeatureExtractor"
    assert d["version"].startswith("transformers ") and len(d["weights_sha256"]) == 64


def test_greedy_ctc_decoding_merges_repeats_and_drops_blanks(ctc_dir):
    root, _, _ = ctc_dir
    loaded = load_transformers_directory(str(root))
    path = "hh<pad>e<pad>ll<pad>l<pad>oo|||w<pad>oo<pad>rl<pad>dd<pad>"
    symbols, i = [], 0
    while i < len(path):  # split the path into vocabulary symbols
        sym = "<pad>" if path.startswith("<pad>", i) else path[i]
        symbols.append(sym)
        i += len(sym)
    logits = torch.full((len(symbols), len(VOCAB)), -5.0)
    for t, s in enumerate(symbols):
        logits[t, VOCAB[s]] = 5.0
    assert loaded.decode(loaded.greedy_ids(logits)) == "hello world"


def test_classifier_directory_matches_the_in_memory_model(classifier_dir, registry):
    root, model, fe = classifier_dir
    loaded = registry.create("model", "transformers-dir", path=str(root))
    assert loaded.labels == ("cat", "dog", "bird")
    assert loaded.capabilities == {Capability.CLASSIFY, Capability.DIFFERENTIABLE}
    waves = [_noise(16000, 3), _noise(16000, 4), _noise(12000, 5)]
    probs = loaded.classify(waves)
    assert probs.shape == (3, 3)
    for w, p in zip(waves, probs):
        with torch.no_grad():
            ref = model(**fe(w, sampling_rate=16000, return_tensors="pt")).logits[0]
        np.testing.assert_allclose(p, torch.softmax(ref.double(), 0).numpy(), atol=1e-6)
        x = torch.tensor(w, requires_grad=True)
        logits = loaded.class_logits(x)
        np.testing.assert_allclose(logits.detach().numpy(), ref.numpy(), atol=1e-5)
        loaded.target_score(x, Target("class", 1, "dog")).backward()
        assert torch.isfinite(x.grad).all() and x.grad.norm() > 0


def test_torch_features_equal_the_extractor(classifier_dir):
    root, _, fe = classifier_dir
    loaded = load_transformers_directory(str(root))
    for n in (8000, 17000):
        w = _noise(n, n)
        ref = fe(w, sampling_rate=16000, return_tensors="pt")["input_values"]
        ours = loaded.features_torch(torch.from_numpy(w))["input_values"]
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_ast_refuses_audio_it_would_cut(classifier_dir):
    root, _, _ = classifier_dir
    loaded = load_transformers_directory(str(root))
    if loaded.extractor_name != "ASTFeatureExtractor":
        assert loaded.max_duration is None
        return
    assert loaded.max_duration == pytest.approx(1.305, abs=1e-3)  # 128 frames of 10 ms + the 25 ms window
    with pytest.raises(InputError, match="accepts at most"):
        loaded.classify([_noise(32000, 0)])
    with pytest.raises(InputError, match="accepts at most"):
        loaded.class_logits(torch.from_numpy(_noise(32000, 0)))


def test_wrong_transformers_layout_names_the_missing_file(ctc_dir, tmp_path):
    root, _, _ = ctc_dir
    with pytest.raises(InputError, match="not a directory"):
        load_transformers_directory(str(tmp_path / "nowhere"))

    def copy(name, drop=()):
        dst = tmp_path / name
        shutil.copytree(root, dst)
        for f in drop:
            (dst / f).unlink()
        return dst

    with pytest.raises(InputError, match="missing config.json"):
        load_transformers_directory(str(copy("noconfig", ["config.json"])))
    with pytest.raises(InputError, match="missing the weights: none of model.safetensors"):
        load_transformers_directory(str(copy("noweights", ["model.safetensors"])))
    with pytest.raises(InputError, match="missing vocab.json"):
        load_transformers_directory(str(copy("notokenizer", ["vocab.json"])))
    with pytest.raises(InputError, match="missing preprocessor_config.json"):
        load_transformers_directory(str(copy("noextractor", ["processor_config.json"])))
    odd = copy("bert")
    cfg = json.loads((odd / "config.json").read_text())
    cfg.update(model_type="bert", architectures=["BertForMaskedLM"])
    (odd / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=r"unsupported model.*BertForMaskedLM.*supported: ctc: .*Wav2Vec2ForCTC"):
        load_transformers_directory(str(odd))


def test_whisper_directory_goes_to_the_whisper_plugin(tmp_path):
    """Only the hand-over is tested here: the whisper plugin checks the layout and loads weights on first use."""
    hf_directory = pytest.importorskip("ssbm_bench_plugins.whisper.hf_directory",
                                       reason="the whisper plugin's hf_directory module is not there yet")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper",
                                                      "architectures": ["WhisperForConditionalGeneration"]}))
    with pytest.raises(InputError, match="whisper directory"):
        load_transformers_directory(str(tmp_path))  # the whisper plugin's own layout check speaks
    for f in ("model.safetensors", "tokenizer.json", "preprocessor_config.json"):
        (tmp_path / f).write_text("{}")
    model = load_transformers_directory(str(tmp_path))
    assert isinstance(model, hf_directory.WhisperDirectoryModel)


def test_whisper_parameters_are_refused_for_other_models(ctc_dir):
    root, _, _ = ctc_dir
    with pytest.raises(InputError, match="Whisper directories only"):
        load_transformers_directory(str(root), language="en")


def test_files_digest_names_each_file_once_in_any_order(tmp_path):
    """The weights digest enters stored results: the pinned value (from the implementation it replaced) must
    not change."""
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_text("{}")
    (root / "model.safetensors").write_bytes(b"weights")
    outside = tmp_path / "elsewhere" / "label_encoder.txt"  # named by its base name
    outside.parent.mkdir()
    outside.write_text("a => 0")
    files = [root / "model.safetensors", root / "config.json", outside]
    digest = files_digest(files, root)
    assert digest == files_digest([*reversed(files), files[0]], root)
    assert digest == "b7fb584eee70844287e4b0792ad539db4bfd2ff64687e9fbb1cfd733d6867d78"


def test_sharded_weights_are_found_through_their_index(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"1")
    with pytest.raises(InputError, match="label: missing model-00002-of-00002.safetensors, a weights shard"):
        weight_files(tmp_path, "label")
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"2")
    assert [p.name for p in weight_files(tmp_path, "label")] == [
        "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]

