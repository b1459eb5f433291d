"""The host side of the device protocol: :class:`Device`, one object per open board.

A ``Device`` is a facade over parts that each hold one idea:

- :mod:`.session`: the port, the reader thread, requests matched to answers,
  re-sends and named time-outs (:mod:`.timeouts`);
- :mod:`.streams`: sensor streams with loss accounting, and ``record``;
- :mod:`.linemode`: recognising and reading a sketch that prints numbers;
- :mod:`.transfer`: windowed, resumable model uploads and the model slots;
- :mod:`.inference`: running the active model on the device;
- :mod:`.simcontrol`: a virtual board's scenario and faults (``dev.sim``).

Made by :func:`workbench.link.open_device`, which opens the port and runs the
HELLO handshake (or recognises a line-mode sketch).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np

from ..protocol import messages as m
from ..protocol.framing import Frame
from . import inference, transfer
from .errors import LinkError
from .inference import InferenceResult
from .linemode import LineMode
from .session import LinkStats, Session
from .simcontrol import SimControls
from .streams import SampleBlock, SensorSamples, Stream, Streams, StreamStats
from .timeouts import Timeouts

__all__ = [
    "Device",
    "InferenceResult",
    "LinkStats",
    "SensorSamples",
    "SampleBlock",
    "SimControls",
    "Stream",
    "StreamStats",
    "Timeouts",
]

RESET_SETTLE = 0.05
"""Seconds to let a board reboot after RESET before the new HELLO."""


class Device:
    """A board that speaks the workbench protocol (framed) or prints samples (line).

    Close it (or use ``with``) to stop the reader thread and release the port;
    a virtual board started for a ``sim://`` URL stops with it. ``mode`` is
    ``"framed"``, ``"line"`` or (before identification) ``"unknown"``.
    """

    def __init__(self, port, *, url: str = "", timeouts: Timeouts | None = None,
                 baudrate: int | None = None) -> None:
        self.sensors: tuple[m.SensorDesc, ...] = ()
        self.telemetry: m.Telemetry | None = None
        self.logs: deque[m.Log] = deque(maxlen=1000)
        self.on_event: list[Callable[[int, object], None]] = []
        """Callbacks ``(frame_type, event)`` for TELEMETRY and LOG events (reader thread)."""
        self.session = Session(port, url=url, timeouts=timeouts, baudrate=baudrate,
                               on_event=self._on_event, on_text=self._on_text,
                               on_lost=self._on_lost)
        self.line = LineMode(on_text=self._on_text_line)
        self.streams = Streams(self.session, self.line)
        self.sim = SimControls(self.session)
        """The virtual board's controls; they raise NotSupported on a real board."""
        self.session.start()

    # ----------------------------------------------------------------- state
    @property
    def url(self) -> str:
        return self.session.url

    @property
    def port(self):
        """The pyserial port (or port-like object) the session reads and writes."""
        return self.session.port

    @property
    def timeouts(self) -> Timeouts:
        return self.session.timeouts

    @property
    def baudrate(self) -> int:
        """The line rate wire times are computed at."""
        return self.session.baudrate

    @property
    def stats(self) -> LinkStats:
        """Counters of the connection (frames, bad frames, retries, time-outs, bytes)."""
        return self.session.stats

    @property
    def info(self) -> m.Info | None:
        """The board's HELLO answer (None for a line-mode sketch)."""
        return self.session.info

    @property
    def mode(self) -> str:
        """``"framed"``, ``"line"`` or, before identification, ``"unknown"``."""
        return self.session.mode

    @property
    def lost(self) -> str | None:
        """Why the connection was lost, or None while it is up."""
        return self.session.lost

    @property
    def max_payload(self) -> int:
        """Largest frame payload both ends accept (known after HELLO)."""
        return self.session.max_payload

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop streams, the reader thread and the port. Safe to call twice."""
        if self.session.closing:
            return
        self.streams.stop_all()
        self.session.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        who = self.info.board_name if self.info else "unidentified device"
        return f"<Device {self.url} {self.mode}: {who}>"

    # ----------------------------------------------------------------- events (reader thread)
    def _on_event(self, frame: Frame) -> None:
        try:
            if frame.type == m.Msg.SAMPLES:
                self.streams.on_samples(m.Samples.decode(frame.payload))
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

    def _on_text(self, data: bytes, now: float) -> None:
        self.line.feed(data, now, text=self.session.mode == "line")

    def _on_text_line(self, text: str) -> None:
        log = m.Log(1, text)
        self.logs.append(log)
        self._emit(m.Msg.LOG, log)

    def _on_lost(self) -> None:
        self.streams.end_all()

    def _emit(self, ftype: int, event: object) -> None:
        for cb in list(self.on_event):
            cb(ftype, event)

    # ----------------------------------------------------------------- requests
    def request(self, mtype: int, payload: bytes = b"", *, timeout: float | None = None,
                retries: int | None = None) -> Frame:
        """One request and its answer; see :meth:`Session.request <.session.Session.request>`."""
        return self.session.request(mtype, payload, timeout=timeout, retries=retries)

    def hello(self) -> m.Info:
        """HELLO handshake: learn who the board is. Sets ``info``, ``sensors``, ``mode``.

        Also brings a workbench firmware in line mode back to framed mode.
        Raises :class:`LinkTimeout` if nothing answers.
        """
        info = self.session.handshake()
        self.line.discard()  # what looked like sample lines were frame bytes
        self.sensors = ()
        if info.sensor_count:
            self.sensors = m.SensorList.decode(self.request(m.Msg.SENSORS).payload).sensors
        return info

    def sensor(self, name: str | int) -> m.SensorDesc:
        """The sensor with this id (``"accel"``) or index. Raises KeyError listing them."""
        for s in self.sensors:
            if s.id == name or s.index == name:
                return s
        have = ", ".join(s.id for s in self.sensors) or "none"
        raise KeyError(f"{self.url} has no sensor {name!r}; it has: {have}")

    # ----------------------------------------------------------------- streaming
    def stream(self, sensor: str | int = 0, rate_hz: float | None = None) -> Stream:
        """A :class:`Stream` of one sensor; it starts when entered with ``with``.

        In line mode the sketch is sensor 0 whatever ``sensor`` says, and the
        first stream begins with the sample lines read while identifying it.
        """
        if self.mode != "line":
            self.session.require_framed("streaming")
        return self.streams.open(self.sensor(0 if self.mode == "line" else sensor), rate_hz)

    def record(self, sensor: str | int = 0, seconds: float = 1.0,
               rate_hz: float | None = None) -> SensorSamples:
        """Stream ``seconds`` worth of one sensor and return the samples.

        See :meth:`Streams.record <.streams.Streams.record>`: the length is a
        sample count when the rate is known; :class:`LinkTimeout` (stalled) and
        :class:`ConnectionLost` carry what was received in ``err.recording``.
        """
        return self.streams.record(self.stream(sensor, rate_hz), seconds)

    @property
    def text_lines(self) -> int:
        """Line mode: lines that were neither samples nor the header (a sketch's messages)."""
        return self.line.text_lines

    @property
    def line_rate_hz(self) -> float | None:
        """Line mode: the sample rate estimated from arrival times so far."""
        return self.line.rate_hz

    # ----------------------------------------------------------------- inference and models
    def infer(self, *inputs: np.ndarray) -> InferenceResult:
        """Run the active model on these inputs; see :func:`.inference.infer`."""
        return inference.infer(self.session, *inputs)

    def upload_model(self, model: bytes, *, slot: int | None = None, name: str = "",
                     commit: bool = True, check: bool = True, test: bool = False,
                     progress: Callable[[int, int], None] | None = None,
                     delta: bool | str = False, base: transfer.BaseSource = None,
                     on_plan: Callable[[transfer.UploadPlan], None] | None = None
                     ) -> m.SlotInfo:
        """Check, send, verify and (by default) commit a .tflite model or an update image
        (signed or not, :mod:`workbench.deploy.signing`); see :func:`.transfer.upload_model`.

        ``check=True`` (default): the image is checked on the host first
        (:func:`.image_check.check_image`), so a model the board would refuse
        raises before its first byte is sent; only a checked image may replace
        the fallback slot. ``check=False`` skips that check (the board still
        verifies it, and keeps its fallback). The running model stays active
        until the commit; an interrupted upload resumes. ``test=True``: the commit
        is a test switch, kept only once :meth:`confirm_model` is called (else the
        board reverts at its next reset).

        ``delta=True`` or ``"auto"`` sends a detools patch from the board's active image
        (given as ``base``: its bytes, or a function from its SHA-256 in hex to them)
        instead of the image; ``"auto"`` sends the full image whenever a delta is not
        possible or not smaller. ``on_plan(UploadPlan)`` says which route is sent.
        """
        return transfer.upload_model(self.session, model, slot=slot, name=name, commit=commit,
                                     check=check, test=test, progress=progress, delta=delta,
                                     base=base, on_plan=on_plan)

    def commit(self, slot: int, *, test: bool = False) -> int:
        """Make a verified slot the active model (``test=True``: until the next reset,
        unless confirmed); see :func:`.transfer.commit_slot`."""
        return transfer.commit_slot(self.session, slot, test=test)

    def confirm_model(self) -> int:
        """Keep the model of a test switch for good; returns its slot. Raises
        :class:`NotPending` when no test switch is on trial."""
        return transfer.confirm(self.session)

    def rollback(self) -> int:
        """Return to the previous model (a test switch on trial is reverted, else the
        fallback runs). Returns the slot now active."""
        return transfer.rollback(self.session)

    def slots(self) -> m.SlotTable:
        """State of every model slot (size, SHA-256, bytes written, arena needed)."""
        return transfer.slot_table(self.session)

    # ----------------------------------------------------------------- misc
    def ping(self, payload: bytes = b"") -> float:
        """Round-trip time in seconds of a PING carrying ``payload`` (echoed back)."""
        self.session.require_framed("ping")
        t0 = time.perf_counter()
        frame = self.request(m.Msg.PING, payload)
        if frame.payload != payload:
            raise LinkError("PING echo differs from what was sent")
        return time.perf_counter() - t0

    def set_telemetry(self, period_ms: int) -> None:
        """Ask for a TELEMETRY event every ``period_ms`` (0 stops them)."""
        self.session.require_framed("telemetry")
        self.request(m.Msg.TELEMETRY_CONFIG, m.TelemetryConfig(period_ms).encode())

    def reset(self) -> m.Info:
        """Reboot the device and repeat the handshake."""
        self.session.require_framed("reset")
        self.request(m.Msg.RESET)
        time.sleep(RESET_SETTLE)
        self.session.parser.reset()
        return self.hello()

    # ----------------------------------------------------------------- virtual board
    def scenario(self, name: str = "") -> m.ScenarioState:
        """Virtual board: set what it is 'doing' (empty name: just ask). Same as
        ``dev.sim.scenario``; raises :class:`NotSupported` on a real board."""
        return self.sim.scenario(name)

    def inject_faults(self, faults: m.Faults) -> None:
        """Virtual board: drop or flip bytes, cut power during an update, disconnect. Same
        as ``dev.sim.inject_faults``; raises :class:`NotSupported` on a real board."""
        self.sim.inject_faults(faults)

    # ----------------------------------------------------------------- line mode
    def enter_line_mode(self, sensor: str | int = 0, rate_hz: float = 0.0) -> None:
        """Ask the workbench firmware to print one sensor as CSV lines (like a sketch).

        Any existing tool that reads serial text (a serial plotter, Edge Impulse's
        data forwarder) can then read the board. :meth:`hello` switches it back.
        """
        self.session.require_framed("line mode")
        desc = self.sensor(sensor)
        self.line.reset()
        self.session.mode = "unknown"  # the reader now feeds both parsers: the reply, then text
        self.request(m.Msg.SET_MODE, m.SetMode(m.Mode.LINE, desc.index, rate_hz).encode())
        if not self.detect_line_mode(self.timeouts.line_detect):
            raise LinkError(f"{self.url} accepted line mode but printed no samples")

    def detect_line_mode(self, timeout: float) -> bool:
        """Listen for sample lines for up to ``timeout`` s; switch to line mode if seen.

        The sample lines read meanwhile are kept for the first stream.
        """
        if self.line.detect(timeout):
            self.use_line_mode()
            return True
        return False

    def use_line_mode(self) -> None:
        """Treat the port as a line-mode sketch from now on (no handshake)."""
        self.session.mode = "line"
        self.sensors = (self.line.sensor(),)
