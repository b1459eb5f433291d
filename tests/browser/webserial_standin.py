"""A stand-in for the browser's Web Serial API, for the bridge's browser test and benchmark.

The browser's device picker cannot be driven headless, so the page's ``navigator.serial`` is
replaced before the page loads (Playwright's ``add_init_script(FAKE_SERIAL_JS % {...})``) by
one whose port relays over a WebSocket; :class:`WsRelay` is that WebSocket's far end, relaying
each connection to a board's TCP port (``python -m workbench.sim --tcp``). Used by
``tests/browser/test_webserial_browser.py`` and ``bench/ui.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

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
          ws.onclose = () => {
            try { c.error(new DOMException("The device has been lost.", "NetworkError")); } catch (e) {}
          };
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


@contextlib.contextmanager
def relayed_board(flash: Path, board: str = "nano33ble"):
    """A virtual board (``python -m workbench.sim --tcp``, its flash in ``flash``) behind a
    :class:`WsRelay`; yields the relay (its ``url`` goes into ``FAKE_SERIAL_JS``)."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench.sim", "--board", board,
                             "--tcp", "0", "--flash", str(flash)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("TCP "), proc.stderr.read()
        host, port = line.split(" ", 1)[1].rsplit(":", 1)
        relay = WsRelay((host, int(port)))
        try:
            yield relay
        finally:
            relay.stop()
    finally:
        proc.terminate()
        proc.wait(5)
