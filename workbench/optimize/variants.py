"""From one trained Keras model, every variant a student might deploy, as .tflite bytes.

:func:`make_variants` converts (and, for the techniques that need it, fine-tunes) one
trained float model into:

==============  ==========================================================================
``float``       float32 everything: the reference the others are compared with
``dynamic``     dynamic-range quantization: int8 weights, float activations (hybrid
                kernels; LiteRT runs them, TFLite Micro does not)
``int8``        full-integer post-training quantization, calibrated on the training data
``int16x8``     int16 activations with int8 weights: precision where int8 loses it, at
                twice the activation memory
``qat``         quantization-aware fine-tuning, then int8
``pruned``      magnitude pruning to a target sparsity (fine-tuned), then int8
``clustered``   weight clustering (weight sharing, fine-tuned), then int8
``distilled``   a smaller student trained by knowledge distillation, then int8
==============  ==========================================================================

Every variant has its batch dimension fixed to 1 (:func:`workbench.train.export.to_tflite`).
Models you already trained can be passed in (``qat=``, ``pruned=``, ``clustered=``,
``distilled=``) and are converted as they are, instead of being trained here.

Usage::

    from workbench.optimize import make_variants, measure_all, ComparisonTable
    variants = make_variants(model, data)                 # data: a TrainingData
    table = ComparisonTable(measure_all(variants, data), board="nano33ble")

TensorFlow is imported only when a conversion runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Variant", "TECHNIQUES", "make_variants", "variant_from_tflite"]

#: Every technique :func:`make_variants` knows, in the order of the table.
TECHNIQUES = ("float", "dynamic", "int8", "int16x8", "qat", "pruned", "clustered", "distilled")

_NAMES = {
    "float": "float32",
    "dynamic": "dynamic-range",
    "int8": "int8 PTQ",
    "int16x8": "int16x8 PTQ",
    "qat": "QAT int8",
    "pruned": "pruned int8",
    "clustered": "clustered int8",
    "distilled": "distilled int8",
}


@dataclass
class Variant:
    """One deployable model: its .tflite bytes and where they came from.

    ``keras_model`` is the Keras model that was converted (None for imported
    .tflite files); ``notes`` says what was done, in words a student can follow.
    """

    name: str
    kind: str
    tflite: bytes
    keras_model: Any = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.tflite).hexdigest()

    @property
    def size(self) -> int:
        return len(self.tflite)


def variant_from_tflite(name: str, tflite: bytes, *, kind: str = "imported",
                        notes: Iterable[str] = ()) -> Variant:
    """A :class:`Variant` for an existing .tflite model (validated: raises ModelError)."""
    from ..tflite import inspect_model

    inspect_model(bytes(tflite))
    return Variant(name, kind, bytes(tflite), None, list(notes))


@dataclass
class FineTune:
    """How much fine-tuning the techniques that train get (epochs; small on purpose).

    ``qat_learning_rate`` is about 10x below usual training rates: QAT starts from the
    trained weights and only adapts them to int8.

    The distilled student starts from scratch, so it needs enough optimizer *steps*, not
    epochs: ``distill_batch_size`` is small because the lessons' datasets are (BasicMotions
    has 32 training windows: batches of 32 would give one step per epoch, 120 steps in
    all, and some seeds then end with a student that misses a class or, with early
    stopping, sits at chance). Batches of 8 give four steps per epoch.
    """

    qat_epochs: int = 30
    qat_learning_rate: float = 3e-4
    prune_sparsity: float = 0.5
    prune_epochs: int = 10
    clusters: int = 16
    cluster_epochs: int = 5
    distill_epochs: int = 120
    distill_temperature: float = 4.0
    distill_alpha: float = 0.2
    distill_learning_rate: float = 2e-3
    distill_batch_size: int = 8
    patience: int = 12
    seed: int = 0


def _check_techniques(techniques: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(techniques))
    unknown = [t for t in chosen if t not in TECHNIQUES]
    if unknown:
        raise ValueError(f"unknown technique(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(TECHNIQUES)}")
    return chosen


def _default_student(data) -> Callable[[], Any] | None:
    """A student builder from the zoo for the data's input shape, or None."""
    from ..train import zoo

    shape = tuple(data.input_shape)
    if len(shape) == 2:       # (time, channels): an IMU-style window
        return lambda: zoo.imu_cnn(shape, data.n_classes, "xs")
    if len(shape) == 3 and shape[-1] == 1:   # a spectrogram
        return lambda: zoo.ds_cnn(shape, data.n_classes, "xs")
    if len(shape) == 3:
        return lambda: zoo.image_cnn(shape, data.n_classes, "xs")
    return None


