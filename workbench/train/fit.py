"""Training with a record of what was trained, from a dataset snapshot.

Call order::

    data = TrainingData.from_dataset(ds, length=100, test=0.2, val=0.2)   # snapshot + split
    model = imu_cnn(data.input_shape, data.n_classes)
    result = train(model, data, TrainConfig(epochs=40))                    # early stopping
    result.save("models/imu")          # model + training record side by side

:func:`train` compiles the model (unless told not to), seeds every random source,
weights classes by their frequency, stops early on the validation loss and
restores the best weights. The :class:`TrainingRecord` names the dataset snapshot
the windows came from, the hyper-parameters and the metrics, so a model file can
always say exactly what it learned from.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset, snapshot, split_recordings, windows
from .features import Normalizer
from .tf_runtime import keras, native_stderr_kept, tf


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (and make TF ops deterministic where it can)."""
    random.seed(seed)
    np.random.seed(seed)
    keras().utils.set_random_seed(seed)
    try:
        tf().config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError):  # older TF, or already initialised
        pass


@dataclass
class TrainingData:
    """Normalised, split windows of one dataset snapshot, ready for ``fit``.

    ``y_*`` are class indices into ``classes``. The normalizer is fitted on the
    training windows only. ``snapshot_id`` names the exact data.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    normalizer: Normalizer
    snapshot_id: str = ""
    window: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def from_dataset(cls, dataset: Dataset, length: int, stride: int | None = None, *,
                     test: float = 0.2, val: float = 0.2, seed: int = 0,
                     predefined: str | None = None, sensor: str | None = None) -> "TrainingData":
        """Snapshot the dataset, cut windows, split by recording (no leakage), normalise.

        With ``predefined="split"`` the dataset's own train/test split is kept and
        the validation set is dealt from the training recordings.
        """
        snap = snapshot(dataset, note="training")
        w = windows(dataset, length, stride, sensor=sensor)
        split = split_recordings(dataset, test=test, val=val, seed=seed, predefined=predefined)
        train_ids, val_ids, test_ids = list(split.train), list(split.val), list(split.test)
        if predefined and not val_ids and val:
            rng = random.Random(seed)
            by_label: dict[str, list[str]] = {}
            for rid in train_ids:
                by_label.setdefault(dataset.meta(rid).label or "", []).append(rid)
            for ids in by_label.values():
                rng.shuffle(ids)
                take = max(1, round(len(ids) * val)) if len(ids) > 1 else 0
                val_ids += ids[:take]
            train_ids = [r for r in train_ids if r not in set(val_ids)]
        tr, va, te = w.subset(train_ids), w.subset(val_ids), w.subset(test_ids)
        if not len(tr):
            raise ValueError("no training windows: the dataset needs more labelled recordings")
        classes = w.classes
        norm = Normalizer().fit(tr.X)

        def enc(part):
            return (norm.transform(part.X).astype(np.float32),
                    part.encoded(classes)[0] if len(part) else np.zeros(0, np.int64))

        (xtr, ytr), (xva, yva), (xte, yte) = enc(tr), enc(va), enc(te)
        return cls(xtr, ytr, xva, yva, xte, yte, classes, norm, snap.id,
                   {"length": length, "stride": stride or length, "rate_hz": w.rate_hz,
                    "channels": list(w.channels), "train_recordings": len(train_ids),
                    "val_recordings": len(val_ids), "test_recordings": len(test_ids)})


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 8
    """Epochs without a better validation loss before stopping (restoring the best)."""
    class_weights: str | dict | None = "balanced"
    seed: int = 0
    compile: bool = True
    """False: the model is already compiled (e.g. a Distiller), use it as it is."""


def balanced_class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """Weights inversely proportional to class frequency (sklearn's "balanced")."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    total = counts.sum()
    return {i: (total / (n_classes * c) if c else 0.0) for i, c in enumerate(counts)}


@dataclass
class TrainingRecord:
    """What was trained, on what, how, and how well. Saved beside the model as JSON."""

    model_name: str
    params: int
    classes: list[str]
    snapshot_id: str
    window: dict
    normalizer: dict
    config: dict
    metrics: dict
    history: dict
    epochs_run: int
    stopped_early: bool
    seconds: float
    technique: str = "float"
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(
        timespec="seconds"))
    versions: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainingRecord":
        return cls(**json.loads(Path(path).read_text()))


