"""Perturbation methods through captum: `feature-ablation`, `occlusion`, `lime`.

All three perturb the clean STFT magnitude over time-frequency patches and
score the model's target (no gradient needed, but the target score is the
model's differentiable one, so they require ``differentiable``):

* ``feature-ablation``: captum's ``FeatureAblation`` with a feature mask of
  non-overlapping patches of ``patch_freq`` bins x ``patch_frames`` frames;
  a patch's attribution = score(clean) - score(patch replaced).
* ``occlusion``: captum's ``Occlusion``, a sliding window of the same patch
  size moved by ``stride_freq`` x ``stride_frames`` (overlapping windows by
  default, half a patch); a point's attribution is the mean over the windows
  that cover it.
* ``lime``: captum's ``Lime`` over the same patches as interpretable
  features, ``n_samples`` random on/off draws (Bernoulli 0.5), LIME's
  exponential kernel on the interpretable vector (``kernel_width``) and a
  weighted ridge model (``alpha``); seeded by the cell's seed.

``segments = "words"`` (feature-ablation and lime) perturbs word-aligned
segments instead of patches (the ISA paper's word-level perturbation): each
word's frames are one feature, the frames outside words one more.

``feature`` (feature-ablation and lime) picks the input type: the STFT
magnitude (default) or its log, the ``waveform`` (a patch is a time span of
``patch_frames`` STFT hops; the ISA paper grouped samples into 10 ms spans)
or the model's ``embedding`` (blocks of the same duration and the same share
of the feature axis). Occlusion's sliding window is time-frequency only.

What replaces a patch comes from the cell's fill (captum's ``baselines``):
|fill(clean STFT, weight 1)|, drawn once per explanation from the cell's
seed for random fills; with no fill, digital silence. Patch sizes, steps,
samples and seeds are recorded with every map.
"""

from __future__ import annotations

import torch

from ssbm_bench.attribution import (AttributionMethod, check_choice, check_positive_int, interpretable_kernel,
                                    ridge_model, seeded)
from ssbm_bench.errors import InputError
from ssbm_bench.feature_projections import patch_mask, word_mask
from ssbm_bench.feature_spaces import STFT_FEATURES, FeatureSpace, MagnitudeSpace
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import MethodPlugin

#: the mask builders live in ssbm_bench.feature_spaces; re-exported for code that imports them from here
__all__ = ["FeatureAblationMethod", "OcclusionMethod", "LimeMethod", "run_lime", "patch_mask", "word_mask"]


class PatchMethod(AttributionMethod):
    default_sign = "signed"

    def __init__(self, patch_freq: int = 64, patch_frames: int = 8, perturbations_per_eval: int = 1,
                 scope: str = "word", sign: str | None = None, segments: str = "patches",
                 feature: str = "magnitude"):
        super().__init__(scope=scope, sign=sign, feature=feature)
        if segments not in ("patches", "words"):
            raise InputError(f"{self.name}: segments must be 'patches' or 'words' (word-aligned perturbation), "
                             f"got {segments!r}")
        self.segments = segments
        self.patch_freq = check_positive_int("patch_freq", patch_freq, self.name)
        self.patch_frames = check_positive_int("patch_frames", patch_frames, self.name)
        self.perturbations_per_eval = check_positive_int("perturbations_per_eval", perturbations_per_eval, self.name)

    def settings(self) -> dict:
        return {**super().settings(), "patch_freq": self.patch_freq, "patch_frames": self.patch_frames,
                "perturbations_per_eval": self.perturbations_per_eval, "segments": self.segments}

    def mask(self, space) -> torch.Tensor:
        """The feature mask in `space`'s own shape (patches, or word-aligned segments)."""
        if self.segments == "words":
            utt = space.request.utterance
            if not utt.words:
                raise InputError(f"{self.name}: word-aligned perturbation needs word times, and utterance "
                                 f"{utt.id!r} has none")
            return space.word_mask(utt.words)
        return space.patch_mask(self.patch_freq, self.patch_frames)


class FeatureAblationMethod(PatchMethod):
    """Score drop when each time-frequency patch is replaced by the fill."""

    name = "feature-ablation"
    version = "1"

    def attribute(self, space: FeatureSpace, request):
        from captum.attr import FeatureAblation

        mask = self.mask(space)
        with torch.no_grad():
            attr = FeatureAblation(space.forward).attribute(
                space.inputs(), baselines=space.fill_content(request.fill, request.seed), feature_mask=mask,
                perturbations_per_eval=self.perturbations_per_eval)
        return attr, {"n_patches": int(mask.max()) + 1}


