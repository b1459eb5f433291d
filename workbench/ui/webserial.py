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
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import anywidget
import traitlets as t

from ..link import waits, webserial
from ..link.errors import WebSerialNotConnected

__all__ = ["WebSerial", "usb_filters", "kernel_pump", "bridge_for", "show_bridge", "connect_through",
           "in_voila", "can_wait_for_connect", "WINDOW", "BAUDRATES"]

WINDOW = 4
"""Messages of port bytes the page keeps in flight before it waits for an acknowledgement."""
BAUDRATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000)
"""The rates the baud selector offers."""
PUMPED_REQUESTS = ("execute_request", "comm_msg")
"""The kernel requests whose waits on the board pump the page's messages (a cell, and a
widget's handler: in Voila every board action comes from a button)."""
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
        self._on_open: list = []
        self._guards: dict = {}
        self.opens = 0
        """How many times the page has opened a port for this widget."""
        self._shown_alone = False
        """Displayed by itself above a cell's result (see :func:`connect_through`)."""
        self.on_msg(self._on_front_msg)
        _widgets[channel_id] = self
        install_pump()

    @property
    def url(self) -> str:
        """``webserial://<channel_id>``: what to open with ``open_device``."""
        return self.channel.url

    def open_device(self, **kwargs):
        """``workbench.link.open_device(self.url, **kwargs)``: waits for Connect, then HELLO."""
        from ..link import open_device

        return open_device(self.url, **kwargs)

    def when_open(self, callback, *, now: bool = True) -> None:
        """Call ``callback()`` on a thread of its own each time the page opens a port (now,
        if one is open already). The way to open the device where a cell cannot wait for
        the user (a Voila page, a button's handler)::

            bridge.when_open(lambda: print(bridge.open_device().info.board_name))

        The same callback given twice is called once (``now=False``: not now, only at the
        next opening). A callback runs off the kernel's main
        thread, so its waits for the board are served by the kernel between cells; what it
        raises is printed on stderr (it has no cell to fail)."""
        if callback not in self._on_open:
            self._on_open.append(callback)
            if now and self.channel.state == webserial.OPEN:
                _spawn(callback)

    def _guard(self, connect) -> _Guard:
        guard = self._guards.get(connect)
        if guard is None:
            guard = self._guards[connect] = _Guard(self, connect)
            self.when_open(guard, now=False)
        return guard

    def disconnect(self) -> None:
        """Ask the page to close its port (the channel then reads ``closed``)."""
        self.send({"type": "disconnect"})

    def close(self) -> None:
        if _widgets.get(self.channel.id) is self:
            del _widgets[self.channel.id]
        self._on_open.clear()
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
            if state == webserial.OPEN:
                self.opens += 1
                for callback in list(self._on_open):
                    _spawn(callback)


