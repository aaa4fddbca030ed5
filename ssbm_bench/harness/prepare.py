"""Per-model preparation before any cell runs: which utterances count, and
how loud the noise must be.

SSBM only uses utterances the model recognises 100% correctly when clean
(otherwise a word's failure under noise says nothing about the map), and
needs a noise level at which the fully masked utterance is unrecognisable.
Both are stored, so a rerun asks the model nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch

from ..audio import StftConfig, stft
from ..metrics.word_accuracy import word_correct
from ..model import Capability, SpeechModel
from ..text import normalise_words
from ..types import Utterance
from ..mixtures import mixture_waveforms, stable_seed
from .store import ResultStore
from .suite import PluginRef

BATCH = 8


@dataclass(frozen=True)
class CalibrationSettings:
    """How the grid's noise level is found (the suite's ``[ssbm.calibration]``): the levels tried, in dB re.
    speech RMS, the word accuracy the fully masked utterances must fall to, and how many utterances."""

    levels_db: tuple[float, ...] = (-30.0, -25.0, -20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0, 30.0)
    max_accuracy: float = 0.1
    utterances: int = 4


def model_key(ref: PluginRef, model: SpeechModel) -> str:
    blob = json.dumps({"ref": ref.to_dict(), "model": model.describe()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Eligibility:
    eligible: list[Utterance] = field(default_factory=list)
    scanned: int = 0
    dropped: list[str] = field(default_factory=list)
    word_total: int = 0
    word_correct: int = 0

    @property
    def clean_word_accuracy(self) -> float:
        return self.word_correct / self.word_total if self.word_total else float("nan")


def select_eligible(model: SpeechModel, mkey: str, utterances: Iterable[Utterance], corpus_digest: str,
                    store: ResultStore, limit: int | None, on_decode: Callable[[int], None] = lambda n: None,
                    progress: bool = False, label: str = "") -> Eligibility:
    """Scan utterances in corpus order until `limit` are fully recognised (a bar counts them when `progress`)."""
    from ..progress import progress_bar

    model.require(Capability.TRANSCRIBE, "SSBM")
    result = Eligibility()
    pending: list[Utterance] = []
    utterances = list(utterances)
    bar = progress_bar(len(utterances), f"clean pass {label}".strip(), "utt", progress)

    def settle(batch: list[Utterance]) -> bool:
        todo = [u for u in batch if store.get_clean(mkey, corpus_digest, u.id) is None]
        if todo:
            hyps = model.transcribe([u.waveform for u in todo])
            on_decode(len(todo))
            for u, h in zip(todo, hyps):
                store.put_clean(mkey, corpus_digest, u.id, normalise_words(h),
                                [bool(c) for c in word_correct(u.reference, normalise_words(h))])
        for u in batch:
            rec = store.get_clean(mkey, corpus_digest, u.id)
            bar.update(1)
            result.scanned += 1
            result.word_total += len(rec["correct"])
            result.word_correct += sum(rec["correct"])
            if rec["all_correct"] and len(u.reference) > 0:
                result.eligible.append(u)
                if limit is not None and len(result.eligible) >= limit:
                    return True
            else:
                result.dropped.append(u.id)
        return False

    try:
        for utt in utterances:
            pending.append(utt)
            if len(pending) == BATCH:
                if settle(pending):
                    return result
                pending = []
        if pending:
            settle(pending)
        return result
    finally:
        bar.close()


def calibrate_noise(model: SpeechModel, mkey: str, fill, fill_name: str, utterances: list[Utterance],
                    corpus_digest: str, store: ResultStore, settings: CalibrationSettings,
                    cfg: StftConfig = StftConfig(), progress: bool = False, label: str = "") -> dict:
    """Lowest level (dB re. speech RMS) at which the fully masked utterances
    are unrecognisable (mean word accuracy <= settings.max_accuracy); a bar counts the decodes when `progress`."""
    from ..progress import progress_bar

    sample = utterances[: settings.utterances]
    key_settings = {"levels_db": list(settings.levels_db), "max_accuracy": settings.max_accuracy,
                    "utterances": [u.id for u in sample], "cfg": cfg.to_dict()}
    cached = store.get_calibration(mkey, corpus_digest, fill_name, key_settings)
    if cached is not None:
        return cached
    if not getattr(fill, "additive", False):
        details = {"accuracy_by_level": {}, "note": f"fill {fill_name!r} replaces content; no level to calibrate"}
        store.put_calibration(mkey, corpus_digest, fill_name, key_settings, 0.0, details)
        return {"level_db": 0.0, **details}
    accuracy_by_level: dict[str, float] = {}
    chosen = None
    bar = progress_bar(len(settings.levels_db) * len(sample), f"calibration {label}".strip(), "decode", progress)
    for level in sorted(settings.levels_db):
        correct = total = 0
        for u in sample:
            bar.update(1)
            clean = stft(torch.as_tensor(u.waveform, dtype=torch.float32), cfg)
            ones = np.ones(tuple(clean.shape))
            wave = mixture_waveforms(clean, [ones], fill, u.waveform, level,
                                     stable_seed("noise", u.id, 0), cfg)[0]
            hyp = normalise_words(model.transcribe([wave])[0])
            flags = word_correct(u.reference, hyp)
            correct += int(flags.sum())
            total += len(flags)
        acc = correct / max(total, 1)
        accuracy_by_level[f"{level:g}"] = acc
        if acc <= settings.max_accuracy:
            chosen = level
            break
    bar.close()
    met = chosen is not None
    level_db = float(chosen if met else max(settings.levels_db))
    details = {"accuracy_by_level": accuracy_by_level, "criterion_met": met,
               "max_accuracy": settings.max_accuracy, "utterances": [u.id for u in sample]}
    store.put_calibration(mkey, corpus_digest, fill_name, key_settings, level_db, details)
    return {"level_db": level_db, **details}


def select_classified(model: SpeechModel, mkey: str, utterances: list[Utterance], corpus_digest: str,
                      store: ResultStore, limit: int | None) -> list[tuple[Utterance, int]]:
    """The first `limit` utterances with the class the model gives each when
    clean (the target its maps explain); stored like clean transcripts (the
    hypothesis is the class label), so a rerun asks the model nothing."""
    model.require(Capability.CLASSIFY, "explaining a classifier")
    take = list(utterances[:limit] if limit is not None else utterances)
    todo = [u for u in take if store.get_clean(mkey, corpus_digest, u.id) is None]
    for i in range(0, len(todo), BATCH):
        batch = todo[i:i + BATCH]
        probs = model.classify([u.waveform for u in batch])
        for u, p in zip(batch, probs):
            store.put_clean(mkey, corpus_digest, u.id, [model.labels[int(np.argmax(p))]], [True])
    out = []
    for u in take:
        label = store.get_clean(mkey, corpus_digest, u.id)["hypothesis"][0]
        out.append((u, list(model.labels).index(label)))
    return out
