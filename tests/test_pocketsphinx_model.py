"""The pocketsphinx model plugin on real audio (pocketsphinx-testdata), no mocks."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from ssbm_bench.errors import InputError
from ssbm_bench.model import Capability

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
pytestmark = pytest.mark.skipif(
    not (TESTDATA / "goforward.raw").is_file(), reason="Debian package pocketsphinx-testdata not installed"
)


def raw(name: str) -> np.ndarray:
    return np.fromfile(TESTDATA / name, dtype="<i2").astype(np.float32) / 32768.0


def wav(name: str) -> np.ndarray:
    import soundfile as sf

    return sf.read(str(TESTDATA / name), dtype="float32")[0]


@pytest.fixture(scope="module")
def model():
    from ssbm_bench_plugins.pocketsphinx_asr import PocketsphinxModel

    return PocketsphinxModel()


@pytest.fixture(scope="module")
def goforward() -> np.ndarray:
    return raw("goforward.raw")


def test_identity_and_settings_are_recorded(model):
    import importlib.metadata

    assert model.name == "pocketsphinx"
    assert model.version == f"pocketsphinx=={importlib.metadata.version('pocketsphinx')}"
    assert model.sample_rate == 16000
    assert model.capabilities == {Capability.TRANSCRIBE, Capability.ALIGN}
    d = model.describe()
    for key in ("lm", "dictionary", "pad_seconds", "seed", "fresh_decoder"):
        assert key in d


def test_goforward_is_recognised_exactly(model, goforward):
    assert model.transcribe([goforward]) == [["go", "forward", "ten", "meters"]]


def test_result_does_not_depend_on_what_was_decoded_before(model):
    """A, B, A on one instance gives A's words both times, equal to a fresh decoder's."""
    from ssbm_bench_plugins.pocketsphinx_asr import PocketsphinxModel

    a, b = wav("librivox/sense_and_sensibility_01_austen_64kb-0930.wav"), raw("something.raw")
    first = model.transcribe([a])
    model.transcribe([b])
    assert model.transcribe([a]) == first
    assert PocketsphinxModel(fresh_decoder=True).transcribe([a]) == first


def test_first_and_later_decodes_agree_where_a_reused_decoder_did_not(model):
    """kal16_h01_06 came out differently on the 2nd decode of a bare reused decoder (see the traps benchmark)."""
    try:
        from ssbm_bench_plugins.synthetic import SyntheticCorpus

        x = SyntheticCorpus().get("kal16_h01_06").waveform
    except Exception as exc:  # the corpus is another plugin's; its absence is not this model's failure
        pytest.skip(f"synthetic corpus unavailable: {exc}")
    first = model.transcribe([x, x, x])
    assert first[0] == first[1] == first[2] == ["the", "juice", "of", "lemons", "makes", "find", "punch"]


def test_alignment_gives_ordered_times_inside_the_audio(model, goforward):
    words = model.align(goforward, ["Go", "forward", "ten", "meters"])
    assert [w.text for w in words] == ["Go", "forward", "ten", "meters"]
    duration = len(goforward) / 16000
    edges = [t for w in words for t in (w.start, w.end)]
    assert edges == sorted(edges) and 0 <= edges[0] and edges[-1] <= duration
    assert 0.3 < words[0].start < 0.6 and all(w.end > w.start for w in words)
    # deterministic across calls, whatever the aligner did in between
    model.align(raw("something.raw"), "go somewhere and do something".split())
    assert model.align(goforward, ["Go", "forward", "ten", "meters"]) == words


def test_audio_ending_in_digital_silence_aligns(model, goforward):
    x = np.concatenate([goforward, np.zeros(16000, np.float32)])
    words = model.align(x, "go forward ten meters".split())
    assert len(words) == 4 and words[-1].end <= len(goforward) / 16000 + 0.05


def test_padding_is_seeded_and_keeps_times_inside_the_original_audio(goforward):
    from ssbm_bench_plugins.pocketsphinx_asr import PocketsphinxModel

    padded = PocketsphinxModel(pad_seconds=0.2, seed=3)
    assert PocketsphinxModel(pad_seconds=0.2, seed=3)._pad.tobytes() == padded._pad.tobytes()
    words = padded.align(goforward, "go forward ten meters".split())
    assert words[-1].end <= len(goforward) / 16000


def test_a_word_over_digital_silence_cannot_be_aligned(model, goforward):
    x = goforward.copy()
    x[int(1.53 * 16000):] = 0.0  # "meters" and everything after it
    with pytest.raises(InputError, match="could not fit 4 words"):
        model.align(x, "go forward ten meters".split())


def test_out_of_vocabulary_word_is_named(model, goforward):
    with pytest.raises(InputError, match="not in the pronunciation dictionary: 'qwzxv'"):
        model.align(goforward, ["go", "qwzxv", "ten", "meters"])
    with pytest.raises(InputError, match="no words"):
        model.align(goforward, [])


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([0.1, np.nan, 0.2] * 1000, np.float32), "NaN"),
        (np.zeros(0, np.float32), "empty"),
        (np.zeros(16000, np.float32), "digital silence"),
        ((np.ones(1600) * 1000).astype(np.int16), "dtype int16"),
        (np.ones((2, 1600), np.float32) * 0.1, "1-D"),
        (np.ones(1600, np.float32) * 1000.0, "int16-scaled"),
    ],
    ids=["nan", "empty", "silence", "int16", "2d", "wrong-scale"],
)
def test_bad_input_is_rejected_by_name(model, bad, message):
    with pytest.raises(InputError, match=message):
        model.transcribe([bad])
    with pytest.raises(InputError, match=message):
        model.align(bad, ["go"])


def test_a_bare_waveform_is_not_taken_for_a_batch(model, goforward):
    with pytest.raises(InputError, match="batch"):
        model.transcribe(goforward)


def test_missing_model_files_are_named():
    from ssbm_bench_plugins.pocketsphinx_asr import PocketsphinxModel

    with pytest.raises(InputError, match="language model file '/nonexistent.lm.bin' not found"):
        PocketsphinxModel(lm="/nonexistent.lm.bin")


def test_pickles_without_its_decoders(model, goforward):
    clone = pickle.loads(pickle.dumps(model))
    assert clone.describe() == model.describe()
    assert clone.transcribe([goforward]) == [["go", "forward", "ten", "meters"]]


def test_registered_through_the_entry_point():
    from ssbm_bench.plugins import build_registry

    registry = build_registry(restrict=None)
    assert "pocketsphinx" in registry.names("model")
    record = registry.get("model", "pocketsphinx").record
    assert record.capabilities == {"transcribe", "align"}
