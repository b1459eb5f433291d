"""The link session: one open port, its reader thread, and request/response matching.

Layers, as in esptool: framing (:mod:`workbench.protocol.framing`), then this
module (requests matched to answers by request id, typed errors, bounded
re-sends, named time-outs), then the operations built on it (streams, model
transfer, inference) in their own modules, composed by :class:`~.device.Device`.

A :class:`Session` owns one background reader thread that decodes everything
the port delivers. What arrives is routed by :attr:`Session.mode`:

- ``"framed"``: answers wake the request waiting for them; events (samples,
  telemetry, logs) go to ``on_event``;
- ``"line"``: bytes go to ``on_text`` (a line-mode sketch);
- ``"unknown"`` (not identified yet): both, since the far end could be either.

When the port fails, ``lost`` is set (with the reason), every waiting request
wakes and raises :class:`ConnectionLost`, and ``on_lost`` runs once, after every
event received before the loss was handed on, so nothing received is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..protocol import messages as m
from ..protocol.framing import (
    DEFAULT_MAX_PAYLOAD,
    FLAG_RETRY,
    Frame,
    FrameParser,
    encode_frame,
)
from . import waits
from .errors import ConnectionLost, LinkError, LinkTimeout, NotFramed, error_from_frame
from .timeouts import Timeouts, wire_time

FRAME_OVERHEAD = 64
"""Bytes added to a payload's size when estimating a frame's wire time (header, CRC, stuffing)."""
READER_JOIN_TIMEOUT = 2.0
"""Seconds ``close()`` waits for the reader thread to finish."""
LOSS_SETTLE = 0.05
"""Seconds to let a stopping virtual board finish dying before asking why it stopped."""


@dataclass
class LinkStats:
    """Counters of one connection, for loss accounting shown to the user."""

    frames_rx: int = 0
    bad_frames_rx: int = 0
    frames_lost_rx: int = 0
    retries: int = 0
    timeouts: int = 0
    bytes_rx: int = 0
    bytes_tx: int = 0


@dataclass
class Pending:
    """One request in flight: woken (``done``) by its answer or by a lost link."""

    req_id: int
    mtype: int
    payload: bytes
    done: threading.Event = field(default_factory=threading.Event)
    frame: Frame | None = None
    sent_at: float = 0.0


def _ignore(*_args) -> None:
    pass


class Session:
    """The port, the reader thread, and requests matched to their answers.

    Call order: construct (starts the reader thread), :meth:`handshake` (or set
    ``mode`` for a line-mode sketch), then :meth:`request` as often as needed,
    then :meth:`close`. ``on_event(frame)`` gets every framed event,
    ``on_text(data, arrival_time)`` every byte while not framed, ``on_lost()``
    runs once when the port fails; all three run on the reader thread (``on_lost``
    may run on the thread whose write failed).
    """

    def __init__(self, port, *, url: str = "", timeouts: Timeouts | None = None,
                 baudrate: int | None = None,
                 on_event: Callable[[Frame], None] = _ignore,
                 on_text: Callable[[bytes, float], None] = _ignore,
                 on_lost: Callable[[], None] = _ignore) -> None:
        self.port = port
        self.url = url
        self.timeouts = Timeouts() if timeouts is None else timeouts
        self.baudrate = baudrate or getattr(port, "baudrate", 115200) or 115200
        self.mode = "unknown"
        """``"unknown"`` until identified, then ``"framed"`` or ``"line"``."""
        self.info: m.Info | None = None
        self.stats = LinkStats()
        self.lost: str | None = None
        """Why the connection was lost, or None while it is up."""
        self.max_payload = DEFAULT_MAX_PAYLOAD
        self.parser = FrameParser()
        self.on_event, self.on_text, self.on_lost = on_event, on_text, on_lost
        self.taps: list[Callable[[str, bytes, float], None]] = []
        """Observers of the raw bytes both ways, e.g. a serial monitor: ``tap(direction, data,
        monotonic_time)``, direction ``"rx"`` (on the reader thread, before decoding) or ``"tx"``
        (on the writing thread, after the write). They see, never take: the port stays this
        session's. A tap that raises is removed (the link must not fail for a display)."""
        self._tx_lock = threading.Lock()
        self._pending: dict[int, Pending] = {}
        self._pending_lock = threading.Lock()
        self._next_req = 1
        self._tx_seq = 0
        self._closing = False
        self._reader = threading.Thread(target=self._read_loop, name=f"workbench-link {url}",
                                        daemon=True)

    def start(self) -> None:
        """Start the reader thread (once the callbacks are in place)."""
        self._reader.start()

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop the reader thread and close the port. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        if self._reader.is_alive():
            self._reader.join(timeout=READER_JOIN_TIMEOUT)
        try:
            self.port.close()
        except Exception:  # noqa: BLE001, S110 - closing a dead port must not raise
            pass

    @property
    def closing(self) -> bool:
        return self._closing

    # ----------------------------------------------------------------- wire
    def wire_time(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take at this port's baud rate, capped (see :mod:`.timeouts`)."""
        return wire_time(nbytes, self.baudrate)

    def send(self, frame: Frame) -> None:
        """Write one frame. Raises :class:`ConnectionLost` if the link is (or goes) down."""
        data = encode_frame(frame)
        self._write(data)

    def write_raw(self, data: bytes) -> None:
        """Write bytes as they are, not framed: a line of text to a line-mode sketch (what a
        serial monitor's Send does). Raises :class:`InvalidSetting` (a ValueError) once the
        board speaks the framed protocol, whose parser would take text for broken frames;
        :class:`ConnectionLost` if the link is down."""
        from .errors import InvalidSetting

        if self.mode == "framed":
            raise InvalidSetting(f"{self.url} speaks the framed protocol: text sent to it would "
                                 "reach its frame parser as garbage. Send text only to a sketch "
                                 "in line mode")
        self._write(data)

    def _write(self, data: bytes) -> None:
        with self._tx_lock:
            if self.lost:
                raise ConnectionLost(self.lost)
            try:
                self.port.write(data)
            except Exception as e:
                self.lose(f"writing to {self.url} failed: {e}")
                raise ConnectionLost(self.lost) from e
            self.stats.bytes_tx += len(data)
            self._tap("tx", data)

    def _tap(self, direction: str, data: bytes, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for tap in list(self.taps):
            try:
                tap(direction, data, now)
            except Exception:  # noqa: BLE001 - a broken observer is dropped, the link goes on
                if tap in self.taps:
                    self.taps.remove(tap)

    def _read_loop(self) -> None:
        while not self._closing:
            try:
                data = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            except Exception as e:  # noqa: BLE001
                if not self._closing:
                    self.lose(f"reading from {self.url} failed: {e}")
                return
            if not data:
                continue
            now = time.monotonic()
            self.stats.bytes_rx += len(data)
            if self.taps:
                self._tap("rx", data, now)
            if self.mode == "line":
                self.on_text(data, now)
                continue
            for frame in self.parser.feed(data):
                self._on_frame(frame)
            ps = self.parser.stats
            self.stats.frames_rx = ps.frames
            self.stats.bad_frames_rx = ps.bad_frames
            self.stats.frames_lost_rx = ps.seq_gaps
            if self.mode == "unknown":  # not identified yet: could be a line-mode sketch
                self.on_text(data, now)

    def lose(self, why: str) -> None:
        """Mark the connection lost: wake every waiting request, then run ``on_lost``."""
        if self.lost:
            return
        time.sleep(LOSS_SETTLE)
        reason = getattr(self.port, "exit_reason", None)
        if reason:
            why = f"the virtual board stopped ({reason})"
        self.lost = why
        with self._pending_lock:
            pending = list(self._pending.values())
        for p in pending:
            p.done.set()
        self.on_lost()

    def _on_frame(self, frame: Frame) -> None:
        if frame.req_id and not m.is_event(frame.type):
            with self._pending_lock:
                p = self._pending.get(frame.req_id)
            if p is not None:
                p.frame = frame
                p.done.set()
            return
        self.on_event(frame)

    # ----------------------------------------------------------------- requests
    def begin(self, mtype: int, payload: bytes) -> Pending:
        """Send a request without waiting; pair with :meth:`finish`."""
        with self._pending_lock:
            req = self._next_req
            self._next_req = self._next_req % 0xFFFF + 1
            p = Pending(req, mtype, payload)
            self._pending[req] = p
        self.transmit(p, retry=False)
        return p

    def transmit(self, p: Pending, *, retry: bool) -> None:
        """(Re-)send a pending request with the next sequence number."""
        with self._tx_lock:
            seq = self._tx_seq
            self._tx_seq = (seq + 1) & 0xFFFF
        p.done.clear()
        p.sent_at = time.monotonic()
        self.send(Frame(p.mtype, seq, p.req_id, p.payload, FLAG_RETRY if retry else 0))

    def finish(self, p: Pending) -> None:
        """Forget a request: a late answer to it is ignored."""
        with self._pending_lock:
            self._pending.pop(p.req_id, None)

    def result(self, p: Pending) -> Frame:
        """The answer of a completed request; an ERROR answer raises its DeviceError."""
        frame = p.frame
        assert frame is not None
        if frame.type == m.Msg.ERROR:
            raise error_from_frame(m.Error.decode(frame.payload))
        if frame.type != m.response_type(p.mtype):
            raise LinkError(f"{m.Msg(p.mtype).name}: unexpected answer of type 0x{frame.type:02x}")
        return frame

    def request(self, mtype: int, payload: bytes = b"", *, timeout: float | None = None,
                retries: int | None = None) -> Frame:
        """Send one request and wait for its answer, re-sending it on time-out.

        The wait per attempt is ``timeout`` (default ``timeouts.request``) plus
        the wire time of the request and of a full-size answer at the port's
        baud rate, capped at :data:`~.timeouts.WIRE_ALLOWANCE_MAX`. Raises the
        :class:`DeviceError` subclass of an ERROR answer, :class:`LinkTimeout`
        after ``retries`` re-sends, :class:`ConnectionLost` if the port closes.
        Re-sent requests keep their request id, so the device answers a
        duplicate from its cache instead of acting twice.
        """
        if self.lost:
            raise ConnectionLost(self.lost)
        timeout = self.timeouts.request if timeout is None else timeout
        retries = self.timeouts.retries if retries is None else retries
        wait = timeout + self.wire_time(len(payload) + 2 * self.max_payload + FRAME_OVERHEAD)
        p = self.begin(mtype, payload)
        try:
            for attempt in range(retries + 1):
                if attempt:
                    self.stats.retries += 1
                    self.transmit(p, retry=True)
                if waits.wait(p.done, wait) and p.frame is not None:
                    return self.result(p)
                if self.lost:
                    raise ConnectionLost(self.lost)
                self.stats.timeouts += 1
            raise LinkTimeout(
                f"{m.Msg(mtype).name} got no answer from {self.url} in {wait:.2f} s, "
                f"{retries + 1} attempts. Is the board running the workbench firmware at "
                f"{self.baudrate} baud? Try unplugging it, or open it with mode='line' if it "
                "only prints samples.")
        finally:
            self.finish(p)

    # ----------------------------------------------------------------- handshake
    def handshake(self) -> m.Info:
        """HELLO: learn who the board is. Sets ``info``, ``mode="framed"`` and ``max_payload``.

        Also brings a workbench firmware in line mode back to framed mode.
        Raises :class:`LinkTimeout` after ``timeouts.hello_attempts`` silent attempts.
        """
        if self.mode == "line":
            self.mode = "unknown"
            self.parser.reset()
        frame = self.request(m.Msg.HELLO, m.Hello(m.PROTOCOL_VERSION, DEFAULT_MAX_PAYLOAD).encode(),
                             timeout=self.timeouts.hello, retries=self.timeouts.hello_attempts - 1)
        info = m.Info.decode(frame.payload)
        self.info = info
        self.mode = "framed"
        self.max_payload = min(info.max_payload, DEFAULT_MAX_PAYLOAD)
        self.parser.max_payload = DEFAULT_MAX_PAYLOAD
        return info

    def require_framed(self, what: str) -> None:
        """Raise :class:`NotFramed` unless the board speaks the framed protocol."""
        if self.mode != "framed":
            raise NotFramed(f"{what} needs the framed protocol, but {self.url} is in "
                            f"{self.mode} mode (it prints samples as text). Flash the "
                            "workbench firmware to use it, or only stream from it.")
