"""Convert once, then load from disk: the on-disk cache of converted Whisper models.

Converting CTranslate2 weights to transformers takes seconds; loading the
saved result takes well under one. The cache lives in the ssbm-bench cache
directory (:func:`ssbm_bench.cache_dir.cache_root`: ``$SSBM_BENCH_CACHE``,
default ``$XDG_CACHE_HOME/ssbm-bench`` or ``~/.cache/ssbm-bench``) under
``whisper/<variant>-<digest>-v<converter>/``,
named by the SHA-256 of the source model.bin so that new weights never meet
an old conversion:

* ``hf/``: the converted model and processor (``save_pretrained``), a
  directory :func:`.hf_directory.load_whisper_directory` can load;
* ``ct2/``: only for a model shipped in parts: the joined model.bin with
  its config and vocabulary, which is what ctranslate2 needs to load.

A half-written entry must never be used: each entry is written into a
temporary sibling folder, finished with a ``complete.json`` marker, and
renamed into place (atomic on one file system). A process that loses the
race to another discards its own copy.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ssbm_bench.cache_dir import cache_root
from ssbm_bench.errors import InputError

from .sources import WhisperSource

MARKER = "complete.json"
#: bump when the conversion changes, so old cache entries are not reused
CONVERTER_VERSION = 1


def entry_dir(source: WhisperSource) -> Path:
    return cache_root() / "whisper" / f"{source.name}-{source.digest[:16]}-v{CONVERTER_VERSION}"


def is_complete(path: Path, source: WhisperSource) -> bool:
    marker = path / MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("source_sha256") == source.digest and info.get("converter") == CONVERTER_VERSION


def build_atomically(target: Path, source: WhisperSource, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` into a temporary folder, then move it to `target` in one rename."""
    if is_complete(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # left by a crash before this scheme, or a foreign folder: never trusted
        shutil.rmtree(target, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        write(tmp)
        (tmp / MARKER).write_text(json.dumps({"source_sha256": source.digest, "converter": CONVERTER_VERSION,
                                              "source": source.distributions}), encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_complete(target, source):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not is_complete(target, source):
        raise InputError(f"whisper cache {target}: could not be written")
    return target


def _write_converted(source: WhisperSource) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        from .convert import convert
        from .ct2_format import read_ct2_model

        model, processor = convert(read_ct2_model(source.model_parts), source.config_json, source.tokenizer_json)
        model.save_pretrained(str(tmp))
        processor.save_pretrained(str(tmp))

    return write


def converted_dir(source: WhisperSource) -> Path:
    """The transformers copy of `source`, converting it on first use."""
    return build_atomically(entry_dir(source) / "hf", source, _write_converted(source))


def _write_joined(source: WhisperSource) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with open(tmp / "model.bin", "wb") as out:
            for part in source.model_parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
            if (source.files_dir / name).is_file():
                shutil.copyfile(source.files_dir / name, tmp / name)

    return write


def ct2_dir(source: WhisperSource) -> Path:
    """A folder ctranslate2 can load: the package's own, or the joined parts in the cache."""
    if len(source.model_parts) == 1 and source.model_parts[0].name == "model.bin":
        return source.model_parts[0].parent
    return build_atomically(entry_dir(source) / "ct2", source, _write_joined(source))
