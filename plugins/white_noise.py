"""White Gaussian noise added under a mask: SSBM's noisy mixture.

mixture = clean STFT + weight * STFT(n), where n is white Gaussian noise of
the utterance's length, drawn from ``ctx.rng`` and scaled so that its RMS is
``ctx.level_db`` dB relative to the clean utterance's RMS (the level the
harness calibrates per model so a fully masked utterance is unrecognisable).
The noise is scaled by its own drawn RMS, not the expected one, so the
level is exact for every draw.

The noise is always drawn, even for an all-zero weight, so that the state of
``ctx.rng`` after a call does not depend on the mask.
"""

from __future__ import annotations

import numpy as np
import torch

from ssbm_bench.audio import istft, stft
from ssbm_bench.errors import InputError
from ssbm_bench.fill import Fill, FillContext
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import FillPlugin


def _rms(x: torch.Tensor | np.ndarray) -> float:
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    return float(np.sqrt(np.mean(a**2)))


class WhiteNoiseFill(Fill):
    """Additive white noise at a level relative to the clean speech."""

    name = "white-noise"
    additive = True

    def reference_rms(self, clean: torch.Tensor, ctx: FillContext) -> float:
        """The clean utterance's RMS: ``ctx.reference_rms`` or the RMS of ISTFT(clean)."""
        if ctx.reference_rms is not None:
            ref = float(ctx.reference_rms)
        else:
            ref = _rms(istft(clean.detach(), ctx.n_samples, ctx.cfg))
        if not (np.isfinite(ref) and ref > 0):
            raise InputError(f"white-noise: the clean utterance's RMS must be positive and finite, got {ref}")
        return ref

    def apply(self, clean: torch.Tensor, weight: np.ndarray, ctx: FillContext) -> torch.Tensor:
        if not torch.is_complex(clean) or clean.ndim != 2:
            raise InputError(
                f"white-noise: expected a complex (frequency x time) STFT, got {tuple(clean.shape)} {clean.dtype}"
            )
        w = np.asarray(weight, dtype=np.float64)
        try:
            w = np.array(np.broadcast_to(w, tuple(clean.shape)))  # a writable copy for torch
        except ValueError as exc:
            raise InputError(
                f"white-noise: weight of shape {w.shape} does not fit the STFT's {tuple(clean.shape)}"
            ) from exc
        if not np.all(np.isfinite(w)) or w.min(initial=0.0) < 0.0 or w.max(initial=0.0) > 1.0:
            raise InputError("white-noise: weights must be finite and in [0, 1]")
        if int(ctx.n_samples) <= 0:
            raise InputError(f"white-noise: n_samples must be positive, got {ctx.n_samples}")
        if not np.isfinite(ctx.level_db):
            raise InputError(f"white-noise: level must be finite, got {ctx.level_db} dB")

        target_rms = self.reference_rms(clean, ctx) * 10.0 ** (float(ctx.level_db) / 20.0)
        noise = ctx.rng.standard_normal(int(ctx.n_samples))
        noise *= target_rms / _rms(noise)
        real = clean.real.dtype
        noise_spec = stft(torch.as_tensor(noise, dtype=real, device=clean.device), ctx.cfg)
        if noise_spec.shape != clean.shape:
            raise InputError(
                f"white-noise: {ctx.n_samples} samples give an STFT of {tuple(noise_spec.shape)}, but the clean "
                f"STFT is {tuple(clean.shape)} (n_samples or the STFT config do not match)"
            )
        return clean + torch.as_tensor(w, dtype=real, device=clean.device) * noise_spec

    def describe(self) -> dict:
        return {"name": self.name, "additive": True}


@hookimpl
def register_fills(register):
    register(
        FillPlugin.of(
            WhiteNoiseFill,
            description="white Gaussian noise at a level (dB re the clean RMS) added under the mask (SSBM)",
        )
    )
