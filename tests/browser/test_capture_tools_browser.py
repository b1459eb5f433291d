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


@pytest.fixture(autouse=True)
def fresh_lab(request):
    """Each test starts JupyterLab with no notebook open (the workspace of the last test is
    forgotten) and no kernel of an earlier test running (they stream from virtual boards)."""
    if "lab_server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("lab_server")
    server.forget_workspaces()
    yield
    server.stop_kernels()
    server.forget_workspaces()


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
    page.wait_for_function("() => Number(document.querySelector('.wb-liveplot')"
                           "?.dataset.specColumns || 0) > 0", timeout=ARRIVE_TIMEOUT_MS)
    mic_view = (plot_data(page, "view"), int(plot_data(page, "specColumns")) > 0)
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
    # the microphone was drawn as a spectrogram (chosen for a microphone), temperature as traces
    assert mic_view == ("spectrogram", True)
    assert plot_data(page, "view") == "traces"


SPECTROGRAM = """\
import ipywidgets as widgets
import numpy as np
from IPython.display import display

from workbench.ui import LivePlot

RATE = 16000
n = np.arange(4 * RATE)
plot = LivePlot(["audio"], rate_hz=RATE, window_s=10, units="FS", title="tone",
                view="spectrogram")
plot.push((0.5 * np.sin(2 * np.pi * 1000 * n / RATE)).astype(np.float32))
seen = widgets.HTML()
plot.observe(lambda ch: setattr(seen, "value", f"<span class='py-view'>{plot.view}</span>"),
             names="view")
display(plot, seen)
"""


def pixel_sum(page, fx: float, f_hz: float, nyquist: float = 8000.0) -> int:
    """R+G+B of the canvas at ``fx`` of the plot's width and frequency ``f_hz``."""
    return page.evaluate("""([fx, f, nyq]) => {
        const c = document.querySelector('.wb-liveplot canvas');
        const dpr = c.width / c.getBoundingClientRect().width;
        const left = 64, right = 14, top = 28, bottom = 38;   // liveplot.js MARGIN (CSS px)
        const w = c.width / dpr, h = c.height / dpr;
        const x = left + fx * (w - left - right), y = (h - bottom) - f / nyq * (h - top - bottom);
        const p = c.getContext('2d').getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data;
        return p[0] + p[1] + p[2];
    }""", [fx, f_hz, nyquist])


def test_spectrogram_shows_a_tone_where_it_is_and_switches_to_traces(lab_server, page, shots):
    """A 1 kHz tone, 4 s of it in a 10 s window: bright at 1 kHz, dark at 5 kHz, over the
    first 40% of the time axis; the header button switches the Python object's view."""
    notebook(lab_server.root / "spec.ipynb", SPECTROGRAM)
    lab_server.run_until_shown(page, "spec.ipynb", ".wb-liveplot canvas")
    page.wait_for_function("() => Number(document.querySelector('.wb-liveplot')"
                           "?.dataset.specColumns || 0) > 400", timeout=ARRIVE_TIMEOUT_MS)
    wait_frames(page, 0)
    page.wait_for_timeout(300)   # a frame after the columns arrived
    page.locator(".wb-liveplot").screenshot(path=str(shots / "spectrogram.png"))
    # away from grid lines (every second, every 2 kHz): 2.5 s and 7.5 s, 1 kHz and 5 kHz
    tone, off = pixel_sum(page, 0.25, 1000), pixel_sum(page, 0.25, 5000)
    later = pixel_sum(page, 0.75, 1000)   # after the 4 s of data: the plot's background
    assert tone > off + 150, f"1 kHz row {tone} is not brighter than 5 kHz row {off}"
    assert later > tone, "the spectrogram is drawn past the data (or the background is dark)"
    page.locator(".wb-liveplot-view").click()
    page.wait_for_function("() => document.querySelector('.py-view')?.textContent === 'traces'",
                           timeout=ARRIVE_TIMEOUT_MS)
    assert plot_data(page, "view") == "traces"
    page.wait_for_timeout(300)
    page.locator(".wb-liveplot").screenshot(path=str(shots / "traces.png"))


