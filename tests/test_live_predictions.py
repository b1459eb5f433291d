"""Live predictions on a real virtual board: windows of its own sensor streams, run on the
board, equal to the same windows run through TFLite Micro on the host."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from workbench.deploy import LivePredictor
from workbench.link import NoModel, open_device
from workbench.train.export import predict_tflite


def accel_z_last(window):
    """The sine model takes one value: the last sample's accelerometer z (about 1 g)."""
    return np.array([[window[-1, 2]]], np.float32)


def test_windows_of_two_sensors_are_predicted_on_the_board(sim_url, sine_model):
    with open_device(sim_url("nano33ble")) as dev:
        dev.upload_model(sine_model, name="sine")
        live = LivePredictor(dev, sine_model, sensors=["accel", "gyro"], length=8,
                             rate_hz=119, preprocess=accel_z_last)
        got = list(live.predictions(count=5))
        assert [p.index for p in got] == list(range(5))
        assert [p.end_s for p in got] == pytest.approx([8 * (i + 1) / 119 for i in range(5)])
        for p in got:
            assert p.window.shape == (8, 6)
            assert np.all(np.abs(p.window[:, 2] - 1.0) < 0.1)      # accel z: gravity, in g
            assert np.all(np.abs(p.window[:, 3:]) < 20)              # gyro at rest, in dps
            host = predict_tflite(sine_model, p.inputs.reshape(1, -1))       # TFLM on this machine
            assert p.scores == pytest.approx(host.reshape(-1), abs=0)
            assert p.label is None and p.confidence == p.scores.max()
        dev.ping()                                          # streams stopped, link fine


def test_resampling_to_the_models_rate_and_stopping_from_another_thread(sim_url, sine_model):
    with open_device(sim_url("nano33ble")) as dev:
        dev.upload_model(sine_model, name="sine")
        live = LivePredictor(dev, sine_model, sensors=["accel"], length=5, rate_hz=50,
                             hop=2, preprocess=lambda w: np.array([[w[:, 2].mean()]]),
                             classes=["only"])
        assert live.stream_rates == [59.5]                  # the lowest rate >= 50 Hz
        seen, stop = [], threading.Event()

        def on_prediction(p):
            seen.append(p)
            if len(seen) == 4:
                stop.set()

        errors = []
        live.run(on_prediction, stop, on_error=errors.append).join(60)
        assert not errors and len(seen) >= 4
        assert [p.end_s for p in seen[:4]] == pytest.approx([(5 + 2 * i) / 50 for i in range(4)])
        assert all(p.label == "only" for p in seen)
        dev.ping()                                          # the link is still fine


def test_clear_errors(sim_url, sine_model):
    with open_device(sim_url("nano33ble")) as dev:
        with pytest.raises(ValueError, match="takes 1"):
            LivePredictor(dev, sine_model, sensors=["accel"], length=4, rate_hz=119)
        with pytest.raises(ValueError, match="at most"):
            LivePredictor(dev, sine_model, sensors=["temp"], length=1, rate_hz=100)
        live = LivePredictor(dev, sine_model, sensors=["accel"], length=1, rate_hz=119,
                             preprocess=accel_z_last)
        with pytest.raises(NoModel):                         # the board runs nothing yet
            next(live.predictions(count=1))
        dev.ping()
