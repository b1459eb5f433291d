"""Training from a dataset snapshot, with a record of what was trained."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

if importlib.util.find_spec("tf_keras") is None or importlib.util.find_spec("aeon") is None:
    pytest.skip("needs tf_keras and aeon", allow_module_level=True)

from workbench.data import Dataset, verify_snapshot  # noqa: E402
from workbench.data.formats import example_dataset  # noqa: E402
from workbench.train.fit import TrainConfig, TrainingData, TrainingRecord, balanced_class_weights, train  # noqa: E402


@pytest.fixture(scope="module")
def motions(tmp_path_factory) -> Dataset:
    return example_dataset("basicmotions", tmp_path_factory.mktemp("bm") / "ds")


@pytest.fixture(scope="module")
def data(motions) -> TrainingData:
    return TrainingData.from_dataset(motions, length=100, predefined="split", val=0.2, seed=0)


def small_model(data):
    from workbench.train.tf_runtime import keras

    k = keras()
    t, c = data.input_shape
    inputs = k.Input(data.input_shape)
    x = k.layers.Reshape((t, 1, c))(inputs)
    x = k.layers.Conv2D(8, (5, 1), activation="relu")(x)
    x = k.layers.MaxPooling2D((4, 1))(x)
    x = k.layers.Flatten()(x)
    outputs = k.layers.Dense(data.n_classes, activation="softmax")(x)
    return k.Model(inputs, outputs, name="tiny_imu")


def test_training_data_is_split_by_recording_and_normalised(motions, data):
    assert data.classes == ["badminton", "running", "standing", "walking"]
    assert data.input_shape == (100, 6)
    assert len(data.X_test) == 40 and len(data.X_train) + len(data.X_val) == 40
    assert data.window["val_recordings"] >= 4  # one per class at least
    # normalised with training statistics only
    assert np.allclose(data.X_train.mean(axis=(0, 1)), 0, atol=1e-4)
    assert verify_snapshot(motions, data.snapshot_id) == []


def test_train_records_what_it_trained_on(data, tmp_path):
    # a builder: the weights are drawn after seeding, so the run does not depend on what
    # ran before it in the same process
    result = train(lambda: small_model(data), data, TrainConfig(epochs=60, patience=10, seed=1))
    rec = result.record
    assert rec.snapshot_id == data.snapshot_id
    assert rec.metrics["test"]["accuracy"] > 0.5  # 4 classes: chance is 0.25
    assert rec.metrics["test"]["n"] == 40 and len(rec.metrics["test"]["confusion"]) == 4
    assert rec.epochs_run == len(rec.history["loss"]) <= 60
    assert rec.normalizer == data.normalizer.to_dict()
    assert rec.versions["tensorflow"]
    model_path, record_path = result.save(tmp_path / "imu")
    assert model_path.exists() and TrainingRecord.load(record_path) == rec
    assert json.loads(record_path.read_text())["config"]["seed"] == 1


@pytest.mark.slow
def test_training_is_reproducible(data):
    runs = [train(lambda: small_model(data), data, TrainConfig(epochs=3, seed=7))
            for _ in range(2)]
    a, b = (r.model.get_weights() for r in runs)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert runs[0].record.history == runs[1].record.history
    other = train(lambda: small_model(data), data, TrainConfig(epochs=3, seed=8))
    assert not np.array_equal(other.model.get_weights()[0], a[0])


def test_balanced_class_weights():
    w = balanced_class_weights(np.array([0, 0, 0, 1]), 2)
    assert w[0] == pytest.approx(4 / 6) and w[1] == pytest.approx(2.0)


def test_training_monitor_follows_and_stops(data):
    pytest.importorskip("plotly")
    from workbench.ui import TrainingMonitor

    monitor = TrainingMonitor(classes=data.classes, epochs=50)
    cb = monitor.callback()

    class StopAfterTwo(type(cb).__mro__[1]):  # a plain Keras callback
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                monitor.request_stop()  # what the Stop button does

    result = train(small_model(data), data, TrainConfig(epochs=50, patience=50),
                   callbacks=[StopAfterTwo(), cb])
    assert result.record.epochs_run == 2 and monitor.progress.value == 2
    loss = next(t for t in monitor.figure.data if t.name == "loss")
    assert list(loss.y) == pytest.approx(result.record.history["loss"])
    monitor.show_result(result.record)
    assert "accuracy" in monitor.status.value
    # the figures are the Output widgets' state, set directly (a capture can hang Voila)
    for out, trace_type in ((monitor.curves, "scatter"), (monitor.confusion, "heatmap")):
        (only,) = out.outputs
        bundle = only["data"]["application/vnd.plotly.v1+json"]
        assert bundle["data"][0]["type"] == trace_type
        assert out.msg_id == ""          # never captured output
    assert len(bundle["data"][0]["z"]) == len(data.classes)


def test_import_train_is_light():
    code = ("import sys, workbench.train, workbench.train.fit; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