def _spawn(callback) -> None:
    def run() -> None:
        try:
            callback()
        except Exception as e:  # noqa: BLE001 - no cell to fail: say it where the user looks
            import sys

            print(f"workbench: after Connect, {type(e).__name__}: {e}", file=sys.stderr)

    threading.Thread(target=run, daemon=True, name="webserial when_open").start()


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
    (an ``execute_request``) or a widget's message handler (a ``comm_msg``: a button's click,
    e.g. a capture panel's Record) blocks on a ``webserial://`` port whose messages reach only
    the kernel's main thread; None otherwise (no IPython kernel, messages on a subshell, a
    wait inside a message the pump itself is handling, jupyter-ui-poll missing)."""
    if not webserial.needs_pump():
        return None
    kernel = _kernel()
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent()
    except Exception:  # noqa: BLE001 - an old ipykernel
        return None
    if (parent or {}).get("header", {}).get("msg_type") not in PUMPED_REQUESTS:
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


# --------------------------------------------------------------------- where the device is opened
_widgets: dict[str, WebSerial] = {}
"""The live widget of each channel id (the last one made)."""
CONNECT_FIRST = ("click Connect on the Web Serial bar and choose the board's port; "
                 "the panel connects when the port opens.")


def bridge_for(channel_id: str, **kwargs) -> WebSerial:
    """The live :class:`WebSerial` widget of ``channel_id``, or a new one (``kwargs`` go to
    it). Side effect: a new widget registers the channel (state ``waiting``)."""
    widget = _widgets.get(channel_id)
    if widget is not None and widget.comm is not None:
        return widget
    return WebSerial(channel_id, **kwargs)


def in_voila() -> bool:
    """True in a kernel Voila started (it sets ``VOILA_BASE_URL`` in the kernel's environment):
    there the notebook runs before its page is shown, so no cell can wait for a click."""
    return "VOILA_BASE_URL" in os.environ or os.environ.get("SERVER_SOFTWARE", "").startswith(
        "voila/")


def _in_cell() -> bool:
    kernel = _kernel()
    if kernel is None or threading.current_thread() is not threading.main_thread():
        return False
    try:
        parent = kernel.get_parent()
    except Exception:  # noqa: BLE001 - an old ipykernel
        return False
    return (parent or {}).get("header", {}).get("msg_type") == "execute_request"


def can_wait_for_connect() -> bool:
    """True when the code running now may block until the user clicks Connect: a notebook
    cell on the kernel's main thread, in a front end that shows the cell's output while it
    runs (JupyterLab, Notebook 7), so the page's messages reach the wait (by a subshell or
    the pump). False in Voila, in a widget's message handler, on another thread, outside a
    kernel."""
    return _in_cell() and not in_voila()


def _channel_id(url: str) -> str:
    from ..link.handlers.protocol_webserial import parse_url

    return parse_url(url)[0]


def show_bridge(url: str) -> WebSerial | None:
    """Before ``url`` (``webserial://<id>``) is opened from a cell: in a kernel whose channel
    ``<id>`` has no widget yet, make one and display it, so the Connect button appears where
    the device is opened (``workbench.open_device()`` calls this). Returns the widget, or
    None outside a kernel (then opening raises ``WebSerialNotConnected``, which says how to
    show one). Raises :class:`WebSerialNotConnected` at once in Voila when no port is open
    yet: the page appears only after the notebook ran, so a top-level wait could never see
    Connect; open the device from :meth:`WebSerial.when_open` (or use a ``CapturePanel``,
    which connects when the port opens)."""
    cid = _channel_id(url)
    if _kernel() is None:
        return None
    existing = _widgets.get(cid)
    bridge = bridge_for(cid)
    if in_voila() and bridge.channel.state != webserial.OPEN:
        if existing is None:
            _display(bridge)
        raise WebSerialNotConnected(
            f"{url}: a Voila page shows only after its notebook ran, so the notebook cannot "
            "wait here for Connect. Open the device when the port opens instead: "
            f"bridge = WebSerial({cid!r}); display(bridge); bridge.when_open(my_function) "
            "(my_function calls bridge.open_device()); or use CapturePanel(dataset, "
            f"{url!r}), which connects when the user does.")
    if existing is None:
        _display(bridge)
        bridge._shown_alone = True
    return bridge


def _display(widget, **kwargs):
    from IPython.display import display

    return display(widget, **kwargs)


def connect_through(url: str, connect, box=None) -> bool:
    """Open ``url`` (``webserial://<id>``) for a component that shows ``box`` (an ipywidgets
    Box, e.g. a ``CapturePanel``): put the channel's bridge at the top of ``box``, and call
    ``connect()`` (which opens the device) when it can work, then again each time the user
    opens a port later (after an unplug, a Disconnect):

    - the port is open: now, on this thread; on a thread of its own if this is a widget's
      message handler (which must not wait for the board);
    - no port yet, in a notebook cell (:func:`can_wait_for_connect`): the bridge is
      displayed above the cell's result (``box``, which shows only when the cell ends),
      instead of inside it, and ``connect()`` runs now, waiting for Connect;
    - no port yet elsewhere (Voila, a handler): when the user opens one, on a thread.

    Returns True if ``connect()`` ran (or is running) now, False if it waits for the user.
    What ``connect()`` raises on this thread propagates; on a thread it is printed."""
    bridge = bridge_for(_channel_id(url))
    waits_here = bridge.channel.state != webserial.OPEN and can_wait_for_connect()
    if box is not None and not waits_here and not bridge._shown_alone \
            and bridge not in box.children:
        box.children = (bridge, *box.children)
    guard = bridge._guard(connect)
    if bridge.channel.state == webserial.OPEN:
        if threading.current_thread() is threading.main_thread() and _kernel() is not None \
                and not _in_cell():
            _spawn(lambda: guard(force=True))
        else:
            guard(force=True)
        return True
    if waits_here:
        if bridge not in getattr(box, "children", ()) and not bridge._shown_alone:
            _display(bridge)    # above the cell's result (the box), which shows when it ends
            bridge._shown_alone = True
        guard(force=True)
        return True
    return False


class _Guard:
    """``connect`` run at most once at a time, and once per port the page opened: the
    callback :meth:`WebSerial.when_open` calls does nothing if a cell already connected
    through the port it announces."""

    def __init__(self, bridge: WebSerial, connect) -> None:
        self.bridge, self.connect = bridge, connect
        self.served = 0
        self._lock = threading.Lock()

    def __call__(self, force: bool = False) -> None:
        if not self._lock.acquire(blocking=force):
            return                       # a connect is under way (a cell waiting for Connect)
        try:
            opens = self.bridge.opens
            if not force and opens <= self.served:
                return                   # this port was connected to already
            self.connect()
            self.served = self.bridge.opens if force else opens
        finally:
            self._lock.release()
