"""Quantization-aware training (QAT): train with int8 rounding simulated, convert to int8.

Usage::

    from workbench.train import zoo
    from workbench.train.qat import quantize_aware

    model = zoo.imu_cnn((100, 6), n_classes=4)          # float model, trained or not
    qat = quantize_aware(model)                          # NEW model with fake-quant ops
    qat.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    qat.fit(X, y, epochs=5)                              # fine-tune
    # then convert with TFLiteConverter (Optimize.DEFAULT, int8 representative data)

:func:`quantize_aware` wraps ``tfmot.quantization.keras.quantize_model``: the
returned model is new (the float model is cloned, its weights are copied and it is
never modified) and *uncompiled*: compile it yourself, or hand it to
:func:`workbench.train.fit.train`, which compiles it. A QAT model can also be the
student of a :class:`workbench.train.distill.Distiller`.

tfmot's default 8-bit scheme quantizes only layers it knows. Notably it cannot
quantize ``Conv1D``, ``MaxPooling1D``, ``SeparableConv1D``, recurrent layers and
``Lambda`` layers; write one-dimensional convolutions as ``Conv2D`` with a ``(k, 1)``
kernel on a ``(T, 1, C)`` tensor, as the model zoo does. Models with such layers
raise :class:`UnsupportedLayerError`, which names every offending layer.

TensorFlow is imported on the first call, never at import (see ``tf_runtime``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import WorkbenchError
from .tf_runtime import keras, tfmot

__all__ = ["UnsupportedLayerError", "quantize_aware", "qat_from_scratch", "is_quantize_aware"]

#: What to use instead of layers tfmot cannot quantize (by class name).
_ADVICE = {
    "Conv1D": "use Conv2D with a (k, 1) kernel on a (T, 1, C) tensor (Reshape first)",
    "MaxPooling1D": "use MaxPooling2D with pool_size (k, 1) on a (T, 1, C) tensor",
    "SeparableConv1D": "use DepthwiseConv2D with a (k, 1) kernel followed by a 1x1 Conv2D",
    "Conv1DTranspose": "use Conv2DTranspose with a (k, 1) kernel on a (T, 1, C) tensor",
    "Lambda": "replace the Lambda with built-in layers (Reshape, Activation, ...)",
}
_DEFAULT_ADVICE = ("replace it with layers tfmot supports (Conv2D with a (k, 1) kernel on a "
                   "(T, 1, C) tensor instead of Conv1D), or annotate it with a QuantizeConfig "
                   "via tfmot.quantization.keras.quantize_annotate_layer")
# Layers the registry does not list on their own but quantize_model handles by folding
# them into the layer before (Conv2D + BatchNormalization).
_FOLDED = {"BatchNormalization", "SyncBatchNormalization"}


class UnsupportedLayerError(WorkbenchError, ValueError):
    """The model has layers that tfmot's default 8-bit scheme cannot quantize.

    ``layers`` lists ``(layer name, class name)`` for every offending layer; the
    message says what to use instead.
    """

    def __init__(self, layers: list[tuple[str, str]]):
        self.layers = list(layers)
        lines = [f"  - {name!r} ({cls}): {_ADVICE.get(cls, _DEFAULT_ADVICE)}"
                 for name, cls in self.layers]
        super().__init__(
            "tfmot cannot quantize these layers for quantization-aware training:\n"
            + "\n".join(lines)
            + "\n(workbench.train.zoo builders use only quantizable layers: Conv2D (k, 1) "
              "instead of Conv1D.)")


def _check_model(model: Any) -> None:
    k = keras()
    if not isinstance(model, k.Model):
        kind = type(model).__module__ + "." + type(model).__qualname__
        hint = ""
        if type(model).__module__.startswith("keras"):
            hint = (" It looks like a Keras 3 model; QAT needs legacy Keras 2 (tf_keras). "
                    "Build it with workbench.train.zoo or workbench.train.tf_runtime.keras().")
        raise TypeError(f"expected a tf_keras Model, got {kind}.{hint}")
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built: give it an Input (or call "
                         "build(input_shape)) before quantize_aware")
    if is_quantize_aware(model):
        raise ValueError(f"model {model.name!r} is already quantization-aware; pass the float "
                         "model to quantize_aware")


def is_quantize_aware(model: Any) -> bool:
    """True if ``model`` contains tfmot's quantization wrappers (a QAT model)."""
    from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer, quantize_wrapper

    kinds = (quantize_wrapper.QuantizeWrapper, quantize_layer.QuantizeLayer)
    return any(isinstance(layer, kinds) for layer in getattr(model, "layers", ()))