def make_variants(model, data, *, techniques: Iterable[str] = TECHNIQUES,
                  qat=None, pruned=None, clustered=None, distilled=None,
                  student: Callable[[], Any] | Any = None,
                  fine_tune: FineTune | None = None,
                  progress: Callable[[str], None] | None = None) -> list[Variant]:
    """Convert ``model`` into one :class:`Variant` per technique, in :data:`TECHNIQUES` order.

    Args:
        model: the trained float tf_keras model (not modified).
        data: a :class:`workbench.train.fit.TrainingData`; its training windows calibrate
            the int8 and int16x8 variants and fine-tune the trained techniques.
        techniques: which variants to make (default: all).
        qat, pruned, clustered, distilled: already trained Keras models for those
            techniques (e.g. from lesson 03); each is converted to int8 as it is.
        student: for ``distilled`` when ``distilled`` is not given: a Keras model or a
            builder; default a size-"xs" zoo model for the data's input shape.
        fine_tune: epochs and rates for the trained techniques (:class:`FineTune`).
        progress: called with a line of text as each variant starts (e.g. ``print``).

    Returns:
        The variants. A technique that cannot apply to this model (e.g. tfmot cannot
        quantize one of its layers) raises; leave it out of ``techniques``.

    Side effects: trains (QAT, pruning, clustering, distillation: seconds to minutes
    for the zoo's small models); seeds the random generators (``fine_tune.seed``).

    Raises:
        ValueError: unknown technique, or data that does not fit the model.
        workbench.train.qat.UnsupportedLayerError: ``qat`` on a model tfmot cannot wrap.
    """
    chosen = _check_techniques(techniques)
    ft = fine_tune or FineTune()
    say = progress or (lambda _line: None)
    from ..train.export import to_tflite

    X = data.X_train
    out: list[Variant] = []

    def add(kind: str, blob: bytes, keras_model, *notes: str) -> None:
        out.append(Variant(_NAMES[kind], kind, blob, keras_model, list(notes)))

    for kind in chosen:
        say(f"{_NAMES[kind]} ...")
        if kind == "float":
            add(kind, to_tflite(model, quantize="float"), model,
                "float32 weights and activations; the reference")
        elif kind == "dynamic":
            add(kind, to_tflite(model, quantize="dynamic"), model,
                "int8 weights, float activations (hybrid kernels)")
        elif kind == "int8":
            add(kind, to_tflite(model, quantize="int8", representative=X), model,
                f"post-training int8, calibrated on {min(len(X), 200)} training windows")
        elif kind == "int16x8":
            add(kind, to_tflite(model, quantize="int16x8", representative=X), model,
                "post-training: int16 activations, int8 weights")
        elif kind == "qat":
            given = qat is not None
            m = qat if given else _train_qat(model, data, ft)
            add(kind, to_tflite(m, quantize="int8", representative=X), m,
                "quantization-aware model you trained" if given else
                f"QAT fine-tuning (up to {ft.qat_epochs} epochs, lr {ft.qat_learning_rate:g})")
        elif kind == "pruned":
            given = pruned is not None
            m = pruned if given else _prune(model, data, ft)
            add(kind, to_tflite(m, quantize="int8", representative=X), m,
                "pruned model you trained" if given else
                f"magnitude pruning to {ft.prune_sparsity:.0%} sparsity "
                f"({ft.prune_epochs} epochs), then int8")
        elif kind == "clustered":
            given = clustered is not None
            m = clustered if given else _cluster(model, data, ft)
            add(kind, to_tflite(m, quantize="int8", representative=X), m,
                "clustered model you trained" if given else
                f"{ft.clusters} shared weight values per layer ({ft.cluster_epochs} epochs), "
                "then int8")
        elif kind == "distilled":
            given = distilled is not None
            m = distilled if given else _distill(model, data, student, ft)
            if m is None:
                raise ValueError("no student for the 'distilled' variant: pass student= "
                                 "(a Keras model or builder) or distilled= (a trained student)")
            ratio = m.count_params() / max(1, model.count_params())
            add(kind, to_tflite(m, quantize="int8", representative=X), m,
                ("student you trained" if given else
                 f"student distilled from this model (T={ft.distill_temperature:g}, "
                 f"alpha={ft.distill_alpha:g})") + f", {ratio:.0%} of its parameters")
    return out


def _config(ft: FineTune, epochs: int, lr: float = 1e-3, compile: bool = True,
            batch_size: int = 32):
    from ..train.fit import TrainConfig

    return TrainConfig(epochs=epochs, patience=ft.patience, learning_rate=lr, seed=ft.seed,
                       compile=compile, batch_size=batch_size)


def _train_qat(model, data, ft: FineTune):
    from ..train.fit import train
    from ..train.qat import quantize_aware

    return train(quantize_aware(model), data, _config(ft, ft.qat_epochs, ft.qat_learning_rate),
                 technique="qat").model


def _prune(model, data, ft: FineTune):
    from ..train.fit import set_seed
    from ..train.pruning import prune

    set_seed(ft.seed)
    return prune(model, data.X_train, data.y_train, target_sparsity=ft.prune_sparsity,
                 epochs=ft.prune_epochs)


def _cluster(model, data, ft: FineTune):
    from ..train.clustering import cluster
    from ..train.fit import set_seed

    set_seed(ft.seed)
    return cluster(model, data.X_train, data.y_train, n_clusters=ft.clusters,
                   epochs=ft.cluster_epochs)


def _distill(model, data, student, ft: FineTune):
    from ..train.distill import Distiller
    from ..train.fit import set_seed, train
    from ..train.tf_runtime import keras

    builder = student if student is not None else _default_student(data)
    if builder is None:
        return None
    set_seed(ft.seed)
    student_model = builder() if not hasattr(builder, "fit") and callable(builder) else builder
    distiller = Distiller(model, student_model,
                          optimizer=keras().optimizers.Adam(ft.distill_learning_rate),
                          temperature=ft.distill_temperature, alpha=ft.distill_alpha)
    return train(distiller, data, _config(ft, ft.distill_epochs, compile=False,
                                          batch_size=ft.distill_batch_size),
                 technique="distilled").model
