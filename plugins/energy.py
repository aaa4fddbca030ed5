"""The SSBM paper's energy baseline: smoothed speech energy inside the word's frames.

A time-frequency point is important for word w when the smoothed energy of
the clean utterance there is high and it lies between w's start and end
frames (the SSBM paper, Trinh & Mandel, "Large scale evaluation of
importance maps in automatic speech recognition", sec. 2.1):

1. pre-emphasis y[n] = x[n] - 0.97 x[n-1] on the waveform;
2. power spectrogram |STFT(y)|^2 on the benchmark's grid (ssbm_bench.audio);
3. 30-band mel smoothing: project the linear-frequency power onto 30 HTK
   triangular mel filters (torchaudio.functional.melscale_fbanks, 0 Hz to
   Nyquist) and back to linear frequency with the *normalised transposed
   filterbank* (see :func:`mel_smooth`), not the pseudo-inverse: the
   pseudo-inverse of a 30 x 513 filterbank rings and goes negative between
   band centres, whereas the normalised transpose is a non-negative
   interpolation of band energies that leaves a flat spectrum unchanged;
4. amplitude = sqrt(smoothed power), scaled so that the utterance's
   smoothed maximum (over all frames, not just the word's) is 1.0 = 0 dB;
5. zero outside the word's frames (StftConfig.frame_span).

Scale: the paper thresholds absolute magnitudes of its Kaldi front end
(t = 10^(0.05 t_dB), t_dB from -80 to 20), a scale we cannot reproduce.
Normalising to the utterance's peak makes the same grid mean "dB below the
utterance's loudest smoothed point", independent of recording level:
thresholds above 0 dB mark nothing, -80 dB marks nearly the whole word.
"""

from __future__ import annotations

import numpy as np
import torch

from ssbm_bench.audio import StftConfig, stft
from ssbm_bench.errors import InputError
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.method import ExplainRequest, SaliencyMethod
from ssbm_bench.records import MethodPlugin
from ssbm_bench.types import SaliencyMap

PREEMPHASIS = 0.97
N_MELS = 30


def preemphasise(waveform: np.ndarray, coefficient: float = PREEMPHASIS) -> np.ndarray:
    """y[n] = x[n] - c x[n-1], y[0] = x[0]."""
    x = np.asarray(waveform, dtype=np.float64)
    y = x.copy()
    y[1:] -= coefficient * x[:-1]
    return y


def mel_back_projection(cfg: StftConfig, n_mels: int = N_MELS) -> tuple[np.ndarray, np.ndarray]:
    """(fb, back): fb (n_freq x n_mels) projects power to mel bands, back (n_freq x n_mels) returns.

    back[f, b] = fb[f, b] / sum_b' fb[f, b'], the transposed filterbank
    normalised per linear bin, applied to the *mean* power per bin of each
    band (band energy / band weight). For triangular filters that overlap at
    their neighbours' centres this is linear interpolation between band
    centres, and constant (nearest band) outside the first and last centre.
    Bins that no filter covers (0 Hz and Nyquist, where the outer triangles
    reach zero) take the weights of the nearest covered bin.
    """
    import torchaudio.functional as AF

    fb = AF.melscale_fbanks(
        n_freqs=cfg.n_freq, f_min=0.0, f_max=cfg.sample_rate / 2.0, n_mels=n_mels,
        sample_rate=cfg.sample_rate, norm=None, mel_scale="htk",
    ).numpy().astype(np.float64)
    row = fb.sum(axis=1)
    covered = np.nonzero(row > 0)[0]
    if covered.size == 0:
        raise InputError(f"energy: no mel filter covers the STFT grid ({cfg.n_freq} bins, {n_mels} bands)")
    back = np.zeros_like(fb)
    back[covered] = fb[covered] / row[covered, None]
    for f in np.nonzero(row <= 0)[0]:
        back[f] = back[covered[np.argmin(np.abs(covered - f))]]
    return fb, back


def mel_smooth(power: np.ndarray, cfg: StftConfig, n_mels: int = N_MELS) -> np.ndarray:
    """Linear power (n_freq x T) -> 30 mel bands -> linear power again, non-negative."""
    fb, back = mel_back_projection(cfg, n_mels)
    band_weight = fb.sum(axis=0)  # > 0 for every band on the default grid
    band_weight = np.where(band_weight > 0, band_weight, 1.0)
    band_mean = (fb.T @ power) / band_weight[:, None]  # mean power per bin in each band
    return back @ band_mean


class EnergyMethod(SaliencyMethod):
    """Smoothed energy of the clean utterance in the target word's frames (paper's baseline)."""

    name = "energy"
    version = "1"
    map_kind = "magnitude"
    requires = frozenset()
    target_kinds = frozenset({"word"})

    def __init__(self, preemphasis: float = PREEMPHASIS, n_mels: int = N_MELS):
        if not 0.0 <= float(preemphasis) < 1.0:
            raise InputError(f"energy: preemphasis must be in [0, 1), got {preemphasis}")
        if int(n_mels) < 1:
            raise InputError(f"energy: n_mels must be at least 1, got {n_mels}")
        self.preemphasis = float(preemphasis)
        self.n_mels = int(n_mels)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "preemphasis": self.preemphasis, "n_mels": self.n_mels}

    def explain(self, request: ExplainRequest) -> SaliencyMap:
        utt, target, cfg = request.utterance, request.target, request.cfg
        if target.kind != "word":
            raise InputError(f"energy: explains words of a transcript, got a {target.kind!r} target ({target.key})")
        if not 0 <= target.index < len(utt.words):
            raise InputError(
                f"energy: target word index {target.index} is outside utterance {utt.id!r} "
                f"with {len(utt.words)} words"
            )
        if utt.sample_rate != cfg.sample_rate:
            raise InputError(
                f"energy: utterance {utt.id!r} is at {utt.sample_rate} Hz but the STFT grid expects "
                f"{cfg.sample_rate} Hz; resample it first"
            )
        y = preemphasise(utt.waveform, self.preemphasis)
        power = stft(torch.as_tensor(y, dtype=torch.float64), cfg).abs().numpy() ** 2
        amplitude = np.sqrt(np.maximum(mel_smooth(power, cfg, self.n_mels), 0.0))
        peak = float(amplitude.max())
        if not peak > 0:
            raise InputError(f"energy: utterance {utt.id!r} has no energy after pre-emphasis")
        amplitude /= peak
        word = utt.words[target.index]
        start, end = cfg.frame_span(word.start, word.end, amplitude.shape[1])
        values = np.zeros_like(amplitude)
        values[:, start:end] = amplitude[:, start:end]
        return SaliencyMap(
            values,
            kind="magnitude",
            space="stft",
            params={
                "preemphasis": self.preemphasis,
                "n_mels": self.n_mels,
                "back_projection": "normalised-transposed-filterbank",
                "scale": "utterance smoothed peak = 1.0 (0 dB)",
                "peak_amplitude": peak,
                "frames": [start, end],
                "word": word.text,
            },
        )


@hookimpl
def register_methods(register):
    register(
        MethodPlugin.of(
            EnergyMethod,
            description="SSBM paper's baseline: pre-emphasised, 30-band mel-smoothed energy in the word's frames "
            "(dB below the utterance's peak)",
        )
    )
