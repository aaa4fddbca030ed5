"""Signal framing: the one place where STFT, ISTFT and audio loading live.

Written in torch so autograd can run through the ISTFT when a gradient method
attributes over the spectrogram of a model that takes waveforms. Defaults are
the SSBM paper's analysis: 16 kHz, 64 ms Hann window, 16 ms hop.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .types import validate_waveform

DEFAULT_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class StftConfig:
    sample_rate: int = DEFAULT_SAMPLE_RATE
    window_ms: float = 64.0
    hop_ms: float = 16.0

    @property
    def n_fft(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000.0))

    @property
    def hop(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000.0))

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        return n_samples // self.hop + 1

    def frame_times(self, n_frames: int) -> np.ndarray:
        """Centre time of each frame in seconds (frames are centred, torch.stft(center=True))."""
        return np.arange(n_frames) * self.hop / self.sample_rate

    def frequencies(self) -> np.ndarray:
        return np.linspace(0.0, self.sample_rate / 2.0, self.n_freq)

    def frame_span(self, start: float, end: float, n_frames: int) -> tuple[int, int]:
        """Frames whose centre lies in [start, end] (at least one frame), as a half-open range."""
        t = self.frame_times(n_frames)
        idx = np.nonzero((t >= start) & (t <= end))[0]
        if idx.size == 0:
            c = int(np.clip(np.argmin(np.abs(t - 0.5 * (start + end))), 0, n_frames - 1))
            return c, c + 1
        return int(idx[0]), int(idx[-1]) + 1

    def to_dict(self) -> dict:
        return {"sample_rate": self.sample_rate, "window_ms": self.window_ms, "hop_ms": self.hop_ms}


def _window(cfg: StftConfig, like: torch.Tensor) -> torch.Tensor:
    dtype = like.real.dtype if like.is_complex() else like.dtype
    return torch.hann_window(cfg.n_fft, periodic=True, dtype=dtype, device=like.device)


def stft(waveform: np.ndarray | torch.Tensor, cfg: StftConfig = StftConfig()) -> torch.Tensor:
    """Complex STFT, shape (n_freq, n_frames)."""
    x = torch.as_tensor(waveform)
    if not torch.is_floating_point(x):
        raise InputError(f"stft: expected floating-point samples, got {x.dtype}")
    if x.shape[-1] <= cfg.n_fft // 2:
        raise InputError(f"stft: audio of {x.shape[-1]} samples is too short; the analysis needs more than "
                         f"{cfg.n_fft // 2} samples ({cfg.window_ms / 2:g} ms at {cfg.sample_rate} Hz)")
    return torch.stft(x, cfg.n_fft, hop_length=cfg.hop, window=_window(cfg, x), center=True, return_complex=True)


def istft(spec: torch.Tensor, length: int, cfg: StftConfig = StftConfig()) -> torch.Tensor:
    """Inverse of :func:`stft` (overlap-add with the same window), to `length` samples."""
    return torch.istft(spec, cfg.n_fft, hop_length=cfg.hop, window=_window(cfg, spec), center=True, length=length)


def magnitude(waveform: np.ndarray, cfg: StftConfig = StftConfig()) -> np.ndarray:
    return stft(torch.as_tensor(waveform, dtype=torch.float64), cfg).abs().numpy()


def resample(waveform: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy), exact for rational ratios."""
    if orig_sr == target_sr:
        return waveform
    from scipy.signal import resample_poly

    frac = Fraction(target_sr, orig_sr)
    return resample_poly(waveform, frac.numerator, frac.denominator).astype(np.float32)


def load_audio(path: str | Path, target_sr: int = DEFAULT_SAMPLE_RATE, name: str | None = None) -> np.ndarray:
    """Read a file as float32 mono at `target_sr`, resampling (with a warning) if needed.

    Missing, unreadable, empty, silent or non-finite audio raises InputError
    naming the file.
    """
    import soundfile as sf

    path = Path(path)
    label = name or str(path)
    if not path.is_file():
        raise InputError(f"audio file {label}: not found")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for corrupt files
        raise InputError(f"audio file {label}: cannot be decoded ({exc})") from exc
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != target_sr:
        warnings.warn(f"audio file {label}: resampled from {sr} Hz to {target_sr} Hz", stacklevel=2)
        x = resample(x, sr, target_sr)
    return validate_waveform(x, f"audio file {label}")


def speech_energy(spec_mag: np.ndarray) -> float:
    return float(np.sum(np.asarray(spec_mag, dtype=np.float64) ** 2))
