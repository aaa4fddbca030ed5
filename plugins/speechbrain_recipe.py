"""A small speechbrain classifier recipe: train with ``Brain``, save in speechbrain's layout.

The architecture is written once, as a HyperPyYAML template
(:data:`HPARAMS_TEMPLATE`): a speechbrain ``Fbank``, per-utterance mean
normalisation, a small 1-D CNN (speechbrain ``Conv1d`` / ``BatchNorm1d`` /
LeakyReLU blocks) with mean pooling over time (:class:`MeanPooling`, so the
yaml needs this package importable) and a linear layer with log-softmax. Training instantiates
the modules from that very template; the exported directory holds the same
template as its ``hyperparams.yaml`` plus one checkpoint file per loadable,
so what is loaded is exactly what was trained::

    <out_dir>/hyperparams.yaml        the template, filled in (loads with EncoderClassifier)
    <out_dir>/embedding_model.ckpt    CNN weights + BatchNorm statistics
    <out_dir>/classifier.ckpt         linear layer
    <out_dir>/mean_var_norm.ckpt      InputNormalization state
    <out_dir>/label_encoder.ckpt      CategoricalEncoder (text: 'label' => index)
    <out_dir>/training.json           provenance: seed, epochs, data, accuracy, time

No ``paths`` are written: speechbrain's Pretrainer then looks for
``<name>.ckpt`` in the source directory, so the directory is relocatable and
``EncoderClassifier.from_hparams(source=out_dir)`` loads it with no network.

This is the recipe the seed families (ISA) train with: :func:`train_classifier`
takes the data, a seed and the template's variables, and is deterministic for
a given seed on one machine (model initialisation and batch order both
follow the seed).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ssbm_bench.errors import InputError

#: the loadables a trained directory holds, as ``<name>.ckpt``
LOADABLES = ("embedding_model", "classifier", "mean_var_norm", "label_encoder")

HPARAMS_TEMPLATE = """\
# ssbm-bench tiny speechbrain classifier: Fbank -> mean norm -> CNN -> mean pooling -> linear.
# Written by ssbm_bench_plugins.speechbrain_recipe; loads with
# speechbrain.inference.classifiers.EncoderClassifier.from_hparams(source=<this directory>).

sample_rate: {sample_rate}
n_mels: {n_mels}
channels: {channels}
n_classes: {n_classes}

compute_features: !new:speechbrain.lobes.features.Fbank
    sample_rate: !ref <sample_rate>
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.nnet.containers.LengthsCapableSequential
    input_shape: [null, null, !ref <n_mels>]
    conv1: !name:speechbrain.nnet.CNN.Conv1d
        out_channels: !ref <channels>
        kernel_size: 5
    norm1: !name:speechbrain.nnet.normalization.BatchNorm1d
    act1: !new:torch.nn.LeakyReLU
    conv2: !name:speechbrain.nnet.CNN.Conv1d
        out_channels: !ref <channels>
        kernel_size: 3
        dilation: 2
    norm2: !name:speechbrain.nnet.normalization.BatchNorm1d
    act2: !new:torch.nn.LeakyReLU
    pool: !new:ssbm_bench_plugins.speechbrain_recipe.MeanPooling

classifier: !new:speechbrain.nnet.containers.Sequential
    input_shape: [null, 1, !ref <channels>]
    linear: !name:speechbrain.nnet.linear.Linear
        n_neurons: !ref <n_classes>
    softmax: !new:speechbrain.nnet.activations.Softmax
        apply_log: True

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        classifier: !ref <classifier>
        mean_var_norm: !ref <mean_var_norm>
        label_encoder: !ref <label_encoder>
