"""The Web Serial bridge: a board plugged into the user's computer, reached from a remote kernel.

``WebSerial("board")`` shows a Connect button. Its click asks the browser for a serial port
(``navigator.serial.requestPort`` with the USB ids of the catalog's boards, so the picker
lists boards first); a port granted before is reopened without asking. The page opens it at
the chosen baud rate and relays bytes both ways; in the kernel the port is
``webserial://board``, a pyserial port like any other::

    from workbench.ui import WebSerial
    from workbench.link import open_device

    bridge = WebSerial("board")
    bridge                      # click Connect in the page
    dev = open_device(bridge.url)        # waits for the click, then HELLO

Capture panels, recorders and model uploads take the URL unchanged.

Messages (binary buffers, like :mod:`.liveplot`), browser -> kernel:

* ``{"type": "rx", "seq": n}`` + one buffer: bytes read from the port, in order; answered
  ``{"type": "ack", "seq": n}`` once handed to the channel. The page keeps at most
  :data:`WINDOW` messages unanswered and gathers what the port delivers meanwhile into the
  next one, so a kernel busy in a cell meets one large message, not thousands.
* ``{"type": "state", "state", "reason", "baudrate", "info"}``: the port's news
  (:data:`workbench.link.webserial.STATES`), queued behind the bytes that came before it.

Kernel -> browser: ``{"type": "tx"}`` + one buffer (bytes for the port), ``{"type":
"signals", "dtr"|"rts"|"brk": bool}``, ``{"type": "disconnect"}``.

The kernel: with ipykernel 7 and a front end that sends widget messages on a subshell
(JupyterLab and Notebook 7 from 4.4 / 7.4) the messages reach the channel while a cell
runs. Otherwise (ipykernel 6, Voila) they wait for the cell, so the first ``WebSerial``
installs a pump (:func:`kernel_pump`) into :mod:`workbench.link.waits`: a cell blocked on
the board then handles the kernel's pending UI messages through ``jupyter-ui-poll``. See
``docs/webserial.md`` for what works on which stack.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from pathlib import Path

import anywidget
import traitlets as t

from ..link import waits, webserial

__all__ = ["WebSerial", "usb_filters", "kernel_pump", "WINDOW", "BAUDRATES"]

WINDOW = 4
"""Messages of port bytes the page keeps in flight before it waits for an acknowledgement."""
BAUDRATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000)
"""The rates the baud selector offers."""
POLL_EVENTS = 20
"""Kernel messages one poll of the pump handles at most."""
_USB_ROLES = ("application", "usb-uart")


def usb_filters(boards: Iterable[str] | None = None) -> list[dict]:
    """``requestPort`` filters (``{"usbVendorId", "usbProductId"}``) for the catalog's boards
    (``boards``: catalog ids; None: all), their application and USB-UART ids only (a board in
    its bootloader does not speak the protocol). Raises UnknownBoardError for an unknown id."""
    from ..boards import get_board, load_catalog

    chosen = [get_board(b) for b in boards] if boards is not None else load_catalog().values()
    seen: dict[tuple[int, int], None] = {}
    for board in chosen:
        for u in board.usb:
            if u.role in _USB_ROLES:
                seen.setdefault((u.vid, u.pid), None)
    return [{"usbVendorId": vid, "usbProductId": pid} for vid, pid in seen]


class WebSerial(anywidget.AnyWidget):
    """A Connect button that brings a browser's serial port into the kernel as
    ``webserial://<channel_id>`` (see the module docs).

    Construct it (registers the channel, state ``waiting``), display it, let the user click
    Connect; then open :attr:`url` with :func:`workbench.link.open_device`. :meth:`close`
    closes the page's port and the channel (an open device then reads what arrived, then
    fails with "closed"). Raises ValueError for an id with '/' or '?'.
    """

    _esm = Path(__file__).with_name("webserial.js")

    channel_id = t.Unicode("board", help="The id in webserial://<id>.").tag(sync=True)
    baudrate = t.Int(115200, help="The rate the page opens the port at.").tag(sync=True)
    baudrates = t.List(t.Int(), list(BAUDRATES)).tag(sync=True)
    filters = t.List(t.Dict(), help="USB ids offered first by the port picker.").tag(sync=True)
    window = t.Int(WINDOW).tag(sync=True)
    autoconnect = t.Bool(True, help="Reopen a port granted before when the page loads.").tag(
        sync=True)
    state = t.Unicode(webserial.WAITING, help="The channel's state, as the page reported it.").tag(
        sync=True)
    reason = t.Unicode("", help="Why (the browser's words), for states other than open.").tag(
        sync=True)
    port_label = t.Unicode("", help="The port's USB ids and, if known, board.").tag(sync=True)

    def __init__(self, channel_id: str = "board", *, baudrate: int = 115200,
                 boards: Iterable[str] | None = None, **kwargs) -> None:
        from ..link import check_baud

        self.channel = webserial.channel(channel_id)
        super().__init__(channel_id=channel_id, baudrate=check_baud(baudrate),
                         filters=usb_filters(boards), **kwargs)
        self.channel.update(webserial.WAITING)
        self.channel.attach(self._send_bytes, self._send_control)
        self._acks = 0
        self._lock = threading.Lock()
        self.on_msg(self._on_front_msg)
        install_pump()

    @property
    def url(self) -> str:
        """``webserial://<channel_id>``: what to open with ``open_device``."""
        return self.channel.url

    def open_device(self, **kwargs):
        """``workbench.link.open_device(self.url, **kwargs)``: waits for Connect, then HELLO."""
        from ..link import open_device

        return open_device(self.url, **kwargs)

    def disconnect(self) -> None:
        """Ask the page to close its port (the channel then reads ``closed``)."""
        self.send({"type": "disconnect"})

    def close(self) -> None:
        self.channel.detach()
        webserial.forget(self.channel.id)
        super().close()

    # ------------------------------------------------------------- kernel -> page
    def _send_bytes(self, data: bytes) -> None:
        self.send({"type": "tx"}, [data])

    def _send_control(self, message: dict) -> None:
        self.send(message)

    # ------------------------------------------------------------- page -> kernel
    def _on_front_msg(self, _widget, content: dict, buffers: list) -> None:
        kind = content.get("type")
        if kind == "rx":
            for buf in buffers or ():
                self.channel.feed(bytes(buf))
            self.send({"type": "ack", "seq": content.get("seq", 0)})
        elif kind == "state":
            state = content.get("state", "")
            if state not in webserial.STATES:
                return
            info = content.get("info") or {}
            self.channel.update(state, content.get("reason", ""),
                                baudrate=content.get("baudrate"), port_info=info)
            with self.hold_sync():
                self.state, self.reason = state, content.get("reason", "")
                if state == webserial.OPEN:
                    self.port_label = _port_label(info)


