"""Any speechbrain model directory, in speechbrain's own layout, as a SpeechModel.

A speechbrain model directory is what ``speechbrain.inference`` classes load
with ``from_hparams(source=<dir>)``: a ``hyperparams.yaml`` (HyperPyYAML)
with a ``modules`` mapping and a ``pretrainer``
(``speechbrain.utils.parameter_transfer.Pretrainer``) whose loadables name
the checkpoint files, by default ``<loadable>.ckpt`` beside the yaml (the
layout of speechbrain's model repositories, and what
:mod:`ssbm_bench_plugins.speechbrain_recipe` writes).

Loading follows ``speechbrain.inference.interfaces.pretrained_from_hparams``
step by step, but never reaches a network: every file a loadable needs is
resolved inside the directory first (a ``paths`` entry whose source is a
hub id, as in a downloaded model repository, is redirected to the file of
the same name in the directory; a top-level ``pretrained_path`` is pointed
at the directory), and a missing one is an InputError naming the file and
the loadable that needs it. Only then are the files loaded, with
``FetchConfig(allow_network=False)``.

Which inference interface: ``interface`` names one of
:data:`INTERFACES`, or ``"auto"`` picks from the yaml: ``embedding_model``
+ ``classifier`` modules -> EncoderClassifier (or AudioClassifier when the
yaml computes an STFT, ``compute_stft``); ``encoder`` + ``decoder``
modules -> EncoderDecoderASR; an ``encoder`` module with a
``decoding_function`` -> EncoderASR.

Classifiers: ``class_logits`` is the interface's own ``classify_batch``
output (differentiable: speechbrain's classifier path has no no_grad), and
``classify`` its softmax. What the output is (log-probabilities, as most
speechbrain classifiers end in a log-softmax; probabilities; or unnormalised
scores such as ECAPA's cosine similarities) is probed once at load time and
recorded in ``describe()``; for probabilities the logits are their log.
Labels come from the yaml's ``label_encoder``. Waveforms of equal length
are batched together (relative length 1, so no padding enters the model).

ASR: ``transcribe`` calls the interface's ``transcribe_batch`` one waveform
at a time and splits the text into words.

Loading a yaml runs the Python constructors it names (``!new:``): load only
directories you trust, as with speechbrain itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.model import Capability, SpeechModel, equal_length_batches, files_digest, weights_version
from ssbm_bench.records import ModelPlugin
from ssbm_bench.types import validate_waveform

HPARAMS_FILE = "hyperparams.yaml"
PARAMFILE_EXT = ".ckpt"

#: interface name -> (speechbrain.inference module, class name, kind)
INTERFACES = {
    "EncoderClassifier": ("speechbrain.inference.classifiers", "EncoderClassifier", "classifier"),
    "AudioClassifier": ("speechbrain.inference.classifiers", "AudioClassifier", "classifier"),
    "EncoderASR": ("speechbrain.inference.ASR", "EncoderASR", "asr"),
    "EncoderDecoderASR": ("speechbrain.inference.ASR", "EncoderDecoderASR", "asr"),
}

_PRETRAINED_PATH = re.compile(r"^pretrained_path\s*:", re.MULTILINE)


def choose_interface(hparams: Mapping[str, Any]) -> str:
    """Pick the speechbrain inference interface from what the yaml defines."""
    modules = set(hparams.get("modules") or {})
    if {"embedding_model", "classifier"} <= modules:
        return "AudioClassifier" if "compute_stft" in modules else "EncoderClassifier"
    if {"encoder", "decoder"} <= modules:
        return "EncoderDecoderASR"
    if "encoder" in modules and "decoding_function" in hparams:
        return "EncoderASR"
    raise InputError(
        f"speechbrain-dir: cannot tell which speechbrain interface loads this {HPARAMS_FILE} (modules: "
        f"{sorted(modules) or 'none'}); pass interface= one of {', '.join(INTERFACES)}"
    )


def resolve_loadable_files(pretrainer, directory: Path) -> dict[str, Path]:
    """The local file of every loadable; InputError naming the first missing one."""
    from speechbrain.utils.fetching import FetchSource

    found: dict[str, Path] = {}
    for name in pretrainer.loadables:
        if not pretrainer.is_loadable(name):
            continue
        if name in pretrainer.paths:
            source, filename = pretrainer.split_path(pretrainer.paths[name])
            if isinstance(source, FetchSource):
                source = source[1]
            as_given = Path(str(source)) / filename
            if not as_given.is_absolute():
                as_given = directory / as_given
            candidates = [as_given, directory / filename]
        else:
            filename = name + PARAMFILE_EXT
            candidates = [directory / filename]
        for c in candidates:
            if c.is_file():
                found[name] = c.resolve()
                break
        else:
            raise InputError(
                f"speechbrain-dir {directory}: missing {filename}, the checkpoint that {HPARAMS_FILE} names for "
                f"loadable {name!r} (looked for {', '.join(str(c) for c in dict.fromkeys(candidates))}; "
                f"no model hub is reachable)"
            )
    return found


class SpeechBrainDirectory(SpeechModel):
    """A speechbrain ``from_hparams`` directory behind the SpeechModel interface."""

    name = "speechbrain-dir"
    #: what a directory may offer; each instance narrows this to what its own directory does
    capabilities = frozenset({Capability.CLASSIFY, Capability.DIFFERENTIABLE, Capability.TRANSCRIBE,
                              Capability.EMBED})

    def __init__(self, path: str, interface: str = "auto", overrides: Mapping[str, Any] | None = None,
                 device: str = "cpu"):
        import torch

        self._torch = torch
        self.path = Path(path).expanduser()
        self.interface_name = interface
        self.device = device
        if not self.path.is_dir():
            raise InputError(f"speechbrain-dir: {self.path} is not a directory; expected a speechbrain model "
                             f"directory holding {HPARAMS_FILE} and its checkpoint files")
        yaml_path = self.path / HPARAMS_FILE
        if not yaml_path.is_file():
            raise InputError(f"speechbrain-dir {self.path}: missing {HPARAMS_FILE} (speechbrain's model "
                             f"description, with 'modules' and a 'pretrainer')")
        self._overrides = dict(overrides or {})
        self.interface, self.kind, files = self._load(yaml_path)
        self._weights_sha256 = files_digest([yaml_path, *files.values()], self.path)
        self.sample_rate = int(getattr(self.interface.hparams, "sample_rate", 16000))
        caps = {Capability.CLASSIFY, Capability.DIFFERENTIABLE} if self.kind == "classifier" else {
            Capability.TRANSCRIBE}
        if self.kind == "classifier" and self._embedding_modules():
            caps.add(Capability.EMBED)
        self.capabilities = frozenset(caps)
        self.output_kind = None
        if self.kind == "classifier":
            self.labels = self._labels()
            self.output_kind = self._probe_output()
        self.version = weights_version(("speechbrain", "torch"), self._weights_sha256)

    # --- loading ----------------------------------------------------------
    def _load(self, yaml_path: Path):
        import importlib

        from hyperpyyaml import load_hyperpyyaml
        from speechbrain.utils.fetching import FetchConfig, LocalStrategy

        text = yaml_path.read_text(encoding="utf-8")
        overrides = dict(self._overrides)
        if _PRETRAINED_PATH.search(text) and "pretrained_path" not in overrides:
            overrides["pretrained_path"] = str(self.path)  # model repositories name their hub id here
        try:
            hparams = load_hyperpyyaml(text, overrides or None)
        except Exception as exc:  # YAML syntax, a constructor that fails, a !PLACEHOLDER left unset
            raise InputError(f"speechbrain-dir {self.path}: {HPARAMS_FILE} does not load: "
                             f"{type(exc).__name__}: {exc}") from exc
        for key in ("modules", "pretrainer"):
            if key not in hparams:
                raise InputError(f"speechbrain-dir {self.path}: {HPARAMS_FILE} has no {key!r} entry; a speechbrain "
                                 f"inference directory needs 'modules' and 'pretrainer'")
        name = choose_interface(hparams) if self.interface_name == "auto" else self.interface_name
        if name not in INTERFACES:
            raise InputError(f"speechbrain-dir: unknown interface {name!r}; supported: {', '.join(INTERFACES)}")
        module_name, class_name, kind = INTERFACES[name]
        cls = getattr(importlib.import_module(module_name), class_name)
        missing = [m for m in cls.MODULES_NEEDED if m not in hparams["modules"]]
        missing += [h for h in getattr(cls, "HPARAMS_NEEDED", []) if h not in hparams]
        if missing:
            raise InputError(f"speechbrain-dir {self.path}: {HPARAMS_FILE} lacks {', '.join(missing)}, which "
                             f"speechbrain's {class_name} needs")
        self.interface_name = name

        pretrainer = hparams["pretrainer"]
        files = resolve_loadable_files(pretrainer, self.path)
        pretrainer.set_collect_in(None)
        pretrainer.add_paths({k: str(v) for k, v in files.items()})
        hparams["savedir"] = str(self.path)
        try:
            pretrainer.collect_files(default_source=str(self.path), local_strategy=LocalStrategy.NO_LINK,
                                     fetch_config=FetchConfig(allow_network=False))
            pretrainer.load_collected()
        except Exception as exc:
            raise InputError(f"speechbrain-dir {self.path}: the checkpoint files do not load into the modules "
                             f"{HPARAMS_FILE} defines: {type(exc).__name__}: {exc}") from exc
        interface = cls(modules=hparams["modules"], hparams=hparams, run_opts={"device": self.device},
                        freeze_params=True)
        interface.eval()
        from speechbrain.dataio.encoder import CategoricalEncoder

        for value in hparams.values():  # label encoders / CTC tokenizers: the loaded file is the truth
            if isinstance(value, CategoricalEncoder) and len(value):
                value.expect_len(len(value))  # (silences speechbrain's "expect_len was never called")
        return interface, kind, files

    def _labels(self) -> tuple[str, ...]:
        enc = getattr(self.interface.hparams, "label_encoder", None)
        if enc is not None and len(enc):
            return tuple(str(enc.ind2lab[i]) for i in range(len(enc)))
        n = self._raw_outputs(self._probe_batch()).shape[1]
        return tuple(f"class_{i}" for i in range(n))

    def _probe_batch(self):
        rng = np.random.default_rng(0)
        return self._torch.from_numpy((0.05 * rng.standard_normal((1, self.sample_rate))).astype(np.float32))

    def _probe_output(self) -> str:
        """What the classifier's output is: log_probabilities, probabilities or scores."""
        torch = self._torch
        with torch.no_grad():
            out = self._raw_outputs(self._probe_batch()).double()
        if out.shape[1] != len(self.labels):
            raise InputError(f"speechbrain-dir {self.path}: the classifier gives {out.shape[1]} outputs but the "
                             f"label encoder has {len(self.labels)} labels")
        if torch.allclose(torch.logsumexp(out, dim=1), torch.zeros(1, dtype=out.dtype), atol=1e-4):
            return "log_probabilities"
        if out.min() >= 0 and torch.allclose(out.sum(dim=1), torch.ones(1, dtype=out.dtype), atol=1e-4):
            return "probabilities"
        return "scores"

    # --- classifier -------------------------------------------------------
    def _raw_outputs(self, wavs, wav_lens=None):
        torch = self._torch
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
        with self._seeded():
            out = self.interface.classify_batch(wavs, wav_lens)[0]
        return out.reshape(wavs.shape[0], -1)

    def _seeded(self):
        """A fixed seed around every forward, the global generator left as it was.

        Some speechbrain modules draw random numbers at inference (e.g.
        StatisticsPooling adds 1e-5-scale Gaussian noise to its mean, in eval
        mode too): with the seed fixed, the same input gives the same output."""
        import contextlib

        torch = self._torch
        stack = contextlib.ExitStack()
        if str(self.device).startswith("cuda"):
            index = torch.device(self.device).index
            stack.enter_context(torch.random.fork_rng(devices=[torch.cuda.current_device() if index is None
                                                               else index]))
            torch.manual_seed(0)
        else:
            stack.enter_context(torch.random.fork_rng(devices=[]))
            torch.random.default_generator.manual_seed(0)
        return stack

    def _logits(self, wavs):
        out = self._raw_outputs(wavs)
        if self.output_kind == "probabilities":
            return self._torch.log(out.clamp_min(self._torch.finfo(out.dtype).tiny))
        return out

    def classify(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        self.require(Capability.CLASSIFY, "classify")
        torch = self._torch
        xs = [validate_waveform(w, f"speechbrain-dir input {i}", allow_silence=True)
              for i, w in enumerate(waveforms)]
        out = np.zeros((len(xs), len(self.labels)))
        with torch.no_grad():
            for part in equal_length_batches(xs, 16):
                batch = torch.from_numpy(np.stack([xs[i] for i in part]))
                out[part] = torch.softmax(self._logits(batch).double(), dim=1).cpu().numpy()
        return out

    def class_logits(self, waveform):
        self.require(Capability.DIFFERENTIABLE, "class logits")
        x = self._torch.as_tensor(waveform)
        if x.ndim != 1 or x.numel() == 0:
            raise InputError(f"speechbrain-dir: expected a non-empty 1-D waveform tensor, got shape {tuple(x.shape)}")
        return self._logits(x.to(self._torch.float32)[None])[0]

    # --- embedding: the normalised filterbank the encoder reads ---------------
    def _embedding_modules(self) -> bool:
        """An EncoderClassifier whose front end is compute_features + mean_var_norm (a fixed
        filterbank and per-sentence normalisation: nothing trained, the same for every seed)."""
        mods = self.interface.mods
        return self.interface_name == "EncoderClassifier" and all(
            m in mods for m in ("compute_features", "mean_var_norm", "embedding_model", "classifier"))

    def _fbank_weights(self):
        """(n_mels, n_bins) filters and their bin frequencies, when compute_features is speechbrain's Fbank."""
        fb = getattr(self.interface.mods.compute_features, "compute_fbanks", None)
        if fb is None or not hasattr(fb, "_create_fbank_matrix"):
            return None, None
        torch = self._torch
        n_bins = fb.all_freqs_mat.shape[1]
        f_c = fb.f_central.detach().repeat(n_bins, 1).transpose(0, 1)
        band = fb.band.detach().repeat(n_bins, 1).transpose(0, 1)
        if not fb.freeze:
            scale = fb.sample_rate * fb.param_change_factor * fb.param_change_factor
            f_c, band = f_c * scale, band * scale
        with torch.no_grad():
            matrix = fb._create_fbank_matrix(f_c, band)  # (n_bins, n_mels)
        return matrix.T.double().numpy(), np.linspace(0.0, fb.sample_rate // 2, n_bins)

    def embed(self, waveform):
        from ssbm_bench.model import Embedding

        self.require(Capability.EMBED, "the model's embedding")
        torch = self._torch
        x = torch.as_tensor(waveform).to(torch.float32)
        if x.ndim != 1 or x.numel() == 0:
            raise InputError(f"speechbrain-dir: expected a non-empty 1-D waveform tensor, got shape {tuple(x.shape)}")
        mods = self.interface.mods
        lens = torch.ones(1)
        feats = mods.mean_var_norm(mods.compute_features(x[None]), lens)[0]
        stft_mod = getattr(mods.compute_features, "compute_STFT", None)
        hop_ms = float(getattr(stft_mod, "hop_length", 10.0)) if stft_mod is not None else 10.0
        weights, bin_hz = self._fbank_weights()
        return Embedding(values=feats, hop_seconds=hop_ms / 1000.0, label="normalised fbank",
                         frequency_weights=weights, bin_hz=bin_hz)

    def embedding_target_score(self, values, embedding, target, transcript=None):
        self.require(Capability.EMBED, "a score from the model's embedding")
        torch = self._torch
        if target.kind != "class":
            raise InputError(f"speechbrain-dir {self.path}: a classifier explains classes, not {target.key}")
        mods = self.interface.mods
        lens = torch.ones(1)
        with self._seeded():
            emb = mods.embedding_model(values.to(torch.float32)[None], lens)
            if "mean_var_norm_emb" in mods:
                emb = mods.mean_var_norm_emb(emb, torch.ones(emb.shape[0]))
            out = mods.classifier(emb).reshape(1, -1)
        if self.output_kind == "probabilities":
            out = torch.log(out.clamp_min(torch.finfo(out.dtype).tiny))
        return self.word_or_class_score(out[0], target, None)

    # --- ASR --------------------------------------------------------------
    def transcribe(self, waveforms: Sequence[np.ndarray]) -> list[list[str]]:
        self.require(Capability.TRANSCRIBE, "transcribe")
        torch = self._torch
        out = []
        with torch.no_grad():
            for i, w in enumerate(waveforms):
                x = torch.from_numpy(validate_waveform(w, f"speechbrain-dir input {i}", allow_silence=True))[None]
                with self._seeded():
                    words, _tokens = self.interface.transcribe_batch(x, torch.ones(1))
                text = words[0] if isinstance(words[0], str) else " ".join(map(str, words[0]))
                out.append(text.split())
        return out

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "parameters": {"path": str(self.path), "interface": self.interface_name, "overrides": self._overrides,
                           "device": self.device},
            "kind": self.kind,
            "output": self.output_kind,
            "labels": list(self.labels),
            "sample_rate": self.sample_rate,
            "weights_sha256": self._weights_sha256,
        }


@hookimpl
def register_models(register):
    register(
        ModelPlugin.of(
            SpeechBrainDirectory,
            description=(
                "any speechbrain model directory (hyperparams.yaml + checkpoints, loaded offline): classifiers "
                "classify (differentiable), ASR transcribes; parameter path"
            ),
        )
    )
