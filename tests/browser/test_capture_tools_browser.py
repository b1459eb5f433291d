"""The capture panel's tools in a real browser (JupyterLab), on a virtual board.

* a sensor switch (microphone -> temperature) leaves no stale block of the old sensor in the
  plot: the time axis of the new plot ends near the time the new sensor has streamed;
* the port picker lists the running virtual board and "virtual board (new)" entries;
* the serial monitor shows the frames a connected panel exchanges, without taking the port;
* the microphone is drawn as a scrolling spectrogram, switchable to traces and back;
* live classification shows the class probabilities of the latest window.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SHOW_TIMEOUT_MS = 120_000
ARRIVE_TIMEOUT_MS = 60_000


def notebook(path: Path, *cells: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def plot_data(page, key: str) -> str:
    return page.evaluate(f"() => document.querySelector('.wb-liveplot')?.dataset.{key} ?? ''")


def wait_frames(page, n: int) -> None:
    """Wait until the (current) live plot has drawn ``n`` more frames with new data."""
    frames = "Number(document.querySelector('.wb-liveplot')?.dataset.frames || 0)"
    now = page.evaluate(f"() => {frames}")
    page.wait_for_function(f"() => {frames} >= {now + n}", timeout=ARRIVE_TIMEOUT_MS)


def choose_sensor(page, sensor: str) -> None:
    """Pick ``sensor`` in the panel's Sensor menu, as a person does."""
    select = page.locator(".widget-dropdown:has(label:text-is('Sensor')) select")
    select.locator("option").first.wait_for(state="attached", timeout=SHOW_TIMEOUT_MS)
    texts = select.evaluate("s => [...s.options].map(o => o.textContent.trim())")
    label = next((o for o in texts if o.replace("\xa0", " ").startswith(sensor + " ")), None)
    assert label, f"no {sensor} in the Sensor menu: {texts}"
    select.select_option(label=label)
    page.wait_for_function(
        f"() => (document.querySelector('.wb-liveplot-title')?.textContent || '')"
        f".startsWith({sensor!r})", timeout=ARRIVE_TIMEOUT_MS)


def test_sensor_switch_leaves_no_stale_blocks(lab_server, page, shots, tmp_path):
    """Microphone, then temperature: the temperature plot holds only temperature samples, so
    its newest point is at about the seconds it has streamed (1 Hz), not at the microphone's
    sample count read at 1 Hz (hundreds of seconds, the stale blocks on a jumped axis)."""
    notebook(lab_server.root / "switch.ipynb",
             "from workbench.ui import CapturePanel\n"
             f"panel = CapturePanel({str(tmp_path / 'ds')!r}, "
             f"'sim://nano33ble?flash={tmp_path / 'board.flash'}')\n"
             "panel")
    lab_server.run_until_shown(page, "switch.ipynb", ".wb-liveplot canvas")
    choose_sensor(page, "mic")
    wait_frames(page, 10)
    page.screenshot(path=str(shots / "mic.png"))
    switched = time.monotonic()
    choose_sensor(page, "temp")
    wait_frames(page, 3)   # temperature comes at 1 Hz: three messages
    page.wait_for_function("() => document.querySelector('.wb-liveplot')?.dataset.lastT",
                           timeout=ARRIVE_TIMEOUT_MS)
    page.screenshot(path=str(shots / "temp.png"))
    last_t = float(plot_data(page, "lastT"))
    streamed = time.monotonic() - switched
    assert 0 <= last_t <= streamed + 2, (
        f"the temperature plot ends at {last_t} s after {streamed:.1f} s of streaming: "
        "it holds samples that are not the temperature's")
    assert int(plot_data(page, "points")) <= streamed + 2
