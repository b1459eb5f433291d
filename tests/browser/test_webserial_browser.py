"""The Web Serial bridge in a real JupyterLab: HELLO, a sensor stream, a capture and a model
upload end to end, and what the page says when it cannot reach a port.

The browser's device picker cannot be driven headless, so the page's ``navigator.serial`` is
the one stand-in: injected before the page loads (``add_init_script``), its port relays over a
WebSocket to a small relay in this test, which relays to a real virtual board (``python -m
workbench.sim --tcp``). Everything between the port object and the board is real: the
widget's JavaScript, the comm messages, the kernel, the link.

The same HELLO and sensor stream run in Notebook 7; in Voila, where the notebook runs before
its page is shown and so cannot wait for Connect, a capture panel on ``webserial://board``
shows the bridge at its top and comes alive when the user connects.

The cells run with Run All, so the cell that opens ``webserial://`` is already blocked
waiting for the user when Connect is clicked: every message from the page (the port's
state, the board's bytes) reaches the kernel while a cell runs. With ipykernel 6 (no
subshells) that is the jupyter-ui-poll pump's doing; the notebook prints which way the
messages came and the test checks it matches the kernel's version.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from webserial_standin import FAKE_SERIAL_JS, relayed_board

pytestmark = pytest.mark.browser

SHOW_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 240_000

SETUP = """\
from workbench.ui import WebSerial

bridge = WebSerial("board")
bridge
"""

HELLO = """\
import ipykernel
from workbench.link import open_device, webserial

dev = open_device(bridge.url)        # blocks until Connect is clicked, then HELLO
ch = webserial.find("board")
print("HELLO", dev.info.board_id, dev.baudrate)
print("KERNEL", ipykernel.version_info[0], "SUBSHELL" if ch.delivered_off_main else "PUMP")
"""

STREAM = """\
rec = dev.record("accel", seconds=1.0)
print("SAMPLES", len(rec.raw), rec.lost)
"""

CAPTURE = """\
import tempfile
from workbench.capture import capture

meta = capture(dev, tempfile.mkdtemp(), "accel", seconds=0.5, label="idle")
print("CAPTURED", meta.samples)
"""

UPLOAD = """\
from importlib import resources
import numpy as np