TOOLS = """\
import ipywidgets as widgets
from IPython.display import display

from workbench.ui import CapturePanel, SerialMonitor

panel = CapturePanel({dataset!r}, {url!r})
pid = widgets.HTML(f"<span class='sim-pid'>{{panel.recorder.device.port._sim.pid}}</span>")
display(panel, pid)
"""

MONITOR = """\
monitor = SerialMonitor(panel.recorder.device)
display(monitor)
"""


def test_port_picker_serial_monitor_and_live_classification(lab_server, page, shots, tmp_path):
    """One panel on a virtual board: its picker lists that board (running) and new ones;
    the serial monitor beside it shows the SAMPLES frames while the plot keeps drawing (the
    port is not taken from the panel); Classify shows a class's probability as it streams."""
    notebook(lab_server.root / "tools.ipynb",
             TOOLS.format(dataset=str(tmp_path / "ds"),
                          url=f"sim://nano33ble?flash={tmp_path / 'board.flash'}"),
             MONITOR)
    lab_server.run_until_shown(page, "tools.ipynb", ".wb-serial-monitor")
    pid = page.locator(".sim-pid").inner_text(timeout=SHOW_TIMEOUT_MS).strip()

    # the port picker: refresh, then the running board (by its process) and new ones
    picker = page.locator(".wb-port-picker")
    picker.locator("button").first.click()
    menu = picker.locator("select").first
    page.wait_for_function(
        """([sel, pid]) => [...document.querySelector(sel).options]
             .some(o => o.textContent.replace(/\u00a0/g, ' ').includes(`(pid ${pid})`))""",
        arg=[".wb-port-picker select", pid], timeout=ARRIVE_TIMEOUT_MS)
    texts = menu.evaluate("s => [...s.options].map(o => o.textContent.replace(/\\u00a0/g, ' '))")
    running = next(t for t in texts if f"(pid {pid})" in t)
    assert running.startswith("/dev/pts/") and "virtual nano33ble" in running
    assert any(t == "virtual board (new): Arduino Nano 33 BLE Sense" for t in texts)
    field = picker.locator("input[type='text']")
    assert field.is_visible()                         # the panel's URL has options: other URL
    menu.select_option(label=next(o for o in menu.evaluate(
        "s => [...s.options].map(o => o.textContent)") if f"(pid\xa0{pid})" in o))
    field.wait_for(state="hidden", timeout=ARRIVE_TIMEOUT_MS)   # an entry: no field needed
    assert field.input_value().startswith("/dev/pts/")

    # the serial monitor: the panel's SAMPLES frames, while the panel's plot keeps drawing
    sample_line = page.locator(".wb-sm-line[data-dir='rx'][data-kind='frame']",
                               has_text="SAMPLES").first
    sample_line.wait_for(timeout=ARRIVE_TIMEOUT_MS)
    wait_frames(page, 5)
    page.locator(".wb-serial-monitor").screenshot(path=str(shots / "monitor.png"))

    # live classification of the temperature stream with the sine model, on this machine
    choose_sensor(page, "temp")
    box = page.locator(".wb-live-classify")
    box.get_by_placeholder("model.tflite or 'name vN'").fill(_sine_path())
    box.get_by_placeholder("idle, wave (output order)").fill("sine")
    box.get_by_role("button", name="Classify").click()
    box.locator(".wb-live tr[data-class='sine']").wait_for(timeout=ARRIVE_TIMEOUT_MS)
    box.get_by_role("button", name="Stop").first.wait_for(timeout=ARRIVE_TIMEOUT_MS)
    box.screenshot(path=str(shots / "classify.png"))
    assert "window(s) predicted" in box.inner_text()


def _sine_path() -> str:
    from importlib import resources

    return str(resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite")
