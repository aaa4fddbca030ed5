"""Any transformers speech model saved with ``save_pretrained``, from a local directory.

The directory's ``config.json`` decides what it is (its ``architectures``,
else its ``model_type``):

* **CTC ASR** (Wav2Vec2ForCTC, HubertForCTC, WavLMForCTC, ...; anything in
  transformers' CTC mapping): ``AutoModelForCTC`` + the directory's feature
  extractor and tokenizer. ``transcribe`` is greedy CTC decoding: the argmax
  label of every frame, repeats merged, blanks (``config.pad_token_id``,
  which is the blank of transformers' CTC loss) dropped, then the tokenizer
  turns ids into text (the word delimiter becomes a space).
* **Audio classifiers** (Wav2Vec2ForSequenceClassification,
  ASTForAudioClassification, ...; anything in transformers' audio
  classification mapping): ``AutoModelForAudioClassification`` + feature
  extractor. ``classify`` is the softmax of the logits; labels come from
  ``config.id2label``.
* **Whisper** (``model_type`` whisper, except WhisperForAudioClassification):
  handed to :func:`ssbm_bench_plugins.whisper.hf_directory.load_whisper_directory`.

Everything loads with ``local_files_only=True``; the layout is checked
first (:mod:`.hf_layout`, shared with the whisper plugin), so that a missing
file is named: ``config.json``, the weights (``model.safetensors``,
``pytorch_model.bin`` or a sharded index of either), the feature
extractor's settings and, for CTC, the tokenizer (``vocab.json`` or
``tokenizer.json``).

Gradients. The feature extractors work in numpy, so ``class_logits``
(differentiable w.r.t. the waveform) re-does the extractor's arithmetic in
torch where we know it exactly: Wav2Vec2FeatureExtractor (per-utterance
zero-mean unit-variance, used by wav2vec2 / HuBERT / WavLM / data2vec /
UniSpeech / SEW) and ASTFeatureExtractor (torchaudio's Kaldi fbank, padded or
cut to ``max_length`` frames, normalised with the extractor's mean and std).
The tests check that both equal the extractor's own output. Models with
another extractor classify, but do not claim ``differentiable``. CTC models
do not (yet) offer teacher-forced token scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.model import Capability, SpeechModel, equal_length_batches, files_digest, weights_version
from ssbm_bench.records import ModelPlugin
from ssbm_bench.types import validate_waveform

from .hf_layout import read_config, require_feature_extractor, weight_files

TOKENIZER_FILES = ("vocab.json", "tokenizer.json")
#: extractors whose arithmetic we redo in torch (so the model is differentiable w.r.t. the waveform)
TORCH_EXTRACTORS = ("Wav2Vec2FeatureExtractor", "ASTFeatureExtractor")


def supported_architectures() -> dict[str, list[str]]:
    """{"ctc": [...], "audio-classification": [...], "whisper": [...]} from transformers' own mappings."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES,
        MODEL_FOR_CTC_MAPPING_NAMES,
    )

    return {
        "ctc": sorted(set(MODEL_FOR_CTC_MAPPING_NAMES.values())),
        "audio-classification": sorted(set(MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES.values())),
        "whisper": ["WhisperForConditionalGeneration (via the whisper plugin)"],
    }