"""

class MeanPooling(torch.nn.Module):
    """Mean over time of (batch, time, channels), padding excluded -> (batch, 1, channels).

    speechbrain's ``StatisticsPooling(return_std=False)`` would do, but it adds
    1e-5-scale Gaussian noise to the mean on every call, in eval mode too:
    the model would not be deterministic (and would draw from torch's global
    random generator). Lengths are relative, rounded as speechbrain does.
    """

    def forward(self, x, lengths=None):
        if lengths is None:
            return x.mean(dim=1, keepdim=True)
        t = x.shape[1]
        n = torch.round(lengths.to(x.device) * t).clamp(min=1, max=t)
        mask = (torch.arange(t, device=x.device)[None, :] < n[:, None]).to(x.dtype)
        return (x * mask[..., None]).sum(dim=1, keepdim=True) / n.to(x.dtype)[:, None, None]


DEFAULT_VARIABLES = {"sample_rate": 16000, "n_mels": 40, "channels": 32}


def render_hparams(n_classes: int, **variables: Any) -> str:
    """The template with its variables filled in (unknown names are refused)."""
    unknown = set(variables) - set(DEFAULT_VARIABLES)
    if unknown:
        raise InputError(f"speechbrain recipe: unknown template variable(s) {sorted(unknown)}; "
                         f"known: {sorted(DEFAULT_VARIABLES)}")
    values = {**DEFAULT_VARIABLES, **variables, "n_classes": int(n_classes)}
    return HPARAMS_TEMPLATE.format(**values)


@dataclass
class TrainingResult:
    """What :func:`train_classifier` did: where the model is and how it fared."""

    directory: Path
    labels: tuple[str, ...]
    train_accuracy: float
    valid_accuracy: float | None
    seconds: float
    epochs: int
    steps: int
    losses: list[float] = field(default_factory=list)


def _brain_class():
    import speechbrain as sb

    class ClassifierBrain(sb.Brain):
        """Waveform -> log-probabilities, trained with NLL, the EncoderClassifier's own forward."""

        def compute_forward(self, batch, stage):
            wavs, lens = batch.sig
            feats = self.modules.compute_features(wavs)
            feats = self.modules.mean_var_norm(feats, lens)
            emb = self.modules.embedding_model(feats, lens)
            return self.modules.classifier(emb)  # (batch, 1, n_classes) log-probabilities

        def compute_objectives(self, predictions, batch, stage):
            labels, _ = batch.label_encoded
            loss = sb.nnet.losses.nll_loss(predictions, labels)
            if stage == sb.Stage.TRAIN:
                self.step_losses.append(float(loss.detach()))
            return loss

        def on_fit_start(self):
            super().on_fit_start()
            self.step_losses = []

    return ClassifierBrain


def _dataset(waveforms: Sequence[np.ndarray], labels: Sequence[str], label_encoder):
    import torch
    from speechbrain.dataio.dataset import DynamicItemDataset
    from speechbrain.utils.data_pipeline import provides, takes

    data = {f"item{i:06d}": {"index": i, "label": str(lab)} for i, lab in enumerate(labels)}
    ds = DynamicItemDataset(data)

    @takes("index")
    @provides("sig")
    def audio(index):
        return torch.from_numpy(np.asarray(waveforms[index], dtype=np.float32))

    @takes("label")
    @provides("label_encoded")
    def label(lab):
        return label_encoder.encode_label_torch(lab)  # shape (1,): batches to (batch, 1)

    ds.add_dynamic_item(audio)
    ds.add_dynamic_item(label)
    ds.set_output_keys(["id", "sig", "label_encoded"])
    return ds


def predict_log_probs(modules: Mapping[str, Any], waveforms: Sequence[np.ndarray]) -> np.ndarray:
    """Log-probabilities (n, n_classes) from in-memory modules, one waveform at a time, in eval mode."""
    import torch

    out = []
    with torch.no_grad():
        for w in waveforms:
            x = torch.from_numpy(np.asarray(w, dtype=np.float32))[None]
            lens = torch.ones(1)
            feats = modules["mean_var_norm"](modules["compute_features"](x), lens)
            out.append(modules["classifier"](modules["embedding_model"](feats, lens)).reshape(-1).numpy())
    return np.stack(out).astype(np.float64)


