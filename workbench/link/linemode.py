"""Line mode on the host: recognise a sketch that prints numbers and read it.

The parsing itself (what is a sample, a header, a text line; the rate from
arrival times) is :mod:`workbench.protocol.linemode`. This module feeds it the
port's bytes, decides when the far end is a line-mode sketch
(:meth:`LineMode.detect`), describes it as one sensor (:meth:`LineMode.sensor`)
and delivers its samples to the stream reading it.

Nothing is lost while the format is being learned: the sample lines read
before the first stream starts (those :meth:`LineMode.detect` looked at, and
those that arrive until a stream is started) are kept, up to
:data:`LINE_BACKLOG_MAX` of the newest, and handed to the first stream as its
first block. A board that turns out to speak the framed protocol discards
them (:meth:`LineMode.discard`): they were bytes of binary frames.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..protocol import messages as m
from ..protocol.linemode import LineParser, RateEstimator
from . import waits
from .streams import SampleBlock
from .timeouts import LINE_RATE_SETTLE

if TYPE_CHECKING:
    from .streams import Stream

LINE_DETECT_SAMPLES = 3
"""Sample lines needed to decide that the far end is a line-mode sketch."""
LINE_BACKLOG_MAX = 16384
"""Most sample lines kept for the first stream (the newest, so they stay consecutive)."""
DETECT_POLL = 0.02
"""Seconds between looks at the parser while detecting."""


class LineMode:
    """The host side of line mode for one port.

    ``feed(data, arrival_time, text=...)`` runs on the reader thread while the
    port is not (yet) framed; ``detect``, ``attach`` and ``detach`` run on the
    caller's. ``on_text(line)`` gets the sketch's own messages once the port is
    in line mode.
    """

    def __init__(self, on_text: Callable[[str], None] = lambda line: None) -> None:
        self.on_text = on_text
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start over: a new parser and rate estimate, an empty backlog kept for a stream."""
        with self._lock:
            self.parser = LineParser()
            self.rate = RateEstimator()
            self._index = 0
            self._stream: Stream | None = None
            self._backlog: deque[tuple[int, float, tuple[float, ...]]] = deque(
                maxlen=LINE_BACKLOG_MAX)
            self._keeping = True

    # ----------------------------------------------------------- reader thread
    def feed(self, data: bytes, now: float, *, text: bool) -> None:
        """Parse ``data`` that arrived at ``now``. Samples go to the attached stream, or
        to the backlog until the first stream starts; text lines go to ``on_text`` if
        ``text`` (not while the port could still be framed: then they are frame bytes)."""
        for ev in self.parser.feed(data, now):
            if ev.kind == "sample":
                self.rate.add(ev.t)
                with self._lock:
                    idx, self._index = self._index, self._index + 1
                    stream = self._stream
                    if stream is None:
                        if self._keeping:
                            self._backlog.append((idx, ev.t, ev.values))
                        continue
                raw = np.asarray([ev.values], dtype=np.float32)
                stream._account(idx, 1)
                stream._deliver(_block(idx, ev.t, raw))
            elif ev.kind == "text" and text:
                self.on_text(ev.text)

    # ----------------------------------------------------------- caller's thread
    def detect(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for sample lines; True once :data:`LINE_DETECT_SAMPLES`
        arrived (then up to :data:`LINE_RATE_SETTLE` more for a rate estimate)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.parser.samples >= LINE_DETECT_SAMPLES:
                settle = min(end, time.monotonic() + LINE_RATE_SETTLE)
                while self.rate.rate_hz is None and time.monotonic() < settle:
                    waits.sleep(DETECT_POLL)
                return True
            waits.sleep(DETECT_POLL)
        return False

    def sensor(self) -> m.SensorDesc:
        """The sketch as one sensor: its header's names (or ch0, ch1...), the rate seen."""
        names = self.parser.names or tuple(f"ch{i}" for i in range(self.parser.width or 0))
        return m.SensorDesc(0, "line", "line", names, "", m.DType.FLOAT32, 1.0,
                            self.rate.rate_hz or 0.0)

    def attach(self, stream: Stream) -> None:
        """Deliver samples to ``stream`` from now on; the first stream gets the backlog first."""
        with self._lock:
            if self._backlog:
                first, t, _ = self._backlog[0]
                raw = np.asarray([v for _, _, v in self._backlog], dtype=np.float32)
                stream._account(first, len(raw))
                stream._deliver(_block(first, t, raw))
            self._backlog.clear()
            self._keeping = False
            self._stream = stream

    def detach(self, stream: Stream) -> None:
        """Stop delivering to ``stream`` (samples without a stream are not kept)."""
        with self._lock:
            if self._stream is stream:
                self._stream = None

    def discard(self) -> None:
        """The port speaks the framed protocol: what looked like samples was not."""
        with self._lock:
            self._backlog.clear()
            self._keeping = False

    @property
    def rate_hz(self) -> float | None:
        """The sample rate estimated from arrival times so far."""
        return self.rate.rate_hz

    @property
    def text_lines(self) -> int:
        """Lines that were neither samples nor the header (a sketch's messages)."""
        return self.parser.text_lines



def _block(first: int, t: float, raw: np.ndarray) -> SampleBlock:
    return SampleBlock(0, first, int(t * 1e6), raw, 0)