def model_kind(config: dict, root: Path) -> tuple[str, str | None]:
    """("ctc" | "audio-classification" | "whisper", architecture) or InputError listing what is supported."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES,
        MODEL_FOR_CTC_MAPPING_NAMES,
    )

    model_type = config.get("model_type")
    archs = config.get("architectures") or []
    ctc, cls = set(MODEL_FOR_CTC_MAPPING_NAMES.values()), set(MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES.values())
    for arch in archs:
        if arch in ctc:
            return "ctc", arch
        if arch in cls:
            return "audio-classification", arch
    if model_type == "whisper" and "WhisperForAudioClassification" not in archs:
        return "whisper", (archs[0] if archs else None)
    if not archs and model_type in MODEL_FOR_CTC_MAPPING_NAMES and model_type not in \
            MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES:
        return "ctc", MODEL_FOR_CTC_MAPPING_NAMES[model_type]
    sup = supported_architectures()
    listing = "; ".join(f"{k}: {', '.join(v)}" for k, v in sup.items())
    what = f"architectures {archs}" if archs else f"model_type {model_type!r} and no architectures"
    raise InputError(f"transformers-dir {root}: unsupported model ({what} in config.json); supported: {listing}")


class TransformersDirectory(SpeechModel):
    """A CTC recogniser or an audio classifier from a ``save_pretrained`` directory."""

    name = "transformers-dir"
    #: what a directory may offer (a Whisper directory goes to the whisper plugin); each instance narrows
    #: this to what its own directory does
    capabilities = frozenset({Capability.CLASSIFY, Capability.DIFFERENTIABLE, Capability.TRANSCRIBE})

    def __init__(self, path: str, device: str = "cpu", _checked: tuple | None = None):
        import torch

        self._torch = torch
        self.path = Path(path).expanduser()
        self.device = device
        label = f"transformers-dir {self.path}"
        config = read_config(self.path, label)
        kind, arch = _checked or model_kind(config, self.path)
        if kind == "whisper":
            raise InputError(f"transformers-dir {self.path}: a Whisper directory; load it with "
                             f"load_transformers_directory (it hands Whisper to the whisper plugin)")
        self.kind, self.architecture = kind, arch
        files = weight_files(self.path, label)
        require_feature_extractor(self.path, label)
        if kind == "ctc" and not any((self.path / f).is_file() for f in TOKENIZER_FILES):
            raise InputError(f"transformers-dir {self.path}: missing vocab.json (or tokenizer.json): a CTC model "
                             f"needs its tokenizer to turn labels into text")
        files.append(self.path / "config.json")
        self._weights_sha256 = files_digest(files, self.path)

        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, AutoModelForCTC

        try:
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(str(self.path), local_files_only=True)
            auto = AutoModelForCTC if kind == "ctc" else AutoModelForAudioClassification
            self.model = auto.from_pretrained(str(self.path), local_files_only=True).to(device).eval()
            self.tokenizer = None
            if kind == "ctc":
                from transformers import AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"transformers-dir {self.path}: cannot be loaded by transformers "
                             f"({type(exc).__name__}: {exc})") from exc
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.sample_rate = int(getattr(self.feature_extractor, "sampling_rate", 16000))
        self.extractor_name = type(self.feature_extractor).__name__
        self.differentiable_features = self.extractor_name in TORCH_EXTRACTORS
        if kind == "ctc":
            self.capabilities = frozenset({Capability.TRANSCRIBE})
            blank = self.model.config.pad_token_id
            self.blank_id = int(blank if blank is not None else (self.tokenizer.pad_token_id or 0))
        else:
            caps = {Capability.CLASSIFY} | ({Capability.DIFFERENTIABLE} if self.differentiable_features else set())
            self.capabilities = frozenset(caps)
            id2label = self.model.config.id2label or {}
            n = int(self.model.config.num_labels)
            self.labels = tuple(str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n))
        if self.extractor_name == "ASTFeatureExtractor":
            # the extractor silently cuts to max_length frames (Kaldi fbank: 25 ms window, 10 ms hop, a
            # partial last frame is always dropped): refuse audio that would lose a whole frame
            fe = self.feature_extractor
            hop, win = self.sample_rate // 100, self.sample_rate * 25 // 1000
            self.max_duration = ((fe.max_length - 1) * hop + win + hop - 1) / float(self.sample_rate)
        self.version = weights_version(("transformers", "torch"), self._weights_sha256)

    # --- features -----------------------------------------------------------
    def _features_numpy(self, waveforms: list[np.ndarray]):
        """The extractor's own output for equal-length waveforms, as a batch.

        No attention mask is passed: the batch has no padding, and an all-ones
        mask changes nothing (for wav2vec2 models with group norm,
        transformers advises against passing one at all)."""
        feats = self.feature_extractor(waveforms, sampling_rate=self.sample_rate, return_tensors="pt")
        key = self.feature_extractor.model_input_names[0]
        return {key: feats[key].to(self.device)}

    def features_torch(self, waveform):
        """The extractor's arithmetic in torch: differentiable w.r.t. the (1-D) waveform."""
        torch = self._torch
        fe = self.feature_extractor
        x = waveform.to(torch.float32)
        if self.extractor_name == "Wav2Vec2FeatureExtractor":
            if getattr(fe, "do_normalize", False):
                x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
            return {"input_values": x[None].to(self.device)}
        if self.extractor_name == "ASTFeatureExtractor":
            import torchaudio.compliance.kaldi as ta_kaldi

            fbank = ta_kaldi.fbank(x[None], sample_frequency=self.sample_rate, window_type="hanning",
                                   num_mel_bins=fe.num_mel_bins)
            n = fbank.shape[0]
            if n < fe.max_length:
                fbank = torch.nn.functional.pad(fbank, (0, 0, 0, fe.max_length - n))
            else:
                fbank = fbank[: fe.max_length]
            if fe.do_normalize:
                fbank = (fbank - fe.mean) / (fe.std * 2)
            return {"input_values": fbank[None].to(self.device)}
        raise InputError(f"transformers-dir {self.path}: no differentiable version of {self.extractor_name}; "
                         f"differentiable extractors: {', '.join(TORCH_EXTRACTORS)}")

    # --- classifier -----------------------------------------------------------
    def classify(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        self.require(Capability.CLASSIFY, "classify")
        torch = self._torch
        xs = [validate_waveform(w, f"transformers-dir input {i}", allow_silence=True)
              for i, w in enumerate(waveforms)]
        for i, x in enumerate(xs):
            self.check_duration(x, f"input {i}")
        out = np.zeros((len(xs), len(self.labels)))
        with torch.no_grad():
            for part in equal_length_batches(xs, 8):
                logits = self.model(**self._features_numpy([xs[i] for i in part])).logits
                out[part] = torch.softmax(logits.double(), dim=-1).cpu().numpy()
        return out

    def class_logits(self, waveform):
        self.require(Capability.DIFFERENTIABLE, "class logits")
        x = self._torch.as_tensor(waveform)
        if x.ndim != 1 or x.numel() == 0:
            raise InputError(f"transformers-dir: expected a non-empty 1-D waveform tensor, got shape {tuple(x.shape)}")
        self.check_duration(np.broadcast_to(np.float32(0), (int(x.shape[0]),)))  # only its length counts
        return self.model(**self.features_torch(x)).logits[0]

    # --- CTC ASR ----------------------------------------------------------------
    def greedy_ids(self, logits) -> list[int]:
        """Frame argmax, repeats merged, blanks dropped."""
        best = logits.argmax(dim=-1).tolist()
        out, prev = [], None
        for t in best:
            if t != prev and t != self.blank_id:
                out.append(t)
            prev = t
        return out

    def decode(self, ids: list[int]) -> str:
        """Ids -> text, keeping special tokens such as <unk> as transformers' CTC pipeline does."""
        kwargs = {"skip_special_tokens": False}
        if hasattr(self.tokenizer, "word_delimiter_token"):
            kwargs["group_tokens"] = False  # already merged; merging again would turn "l <blank> l" into "l"
        return self.tokenizer.decode(ids, **kwargs)

    def transcribe(self, waveforms: Sequence[np.ndarray]) -> list[list[str]]:
        self.require(Capability.TRANSCRIBE, "transcribe")
        torch = self._torch
        xs = [validate_waveform(w, f"transformers-dir input {i}", allow_silence=True)
              for i, w in enumerate(waveforms)]
        texts: list[str] = [""] * len(xs)
        with torch.no_grad():
            for part in equal_length_batches(xs, 8):
                logits = self.model(**self._features_numpy([xs[i] for i in part])).logits
                for row, i in enumerate(part):
                    texts[i] = self.decode(self.greedy_ids(logits[row]))
        return [t.split() for t in texts]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "parameters": {"path": str(self.path), "device": self.device},
            "kind": self.kind,
            "architecture": self.architecture,
            "feature_extractor": self.extractor_name,
            "labels": list(self.labels),
            "sample_rate": self.sample_rate,
            "weights_sha256": self._weights_sha256,
        }


