"""``webserial://``: the kernel's end of a port the browser opened, without a browser.

The browser is played by a relay thread between a channel and a real virtual board
(``python -m workbench.sim --tcp``): what the board sends is fed to the channel as the
widget would, what the kernel writes goes to the board's socket. The kernel that handles
widget messages only between cells is played by a queue that only the installed pump
drains (on the main thread), as jupyter-ui-poll drains the kernel's shell messages.
"""

from __future__ import annotations

import queue
import socket
import threading

import numpy as np
import pytest
from conftest import start_sim

import workbench
from workbench.errors import WorkbenchError
from workbench.link import (
    ConnectionLost,
    LinkTimeout,
    OpenError,
    Timeouts,
    WebSerialCancelled,
    WebSerialNotConnected,
    WebSerialUnsupported,
    open_device,
    open_port,
    waits,
    webserial,
)


@pytest.fixture
def board(tmp_path):
    """(host, port) of a virtual nano33ble served over TCP."""
    proc, line = start_sim("--board", "nano33ble", "--tcp", "0", "--flash",
                           str(tmp_path / "n.flash"))
    host, port = line.split(" ", 1)[1].rsplit(":", 1)
    yield host, int(port)
    proc.terminate()
    proc.wait(5)


class Relay:
    """The browser's part: a port (the board's socket) relayed into channel ``cid``.

    ``deliver`` hands each piece of bytes to the kernel side: by default straight to
    ``channel.feed`` on the relay thread (a kernel with subshells); a test may queue it
    instead for a pump to deliver on the main thread.
    """

    def __init__(self, cid: str, addr, deliver=None) -> None:
        self.ch = webserial.channel(cid)
        self.sock = socket.create_connection(addr)
        self.deliver = deliver or self.ch.feed
        self.stop = threading.Event()
        self.ch.attach(self.sock.sendall)
        self.ch.update(webserial.OPEN, baudrate=115200, port_info={"usbVendorId": 0x2341})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.deliver(data)

    def unplug(self, reason: str = "The device has been lost.") -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        self.ch.update(webserial.UNPLUGGED, reason)

    def close(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
            self.thread.join(5)
            self.sock.close()
        webserial.forget(self.ch.id)


@pytest.fixture
def relay(board):
    made: list[Relay] = []

    def make(cid: str = "b1", deliver=None) -> Relay:
        r = Relay(cid, board, deliver)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_hello_stream_and_upload_through_the_channel(relay, sine_model):
    r = relay()
    with open_device("webserial://b1") as dev:
        assert dev.info.board_id == "nano33ble" and dev.mode == "framed"
        assert dev.baudrate == 115200  # the rate the browser opened the port at
        rec = dev.record("accel", seconds=0.5)
        assert len(rec.raw) > 0 and rec.lost == 0
        slot = dev.upload_model(sine_model, name="sine")
        assert slot.size == len(sine_model)
        out = dev.infer(np.array([[0.5]], dtype=np.float32)).outputs[0]
        assert abs(float(out.ravel()[0]) - np.sin(0.5)) < 0.2
    assert r.ch.rx_bytes > 0 and r.ch.tx_bytes > len(sine_model)


def test_a_channel_serves_one_port_at_a_time_and_the_next_after_close(relay):
    relay()
    port = open_port("webserial://b1")
    try:
        with pytest.raises(OpenError, match="already open"):
            open_port("webserial://b1")
    finally:
        port.close()
    with open_device("webserial://b1") as dev:  # the browser's port stays open
        assert dev.ping(b"again") >= 0


def test_unplug_mid_stream_keeps_what_arrived_then_raises(relay):
    r = relay()
    with open_device("webserial://b1") as dev, dev.stream("accel") as s:
        first = s.read(timeout=5)
        assert first is not None
        r.unplug()
        got = [first]
        with pytest.raises(ConnectionLost, match="unplugged.*device has been lost"):
            while True:
                block = s.read(timeout=5)
                assert block is not None, "the stream ended without saying why"
                got.append(block)
        # the blocks are consecutive: nothing that reached the channel was dropped
        firsts = [b.first for b in got]
        assert all(b.first + len(b.raw) == n for b, n in zip(got, firsts[1:]))


def test_bytes_received_before_an_unplug_are_read_before_the_error(relay):
    r = relay()
    port = open_port("webserial://b1")
    try:
        r.stop.set()
        r.thread.join(5)
        r.ch.feed(b"last words")
        r.unplug("cable pulled")
        assert port.read(4) == b"last" and port.read(100) == b" words"
        with pytest.raises(Exception, match="unplugged \\(cable pulled\\)"):
            port.read(1)
    finally:
        port.close()


@pytest.mark.parametrize("state,error,words", [
    (webserial.UNSUPPORTED, WebSerialUnsupported, "no Web Serial.*Chrome.*localhost or HTTPS"),
    (webserial.CANCELLED, WebSerialCancelled, "picker was closed.*Click Connect again"),
])
def test_the_browser_refusing_says_why_and_what_to_do(state, error, words):
    ch = webserial.channel("refused")
    try:
        ch.update(state, "navigator.serial is undefined")
        with pytest.raises(error, match=words) as info:
            open_device("webserial://refused")
        assert isinstance(info.value, WorkbenchError) and isinstance(info.value, OpenError)
    finally:
        webserial.forget("refused")


def test_the_user_cancelling_while_the_kernel_waits_ends_the_wait():
    ch = webserial.channel("late")
    try:
        threading.Timer(0.3, ch.update, (webserial.CANCELLED, "NotFoundError")).start()
        with pytest.raises(WebSerialCancelled):
            open_device("webserial://late?wait=30")
    finally:
        webserial.forget("late")


def test_no_widget_or_nobody_connecting_is_a_clear_timeout():
    with pytest.raises(WebSerialNotConnected, match="no Web Serial widget 'nobody'.*WebSerial"):
        open_device("webserial://nobody")
    webserial.channel("idle")
    try:
        with pytest.raises(WebSerialNotConnected, match="within 0.2 s.*Click Connect") as info:
            open_device("webserial://idle?wait=0.2")
        assert isinstance(info.value, TimeoutError)
    finally:
        webserial.forget("idle")


@pytest.mark.parametrize("url,words", [("webserial://", "name the Web Serial widget"),
                                       ("webserial://x?speed=9", "unknown option"),
                                       ("webserial://x?wait=soon", "wait='soon'")])
def test_bad_webserial_urls(url, words):
    with pytest.raises(OpenError, match=words):
        open_port(url)


class MainThreadKernel:
    """A kernel without subshells: the browser's messages wait in ``pending`` until the
    main thread polls (what jupyter-ui-poll does between the slices of a wait)."""

    def __init__(self) -> None:
        self.pending: queue.Queue = queue.Queue()
        self.polls = 0
        self.ch: webserial.Channel | None = None

    def deliver(self, data: bytes) -> None:
        self.pending.put(data)

    def poll(self) -> None:
        assert threading.current_thread() is threading.main_thread()
        self.polls += 1
        # jupyter-ui-poll runs the kernel's message loop on a thread of its own while the
        # cell's thread waits for it: that must not pass for a subshell
        worker = threading.Thread(target=self._handle_pending)
        worker.start()
        worker.join()

    def _handle_pending(self) -> None:
        while True:
            try:
                self.ch.feed(self.pending.get_nowait())
            except queue.Empty:
                return

    def pump(self):
        from contextlib import nullcontext
        return nullcontext(self.poll) if webserial.needs_pump() else None


def test_a_cell_blocked_on_the_board_starves_without_the_pump(relay):
    kernel = MainThreadKernel()
    kernel.ch = relay(deliver=kernel.deliver).ch
    with pytest.raises(LinkTimeout):
        open_device("webserial://b1", mode="framed",
                    timeouts=Timeouts(hello=0.3, hello_attempts=1))
    assert kernel.pending.qsize() > 0  # the answer came, and waited for the cell to end


def test_the_pump_lets_a_blocked_cell_hear_the_board(relay, sine_model):
    kernel = MainThreadKernel()
    kernel.ch = relay(deliver=kernel.deliver).ch
    old = waits.set_pump(kernel.pump)
    try:
        with open_device("webserial://b1") as dev:
            assert dev.info.board_id == "nano33ble"
            assert len(dev.record("accel", seconds=0.3).raw) > 0
            assert dev.upload_model(sine_model, name="sine").size == len(sine_model)
        assert kernel.polls > 0 and not kernel.ch.delivered_off_main
    finally:
        waits.set_pump(old)


def test_messages_handled_off_the_main_thread_need_no_pump(relay):
    r = relay()  # the relay thread feeds the channel: a subshell, in a kernel
    with open_device("webserial://b1") as dev:
        assert dev.ping(b"x") >= 0
    assert r.ch.delivered_off_main and not webserial.needs_pump()


def test_the_widget_relays_both_ways_and_acknowledges():
    """WebSerial's messages, played by a recording comm standing in for the page."""
    pytest.importorskip("anywidget")
    from recording_comm import RecordingComm

    from workbench.ui import WebSerial

    comm = RecordingComm()
    w = WebSerial("widget1", boards=["nano33ble"], comm=comm)
    try:
        assert {"usbVendorId": 0x2341, "usbProductId": 0x805A} in w.filters
        assert webserial.find("widget1").state == webserial.WAITING
        comm.from_front({"method": "custom", "content": {
            "type": "state", "state": "open", "reason": "", "baudrate": 115200,
            "info": {"usbVendorId": 0x2341, "usbProductId": 0x805A}}})
        assert w.state == "open" and "Nano 33 BLE" in w.port_label
        port = open_port(w.url)
        try:
            port.write(b"\x00hello")  # what the kernel writes goes out as a "tx" message
            (content, bufs), = comm.custom("tx")
            assert bufs == [b"\x00hello"]
            comm.from_front({"method": "custom", "content": {"type": "rx", "seq": 7}},
                            [b"from the board"])
            assert port.read(14) == b"from the board"
            assert comm.custom("ack")[-1][0]["seq"] == 7
            comm.from_front({"method": "custom", "content": {
                "type": "state", "state": "unplugged", "reason": "NetworkError: lost"}})
            with pytest.raises(Exception, match="unplugged \\(NetworkError: lost\\)"):
                port.read(1)
        finally:
            port.close()
    finally:
        w.close()
    assert webserial.find("widget1") is None


def test_usb_filters_come_from_the_catalog():
    from workbench.ui.webserial import usb_filters

    ids = usb_filters()
    assert {"usbVendorId": 0x2E8A, "usbProductId": 0x000A} in ids  # pico, application
    assert {"usbVendorId": 0x2E8A, "usbProductId": 0x0003} not in ids  # its bootloader
    assert len(ids) == len({(f["usbVendorId"], f["usbProductId"]) for f in ids})


class PageComm:
    """The page's part for a WebSerial widget: a recording comm whose "tx" messages go to
    the board's socket and whose socket bytes come back as "rx" messages (relay thread)."""

    def __init__(self, addr) -> None:
        from recording_comm import RecordingComm

        sock = self.sock = socket.create_connection(addr)
        self.stop = threading.Event()

        class Comm(RecordingComm):
            def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
                super().publish_msg(msg_type, data, metadata, buffers, **keys)
                content = (data or {}).get("content") or {}
                if msg_type == "comm_msg" and content.get("type") == "tx":
                    sock.sendall(bytes(buffers[0]))

        self.comm = Comm()
        threading.Thread(target=self._run, daemon=True).start()

    def open(self) -> None:
        self.comm.send_custom({"type": "state", "state": "open", "reason": "",
                               "baudrate": 115200, "info": {}})

    def _run(self) -> None:
        self.sock.settimeout(0.05)
        seq = 0
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            seq += 1
            self.comm.from_front({"method": "custom", "content": {"type": "rx", "seq": seq}},
                                 [data])

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_a_capture_panel_on_a_webserial_url_comes_alive_when_the_port_opens(board, tmp_path):
    """Where no cell can wait for Connect (Voila, a handler, here: no kernel), the panel shows
    its bridge at the top, says what to do, and connects once the page opens a port."""
    pytest.importorskip("anywidget")
    from workbench.ui import webserial as ui_webserial
    from workbench.ui.capture_panel import CapturePanel

    page = PageComm(board)
    bridge = ui_webserial.bridge_for("panel1", comm=page.comm)
    panel = CapturePanel(tmp_path / "ds", "webserial://panel1", countdown_s=0)
    try:
        assert panel.children[0] is bridge and panel.recorder.device is None
        assert "click Connect on the Web Serial bar" in panel.status.value
        assert ui_webserial.bridge_for("panel1") is bridge   # one bridge per channel
        page.open()
        assert waits.until(lambda: panel.recorder.device is not None and panel.sensor.options,
                           timeout=30)
        assert panel.recorder.device.info.board_id == "nano33ble"
        meta = panel.recorder.record("accel", "wave", seconds=0.5)
        assert meta.samples > 0 and meta.lost == 0
        assert bridge.opens == 1
    finally:
        panel.close()
        bridge.close()
        page.close()
    assert webserial.find("panel1") is None


def test_open_device_in_voila_says_how_to_wait_for_connect(monkeypatch):
    pytest.importorskip("anywidget")
    from workbench.ui import webserial as ui_webserial

    monkeypatch.setenv("VOILA_BASE_URL", "/")
    monkeypatch.setattr(ui_webserial, "_kernel", lambda: object())
    monkeypatch.setattr(ui_webserial, "_display", lambda *a, **k: None)
    try:
        with pytest.raises(WebSerialNotConnected, match="Voila page shows only after"):
            workbench.open_device("webserial://voila1")
        assert ui_webserial.bridge_for("voila1").channel.state == webserial.WAITING
    finally:
        ui_webserial.bridge_for("voila1").close()
