"""Small fake models whose attributions are known, for the method tests.

`BandModel` is a differentiable classifier whose "band" logit is the STFT
magnitude summed over a frequency band, recomputed from the waveform, so the
score runs through the ISTFT front end exactly as a real model's does: a
faithful map puts its importance inside that band. `NanModel` has a finite
output and NaN gradients.
"""

from __future__ import annotations

import numpy as np
import torch

from ssbm_bench.audio import StftConfig, stft
from ssbm_bench.model import Capability, SpeechModel

CFG = StftConfig()
BAND = (100, 180)  # STFT bins (1.56 .. 2.8 kHz)


class BandModel(SpeechModel):
    name = "band"
    labels = ("rest", "band")
    capabilities = frozenset({Capability.CLASSIFY, Capability.DIFFERENTIABLE})

    def class_logits(self, waveform):
        x = torch.as_tensor(waveform, dtype=torch.float32)
        mag = stft(x, CFG).abs()
        z = mag[BAND[0]:BAND[1]].sum() / mag.shape[1]
        return torch.stack([-z, z])

    def classify(self, waveforms):
        out = []
        for w in waveforms:
            with torch.no_grad():
                z = float(self.class_logits(torch.as_tensor(w))[1])
            p = 1 / (1 + np.exp(-z))
            out.append([1 - p, p])
        return np.array(out)


class NanModel(BandModel):
    name = "nan-model"

    def class_logits(self, waveform):
        x = torch.as_tensor(waveform, dtype=torch.float32)
        z = x.sum() * 0.0 + torch.sqrt(x.abs().min() - 1.0).nan_to_num(0.0)  # finite value, NaN gradient
        return torch.stack([-z, z])
