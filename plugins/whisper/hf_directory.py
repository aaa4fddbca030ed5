"""Any Whisper model saved with ``save_pretrained``, as a white-box SpeechModel.

The transformers-directory adapter hands Whisper directories here, and the
converted CTranslate2 cache is itself such a directory. The layout is
checked before transformers sees it, because transformers' own error for a
missing file in an offline directory talks about the hub, not the file.

Expected files: ``config.json``; weights (``model.safetensors``, a sharded
``model.safetensors.index.json`` or ``pytorch_model.bin``); the tokenizer
(``tokenizer.json``, or ``vocab.json`` + ``merges.txt``); the feature
extractor's settings (``preprocessor_config.json``, or inside
``processor_config.json`` as transformers 5 writes it).
``generation_config.json`` is optional: without it decoding suppresses
nothing beyond what config.json lists.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

from ssbm_bench.errors import InputError

from .ct2_format import digest
from .whitebox_model import WhisperWhiteBoxModel

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _feature_extractor_in(path: Path) -> bool:
    if (path / "preprocessor_config.json").is_file():
        return True
    proc = path / "processor_config.json"
    if not proc.is_file():
        return False
    try:
        return "feature_extractor" in json.loads(proc.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def check_layout(path: str | os.PathLike) -> Path:
    """The directory, or InputError naming the first file that is missing."""
    root = Path(path)
    label = f"whisper directory {root}"
    if not root.is_dir():
        raise InputError(f"{label}: not a directory")
    if not (root / "config.json").is_file():
        raise InputError(f"{label}: config.json is missing (was the model saved with save_pretrained?)")
    try:
        model_type = json.loads((root / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as exc:
        raise InputError(f"{label}: config.json cannot be read ({exc})") from exc
    if model_type != "whisper":
        raise InputError(f"{label}: config.json says model_type {model_type!r}, expected 'whisper'")
    if not any((root / f).is_file() for f in WEIGHT_FILES):
        raise InputError(f"{label}: no weights; expected one of {', '.join(WEIGHT_FILES)}")
    has_bpe_files = (root / "vocab.json").is_file() and (root / "merges.txt").is_file()
    if not ((root / "tokenizer.json").is_file() or has_bpe_files):
        raise InputError(f"{label}: tokenizer.json is missing (or vocab.json + merges.txt)")
    if not _feature_extractor_in(root):
        raise InputError(f"{label}: preprocessor_config.json is missing (no feature extractor settings, "
                         f"nor in processor_config.json)")
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
        """SHA-256 of the weight file(s): which weights a stored result came from."""
        files = [self.path / f for f in WEIGHT_FILES if (self.path / f).is_file()]
        files += sorted(self.path.glob("model-*.safetensors"))  # shards of a sharded save
        return digest(files)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "path": str(self.path),
                "weights_sha256": self.weights_digest, "backend": "transformers", "decoding": "greedy",
                "language": self.language, "task": self.task}


def load_whisper_directory(path: str | os.PathLike, name: str | None = None, language: str | None = "en",
                           task: str = "transcribe") -> WhisperDirectoryModel:
    """A SpeechModel for a Whisper directory (layout checked now, weights loaded on first use)."""
    return WhisperDirectoryModel(path, name=name, language=language, task=task)
