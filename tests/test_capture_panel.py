"""The capture panel built and driven without a kernel, against the virtual board."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("ipywidgets")

from workbench.data import Dataset  # noqa: E402
from workbench.ui.capture_panel import CapturePanel  # noqa: E402


def test_panel_connects_previews_and_records(sim_url, tmp_path):
    panel = CapturePanel(tmp_path / "ds", sim_url())
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
    finally:
        panel.close()


def test_a_bad_url_is_shown_not_raised(tmp_path):
    panel = CapturePanel(tmp_path / "ds", "/dev/ttyNOPE9")
    try:
        assert "plugged in" in panel.status.value
        assert panel.record_button.disabled
    finally:
        panel.close()
