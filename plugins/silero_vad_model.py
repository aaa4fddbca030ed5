"""silero-vad as a differentiable speech-presence classifier (labels: non-speech, speech).

The model is the TorchScript file inside the ``silero-vad`` wheel
(``silero_vad/data/silero_vad.jit``), loaded with ``torch.jit.load`` from the
installed package; nothing is fetched. It is the speech analogue of the
SoundLIME paper's singing-voice detector.

How silero works, and what we aggregate
---------------------------------------
silero scores 512-sample chunks (32 ms at 16 kHz). Each chunk is prefixed
with the last 64 samples of the previous one (zeros for the first), turned
into an STFT magnitude by a fixed conv basis, encoded by four conv blocks
and passed through an LSTM cell whose state runs from chunk to chunk; the
chunk's output is a speech probability. The tail of an excerpt is
zero-padded to a whole chunk, exactly as silero's own ``audio_forward`` does.

Our score for an excerpt: P(speech) = the **mean of its chunk
probabilities**, with the state and the context reset at the start of every
excerpt (so the same excerpt always gets the same score, whatever was
classified before). class_logits are ``(-z/2, z/2)`` with
``z = logit(P(speech)) = log(sum p_i) - log(sum (1 - p_i))``: their softmax
is exactly ``(1 - P, P)`` and the "speech" logit does not saturate the way
log P does when P is near 1 (better for gradients).

Why we do not call the scripted module's own entry points
---------------------------------------------------------
* ``audio_forward`` runs under ``torch.no_grad()``: it blocks autograd.
* ``forward`` keeps the LSTM state and the context as attributes of the
  scripted module, so calls are not independent (and not thread-safe).
* The scripted STFT computes ``sqrt(re^2 + im^2)``; on an all-zero frame
  (digital silence, or the zero padding of the last chunk) its gradient is
  0/0 = NaN, which poisons the gradient of the whole excerpt.

So :class:`SileroVad` runs the scripted submodules (``_model.stft``'s
padding and basis, ``_model.encoder``, ``_model.decoder``) from Python with
explicit state, and takes the magnitude with a zero gradient where it is
exactly zero. Chunks are encoded in one batched call (only the LSTM steps
run in a Python loop); the chunk probabilities equal ``audio_forward``'s to
float32 rounding (within 4e-6 measured: batching changes the order of
sums; the test checks it), and gradients flow through the TorchScript
encoder and decoder (the test checks the input gradient against a finite
difference). The network
runs in float32 whatever the input's dtype (silero casts to float inside).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.model import Capability, SpeechModel
from ssbm_bench.records import ModelPlugin
from ssbm_bench.types import validate_waveform

CHUNK = 512  # samples per chunk at 16 kHz
CONTEXT = 64  # samples of the previous chunk prefixed to each chunk
STATE_SIZE = 128
JIT_NAME = "silero_vad.jit"


def silero_jit_path() -> Path:
    """The TorchScript file inside the installed silero-vad wheel.

    Found without importing ``silero_vad`` (whose ``__init__`` calls
    ``torch.set_num_threads(1)`` for the whole process).
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("silero-vad: the silero-vad package is not installed (pip install silero-vad)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / JIT_NAME
    if not path.is_file():
        raise InputError(f"silero-vad: expected the TorchScript model at {path}; the installed wheel has none")
    return path


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class SileroVad(SpeechModel):
    """silero-vad (16 kHz TorchScript) scoring whole excerpts for speech presence."""

    name = "silero-vad"
    sample_rate = 16000
    labels = ("non-speech", "speech")
    capabilities = frozenset({Capability.CLASSIFY, Capability.DIFFERENTIABLE})
    aggregation = "mean"

    def __init__(self):
        import torch

        self._path = silero_jit_path()
        with warnings.catch_warnings():  # torch 2.11 deprecates TorchScript; silero ships nothing else for torch
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=DeprecationWarning)
            module = torch.jit.load(str(self._path), map_location="cpu")
        module.eval()
        for p in module.parameters():  # gradients are wanted w.r.t. the input only
            p.requires_grad_(False)
        self._jit = module
        self._net = module._model  # the 16 kHz network (module._model_8k is the 8 kHz one)
        stft = self._net.stft
        self._padding = stft.padding
        self._basis = stft.forward_basis_buffer
        self._hop = int(stft.hop_length)
        self._n_bins = int(stft.filter_length) // 2 + 1
        self._sha256 = _file_sha256(self._path)
        try:
            pkg = md.version("silero-vad")
        except md.PackageNotFoundError:  # pragma: no cover - found above, so installed
            pkg = "unknown"
        self.version = f"silero-vad {pkg}, torch {torch.__version__}, jit sha256 {self._sha256[:12]}"

    # --- the network, run chunk by chunk with explicit state --------------
    def _magnitude(self, frames):
        """STFT magnitude of (n, CONTEXT + CHUNK) frames, as silero computes it,
        with a zero (not NaN) gradient where the magnitude is exactly zero."""
        import torch

        x = self._padding(frames).unsqueeze(1)
        spec = torch.conv1d(x, self._basis, None, [self._hop], [0])
        re, im = spec[:, : self._n_bins], spec[:, self._n_bins :]
        power = re * re + im * im
        nonzero = power > 0
        safe = torch.where(nonzero, power, torch.ones_like(power))
        return torch.where(nonzero, torch.sqrt(safe), torch.zeros_like(power))

    def chunk_probabilities(self, batch):
        """Per-chunk speech probabilities of a batch of waveforms.

        `batch` is a (B, T) float tensor with T a multiple of CHUNK (already
        zero-padded). Returns (B, T // CHUNK). State and context start from
        zero for every row; rows are independent.
        """
        import torch

        b, t = batch.shape
        if t % CHUNK:
            raise InputError(f"silero-vad: internal error, {t} samples is not a multiple of {CHUNK}")
        n = t // CHUNK
        chunks = batch.reshape(b, n, CHUNK)
        context = torch.cat([batch.new_zeros(b, 1, CONTEXT), chunks[:, :-1, -CONTEXT:]], dim=1)
        frames = torch.cat([context, chunks], dim=2).reshape(b * n, CONTEXT + CHUNK)
        encoded = self._net.encoder(self._magnitude(frames))  # (b*n, 128, 1)
        encoded = encoded.reshape(b, n, *encoded.shape[1:])
        decoder = self._net.decoder
        state = batch.new_zeros(2, b, STATE_SIZE)
        probs = []
        for i in range(n):
            out, state = decoder(encoded[:, i], state)
            probs.append(out.squeeze(1).mean(dim=1))  # silero's per-chunk output
        return torch.stack(probs, dim=1)

    @staticmethod
    def _padded_length(n_samples: int) -> int:
        return max(1, -(-n_samples // CHUNK)) * CHUNK

    def _speech_logit(self, waveform):
        """z = logit(mean chunk probability) for one 1-D tensor (differentiable)."""
        import torch

        n = waveform.shape[-1]
        x = torch.nn.functional.pad(waveform.reshape(1, n), (0, self._padded_length(n) - n))
        p = self.chunk_probabilities(x)[0]
        tiny = torch.finfo(p.dtype).tiny
        return torch.log(p.sum().clamp_min(tiny)) - torch.log((1.0 - p).sum().clamp_min(tiny))

    # --- SpeechModel -------------------------------------------------------
    def classify(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """(batch, 2) probabilities (non-speech, speech); speech = mean of the
        chunk probabilities of each excerpt."""
        import torch

        xs = [validate_waveform(w, f"silero-vad input {i}", allow_silence=True)
              for i, w in enumerate(waveforms)]
        if not xs:
            return np.zeros((0, 2))
        out = np.zeros((len(xs), 2))
        lengths = [self._padded_length(len(x)) for x in xs]
        batch = np.zeros((len(xs), max(lengths)), dtype=np.float32)
        for i, x in enumerate(xs):
            batch[i, : len(x)] = x
        with torch.no_grad():
            probs = self.chunk_probabilities(torch.from_numpy(batch)).double().numpy()
        for i, length in enumerate(lengths):
            speech = float(probs[i, : length // CHUNK].mean())
            out[i] = (1.0 - speech, speech)
        return out

    def class_logits(self, waveform):
        """(-z/2, z/2), z = logit of the excerpt's mean chunk probability."""
        import torch

        x = torch.as_tensor(waveform)
        if x.ndim != 1 or x.numel() == 0:
            raise InputError(f"silero-vad: expected a non-empty 1-D waveform tensor, got shape {tuple(x.shape)}")
        if not torch.is_floating_point(x):
            raise InputError(f"silero-vad: expected floating-point samples, got {x.dtype}")
        z = self._speech_logit(x.to(torch.float32))
        return torch.stack([-0.5 * z, 0.5 * z])

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "parameters": {"aggregation": self.aggregation, "chunk_samples": CHUNK, "context_samples": CONTEXT},
            "weights_sha256": self._sha256,
        }


@hookimpl
def register_models(register):
    register(
        ModelPlugin.of(
            SileroVad,
            description=(
                "silero-vad speech detector (TorchScript from its wheel): P(speech) of an excerpt = mean of its "
                "32 ms chunk probabilities; differentiable"
            ),
        )
    )
