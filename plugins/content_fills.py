"""The SoundLIME paper's content types as fills, plus silence.

A replacing fill puts content C (a magnitude) where a region is occluded and
keeps the clean phase, as the ISTFT front end does: for weight w in [0, 1],

    out = polar(|X| (1 - w) + C w, angle(X))

so w = 1 replaces the point's magnitude by C and w = 0 leaves it alone
(SSBM's continuous masks blend the two).

* ``zero``: C = 0 in the feature space.
* ``silence``: C = |STFT(digital silence)|, the waveform baseline converted
  into the feature space. On the STFT magnitude it equals ``zero``; it is a
  separate fill because the two differ in any other feature space (a log
  spectrogram's zero is not silence) and because it is the ISA paper's and
  Integrated Gradients' baseline.
* ``min_inp``: C = the minimum bin magnitude of the input.
* ``mean_inp``: C = the mean bin magnitude of the input (the paper's best
  content type for temporal explanations).
* ``min_data``: C = the minimum bin magnitude across the corpus
  (:mod:`ssbm_bench.corpus_stats`, computed once per corpus and stored).
* ``gauss_norm``: Gaussian noise standardised per frequency band with the
  corpus's statistics: C[f, t] = exp(m_f + s_f z[f, t]) with z standard
  normal from the context's generator, m_f, s_f the mean and standard
  deviation of the log magnitude in bin f over the corpus (log domain so the
  content stays positive; see corpus_stats). z is drawn for every point,
  even where w = 0, so the generator's state does not depend on the mask.
"""

from __future__ import annotations

import numpy as np
import torch

from ssbm_bench.corpus_stats import LOG_FLOOR, CorpusStats
from ssbm_bench.errors import InputError
from ssbm_bench.fill import Fill, FillContext, UsesCorpusStats
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import FillPlugin


def checked_weight(name: str, clean: torch.Tensor, weight) -> np.ndarray:
    if not torch.is_complex(clean) or clean.ndim != 2:
        raise InputError(f"{name}: expected a complex (frequency x time) STFT, got {tuple(clean.shape)} {clean.dtype}")
    w = np.asarray(weight, dtype=np.float64)
    try:
        w = np.array(np.broadcast_to(w, tuple(clean.shape)))
    except ValueError as exc:
        raise InputError(f"{name}: weight of shape {w.shape} does not fit the STFT's {tuple(clean.shape)}") from exc
    if not np.all(np.isfinite(w)) or w.min(initial=0.0) < 0.0 or w.max(initial=0.0) > 1.0:
        raise InputError(f"{name}: weights must be finite and in [0, 1]")
    return w


class ReplacingFill(Fill):
    additive = False

    def content(self, magnitude: np.ndarray, ctx: FillContext) -> np.ndarray | float:
        """The magnitude put where the weight is 1 (scalar or freq x time)."""
        raise NotImplementedError

    def apply(self, clean: torch.Tensor, weight, ctx: FillContext) -> torch.Tensor:
        w = checked_weight(self.name, clean, weight)
        mag = clean.abs()
        c = self.content(mag.detach().cpu().double().numpy(), ctx)
        real = mag.dtype
        wt = torch.as_tensor(w, dtype=real, device=clean.device)
        ct = torch.as_tensor(np.broadcast_to(np.asarray(c, np.float64), tuple(clean.shape)).copy(), dtype=real,
                             device=clean.device)
        return torch.polar(mag * (1.0 - wt) + ct * wt, torch.angle(clean))

    def describe(self) -> dict:
        return {"name": self.name, "additive": False}


class ZeroFill(ReplacingFill):
    name = "zero"

    def content(self, magnitude, ctx):
        return 0.0


class SilenceFill(ReplacingFill):
    name = "silence"

    def content(self, magnitude, ctx):
        from ssbm_bench.audio import stft

        return stft(torch.zeros(int(ctx.n_samples), dtype=torch.float64), ctx.cfg).abs().numpy()


class MinInputFill(ReplacingFill):
    name = "min_inp"

    def content(self, magnitude, ctx):
        return float(magnitude.min())


class MeanInputFill(ReplacingFill):
    name = "mean_inp"

    def content(self, magnitude, ctx):
        return float(magnitude.mean())


class CorpusFill(ReplacingFill, UsesCorpusStats):
    def __init__(self):
        self.stats: CorpusStats | None = None

    def use_corpus_stats(self, stats: CorpusStats) -> None:
        self.stats = stats

    def _stats(self, n_freq: int) -> CorpusStats:
        if self.stats is None:
            raise InputError(f"fill {self.name!r} needs the corpus's statistics (ssbm_bench.corpus_stats), and none "
                             f"were given: call use_corpus_stats first (the harness does)")
        if self.stats.min_magnitude.shape[0] != n_freq:
            raise InputError(f"fill {self.name!r}: corpus statistics have {self.stats.min_magnitude.shape[0]} "
                             f"frequency bins, the STFT has {n_freq}")
        return self.stats

    def describe(self) -> dict:
        d = {"name": self.name, "additive": False}
        if self.stats is not None:
            d["corpus_digest"] = self.stats.corpus_digest
        return d


class MinDataFill(CorpusFill):
    name = "min_data"

    def content(self, magnitude, ctx):
        return self._stats(magnitude.shape[0]).global_min


class GaussNormFill(CorpusFill):
    name = "gauss_norm"

    def content(self, magnitude, ctx):
        s = self._stats(magnitude.shape[0])
        z = ctx.rng.standard_normal(magnitude.shape)
        return np.maximum(np.exp(s.log_mean[:, None] + s.log_std[:, None] * z) - LOG_FLOOR, 0.0)


#: fill name -> (class, description)
FILLS = {cls.name: (cls, description) for cls, description in (
    (ZeroFill, "zero magnitude where occluded (SoundLIME content type 'zero')"),
    (SilenceFill, "|STFT| of digital silence where occluded (the waveform baseline)"),
    (MinInputFill, "the input's minimum bin magnitude where occluded (SoundLIME min_inp)"),
    (MeanInputFill, "the input's mean bin magnitude where occluded (SoundLIME mean_inp)"),
    (MinDataFill, "the corpus's minimum bin magnitude where occluded (SoundLIME min_data; "
                  "corpus statistics computed once and stored)"),
    (GaussNormFill, "Gaussian noise standardised per frequency bin with corpus statistics "
                    "(SoundLIME N_g^norm; log domain)"),
)}


@hookimpl
def register_fills(register):
    for cls, description in FILLS.values():
        register(FillPlugin.of(cls, description=description))