def _port_label(info: dict) -> str:
    vid, pid = info.get("usbVendorId"), info.get("usbProductId")
    if vid is None or pid is None:
        return "serial port"
    label = f"{vid:04X}:{pid:04X}"
    try:
        from ..boards import match_usb

        names = [b.name for b in match_usb(vid, pid)]
    except Exception:  # noqa: BLE001 - a label never stops a connection
        names = []
    return label + (f" ({' / '.join(names[:2])})" if names else "")


# --------------------------------------------------------------------- the kernel's pump
def kernel_pump():
    """The pump :mod:`workbench.link.waits` calls: a jupyter-ui-poll session while a cell
    (an ``execute_request``) blocks on a ``webserial://`` port whose messages reach only
    the kernel's main thread; None otherwise (no IPython kernel, messages on a subshell, a
    wait inside a widget's message handler, jupyter-ui-poll missing)."""
    if not webserial.needs_pump():
        return None
    kernel = _kernel()
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent()
    except Exception:  # noqa: BLE001 - an old ipykernel
        return None
    if (parent or {}).get("header", {}).get("msg_type") != "execute_request":
        return None
    try:
        from jupyter_ui_poll import ui_events
    except ImportError:
        return None
    return _ui_poll(ui_events)


@contextlib.contextmanager
def _ui_poll(ui_events):
    with ui_events() as poll:
        yield lambda: poll(POLL_EVENTS)


def _kernel():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None)


def install_pump() -> None:
    """Install :func:`kernel_pump` into :mod:`workbench.link.waits` (once; no-op outside a
    kernel)."""
    if waits.get_pump() is not kernel_pump and _kernel() is not None:
        waits.set_pump(kernel_pump)
