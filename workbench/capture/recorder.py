"""The state behind a capture screen, headless: one device, one dataset, one take at a time.

A :class:`Recorder` is what the capture panel widget drives, and what a script
can drive the same way: connect to a URL, pick a sensor, set a virtual board's
scenario, record takes with labels, read live counters. It owns the open
device and closes it on :meth:`disconnect`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data import Dataset, RecordingMeta
from ..link import Device, LinkError, open_device
from ..protocol.messages import Capability, SensorDesc
from .session import CaptureSession


@dataclass(frozen=True)
class RecorderStatus:
    """A snapshot of the counters, for display."""

    state: str
    """"disconnected", "ready" or "recording"."""
    device: str
    samples: int = 0
    lost: int = 0
    seconds: float = 0.0
    rate_hz: float = 0.0
    takes: int = 0
    message: str = ""

    @property
    def loss_ratio(self) -> float:
        total = self.samples + self.lost
        return self.lost / total if total else 0.0


class Recorder:
    """Record labelled takes from one device into one dataset.

    Call order: ``connect(url)``; then any number of ``start(...)``/``stop()``
    pairs (or ``record(...)`` for a fixed length); ``disconnect()``. Errors from
    the link propagate as :class:`~workbench.link.LinkError` with their advice;
    a take that fails keeps what it stored.
    """

    def __init__(self, dataset: Dataset | str, device: Device | None = None) -> None:
        self.dataset = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
        self.device = device
        self.session: CaptureSession | None = None
        self.takes: list[RecordingMeta] = []
        self.on_block: list[Callable[[np.ndarray], None]] = []
        """Observers of every block of the current take (e.g. a live plot)."""
        self.message = ""
        self.scenario: str | None = None
        """A virtual board's scenario as last set or read through this recorder (None: a real
        board, or not connected)."""
        self._preview: tuple | None = None  # (stream, thread, stop event)

    # ------------------------------------------------------------ connection
    def connect(self, url: str, **kwargs) -> Device:
        """Open ``url`` (closing any device opened before)."""
        self.disconnect()
        self.device = open_device(url, **kwargs)
        self.message = f"connected to {self._who()}"
        self.scenario = self.device.scenario().current if self.is_virtual else None
        return self.device

    def disconnect(self) -> None:
        self.stop_preview()
        if self.session is not None and self.session.running:
            self.stop()
        if self.device is not None:
            self.device.close()
            self.device = None
            self.scenario = None
            self.message = "disconnected"

    def _who(self) -> str:
        dev = self.device
        if dev is None:
            return "nothing"
        if dev.info:
            return f"{dev.info.board_name} at {dev.url}"
        return f"a line-mode sketch at {dev.url}"

    @property
    def sensors(self) -> tuple[SensorDesc, ...]:
        return self.device.sensors if self.device else ()

    @property
    def is_virtual(self) -> bool:
        dev = self.device
        return bool(dev and dev.info and dev.info.capabilities & Capability.SIMULATED)

    @property
    def scenarios(self) -> tuple[str, ...]:
        """What a virtual board can be doing (empty for real boards)."""
        return self.device.scenario().available if self.is_virtual else ()

    def set_scenario(self, name: str) -> str:
        """Virtual board: choose what it is doing (``idle``, ``walking``, ``wave``...)."""
        if not self.is_virtual:
            raise ValueError("only a virtual board has scenarios; move the real one instead")
        self.scenario = self.device.scenario(name).current
        return self.scenario

    # ------------------------------------------------------------ preview
    def start_preview(self, sensor: str | int = "accel", rate_hz: float | None = None) -> None:
        """Stream a sensor to the observers without storing anything (to look before
        recording). A take started later stops the preview first."""
        if self.device is None:
            raise RuntimeError("connect to a device first")
        self.stop_preview()
        dev = self.device
        stream = dev.stream(sensor if dev.mode == "framed" else 0, rate_hz)
        stream.__enter__()
        stop = threading.Event()
        scale = np.float32(stream.sensor.scale)

        def pump() -> None:
            while not stop.is_set():
                try:
                    block = stream.read(timeout=0.2)
                except LinkError:
                    return
                if block is not None:
                    self._forward(block.raw.astype(np.float32) * scale)

        thread = threading.Thread(target=pump, daemon=True, name="capture preview")
        thread.start()
        self._preview = (stream, thread, stop)

    def stop_preview(self) -> None:
        if self._preview is None:
            return
        stream, thread, stop = self._preview
        self._preview = None
        stop.set()
        try:
            stream.stop()
        except LinkError:
            pass
        thread.join(timeout=2)

    @property
    def previewing(self) -> bool:
        return self._preview is not None

    # ------------------------------------------------------------ takes
    def start(self, sensor: str | int = "accel", label: str | None = None,
              rate_hz: float | None = None, seconds: float | None = None) -> CaptureSession:
        """Begin a take. Raises RuntimeError if one is running or no device is open."""
        if self.device is None:
            raise RuntimeError("connect to a device first")
        if self.session is not None and self.session.running:
            raise RuntimeError("a take is already recording; stop it first")
        self.stop_preview()
        session = CaptureSession(self.device, self.dataset, sensor, label=label or None,
                                 rate_hz=rate_hz, seconds=seconds)
        session.on_block.append(self._forward)
        self.session = session.start()
        self.message = f"recording {session.recording_id}"
        return session

    def _forward(self, block: np.ndarray) -> None:
        for cb in list(self.on_block):
            cb(block)

    def stop(self) -> RecordingMeta:
        """End the current take; returns what was stored. If the take failed (a lost
        link), what it stored is kept in ``takes``, ``message`` says how it ended, and the
        error is raised."""
        if self.session is None:
            raise RuntimeError("nothing is recording")
        try:
            meta = self.session.stop()
        finally:
            self._keep(self.session)
        return meta

    def record(self, sensor: str | int = "accel", label: str | None = None, *,
               seconds: float, rate_hz: float | None = None) -> RecordingMeta:
        """A take of fixed length, blocking until it is stored (kept as :meth:`stop`
        keeps it, also when the take fails)."""
        session = self.start(sensor, label, rate_hz, seconds)
        try:
            meta = session.wait()
        finally:
            if session.meta is not None:
                self._keep(session)
        return meta

    def _keep(self, session: CaptureSession) -> None:
        meta = session.meta
        if meta is None:
            return
        if meta not in self.takes:
            self.takes.append(meta)
        self.message = f"stored {meta.id}: {meta.duration_s:.1f} s, {meta.lost} lost"
        ended = meta.extra.get("ended", "")
        if ended not in ("", "complete", "stopped"):
            self.message += f" (ended early, {ended})"

    def status(self) -> RecorderStatus:
        """The counters now. A take that ended by itself (a timed take, or one whose link
        was lost) is kept here, as :meth:`stop` keeps it, so ``takes`` and the counters
        count it as soon as it has ended, whoever started it."""
        s = self.session
        if s is not None and not s.running and s.meta is not None and s.meta not in self.takes:
            self._keep(s)
        if self.device is None:
            return RecorderStatus("disconnected", "", takes=len(self.takes), message=self.message)
        s = self.session
        if s is not None and s.running:
            st = s.stats
            return RecorderStatus("recording", self.device.url, st.samples, st.lost, st.seconds,
                                  st.rate_hz, len(self.takes), self.message)
        last = self.takes[-1] if self.takes else None
        return RecorderStatus("ready", self.device.url,
                              last.samples if last else 0, last.lost if last else 0,
                              last.duration_s if last else 0.0, last.rate_hz if last else 0.0,
                              len(self.takes), self.message)
