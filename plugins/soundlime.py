"""SoundLIME: `soundlime-temporal`, `soundlime-spectral`, `soundlime-tf`.

SoundLIME (the SoundLIME paper: Mishra et al., "Reliable Local Explanations
for Machine Listening", sec. II) splits
the input into N_c interpretable components along time, frequency or both,
draws N_s random binary samples (which components stay "on"), replaces the
"off" components with synthetic content (the cell's fill: zero, min_data,
min_inp, mean_inp, gauss_norm, ...), and fits a locally weighted linear
model to the model's outputs. The explanation is the weight per component;
the top-3 components by |weight| are recorded with the map.

Here: captum's ``Lime`` with a feature mask whose ids are the components
(:func:`components`), LIME's exponential kernel on the binary vector and a
weighted ridge model (:mod:`ssbm_bench.attribution`). Components:

* temporal: ``n_components`` (N_c, default 10) equal runs of frames;
* spectral: ``n_components`` bands equally wide on the mel scale (the paper
  splits a mel spectrogram into equal bands; on the linear STFT grid, equal
  mel widths give the same split);
* time-frequency: ``n_time`` x ``n_freq`` components (default 5 x 2 = 10,
  so that U_n keeps the paper's range), indexed time-major:
  ``c = t * n_freq + f``.

The map is each component's weight broadcast over its points of the STFT
grid (kind "score"); ``params`` carry ``weights``, ``top3`` and
``component_edges`` so that stability (U_n) and fill agreement (N_ce) can be
computed from stored results without re-running. N_s defaults to 500 (the
paper used up to 70000 on a cheap model; set ``n_samples``).
"""

from __future__ import annotations

import numpy as np
import torch

from ssbm_bench.attribution import AttributionMethod, check_positive_int
from ssbm_bench.errors import InputError
from ssbm_bench.feature_spaces import MagnitudeSpace
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import MethodPlugin

from .captum_perturbation import run_lime

TOP_K = 3


def equal_edges(n: int, parts: int) -> np.ndarray:
    """parts + 1 integer edges splitting range(n) into runs as equal as possible."""
    return np.round(np.linspace(0, n, parts + 1)).astype(int)


def mel_edges(n_freq: int, parts: int, sample_rate: int) -> np.ndarray:
    """Edges (in STFT bins) of `parts` bands of equal width on the HTK mel scale."""
    nyquist = sample_rate / 2.0
    mel_max = 2595.0 * np.log10(1.0 + nyquist / 700.0)
    hz = 700.0 * (10.0 ** (np.linspace(0.0, mel_max, parts + 1) / 2595.0) - 1.0)
    edges = np.round(hz / nyquist * (n_freq - 1)).astype(int)
    edges[0], edges[-1] = 0, n_freq
    # low bands can be narrower than one bin: keep every band at least one bin wide
    for i in range(1, parts + 1):
        edges[i] = max(edges[i], edges[i - 1] + 1)
    if edges[-1] > n_freq:
        raise InputError(f"soundlime: {parts} spectral components do not fit {n_freq} frequency bins")
    return edges


def components(kind: str, n_freq: int, n_frames: int, n_components: int = 10, n_time: int = 5, n_freq_parts: int = 2,
               sample_rate: int = 16000) -> tuple[np.ndarray, dict]:
    """(n_freq, n_frames) integer component ids for `kind`, plus the edges."""
    if kind == "temporal":
        if n_components > n_frames:
            raise InputError(f"soundlime: {n_components} temporal components need at least as many frames, "
                             f"the input has {n_frames}")
        t_edges = equal_edges(n_frames, n_components)
        ids = np.repeat(np.searchsorted(t_edges, np.arange(n_frames), side="right")[None, :] - 1, n_freq, axis=0)
        return ids, {"time": t_edges.tolist()}
    if kind == "spectral":
        f_edges = mel_edges(n_freq, n_components, sample_rate)
        ids = np.repeat(np.searchsorted(f_edges, np.arange(n_freq), side="right")[:, None] - 1, n_frames, axis=1)
        return ids, {"freq": f_edges.tolist()}
    if kind == "tf":
        if n_time > n_frames:
            raise InputError(f"soundlime: {n_time} time segments need at least as many frames, the input has "
                             f"{n_frames}")
        t_edges = equal_edges(n_frames, n_time)
        f_edges = mel_edges(n_freq, n_freq_parts, sample_rate)
        t = np.searchsorted(t_edges, np.arange(n_frames), side="right") - 1
        f = np.searchsorted(f_edges, np.arange(n_freq), side="right") - 1
        return t[None, :] * n_freq_parts + f[:, None], {"time": t_edges.tolist(), "freq": f_edges.tolist()}
    raise InputError(f"soundlime: component kind must be temporal, spectral or tf, got {kind!r}")


