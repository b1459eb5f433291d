"""The host side of the device protocol: :class:`Device`.

Layers, as in esptool: framing (:mod:`.framing`), then request/response with
matching request ids and typed errors (:meth:`Device.request`), then
operations with bounded retries (:meth:`Device.upload_model`, :meth:`Device.infer`,
:meth:`Device.stream`). Every time-out and retry count is a field of
:class:`Timeouts` with a named default.

A :class:`Device` owns one background reader thread that decodes everything the
port delivers; requests block the calling thread until their answer, an
ERROR, a time-out or a lost connection.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import numpy as np

from ..protocol import messages as m
from .errors import (ConnectionLost, DeviceError, LinkError, LinkTimeout, NotFramed,
                     OutOfOrder, error_from_frame)
from ..protocol.framing import DEFAULT_MAX_PAYLOAD, FLAG_RETRY, Frame, FrameParser, encode_frame
from ..protocol.linemode import LineParser, RateEstimator

# Named time-outs and retry counts (seconds / attempts). Override per device with
# ``open_device(url, timeouts=Timeouts(...))``.
HELLO_TIMEOUT = 0.6
HELLO_ATTEMPTS = 3
REQUEST_TIMEOUT = 1.0
REQUEST_RETRIES = 3
VERIFY_TIMEOUT = 60.0
"""MODEL_END: the device hashes the image and checks the model can run."""
INFER_TIMEOUT = 30.0
CHUNK_RETRIES = 8
"""How many times one model chunk may be re-sent before the upload gives up."""
LINE_DETECT_TIMEOUT = 2.0
"""How long ``mode="auto"`` listens for sample lines when HELLO got no answer."""
LINE_RATE_SETTLE = 1.0
"""After the first sample lines, how long to wait for a sample-rate estimate."""


@dataclass(frozen=True)
class Timeouts:
    hello: float = HELLO_TIMEOUT
    hello_attempts: int = HELLO_ATTEMPTS
    request: float = REQUEST_TIMEOUT
    retries: int = REQUEST_RETRIES
    verify: float = VERIFY_TIMEOUT
    infer: float = INFER_TIMEOUT
    chunk_retries: int = CHUNK_RETRIES
    line_detect: float = LINE_DETECT_TIMEOUT


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


@dataclass(frozen=True)
class SampleBlock:
    """Consecutive samples of one sensor: ``raw`` has shape (count, channels).

    ``lost_before`` counts samples missing between the previous block and this one.
    ``timestamp_us`` is the device clock (framed) or host arrival time (line mode).
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
class Recording:
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


@dataclass(frozen=True)
class InferenceResult:
    outputs: list[np.ndarray]
    latency_us: int
    arena_bytes: int
    latency_estimated: bool
    """True when the latency was not measured on silicon (virtual board)."""


class Stream:
    """Samples of one sensor as they arrive. Use as a context manager and iterate.

    ``with dev.stream("accel") as s: for block in s: ...`` starts the stream on
    entry and stops it on exit. Iteration ends when the stream is stopped or the
    connection is lost (then :class:`ConnectionLost` is raised).
    """

    def __init__(self, device: "Device", sensor: m.SensorDesc, rate_hz: float) -> None:
        self.device = device
        self.sensor = sensor
        self.rate_hz = rate_hz
        self.stats = StreamStats()
        self._queue: queue.Queue = queue.Queue()
        self._next: int | None = None
        self.active = False

    def _deliver(self, block: SampleBlock | None) -> None:
        self._queue.put(block)

    def _account(self, first: int, count: int) -> int:
        lost = 0
        if self._next is not None:
            lost = (first - self._next) & 0xFFFFFFFF
            if lost > 0x7FFFFFFF:  # an old or repeated block
                lost = 0
        self._next = (first + count) & 0xFFFFFFFF
        self.stats.blocks += 1
        self.stats.samples += count
        self.stats.lost += lost
        return lost

    def read(self, timeout: float | None = None) -> SampleBlock | None:
        """The next block, or None at the end of the stream or after ``timeout``."""
        try:
            block = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if block is None:
            self._queue.put(None)  # keep the end marker for other readers
            if self.device.lost:
                raise ConnectionLost(self.device.lost)
        return block

    def __iter__(self) -> Iterator[SampleBlock]:
        while True:
            block = self.read()
            if block is None:
                return
            yield block

    def __enter__(self) -> "Stream":
        self.device._start_stream(self)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.active:
            self.device._stop_stream(self)