def classification_metrics(model, X: np.ndarray, y: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, per-class precision/recall and the confusion matrix (rows: truth)."""
    if not len(X):
        return {"accuracy": None, "n": 0}
    pred = np.argmax(model.predict(X, verbose=0, batch_size=256), axis=1)
    return metrics_from_predictions(y, pred, classes)


def metrics_from_predictions(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict:
    k = len(classes)
    cm = np.zeros((k, k), dtype=int)
    for t, p in zip(y, pred):
        cm[t, p] += 1
    per_class = {}
    for i, c in enumerate(classes):
        tp = cm[i, i]
        per_class[c] = {"precision": float(tp / cm[:, i].sum()) if cm[:, i].sum() else None,
                        "recall": float(tp / cm[i].sum()) if cm[i].sum() else None,
                        "support": int(cm[i].sum())}
    return {"accuracy": float(np.trace(cm) / cm.sum()), "n": int(cm.sum()),
            "errors": int(cm.sum() - np.trace(cm)), "confusion": cm.tolist(),
            "per_class": per_class}


@dataclass
class TrainResult:
    model: Any
    record: TrainingRecord

    def save(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``<path>.keras`` (the model) and ``<path>.json`` (the record)."""
        base = Path(path)
        base.parent.mkdir(parents=True, exist_ok=True)
        model_path = base.with_suffix(".keras")
        self.model.save(model_path)
        return model_path, self.record.save(base.with_suffix(".json"))


def train(model, data: TrainingData, config: TrainConfig | None = None, *,
          callbacks: list | tuple = (), technique: str = "float", verbose: int = 0) -> TrainResult:
    """Train ``model`` on ``data`` and return it with its :class:`TrainingRecord`.

    ``model`` is a Keras model, or a function that builds one: a builder is called
    after seeding, so the initial weights, and the whole run, are reproducible.
    Side effects: seeds all random number generators with ``config.seed``;
    compiles ``model`` (Adam, sparse categorical cross-entropy, accuracy) unless
    ``config.compile`` is False; trains it in place. Early stopping watches the
    validation loss (the training loss if there is no validation set) and
    restores the best weights. ``callbacks`` (e.g. the training widget's) are
    added to Keras's. ``config`` defaults to a new ``TrainConfig()`` per call. What
    TensorFlow's native code writes to fd 2 meanwhile is held back
    (:func:`~.tf_runtime.native_stderr_kept`), shown only if training fails.
    """
    config = TrainConfig() if config is None else config
    k = keras()
    set_seed(config.seed)
    if not hasattr(model, "fit") and callable(model):
        model = model()  # a builder: weights initialised after seeding, so reproducible
    if config.compile:
        model.compile(optimizer=k.optimizers.Adam(config.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    has_val = len(data.X_val) > 0
    monitor = "val_loss" if has_val else "loss"
    stop = k.callbacks.EarlyStopping(monitor=monitor, patience=config.patience,
                                     restore_best_weights=True)
    weights = config.class_weights
    if weights == "balanced":
        weights = balanced_class_weights(data.y_train, data.n_classes)
    t0 = time.perf_counter()
    # TensorFlow's native runtime logs to fd 2 while it trains (e.g. a NodeDef attribute
    # notice from tf.data): held back as during import and conversion (see tf_runtime)
    with native_stderr_kept(f"train {model.name}"):
        history = model.fit(data.X_train, data.y_train, epochs=config.epochs,
                            batch_size=config.batch_size, class_weight=weights or None,
                            validation_data=(data.X_val, data.y_val) if has_val else None,
                            callbacks=[stop, *callbacks], verbose=verbose, shuffle=True)
        seconds = time.perf_counter() - t0
        epochs_run = len(history.history.get("loss", []))
        predictor = getattr(model, "student", model)
        metrics = {name: classification_metrics(predictor, X, y, data.classes)
                   for name, X, y in (("train", data.X_train, data.y_train),
                                      ("val", data.X_val, data.y_val),
                                      ("test", data.X_test, data.y_test))}
    cfg = asdict(config)
    cfg["class_weights"] = ({str(i): w for i, w in weights.items()} if isinstance(weights, dict)
                            else weights)
    record = TrainingRecord(
        model_name=predictor.name, params=int(predictor.count_params()), classes=data.classes,
        snapshot_id=data.snapshot_id, window=data.window, normalizer=data.normalizer.to_dict(),
        config=cfg, metrics=metrics,
        history={key: [float(v) for v in vals] for key, vals in history.history.items()},
        epochs_run=epochs_run, stopped_early=epochs_run < config.epochs, seconds=seconds,
        technique=technique, versions=_versions())
    return TrainResult(predictor, record)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tinyml-workbench", "tensorflow", "tf-keras", "tensorflow-model-optimization"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