def train_classifier(
    waveforms: Sequence[np.ndarray],
    labels: Sequence[str],
    out_dir: str | Path,
    *,
    seed: int = 0,
    epochs: int = 4,
    batch_size: int = 8,
    lr: float = 1e-2,
    valid: tuple[Sequence[np.ndarray], Sequence[str]] | None = None,
    variables: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    keep_modules: dict | None = None,
    progress: bool = False,
) -> TrainingResult:
    """Train the template classifier with speechbrain's ``Brain`` and export it to `out_dir`.

    `waveforms` are 1-D float arrays at the template's sample rate, `labels`
    their class names (the label encoder is built from them in sorted order).
    `seed` fixes initialisation and batch order. If `keep_modules` is a dict,
    the trained in-memory modules (eval mode) are put in it, for checking an
    exported copy against them.
    """
    import torch
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.dataio.encoder import CategoricalEncoder
    from speechbrain.dataio.sampler import ReproducibleRandomSampler
    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain.utils.epoch_loop import EpochCounter

    if len(waveforms) != len(labels) or not len(waveforms):
        raise InputError(f"speechbrain recipe: need as many labels as waveforms (and at least one); "
                         f"got {len(waveforms)} waveforms and {len(labels)} labels")
    classes = sorted({str(x) for x in labels})
    if len(classes) < 2:
        raise InputError(f"speechbrain recipe: need at least two classes, got {classes}")
    out_dir = Path(out_dir)
    text = render_hparams(len(classes), **(variables or {}))

    started = time.perf_counter()
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    hparams = load_hyperpyyaml(text)
    encoder: CategoricalEncoder = hparams["label_encoder"]
    for c in classes:
        encoder.add_label(c)
    encoder.expect_len(len(classes))

    modules = dict(hparams["modules"])
    train_set = _dataset(waveforms, labels, encoder)
    work = Path(tempfile.mkdtemp(prefix="sb-train-"))
    try:
        counter = EpochCounter(limit=epochs)
        checkpointer = Checkpointer(
            work / "save",
            recoverables={**{k: hparams[k] for k in LOADABLES}, "counter": counter},
        )
        brain = _brain_class()(
            modules=modules,
            opt_class=lambda params: torch.optim.Adam(params, lr=lr),
            run_opts={"device": "cpu", "noprogressbar": not progress},  # speechbrain's bar over an epoch's batches
            checkpointer=None,
        )
        sampler = ReproducibleRandomSampler(train_set, seed=seed)
        brain.fit(counter, train_set, train_loader_kwargs={"batch_size": batch_size, "sampler": sampler})
        brain.modules.eval()
        checkpointer.save_checkpoint(meta={"seed": seed, "epochs": epochs})
        ckpt = checkpointer.find_checkpoint()
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in LOADABLES:
            shutil.copyfile(ckpt.paramfiles[name], out_dir / f"{name}.ckpt")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started

    live = {k: brain.modules[k] for k in ("compute_features", "mean_var_norm", "embedding_model", "classifier")}
    order = [encoder.decode_ndim(i) for i in range(len(encoder))]

    def accuracy(xs, ys) -> float:
        pred = predict_log_probs(live, xs).argmax(axis=1)
        return float(np.mean([order[p] == str(y) for p, y in zip(pred, ys)]))

    train_acc = accuracy(waveforms, labels)
    valid_acc = accuracy(*valid) if valid is not None and len(valid[0]) else None
    (out_dir / "hyperparams.yaml").write_text(text, encoding="utf-8")
    record = {
        "recipe": "ssbm_bench_plugins.speechbrain_recipe",
        "speechbrain": sb.__version__,
        "torch": torch.__version__,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "steps": len(brain.step_losses),
        "n_train": len(waveforms),
        "labels": order,
        "train_accuracy": train_acc,
        "valid_accuracy": valid_acc,
        "seconds": round(seconds, 3),
        "variables": {**DEFAULT_VARIABLES, **(variables or {})},
        **({"provenance": dict(provenance)} if provenance else {}),
    }
    (out_dir / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if keep_modules is not None:
        keep_modules.update(live)
    return TrainingResult(out_dir, tuple(order), train_acc, valid_acc, seconds, epochs,
                          len(brain.step_losses), list(brain.step_losses))
