"""The capture panel built and driven without a kernel, against the virtual board."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("ipywidgets")

from workbench.data import Dataset  # noqa: E402
from workbench.ui.capture_panel import CapturePanel  # noqa: E402


def test_panel_connects_previews_and_records(sim_url, tmp_path):
    panel = CapturePanel(tmp_path / "ds", sim_url(), countdown_s=0)
    try:
        assert [v for _, v in panel.sensor.options][:2] == ["accel", "gyro"]
        assert panel.scenario.layout.display == "" and "wave" in panel.scenario.options
        assert panel.plot is not None and panel.plot.channels == ["x", "y", "z"]
        time.sleep(0.6)
        assert panel.recorder.previewing
        panel.scenario.value = "wave"
        panel.label.value = "wave"
        panel.record_button.value = True  # what clicking Record does
        time.sleep(1.0)
        assert "recording" in panel.counters.value
        panel.record_button.value = False
        (meta,) = Dataset(tmp_path / "ds").recordings()
        assert meta.label == "wave" and meta.samples > 100
        assert "last take" in panel.counters.value and "0 lost" in panel.counters.value
        assert "wave" in panel.label.options
        assert panel.recorder.previewing  # back to watching
        panel.sensor.value = "gyro"
        assert panel.plot.title.startswith("gyro")
        panel.seconds.value = 0.5
        panel.record_button.value = True
        deadline = time.monotonic() + 5
        while panel.record_button.value and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not panel.record_button.value  # a timed take ends by itself
        assert len(Dataset(tmp_path / "ds")) == 2
        # and the panel says so: two takes, the last one's samples (not "0 samples, 0 takes")
        last = panel.recorder.takes[-1]
        assert len(panel.recorder.takes) == 2 and last.samples > 0
        panel._refresh()
        assert f"{last.samples:,} samples" in panel.counters.value
        assert "2 takes" in panel.counters.value and "last take" in panel.counters.value
        deadline = time.monotonic() + 5
        while not panel.recorder.previewing and time.monotonic() < deadline:
            time.sleep(0.05)
        assert panel.recorder.previewing  # back to watching after the timed take
    finally:
        panel.close()


def test_a_bad_url_is_shown_not_raised(tmp_path):
    panel = CapturePanel(tmp_path / "ds", "/dev/ttyNOPE9")
    try:
        assert "plugged in" in panel.status.value
        assert panel.record_button.disabled
    finally:
        panel.close()


def test_an_error_stays_until_the_next_action_and_a_disconnected_panel_says_so(sim_url,
                                                                           tmp_path):
    panel = CapturePanel(tmp_path / "ds", "/dev/ttyNOPE9")
    try:
        for _ in range(3):                     # what the ticker does, several times
            panel._refresh()
        assert "plugged in" in panel.status.value
        assert "#999" in panel.counters.value and "not connected" in panel.counters.value
        assert panel.record_button.disabled
        panel.record_button.value = True       # a click that cannot record
        assert not panel.record_button.value and "connect" in panel.status.value
        panel.url.value = sim_url()
        panel.connect()                        # the next action: the error goes
        assert "plugged in" not in panel.status.value and "connected" in panel.status.value
        assert not panel.record_button.disabled and "#2a2" in panel.counters.value
    finally:
        panel.close()


def test_the_controls_follow_a_take_driven_from_code(sim_url, tmp_path):
    panel = CapturePanel(tmp_path / "ds", sim_url(), countdown_s=0)
    try:
        rec = panel.recorder
        assert panel.scenario.value != "wave"
        rec.set_scenario("wave")                # code, not the menu
        panel.label.value = "something else"
        rec.start("accel", "tap")               # code, not the button
        panel._refresh()
        assert panel.record_button.value and panel.record_button.description == "Stop"
        assert panel.scenario.value == "wave" and panel.label.value == "tap"
        assert "recording" in panel.counters.value
        time.sleep(0.3)
        rec.stop()
        panel._refresh()
        assert not panel.record_button.value and panel.record_button.description == "Record"
        assert "tap" in panel.label.options and "1 takes" in panel.counters.value
        assert rec.previewing                   # back to the preview
        assert len(Dataset(tmp_path / "ds")) == 1   # following the recorder stored nothing more
    finally:
        panel.close()
