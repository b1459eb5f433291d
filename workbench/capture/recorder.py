"""The state behind a capture screen, headless: one device, one dataset, one take at a time.

A :class:`Recorder` is what the capture panel widget drives, and what a script
can drive the same way: connect to a URL, pick a sensor, set a virtual board's
scenario, record takes with labels (at once, or after a countdown), read live
counters, and relabel, delete and undo takes of the dataset. It owns the open
device and closes it on :meth:`disconnect`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import Dataset, RecordingMeta
from ..data.takes import TakeEdit, TakeEdits, newest_first
from ..link import Device, LinkError, open_device, waits
from ..protocol.messages import Capability, SensorDesc
from .session import CaptureSession


@dataclass(frozen=True)
class RecorderStatus:
    """A snapshot of the counters, for display."""

    state: str
    """"disconnected", "ready", "countdown" (a take starts in ``countdown_s``) or
    "recording"."""
    device: str
    samples: int = 0
    lost: int = 0
    seconds: float = 0.0
    rate_hz: float = 0.0
    takes: int = 0
    message: str = ""
    countdown_s: float = 0.0
    """Seconds left before the take starts (state "countdown")."""
    label: str | None = None
    """The label of the take recording or about to (None: it will be stored unlabelled)."""
    error: str = ""
    """What went wrong without a caller to raise it to (a take that did not start after
    its countdown); cleared by the next connect or start."""

    @property
    def loss_ratio(self) -> float:
        total = self.samples + self.lost
        return self.lost / total if total else 0.0


class Recorder:
    """Record labelled takes from one device into one dataset.

    Call order: ``connect(url)``; then any number of ``start(...)``/``stop()``
    pairs (or ``record(...)`` for a fixed length, or ``start_after(countdown_s, ...)``
    for a take that starts after a countdown); ``disconnect()``. Errors from
    the link propagate as :class:`~workbench.link.LinkError` with their advice;
    a take that fails keeps what it stored.

    The dataset's takes: :meth:`recent` lists them newest first; :meth:`relabel`,
    :meth:`delete` and :meth:`undo` edit them through :class:`~workbench.data.takes.TakeEdits`
    (a delete moves the take to the dataset's ``trash/``; nothing is erased) and keep
    ``takes`` in step. ``revision`` grows at every change of the dataset made here (a take
    stored, relabelled, deleted or brought back), so a display knows when to re-read it.
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
        self.edits = TakeEdits(self.dataset)
        """The undo history of relabels and deletes made through this recorder."""
        self.revision = 0
        """Grows at every change of the dataset made through this recorder."""
        self.error: str | None = None
        """What went wrong with no caller to raise it to (see RecorderStatus.error)."""
        self._countdown: tuple | None = None  # (deadline, cancel event, start arguments)
        self._dropped: dict[str, RecordingMeta] = {}  # takes of ours deleted, for undo
        self._lock = threading.RLock()
        """Held while a countdown turns into a take, so status() sees one or the other."""

    # ------------------------------------------------------------ connection
    def connect(self, url: str, **kwargs) -> Device:
        """Open ``url`` (closing any device opened before)."""
        self.disconnect()
        self.error = None
        self.device = open_device(url, **kwargs)
        self.message = f"connected to {self._who()}"
        self.scenario = self.device.scenario().current if self.is_virtual else None
        return self.device

    def disconnect(self) -> None:
        self.cancel_countdown()
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
        recording). A take started later stops the preview first; while a take records
        this does nothing (the take feeds the observers). Safe from any thread: it and
        :meth:`start` are serialised, so a panel returning to its preview when a take ends
        cannot race a take started from code."""
        if self.device is None:
            raise RuntimeError("connect to a device first")
        with waits.hold(self._lock):
            if self.session is not None and self.session.running:
                return
            self._start_preview(sensor, rate_hz)

    def _start_preview(self, sensor: str | int, rate_hz: float | None) -> None:
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
        with waits.hold(self._lock):
            if self.session is not None and self.session.running:
                raise RuntimeError("a take is already recording; stop it first")
            self.error = None
            self.stop_preview()
            session = CaptureSession(self.device, self.dataset, sensor, label=label or None,
                                     rate_hz=rate_hz, seconds=seconds)
            session.on_block.append(self._forward)
            self.session = session.start()
            self.message = f"recording {session.recording_id}"
            return session

    def start_after(self, countdown_s: float, sensor: str | int = "accel",
                    label: str | None = None, rate_hz: float | None = None,
                    seconds: float | None = None) -> None:
        """Begin a take (as :meth:`start`) once ``countdown_s`` seconds have passed; returns
        at once. Meanwhile ``status()`` reads ``"countdown"`` with the seconds left and the
        preview keeps running; :meth:`cancel_countdown` (or :meth:`stop`) calls it off.

        Raises RuntimeError if no device is open, a take records or a countdown runs,
        ValueError for a countdown that is not a number >= 0. If the take then fails to
        start (the link went away), nothing is raised: ``error`` and ``message`` say why."""
        if self.device is None:
            raise RuntimeError("connect to a device first")
        if self.session is not None and self.session.running:
            raise RuntimeError("a take is already recording; stop it first")
        try:
            delay = float(countdown_s)
        except (TypeError, ValueError):
            delay = math.nan
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"countdown_s must be a number of seconds >= 0, got {countdown_s!r}")
        with waits.hold(self._lock):
            if self._countdown is not None:
                raise RuntimeError("a countdown is already running; cancel it first")
            self.error = None
            cancel = threading.Event()
            self._countdown = (time.monotonic() + delay, cancel, label or None)
            self.message = f"a take starts in {delay:g} s"

        def go() -> None:
            if cancel.wait(delay):
                return
            with waits.hold(self._lock):
                if cancel.is_set():
                    return
                self._countdown = None
                try:
                    self.start(sensor, label, rate_hz, seconds)
                except Exception as e:  # noqa: BLE001 - no caller to raise to: reported
                    self.error = self.message = f"the take did not start: {e}"

        threading.Thread(target=go, daemon=True, name="capture countdown").start()

    def cancel_countdown(self) -> bool:
        """Call off a countdown; returns whether one was running (a take already started
        is not stopped: use :meth:`stop`)."""
        with waits.hold(self._lock):
            if self._countdown is None:
                return False
            self._countdown[1].set()
            self._countdown = None
            self.message = "countdown cancelled; nothing recorded"
            return True

    @property
    def counting_down(self) -> bool:
        return self._countdown is not None

    def _forward(self, block: np.ndarray) -> None:
        for cb in list(self.on_block):
            cb(block)

    def stop(self) -> RecordingMeta:
        """End the current take; returns what was stored. If the take failed (a lost
        link), what it stored is kept in ``takes``, ``message`` says how it ended, and the
        error is raised."""
        if self.session is None or (self.counting_down and not self.session.running):
            if self.cancel_countdown():
                raise RuntimeError("the countdown was cancelled before the take started; "
                                   "nothing was recorded")
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
        if meta.id not in {m.id for m in self.takes}:
            self.takes.append(meta)
            self.revision += 1
        self.message = f"stored {meta.id}: {meta.duration_s:.1f} s, {meta.lost} lost"
        ended = meta.extra.get("ended", "")
        if ended not in ("", "complete", "stopped"):
            self.message += f" (ended early, {ended})"

    def status(self) -> RecorderStatus:
        """The counters now. A take that ended by itself (a timed take, or one whose link
        was lost) is kept here, as :meth:`stop` keeps it, so ``takes`` and the counters
        count it as soon as it has ended, whoever started it."""
        with waits.hold(self._lock):
            return self._status()

    def _status(self) -> RecorderStatus:
        s = self.session
        if s is not None and not s.running and s.meta is not None \
                and s.meta.id not in self._dropped and not any(m.id == s.meta.id
                                                               for m in self.takes):
            self._keep(s)
        error = self.error or ""
        if self.device is None:
            return RecorderStatus("disconnected", "", takes=len(self.takes), message=self.message,
                                  error=error)
        s = self.session
        if s is not None and s.running:
            st = s.stats
            return RecorderStatus("recording", self.device.url, st.samples, st.lost, st.seconds,
                                  st.rate_hz, len(self.takes), self.message, label=s.label,
                                  error=error)
        last = self.takes[-1] if self.takes else None
        countdown = self._countdown
        return RecorderStatus("countdown" if countdown else "ready", self.device.url,
                              last.samples if last else 0, last.lost if last else 0,
                              last.duration_s if last else 0.0, last.rate_hz if last else 0.0,
                              len(self.takes), self.message,
                              countdown_s=max(0.0, countdown[0] - time.monotonic())
                              if countdown else 0.0,
                              label=countdown[2] if countdown else None, error=error)

    # ------------------------------------------------------------ the dataset's takes
    def recent(self, limit: int | None = None) -> list[RecordingMeta]:
        """The dataset's takes, newest first (at most ``limit``), as this process knows
        them (``dataset.refresh()`` re-reads what other processes changed)."""
        return newest_first(self.dataset, limit)

    def relabel(self, rec_id: str, label: str | None) -> RecordingMeta:
        """Give a take a new whole-recording label (None or "" removes it); undoable.
        KeyError for an unknown take, ValueError for a bad label; nothing written then."""
        meta = self.edits.relabel(rec_id, label)
        self.takes = [meta if m.id == rec_id else m for m in self.takes]
        self.revision += 1
        self.message = f"relabelled {rec_id} as {meta.label or 'unlabeled'}"
        return meta

    def delete(self, rec_id: str) -> Path:
        """Move a take to the dataset's ``trash/`` (nothing is erased); undoable. Returns
        where it went. KeyError for an unknown take, DatasetError while it records."""
        dest = self.edits.delete(rec_id)
        for m in self.takes:
            if m.id == rec_id:
                self._dropped[rec_id] = m
        self.takes = [m for m in self.takes if m.id != rec_id]
        self.revision += 1
        self.message = f"deleted {rec_id} (kept in trash/; undo brings it back)"
        return dest

    def undo(self) -> TakeEdit:
        """Revert the latest relabel or delete made here (see :meth:`TakeEdits.undo`);
        returns it. DatasetError if there is nothing to undo or it cannot be undone."""
        edit = self.edits.undo()
        meta = self.dataset.meta(edit.rec_id)
        mine = self._dropped.pop(edit.rec_id, None) if edit.kind == "delete" else None
        if mine is not None:
            self.takes = sorted([*self.takes, meta], key=lambda m: (m.started, m.id))
        else:
            self.takes = [meta if m.id == edit.rec_id else m for m in self.takes]
        self.revision += 1
        self.message = f"undone: {edit.description}"
        return edit
