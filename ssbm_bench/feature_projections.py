"""Feature ids and projections: how a feature space's attributions and masks map onto grids.

The feature spaces (:mod:`ssbm_bench.feature_spaces`) attribute over the
STFT magnitude, the waveform or the model's embedding; here is how their
perturbation masks are laid out (patches, word-aligned features, time
blocks) and how their attributions come back onto the STFT grid.

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

import math

import numpy as np
import torch

from .errors import InputError
from .model import Embedding


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


def patch_mask(n_freq: int, n_frames: int, patch_freq: int, patch_frames: int) -> torch.Tensor:
    """(n_freq, n_frames) integer ids of non-overlapping patches, row-major
    over (frequency band, time block); edge patches are smaller."""
    per_row = math.ceil(n_frames / patch_frames)
    f = torch.arange(n_freq)[:, None] // patch_freq
    t = torch.arange(n_frames)[None, :] // patch_frames
    return (f * per_row + t).long()


def word_mask(n_freq: int, n_frames: int, spans: list[tuple[int, int]]) -> torch.Tensor:
    """(n_freq, n_frames) feature ids for word-aligned perturbation (the ISA
    paper's sec. 3.3): every frame of word k (all frequencies) is feature k;
    the frames outside every word are one more feature, so that they are
    perturbed too but count as a single unit. Overlapping spans go to the
    later word."""
    cols = torch.full((n_frames,), len(spans), dtype=torch.long)
    for k, (start, stop) in enumerate(spans):
        cols[start:stop] = k
    return cols[None, :].expand(n_freq, n_frames).clone()
