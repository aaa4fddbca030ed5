"""The layout of a transformers ``save_pretrained`` directory, checked before transformers sees it.

Shared by the transformers-directory adapter (:mod:`.transformers_dir`) and
the whisper plugin's directory loader (:mod:`.whisper.hf_directory`).
Everything is checked first so that a missing file is named: transformers'
own error for an offline directory talks about the hub, not the file. Each
check takes a `label` (``"transformers-dir <path>"``, ``"whisper directory
<path>"``) that starts its error message.

* ``config.json``: :func:`read_config`.
* The weights: ``model.safetensors``, a sharded
  ``model.safetensors.index.json``, ``pytorch_model.bin`` or a sharded
  ``pytorch_model.bin.index.json``, with every shard an index names:
  :func:`weight_files`.
* The feature extractor's settings: ``preprocessor_config.json``, or inside
  ``processor_config.json`` as transformers 5 writes it:
  :func:`require_feature_extractor`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ssbm_bench.errors import InputError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def read_config(root: Path, label: str) -> dict:
    """``config.json`` as a dict, or InputError saying what is wrong with it."""
    cfg = root / "config.json"
    if not cfg.is_file():
        raise InputError(f"{label}: missing config.json (was the model saved with save_pretrained?)")
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{label}: config.json cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{label}: config.json is not a JSON object")
    return data


def weight_files(root: Path, label: str) -> list[Path]:
    """The weight files (and the shards their indexes name), or InputError naming what is missing."""
    found = [root / f for f in WEIGHT_FILES if (root / f).is_file()]
    if not found:
        raise InputError(f"{label}: missing the weights: none of {', '.join(WEIGHT_FILES)}")
    for index in [f for f in found if f.name.endswith(".index.json")]:
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{label}: {index.name} cannot be read ({exc})") from exc
        for shard in shards:
            if not (root / shard).is_file():
                raise InputError(f"{label}: missing {shard}, a weights shard {index.name} names")
            found.append(root / shard)
    return found


def has_feature_extractor(root: Path) -> bool:
    if (root / "preprocessor_config.json").is_file():
        return True
    proc = root / "processor_config.json"
    if not proc.is_file():
        return False
    try:
        return "feature_extractor" in json.loads(proc.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def require_feature_extractor(root: Path, label: str) -> None:
    """InputError unless the directory holds the feature extractor's settings."""
    if not has_feature_extractor(root):
        raise InputError(f"{label}: missing preprocessor_config.json (the feature extractor's settings, nor in "
                         f"processor_config.json; save the processor or feature extractor with save_pretrained)")
