"""Models with published on-device latencies, on which the cost model is calibrated.

MLPerf Tiny v0.5 published a *reference submission* (MLPerf's name for its baseline
implementation, not a claim about kernels): the benchmark models run by TensorFlow
Lite Micro (``tflite-micro`` v2.3.1, Mbed OS, GCC) on an STM32 NUCLEO-L4R5ZI
(Cortex-M4F, 120 MHz), measured with EEMBC's EnergyRunner. Its keyword-spotting build
enables TFLM's ``cmsis-nn`` kernels (``TAGS=cmsis-nn`` in ``setup_example.sh``); the
anomaly-detection build script names no kernel tag. Two of its models are small enough
to rebuild here layer for layer:

- keyword spotting: the DS-CNN (input 49x10x1 MFCC, 2.66 M MACs), 181.9 ms;
- anomaly detection: the fully connected autoencoder (640 inputs), 10.05 ms.

Latency depends on the layer shapes, not on the weight values, so the models are built
with seeded random weights and converted to int8 with random calibration data (batch 1).
The builders import TensorFlow (legacy Keras) when first called, never at import, and
cache their result for the process. :data:`ANCHORS` lists the published figures;
``docs/latency-model.md`` says how the estimator was calibrated on them (so agreement
with them is not an independent check).

Usage::

    from workbench.optimize.anchors import ANCHORS, kws_dscnn_tflite
    from workbench.optimize.graph import analyze
    from workbench.optimize.latency import estimate
    from workbench.boards.catalog import get_board
    est = estimate(analyze(kws_dscnn_tflite()), get_board(ANCHORS[0]["board"]))
    print(est.latency_ms, "vs", ANCHORS[0]["published_ms"])
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["ANCHORS", "kws_dscnn_tflite", "ad_autoencoder_tflite"]

_RESULTS = "https://github.com/mlcommons/tiny_results_v0.5 (closed/reference/results/Nucleo-L4R5ZI)"

#: The published measurements the cost model is calibrated on. ``model`` names the
#: builder in this module; ``published_mj`` is the energy per inference from the same
#: submission's energy runs (at 1.8 V).
ANCHORS: list[dict] = [
    {
        "name": "MLPerf Tiny KWS DS-CNN (int8)",
        "model": "kws_dscnn_tflite",
        "board": "nucleo-l4r5zi",
        "published_ms": 181.9,
        "published_mj": 7.37,
        "macs": 2_656_768,
        "source": ("MLPerf Tiny v0.5 closed division, reference submission: TFLite Micro "
                   "v2.3.1 built with CMSIS-NN (TAGS=cmsis-nn) on NUCLEO-L4R5ZI at 120 MHz, "
                   "kws performance run, median 5.497 "
                   f"inferences/s (181.9 ms); energy run 7.37 mJ/inference. {_RESULTS}"),
    },
    {
        "name": "MLPerf Tiny AD FC autoencoder (int8)",
        "model": "ad_autoencoder_tflite",
        "board": "nucleo-l4r5zi",
        "published_ms": 10.05,
        "published_mj": 0.416,
        "macs": 264_192,
        "source": ("MLPerf Tiny v0.5 closed division, reference submission: TFLite Micro "
                   "v2.3.1 (its build script names no kernel tag) on NUCLEO-L4R5ZI at "
                   "120 MHz, ad performance run, median 99.49 "
                   f"inferences/s (10.05 ms); energy run 0.416 mJ/inference. {_RESULTS}"),
    },
]

_SEED = 20210607  # fixed: the same bytes every time
_N_REPRESENTATIVE = 16


def _randomize(model, rng: np.random.Generator) -> None:
    """Seeded random weights; BatchNorm variances positive, so every layer is non-trivial
    (and no two bias vectors are identical, so the converter shares no buffers)."""
    weights = []
    for var in model.weights:
        shape = tuple(int(d) for d in var.shape)
        if "moving_variance" in var.name:
            weights.append(rng.uniform(0.5, 1.5, shape))
        elif "gamma" in var.name:
            weights.append(rng.uniform(0.8, 1.2, shape))
        else:
            weights.append(rng.normal(0.0, 0.1, shape))
    model.set_weights([w.astype(np.float32) for w in weights])


def _kws_model():
    from ..train.tf_runtime import keras

    k = keras()
    layers = k.layers
    inp = k.Input(shape=(49, 10, 1), name="mfcc")
    x = layers.Conv2D(64, (10, 4), strides=(2, 2), padding="same", name="conv1")(inp)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    for i in range(1, 5):
        x = layers.DepthwiseConv2D((3, 3), padding="same", name=f"dw{i}")(x)
        x = layers.BatchNormalization(name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(64, (1, 1), padding="same", name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"pw{i}_bn")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    x = layers.AveragePooling2D(pool_size=(25, 5), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    out = layers.Dense(12, activation="softmax", name="fc")(x)
    return k.Model(inp, out, name="mlperf_tiny_kws_dscnn")


def _ad_model():
    from ..train.tf_runtime import keras

    k = keras()
    layers = k.layers
    inp = k.Input(shape=(640,), name="features")
    x = inp
    for i, units in enumerate((128, 128, 128, 128, 8, 128, 128, 128, 128), start=1):
        x = layers.Dense(units, name=f"dense{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    out = layers.Dense(640, name="reconstruction")(x)
    return k.Model(inp, out, name="mlperf_tiny_ad_autoencoder")


def _convert(model, input_shape: tuple[int, ...]) -> bytes:
    from ..train.export import to_tflite

    rng = np.random.default_rng(_SEED)
    _randomize(model, rng)
    rep = rng.normal(0.0, 1.0, (_N_REPRESENTATIVE, *input_shape)).astype(np.float32)
    return to_tflite(model, quantize="int8", representative=rep, batch_size=1)


@functools.lru_cache(maxsize=1)
def kws_dscnn_tflite() -> bytes:
    """The MLPerf Tiny keyword-spotting DS-CNN, int8, batch 1 (random weights).

    Conv2D 64 filters 10x4 stride 2 SAME + BN + ReLU, then 4 x [DepthwiseConv2D 3x3 +
    BN + ReLU + Conv2D 1x1 64 + BN + ReLU], AveragePooling2D to 1x1, Dense 12 softmax.
    2,656,768 MACs by :mod:`workbench.optimize.graph`'s conventions. Takes a few
    seconds (TensorFlow conversion) the first time; cached afterwards.
    """
    return _convert(_kws_model(), (49, 10, 1))


@functools.lru_cache(maxsize=1)
def ad_autoencoder_tflite() -> bytes:
    """The MLPerf Tiny anomaly-detection autoencoder, int8, batch 1 (random weights).

    Dense 640-128-128-128-128-8-128-128-128-128-640, each hidden layer with BatchNorm and
    ReLU (folded into the fully connected ops by the converter). 264,192 MACs. Cached.
    """
    return _convert(_ad_model(), (640,))
