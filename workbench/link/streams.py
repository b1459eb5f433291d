"""Sensor streams: samples as they arrive, with loss counted from sample numbers.

A :class:`Stream` is one sensor's samples, started when entered (``with``) and
stopped on exit; :class:`Streams` is the table of a device's active streams
(STREAM_START / STREAM_STOP on the wire, SAMPLES events routed by sensor) and
:meth:`Streams.record` collects a fixed stretch into a :class:`SensorSamples`.

Nothing received is dropped at the edges: when the connection is lost, a
stream first yields every block that arrived, then raises
:class:`ConnectionLost`; a :meth:`Streams.record` cut short by a lost link or
a stalled stream attaches what it had to the error (``err.recording``).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..protocol import messages as m
from . import waits
from .errors import ConnectionLost, LinkError, LinkTimeout
from .timeouts import STREAM_STALL_TIMEOUT

if TYPE_CHECKING:
    from .linemode import LineMode
    from .session import Session

SEQ_MASK = 0xFFFFFFFF
"""Sample numbers are 32-bit and wrap."""


@dataclass(frozen=True)
class SampleBlock:
    """Consecutive samples of one sensor: ``raw`` has shape (count, channels).

    ``lost_before`` counts samples missing between the previous block and this one.
    ``timestamp_us`` is the device clock (framed) or host arrival time of the
    first sample (line mode).
    """

    sensor: int
    first: int
    timestamp_us: int
    raw: np.ndarray
    lost_before: int = 0


@dataclass
class StreamStats:
    blocks: int = 0
    samples: int = 0
    lost: int = 0
    """Samples missing from the sequence: dropped by the device or lost on the link."""
    device_dropped: int | None = None
    """Of those, how many the device reports it discarded (known after stop)."""


@dataclass(frozen=True)
class SensorSamples:
    """Samples of one sensor over a stretch of time, in raw and physical units."""

    sensor: str
    channels: tuple[str, ...]
    units: str
    rate_hz: float
    raw: np.ndarray
    scale: float
    lost: int

    @property
    def values(self) -> np.ndarray:
        return self.raw.astype(np.float32) * np.float32(self.scale)

    @property
    def duration_s(self) -> float:
        return len(self.raw) / self.rate_hz if self.rate_hz else 0.0


class Stream:
    """Samples of one sensor as they arrive. Use as a context manager and iterate.

    ``with dev.stream("accel") as s: for block in s: ...`` starts the stream on
    entry and stops it on exit. Iteration ends when the stream is stopped; when
    the connection is lost it first yields every block received before the
    loss, then raises :class:`ConnectionLost`.
    """

    def __init__(self, streams: Streams, sensor: m.SensorDesc, rate_hz: float) -> None:
        self._streams = streams
        self.sensor = sensor
        self.rate_hz = rate_hz
        self.stats = StreamStats()
        self._queue: queue.Queue = queue.Queue()
        self._next: int | None = None
        self.active = False

    def _deliver(self, block: SampleBlock | None) -> None:
        """Queue a block (None: the end of the stream). Called from the reader thread."""
        self._queue.put(block)

    def _account(self, first: int, count: int) -> int:
        """Count a block of ``count`` samples starting at ``first``; returns the gap before it."""
        lost = 0
        if self._next is not None:
            lost = (first - self._next) & SEQ_MASK
            if lost > SEQ_MASK >> 1:  # an old or repeated block
                lost = 0
        self._next = (first + count) & SEQ_MASK
        self.stats.blocks += 1
        self.stats.samples += count
        self.stats.lost += lost
        return lost

    def read(self, timeout: float | None = None) -> SampleBlock | None:
        """The next block, or None at the end of the stream or after ``timeout``.

        At the end of a stream whose connection was lost it raises
        :class:`ConnectionLost` (after every block received before, in order).
        """
        try:
            block = waits.get(self._queue, timeout)
        except queue.Empty:
            return None
        if block is None:
            self._queue.put(None)  # keep the end marker for other readers
            lost = self._streams.session.lost
            if lost:
                raise ConnectionLost(lost)
        return block

    def __iter__(self) -> Iterator[SampleBlock]:
        while True:
            block = self.read()
            if block is None:
                return
            yield block

    def __enter__(self) -> Stream:
        self._streams.start(self)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.active:
            self._streams.stop(self)


class Streams:
    """The active streams of one device, keyed by sensor index.

    Framed mode: :meth:`start` sends STREAM_START, SAMPLES events arrive through
    :meth:`on_samples`, :meth:`stop` sends STREAM_STOP. Line mode: the
    :class:`~workbench.link.linemode.LineMode` delivers to the one stream (sensor 0).
    """

    def __init__(self, session: Session, line: LineMode) -> None:
        self.session = session
        self.line = line
        self.active: dict[int, Stream] = {}

    def open(self, sensor: m.SensorDesc, rate_hz: float | None = None) -> Stream:
        """A new, not yet started stream of ``sensor``."""
        return Stream(self, sensor, rate_hz or sensor.rate_hz)

    def start(self, stream: Stream) -> None:
        """Start ``stream`` (STREAM_START in framed mode; its rate becomes the device's)."""
        idx = stream.sensor.index
        if idx in self.active:
            raise LinkError(f"sensor {stream.sensor.id!r} is already streaming")
        self.active[idx] = stream
        stream.active = True
        if self.session.mode == "line":
            self.line.attach(stream)
            if self.session.lost:  # gone already: what was kept, then ConnectionLost
                stream._deliver(None)
            return
        try:
            got = m.StreamStarted.decode(self.session.request(
                m.Msg.STREAM_START, m.StreamStart(idx, stream.rate_hz or 0.0).encode()).payload)
        except BaseException:
            self.active.pop(idx, None)
            stream.active = False
            raise
        stream.rate_hz = got.rate_hz

    def stop(self, stream: Stream) -> None:
        """Stop ``stream`` (STREAM_STOP in framed mode, which reports the device's drops)."""
        idx = stream.sensor.index
        stream.active = False
        try:
            if self.session.mode == "framed" and not self.session.lost:
                stopped = m.StreamStopped.decode(
                    self.session.request(m.Msg.STREAM_STOP, bytes([idx])).payload)
                stream.stats.device_dropped = stopped.samples_dropped
        finally:
            self.active.pop(idx, None)
            self.line.detach(stream)
            stream._deliver(None)

    def stop_all(self) -> None:
        """Stop every stream (errors of a dead link are ignored)."""
        for stream in list(self.active.values()):
            try:
                stream.stop()
            except LinkError:
                pass

    def on_samples(self, s: m.Samples) -> None:
        """A SAMPLES event (reader thread): account and deliver to its stream."""
        stream = self.active.get(s.sensor)
        if stream is None:
            return
        raw = np.frombuffer(s.data, dtype=s.dtype.numpy).reshape(s.count, s.channels)
        lost = stream._account(s.first, s.count)
        stream._deliver(SampleBlock(s.sensor, s.first, s.timestamp_us, raw, lost))

    def end_all(self) -> None:
        """The connection is lost: end every stream after what it already received."""
        for stream in list(self.active.values()):
            stream._deliver(None)

    def record(self, stream: Stream, seconds: float) -> SensorSamples:
        """Run ``stream`` for ``seconds`` worth of samples and return them.

        With a known rate (framed mode, or a line-mode rate already estimated)
        the length is a sample count, so a slow link cannot shorten it; lost
        samples are counted in ``SensorSamples.lost``, never filled in. Otherwise
        (a line-mode sketch of unknown rate) it records ``seconds`` of wall time.
        Raises :class:`LinkTimeout` if no sample arrives for ``timeouts.request``
        plus :data:`~.timeouts.STREAM_STALL_TIMEOUT`, :class:`ConnectionLost` if
        the board goes away; either error carries what was received in its
        ``recording`` attribute.
        """
        stall = self.session.timeouts.request + STREAM_STALL_TIMEOUT
        with stream as s:
            rate = s.rate_hz or self.line.rate_hz
            wanted = round(seconds * rate) if rate else None
            t_end = time.monotonic() + seconds
            blocks: list[np.ndarray] = []
            have = 0

            def collected() -> SensorSamples:
                raw = (np.concatenate(blocks) if blocks
                       else np.zeros((0, len(s.sensor.channels)), np.float32))
                if wanted is not None:
                    raw = raw[: max(0, wanted - s.stats.lost)]
                got_rate = rate or self.line.rate_hz or (have / seconds if seconds > 0 else 0.0)
                return SensorSamples(s.sensor.id, s.sensor.channels, s.sensor.units, got_rate, raw,
                                 s.sensor.scale, s.stats.lost)

            try:
                while (have + s.stats.lost < wanted) if wanted is not None else (
                        time.monotonic() < t_end):
                    block = s.read(timeout=stall)
                    if block is None:
                        raise LinkTimeout(f"the {s.sensor.id} stream of {self.session.url} "
                                          f"stalled after {have} samples")
                    blocks.append(block.raw)
                    have += len(block.raw)
            except (ConnectionLost, LinkTimeout) as e:
                e.recording = collected()
                raise
            return collected()