class OcclusionMethod(PatchMethod):
    """Sliding-window occlusion (captum Occlusion) with the fill as content."""

    name = "occlusion"
    version = "1"

    def __init__(self, patch_freq: int = 64, patch_frames: int = 8, stride_freq: int | None = None,
                 stride_frames: int | None = None, perturbations_per_eval: int = 1, scope: str = "word",
                 sign: str | None = None, feature: str = "magnitude"):
        # a sliding window is defined on the time-frequency grid only
        super().__init__(patch_freq, patch_frames, perturbations_per_eval, scope, sign,
                         feature=check_choice("feature", feature, STFT_FEATURES, "occlusion"))
        self.stride_freq = check_positive_int("stride_freq", stride_freq or max(1, self.patch_freq // 2), self.name)
        self.stride_frames = check_positive_int("stride_frames", stride_frames or max(1, self.patch_frames // 2),
                                                self.name)

    def settings(self) -> dict:
        return {**super().settings(), "stride_freq": self.stride_freq, "stride_frames": self.stride_frames}

    def attribute(self, space: MagnitudeSpace, request):
        from captum.attr import Occlusion

        n_freq, n_frames = space.shape
        if self.patch_freq > n_freq or self.patch_frames > n_frames:
            raise InputError(f"occlusion: a {self.patch_freq} x {self.patch_frames} window does not fit the "
                             f"{n_freq} x {n_frames} STFT of utterance {request.utterance.id!r}")
        with torch.no_grad():
            attr = Occlusion(space.forward).attribute(
                space.inputs(), sliding_window_shapes=(self.patch_freq, self.patch_frames),
                strides=(self.stride_freq, self.stride_frames),
                baselines=space.fill_content(request.fill, request.seed),
                perturbations_per_eval=self.perturbations_per_eval)
        windows = (1 + (n_freq - self.patch_freq) // self.stride_freq) * \
                  (1 + (n_frames - self.patch_frames) // self.stride_frames)
        return attr, {"n_windows": int(windows)}


class LimeMethod(PatchMethod):
    """LIME (captum Lime) over time-frequency patches."""

    name = "lime"
    version = "1"

    def __init__(self, n_samples: int = 200, patch_freq: int = 64, patch_frames: int = 8,
                 kernel_width: float = 0.25, alpha: float = 1.0, perturbations_per_eval: int = 1,
                 scope: str = "word", sign: str | None = None, segments: str = "patches",
                 feature: str = "magnitude"):
        super().__init__(patch_freq, patch_frames, perturbations_per_eval, scope, sign, segments, feature)
        self.n_samples = check_positive_int("n_samples", n_samples, self.name, minimum=2)
        if not float(kernel_width) > 0 or not float(alpha) >= 0:
            raise InputError(f"lime: kernel_width must be > 0 and alpha >= 0, got {kernel_width}, {alpha}")
        self.kernel_width = float(kernel_width)
        self.alpha = float(alpha)

    def settings(self) -> dict:
        return {**super().settings(), "n_samples": self.n_samples, "kernel_width": self.kernel_width,
                "alpha": self.alpha}

    def attribute(self, space: FeatureSpace, request):
        mask = self.mask(space)
        attr = run_lime(space, request, mask, self.n_samples, self.kernel_width, self.alpha,
                        self.perturbations_per_eval)
        return attr, {"n_patches": int(mask.max()) + 1}


def run_lime(space: FeatureSpace, request, mask: torch.Tensor, n_samples: int, kernel_width: float, alpha: float,
             perturbations_per_eval: int = 1, return_input_shape: bool = True) -> torch.Tensor:
    """captum Lime over `mask`'s components, seeded by the request's seed."""
    from captum.attr import Lime

    lime = Lime(space.forward, interpretable_model=ridge_model(alpha),
                similarity_func=interpretable_kernel(kernel_width))
    with torch.no_grad(), seeded(request.seed):
        return lime.attribute(space.inputs(), baselines=space.fill_content(request.fill, request.seed),
                              feature_mask=mask, n_samples=n_samples, perturbations_per_eval=perturbations_per_eval,
                              return_input_shape=return_input_shape)


@hookimpl
def register_methods(register):
    register(MethodPlugin.of(
        FeatureAblationMethod,
        description="Feature Ablation (captum) over time-frequency patches of the STFT magnitude, fill as content",
    ))
    register(MethodPlugin.of(
        OcclusionMethod,
        description="Occlusion (captum) with a sliding time-frequency window, fill as content",
    ))
    register(MethodPlugin.of(
        LimeMethod,
        description="LIME (captum) over time-frequency patches; n_samples, kernel_width, ridge alpha; seeded",
    ))
