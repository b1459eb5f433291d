"""What goes over a link, as a serial monitor shows it: text lines, or frames by name and hex.

A :class:`TrafficLog` is a tap on a :class:`~.session.Session` (``session.taps``): it sees
the raw bytes both ways, as the session reads and writes them, and never reads or writes
the port itself, so a connected :class:`~.device.Device` keeps working while it watches.

What it records, per direction (``"rx"`` from the board, ``"tx"`` to it):

* a board in line mode (a sketch printing text): one :class:`Entry` per line
  (``kind="text"``), split at ``\\n`` (a ``\\r`` before it is dropped); what is sent to
  it, one entry per write and line, whatever its line ending;
* a board speaking the framed protocol (or not identified yet): one entry per frame
  (``kind="frame"``): its message name, sequence and request ids, payload length and the
  payload's first :data:`HEX_BYTES` bytes in hex. Bytes that are not frames are not shown
  as frames (its own parser keeps sync as the session's does).

Call order: ``log = TrafficLog(); log.attach(device.session)`` ... ``log.detach()``.
``log.entries`` (newest last, at most ``max_entries``) and ``on_entry`` callbacks (run on
the thread that moved the bytes: keep them short).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol import messages as m
from ..protocol.framing import Frame, FrameParser

__all__ = ["TrafficLog", "Entry", "frame_summary"]

HEX_BYTES = 16
"""Payload bytes shown in hex per frame (the rest is counted, not shown)."""
MAX_LINE = 4096
"""Longest text line kept whole; a longer run without a newline is cut into pieces."""


@dataclass(frozen=True)
class Entry:
    """One line of the monitor: when (``time.time()``), which way, what kind, the text."""

    t: float
    direction: str
    kind: str
    """``"text"`` (a line) or ``"frame"``."""
    text: str


def message_name(ftype: int) -> str:
    """``HELLO``, ``HELLO/resp`` for its answer, ``SAMPLES`` ...; unknown types in hex."""
    answer = ftype != m.Msg.ERROR and bool(ftype & m.RESPONSE_BIT)
    base = ftype & ~m.RESPONSE_BIT if answer else ftype
    try:
        name = m.Msg(base).name
    except ValueError:
        return f"0x{ftype:02x}"
    return f"{name}/resp" if answer else name


def frame_summary(frame: Frame) -> str:
    """One line for a frame: ``SAMPLES seq=12 req=0 len=70: 00 01 ...``."""
    head = f"{message_name(frame.type)} seq={frame.seq} req={frame.req_id} len={len(frame.payload)}"
    if not frame.payload:
        return head
    shown = frame.payload[:HEX_BYTES].hex(" ")
    more = f" \u2026 (+{len(frame.payload) - HEX_BYTES} bytes)" if len(frame.payload) > HEX_BYTES else ""
    return f"{head}: {shown}{more}"


class TrafficLog:
    """The raw traffic of one session, decoded for display. See the module docs."""

    def __init__(self, max_entries: int = 5000) -> None:
        self.entries: deque[Entry] = deque(maxlen=max_entries)
        self.on_entry: list[Callable[[Entry], None]] = []
        self.bytes = {"rx": 0, "tx": 0}
        self.session = None
        self._lock = threading.Lock()
        self._reset_decoders()

    def _reset_decoders(self) -> None:
        self._parsers = {"rx": FrameParser(), "tx": FrameParser()}
        self._lines = {"rx": bytearray(), "tx": bytearray()}

    def attach(self, session) -> None:
        """Start watching ``session`` (a :class:`~.session.Session`, e.g. ``device.session``);
        watching another one first stops watching the previous."""
        self.detach()
        self.session = session
        self._reset_decoders()
        session.taps.append(self.feed)

    def detach(self) -> None:
        """Stop watching (the entries stay)."""
        s, self.session = self.session, None
        if s is not None and self.feed in s.taps:
            s.taps.remove(self.feed)

    def clear(self) -> None:
        """Forget the entries (and any partial line or frame)."""
        with self._lock:
            self.entries.clear()
            self._reset_decoders()

    def feed(self, direction: str, data: bytes, _now: float = 0.0) -> None:
        """The tap: ``data`` moved ``direction`` (``"rx"`` or ``"tx"``)."""
        mode = getattr(self.session, "mode", "line")
        new: list[Entry] = []
        with self._lock:
            self.bytes[direction] = self.bytes.get(direction, 0) + len(data)
            now = time.time()
            if mode == "line" and direction == "tx":
                # each write is one message (a serial monitor's Send): shown whole, whatever
                # line ending it carries
                for line in data.decode("utf-8", "replace").splitlines() or [""]:
                    new.append(Entry(now, direction, "text", line))
            elif mode == "line":
                buf = self._lines[direction]
                buf += data
                while True:
                    cut = buf.find(b"\n")
                    if cut >= 0:
                        line = bytes(buf[:cut]).rstrip(b"\r")
                        del buf[:cut + 1]
                    elif len(buf) > MAX_LINE:
                        line = bytes(buf[:MAX_LINE])
                        del buf[:MAX_LINE]
                    else:
                        break
                    new.append(Entry(now, direction, "text", line.decode("utf-8", "replace")))
            else:
                for frame in self._parsers[direction].feed(data):
                    new.append(Entry(now, direction, "frame", frame_summary(frame)))
            self.entries.extend(new)
        for entry in new:
            for cb in list(self.on_entry):
                cb(entry)
