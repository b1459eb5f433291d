"""Boards reached through the browser's Web Serial API: the channels behind ``webserial://<id>``.

When the kernel runs far from the board (Binder, JupyterHub), only the browser can reach the
USB port. A widget in the page (``workbench.ui.WebSerial``) asks the browser for the port,
opens it and relays bytes both ways; this module is the kernel's end of that relay, and
knows nothing about widgets or Jupyter:

- :func:`channel` makes (or finds) the :class:`Channel` of an id; the widget calls it and
  installs its send function with :meth:`Channel.attach`;
- what the browser reads from the port is handed to :meth:`Channel.feed` (any thread) and
  buffered; what the kernel writes goes to the installed send function;
- the browser's news changes :attr:`Channel.state` through :meth:`Channel.update`:
  ``waiting`` (shown, no port yet), ``open``, ``cancelled`` (the user closed the picker),
  ``unsupported`` (no Web Serial in this browser or page), ``failed`` (the browser could not
  open the chosen port), ``unplugged`` (the port went away, ``reason`` says how) or
  ``closed`` (the widget was closed, or the page closed the port);
- ``open_port("webserial://<id>")`` (handler :mod:`.handlers.protocol_webserial`) claims
  the channel as a pyserial port, so :class:`~.device.Device`, recorders and model uploads
  work through it unchanged.

Nothing received is lost at the edges: after ``unplugged``, reads return every byte that
arrived before it, then raise. While the channel waits for the user, or for bytes, the
waits go through :mod:`.waits`, so a kernel that handles widget messages only between
cells can pump them (see ``docs/webserial.md``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import waits
from .errors import (
    ConnectionLost,
    OpenError,
    WebSerialCancelled,
    WebSerialNotConnected,
    WebSerialUnsupported,
)

WAITING, OPEN, CANCELLED, UNSUPPORTED, FAILED, UNPLUGGED, CLOSED = (
    "waiting", "open", "cancelled", "unsupported", "failed", "unplugged", "closed")
STATES = (WAITING, OPEN, CANCELLED, UNSUPPORTED, FAILED, UNPLUGGED, CLOSED)
"""Every state of a channel, in the order a port usually meets them."""
OPEN_TIMEOUT = 120.0
"""Seconds ``open_port("webserial://id")`` waits for the user to connect a port in the page
(``webserial://id?wait=30`` sets another)."""
RX_LIMIT = 64 * 1024 * 1024
"""Bytes a channel buffers for a reader that does not keep up; beyond it the oldest
are dropped and counted in :attr:`Channel.rx_dropped`."""

UNSUPPORTED_HELP = ("this browser has no Web Serial. Use Chrome, Edge or Opera (version 89 or "
                    "later) on a desktop; Firefox and Safari lack it. The page must also come "
                    "from localhost or HTTPS (a plain http:// address of another machine hides "
                    "it): open the notebook through https:// or an SSH tunnel to localhost.")
CANCELLED_HELP = ("the port picker was closed without choosing a port. Click Connect again, "
                  "pick the board (plug it in first; its name usually contains the board's "
                  "or its USB chip's name), then run this again.")


class Channel:
    """The kernel's end of one browser port. Thread-safe: the browser's messages may arrive
    on any thread (the kernel's main thread, a subshell, a test's relay thread).

    Call order: :func:`channel` makes it; the widget :meth:`attach`-es its send function
    and reports :meth:`update`-s and :meth:`feed`-s bytes; a port :meth:`claim`-s it,
    :meth:`read`-s and :meth:`write`-s, then :meth:`release`-s it.
    """

    def __init__(self, channel_id: str) -> None:
        self.id = channel_id
        self.state = WAITING
        self.reason = ""
        """Why the state is what it is (the browser's words for an error), or ""."""
        self.baudrate: int | None = None
        """The rate the browser opened the port at (None until open)."""
        self.port_info: dict = {}
        """What the browser says of the port (``usbVendorId``, ``usbProductId``), if anything."""
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.rx_dropped = 0
        self.delivered_off_main = False
        """True once a message from the browser was handled off the kernel's main thread
        (a subshell): then the kernel needs no pump for this channel."""
        self._rx = bytearray()
        self._cond = threading.Condition()
        self._send: Callable[[bytes], None] | None = None
        self._control: Callable[[dict], None] | None = None
        self._claimed = False

    def __repr__(self) -> str:
        return f"<webserial channel {self.id!r} {self.state}>"

    @property
    def url(self) -> str:
        return f"webserial://{self.id}"

    # ------------------------------------------------------------- browser side
    def attach(self, send: Callable[[bytes], None],
               control: Callable[[dict], None] | None = None) -> None:
        """Install the function that carries bytes to the browser's port (and ``control``,
        which carries a request such as ``{"type": "signals", "dtr": True}``)."""
        self._send, self._control = send, control

    def detach(self) -> None:
        """Forget the send function and close the channel (the widget went away)."""
        self._send = self._control = None
        self.update(CLOSED, "its Web Serial widget was closed")

    def feed(self, data: bytes) -> None:
        """Bytes the browser read from the port. Dropped while no port claims the channel."""
        self._note_thread()
        with self._cond:
            if not self._claimed or not data:
                return
            self._rx += data
            self.rx_bytes += len(data)
            over = len(self._rx) - RX_LIMIT
            if over > 0:
                del self._rx[:over]
                self.rx_dropped += over
            self._cond.notify_all()

    def update(self, state: str, reason: str = "", *, baudrate: int | None = None,
               port_info: dict | None = None) -> None:
        """The browser's news: the port is ``state`` (one of :data:`STATES`), because ``reason``."""
        if state not in STATES:
            raise ValueError(f"unknown Web Serial state {state!r}; known: {', '.join(STATES)}")
        self._note_thread()
        with self._cond:
            self.state, self.reason = state, reason
            if baudrate:
                self.baudrate = int(baudrate)
            if port_info is not None:
                self.port_info = dict(port_info)
            self._cond.notify_all()

    def _note_thread(self) -> None:
        # jupyter-ui-poll handles the messages it pumps on a thread of its own: not a subshell
        if threading.current_thread() is not threading.main_thread() and not waits.polling():
            self.delivered_off_main = True

    # ------------------------------------------------------------- kernel side
    @property
    def live(self) -> bool:
        """True while a port is (or may soon be) open through this channel."""
        return self.state in (WAITING, OPEN)

    def check(self) -> None:
        """Raise the error that says why the channel cannot carry bytes now, if any."""
        if self.state == UNSUPPORTED:
            raise WebSerialUnsupported(f"{self.url}: {UNSUPPORTED_HELP}"
                                       + (f" (the browser said: {self.reason})"
                                          if self.reason else ""))
        if self.state == CANCELLED:
            raise WebSerialCancelled(f"{self.url}: {CANCELLED_HELP}")
        if self.state == FAILED:
            raise OpenError(f"{self.url}: the browser could not open the port ({self.reason}). "
                            "Close any other program or tab using it (a serial monitor, the "
                            "Arduino IDE), check the baud rate, then click Connect again.")
        if self.state in (UNPLUGGED, CLOSED):
            raise OpenError(f"{self.url}: {self._gone()}. Plug the board back in and click "
                            "Connect again.")

    def _gone(self) -> str:
        if self.state == CLOSED:
            return "the port was closed" + (f" ({self.reason})" if self.reason else "")
        return "the board was unplugged" + (f" ({self.reason})" if self.reason else "")

    def wait_open(self, timeout: float = OPEN_TIMEOUT) -> None:
        """Wait (pumping the kernel's messages, see :mod:`.waits`) until the browser has
        opened a port; raises the state's error (:meth:`check`) or
        :class:`WebSerialNotConnected` after ``timeout`` seconds."""
        waits.until(lambda: self.state != WAITING, timeout)
        self.check()
        if self.state != OPEN:
            raise WebSerialNotConnected(
                f"{self.url}: no port was connected in the page within {timeout:g} s. Click "
                "Connect on the Web Serial widget and choose the board's port, then run this "
                "again.")

    def claim(self) -> None:
        """Take the channel for one port (stale bytes are dropped). Raises OpenError if
        another port holds it."""
        with self._cond:
            if self._claimed:
                raise OpenError(f"{self.url} is already open in this kernel; close that device "
                                "first (dev.close()).")
            self._claimed = True
            self._rx.clear()

    def release(self) -> None:
        """Give the channel back (the browser's port stays open for the next claim)."""
        with self._cond:
            self._claimed = False
            self._rx.clear()
            self._cond.notify_all()

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def clear(self) -> None:
        """Drop the bytes received and not read yet."""
        with self._cond:
            self._rx.clear()

    def read(self, size: int, timeout: float | None) -> bytes:
        """Up to ``size`` bytes: returns once ``size`` are buffered, or after ``timeout``
        seconds with what there is. Once the port is gone, returns what was buffered
        before, then raises :class:`ConnectionLost`. Never pumps: the reader thread calls it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._rx) < size and self.state in (WAITING, OPEN) and self._claimed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            if not self._rx and self.state not in (WAITING, OPEN):
                raise ConnectionLost(self._gone())
            data = bytes(self._rx[:size])
            del self._rx[:size]
            return data

    def write(self, data: bytes) -> int:
        """Send ``data`` to the browser's port. Raises ConnectionLost if it is not open."""
        send = self._send
        if self.state != OPEN or send is None:
            raise ConnectionLost(f"{self.url}: the port is not open in the page ({self.state}"
                                 + (f": {self.reason}" if self.reason else "") + ")")
        send(bytes(data))
        self.tx_bytes += len(data)
        return len(data)

    def control(self, message: dict) -> None:
        """Pass a control request (modem lines) to the browser, if the widget takes them."""
        if self._control is not None and self.state == OPEN:
            self._control(message)


_channels: dict[str, Channel] = {}
_lock = threading.Lock()


def channel(channel_id: str) -> Channel:
    """The channel of ``channel_id``, made (state ``waiting``) if there is none."""
    if not channel_id or "/" in channel_id or "?" in channel_id:
        raise ValueError(f"a Web Serial id is a short name without '/' or '?', not "
                         f"{channel_id!r}")
    with _lock:
        ch = _channels.get(channel_id)
        if ch is None:
            ch = _channels[channel_id] = Channel(channel_id)
        return ch


def find(channel_id: str) -> Channel | None:
    """The channel of ``channel_id``, or None."""
    return _channels.get(channel_id)


def channels() -> list[Channel]:
    """Every channel made in this process."""
    with _lock:
        return list(_channels.values())


def forget(channel_id: str) -> None:
    """Remove a channel from the registry (its widget is gone for good)."""
    with _lock:
        _channels.pop(channel_id, None)


def needs_pump() -> bool:
    """True while some channel is live and its messages reach the kernel's main thread only."""
    return any(ch.live and not ch.delivered_off_main for ch in channels())