class Device:
    """A board that speaks the workbench protocol (framed) or prints samples (line).

    Made by :func:`workbench.link.open_device`, which opens the port and runs the
    HELLO handshake. Close it (or use ``with``) to stop the reader thread and
    release the port; a virtual board started for a ``sim://`` URL stops with it.
    """

    def __init__(self, port, *, url: str = "", timeouts: Timeouts = Timeouts(),
                 baudrate: int | None = None) -> None:
        self.port = port
        self.url = url
        self.timeouts = timeouts
        self.baudrate = baudrate or getattr(port, "baudrate", 115200) or 115200
        self.mode = "unknown"
        self.info: m.Info | None = None
        self.sensors: tuple[m.SensorDesc, ...] = ()
        self.stats = LinkStats()
        self.telemetry: m.Telemetry | None = None
        self.logs: deque[m.Log] = deque(maxlen=1000)
        self.on_event: list[Callable[[int, object], None]] = []
        self.lost: str | None = None
        self.max_payload = DEFAULT_MAX_PAYLOAD
        self._parser = FrameParser()
        self._lines = LineParser()
        self._line_rate = RateEstimator()
        self._tx_lock = threading.Lock()
        self._pending: dict[int, "_Pending"] = {}
        self._pending_lock = threading.Lock()
        self._next_req = 1
        self._tx_seq = 0
        self._streams: dict[int, Stream] = {}
        self._closing = False
        self._reader = threading.Thread(target=self._read_loop, name=f"workbench-link {url}",
                                        daemon=True)
        self._reader.start()

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop streams, the reader thread and the port. Safe to call twice."""
        if self._closing:
            return
        for stream in list(self._streams.values()):
            try:
                stream.stop()
            except LinkError:
                pass
        self._closing = True
        self._reader.join(timeout=2)
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a dead port must not raise
            pass

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        who = self.info.board_name if self.info else "unidentified device"
        return f"<Device {self.url} {self.mode}: {who}>"

    # ----------------------------------------------------------------- wire
    def _wire_time(self, nbytes: int) -> float:
        return nbytes * 10.0 / self.baudrate

    def _send(self, frame: Frame) -> None:
        data = encode_frame(frame)
        with self._tx_lock:
            if self.lost:
                raise ConnectionLost(self.lost)
            try:
                self.port.write(data)
            except Exception as e:  # noqa: BLE001 - any port failure means the link is gone
                self._lose(f"writing to {self.url} failed: {e}")
                raise ConnectionLost(self.lost) from e
            self.stats.bytes_tx += len(data)

    def _read_loop(self) -> None:
        while not self._closing:
            try:
                data = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            except Exception as e:  # noqa: BLE001
                if not self._closing:
                    self._lose(f"reading from {self.url} failed: {e}")
                return
            if not data:
                continue
            now = time.monotonic()
            self.stats.bytes_rx += len(data)
            if self.mode == "line":
                self._on_lines(data, now)
                continue
            for frame in self._parser.feed(data):
                self._on_frame(frame)
            ps = self._parser.stats
            self.stats.frames_rx = ps.frames
            self.stats.bad_frames_rx = ps.bad_frames
            self.stats.frames_lost_rx = ps.seq_gaps
            if self.mode == "unknown":  # not identified yet: could be a line-mode sketch
                for ev in self._lines.feed(data, now):
                    if ev.kind == "sample":
                        self._line_rate.add(ev.t)

    def _lose(self, why: str) -> None:
        if self.lost:
            return
        time.sleep(0.05)  # let a stopping virtual board finish dying
        reason = getattr(self.port, "exit_reason", None)
        if reason:
            why = f"the virtual board stopped ({reason})"
        self.lost = why
        with self._pending_lock:
            pending = list(self._pending.values())
        for p in pending:
            p.done.set()
        for stream in list(self._streams.values()):
            stream._deliver(None)

    def _on_frame(self, frame: Frame) -> None:
        if frame.req_id and not m.is_event(frame.type):
            with self._pending_lock:
                p = self._pending.get(frame.req_id)
            if p is not None:
                p.frame = frame
                p.done.set()
            return
        try:
            if frame.type == m.Msg.SAMPLES:
                self._on_samples(m.Samples.decode(frame.payload))
            elif frame.type == m.Msg.TELEMETRY:
                self.telemetry = m.Telemetry.decode(frame.payload)
                self._emit(frame.type, self.telemetry)
            elif frame.type == m.Msg.LOG:
                log = m.Log.decode(frame.payload)
                self.logs.append(log)
                self._emit(frame.type, log)
            elif frame.type == m.Msg.ERROR:
                self.logs.append(m.Log(3, "device error: " + m.Error.decode(frame.payload).message))
        except m.MalformedPayload as e:
            self.logs.append(m.Log(3, f"host: dropped a malformed event: {e}"))

    def _emit(self, ftype: int, event: object) -> None:
        for cb in list(self.on_event):
            cb(ftype, event)

    def _on_samples(self, s: m.Samples) -> None:
        stream = self._streams.get(s.sensor)
        if stream is None:
            return
        raw = np.frombuffer(s.data, dtype=s.dtype.numpy).reshape(s.count, s.channels)
        lost = stream._account(s.first, s.count)
        stream._deliver(SampleBlock(s.sensor, s.first, s.timestamp_us, raw, lost))

    def _on_lines(self, data: bytes, now: float) -> None:
        for ev in self._lines.feed(data, now):
            if ev.kind == "sample":
                self._line_rate.add(ev.t)
                stream = self._streams.get(0)
                if stream is not None:
                    raw = np.asarray([ev.values], dtype=np.float32)
                    idx = self._lines.samples - 1
                    stream._account(idx, 1)
                    stream._deliver(SampleBlock(0, idx, int(ev.t * 1e6), raw, 0))
            elif ev.kind == "text":
                self.logs.append(m.Log(1, ev.text))
                self._emit(m.Msg.LOG, m.Log(1, ev.text))

    # ----------------------------------------------------------------- requests
    def _begin(self, mtype: int, payload: bytes) -> "_Pending":
        with self._pending_lock:
            req = self._next_req
            self._next_req = self._next_req % 0xFFFF + 1
            p = _Pending(req, mtype, payload)
            self._pending[req] = p
        self._transmit(p, retry=False)
        return p

    def _transmit(self, p: "_Pending", *, retry: bool) -> None:
        with self._tx_lock:
            seq = self._tx_seq
            self._tx_seq = (seq + 1) & 0xFFFF
        p.done.clear()
        p.sent_at = time.monotonic()
        self._send(Frame(p.mtype, seq, p.req_id, p.payload, FLAG_RETRY if retry else 0))

    def _finish(self, p: "_Pending") -> None:
        with self._pending_lock:
            self._pending.pop(p.req_id, None)

    def _result(self, p: "_Pending") -> Frame:
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

        The wait per attempt is ``timeout`` plus the wire time of the request and
        of a full-size answer at the port's baud rate. Raises the
        :class:`DeviceError` subclass of an ERROR answer, :class:`LinkTimeout`
        after ``retries`` re-sends, :class:`ConnectionLost` if the port closes.
        Re-sent requests keep their request id, so the device answers a
        duplicate from its cache instead of acting twice.
        """
        if self.lost:
            raise ConnectionLost(self.lost)
        timeout = self.timeouts.request if timeout is None else timeout
        retries = self.timeouts.retries if retries is None else retries
        wait = timeout + self._wire_time(len(payload) + 2 * self.max_payload + 64)
        p = self._begin(mtype, payload)
        try:
            for attempt in range(retries + 1):
                if attempt:
                    self.stats.retries += 1
                    self._transmit(p, retry=True)
                if p.done.wait(wait) and p.frame is not None:
                    return self._result(p)
                if self.lost:
                    raise ConnectionLost(self.lost)
                self.stats.timeouts += 1
            raise LinkTimeout(
                f"{m.Msg(mtype).name} got no answer from {self.url} in {wait:.2f} s, "
                f"{retries + 1} attempts. Is the board running the workbench firmware at "
                f"{self.baudrate} baud? Try unplugging it, or open it with mode='line' if it "
                "only prints samples.")
        finally:
            self._finish(p)

    # ----------------------------------------------------------------- handshake
    def hello(self) -> m.Info:
        """HELLO handshake: learn who the board is. Sets ``info``, ``sensors``, ``mode``.

        Also brings a workbench firmware in line mode back to framed mode.
        """
        if self.mode == "line":
            self.mode = "unknown"
            self._parser.reset()
        frame = self.request(m.Msg.HELLO, m.Hello(m.PROTOCOL_VERSION, DEFAULT_MAX_PAYLOAD).encode(),
                             timeout=self.timeouts.hello, retries=self.timeouts.hello_attempts - 1)
        info = m.Info.decode(frame.payload)
        self.info = info
        self.mode = "framed"
        self.max_payload = min(info.max_payload, DEFAULT_MAX_PAYLOAD)
        self._parser.max_payload = DEFAULT_MAX_PAYLOAD
        if info.sensor_count:
            self.sensors = m.SensorList.decode(self.request(m.Msg.SENSORS).payload).sensors
        return info

    def _require_framed(self, what: str) -> None:
        if self.mode != "framed":
            raise NotFramed(f"{what} needs the framed protocol, but {self.url} is in "
                            f"{self.mode} mode (it prints samples as text). Flash the "
                            "workbench firmware to use it, or only stream from it.")

    def sensor(self, name: str | int) -> m.SensorDesc:
        """The sensor with this id (``"accel"``) or index."""
        for s in self.sensors:
            if s.id == name or s.index == name:
                return s
        have = ", ".join(s.id for s in self.sensors) or "none"
        raise KeyError(f"{self.url} has no sensor {name!r}; it has: {have}")

    # ----------------------------------------------------------------- streaming
    def stream(self, sensor: str | int = 0, rate_hz: float | None = None) -> Stream:
        """A :class:`Stream` of one sensor; it starts when entered with ``with``."""
        if self.mode == "line":
            desc = self.sensor(0)
            return Stream(self, desc, rate_hz or desc.rate_hz)
        self._require_framed("streaming")
        desc = self.sensor(sensor)
        return Stream(self, desc, rate_hz or desc.rate_hz)

    def _start_stream(self, stream: Stream) -> None:
        idx = stream.sensor.index
        if idx in self._streams:
            raise LinkError(f"sensor {stream.sensor.id!r} is already streaming")
        self._streams[idx] = stream
        stream.active = True
        if self.mode == "line":
            return
        try:
            got = m.StreamStarted.decode(self.request(
                m.Msg.STREAM_START, m.StreamStart(idx, stream.rate_hz or 0.0).encode()).payload)
        except BaseException:
            self._streams.pop(idx, None)
            stream.active = False
            raise
        stream.rate_hz = got.rate_hz

    def _stop_stream(self, stream: Stream) -> None:
        idx = stream.sensor.index
        stream.active = False
        try:
            if self.mode == "framed" and not self.lost:
                stopped = m.StreamStopped.decode(
                    self.request(m.Msg.STREAM_STOP, bytes([idx])).payload)
                stream.stats.device_dropped = stopped.samples_dropped
        finally:
            self._streams.pop(idx, None)
            stream._deliver(None)

    def record(self, sensor: str | int = 0, seconds: float = 1.0,
               rate_hz: float | None = None) -> Recording:
        """Stream ``seconds`` worth of samples of one sensor and return them.

        With a known rate (framed mode, or a line-mode rate already estimated)
        the length is a sample count, so a slow link cannot shorten it; lost
        samples are counted in ``Recording.lost``, never filled in. Otherwise
        (a line-mode sketch of unknown rate) it records ``seconds`` of wall time.
        Raises :class:`LinkTimeout` if no sample arrives for ``REQUEST_TIMEOUT``
        plus two seconds.
        """
        with self.stream(sensor, rate_hz) as s:
            rate = s.rate_hz or self.line_rate_hz
            wanted = int(round(seconds * rate)) if rate else None
            t_end = time.monotonic() + seconds
            blocks, have = [], 0
            while (have + s.stats.lost < wanted) if wanted is not None else (
                    time.monotonic() < t_end):
                block = s.read(timeout=self.timeouts.request + 2)
                if block is None:
                    raise LinkTimeout(f"the {s.sensor.id} stream of {self.url} stalled after "
                                      f"{have} samples")
                blocks.append(block.raw)
                have += len(block.raw)
            raw = (np.concatenate(blocks) if blocks
                   else np.zeros((0, len(s.sensor.channels)), np.float32))
            if wanted is not None:
                raw = raw[: max(0, wanted - s.stats.lost)]
            rate = rate or self.line_rate_hz or have / seconds
            return Recording(s.sensor.id, s.sensor.channels, s.sensor.units, rate, raw,
                             s.sensor.scale, s.stats.lost)

    @property
    def text_lines(self) -> int:
        """Line mode: lines that were neither samples nor the header (a sketch's messages)."""
        return self._lines.text_lines

    @property
    def line_rate_hz(self) -> float | None:
        """Line mode: the sample rate estimated from arrival times so far."""
        return self._line_rate.rate_hz

    # ----------------------------------------------------------------- inference
    def infer(self, *inputs: np.ndarray) -> InferenceResult:
        """Run the active model on the device with these input tensors.

        Inputs are sent as raw little-endian bytes of their dtype (cast and
        shape them as the model expects: see ``slots()`` and ``workbench.tflite``).
        Inputs larger than one frame go ahead in SET_INPUT chunks.
        """
        self._require_framed("inference")
        inline: list[tuple[int, bytes]] = []
        budget = self.max_payload - 16
        for index, arr in enumerate(inputs):
            data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            if len(data) + 5 <= budget:
                inline.append((index, data))
                budget -= len(data) + 5
            else:
                self._send_chunks(m.Msg.SET_INPUT, index, data)
        frame = self.request(m.Msg.INFER, m.Infer(tuple(inline)).encode(),
                             timeout=self.timeouts.infer, retries=0)
        res = m.Result.decode(frame.payload)
        outputs = []
        for index, t in enumerate(res.outputs):
            data = t.data
            if res.flags & m.RESULT_OUTPUTS_DETACHED:
                data = self._fetch_output(index, t.nbytes)
            arr = np.frombuffer(data, dtype=t.dtype.numpy).reshape(t.shape)
            outputs.append(arr.copy())
        return InferenceResult(outputs, res.latency_us, res.arena_bytes,
                               bool(res.flags & m.RESULT_LATENCY_ESTIMATED))

    def _fetch_output(self, index: int, nbytes: int) -> bytes:
        out = bytearray()
        step = self.max_payload - 8
        while len(out) < nbytes:
            got = m.Chunk.decode(self.request(m.Msg.GET_OUTPUT, m.GetOutput(
                index, len(out), min(step, nbytes - len(out))).encode()).payload)
            if got.offset != len(out) or not got.data:
                raise LinkError(f"GET_OUTPUT returned offset {got.offset}, expected {len(out)}")
            out += got.data
        return bytes(out)

    # ----------------------------------------------------------------- model transfer
    def _send_chunks(self, mtype: int, index: int, data: bytes, *, start: int = 0,
                     chunk: int | None = None, window: int = 1,
                     progress: Callable[[int, int], None] | None = None) -> None:
        """Send ``data[start:]`` as chunk requests with up to ``window`` in flight.

        Each chunk is acknowledged with the next offset the device expects; an
        OUT_OF_ORDER error or a time-out rewinds to the device's offset (go-back-N).
        Gives up after ``chunk_retries`` re-sends of the same offset.
        """
        chunk = chunk or (self.max_payload - 8)
        total = len(data)
        acked = start
        inflight: deque[_Pending] = deque()
        sent = start
        attempts_at: dict[int, int] = {}
        wait = self.timeouts.request + self._wire_time((chunk + 32) * (window + 1))
        try:
            while acked < total:
                while sent < total and len(inflight) < window:
                    piece = data[sent : sent + chunk]
                    inflight.append(self._begin(mtype, m.Chunk(index, sent, piece).encode()))
                    sent += len(piece)
                p = inflight[0]
                ok = p.done.wait(wait) and p.frame is not None
                if self.lost:
                    raise ConnectionLost(self.lost)
                rewind_to = None
                if ok:
                    try:
                        acked = max(acked, m.Offset.decode(self._result(p).payload).offset)
                        inflight.popleft()
                        self._finish(p)
                        if progress:
                            progress(acked, total)
                        continue
                    except OutOfOrder as e:
                        rewind_to = e.detail
                else:
                    self.stats.timeouts += 1
                    rewind_to = acked
                # go back: forget everything in flight and resend from the device's offset
                for q in inflight:
                    self._finish(q)
                inflight.clear()
                attempts_at[rewind_to] = attempts_at.get(rewind_to, 0) + 1
                if attempts_at[rewind_to] > self.timeouts.chunk_retries:
                    raise LinkTimeout(f"{m.Msg(mtype).name} at offset {rewind_to} failed "
                                      f"{attempts_at[rewind_to]} times; the link is too noisy. "
                                      "Check the cable, or lower the baud rate.")
                if rewind_to > total:
                    raise LinkError(f"{m.Msg(mtype).name}: the device expects offset {rewind_to} "
                                    f"of a {total}-byte object")
                self.stats.retries += 1
                # let answers to the abandoned requests arrive (they are ignored), then resend
                time.sleep(min(0.5, self._wire_time((chunk + 32) * window) + 0.05))
                acked = max(acked, rewind_to)
                sent = rewind_to
        finally:
            for q in inflight:
                self._finish(q)

    def upload_model(self, model: bytes, *, slot: int | None = None, name: str = "",
                     commit: bool = True,
                     progress: Callable[[int, int], None] | None = None) -> m.SlotInfo:
        """Send a .tflite model to a model slot, verify it, and (by default) commit it.

        Call order on the wire: MODEL_BEGIN (size, SHA-256) -> MODEL_CHUNK x N
        (windowed) -> MODEL_END (device verifies the hash and that the model
        runs in its arena) -> MODEL_COMMIT. An interrupted upload of the same
        image resumes where the device's flash says it stopped. The running
        model stays active until the commit, so a failed upload leaves the device
        as it was. Raises :class:`ModelTooLarge`, :class:`ArenaTooSmall`,
        :class:`UnsupportedOp`, :class:`ModelInvalid`, :class:`VerifyFailed`.
        """
        self._require_framed("a model upload")
        digest = hashlib.sha256(model).digest()
        begun = m.ModelBegun.decode(self.request(m.Msg.MODEL_BEGIN, m.ModelBegin(
            m.NO_SLOT if slot is None else slot, len(model), digest, name).encode()).payload)
        self._send_chunks(m.Msg.MODEL_CHUNK, begun.slot, model, start=begun.resume_offset,
                          chunk=min(begun.chunk_max, self.max_payload - 8),
                          window=max(1, begun.window), progress=progress)
        m.ModelVerified.decode(self.request(m.Msg.MODEL_END, timeout=self.timeouts.verify,
                                            retries=1).payload)
        if commit:
            self.commit(begun.slot)
        return self.slots().slots[begun.slot]

    def commit(self, slot: int) -> int:
        """Make a verified slot the active model; the old one becomes the fallback."""
        self._require_framed("commit")
        return m.SlotRef.decode(self.request(m.Msg.MODEL_COMMIT, m.SlotRef(slot).encode(),
                                             timeout=self.timeouts.verify).payload).slot

    def rollback(self) -> int:
        """Return to the fallback model. Returns the slot now active."""
        self._require_framed("rollback")
        return m.SlotRef.decode(self.request(m.Msg.MODEL_ROLLBACK,
                                             timeout=self.timeouts.verify).payload).slot

    def slots(self) -> m.SlotTable:
        """State of every model slot (size, SHA-256, bytes written, arena needed)."""
        self._require_framed("slot status")
        return m.SlotTable.decode(self.request(m.Msg.SLOT_STATUS).payload)

    # ----------------------------------------------------------------- misc
    def ping(self, payload: bytes = b"") -> float:
        """Round-trip time in seconds of a PING carrying ``payload`` (echoed back)."""
        self._require_framed("ping")
        t0 = time.perf_counter()
        frame = self.request(m.Msg.PING, payload)
        if frame.payload != payload:
            raise LinkError("PING echo differs from what was sent")
        return time.perf_counter() - t0

    def set_telemetry(self, period_ms: int) -> None:
        """Ask for a TELEMETRY event every ``period_ms`` (0 stops them)."""
        self._require_framed("telemetry")
        self.request(m.Msg.TELEMETRY_CONFIG, m.TelemetryConfig(period_ms).encode())

    def reset(self) -> m.Info:
        """Reboot the device and repeat the handshake."""
        self._require_framed("reset")
        self.request(m.Msg.RESET)
        time.sleep(0.05)
        self._parser.reset()
        return self.hello()

    def scenario(self, name: str = "") -> m.Scenario:
        """Virtual board: set what the board is 'doing' (empty name: just ask)."""
        self._require_framed("scenarios")
        return m.Scenario.decode(self.request(m.Msg.SIM_SCENARIO, m.Text(name).encode()).payload)

    def inject_faults(self, faults: m.Faults) -> None:
        """Virtual board: drop or flip bytes, cut power during an update, disconnect."""
        self._require_framed("fault injection")
        if faults.disconnect:  # the board goes away instead of answering
            self._finish(self._begin(m.Msg.SIM_FAULTS, faults.encode()))
            return
        self.request(m.Msg.SIM_FAULTS, faults.encode())

    def enter_line_mode(self, sensor: str | int = 0, rate_hz: float = 0.0) -> None:
        """Ask the workbench firmware to print one sensor as CSV lines (like a sketch).

        Any existing tool that reads serial text (a serial plotter, Edge Impulse's
        data forwarder) can then read the board. :meth:`hello` switches it back.
        """
        self._require_framed("line mode")
        desc = self.sensor(sensor)
        self._lines = LineParser()
        self._line_rate = RateEstimator()
        self.mode = "unknown"  # the reader now feeds both parsers: the reply, then text
        self.request(m.Msg.SET_MODE, m.SetMode(m.Mode.LINE, desc.index, rate_hz).encode())
        if not self.detect_line_mode(self.timeouts.line_detect):
            raise LinkError(f"{self.url} accepted line mode but printed no samples")

    def detect_line_mode(self, timeout: float) -> bool:
        """Listen for sample lines for up to ``timeout`` s; switch to line mode if seen."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._lines.samples >= 3:
                # give the rate estimate a moment (it needs 8 samples over 50 ms)
                settle = min(end, time.monotonic() + LINE_RATE_SETTLE)
                while self._line_rate.rate_hz is None and time.monotonic() < settle:
                    time.sleep(0.02)
                self._enter_line_mode()
                return True
            time.sleep(0.02)
        return False

    def _enter_line_mode(self) -> None:
        self.mode = "line"
        names = self._lines.names or tuple(f"ch{i}" for i in range(self._lines.width or 0))
        rate = self._line_rate.rate_hz or 0.0
        self.sensors = (m.SensorDesc(0, "line", "line", names, "", m.DType.FLOAT32, 1.0, rate),)

    def use_line_mode(self) -> None:
        """Treat the port as a line-mode sketch from now on (no handshake)."""
        self._enter_line_mode()


@dataclass
class _Pending:
    req_id: int
    mtype: int
    payload: bytes
    done: threading.Event = field(default_factory=threading.Event)
    frame: Frame | None = None
    sent_at: float = 0.0
