"""Capture sessions: a device's sensor stream into the dataset store.

A :class:`CaptureSession` reads one sensor in a background thread and appends
every sample to a :class:`~workbench.data.RecordingWriter`, which puts it on
disk at least once a second. Losses are counted, never hidden: from sample
indices in framed mode, from arrival-time gaps in line mode. Observers (a live
plot) get each block through ``on_block``; they never slow the recording down
(a failing observer is dropped, not fatal).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..data import Dataset, RecordingMeta
from ..link import ConnectionLost, Device, LinkError, waits

LINE_GAP_TOLERANCE_S = 0.3
"""Line mode: a sample deficit below this much time is arrival jitter, not loss."""
STALL_TIMEOUT_S = 5.0
"""No sample for this long ends the session with an error."""


def ended_reason(error: BaseException | None, stopped: bool) -> str:
    """What ``meta.extra["ended"]`` says about how a capture ended: ``"complete"`` (the
    requested length was recorded), ``"stopped"`` (``stop()`` was called), ``"connection
    lost: <why>"`` (the board or its port went away), ``"link error: <why>"`` (e.g. no
    samples for :data:`STALL_TIMEOUT_S`) or ``"error: <type>: <why>"``."""
    if error is None:
        return "stopped" if stopped else "complete"
    if isinstance(error, ConnectionLost):
        return f"connection lost: {error}"
    if isinstance(error, LinkError):
        return f"link error: {error}"
    return f"error: {type(error).__name__}: {error}"


@dataclass
class CaptureStats:
    """Live counters of a session (read them while it runs)."""

    samples: int = 0
    lost: int = 0
    blocks: int = 0
    rate_hz: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        """Seconds of signal recorded (by sample count, lost samples included)."""
        return (self.samples + self.lost) / self.rate_hz if self.rate_hz else 0.0

    @property
    def loss_ratio(self) -> float:
        total = self.samples + self.lost
        return self.lost / total if total else 0.0


class _LineLossDetector:
    """Line mode has no sample numbers: compare arrivals with the sample rate.

    The expected count is elapsed time x rate; when what arrived (plus what is
    already counted lost) falls behind by more than the tolerance, the deficit
    is counted as lost and the expectation resynchronised.
    """

    def __init__(self, rate_hz: float) -> None:
        self.rate = rate_hz
        self.t0: float | None = None
        self.seen = 0

    def check(self, t: float, n: int) -> int:
        if self.t0 is None or not self.rate:
            self.t0, self.seen = t - n / self.rate if self.rate else t, n
            return 0
        expected = (t - self.t0) * self.rate
        deficit = expected - (self.seen + n)
        lost = 0
        if deficit > max(3.0, LINE_GAP_TOLERANCE_S * self.rate):
            lost = int(round(deficit))
        self.seen += n + lost
        return lost


class CaptureSession:
    """Record one sensor of an open :class:`Device` into a :class:`Dataset`.

    Call order: ``start()``, then ``stop()`` (or ``wait()`` when ``seconds`` was
    given); both return the stored :class:`RecordingMeta`. Side effects: a new
    recording in ``dataset`` from the moment ``start()`` returns; the device
    streams until the session ends. Errors in the background thread (a lost
    connection) end the session; ``stop()``/``wait()`` then re-raise them after
    the samples received so far are safely stored. How the session ended is
    recorded in the recording's ``extra["ended"]`` (see :func:`ended_reason`).
    """

    def __init__(self, device: Device, dataset: Dataset, sensor: str | int = "accel", *,
                 label: str | None = None, rate_hz: float | None = None,
                 seconds: float | None = None, **extra) -> None:
        self.device = device
        self.dataset = dataset
        self.sensor = sensor
        self.label = label
        self.rate_hz = rate_hz
        self.seconds = seconds
        self.extra = extra
        self.stats = CaptureStats()
        self.on_block: list[Callable[[np.ndarray], None]] = []
        """Observers called with each block in physical units, shape (n, channels)."""
        self.error: BaseException | None = None
        self.meta: RecordingMeta | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer = None

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    @property
    def recording_id(self) -> str | None:
        return self._writer.meta.id if self._writer else None

    def start(self) -> "CaptureSession":
        if self._thread is not None:
            raise RuntimeError("a capture session can be started once; make a new one")
        dev = self.device
        stream = dev.stream(self.sensor if dev.mode == "framed" else 0, self.rate_hz)
        stream.__enter__()  # starts streaming on the device; rate is now known
        desc = stream.sensor
        self.stats.rate_hz = stream.rate_hz or dev.line_rate_hz or 0.0
        info = dev.info
        self._writer = self.dataset.new_recording(
            sensor=desc.id, channels=desc.channels, units=desc.units, rate_hz=self.stats.rate_hz,
            dtype="float32" if dev.mode == "line" else np.dtype(desc.dtype.numpy).name,
            scale=desc.scale, label=self.label, device=dev.url,
            board=info.board_id if info else "", source=f"capture:{dev.mode}",
            firmware=info.firmware if info else "", **self.extra)
        self._text_lines_before = dev.text_lines
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True,
                                        name=f"capture {desc.id}")
        self._thread.start()
        return self

    def _wanted(self) -> int | None:
        if self.seconds is None or not self.stats.rate_hz:
            return None
        return int(round(self.seconds * self.stats.rate_hz))

    def _run(self, stream) -> None:
        scale = np.float32(stream.sensor.scale)
        line = self.device.mode == "line"
        detector = _LineLossDetector(self.stats.rate_hz) if line else None
        wanted = self._wanted()
        try:
            while not self._stop.is_set():
                block = stream.read(timeout=0.2)
                if block is None:
                    if time.monotonic() - self._last_block_t() > STALL_TIMEOUT_S:
                        raise LinkError(f"no samples from {self.device.url} for "
                                        f"{STALL_TIMEOUT_S:.0f} s")
                    continue
                raw = block.raw
                lost = block.lost_before
                if detector is not None:
                    lost = detector.check(time.monotonic(), len(raw))
                if wanted is not None:  # the recording ends at the requested length
                    room = wanted - self.stats.samples - self.stats.lost
                    lost = min(lost, room)
                    raw = raw[:max(0, room - lost)]
                self._writer.note_loss(lost)
                self._writer.append(raw)
                self.stats.samples += len(raw)
                self.stats.lost += lost
                self.stats.blocks += 1
                self._block_t = time.monotonic()
                if self.on_block:
                    self._notify(raw.astype(np.float32) * scale if scale != 1 else raw)
                if wanted is not None and self.stats.samples + self.stats.lost >= wanted:
                    break
        except BaseException as e:  # noqa: BLE001 - reported by stop()/wait()
            self.error = e
        finally:
            try:
                stream.stop()
            except LinkError:
                pass
            notes = {"device_dropped": stream.stats.device_dropped,
                     "ended": ended_reason(self.error, self._stop.is_set())}
            if line:  # a sketch's own messages, counted (they are in Device.logs)
                notes["text_lines"] = self.device.text_lines - self._text_lines_before
            self.meta = self._writer.close(**notes)
            self._done.set()

    _block_t: float | None = None

    def _last_block_t(self) -> float:
        return self._block_t or self.stats.started

    def _notify(self, values: np.ndarray) -> None:
        for cb in list(self.on_block):
            try:
                cb(values)
            except Exception:  # noqa: BLE001 - an observer must not stop the recording
                self.on_block.remove(cb)

    def wait(self, timeout: float | None = None) -> RecordingMeta:
        """Block until the session ends (``seconds`` reached, stopped, or failed)."""
        if self._thread is None:
            raise RuntimeError("start() the session first")
        if not waits.wait(self._done, timeout):
            raise TimeoutError("the capture is still running")
        if self.error is not None:
            raise self.error
        return self.meta

    def stop(self) -> RecordingMeta:
        """End the recording now; returns what was stored."""
        self._stop.set()
        return self.wait(timeout=STALL_TIMEOUT_S + 5)


def capture(device: Device | str, dataset: Dataset | str, sensor: str | int = "accel", *,
            seconds: float, label: str | None = None, rate_hz: float | None = None,
            **extra) -> RecordingMeta:
    """Record ``seconds`` of one sensor into ``dataset`` and return the recording's metadata.

    ``device`` may be an open :class:`Device` or a URL (opened and closed here);
    ``dataset`` a :class:`Dataset` or a folder path (opened, created if missing).
    """
    from ..link import open_device

    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    if isinstance(device, str):
        with open_device(device) as dev:
            return CaptureSession(dev, ds, sensor, label=label, rate_hz=rate_hz,
                                  seconds=seconds, **extra).start().wait()
    return CaptureSession(device, ds, sensor, label=label, rate_hz=rate_hz, seconds=seconds,
                          **extra).start().wait()
