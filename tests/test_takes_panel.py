"""The capture panel's takes list, countdown, REC marker and unlabelled warning, built and
driven without a kernel against the virtual board."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("ipywidgets")

from workbench.data import Dataset  # noqa: E402
from workbench.ui.capture_panel import UNLABELED_WARNING, CapturePanel  # noqa: E402


def wait(cond, timeout=8.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.03)


def test_countdown_marker_and_takes_list(sim_url, tmp_path):
    panel = CapturePanel(tmp_path / "ds", sim_url(), countdown_s=1.0)
    try:
        assert panel.takes.takes == [] and not panel.takes.can_undo
        panel.label.value = "wave"
        panel.seconds.value = 0.6
        panel.record_button.value = True                 # what clicking Record does
        assert panel.record_button.description == "Cancel"
        assert "wb-capture-countdown" in panel.marker.value and ">1<" in panel.marker.value
        assert len(Dataset(tmp_path / "ds")) == 0         # nothing recorded yet
        wait(lambda: "REC 00:0" in panel.marker.value)
        assert panel.record_button.description == "Stop" and "wave" in panel.marker.value
        wait(lambda: not panel.record_button.value)       # the timed take ended by itself
        panel._refresh()
        assert panel.marker.value == ""
        (item,) = panel.takes.takes
        assert item["label"] == "wave" and item["sensor"] == "accel"
        assert item["seconds"] == pytest.approx(0.6, abs=0.02)
        assert len(item["thumb"]) == 3 and 2 < len(item["thumb"][0]) <= 80
        # a countdown called off records nothing
        panel.record_button.value = True
        assert panel.recorder.counting_down
        panel.record_button.value = False                 # Cancel
        assert not panel.recorder.counting_down and panel.record_button.description == "Record"
        time.sleep(1.3)
        assert len(Dataset(tmp_path / "ds")) == 1

        rid = item["id"]
        sent = []
        panel.takes.send = lambda msg, buffers=None: sent.append((msg, buffers))
        panel.takes.handle({"type": "play", "rec_id": rid})
        msg, buffers = sent[-1]
        assert msg["type"] == "take" and msg["rec_id"] == rid and msg["channels"] == 3
        assert len(buffers[0]) == msg["n"] * 3 * 4 and panel.takes.playing == rid
        panel.takes.handle({"type": "relabel", "rec_id": rid, "label": "circle"})
        assert Dataset(tmp_path / "ds").meta(rid).label == "circle"
        assert panel.takes.takes[0]["label"] == "circle" and panel.takes.can_undo
        panel.takes.handle({"type": "delete", "rec_id": rid})
        assert panel.takes.takes == [] and len(Dataset(tmp_path / "ds")) == 0
        assert (tmp_path / "ds" / "trash" / rid / "samples.bin").exists()
        panel._refresh()
        assert "0 takes" in panel.counters.value
        panel.takes.handle({"type": "undo"})
        assert [i["id"] for i in panel.takes.takes] == [rid]
        panel.takes.handle({"type": "undo"})
        assert panel.takes.takes[0]["label"] == "wave" and not panel.takes.can_undo
        panel.takes.handle({"type": "undo"})              # nothing left: said, not raised
        assert "nothing to undo" in panel.takes.error
        panel.takes.handle({"type": "relabel", "rec_id": rid, "label": "x" * 100})
        assert "at most" in panel.takes.error and panel.takes.takes[0]["label"] == "wave"
        panel.takes.handle({"type": "play", "rec_id": "nope"})
        assert "no recording" in panel.takes.error
    finally:
        panel.close()


def test_an_unlabelled_take_is_asked_about_first(sim_url, tmp_path):
    panel = CapturePanel(tmp_path / "ds", sim_url(), countdown_s=0)
    try:
        focused = []
        panel.label.focus = lambda: focused.append(True)
        panel.record_button.value = True                  # Record, no label
        assert not panel.record_button.value and panel.recorder.session is None
        assert "unlabeled-" in panel.status.value and focused
        panel._refresh()
        assert "unlabeled-" in panel.status.value         # stays
        panel.label.value = "tap"                         # typing a label clears the warning
        assert UNLABELED_WARNING[:20] not in panel.status.value
        panel.label.value = ""
        panel.record_button.value = True                  # asked again
        assert panel.recorder.session is None
        panel.record_button.value = True                  # pressed again: records unlabelled
        assert panel.recorder.session is not None and panel.recorder.session.running
        time.sleep(0.3)
        panel.record_button.value = False
        (meta,) = Dataset(tmp_path / "ds").recordings()
        assert meta.id.startswith("unlabeled-") and meta.label is None
        assert panel.takes.takes[0]["label"] is None
    finally:
        panel.close()


def test_a_take_from_code_shows_the_marker_and_its_missing_label(sim_url, tmp_path):
    panel = CapturePanel(tmp_path / "ds", sim_url())
    try:
        rec = panel.recorder
        rec.start("accel")                                # code, no label: recorded as before
        wait(lambda: "REC" in panel.marker.value)         # the panel's own ticker shows it
        assert "unlabeled-" in panel.marker.value and panel.record_button.description == "Stop"
        time.sleep(0.3)
        rec.stop()
        wait(lambda: panel.marker.value == "" and len(panel.takes.takes) == 1)
        rec.start_after(0.5, "accel", "wave", seconds=0.3)   # a countdown from code
        wait(lambda: "wb-capture-countdown" in panel.marker.value)
        wait(lambda: len(panel.takes.takes) == 2)
        assert panel.takes.takes[0]["label"] == "wave"    # newest first
        rec.delete(panel.takes.takes[1]["id"])            # an edit from code shows too
        wait(lambda: len(panel.takes.takes) == 1 and panel.takes.can_undo)
    finally:
        panel.close()
