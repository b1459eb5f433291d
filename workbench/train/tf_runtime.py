"""TensorFlow, imported lazily and in the mode quantization-aware training needs.

tfmot's QAT works only with legacy Keras 2 (the ``tf_keras`` package), selected by
``TF_USE_LEGACY_KERAS=1`` *before* TensorFlow is first imported. Every module of
``workbench.train`` gets TensorFlow and Keras from here, inside functions, so that
``import workbench`` (and ``import workbench.train``) never pays for TensorFlow.
"""

from __future__ import annotations

import os
import sys


def tf():
    """The ``tensorflow`` module, with legacy Keras selected."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    elif os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError(
            "TensorFlow was imported before workbench.train with Keras 3; quantization-aware "
            "training needs legacy Keras. Restart the kernel and import workbench.train first, "
            "or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow.")
    import tensorflow

    return tensorflow


def keras():
    """Legacy Keras 2 (``tf_keras``), the one tfmot can quantize."""
    tf()
    import tf_keras

    return tf_keras


def tfmot():
    """TensorFlow Model Optimization (quantization, pruning, clustering)."""
    tf()
    import tensorflow_model_optimization

    return tensorflow_model_optimization
