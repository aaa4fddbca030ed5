"""Any Whisper model saved with ``save_pretrained``, as a white-box SpeechModel.

The transformers-directory adapter hands Whisper directories here, and the
converted CTranslate2 cache is itself such a directory. The layout is
checked before transformers sees it (:mod:`ssbm_bench_plugins.hf_layout`,
shared with the transformers-directory adapter), so that a missing file is
named.

Expected files: ``config.json`` (``model_type`` whisper); the weights
(``model.safetensors``, ``pytorch_model.bin`` or a sharded index of either);
the tokenizer (``tokenizer.json``, or ``vocab.json`` + ``merges.txt``); the
feature extractor's settings (``preprocessor_config.json``, or inside
``processor_config.json`` as transformers 5 writes it).
``generation_config.json`` is optional: without it decoding suppresses
nothing beyond what config.json lists.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from ssbm_bench.errors import InputError

from ..hf_layout import read_config, require_feature_extractor, weight_files
from .ct2_format import digest
from .whitebox_model import WhisperWhiteBoxModel


def check_layout(path: str | os.PathLike) -> Path:
    """The directory, or InputError naming the first file that is missing."""
    root = Path(path)
    label = f"whisper directory {root}"
    if not root.is_dir():
        raise InputError(f"{label}: not a directory")
    model_type = read_config(root, label).get("model_type")
    if model_type != "whisper":
        raise InputError(f"{label}: config.json says model_type {model_type!r}, expected 'whisper'")
    weight_files(root, label)
    has_bpe_files = (root / "vocab.json").is_file() and (root / "merges.txt").is_file()
    if not ((root / "tokenizer.json").is_file() or has_bpe_files):
        raise InputError(f"{label}: missing tokenizer.json (or vocab.json + merges.txt)")
    require_feature_extractor(root, label)
    return root


def load_torch(path: str | os.PathLike, language: str | None = "en", task: str = "transcribe"):
    """A :class:`.whitebox.WhisperTorch` from a checked directory, never from a hub."""
    root = check_layout(path)
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from .whitebox import WhisperTorch

    try:
        processor = WhisperProcessor.from_pretrained(str(root), local_files_only=True)
        model = WhisperForConditionalGeneration.from_pretrained(str(root), local_files_only=True,
                                                                dtype="float32")
    except (OSError, ValueError) as exc:
        raise InputError(f"whisper directory {root}: cannot be loaded by transformers ({exc})") from exc
    return WhisperTorch(model, processor, language=language, task=task, source=str(root))


class WhisperDirectoryModel(WhisperWhiteBoxModel):
    """White-box only: transcribe is transformers' greedy generate, not CTranslate2."""

    version = "directory"

    def __init__(self, path: str | os.PathLike, name: str | None = None, language: str | None = "en",
                 task: str = "transcribe"):
        super().__init__(language=language, task=task)
        self.path = check_layout(path)
        self.name = name or f"whisper-dir:{self.path.name}"

    def _load_torch(self):
        return load_torch(self.path, self.language, self.task)

    @cached_property
    def weights_digest(self) -> str:
        """SHA-256 of the weight file(s) (and shards): which weights a stored result came from."""
        return digest(weight_files(self.path, f"whisper directory {self.path}"))

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "path": str(self.path),
                "weights_sha256": self.weights_digest, "backend": "transformers", "decoding": "greedy",
                "language": self.language, "task": self.task}


def load_whisper_directory(path: str | os.PathLike, name: str | None = None, language: str | None = "en",
                           task: str = "transcribe") -> WhisperDirectoryModel:
    """A SpeechModel for a Whisper directory (layout checked now, weights loaded on first use)."""
    return WhisperDirectoryModel(path, name=name, language=language, task=task)
