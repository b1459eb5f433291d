"""``webserial://<id>?wait=<seconds>``: a board reached through the browser's Web Serial API.

The port's far end is the channel ``<id>`` of :mod:`workbench.link.webserial`, fed by the
``WebSerial`` widget shown in the page. Opening waits (``wait``, default
:data:`~workbench.link.webserial.OPEN_TIMEOUT` seconds) for the user to connect a port there,
then claims the channel; closing releases it (the browser keeps the port open for the next
``open_device``). The browser's baud rate is the widget's choice: ``baudrate`` here only
paces nothing. DTR and RTS are passed on to the browser (``SerialPort.setSignals``).

Errors: :class:`~workbench.link.errors.WebSerialUnsupported` (no Web Serial in the browser),
:class:`~workbench.link.errors.WebSerialCancelled` (the picker was closed),
:class:`~workbench.link.errors.WebSerialNotConnected` (no widget with that id, or nobody
connected in time), an ``OpenError`` for an unplugged board; a read after an unplug returns
what arrived before it, then raises.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qsl, urlsplit

import serial
from serial.serialutil import PortNotOpenError, SerialBase

from .. import webserial
from ..errors import ConnectionLost, WebSerialNotConnected


def parse_url(url: str) -> tuple[str, float]:
    """(channel id, seconds to wait for the user) of a ``webserial://`` URL."""
    parts = urlsplit(url)
    cid = parts.netloc or parts.path.strip("/")
    if not cid:
        raise serial.SerialException(f"{url}: name the Web Serial widget's id, e.g. "
                                     "webserial://board (the id given to WebSerial(...))")
    opts = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(opts) - {"wait"}
    if unknown:
        raise serial.SerialException(f"{url}: unknown option(s) {', '.join(sorted(unknown))}; "
                                     "known: wait")
    wait = webserial.OPEN_TIMEOUT
    if "wait" in opts:
        try:
            wait = float(opts["wait"])
            ok = math.isfinite(wait) and 0 <= wait <= 3600
        except ValueError:
            ok = False
        if not ok:
            raise serial.SerialException(f"{url}: wait={opts['wait']!r} is not a number of "
                                         "seconds from 0 to 3600")
    return cid, wait


class Serial(SerialBase):
    """A pyserial port whose bytes travel through the browser (see the module docs)."""

    _channel: webserial.Channel | None = None

    def open(self) -> None:
        if self.is_open:
            raise serial.SerialException("Port is already open.")
        cid, wait = parse_url(self._port)
        ch = webserial.find(cid)
        if ch is None:
            raise WebSerialNotConnected(
                f"{self._port}: no Web Serial widget {cid!r} in this kernel. Show one first "
                f"(from workbench.ui import WebSerial; WebSerial({cid!r})), click Connect and "
                "choose the board's port.")
        ch.wait_open(wait)
        ch.claim()
        self._channel = ch
        self.is_open = True
        if ch.baudrate:
            self._baudrate = ch.baudrate

    def close(self) -> None:
        if self._channel is not None:
            self._channel.release()
            self._channel = None
        self.is_open = False

    def _reconfigure_port(self) -> None:
        pass

    @property
    def channel(self) -> webserial.Channel:
        if self._channel is None:
            raise PortNotOpenError()
        return self._channel

    @property
    def in_waiting(self) -> int:
        return self.channel.in_waiting

    def read(self, size: int = 1) -> bytes:
        try:
            return self.channel.read(size, self._timeout)
        except ConnectionLost as e:
            raise serial.SerialException(str(e)) from None

    def write(self, data) -> int:
        try:
            return self.channel.write(bytes(data))
        except ConnectionLost as e:
            raise serial.SerialException(str(e)) from None

    def reset_input_buffer(self) -> None:
        self.channel.clear()

    def reset_output_buffer(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        if self._channel is not None:
            self._channel.control({"type": "signals", "dtr": bool(self._dtr_state)})

    def _update_rts_state(self) -> None:
        if self._channel is not None:
            self._channel.control({"type": "signals", "rts": bool(self._rts_state)})

    def _update_break_state(self) -> None:
        if self._channel is not None:
            self._channel.control({"type": "signals", "brk": bool(self._break_state)})
