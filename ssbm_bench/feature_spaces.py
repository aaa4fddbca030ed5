"""Input types for attribution: the waveform and a model's embedding.

The ISA paper asks which *input type* an attribution is computed over: the
waveform, the spectrogram, or the model's embedding (the output of its fixed
front end, the first representation every seed of a family shares). The
spectrogram space is :class:`ssbm_bench.attribution.MagnitudeSpace`; this
module adds the other two with the same interface, so that every captum
method runs over any of them unchanged:

* ``shape``, ``inputs()``, ``forward(x)`` (a batch of features -> scores),
  ``silence()`` and ``fill_content(fill, seed)`` (captum's baselines: digital
  silence and the fill's content, *converted into the space*, as the ISA
  paper does for its baselines), ``patch_mask`` / ``word_mask`` (feature
  masks for the perturbation methods), and ``evaluations``.
* ``to_stft(values)``: the attribution on the STFT grid (freq x frames), so
  that SSBM and deletion score every input type with the same masks.
* ``native(values)``: the attribution in its own space, with its time step,
  for ISA (which compares attributions where they were computed).

How an attribution comes back to the STFT grid
----------------------------------------------
Waveform (samples): each STFT frame takes the Hann-window-weighted sum of
the sample attributions under it (the same window as the analysis), and that
frame total is shared among the frame's frequencies in proportion to the
clean signal's power |X(f, k)|^2 there (evenly in a silent frame): a sample
has no frequency, but the frequencies that carry its energy are where its
attribution plausibly belongs. Ranks across frames follow the attribution;
within a frame they follow the clean spectrum. Frame totals are preserved.

Embedding (frames_e x dims): each STFT frame takes the embedding frame
nearest in time. Where the model says what frequencies each dimension reads
(mel filters), a bin takes the filter-weighted mean of the dimensions that
cover it (the normalised transpose of the filterbank, as the energy
method's mel back-projection); otherwise the frame's value is shared out by
the clean power as for the waveform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .audio import istft, stft
from .errors import InputError
from .fill import Fill, FillContext
from .model import Capability, Embedding, SpeechModel


@dataclass(frozen=True)
class NativeAttribution:
    """An attribution in the space it was computed in: (time steps, features),
    `step_seconds` apart; `frame_steps` native steps make one aggregation frame."""

    values: np.ndarray
    step_seconds: float
    space: str
    frame_steps: int = 1

    def frame_sums(self) -> np.ndarray:
        """Sum per aggregation frame (the ISA paper's frame-level aggregation)."""
        per_step = self.values.sum(axis=1)
        k = max(1, int(self.frame_steps))
        n = -(-per_step.size // k)
        padded = np.zeros(n * k)
        padded[: per_step.size] = per_step
        return padded.reshape(n, k).sum(axis=1)

    @property
    def frame_seconds(self) -> float:
        return self.step_seconds * max(1, int(self.frame_steps))

    def word_spans(self, words, n_frames: int) -> list[tuple[int, int]]:
        """[start, stop) aggregation frames whose centre lies in each word (at least one)."""
        t = (np.arange(n_frames) + 0.5) * self.frame_seconds if self.frame_steps > 1 \
            else np.arange(n_frames) * self.frame_seconds
        spans = []
        for w in words:
            idx = np.nonzero((t >= w.start) & (t <= w.end))[0]
            if idx.size == 0:
                c = int(np.clip(np.argmin(np.abs(t - 0.5 * (w.start + w.end))), 0, n_frames - 1))
                spans.append((c, c + 1))
            else:
                spans.append((int(idx[0]), int(idx[-1]) + 1))
        return spans


# --- projections onto the STFT grid ----------------------------------------------------
def share_by_power(frame_values: np.ndarray, clean_magnitude: np.ndarray) -> np.ndarray:
    """(frames,) totals -> (freq, frames), shared by each frame's clean power (evenly if silent)."""
    power = np.square(np.asarray(clean_magnitude, dtype=np.float64))
    total = power.sum(axis=0, keepdims=True)
    n_freq = power.shape[0]
    share = np.where(total > 0, power / np.where(total > 0, total, 1.0), 1.0 / n_freq)
    return share * np.asarray(frame_values, dtype=np.float64)[None, :]


def waveform_frame_sums(values: np.ndarray, cfg, n_frames: int) -> np.ndarray:
    """Hann-weighted sum of sample attributions under each (centred) STFT frame."""
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    half = cfg.n_fft // 2
    padded = np.concatenate([np.zeros(half), a, np.zeros(cfg.n_fft + n_frames * cfg.hop)])
    window = np.hanning(cfg.n_fft + 1)[:-1]  # periodic Hann, as the analysis window
    windows = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[::cfg.hop][:n_frames]
    return windows @ window


def waveform_to_stft(values: np.ndarray, clean_magnitude: np.ndarray, cfg) -> np.ndarray:
    """A waveform attribution on the STFT grid (see the module docstring)."""
    n_frames = clean_magnitude.shape[1]
    return share_by_power(waveform_frame_sums(values, cfg, n_frames), clean_magnitude)


def frequency_projection(weights: np.ndarray, bin_hz: np.ndarray, target_hz: np.ndarray) -> np.ndarray:
    """(n_target_bins, dims): for each STFT bin, the normalised weights of the
    embedding dimensions that read it (rows of zeros where none does).
    `weights` (dims, n_bins) are given at frequencies `bin_hz`."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != len(bin_hz):
        raise InputError(f"embedding frequency weights: expected (dims, {len(bin_hz)}) to match bin_hz, "
                         f"got shape {w.shape}")
    at = np.stack([np.interp(target_hz, bin_hz, row, left=0.0, right=0.0) for row in w], axis=1)
    total = at.sum(axis=1, keepdims=True)
    return np.where(total > 0, at / np.where(total > 0, total, 1.0), 0.0)


def embedding_to_stft(values: np.ndarray, embedding: Embedding, clean_magnitude: np.ndarray, cfg) -> np.ndarray:
    """An embedding attribution (frames_e, dims) on the STFT grid (see the module docstring)."""
    a = np.asarray(values, dtype=np.float64)
    n_freq, n_frames = clean_magnitude.shape
    times = cfg.frame_times(n_frames)
    nearest = np.clip(np.rint(times / embedding.hop_seconds).astype(int), 0, a.shape[0] - 1)
    per_frame = a[nearest]  # (n_frames, dims)
    if embedding.frequency_weights is None:
        return share_by_power(per_frame.sum(axis=1), clean_magnitude)
    proj = frequency_projection(embedding.frequency_weights, embedding.bin_hz, cfg.frequencies())
    return proj @ per_frame.T


def time_blocks(n_steps: int, steps_per_block: int) -> torch.Tensor:
    return torch.arange(n_steps) // max(1, int(steps_per_block))


def steps_in_words(n_steps: int, step_seconds: float, words, centred: bool = True) -> torch.Tensor:
    """Feature ids per time step for word-aligned perturbation: word k's steps
    are k, every step outside the words is one more id (len(words))."""
    t = np.arange(n_steps) * step_seconds + (0.0 if centred else 0.5 * step_seconds)
    ids = np.full(n_steps, len(words), dtype=np.int64)
    for k, w in enumerate(words):
        inside = (t >= w.start) & (t <= w.end)
        if not inside.any():
            inside[int(np.clip(np.argmin(np.abs(t - 0.5 * (w.start + w.end))), 0, n_steps - 1))] = True
        ids[inside] = k
    # captum wants ids 0..n-1 without gaps; a word without steps of its own would leave one
    _, dense = np.unique(ids, return_inverse=True)
    return torch.as_tensor(dense.reshape(-1), dtype=torch.long)


class _SpaceBase:
    """What the waveform and embedding spaces share with the magnitude space."""

    space_name = "?"

    def __init__(self, request, model_target):
        self.request = request
        self.model: SpeechModel = request.model
        self.mt = model_target
        self.cfg = request.cfg
        self.waveform = torch.as_tensor(np.asarray(request.utterance.waveform), dtype=torch.float32)
        self.clean_spec = stft(self.waveform, self.cfg)
        self.clean_magnitude = self.clean_spec.abs().double().numpy()
        self.evaluations = 0

    def score_waveform(self, wave: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        return self.model.target_score(wave, self.mt.target, self.mt.transcript)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = 1 + len(self.shape)
        if x.ndim != expected:
            raise InputError(f"{self.space_name} space: expected a batch of shape (B, {', '.join(map(str, self.shape))})"
                             f", got shape {tuple(x.shape)}")
        with torch.set_grad_enabled(torch.is_grad_enabled() and x.requires_grad):
            return torch.stack([self.score(x[b]).reshape(()) for b in range(x.shape[0])])

    def fill_waveform(self, fill: Fill | None, seed: int) -> torch.Tensor:
        """The fill's content for a fully occluded utterance, as a waveform (silence when no fill)."""
        if fill is None:
            return torch.zeros_like(self.waveform)
        utt = self.request.utterance
        rms = float(np.sqrt(np.mean(np.square(utt.waveform, dtype=np.float64))))
        ctx = FillContext(rng=np.random.default_rng(seed), cfg=self.cfg, n_samples=self.waveform.numel(),
                          level_db=float(self.request.noise_level_db or 0.0), reference_rms=rms)
        out = fill.apply(self.clean_spec, np.ones(tuple(self.clean_spec.shape)), ctx)
        return istft(torch.as_tensor(out).to(torch.complex64), self.waveform.numel(), self.cfg).detach()


class WaveformSpace(_SpaceBase):
    """The waveform samples as captum's input space (shape (samples,))."""

    space_name = "waveform"

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.waveform.numel()),)

    def inputs(self, requires_grad: bool = False) -> torch.Tensor:
        return self.waveform.detach().clone().unsqueeze(0).requires_grad_(requires_grad)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_waveform(x)

    def silence(self) -> torch.Tensor:
        return torch.zeros(1, *self.shape)

    def fill_content(self, fill: Fill | None, seed: int) -> torch.Tensor:
        return self.fill_waveform(fill, seed).unsqueeze(0)

    def patch_mask(self, patch_freq: int, patch_frames: int) -> torch.Tensor:
        """Time spans of `patch_frames` STFT hops (a waveform has no frequency axis)."""
        return time_blocks(self.shape[0], patch_frames * self.cfg.hop).unsqueeze(0)

    def word_mask(self, words) -> torch.Tensor:
        return steps_in_words(self.shape[0], 1.0 / self.cfg.sample_rate, words).unsqueeze(0)

    def to_stft(self, values: np.ndarray) -> np.ndarray:
        return waveform_to_stft(np.asarray(values).reshape(-1), self.clean_magnitude, self.cfg)

    def native(self, values: np.ndarray) -> NativeAttribution:
        # frame-level aggregation sums the samples of each STFT hop (16 ms by default)
        return NativeAttribution(np.asarray(values, np.float64).reshape(-1, 1), 1.0 / self.cfg.sample_rate,
                                 "waveform", frame_steps=self.cfg.hop)