model = (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()
slot = dev.upload_model(model, name="sine")
y = float(dev.infer(np.array([[1.0]], dtype=np.float32)).outputs[0].ravel()[0])
print("UPLOADED", slot.size == len(model), round(y, 1))
"""

UNPLUG = """\
from workbench.link import ConnectionLost
got = 0
try:
    with dev.stream("accel") as s:
        for block in s:
            got += len(block.raw)
except ConnectionLost as e:
    print("LOST", got > 0, e)
"""

REFUSED = """\
from workbench.link import open_device, WebSerialError
try:
    open_device(bridge.url)
except WebSerialError as e:
    print("REFUSED", type(e).__name__, e)
"""


@pytest.fixture
def board(tmp_path):
    with relayed_board(tmp_path / "board.flash") as relay:
        yield relay


def write_notebook(path: Path, cells: list[str]) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path.name


def output_text(page) -> str:
    return "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())


def wait_for_output(page, pattern: str, timeout_ms: float = RUN_TIMEOUT_MS) -> re.Match:
    page.wait_for_function(
        "(re) => [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some((e) => new RegExp(re).test(e.innerText))", arg=pattern, timeout=timeout_ms)
    return re.search(pattern, output_text(page))


def test_bridge_carries_hello_stream_capture_and_upload(lab_server, page, board, shots):
    page.add_init_script(FAKE_SERIAL_JS % {"ws": json.dumps(board.url), "mode": '"relay"'})
    name = write_notebook(lab_server.root / "webserial.ipynb",
                          [SETUP, HELLO, STREAM, CAPTURE, UPLOAD, UNPLUG])
    # ?reset: a workspace of this notebook alone (the module's server remembers other tabs)
    lab_server.run_until_shown(page, name + "?reset", ".wb-webserial", timeout_ms=SHOW_TIMEOUT_MS)
    widget = page.locator(".wb-webserial").first
    assert "click Connect" in widget.inner_text()
    page.screenshot(path=str(shots / "1-not-connected.png"))

    widget.locator(".wb-ws-connect").click()  # the HELLO cell is already waiting for this
    hello = wait_for_output(page, r"HELLO (\w+) (\d+)")
    assert hello.group(1) == "nano33ble" and hello.group(2) == "115200"
    kernel = wait_for_output(page, r"KERNEL (\d+) (\w+)")
    # ipykernel 6 has no subshells: the page's messages reached the blocked cell by the pump
    assert kernel.group(2) == ("PUMP" if int(kernel.group(1)) < 7 else "SUBSHELL")
    page.wait_for_function("() => document.querySelector('.wb-webserial').dataset.state === 'open'")
    assert "Connected: 2341:805A" in widget.inner_text()
    serial = page.evaluate("() => window.__serial")
    assert serial["requests"] == 1 and serial["baud"] == 115200
    assert {"usbVendorId": 0x2341, "usbProductId": 0x805A} in serial["filters"]

    samples = wait_for_output(page, r"SAMPLES (\d+) (\d+)")
    assert int(samples.group(1)) > 0 and samples.group(2) == "0"
    assert int(wait_for_output(page, r"CAPTURED (\d+)").group(1)) > 0
    uploaded = wait_for_output(page, r"UPLOADED (\w+) (-?[\d.]+)")
    assert uploaded.group(1) == "True" and abs(float(uploaded.group(2)) - 0.8) <= 0.2  # sin(1)
    page.screenshot(path=str(shots / "2-connected-after-upload.png"))
    assert int(widget.get_attribute("data-rx")) > 0 and int(widget.get_attribute("data-tx")) > 0

    # the UNPLUG cell streams until the cable is pulled; what arrived before is kept
    page.wait_for_timeout(1000)
    board.unplug()
    lost = wait_for_output(page, r"LOST (\w+) (.*unplugged.*)")
    assert lost.group(1) == "True" and "device has been lost" in lost.group(2)
    page.wait_for_function(
        "() => document.querySelector('.wb-webserial').dataset.state === 'unplugged'")
    assert "unplugged" in widget.inner_text() and "Plug it back in" in widget.inner_text()
    page.screenshot(path=str(shots / "3-unplugged.png"))


@pytest.mark.parametrize("mode,error,page_words,kernel_words", [
    ("none", "WebSerialUnsupported", "No Web Serial here", "Chrome, Edge or Opera"),
    ("cancel", "WebSerialCancelled", "No port chosen", "Click Connect again"),
])
def test_no_web_serial_and_a_cancelled_picker_say_what_to_do(lab_server, page, shots, mode,
                                                           error, page_words, kernel_words):
    page.add_init_script(FAKE_SERIAL_JS % {"ws": '""', "mode": json.dumps(mode)})
    name = write_notebook(lab_server.root / f"webserial-{mode}.ipynb", [SETUP, REFUSED])
    # ?reset: a workspace of this notebook alone (the module's server remembers other tabs)
    lab_server.run_until_shown(page, name + "?reset", ".wb-webserial", timeout_ms=SHOW_TIMEOUT_MS)
    widget = page.locator(".wb-webserial").first
    if mode == "cancel":
        widget.locator(".wb-ws-connect").click()
    else:
        assert widget.locator(".wb-ws-connect").is_disabled()
    refused = wait_for_output(page, r"REFUSED (\w+) (.*)")
    assert refused.group(1) == error and kernel_words in refused.group(2)
    assert page_words in widget.inner_text()
    page.screenshot(path=str(shots / f"{mode}.png"))


def check_hello_and_stream(server, page, board, shots, name: str) -> None:
    """Run All on SETUP, HELLO, STREAM; click Connect while HELLO waits; both reach the board."""
    page.add_init_script(FAKE_SERIAL_JS % {"ws": json.dumps(board.url), "mode": '"relay"'})
    nb = write_notebook(server.root / name, [SETUP, HELLO, STREAM])
    server.run_until_shown(page, nb, ".wb-webserial", timeout_ms=SHOW_TIMEOUT_MS)
    widget = page.locator(".wb-webserial").first
    assert "click Connect" in widget.inner_text()
    widget.locator(".wb-ws-connect").click()
    hello = wait_for_output(page, r"HELLO (\w+) (\d+)")
    assert hello.group(1) == "nano33ble" and hello.group(2) == "115200"
    kernel = wait_for_output(page, r"KERNEL (\d+) (\w+)")
    assert kernel.group(2) == ("PUMP" if int(kernel.group(1)) < 7 else "SUBSHELL")
    samples = wait_for_output(page, r"SAMPLES (\d+) (\d+)")
    assert int(samples.group(1)) > 0 and samples.group(2) == "0"
    assert "Connected: 2341:805A" in widget.inner_text()
    page.screenshot(path=str(shots / "hello-and-stream.png"))


def test_bridge_carries_hello_and_a_stream_in_notebook7(notebook_server, page, board, shots):
    check_hello_and_stream(notebook_server, page, board, shots, "webserial-nb7.ipynb")


PANEL = """from workbench.ui.capture_panel import CapturePanel

panel = CapturePanel(%r, "webserial://board", countdown_s=0)
panel
"""


def test_in_voila_the_capture_panel_comes_alive_when_the_user_connects(voila_server, page,
                                                                       board, shots, tmp_path):
    """Voila's supported pattern: the page shows the panel with the bridge at its top (no cell
    waited for Connect); Connect, and the panel connects (HELLO), draws the board live and
    records a take through the bridge."""
    dataset = tmp_path / "ds"
    page.add_init_script(FAKE_SERIAL_JS % {"ws": json.dumps(board.url), "mode": '"relay"'})
    (tmp_path / "voila0").mkdir(exist_ok=True)
    write_notebook(tmp_path / "panel.ipynb", [PANEL % str(dataset)])
    page.goto(voila_server(tmp_path / "panel.ipynb"), timeout=SHOW_TIMEOUT_MS)
    widget = page.locator(".wb-webserial").first
    widget.wait_for(timeout=SHOW_TIMEOUT_MS)
    page.get_by_text("click Connect on the Web Serial bar").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Record").is_disabled()
    page.screenshot(path=str(shots / "1-waiting-for-connect.png"))

    widget.locator(".wb-ws-connect").click()
    page.get_by_text("connected to Arduino Nano 33 BLE Sense at webserial://board").wait_for(
        timeout=60_000)
    page.wait_for_function(
        "() => Number(document.querySelector('.wb-liveplot')?.dataset.frames || 0) > 10",
        timeout=60_000)
    page.get_by_placeholder("e.g. wave").fill("tap")
    page.get_by_role("button", name="Record").click()
    page.get_by_role("button", name="Stop").wait_for(timeout=15_000)
    page.wait_for_function("() => /REC 00:0[1-9]\\.\\d/.test(document.querySelector("
                           "'.wb-capture-rec')?.textContent || '')", timeout=15_000)
    page.get_by_role("button", name="Stop").click()
    page.locator(".wb-takes-row").first.wait_for(timeout=15_000)
    metas = [json.loads(p.read_text()) for p in dataset.glob("recordings/*/meta.json")]
    assert len(metas) == 1 and metas[0]["label"] == "tap" and metas[0]["samples"] > 0
    assert metas[0]["lost"] == 0
    assert int(widget.get_attribute("data-rx")) > 0
    page.screenshot(path=str(shots / "2-recorded-through-the-bridge.png"))
