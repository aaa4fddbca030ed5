"""Gradient methods through captum: `saliency` (SalASR) and `integrated-gradients`.

Both attribute the model's differentiable target score over the clean STFT
magnitude (ISTFT with the clean phase prepended to the model, see
:mod:`ssbm_bench.attribution`):

* ``saliency``: captum's ``Saliency``, the gradient of the score. For ASR the
  score is the sum of the target word's token log-probabilities under
  teacher forcing against the model's own clean transcript; with
  ``scope = "transcript"`` it is the sum over every token of the
  transcript, which is the SalASR poster's "sum of gradients from each token
  in the transcription" (the gradient of a sum is the sum of gradients).
  The map is the gradient's magnitude by default (``sign = "abs"``,
  captum's default), as SalASR ranks points by it. ``feature =
  "log-magnitude"`` takes the gradient w.r.t. the log magnitude instead
  (|X| times the linear gradient), closer to SalASR's gradient w.r.t.
  Whisper's log-mel input; over the linear magnitude the log's 1/|X| factor
  ranks the quietest points highest (see ssbm_bench.attribution).
* ``integrated-gradients``: captum's ``IntegratedGradients`` from a baseline
  of digital silence converted into the feature space (|STFT(zeros)|, all
  zero; ln(1e-6) with ``feature = "log-magnitude"``), ``n_steps`` points of ``method`` (Gauss-Legendre by default),
  evaluated ``internal_batch_size`` at a time so that memory stays bounded
  whatever ``n_steps`` is. ``baseline = "fill"`` uses the cell's fill
  instead. The convergence delta (completeness gap: score(x) -
  score(baseline) - sum of attributions) is recorded with the map, absolute
  and relative to score(x) - score(baseline); 16 steps from a constant
  baseline left a large gap on Whisper tiny.en, so the default is 32 and
  the gap is always reported.
"""

from __future__ import annotations

from ssbm_bench.attribution import AttributionMethod, check_choice, check_positive_int
from ssbm_bench.feature_spaces import FeatureSpace
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import MethodPlugin

IG_METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


class SaliencyGradient(AttributionMethod):
    """Gradient of the target score w.r.t. the STFT magnitude (captum Saliency)."""

    name = "saliency"
    version = "1"
    default_sign = "abs"

    def attribute(self, space: FeatureSpace, request):
        from captum.attr import Saliency

        x = space.inputs(requires_grad=True)
        # abs=False: the sign is applied afterwards (self.sign), so that "signed" is possible too
        grad = Saliency(space.forward).attribute(x, abs=False)
        return grad, {}


class IntegratedGradientsMethod(AttributionMethod):
    """Integrated Gradients from silence (captum IntegratedGradients)."""

    name = "integrated-gradients"
    version = "1"

    def __init__(self, n_steps: int = 32, internal_batch_size: int = 4, method: str = "gausslegendre",
                 baseline: str = "silence", scope: str = "word", sign: str | None = None,
                 feature: str = "magnitude"):
        super().__init__(scope=scope, sign=sign, feature=feature)
        self.n_steps = check_positive_int("n_steps", n_steps, self.name, minimum=2)
        self.internal_batch_size = check_positive_int("internal_batch_size", internal_batch_size, self.name)
        self.method = check_choice("method", method, IG_METHODS, self.name)
        self.baseline = check_choice("baseline", baseline, ("silence", "fill"), self.name)

    def settings(self) -> dict:
        return {**super().settings(), "n_steps": self.n_steps, "internal_batch_size": self.internal_batch_size,
                "method": self.method, "baseline": self.baseline}

    def attribute(self, space: FeatureSpace, request):
        from captum.attr import IntegratedGradients

        base = space.silence() if self.baseline == "silence" else space.fill_content(request.fill, request.seed)
        x = space.inputs(requires_grad=True)
        ig = IntegratedGradients(space.forward)
        attr, delta = ig.attribute(x, baselines=base, n_steps=self.n_steps, method=self.method,
                                   internal_batch_size=self.internal_batch_size, return_convergence_delta=True)
        d = float(delta.reshape(-1)[0])
        # captum's delta = sum(attr) - (score(x) - score(baseline)): the span without two more model calls
        span = float(attr.detach().double().sum()) - d
        return attr, {"convergence_delta": d, "score_difference": span,
                      "relative_delta": abs(d) / abs(span) if span else None}


@hookimpl
def register_methods(register):
    register(MethodPlugin.of(
        SaliencyGradient,
        description="SalASR gradient saliency (captum Saliency) over the STFT magnitude; scope=word|transcript, "
                    "feature=magnitude|log-magnitude",
    ))
    register(MethodPlugin.of(
        IntegratedGradientsMethod,
        description="Integrated Gradients (captum) from silence over the STFT magnitude; n_steps, "
                    "internal_batch_size; convergence delta recorded",
    ))