class EmbeddingSpace(_SpaceBase):
    """The model's embedding (its fixed front end's output, (frames, dims))."""

    space_name = "embedding"

    def __init__(self, request, model_target):
        super().__init__(request, model_target)
        self.model.require(Capability.EMBED, "attribution over the model's embedding")
        with torch.no_grad():
            self.embedding: Embedding = self.model.embed(self.waveform)
        self.clean_values = self.embedding.values.detach().to(torch.float32)
        if self.clean_values.ndim != 2:
            raise InputError(f"model {self.model.name!r}: embed() must give (frames, dims), "
                             f"got shape {tuple(self.clean_values.shape)}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.clean_values.shape)

    def inputs(self, requires_grad: bool = False) -> torch.Tensor:
        return self.clean_values.clone().unsqueeze(0).requires_grad_(requires_grad)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        return self.model.embedding_target_score(x, self.embedding, self.mt.target, self.mt.transcript)

    def _embed(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            values = self.model.embed(wave).values.detach().to(torch.float32)
        if tuple(values.shape) != self.shape:
            raise InputError(f"model {self.model.name!r}: the embedding of the baseline has shape "
                             f"{tuple(values.shape)}, the utterance's {self.shape}")
        return values.unsqueeze(0)

    def silence(self) -> torch.Tensor:
        """Digital silence converted into the embedding (the ISA paper's baseline)."""
        return self._embed(torch.zeros_like(self.waveform))

    def fill_content(self, fill: Fill | None, seed: int) -> torch.Tensor:
        return self._embed(self.fill_waveform(fill, seed))

    def patch_mask(self, patch_freq: int, patch_frames: int) -> torch.Tensor:
        """Blocks of the same duration as `patch_frames` STFT hops, and of the
        same share of the feature axis as `patch_freq` of the STFT's bins."""
        frames, dims = self.shape
        steps = max(1, round(patch_frames * self.cfg.hop / self.cfg.sample_rate / self.embedding.hop_seconds))
        dim_block = max(1, round(dims * patch_freq / self.cfg.n_freq))
        t = time_blocks(frames, steps)
        d = torch.arange(dims) // dim_block
        per_row = int(d.max()) + 1
        return (t[:, None] * per_row + d[None, :]).long().unsqueeze(0)

    def word_mask(self, words) -> torch.Tensor:
        frames, dims = self.shape
        ids = steps_in_words(frames, self.embedding.hop_seconds, words)
        return ids[:, None].expand(frames, dims).clone().unsqueeze(0)

    def to_stft(self, values: np.ndarray) -> np.ndarray:
        a = np.asarray(values, dtype=np.float64).reshape(self.shape)
        return embedding_to_stft(a, self.embedding, self.clean_magnitude, self.cfg)

    def native(self, values: np.ndarray) -> NativeAttribution:
        return NativeAttribution(np.asarray(values, np.float64).reshape(self.shape), self.embedding.hop_seconds,
                                 f"embedding:{self.embedding.label}")