def top_components(weights: np.ndarray, k: int = TOP_K) -> list[int]:
    """Indices of the k largest |weight|, largest first (ties: lower index first)."""
    w = np.abs(np.asarray(weights, dtype=np.float64))
    return [int(i) for i in np.lexsort((np.arange(len(w)), -w))[:k]]


class SoundLime(AttributionMethod):
    kind = "temporal"
    version = "1"
    default_sign = "signed"

    def __init__(self, n_samples: int = 500, n_components: int = 10, n_time: int = 5, n_freq: int = 2,
                 kernel_width: float = 0.25, alpha: float = 1.0, perturbations_per_eval: int = 1,
                 scope: str = "word", sign: str | None = None):
        super().__init__(scope=scope, sign=sign)
        self.n_samples = check_positive_int("n_samples", n_samples, self.name, minimum=2)
        self.n_components = check_positive_int("n_components", n_components, self.name, minimum=2)
        self.n_time = check_positive_int("n_time", n_time, self.name)
        self.n_freq = check_positive_int("n_freq", n_freq, self.name)
        if self.kind == "tf" and self.n_time * self.n_freq < 2:
            raise InputError(f"{self.name}: n_time x n_freq must give at least 2 components")
        if not float(kernel_width) > 0 or not float(alpha) >= 0:
            raise InputError(f"{self.name}: kernel_width must be > 0 and alpha >= 0, got {kernel_width}, {alpha}")
        self.kernel_width = float(kernel_width)
        self.alpha = float(alpha)
        self.perturbations_per_eval = check_positive_int("perturbations_per_eval", perturbations_per_eval, self.name)

    def settings(self) -> dict:
        base = {**super().settings(), "n_samples": self.n_samples, "kernel_width": self.kernel_width,
                "alpha": self.alpha, "perturbations_per_eval": self.perturbations_per_eval}
        if self.kind == "tf":
            return {**base, "n_time": self.n_time, "n_freq": self.n_freq}
        return {**base, "n_components": self.n_components}

    def attribute(self, space: MagnitudeSpace, request):
        ids, edges = components(self.kind, *space.shape, n_components=self.n_components, n_time=self.n_time,
                                n_freq_parts=self.n_freq, sample_rate=request.cfg.sample_rate)
        mask = torch.as_tensor(ids, dtype=torch.long).unsqueeze(0)
        weights = run_lime(space, request, mask, self.n_samples, self.kernel_width, self.alpha,
                           self.perturbations_per_eval, return_input_shape=False)
        w = weights.detach().double().reshape(-1).numpy()
        n = int(ids.max()) + 1
        if w.shape[0] != n:
            raise InputError(f"{self.name}: captum returned {w.shape[0]} weights for {n} components")
        grid = torch.as_tensor(w[ids]).unsqueeze(0)
        finite = np.isfinite(w)
        return grid, {"components": self.kind, "n_components_total": n, "component_edges": edges,
                      "weights": [float(x) if np.isfinite(x) else None for x in w],
                      "top3": top_components(np.where(finite, w, 0.0)) if finite.all() else None}


class SoundLimeTemporal(SoundLime):
    name = "soundlime-temporal"
    kind = "temporal"


class SoundLimeSpectral(SoundLime):
    name = "soundlime-spectral"
    kind = "spectral"


class SoundLimeTf(SoundLime):
    name = "soundlime-tf"
    kind = "tf"


@hookimpl
def register_methods(register):
    for cls, what in ((SoundLimeTemporal, "N_c equal time segments"),
                      (SoundLimeSpectral, "N_c mel-equal frequency bands"),
                      (SoundLimeTf, "n_time x n_freq time-frequency blocks")):
        register(MethodPlugin.of(
            cls,
            description=f"SoundLIME over {what}; N_s samples, off components replaced by the fill; "
                        "component weights and top-3 recorded",
        ))
