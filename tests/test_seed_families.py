"""Seed families (ISA): the commands corpus, training per seed with
speechbrain's Brain, caching by digest, agreement, and the `train` CLI.

Everything is real: flite synthesises the commands, speechbrain trains the
recipe CNN, the speechbrain-dir adapter loads the members back. Epochs are
cut to keep the tests short; the default (20) is what `ssbm-bench train` uses.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from e2e_helpers import cli
from ssbm_bench.errors import InputError
from ssbm_bench.plugins import build_registry
from ssbm_bench_plugins import seed_families
from ssbm_bench_plugins.commands_corpus import LOCATIONS, OBJECTS, ACTIONS, build_commands, commands
from ssbm_bench_plugins.synthetic.manifest import ManifestCorpus

FAST = {"epochs": 2}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SSBM_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_split_holds_every_slot_value_out_and_in():
    cmds = commands()
    assert len(cmds) == 48 and len({c["text"] for c in cmds}) == 48
    test = [c for c in cmds if c["split"] == "test"]
    assert len(test) == 12
    for slot, values in (("action", ACTIONS), ("object", OBJECTS), ("location", LOCATIONS)):
        assert {c[slot] for c in test} == set(values)
        assert {c[slot] for c in cmds if c["split"] == "train"} == set(values)


def test_commands_are_synthesised_with_word_times_and_reproduce(tmp_path):
    first = build_commands(tmp_path / "a", voices=["kal16"]).parent
    second = build_commands(tmp_path / "b", voices=["kal16"]).parent
    assert (first / "digest.txt").read_text() == (second / "digest.txt").read_text()
    corpus = ManifestCorpus(first, label_fields=("action", "object", "location", "voice", "split"))
    utts = list(corpus.utterances())
    assert len(utts) == 48
    u = utts[0]
    assert [w.text for w in u.words] == u.reference == ["activate", "the", "lights", "in", "the", "kitchen"]
    assert u.labels["action"] == "activate" and u.labels["location"] == "kitchen"
    starts = [w.start for w in u.words]
    assert starts == sorted(starts) and u.words[-1].end <= len(u.waveform) / 16000 + 0.01


def test_family_trains_once_per_seed_and_is_deterministic(cache):
    fam = seed_families.train_family("voices", 2, training=FAST)
    assert sorted(fam.members) == ["seed-0", "seed-1"] and fam.trained == ["seed-0", "seed-1"]
    for path in fam.members.values():
        assert (path / "hyperparams.yaml").is_file() and (path / "embedding_model.ckpt").is_file()
        record = json.loads((path / "training.json").read_text())
        assert record["provenance"]["task"] == "voices" and record["epochs"] == 2
    again = seed_families.train_family("voices", 2, training=FAST)
    assert again.trained == [] and again.predictions == fam.predictions  # from the cache, nothing retrained

    # the same seed trained afresh (new cache) predicts identically: training is deterministic per seed
    ag = fam.agreement()
    assert len(ag["accuracy"]) == 2 and ag["inputs"] == 20
    assert -1.0 <= ag["kappa"] <= 1.0


def test_training_is_reproducible_across_caches(cache, tmp_path, monkeypatch):
    one = seed_families.train_family("voices", [0, 1], training=FAST)
    monkeypatch.setenv("SSBM_BENCH_CACHE", str(tmp_path / "other"))
    two = seed_families.train_family("voices", [0, 1], training=FAST)
    assert two.trained == ["seed-0", "seed-1"]
    from ssbm_bench_plugins.speechbrain_dir import SpeechBrainDirectory

    task = seed_families.load_task("voices")
    waves = [u.waveform for u in task.test[:4]]
    a = SpeechBrainDirectory(str(one.members["seed-0"])).classify(waves)
    b = SpeechBrainDirectory(str(two.members["seed-0"])).classify(waves)
    np.testing.assert_allclose(a, b, atol=1e-6)
    c = SpeechBrainDirectory(str(one.members["seed-1"])).classify(waves)
    assert not np.allclose(a, c)  # a different seed is a different model


@pytest.mark.parametrize("seeds, message", [(1, "at least two distinct seeds"), ([3, 3], "at least two distinct")])
def test_families_of_fewer_than_two_seeds_are_refused(cache, seeds, message):
    with pytest.raises(InputError, match=message):
        seed_families.train_family("voices", seeds)


def test_unknown_task_names_the_known_ones():
    with pytest.raises(InputError, match="known: commands-action, commands-location, commands-object, voices"):
        seed_families.load_task("intent")


def test_families_are_plugins_and_the_cli_trains_them(cache):
    reg = build_registry(restrict={"seed_families"})
    assert set(reg.names("family")) == {"commands-action", "commands-object", "commands-location", "voices"}
    assert reg.get("family", "voices").record.task_kind == "acoustic"
    ran = cli("train", "voices", "--seeds", "2", "--epochs", "2", "--json", env={"SSBM_BENCH_CACHE": str(cache)})
    summary = json.loads(ran.stdout)
    assert summary["task"] == "voices" and set(summary["members"]) == {"seed-0", "seed-1"}
    if summary["trained_now"]:  # training shows speechbrain's bar over each epoch's batches
        assert "100%|" in ran.stderr, ran.stderr[-2000:]
    assert summary["agreement"]["inputs"] == 20
    bad = cli("train", "intent", check=False)
    assert bad.returncode == 2 and "voices" in bad.stderr
