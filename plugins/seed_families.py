"""Seed families for ISA: one small speech classifier trained with K seeds.

The ISA paper (Shen et al., "On the reliability of feature attribution
methods for speech classification") asks whether models
that differ only in their training seed explain their decisions alike. A
family is the speechbrain recipe classifier (ssbm_bench_plugins.
speechbrain_recipe: Fbank -> mean normalisation -> 1-D CNN -> mean pooling
-> linear, trained with speechbrain's ``Brain``) trained on one task with
seeds 0..K-1. The seeds change initialisation and batch order; data,
recipe and hyper-parameters are the same. The paper fine-tunes a
pretrained wav2vec2 from one shared starting point with its front end
frozen; our recipe has no pretrained part, and its only front end, the
Fbank, has no parameters, so "frozen front end" holds trivially and every
member starts from its own random initialisation (stated in the results).

Tasks mirror the paper's contrast:

* ``commands-action`` / ``commands-object`` / ``commands-location``
  (word-based, like intent classification): one slot of the `commands`
  corpus; the class is carried by one word.
* ``voices`` (acoustic, like speaker identification): which of the four
  voices speaks a Harvard sentence of the `synthetic` corpus (20 sentences
  train, 5 test).

Each member is cached under ``$SSBM_BENCH_CACHE/families/<task>/<digest>/
seed-<i>`` where the digest covers the training data (PCM and labels), the
recipe's template and hyper-parameters and the seed: an unchanged member is
never retrained, and a change to any of them trains a new one. Members are
saved in speechbrain's own layout, so the `speechbrain-dir` model plugin
loads them (``params = { path = ".../seed-0" }``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ssbm_bench.cache_dir import cache_root
from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.metrics.agreement import family_agreement

RECIPE_VERSION = 1
#: seeds per family in the quick and standard suites (the paper: 9, 36 pairs)
SEEDS = {"quick": 3, "standard": 9}


@dataclass(frozen=True)
class TaskData:
    name: str
    kind: str  # "word-based" | "acoustic"
    train: list  # Utterance
    test: list
    label: str  # the label field that is the class
    corpus: str
    corpus_digest: str
    #: parameters of the corpus plugin under which the test ids are found
    corpus_params: dict = field(default_factory=dict)

    def labels(self, utts) -> list[str]:
        return [u.labels[self.label] for u in utts]


def _commands(slot: str) -> Callable[[], TaskData]:
    def load() -> TaskData:
        from ssbm_bench_plugins.commands_corpus import CommandsCorpus

        train, test = CommandsCorpus(split="train"), CommandsCorpus(split="test")
        return TaskData(f"commands-{slot}", "word-based", list(train.utterances()), list(test.utterances()),
                        slot, "commands", CommandsCorpus().digest(), {"split": "test"})
    return load


def _voices() -> TaskData:
    from ssbm_bench_plugins.synthetic import SyntheticCorpus

    corpus = SyntheticCorpus()
    utts = list(corpus.utterances())
    sentence = {u.id: u.id[u.id.rindex("_h") + 1:] for u in utts}  # slt_hts_h01_03 -> h01_03
    held_out = set(sorted(set(sentence.values()))[20:])  # the last 5 of 25 sentences, in every voice
    return TaskData("voices", "acoustic", [u for u in utts if sentence[u.id] not in held_out],
                    [u for u in utts if sentence[u.id] in held_out], "voice", "synthetic", corpus.digest())


TASKS: dict[str, Callable[[], TaskData]] = {
    "commands-action": _commands("action"),
    "commands-object": _commands("object"),
    "commands-location": _commands("location"),
    "voices": _voices,
}

#: measured on commands-action, 3 seeds: 6 epochs gave test accuracy 0.35-0.54, 20 epochs 0.75-0.90
TRAINING = {"epochs": 20, "batch_size": 8, "lr": 1e-2}


def load_task(name: str) -> TaskData:
    if name not in TASKS:
        raise InputError(f"unknown seed-family task {name!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[name]()


def member_digest(task: TaskData, seed: int, training: dict) -> str:
    """Digest of everything that determines a trained member."""
    from ssbm_bench_plugins.speechbrain_recipe import HPARAMS_TEMPLATE, DEFAULT_VARIABLES

    h = hashlib.sha256()
    h.update(json.dumps({"recipe": RECIPE_VERSION, "template": HPARAMS_TEMPLATE, "variables": DEFAULT_VARIABLES,
                         "training": training, "task": task.name, "label": task.label, "seed": seed},
                        sort_keys=True).encode())
    for u in task.train:
        h.update(u.id.encode())
        h.update(str(u.labels[task.label]).encode())
        h.update(np.ascontiguousarray(u.waveform, dtype=np.float32).tobytes())
    return h.hexdigest()


@dataclass
class Family:
    task: str
    kind: str
    members: dict[str, Path]  # "seed-0" -> directory
    test_ids: list[str]
    test_labels: list[str]
    predictions: dict[str, list[str]]
    corpus: str = ""
    corpus_params: dict = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)  # members trained now (the rest came from the cache)
    seconds: float = 0.0

    def agreement(self) -> dict:
        names = sorted(self.members, key=lambda s: int(s.split("-")[1]))
        rows = [[self.predictions[n][i] for n in names] for i in range(len(self.test_ids))]
        return family_agreement(rows, self.test_labels)

    def to_dict(self) -> dict:
        return {"task": self.task, "kind": self.kind, "members": {k: str(v) for k, v in self.members.items()},
                "test_ids": self.test_ids, "test_labels": self.test_labels, "corpus": self.corpus,
                "corpus_params": self.corpus_params, "trained_now": self.trained, "seconds": round(self.seconds, 2),
                "agreement": self.agreement(),
                "shared_starting_point": "none: the recipe has no pretrained part; its Fbank front end has "
                                         "no parameters"}


def family_root(task: str) -> Path:
    return cache_root() / "families" / task


def train_family(task_name: str, seeds: int | Sequence[int], log: Callable[[str], None] = lambda s: None,
                 training: dict | None = None, progress: bool = False) -> Family:
    """Train (or load from the cache) every member of a family and score it on the test split (with `progress`,
    speechbrain's bar over each epoch's batches)."""
    from ssbm_bench_plugins.speechbrain_recipe import train_classifier

    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if len(seed_list) < 2 or len(set(seed_list)) != len(seed_list):
        raise InputError(f"a seed family needs at least two distinct seeds, got {seed_list}")
    training = {**TRAINING, **(training or {})}
    t0 = time.perf_counter()
    task = load_task(task_name)
    members, trained = {}, []
    for seed in seed_list:
        digest = member_digest(task, seed, training)
        out = family_root(task.name) / digest[:16] / f"seed-{seed}"
        if not (out / "training.json").is_file():
            log(f"[{task.name}] training seed {seed} on {len(task.train)} utterances ...")
            tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            torch_threads = _one_thread()
            try:
                result = train_classifier([u.waveform for u in task.train], task.labels(task.train), tmp, seed=seed,
                                          provenance={"task": task.name, "member_digest": digest,
                                                      "corpus": task.corpus, "corpus_digest": task.corpus_digest},
                                          progress=progress, **training)
            finally:
                _restore_threads(torch_threads)
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
            trained.append(f"seed-{seed}")
            log(f"[{task.name}] seed {seed}: train accuracy {result.train_accuracy:.2f} ({result.seconds:.1f} s)")
        members[f"seed-{seed}"] = out
    predictions = {name: predict(path, [u.waveform for u in task.test]) for name, path in members.items()}
    return Family(task.name, task.kind, members, [u.id for u in task.test], task.labels(task.test), predictions,
                  task.corpus, dict(task.corpus_params), trained, time.perf_counter() - t0)


def predict(directory: Path, waveforms: Sequence[np.ndarray]) -> list[str]:
    from ssbm_bench_plugins.speechbrain_dir import SpeechBrainDirectory

    model = SpeechBrainDirectory(str(directory))
    probs = model.classify(list(waveforms))
    return [model.labels[int(i)] for i in np.asarray(probs).argmax(axis=1)]


def _one_thread():
    """Training is deterministic per seed only with a fixed thread count; use one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    return before


def _restore_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _factory(task_name: str):
    def make(seeds: int | Sequence[int] = SEEDS["quick"], log: Callable[[str], None] = lambda s: None,
             training: dict | None = None, progress: bool = False) -> Family:
        return train_family(task_name, seeds, log=log, training=training, progress=progress)
    return make


@hookimpl
def register_families(register):
    from ssbm_bench.records import FamilyPlugin

    descriptions = {
        "commands-action": ("word-based", "the action word of a spoken command (4 classes), commands corpus"),
        "commands-object": ("word-based", "the object word of a spoken command (4 classes), commands corpus"),
        "commands-location": ("word-based", "the location word of a spoken command (3 classes), commands corpus"),
        "voices": ("acoustic", "which of 4 synthetic voices speaks a Harvard sentence, synthetic corpus"),
    }
    for name, (kind, text) in descriptions.items():
        register(FamilyPlugin(name=name, factory=_factory(name), task_kind=kind,
                              description=f"{kind}: {text}; speechbrain CNN trained per seed, cached"))
