"""Whisper's log-mel front end in torch, so gradients reach the waveform.

transformers' ``WhisperFeatureExtractor`` computes the features in numpy
(no autograd). This is the same computation in torch, with the extractor's
own mel filters, and is tested to match it to ~1e-4:

1. pad with zeros (or trim) to the chunk length: 30 s = 480000 samples;
2. STFT, n_fft 400, hop 160, periodic Hann window, centred (reflect pad);
3. power |X|^2, dropping the last frame (3001 -> 3000 frames);
4. mel filters (Slaney scale and norm, 0-8 kHz), then log10 of the energies
   clamped at 1e-10;
5. dynamic range: max(x, max(x) - 8) with the maximum taken per utterance;
6. (x + 4) / 4.

The power is computed as re^2 + im^2 rather than abs()^2: the zero padding
gives exact-zero bins where abs() has no gradient (0/0).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class LogMel:
    """Waveform (samples,) or (batch, samples) -> features (batch, n_mels, frames)."""

    def __init__(self, mel_filters: np.ndarray, n_fft: int = 400, hop_length: int = 160, n_samples: int = 480000):
        self.mel_filters = torch.as_tensor(np.asarray(mel_filters, dtype=np.float32))  # (n_freq, n_mels)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_samples = int(n_samples)
        self.window = torch.hann_window(self.n_fft, periodic=True)

    @classmethod
    def from_feature_extractor(cls, fe) -> "LogMel":
        """Mirror a ``WhisperFeatureExtractor`` (its filters, frame size, hop and chunk length)."""
        return cls(fe.mel_filters, fe.n_fft, fe.hop_length, fe.n_samples)

    @property
    def n_mels(self) -> int:
        return int(self.mel_filters.shape[1])

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.hop_length

    def pad_or_trim(self, waveform: torch.Tensor) -> torch.Tensor:
        n = waveform.shape[-1]
        if n >= self.n_samples:
            return waveform[..., : self.n_samples]
        return F.pad(waveform, (0, self.n_samples - n))

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform if waveform.ndim == 2 else waveform.unsqueeze(0)
        x = self.pad_or_trim(x.to(torch.float32))
        spec = torch.stft(x, self.n_fft, self.hop_length, window=self.window.to(x.device), center=True,
                          pad_mode="reflect", return_complex=True)[..., :-1]
        power = spec.real**2 + spec.imag**2
        mel = self.mel_filters.to(x.device).T @ power
        log_spec = torch.clamp(mel, min=1e-10).log10()
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0