def _unsupported(model) -> list[tuple[str, str]]:
    """Layers of ``model`` the default 8-bit registry does not support (best effort)."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    reg = registry.Default8BitQuantizeRegistry()
    k = keras()
    out = []
    for layer in model.layers:
        cls = type(layer).__name__
        if isinstance(layer, k.layers.InputLayer) or cls in _FOLDED:
            continue
        if isinstance(layer, k.Model):
            out.extend(_unsupported(layer))
            continue
        try:
            ok = reg.supports(layer)
        except Exception:  # noqa: BLE001 - a registry quirk must not hide the real error
            ok = True
        if not ok:
            out.append((layer.name, cls))
    return out


def quantize_aware(model):
    """A NEW quantization-aware copy of the float ``model``, ready for fine-tuning.

    Wraps ``tfmot.quantization.keras.quantize_model``: every layer gets fake-quant
    ops that simulate int8 weights and activations during training, and trained
    weights are copied over, so a trained float model can be fine-tuned for a few
    epochs (a learning rate about 10x lower than the original training works well).

    Call order: build (and usually train) ``model``; ``qat = quantize_aware(model)``;
    ``qat.compile(...)``; ``qat.fit(...)``; convert with
    ``tf.lite.TFLiteConverter.from_keras_model(qat)`` and ``Optimize.DEFAULT``.

    Side effects: none on ``model`` (it is cloned, not wrapped in place). The result
    is uncompiled.

    Train before you predict: tfmot computes weight ranges only in training mode,
    so the returned model's predictions are meaningless until it has trained for at
    least one step. Activation ranges start at [-6, 6] and follow a moving average
    with decay 0.999 per step, so they need hundreds of steps to fit the data; the
    converter uses these ranges (not the representative data) for a QAT model.
    With a small dataset, train more epochs or smaller batches rather than fewer.

    Raises:
        TypeError: ``model`` is not a tf_keras Model (e.g. a Keras 3 model).
        ValueError: the model is not built, or is already quantization-aware, or
            tfmot refuses it for another reason (its message is kept).
        UnsupportedLayerError: layers tfmot cannot quantize (e.g. ``Conv1D``); the
            message names each one and says what to use instead.
    """
    _check_model(model)
    bad = _unsupported(model)
    if bad:
        raise UnsupportedLayerError(bad)
    try:
        return tfmot().quantization.keras.quantize_model(model)
    except RuntimeError as exc:
        match = re.search(r"Layer (\S+):<class '[\w.]*?(\w+)'> is not supported", str(exc))
        if match:
            raise UnsupportedLayerError([(match.group(1), match.group(2))]) from exc
        raise ValueError(f"tfmot could not make {model.name!r} quantization-aware: {exc}") \
            from exc


def qat_from_scratch(builder: Callable[..., Any], *args, **kwargs):
    """``quantize_aware(builder(*args, **kwargs))``: a fresh QAT model to train from scratch.

    Example: ``qat_from_scratch(zoo.imu_cnn, (100, 6), 4, size="xs")``. Training from
    scratch with fake quantization usually needs more epochs than fine-tuning a
    trained float model; prefer :func:`quantize_aware` on a trained model when you
    have one. The result is uncompiled. Raises what the builder or
    :func:`quantize_aware` raises.
    """
    return quantize_aware(builder(*args, **kwargs))
