"""The differentiable front end: scores as functions of the STFT magnitude.

Every model takes a waveform; methods attribute over the STFT magnitude by
prepending the ISTFT (with the clean phase) to the model, so that autograd
runs from the model's score back to each time-frequency point (as the ISA
paper does).
"""

from __future__ import annotations

import numpy as np
import torch

from .audio import StftConfig, istft, stft
from .model import ForcedTranscript, SpeechModel
from .types import Target


class StftFrontEnd:
    """Maps a magnitude (freq x frames) to a waveform with a fixed phase."""

    def __init__(self, waveform: np.ndarray, cfg: StftConfig = StftConfig()):
        self.cfg = cfg
        self.n_samples = len(waveform)
        spec = stft(torch.as_tensor(waveform, dtype=torch.float32), cfg)
        self.magnitude = spec.abs()
        self.phase = torch.angle(spec)

    def waveform(self, magnitude: torch.Tensor) -> torch.Tensor:
        return istft(torch.polar(magnitude, self.phase.to(magnitude.dtype)), self.n_samples, self.cfg)


def score_from_magnitude(model: SpeechModel, front: StftFrontEnd, magnitude: torch.Tensor, target: Target,
                         transcript: ForcedTranscript | None = None) -> torch.Tensor:
    """The model's target score as a differentiable function of the magnitude."""
    return model.target_score(front.waveform(magnitude), target, transcript)
