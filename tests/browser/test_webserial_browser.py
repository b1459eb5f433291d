"""The Web Serial bridge in a real JupyterLab: HELLO, a sensor stream, a capture and a model
upload end to end, and what the page says when it cannot reach a port.

The browser's device picker cannot be driven headless, so the page's ``navigator.serial`` is
the one stand-in: injected before the page loads (``add_init_script``), its port relays over a
WebSocket to a small relay in this test, which relays to a real virtual board (``python -m
workbench.sim --tcp``). Everything between the port object and the board is real: the
widget's JavaScript, the comm messages, the kernel, the link.

The cells run with Run All, so the cell that opens ``webserial://`` is already blocked
waiting for the user when Connect is clicked: every message from the page (the port's
state, the board's bytes) reaches the kernel while a cell runs. With ipykernel 6 (no
subshells) that is the jupyter-ui-poll pump's doing; the notebook prints which way the
messages came and the test checks it matches the kernel's version.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SHOW_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 240_000

#: A stand-in for the browser's Web Serial API: a port that relays over a WebSocket.
#: MODE "relay": getPorts() lists nothing until requestPort() grants the port;
#: "cancel": requestPort() rejects as when the user closes the picker; "none": no
#: navigator.serial at all (Firefox, Safari).
FAKE_SERIAL_JS = """
(() => {
  const WS_URL = %(ws)s, MODE = %(mode)s;
  if (MODE === "none") {
    Object.defineProperty(Navigator.prototype, "serial", {get: () => undefined, configurable: true});
    return;
  }
  window.__serial = {opened: 0, requests: 0, filters: null, baud: null};
  class RelayPort extends EventTarget {
    constructor() { super(); this.readable = null; this.writable = null; this.ws = null; }
    getInfo() { return {usbVendorId: 0x2341, usbProductId: 0x805A}; }
    async open({baudRate}) {
      if (this.ws) throw new DOMException("The port is already open.", "InvalidStateError");
      const ws = new WebSocket(WS_URL);
      ws.binaryType = "arraybuffer";
      await new Promise((ok, fail) => {
        ws.onopen = ok;
        ws.onerror = () => fail(new DOMException("Failed to open serial port.", "NetworkError"));
      });
      this.ws = ws;
      this.readable = new ReadableStream({
        start(c) {
          ws.onmessage = (e) => c.enqueue(new Uint8Array(e.data));
          ws.onclose = () => { try { c.error(new DOMException("The device has been lost.", "NetworkError")); } catch (e) {} };
        },
        cancel() { ws.close(); },
      });
      this.writable = new WritableStream({write(chunk) { ws.send(chunk); }});
      window.__serial.opened += 1;
      window.__serial.baud = baudRate;
    }
    async close() {
      if (this.ws) { this.ws.onclose = null; this.ws.close(); }
      this.ws = null; this.readable = null; this.writable = null;
    }
    async setSignals() {}
  }
  const granted = [];
  const serial = new EventTarget();
  serial.getPorts = async () => granted.slice();
  serial.requestPort = async (options) => {
    window.__serial.requests += 1;
    window.__serial.filters = (options || {}).filters || null;
    if (MODE === "cancel") throw new DOMException("No port selected by the user.", "NotFoundError");
    if (!granted.length) granted.push(new RelayPort());
    return granted[0];
  };
  Object.defineProperty(Navigator.prototype, "serial", {get: () => serial, configurable: true});
})();
"""

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


class WsRelay:
    """A WebSocket server that relays each connection to the board's TCP port (own thread,
    own event loop). ``unplug()`` drops every connection, as a pulled cable would."""

    def __init__(self, board: tuple[str, int]) -> None:
        from websockets.asyncio.server import serve

        self.board = board
        self.loop = asyncio.new_event_loop()
        self.conns: set = set()
        ready = threading.Event()

        async def main():
            self.server = await serve(self.handler, "127.0.0.1", 0, max_size=None)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            await self.server.serve_forever()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       daemon=True)
        self.thread.start()
        ready.wait(10)
        self.url = f"ws://127.0.0.1:{self.port}/"

    async def handler(self, ws):
        reader, writer = await asyncio.open_connection(*self.board)
        self.conns.add(ws)

        async def down():
            while data := await reader.read(65536):
                await ws.send(data)

        task = asyncio.ensure_future(down())
        try:
            async for message in ws:
                writer.write(message)
                await writer.drain()
        except Exception:  # noqa: BLE001, S110 - the page went away
            pass
        finally:
            task.cancel()
            writer.close()
            self.conns.discard(ws)

    def unplug(self) -> None:
        async def drop():
            for ws in list(self.conns):
                await ws.close()
        asyncio.run_coroutine_threadsafe(drop(), self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.thread.join(10)


@pytest.fixture
def board(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "workbench.sim", "--board", "nano33ble",
                             "--tcp", "0", "--flash", str(tmp_path / "board.flash")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    line = proc.stdout.readline().strip()
    assert line.startswith("TCP "), proc.stderr.read()
    host, port = line.split(" ", 1)[1].rsplit(":", 1)
    relay = WsRelay((host, int(port)))
    yield relay
    relay.stop()
    proc.terminate()
    proc.wait(5)


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
    lab_server.run_until_shown(page, name, ".wb-webserial", timeout_ms=SHOW_TIMEOUT_MS)
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
    lab_server.run_until_shown(page, name, ".wb-webserial", timeout_ms=SHOW_TIMEOUT_MS)
    widget = page.locator(".wb-webserial").first
    if mode == "cancel":
        widget.locator(".wb-ws-connect").click()
    else:
        assert widget.locator(".wb-ws-connect").is_disabled()
    refused = wait_for_output(page, r"REFUSED (\w+) (.*)")
    assert refused.group(1) == error and kernel_words in refused.group(2)
    assert page_words in widget.inner_text()
    page.screenshot(path=str(shots / f"{mode}.png"))
