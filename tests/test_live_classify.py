"""Live classification in the capture panel, on a real virtual board: the panel's own
preview feeds a LivePredictor (no second stream), run in TFLite Micro on this machine or on
the board, and the answers are those of the same windows run through TFLM directly."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from conftest import wait_for  # noqa: E402

from workbench.deploy.live import BlockFeed  # noqa: E402
from workbench.train.export import predict_tflite  # noqa: E402
from workbench.ui.capture_panel import CapturePanel  # noqa: E402


@pytest.fixture
def panel(sim_url, tmp_path):
    p = CapturePanel(tmp_path / "ds", sim_url())
    yield p
    p.close()


def test_the_watched_stream_is_classified_on_this_machine(panel, sine_model, tmp_path):
    """The sine model takes one value: one temperature sample (1 Hz) per window."""
    path = tmp_path / "sine.tflite"
    path.write_bytes(sine_model)
    panel.sensor.value = "temp"
    cls = panel.classify
    cls.model.value = str(path)
    cls.classes.value = "sine"
    cls._clicked()                                  # what pressing Classify does
    assert cls.running, cls.status.value
    assert wait_for(lambda: cls.live.count >= 2, 30.0), cls.live.status.value
    p = cls.live.last
    assert p.window.shape == (1, 1) and 10 < p.window[0, 0] < 40      # degrees C
    host = predict_tflite(sine_model, p.inputs.reshape(1, -1))
    assert p.scores == pytest.approx(host.reshape(-1), abs=0)
    assert p.label == "sine" and "data-class='sine'" in cls.live.bars.value
    assert panel.recorder.previewing                 # the preview feeds it; nothing else
    panel.sensor.value = "humidity"                  # another sensor: classifying stops
    assert not cls.running and cls.live.start_button.disabled is False


def test_on_the_board_it_is_the_boards_answer(panel, sine_model):
    panel.recorder.device.upload_model(sine_model, name="sine")
    panel.sensor.value = "pressure"
    panel.classify.start(sine_model, classes=["sine"], where="board")
    assert wait_for(lambda: panel.classify.live.count >= 1, 30.0), panel.classify.live.status.value
    p = panel.classify.live.last
    host = predict_tflite(sine_model, p.inputs.reshape(1, -1))
    assert p.scores == pytest.approx(host.reshape(-1), abs=0) and p.latency_us > 0
    panel.classify.stop()
    assert not panel.classify.running


def test_a_registry_version_is_chosen_by_its_label(panel, sine_model, tmp_path):
    from workbench.deploy import ModelRegistry

    reg = ModelRegistry(tmp_path / "registry")
    v1 = reg.register(sine_model, name="sine")
    panel.classify.use_registry(reg)
    assert v1.label in panel.classify.model.options
    panel.sensor.value = "temp"
    panel.classify.model.value = v1.label
    panel.classify._clicked()
    assert panel.classify.running, panel.classify.status.value
    assert wait_for(lambda: panel.classify.live.count >= 1, 30.0)
    panel.classify.stop()


def test_a_model_that_does_not_fit_the_sensor_says_so(panel, sine_model):
    panel.sensor.value = "accel"                     # 3 channels; the model takes 1 value
    with pytest.raises(ValueError, match="not a whole number of accel samples"):
        panel.classify.start(sine_model)
    panel.classify.model.value = "/nowhere/model.tflite"
    panel.classify._clicked()
    assert "no .tflite file" in panel.classify.status.value and not panel.classify.running


def test_a_feed_drops_the_oldest_when_the_reader_falls_behind_and_close_wakes_it():
    feed = BlockFeed(100.0, max_blocks=3)
    for i in range(5):
        feed.push(np.full((2, 1), i))
    assert feed.dropped == 2
    assert [int(feed.read(0.1)[0, 0]) for _ in range(3)] == [2, 3, 4]
    assert feed.read(0.05) is None
    got = []
    reader = threading.Thread(target=lambda: got.append(feed.read(600.0)))
    reader.start()                     # waits in read: nothing is queued
    assert wait_for(lambda: reader.is_alive(), 5.0)
    feed.close()                       # wakes it long before its 600 s
    reader.join(60.0)
    assert not reader.is_alive() and got == [None]
    with pytest.raises(ValueError, match="positive"):
        BlockFeed(0)
