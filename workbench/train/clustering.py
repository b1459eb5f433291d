"""Weight clustering: share a few values per kernel, fine-tune, strip the wrappers.

Usage::

    from workbench.train.clustering import cluster, unique_weights

    clustered = cluster(model, X, y, n_clusters=16, epochs=1)   # NEW, stripped model
    unique_weights(clustered)      # {"conv1": 16, "head": 16, ...}

Each clustered kernel keeps at most ``n_clusters`` distinct values, which makes the
model compress well; int8 conversion afterwards maps them to at most ``n_clusters``
int8 values per channel. BatchNormalization after a convolution is folded into it by
the converter, which scales the clustered values per channel: cluster models without
BatchNorm (or fold it first) if you need the property to survive conversion.

TensorFlow is imported on the first call, never at import (see ``tf_runtime``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .pruning import _clone, _kernel_layers, _steps_per_epoch
from .tf_runtime import keras, native_stderr_kept, tfmot

__all__ = ["INITS", "cluster", "unique_weights"]

#: Accepted ``init`` names -> ``tfmot.clustering.keras.CentroidInitialization`` members.
INITS = {
    "kmeans++": "KMEANS_PLUS_PLUS",
    "kmeans_plus_plus": "KMEANS_PLUS_PLUS",
    "linear": "LINEAR",
    "density": "DENSITY_BASED",
    "density_based": "DENSITY_BASED",
    "random": "RANDOM",
}


def _init(init: Any):
    cinit = tfmot().clustering.keras.CentroidInitialization
    if isinstance(init, cinit):
        return init
    member = INITS.get(str(init).lower()) if isinstance(init, str) else None
    if member is None:
        raise ValueError(f"init must be one of {sorted(INITS)} or a "
                         f"tfmot CentroidInitialization, got {init!r}")
    return getattr(cinit, member)


def cluster(model, x, y, *, n_clusters: int = 16, init: Any = "kmeans++", epochs: int = 1,
            batch_size: int = 32, validation_data: Any = None, optimizer: Any = None,
            loss: Any = "sparse_categorical_crossentropy", metrics: Any = ("accuracy",),
            verbose: int = 0):
    """A NEW copy of ``model`` with clustered kernels, fine-tuned and stripped.

    Follows tfmot's recipe: ``cluster_weights(number_of_clusters=n_clusters,
    cluster_centroids_init=...)``; compile; fit (gradients update the centroids);
    ``strip_clustering``. Kernels of Dense and convolution layers are clustered;
    biases are not.

    Args:
        model: a built, trained float tf_keras model. Not modified.
        x, y: fine-tuning data (``y`` matching ``loss``; class indices by default).
        n_clusters: distinct values per kernel, at least 2.
        init: centroid initialisation: ``"kmeans++"`` (default), ``"linear"``,
            ``"density"``, ``"random"``, or a ``CentroidInitialization``.
        epochs, batch_size: fine-tuning length (``epochs=0`` only clusters).
        validation_data: passed to ``fit``.
        optimizer: a name or a fresh optimizer instance; default Adam with
            learning rate 1e-4 (clustering fine-tunes gently).
        loss, metrics: passed to ``compile``.

    Returns:
        The stripped, uncompiled model.

    Raises:
        ValueError: ``n_clusters < 2``, unknown ``init``, negative epochs,
            non-positive batch size, empty data, an unbuilt or quantization-aware
            model.
        TypeError: not a tf_keras model.
    """
    if isinstance(n_clusters, bool) or int(n_clusters) != n_clusters or n_clusters < 2:
        raise ValueError(f"n_clusters must be an integer >= 2, got {n_clusters!r}")
    if int(epochs) != epochs or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    centroid_init = _init(init)
    if epochs:
        _steps_per_epoch(x, batch_size)
    clone = _clone(model)
    mot = tfmot().clustering.keras
    clustered = mot.cluster_weights(clone, number_of_clusters=int(n_clusters),
                                    cluster_centroids_init=centroid_init)
    if epochs:
        clustered.compile(optimizer=optimizer or keras().optimizers.Adam(1e-4), loss=loss,
                          metrics=list(metrics) if metrics else None)
        with native_stderr_kept(f"cluster {model.name}"):   # TensorFlow's native notices
            clustered.fit(x, y, epochs=int(epochs), batch_size=int(batch_size),
                          validation_data=validation_data, verbose=verbose, shuffle=True)
    return mot.strip_clustering(clustered)


def unique_weights(model) -> dict[str, int]:
    """``{layer name: distinct values in its kernel}`` for every layer with a kernel.

    For a layer with several kernels (e.g. separable convolutions) the largest
    count is given.
    """
    return {layer.name: max(int(np.unique(kk).size) for kk in ks)
            for layer, ks in _kernel_layers(model)}
