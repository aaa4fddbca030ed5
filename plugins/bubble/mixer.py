"""Bubble noise: loud speech-shaped noise with randomly placed quiet "bubbles".

This follows Mandel's auditory-bubbles toolbox (``genBubbleNoise.m``,
``genMaskedSsn.m``, ``speechProfile.m``, ``bubbleFeatures.m`` in
github.com/mim/auditoryBubbles), which the SSBM paper's bubble analysis
([12, 13] there) used, on the benchmark's STFT grid (ssbm_bench.audio).

Bubble placement. A mixture of an utterance of duration d seconds has
``n = round(d * bubbles_per_second)`` bubbles (a fixed count per mixture, as
in the toolbox). Bubble i has a centre time t_i uniform in [0, d] and a
centre frequency e_i uniform on the ERB-rate scale
(Glasberg & Moore: ERB-rate(f) = 21.4 log10(1 + 0.00437 f)) between the
lowest and highest non-zero STFT frequency, each pulled in by twice the
bubble width (the toolbox's padding, so bubbles are not cut by the edges).

Bubble shape. With sigma_t = ``bubble_duration_s`` (40 ms) and sigma_e =
``bubble_width_erb`` (0.4 ERB), each bubble is a paraboloid *in dB*,

    q_i(f, t) = ((t - t_i) / sigma_t)^2 + ((ERB(f) - e_i) / sigma_e)^2,

i.e. a Gaussian in linear amplitude, 10^(-q_i / 20) = exp(-q_i ln(10) / 20),
an ellipse in (time, ERB) whose amplitude standard deviations are
sqrt(10 / ln 10) ~ 2.08 sigma (83 ms, 0.83 ERB). The bubbles' amplitudes add
up and the noise gain is (the toolbox's ``makeHoles`` rule, clipped):

    G(f, t) = clip(-depth - 20 log10 sum_i 10^(-q_i(f, t) / 20), -depth, 0)   [dB]

so the noise is ``bubble_depth_db`` (80 dB) down at a bubble's centre and
back at full level where q_i >= depth for every bubble, at
sqrt(depth) sigma from the centre (358 ms and 3.6 ERB for the defaults).
Unlike the toolbox, overlapping bubbles never take the noise below -depth
(the toolbox let it fall further and then clipped the audibility at 1.1).

Audibility. D(f, t) = -G(f, t) / depth in [0, 1]: 0 = full noise, 1 = the
noise is depth dB down. This is the toolbox's feature
``db(noise / noise level) / -80`` without its [-0.1, 1.1] slack.

Speech-shaped noise. Each mixture draws fresh white Gaussian noise, takes
its STFT and multiplies it by the utterance's speech profile P(f): the 97th
percentile over frames of the clean STFT magnitude in each bin, smoothed
across frequency with the toolbox's zero-phase one-pole filter
(coefficient 0.97, scipy.signal.filtfilt), scaled to peak 1. The noise
therefore has the spectral envelope of the utterance's own loud frames (the
toolbox used a reference recording; here every utterance is its own
reference, so nothing outside the utterance is needed). It is scaled, by
its own draw's RMS, to ``level_db`` dB relative to the clean utterance's
RMS before any bubble is cut into it.

Mixture. Y = S + 10^(G / 20) * N (complex STFTs, the harness's way) and
back to a waveform with ssbm_bench.audio.istft; a mixture whose peak exceeds
0.99 is scaled down to 0.99 (a gain, which cepstral mean normalisation
ignores, instead of the recogniser's int16 clipping).

Reproducibility. Mixture j draws from
``default_rng(SeedSequence(entropy, spawn_key=(j,)))``: bubbles first, then
the noise, so the audibility of mixture j can be regenerated without the
noise, in any order, and the first N mixtures are the same whatever the
total.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.signal import filtfilt

from ssbm_bench.audio import StftConfig, istft, stft
from ssbm_bench.errors import InputError
from ssbm_bench.types import validate_waveform

#: Mandel's defaults (genBubbleNoise.m)
DEFAULT_BUBBLES_PER_SECOND = 10.0
DEFAULT_WIDTH_ERB = 0.4
DEFAULT_DURATION_S = 0.04
DEFAULT_DEPTH_DB = 80.0
#: speech profile: quantile of the magnitude per bin, and the smoothing across bins (speechProfile.m)
PROFILE_QUANTILE = 0.97
PROFILE_SMOOTHING = 0.97
#: mixtures louder than this are scaled down to it
PEAK_LIMIT = 0.99


@contextmanager
def single_threaded_torch():
    """Run torch ops on one intra-op thread, restoring the setting afterwards.

    A mixture's STFT and ISTFTs are small (a few hundred frames). Measured on
    this project's shared 2-core machine under load, torch's default 2
    threads made one ISTFT take 0.1-0.24 s against 3.5 ms on one thread:
    the threads wait on each other. One thread is never slower here.
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def erb_rate(f_hz) -> np.ndarray:
    """ERB-rate scale (Glasberg & Moore 1990), in ERB units (Cams)."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f_hz, dtype=np.float64))


@dataclass(frozen=True)
class BubbleSettings:
    bubbles_per_second: float = DEFAULT_BUBBLES_PER_SECOND
    width_erb: float = DEFAULT_WIDTH_ERB
    duration_s: float = DEFAULT_DURATION_S
    depth_db: float = DEFAULT_DEPTH_DB

    def __post_init__(self):
        for name in ("bubbles_per_second", "width_erb", "duration_s", "depth_db"):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError) as exc:
                raise InputError(f"bubble noise: {name} must be a number, got {v!r}") from exc
            object.__setattr__(self, name, v)
        if not (np.isfinite(self.bubbles_per_second) and self.bubbles_per_second >= 0):
            raise InputError(f"bubble noise: bubbles_per_second must be finite and >= 0, got {self.bubbles_per_second}")
        for name in ("width_erb", "duration_s", "depth_db"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"bubble noise: {name} must be finite and > 0, got {v}")

    def n_bubbles(self, duration_s: float) -> int:
        return int(round(duration_s * self.bubbles_per_second))

    def to_dict(self) -> dict:
        return asdict(self)


def speech_profile(clean_magnitude: np.ndarray, quantile: float = PROFILE_QUANTILE,
                   smoothing: float = PROFILE_SMOOTHING) -> np.ndarray:
    """Amplitude profile P(f) of speech-shaped noise: smoothed per-bin quantile, peak 1."""
    mag = np.abs(np.asarray(clean_magnitude, dtype=np.float64))
    if mag.ndim != 2 or mag.size == 0:
        raise InputError(f"bubble noise: expected a (frequency, time) magnitude, got shape {mag.shape}")
    q = np.quantile(mag, quantile, axis=1)
    if q.size > 6 and smoothing > 0:
        q = filtfilt([1.0 - smoothing], [1.0, -smoothing], q)
    q = np.maximum(q, 0.0)
    peak = float(q.max())
    if not peak > 0:
        raise InputError("bubble noise: the utterance has no energy to shape the noise")
    return np.maximum(q / peak, 1e-6)


class BubbleMixer:
    """Bubble-noise mixtures of one utterance, reproducible one by one.

    `entropy`: integers that identify the utterance and seed (see the
    method); `level_db`: the unmasked noise's RMS relative to the clean
    utterance's RMS.
    """

    def __init__(self, waveform: np.ndarray, cfg: StftConfig, settings: BubbleSettings, level_db: float,
                 entropy: list[int]):
        x = validate_waveform(waveform, "bubble noise: utterance")
        if not np.isfinite(level_db):
            raise InputError(f"bubble noise: noise level must be finite, got {level_db} dB")
        self.cfg = cfg
        self.settings = settings
        self.level_db = float(level_db)
        self.entropy = [int(e) for e in entropy]
        self.n_samples = len(x)
        self.duration = self.n_samples / float(cfg.sample_rate)
        with single_threaded_torch():
            self.clean = stft(torch.as_tensor(x, dtype=torch.float32), cfg)
        self.shape = tuple(self.clean.shape)
        self.speech_rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        self.profile = speech_profile(self.clean.abs().numpy())
        self._profile_t = torch.as_tensor(self.profile[:, None], dtype=torch.float32)
        self.times = cfg.frame_times(self.shape[1])
        erb = erb_rate(cfg.frequencies())
        self.erb = erb
        nonzero = erb[erb > 0]
        lo, hi = float(nonzero.min()), float(nonzero.max())
        mid = 0.5 * (lo + hi)
        w = settings.width_erb
        self.erb_range = (min(mid, lo + 2 * w), max(mid, hi - 2 * w))

    def rng(self, j: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(int(j),)))

    def bubbles(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Centre times (s) and ERB-rates of one mixture's bubbles (always the first draws of its rng)."""
        n = self.settings.n_bubbles(self.duration)
        u = rng.random((2, n))
        lo, hi = self.erb_range
        return u[0] * self.duration, lo + u[1] * (hi - lo)

    def gain_db(self, times: np.ndarray, erbs: np.ndarray) -> np.ndarray:
        """Noise gain G(f, t) in [-depth, 0] dB for bubbles at (times, erbs)."""
        s = self.settings
        if len(times) == 0:
            return np.zeros(self.shape)
        # separable: sum_i 10^(-q_i/20) = sum_i b_i(f) a_i(t), a matrix product
        a = 10.0 ** (-(((self.times[None, :] - times[:, None]) / s.duration_s) ** 2) / 20.0)  # (n, T)
        b = 10.0 ** (-(((self.erb[:, None] - erbs[None, :]) / s.width_erb) ** 2) / 20.0)  # (F, n)
        total = b @ a
        with np.errstate(divide="ignore"):
            g = -s.depth_db - 20.0 * np.log10(total)
        return np.clip(g, -s.depth_db, 0.0)

    def audibility(self, j: int) -> np.ndarray:
        """D_j(f, t) = -G / depth in [0, 1]."""
        return self.gain_db(*self.bubbles(self.rng(j))) / -self.settings.depth_db

    def mixtures(self, indices) -> list[np.ndarray]:
        """Waveforms of mixtures `indices` (float32)."""
        with single_threaded_torch():
            return [self._mixture(j)[0] for j in indices]

    def mixture(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(waveform float32, audibility) of mixture j."""
        with single_threaded_torch():
            return self._mixture(j)

    def _mixture(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng(j)
        g = self.gain_db(*self.bubbles(rng))
        noise = rng.standard_normal(self.n_samples)
        spec = stft(torch.as_tensor(noise, dtype=torch.float32), self.cfg) * self._profile_t
        shaped = istft(spec, self.n_samples, self.cfg).numpy()
        rms = float(np.sqrt(np.mean(np.square(shaped, dtype=np.float64))))
        scale = self.speech_rms * 10.0 ** (self.level_db / 20.0) / rms
        gain = torch.as_tensor(10.0 ** (g / 20.0) * scale, dtype=torch.float32)
        y = istft(self.clean + gain * spec, self.n_samples, self.cfg).numpy().astype(np.float32)
        peak = float(np.max(np.abs(y)))
        if peak > PEAK_LIMIT:
            y *= PEAK_LIMIT / peak
        return y, g / -self.settings.depth_db

    def describe(self) -> dict:
        return {**self.settings.to_dict(), "level_db": self.level_db, "shape": "mandel-db-paraboloid",
                "erb_scale": "glasberg-moore", "profile": {"quantile": PROFILE_QUANTILE,
                                                          "smoothing": PROFILE_SMOOTHING, "source": "utterance"},
                "peak_limit": PEAK_LIMIT}
