"""Training small models for microcontrollers: model zoo, training, QAT, distillation,
pruning and clustering.

Call order::

    from workbench.train import TrainConfig, TrainingData, imu_cnn, quantize_aware, to_tflite, train
    data = TrainingData.from_dataset(ds, length=100)      # a snapshot, split and normalised
    result = train(imu_cnn(data.input_shape, data.n_classes), data, TrainConfig(epochs=40))
    qat = train(quantize_aware(result.model), data)       # optional: QAT; or Distiller, prune,
                                                          # cluster
    tflite = to_tflite(qat.model, quantize="int8", representative=data.X_train)
    # (workbench.optimize.make_variants converts and compares every variant at once)

Modules: :mod:`.zoo` (model builders), :mod:`.fit` (training with a record of what was
trained), :mod:`.qat`, :mod:`.distill`, :mod:`.pruning`, :mod:`.clustering` (the
optimizations), :mod:`.export` (TFLite conversion), :mod:`.features` and :mod:`.audio`
(feature extraction), :mod:`.tf_runtime` (TensorFlow itself).

TensorFlow loads on first use, never at import: every name but :func:`tf`, :func:`keras` and
:func:`tfmot` loads its module when first used. Use those three wherever TensorFlow is
needed (they select legacy Keras, ``TF_USE_LEGACY_KERAS=1``, before TensorFlow loads,
because quantization-aware training needs it; see :mod:`.tf_runtime`). Importing this
package sets the same default for TensorFlow imported any other way later.
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING

from .._exports import lazy
from .tf_runtime import keras, tf, tfmot

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .audio import FrontEnd
    from .clustering import cluster
    from .distill import Distiller
    from .export import predict_tflite, to_tflite
    from .features import Normalizer, augment
    from .fit import (
        TrainConfig,
        TrainingData,
        TrainingRecord,
        TrainResult,
        classification_metrics,
        set_seed,
        train,
    )
    from .pruning import prune, sparsity
    from .qat import UnsupportedLayerError, qat_from_scratch, quantize_aware
    from .zoo import dense_autoencoder, ds_cnn, image_cnn, imu_cnn

# public name -> submodule that defines it (no submodule is named like a public name)
_LAZY = {
    "imu_cnn": ".zoo", "ds_cnn": ".zoo", "image_cnn": ".zoo", "dense_autoencoder": ".zoo",
    "TrainingData": ".fit", "TrainConfig": ".fit", "train": ".fit", "TrainResult": ".fit",
    "TrainingRecord": ".fit", "classification_metrics": ".fit", "set_seed": ".fit",
    "quantize_aware": ".qat", "qat_from_scratch": ".qat", "UnsupportedLayerError": ".qat",
    "Distiller": ".distill",
    "prune": ".pruning", "sparsity": ".pruning",
    "cluster": ".clustering",
    "to_tflite": ".export", "predict_tflite": ".export",
    "Normalizer": ".features", "augment": ".features",
    "FrontEnd": ".audio",
}

__all__ = ["Distiller", "FrontEnd", "Normalizer", "TrainConfig", "TrainResult", "TrainingData",
           "TrainingRecord", "UnsupportedLayerError", "augment", "classification_metrics",
           "cluster", "dense_autoencoder", "ds_cnn", "image_cnn", "imu_cnn", "keras",
           "predict_tflite", "prune", "qat_from_scratch", "quantize_aware", "set_seed",
           "sparsity", "tf", "tfmot", "to_tflite", "train"]

__getattr__, __dir__ = lazy(__name__, _LAZY)
