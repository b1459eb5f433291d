"""The model zoo: small Keras models that TensorFlow Lite Micro can run.

Every builder returns a new, *uncompiled* ``tf_keras`` model (legacy Keras 2, the
one ``tfmot.quantization.keras.quantize_model`` accepts without custom configs).
They use only layers whose TFLite ops TFLM has int8 kernels for: ``Conv2D`` and
``DepthwiseConv2D`` (with ``BatchNormalization``/``ReLU`` folded into them, by tfmot
for QAT and by the converter otherwise), ``Dense``, ``MaxPooling2D``, ``AveragePooling2D``,
``GlobalAveragePooling2D`` (``MEAN``), ``Reshape``, ``Flatten`` and ``Softmax``.
One-dimensional convolutions are written as ``Conv2D`` with a ``(k, 1)`` kernel on
a ``(T, 1, C)`` tensor, because tfmot cannot quantize ``Conv1D``/``MaxPooling1D``.

Usage::

    from workbench.train import zoo
    model = zoo.imu_cnn((100, 6), n_classes=4, size="s")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    print(zoo.describe(model))

The ``size`` knob is ``"xs" | "s" | "m" | "l"`` (width and depth grow together, so
parameter counts grow strictly in that order) or a positive float: a width
multiplier applied to the ``"s"`` architecture (``size=1.0`` is ``"s"``).
Parameter counts in the docstrings are :func:`count_params` (all weights, including
BatchNorm statistics, which the converter folds away) for the example shapes given.

Layer names are fixed (``block1_conv``, ``head``, ...), so two builds with the same
arguments have the same names and the same structure. Every ``BatchNormalization`` uses
momentum :data:`BN_MOMENTUM` (0.9), so that its moving statistics keep up on the small
datasets of the lessons (see there why). Importing this module does
not import TensorFlow; the first builder call does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from .tf_runtime import keras

__all__ = [
    "SIZES",
    "imu_cnn",
    "ds_cnn",
    "image_cnn",
    "dense_autoencoder",
    "count_params",
    "describe",
]

Size = Union[str, float]  # noqa: UP007 (a runtime alias; X | Y needs Python 3.10 objects)

#: Named sizes: (width multiplier, depth) for each; depth means conv blocks, or
#: hidden layers per side for the autoencoder.
SIZES: dict[str, tuple[float, int]] = {
    "xs": (0.5, 2),
    "s": (1.0, 3),
    "m": (2.0, 3),
    "l": (3.0, 4),
}


@dataclass(frozen=True)
class _Spec:
    label: str   # used in the model name
    width: float
    depth: int


def _size(size: Size, depth_for: dict[str, int] | None = None) -> _Spec:
    """Resolve the size knob; ``depth_for`` overrides the depth per named size."""
    depths = {name: d for name, (_, d) in SIZES.items()}
    if depth_for:
        depths.update(depth_for)
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(
                f"size must be one of {', '.join(repr(s) for s in SIZES)} or a positive "
                f"float width multiplier, got {size!r}")
        return _Spec(size, SIZES[size][0], depths[size])
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not size > 0:
        raise ValueError(
            f"size must be one of {', '.join(repr(s) for s in SIZES)} or a positive float "
            f"width multiplier, got {size!r}")
    return _Spec(f"w{float(size):g}", float(size), depths["s"])


def _channels(base: int, width: float) -> int:
    """``base * width`` rounded to a multiple of 4 (at least 4): friendly to SIMD kernels."""
    return max(4, int(round(base * width / 4.0)) * 4)


def _shape(input_shape: Sequence[int], rank: int, what: str, example: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except TypeError:
        raise ValueError(f"{what}: input_shape must be a tuple like {example}, "
                         f"got {input_shape!r}") from None
    if len(shape) != rank or any(d <= 0 for d in shape):
        raise ValueError(
            f"{what}: input_shape must be {rank} positive sizes like {example} (no batch "
            f"dimension), got {tuple(input_shape)!r}")
    return shape


def _classes(n_classes: int, what: str) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"{what}: n_classes must be an int >= 2, got {n_classes!r}")
    return n_classes


def _dropout(rate: float, what: str) -> float:
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"{what}: dropout must be in [0, 1), got {rate!r}")
    return float(rate)


#: Momentum of every BatchNormalization's moving statistics. Keras's default, 0.99, averages
#: over ~100 steps; on a small dataset (BasicMotions: 32 training windows, one batch per
#: epoch) training ends before the moving mean and variance catch up, and the model at
#: inference (validation, test, TFLite) normalises with stale statistics: it is a different,
#: worse model than the one training sees. Early stopping then reads the rising validation
#: loss as overfitting and restores an early, untrained epoch (a distilled student at chance,
#: 25 % on four classes). 0.9 (PyTorch's default) follows within ~20 steps and is as good
#: on large datasets.
BN_MOMENTUM = 0.9


def _batch_norm(k, name: str):
    return k.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def _conv_bn_relu(k, x, filters: int, kernel, name: str, strides=(1, 1)):
    x = k.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                        name=f"{name}_conv")(x)
    x = _batch_norm(k, f"{name}_bn")(x)
    return k.layers.ReLU(name=f"{name}_relu")(x)


def _head(k, x, n_classes: int, dropout: float):
    if dropout:
        x = k.layers.Dropout(dropout, name="dropout")(x)
    x = k.layers.Dense(n_classes, name="head")(x)
    return k.layers.Softmax(name="probs")(x)


def imu_cnn(input_shape: Sequence[int], n_classes: int, size: Size = "s", *,
            kernel: int = 5, dropout: float = 0.0):
    """A 1-D CNN for windows of IMU (or any multichannel time series) data.

    Layout: ``Reshape`` to ``(T, 1, C)``, then ``depth`` blocks of
    ``Conv2D((kernel, 1)) -> BatchNorm -> ReLU -> MaxPooling2D((2, 1))`` with
    ``16, 32, 64, 64`` filters (times the width), ``GlobalAveragePooling2D``, an
    optional ``Dropout``, ``Dense`` and ``Softmax``. TFLite ops: RESHAPE, CONV_2D,
    MAX_POOL_2D, MEAN, FULLY_CONNECTED, SOFTMAX.

    Parameters for ``input_shape=(100, 6), n_classes=4`` (BasicMotions-like):
    xs 1,044, s 13,988, m 53,572, l 303,844 (size ``"s"``: 3 blocks of 16/32/64
    filters; ``"xs"``: 2 blocks, half width; ``"m"``: 3 blocks, double width;
    ``"l"``: 4 blocks, triple width).

    Args:
        input_shape: ``(T, C)``: time steps and channels, no batch dimension.
        n_classes: number of classes (>= 2).
        size: ``"xs" | "s" | "m" | "l"`` or a float width multiplier of ``"s"``.
        kernel: temporal kernel length (>= 1).
        dropout: dropout rate before the classifier (0 disables it).

    Raises:
        ValueError: bad shape, too few time steps for the pooling at that size
            (``T >= 2 ** depth``), ``n_classes < 2``, bad size, kernel or dropout.
    """
    what = "imu_cnn"
    steps, chans = _shape(input_shape, 2, what, "(100, 6)")
    n_classes = _classes(n_classes, what)
    dropout = _dropout(dropout, what)
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1:
        raise ValueError(f"{what}: kernel must be an int >= 1, got {kernel!r}")
    spec = _size(size)
    if steps < 2 ** spec.depth:
        raise ValueError(
            f"{what}: input of {steps} time steps is too short for size {size!r}, which "
            f"halves the time axis {spec.depth} times; give at least {2 ** spec.depth} "
            "steps or a smaller size")
    k = keras()
    inp = k.Input(shape=(steps, chans), name="input")
    x = k.layers.Reshape((steps, 1, chans), name="to_2d")(inp)
    for i, base in enumerate((16, 32, 64, 64)[: spec.depth], start=1):
        x = _conv_bn_relu(k, x, _channels(base, spec.width), (kernel, 1), f"block{i}")
        x = k.layers.MaxPooling2D((2, 1), name=f"block{i}_pool")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return k.Model(inp, _head(k, x, n_classes, dropout), name=f"imu_cnn_{spec.label}")


def ds_cnn(input_shape: Sequence[int], n_classes: int, size: Size = "s", *,
           dropout: float = 0.0):
    """A depthwise-separable CNN for keyword spotting on a spectrogram (MFCC or mel).

    Modelled on the MLPerf Tiny KWS DS-CNN (64 filters, 4 separable blocks), smaller
    at ``"s"``: ``Reshape`` to ``(frames, bins, 1)``, ``Conv2D((10, 4), strides 2)``,
    then ``depth`` blocks of ``DepthwiseConv2D(3x3) -> BN -> ReLU -> Conv2D(1x1) ->
    BN -> ReLU``, ``AveragePooling2D`` over the whole feature map, ``Flatten``,
    ``Dense``, ``Softmax``. TFLite ops: RESHAPE, CONV_2D, DEPTHWISE_CONV_2D,
    AVERAGE_POOL_2D, FULLY_CONNECTED, SOFTMAX.

    Parameters for ``input_shape=(49, 10), n_classes=12`` (KWS MFCC-like):
    xs 1,964, s 6,508, m 19,148, l 48,780 (filters 16/32/64/96 and 2/3/3/4
    separable blocks; the MLPerf reference is 64 filters and 4 blocks).

    Args:
        input_shape: ``(frames, bins)``, no batch dimension; both at least 2.
        n_classes: number of classes (>= 2).
        size: ``"xs" | "s" | "m" | "l"`` or a float width multiplier of ``"s"``.
        dropout: dropout rate before the classifier (0 disables it).

    Raises:
        ValueError: bad shape, ``n_classes < 2``, bad size or dropout.
    """
    what = "ds_cnn"
    frames, bins = _shape(input_shape, 2, what, "(49, 10)")
    n_classes = _classes(n_classes, what)
    dropout = _dropout(dropout, what)
    spec = _size(size)
    if frames < 2 or bins < 2:
        raise ValueError(f"{what}: need at least 2 frames and 2 bins, got {(frames, bins)}")
    k = keras()
    filters = _channels(32, spec.width)
    inp = k.Input(shape=(frames, bins), name="input")
    x = k.layers.Reshape((frames, bins, 1), name="to_2d")(inp)
    x = _conv_bn_relu(k, x, filters, (min(10, frames), min(4, bins)), "stem", strides=(2, 2))
    for i in range(1, spec.depth + 1):
        x = k.layers.DepthwiseConv2D((3, 3), padding="same", use_bias=False,
                                     name=f"block{i}_dw")(x)
        x = _batch_norm(k, f"block{i}_dw_bn")(x)
        x = k.layers.ReLU(name=f"block{i}_dw_relu")(x)
        x = _conv_bn_relu(k, x, filters, (1, 1), f"block{i}_pw")
    fh, fw = (frames + 1) // 2, (bins + 1) // 2  # "same" padding, stride 2
    x = k.layers.AveragePooling2D((fh, fw), name="pool")(x)
    x = k.layers.Flatten(name="flatten")(x)
    return k.Model(inp, _head(k, x, n_classes, dropout), name=f"ds_cnn_{spec.label}")


def image_cnn(input_shape: Sequence[int], n_classes: int, size: Size = "s", *,
              dropout: float = 0.0):
    """A small CNN for images (8x8 digits from ``load_digits``, 32x32 pictures, ...).

    Layout: ``depth`` blocks of ``Conv2D(3x3) -> BN -> ReLU -> MaxPooling2D(2x2)``
    with ``8, 16, 32, 64`` filters (times the width), ``Flatten``, optional
    ``Dropout``, ``Dense``, ``Softmax``. TFLite ops: CONV_2D, MAX_POOL_2D, RESHAPE,
    FULLY_CONNECTED, SOFTMAX.

    Parameters for ``input_shape=(8, 8, 1), n_classes=10`` (digits):
    xs 702, s 1,970, m 24,282, l 53,698 (2/2/3/3 blocks at width 0.5/1/2/3).

    Args:
        input_shape: ``(H, W, C)``, no batch dimension.
        n_classes: number of classes (>= 2).
        size: ``"xs" | "s" | "m" | "l"`` or a float width multiplier of ``"s"``.
        dropout: dropout rate before the classifier (0 disables it).

    Raises:
        ValueError: bad shape, an image smaller than ``2 ** depth`` on a side (too
            small for the pooling at that size), ``n_classes < 2``, bad size or dropout.
    """
    what = "image_cnn"
    h, w, c = _shape(input_shape, 3, what, "(8, 8, 1)")
    n_classes = _classes(n_classes, what)
    dropout = _dropout(dropout, what)
    spec = _size(size, depth_for={"xs": 2, "s": 2, "m": 3, "l": 3})
    need = 2 ** spec.depth
    if h < need or w < need:
        raise ValueError(
            f"{what}: a {h}x{w} image is too small for size {size!r}, which halves each "
            f"side {spec.depth} times; give at least {need}x{need} or a smaller size")
    k = keras()
    inp = k.Input(shape=(h, w, c), name="input")
    x = inp
    for i, base in enumerate((8, 16, 32, 64)[: spec.depth], start=1):
        x = _conv_bn_relu(k, x, _channels(base, spec.width), (3, 3), f"block{i}")
        x = k.layers.MaxPooling2D((2, 2), name=f"block{i}_pool")(x)
    x = k.layers.Flatten(name="flatten")(x)
    return k.Model(inp, _head(k, x, n_classes, dropout), name=f"image_cnn_{spec.label}")


def dense_autoencoder(input_dim: int, size: Size = "s", bottleneck: int | None = None):
    """A fully connected autoencoder for anomaly detection (MLPerf Tiny AD style).

    Layout: ``depth`` ReLU ``Dense`` layers down to a ``bottleneck`` (also ReLU),
    the same back up, and a linear ``Dense`` output of
    ``input_dim`` values. Train it to reproduce its input; the reconstruction error
    is the anomaly score. TFLite ops: FULLY_CONNECTED only. Unlike the MLPerf
    reference there is no BatchNorm: tfmot cannot fold it into ``Dense``, so a QAT
    model would keep float ops; normalize the inputs instead.

    Parameters for ``input_dim=64`` (default bottleneck 8; 16 for ``"l"``):
    xs 6,856, s 17,736, m 84,808, l 253,520 (hidden width 32/64/128/192 with
    2/2/3/4 layers per side; the MLPerf reference is 640 inputs, 128 units, 4
    layers per side, bottleneck 8).

    Args:
        input_dim: number of input (and output) features, >= 2.
        size: ``"xs" | "s" | "m" | "l"`` or a float width multiplier of ``"s"``.
        bottleneck: code size; default 8 (16 for ``"l"``), at most ``input_dim``.

    Raises:
        ValueError: bad input_dim, size or bottleneck.
    """
    what = "dense_autoencoder"
    if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim < 2:
        raise ValueError(f"{what}: input_dim must be an int >= 2, got {input_dim!r}")
    spec = _size(size, depth_for={"xs": 2, "s": 2, "m": 3, "l": 4})
    if bottleneck is None:
        bottleneck = 16 if spec.label == "l" else 8
        bottleneck = min(bottleneck, input_dim)
    if isinstance(bottleneck, bool) or not isinstance(bottleneck, int) or not (
            1 <= bottleneck <= input_dim):
        raise ValueError(
            f"{what}: bottleneck must be an int from 1 to input_dim={input_dim}, "
            f"got {bottleneck!r}")
    units = _channels(64, spec.width)
    k = keras()

    def block(x, n, name):
        # No BatchNorm here: tfmot folds it into Conv2D but not into Dense, and an
        # unfolded BatchNorm would leave float ops in a QAT model.
        return k.layers.Dense(n, activation="relu", name=f"{name}_dense")(x)

    inp = k.Input(shape=(input_dim,), name="input")
    x = inp
    for i in range(1, spec.depth + 1):
        x = block(x, units, f"enc{i}")
    x = block(x, bottleneck, "code")
    for i in range(1, spec.depth + 1):
        x = block(x, units, f"dec{i}")
    out = k.layers.Dense(input_dim, name="reconstruction")(x)
    return k.Model(inp, out, name=f"dense_autoencoder_{spec.label}")


def count_params(model) -> int:
    """All weights of ``model`` (trainable and not, e.g. BatchNorm statistics)."""
    return int(model.count_params())


def describe(model) -> str:
    """A one-paragraph summary: name, shapes, parameters, int8 weight size, layers.

    The int8 estimate counts one byte per trainable weight; the converter folds
    BatchNorm into the preceding layer, so the real flatbuffer is near this plus
    a few KB of structure.
    """
    import numpy as np

    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    total = count_params(model)
    in_shape = tuple(model.inputs[0].shape[1:])
    out_shape = tuple(model.outputs[0].shape[1:])
    kinds: dict[str, int] = {}
    for layer in model.layers:
        name = type(layer).__name__
        if name != "InputLayer":
            kinds[name] = kinds.get(name, 0) + 1
    layers = ", ".join(f"{n}x{v}" if v > 1 else n for n, v in kinds.items())
    return (
        f"{model.name}: input {in_shape} -> output {out_shape}; {total:,} parameters "
        f"({trainable:,} trainable, ~{trainable / 1024:.1f} KiB as int8); layers: {layers}")