def load_transformers_directory(path: str, device: str = "cpu", **whisper_params) -> SpeechModel:
    """The SpeechModel for a ``save_pretrained`` directory: Whisper goes to the whisper plugin."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(f"transformers-dir: {root} is not a directory; expected a save_pretrained directory "
                         f"with config.json and the weights")
    config = read_config(root, f"transformers-dir {root}")
    kind, arch = model_kind(config, root)
    if kind == "whisper":
        try:
            from ssbm_bench_plugins.whisper.hf_directory import load_whisper_directory
        except ImportError as exc:
            raise InputError(f"transformers-dir {root}: a Whisper directory, but the whisper plugin is not "
                             f"available ({exc})") from exc
        return load_whisper_directory(root, **whisper_params)
    if whisper_params:
        raise InputError(f"transformers-dir {root}: parameter(s) {sorted(whisper_params)} apply to Whisper "
                         f"directories only; this one holds {arch}")
    return TransformersDirectory(root, device=device, _checked=(kind, arch))


@hookimpl
def register_models(register):
    register(
        ModelPlugin.of(
            TransformersDirectory,
            factory=load_transformers_directory,
            description=(
                "any transformers speech model saved with save_pretrained (local, offline): CTC ASR transcribes "
                "(greedy), audio classifiers classify (differentiable for wav2vec2-style and AST extractors), "
                "Whisper goes to the whisper plugin; parameter path"
            ),
        )
    )
