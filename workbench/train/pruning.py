"""Magnitude pruning: zero the smallest weights while fine-tuning, then strip the wrappers.

Usage::

    from workbench.train.pruning import prune, sparsity, layer_sparsity

    pruned = prune(model, X, y, target_sparsity=0.5, epochs=2)   # NEW, stripped model
    sparsity(pruned)          # ~0.5: fraction of zero kernel weights
    layer_sparsity(pruned)    # {"conv1": 0.5, "head": 0.5, ...}

Zeros make a model compress well (zip, or sparse formats) but do not by themselves
make TFLite Micro faster or the flatbuffer smaller. Prune the float model, then
quantize (post-training) or fine-tune it with :func:`workbench.train.qat.quantize_aware`
(which does not keep the zeros exactly; fine-tune briefly).

TensorFlow is imported on the first call, never at import (see ``tf_runtime``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .tf_runtime import keras, native_stderr_kept, tfmot

__all__ = ["prune", "sparsity", "layer_sparsity"]


def _clone(model):
    """A copy of a tf_keras model with the same weights (tfmot wraps layers in place)."""
    k = keras()
    if not isinstance(model, k.Model):
        raise TypeError(f"expected a tf_keras Model, got {type(model).__module__}."
                        f"{type(model).__qualname__} (build models with workbench.train.zoo or "
                        "workbench.train.tf_runtime.keras())")
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built: give it an Input first")
    from .qat import is_quantize_aware

    if is_quantize_aware(model):
        raise ValueError(f"model {model.name!r} is quantization-aware; prune or cluster the "
                         "float model first, then apply quantize_aware to the result")
    clone = k.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _steps_per_epoch(x, batch_size: int) -> int:
    n = len(x[0]) if isinstance(x, (list, tuple)) else len(x)
    if n == 0:
        raise ValueError("x is empty: pruning needs training data")
    return math.ceil(n / batch_size)


def prune(model, x, y, *, target_sparsity: float = 0.5, epochs: int = 2, batch_size: int = 32,
          begin_step: int = 0, frequency: int | None = None, initial_sparsity: float = 0.0,
          validation_data: Any = None, optimizer: Any = "adam",
          loss: Any = "sparse_categorical_crossentropy", metrics: Any = ("accuracy",),
          verbose: int = 0):
    """A NEW copy of ``model`` fine-tuned with magnitude pruning, wrappers stripped.

    Follows tfmot's recipe: ``prune_low_magnitude`` with a ``PolynomialDecay``
    schedule from ``initial_sparsity`` at ``begin_step`` to ``target_sparsity``;
    compile; fit with the ``UpdatePruningStep`` callback; ``strip_pruning``. The
    schedule's ``end_step`` is the last pruning step that fits in
    ``epochs * ceil(len(x) / batch_size)`` training steps, so the target is
    reached on the final pruning update and held to the end of training.
    Prunable kernels (Dense, Conv2D, DepthwiseConv2D, ...) each reach the target;
    biases and BatchNorm are not pruned.

    Args:
        model: a built float tf_keras model (trained, ideally). Not modified.
        x, y: training data (``y`` matching ``loss``; class indices by default).
        target_sparsity: fraction of kernel weights to zero, in [0, 1).
        epochs, batch_size: fine-tuning length.
        begin_step: training step at which pruning starts.
        frequency: prune every this many steps; default about a tenth of the
            pruning steps (at least 1).
        initial_sparsity: sparsity of the first pruning update, in [0, target].
        validation_data: passed to ``fit``.
        optimizer: a name or a *fresh* optimizer instance (it is built for the
            pruned copy's variables).
        loss, metrics: passed to ``compile``.

    Returns:
        The stripped, uncompiled model (plain Keras layers, zeros in the kernels).

    Raises:
        ValueError: sparsities outside their ranges, non-positive epochs, batch
            size or frequency, a begin_step at or after the last training step,
            empty data, an unbuilt or quantization-aware model.
        TypeError: not a tf_keras model.
    """
    if not 0.0 <= float(target_sparsity) < 1.0:
        raise ValueError(f"target_sparsity must be in [0, 1), got {target_sparsity!r}")
    if not 0.0 <= float(initial_sparsity) <= float(target_sparsity):
        raise ValueError(f"initial_sparsity must be in [0, target_sparsity={target_sparsity}], "
                         f"got {initial_sparsity!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if int(begin_step) != begin_step or begin_step < 0:
        raise ValueError(f"begin_step must be a non-negative integer, got {begin_step!r}")
    total = _steps_per_epoch(x, batch_size) * int(epochs)
    last = total - 1  # UpdatePruningStep counts steps 0 .. total-1
    if begin_step >= last:
        raise ValueError(f"begin_step={begin_step} leaves no pruning steps: training runs "
                         f"{total} steps ({epochs} epochs of {batch_size}-sample batches); "
                         "lower begin_step or train longer")
    span = last - begin_step
    if frequency is None:
        frequency = max(1, span // 10)
    if int(frequency) != frequency or frequency < 1:
        raise ValueError(f"frequency must be a positive integer, got {frequency!r}")
    if frequency > span:
        raise ValueError(f"frequency={frequency} is longer than the {span} pruning steps "
                         "available; lower it or train longer")
    end_step = begin_step + (span // int(frequency)) * int(frequency)

    clone = _clone(model)
    mot = tfmot().sparsity.keras
    schedule = mot.PolynomialDecay(initial_sparsity=float(initial_sparsity),
                                   final_sparsity=float(target_sparsity),
                                   begin_step=int(begin_step), end_step=int(end_step),
                                   frequency=int(frequency))
    pruned = mot.prune_low_magnitude(clone, pruning_schedule=schedule)
    pruned.compile(optimizer=optimizer, loss=loss, metrics=list(metrics) if metrics else None)
    with native_stderr_kept(f"prune {model.name}"):   # TensorFlow's native notices
        pruned.fit(x, y, epochs=int(epochs), batch_size=int(batch_size),
                   validation_data=validation_data, callbacks=[mot.UpdatePruningStep()],
                   verbose=verbose, shuffle=True)
    return mot.strip_pruning(pruned)


def _kernels(layer) -> list[np.ndarray]:
    """The kernel weights of a layer (Dense/Conv ``kernel``, ``depthwise_kernel``, ...)."""
    out = []
    for w in layer.weights:
        short = w.name.split("/")[-1].split(":")[0]
        if short.endswith("kernel") and w.trainable:
            out.append(np.asarray(w.numpy()))
    return out


def _kernel_layers(model):
    k = keras()
    for layer in model.layers:
        if isinstance(layer, k.Model):
            yield from _kernel_layers(layer)
        else:
            kernels = _kernels(layer)
            if kernels:
                yield layer, kernels


def layer_sparsity(model) -> dict[str, float]:
    """``{layer name: fraction of zero kernel weights}`` for every layer with a kernel."""
    return {layer.name: float(sum((kk == 0).sum() for kk in ks) / sum(kk.size for kk in ks))
            for layer, ks in _kernel_layers(model)}


def sparsity(model) -> float:
    """Fraction of zero weights over all kernels of ``model`` (biases, BatchNorm excluded).

    Returns 0.0 for a model without kernels.
    """
    zeros = total = 0
    for _, ks in _kernel_layers(model):
        zeros += sum(int((kk == 0).sum()) for kk in ks)
        total += sum(kk.size for kk in ks)
    return zeros / total if total else 0.0
