"""Line mode: read what any hobbyist sketch prints, one sample per line.

A line of numbers separated by commas, tabs, semicolons or spaces is a sample.
A line of non-numeric fields directly before the first sample (``Red,Green,Blue``)
names the channels. Blank lines are skipped, a NUL byte ends a line (it ends a binary frame that
came before the text); any other text (``Failed to
initialize IMU!``) is kept as a text line, never mistaken for data.

:class:`LineParser` is fed bytes in any chunking with their arrival time and
returns :class:`LineEvent` items; :class:`RateEstimator` recovers the sample
rate from arrival times even when lines arrive in USB-sized bursts.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

MAX_LINE = 4096
"""A line longer than this is not a sample: it is cut and reported as text."""

_SPLIT = re.compile(r"[,\t; ]+")


@dataclass(frozen=True)
class LineEvent:
    """``kind`` is ``"sample"`` (values set), ``"header"`` (names set) or ``"text"``."""

    kind: str
    t: float
    values: tuple[float, ...] = ()
    names: tuple[str, ...] = ()
    text: str = ""


def parse_numbers(line: str) -> tuple[float, ...] | None:
    """The numbers of a sample line, or None if any field is not a number."""
    fields = [f for f in _SPLIT.split(line.strip()) if f]
    if not fields:
        return None
    try:
        return tuple(float(f) for f in fields)
    except ValueError:
        return None


def _looks_like_header(line: str) -> tuple[str, ...] | None:
    fields = [f.strip() for f in re.split(r"[,\t;]+", line.strip()) if f.strip()]
    if len(fields) < 1 or len(fields) > 64:
        return None
    if all(re.fullmatch(r"[A-Za-z_][\w .()/%°-]{0,40}", f) for f in fields):
        return tuple(fields)
    return None


@dataclass
class LineParser:
    """Incremental line-mode parser. Feed ``(data, arrival_time)``, get events.

    A header is recognised only while no sample has been seen yet and only if
    the next sample has as many fields; until then it is held back. Samples
    whose field count differs from the established one are reported as text
    (a corrupt or partial line), so a stream never changes width silently.
    """

    width: int | None = None
    names: tuple[str, ...] | None = None
    text_lines: int = 0
    samples: int = 0
    _buf: bytearray = field(default_factory=bytearray, repr=False)
    _pending_header: tuple[tuple[str, ...], str, float] | None = field(default=None, repr=False)

    def feed(self, data: bytes, t: float) -> list[LineEvent]:
        events: list[LineEvent] = []
        # A NUL never occurs in text: it ends a binary frame that preceded the text.
        self._buf += data.replace(b"\x00", b"\n")
        while True:
            nl = self._buf.find(b"\n")
            if nl == -1:
                if len(self._buf) > MAX_LINE:
                    events += self._line(bytes(self._buf[:MAX_LINE]), t)
                    del self._buf[:MAX_LINE]
                    continue
                return events
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            events += self._line(raw, t)

    def _line(self, raw: bytes, t: float) -> list[LineEvent]:
        line = raw.decode("utf-8", "replace").strip("\r\x00 ")
        if not line.strip():
            return []
        values = parse_numbers(line)
        out: list[LineEvent] = []
        if values is not None:
            if self.width is None:
                self.width = len(values)
                if self._pending_header and len(self._pending_header[0]) == self.width:
                    self.names = self._pending_header[0]
                    out.append(LineEvent("header", self._pending_header[2], names=self.names))
                elif self._pending_header:
                    out.append(self._text(self._pending_header[1], self._pending_header[2]))
                self._pending_header = None
            if len(values) == self.width:
                self.samples += 1
                out.append(LineEvent("sample", t, values=values))
                return out
            out.append(self._text(line, t))
            return out
        header = _looks_like_header(line) if self.width is None else None
        if header is not None:
            if self._pending_header:
                out.append(self._text(self._pending_header[1], self._pending_header[2]))
            self._pending_header = (header, line, t)
            return out
        out.append(self._text(line, t))
        return out

    def _text(self, line: str, t: float) -> LineEvent:
        self.text_lines += 1
        return LineEvent("text", t, text=line)


@dataclass
class RateEstimator:
    """Sample rate from arrival times: least-squares slope of time against index.

    Robust to bursty delivery (a USB CDC port hands over lines in packets):
    bursts shift individual times but not the slope over a window of
    ``window`` samples.
    """

    window: int = 512
    _t: deque = field(default_factory=lambda: deque(maxlen=512), repr=False)
    _count: int = 0

    def __post_init__(self) -> None:
        self._t = deque(maxlen=self.window)

    def add(self, t: float) -> None:
        self._t.append((self._count, t))
        self._count += 1

    @property
    def rate_hz(self) -> float | None:
        """The estimate, or None until at least 8 samples spanning 50 ms arrived."""
        pts = list(self._t)
        if len(pts) < 8 or pts[-1][1] - pts[0][1] < 0.05:
            return None
        n = len(pts)
        mi = sum(p[0] for p in pts) / n
        mt = sum(p[1] for p in pts) / n
        sxx = sum((p[0] - mi) ** 2 for p in pts)
        sxy = sum((p[0] - mi) * (p[1] - mt) for p in pts)
        if sxy <= 0:
            return None
        return sxx / sxy
