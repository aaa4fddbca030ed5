"""The synthetic corpus: committed copy, integrity checks, generator, plugin wiring.

Real audio throughout: the committed FLAC files, and flite/festival for the
generator check (skipped only where the engines' versions differ from the
ones recorded in the manifest, since another engine build may legitimately
produce other samples).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ssbm_bench.errors import InputError
from ssbm_bench.plugins import build_registry
from ssbm_bench_plugins.synthetic import SyntheticCorpus, build_synthetic, engines
from ssbm_bench_plugins.synthetic.build import VOICES, engine_info
from ssbm_bench_plugins.synthetic.corpus import DEFAULT_PATH
from ssbm_bench_plugins.synthetic.harvard import SENTENCES, sentence_words
from ssbm_bench_plugins.synthetic.manifest import DIGEST_NAME, MANIFEST_NAME, read_manifest


@pytest.fixture(scope="module")
def corpus():
    return SyntheticCorpus()


@pytest.fixture(scope="module")
def utterances(corpus):
    return list(corpus.utterances())


@pytest.fixture
def copy(tmp_path):
    dst = tmp_path / "synthetic"
    shutil.copytree(DEFAULT_PATH, dst)
    return dst


def _manifest_lines(path):
    return [json.loads(line) for line in (path / MANIFEST_NAME).read_text().splitlines()]


def test_committed_copy_has_100_utterances_with_valid_times(corpus, utterances):
    assert len(utterances) == 100 == len(corpus)
    assert len({u.id for u in utterances}) == 100
    assert {u.labels["voice"] for u in utterances} == set(VOICES)
    assert {u.meta["sentence"] for u in utterances} == set(SENTENCES)
    for u in utterances:
        assert u.sample_rate == 16000 and u.waveform.dtype == np.float32
        assert u.times_source == "synthesiser"
        assert [w.text for w in u.words] == sentence_words(u.meta["text"])
        for w in u.words:
            assert 0.0 <= w.start < w.end <= u.duration, (u.id, w)
        for a, b in zip(u.words, u.words[1:]):
            assert a.end <= b.start, (u.id, a, b)


def test_speech_energy_is_inside_the_word_spans(utterances):
    """Gross timing errors (a shift, a wrong rate) would put speech in the gaps."""
    for u in utterances:
        x = u.waveform.astype(np.float64)
        inside = np.zeros(len(x), dtype=bool)
        for w in u.words:
            inside[int(w.start * u.sample_rate) : int(np.ceil(w.end * u.sample_rate))] = True
        assert (~inside).sum() > 0.1 * u.sample_rate, u.id  # leading/trailing silence is kept
        ratio_db = 10 * np.log10(np.mean(x[inside] ** 2) / max(np.mean(x[~inside] ** 2), 1e-12))
        assert ratio_db > 15.0, (u.id, ratio_db)  # observed: 25-53 dB


def test_digest_matches_digest_txt(corpus):
    recorded = (DEFAULT_PATH / DIGEST_NAME).read_text().strip()
    assert corpus.digest() == recorded
    assert len(recorded) == 64


def test_selection_by_voice_and_limit(corpus):
    rms = SyntheticCorpus(voices=["rms"])
    assert len(rms) == 25 and all(i.startswith("rms_") for i in rms.ids())
    first = SyntheticCorpus(limit=8)
    assert {u.labels["voice"] for u in first.utterances()} == set(VOICES)  # sentence-major order
    assert len({corpus.digest(), rms.digest(), first.digest()}) == 3
    assert SyntheticCorpus(voices=list(VOICES)).digest() == corpus.digest()
    with pytest.raises(InputError, match="unknown voice nope.*known: awb, kal16, rms, slt_hts"):
        SyntheticCorpus(voices=["nope"])


def test_truncated_flac_is_rejected_naming_the_file(copy):
    victim = copy / "audio" / "awb_h02_03.flac"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(InputError, match=r"awb_h02_03\.flac.*(expected \d+ samples|cannot be decoded)"):
        SyntheticCorpus(copy)


def test_missing_flac_is_rejected_naming_the_file(copy):
    (copy / "audio" / "kal16_h01_05.flac").unlink()
    with pytest.raises(InputError, match=r"kal16_h01_05\.flac.*not found"):
        SyntheticCorpus(copy)


def test_edited_word_time_is_rejected_naming_the_digest(copy):
    entries = _manifest_lines(copy)
    entries[3]["words"][2]["end"] += 0.01
    (copy / MANIFEST_NAME).write_text("".join(json.dumps(e) + "\n" for e in entries))
    with pytest.raises(InputError, match=r"digest\.txt records .* manifest.s annotations"):
        SyntheticCorpus(copy)


def test_broken_manifest_line_is_rejected_with_its_line_number(copy):
    lines = (copy / MANIFEST_NAME).read_text().splitlines()
    lines[6] = lines[6][:40]
    (copy / MANIFEST_NAME).write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"manifest\.jsonl, line 7: not valid JSON"):
        SyntheticCorpus(copy)


def test_generator_reproduces_the_committed_utterances(tmp_path):
    """Two sentences x one flite and one festival voice, built afresh, equal the committed ones.

    The sentences hold the clitics ("it's", "man's") that the engines split
    into two words, so the word mapping is exercised too.
    """
    committed = {e["id"]: e for e in read_manifest(DEFAULT_PATH)}
    for voice in ("rms", "slt_hts"):
        engine = VOICES[voice][0]
        recorded = next(e["engine"] for e in committed.values() if e["voice"] == voice)
        try:
            here = engine_info(engine)
        except engines.EngineError as exc:
            pytest.skip(f"{engine} is not usable here ({exc}); cannot regenerate to compare")
        if here["version"] != recorded["version"]:
            pytest.skip(
                f"{engine} here is {here['version']!r}, the committed copy was made with {recorded['version']!r}: "
                "another engine build may synthesise other samples"
            )
    out = tmp_path / "built"
    manifest = build_synthetic(out, voices=["rms", "slt_hts"], sentences=["h01_03", "h02_08"])
    assert manifest == out / MANIFEST_NAME
    built = SyntheticCorpus(out)
    assert built.ids() == ["rms_h01_03", "slt_hts_h01_03", "rms_h02_08", "slt_hts_h02_08"]
    reference = SyntheticCorpus()
    for u in built.utterances():
        ref = reference.get(u.id)
        np.testing.assert_array_equal(u.waveform, ref.waveform, err_msg=u.id)
        assert [w.to_dict() for w in u.words] == [w.to_dict() for w in ref.words]
        assert u.meta["pcm_sha256"] == committed[u.id]["pcm_sha256"]


def test_plugin_is_registered():
    registry = build_registry(restrict={"synthetic"})
    assert "synthetic" in registry.names("corpus")
    record = registry.get("corpus", "synthetic").record
    assert record.builder is build_synthetic
    corpus = registry.create("corpus", "synthetic", voices="kal16", limit=2)
    assert corpus.ids() == ["kal16_h01_01", "kal16_h01_02"]
