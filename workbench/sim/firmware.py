"""The device side of the protocol: what the reference firmware does, in Python.

:class:`VirtualFirmware` holds no port and no thread. The server feeds it bytes
(:meth:`receive`) and calls :meth:`tick` with the time; it answers by calling
``send(bytes)``. It knows when the transmit buffer is full through
``tx_backlog()`` and then discards sensor blocks at the source, counting them,
as firmware with a full UART buffer does.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..boards import Board
from ..protocol import limits
from ..protocol import messages as m
from ..protocol.framing import DEFAULT_MAX_PAYLOAD, FLAG_RETRY, Frame, FrameParser, encode_frame
from ..protocol.image import ImageError, TrustedKey, open_image
from ..protocol.manifest import ManifestError, UpdateManifest
from ..tflite import ModelError, ProbeResult, Spawn, prewarm
from . import delta as sim_delta
from .engines import TflmEngine, engine_for
from .flash import FallbackHeld, Flash, FlashError, NotPending, PowerCut
from .replay import REPLAY_SCENARIOS
from .sensors import SCENARIOS
from .sources import make_source

FIRMWARE_VERSION = TflmEngine.firmware
"""INFO's firmware name of the virtual microcontroller (a LiteRT runner names LiteRT's version)."""
TX_BUFFER_BYTES = 4096
"""Sensor blocks are discarded while more than this is waiting to be sent."""
TRANSFER_WINDOW = 4
CHUNK_MAX = DEFAULT_MAX_PAYLOAD - 8
"""Largest data length of one MODEL_CHUNK (``chunk_max`` in MODEL_BEGIN's answer)."""
"""Model chunks the host may send before waiting for an acknowledgement."""
STREAM_BLOCK_SECONDS = 0.05
"""A stream frame carries at most this much signal (it fills up to max_payload)."""
LINE_MODE_DECIMALS = 4


class Disconnect(Exception):
    """Raised inside the firmware when an injected disconnect strikes."""


@dataclass
class _Stream:
    desc: m.SensorDesc
    source: object
    rate_hz: float
    per_frame: int
    started: float
    produced: int = 0
    dropped: int = 0


class VirtualFirmware:
    """One virtual board's firmware state. See the module docstring for the contract."""

    def __init__(self, board: Board, flash: Flash, send: Callable[[bytes], None], *,
                 tx_backlog: Callable[[], int] = lambda: 0, scenario: str = "idle",
                 seed: int = 0, replay: str | None = None, mode: str = "framed",
                 line_sensor: str | None = None, line_rate_hz: float = 0.0,
                 clock: Callable[[], float] = time.monotonic, spawn: Spawn | None = None,
                 keys: tuple[TrustedKey, ...] = (), delta: bool = True):
        self.board = board
        self.keys = tuple(keys)
        """Provisioned public keys: with any, only images signed by one are accepted
        (SIGNED_ONLY, docs/protocol.md 7.6)."""
        self.delta_enabled = delta and sim_delta.available()
        """Applies delta patches (DELTA capability): asked for, and detools importable."""
        self.flash = flash
        self._send_bytes = send
        self._tx_backlog = tx_backlog
        self.clock = clock
        self.seed = seed
        self.replay = replay
        self.scenario = scenario
        self.faults = m.Faults()
        self.logs: list[str] = []
        self.line_rate_hz = line_rate_hz
        available = REPLAY_SCENARIOS if replay else SCENARIOS
        if scenario not in available:
            raise ValueError(f"unknown scenario {scenario!r}; {board.name} "
                             f"{'replaying ' + replay if replay else 'synthetic signals'} "
                             "offers " + ", ".join(available))
        self._spawn = spawn
        """Starts TFLite Micro probe processes (None: subprocess.Popen)."""
        self.engine = engine_for(board, spawn=spawn)
        """Runs the models: TFLite Micro or LiteRT, by the board's runtime (sim/engines.py)."""
        self._verified: dict[str, ProbeResult] = {}
        """SHA-256 -> the probe that verified that image at MODEL_END, reused at commit."""
        self._boot(mode, line_sensor)

    @property
    def power_cut_budget(self) -> int | None:
        """Image bytes still to be written before the armed power cut (None: not armed)."""
        return self.flash.image_budget

    # ------------------------------------------------------------------ boot
    def _boot(self, mode: str = "framed", line_sensor: str | None = None) -> None:
        self.booted = self.clock()
        self.inputs: dict[int, bytearray] = {}
        self.outputs: list[np.ndarray] = []
        self.parser = FrameParser(max_payload=DEFAULT_MAX_PAYLOAD)
        self.tx_seq = 0
        self.cache: tuple[int, int, int, bytes] | None = None
        """The last answer: (req_id, request type, answer type, answer payload)."""
        self.streams: dict[int, _Stream] = {}
        self.telemetry_period = 0.0
        self.next_telemetry = 0.0
        self.inferences = 0
        self.last_latency = 0
        self.transfer: tuple[int, int] | None = None  # (slot, size)
        self.delta_rx: sim_delta.DeltaTransfer | None = None  # a delta patch staged in RAM
        self.runner = None  # the engine's runner for the active model
        self.sensor_descs = tuple(
            m.SensorDesc(i, s.id, s.kind, tuple(s.channels), s.units, m.DType.from_name(s.dtype),
                         float(s.scale), float(s.rate_hz), tuple(float(r) for r in s.rates_hz))
            for i, s in enumerate(self.board.sensors))
        for note in self.flash.check_boot():
            self.logs.append(note)
        self._load_active()
        self.mode = m.Mode.FRAMED
        self.line: _Stream | None = None
        self.line_more: list[_Stream] = []
        """Line mode: further sensors printed on the same line, at the first one's rate."""
        self.plain_sketch = mode == "line"
        """Started as a plain sketch: prints CSV and ignores everything it is sent."""
        if self.plain_sketch:
            names = (line_sensor or "").split(",") if line_sensor else [None]
            indices = [self._sensor_index(n) for n in names]
            problem = self._rate_problem(indices[0], self.line_rate_hz)
            if problem:
                raise ValueError(f"--rate: {problem}")
            self._enter_line_mode(indices, self.line_rate_hz)

    def _load_active(self) -> None:
        self.runner = None
        self.inputs.clear()  # buffers shaped for the previous model
        self.outputs = []
        active = self.flash.table.active
        if active is None:
            return
        image = self.flash.read(active)
        verified = self._verified.get(hashlib.sha256(image).hexdigest())
        try:  # verified at MODEL_END in this session: no second probe; else (boot) probe once
            model = open_image(image, self.keys).model  # a keyed board re-checks the signature
            self.runner = self.engine.load(model, verified)
        except (ModelError, ImageError) as e:  # it passed once; the interpreter or keys changed?
            self.logs.append(f"active model failed to load: {e}")

    def host_connected(self) -> None:
        """The host opened the port. A plain sketch (re)prints its header, as sketches
        that wait in ``while (!Serial)`` before ``setup()`` prints do."""
        if self.plain_sketch and self.line is not None:
            self._print_header()

    def uptime_ms(self) -> int:
        return int((self.clock() - self.booted) * 1000)

    # ------------------------------------------------------------------ output
    def _frame(self, ftype: int, req_id: int, payload: bytes) -> bytes:
        data = encode_frame(Frame(ftype, self.tx_seq, req_id, payload))
        self.tx_seq = (self.tx_seq + 1) & 0xFFFF
        return data

    def _reply(self, req: Frame, payload: bytes = b"", ftype: int | None = None) -> None:
        ftype = m.response_type(req.type) if ftype is None else ftype
        self.cache = (req.req_id, req.type, ftype, payload)
        self._send_bytes(self._frame(ftype, req.req_id, payload))

    def _error(self, req: Frame, code: m.ErrorCode, message: str, detail: int = 0) -> None:
        self._reply(req, m.Error(code, detail, message).encode(), ftype=m.Msg.ERROR)

    def _event(self, ftype: int, payload: bytes) -> None:
        self._send_bytes(self._frame(ftype, 0, payload))

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes) -> None:
        """Bytes from the host. May raise :class:`PowerCut` or :class:`Disconnect`."""
        if self.plain_sketch:
            return  # a hobbyist sketch never reads its serial port
        for frame in self.parser.feed(data):
            if self.mode == m.Mode.LINE and frame.type != m.Msg.HELLO:
                continue  # the firmware's line mode only wakes up for HELLO
            self._dispatch(frame)

    def _dispatch(self, req: Frame) -> None:
        if req.flags & FLAG_RETRY and self.cache and self.cache[:2] == (req.req_id, req.type):
            # A duplicate: answer again without acting again (with a fresh seq).
            self._send_bytes(self._frame(self.cache[2], req.req_id, self.cache[3]))
            return
        if req.type in self._NO_PAYLOAD and req.payload:
            self._error(req, m.ErrorCode.MALFORMED,
                        f"{m.Msg(req.type).name} takes no payload, got {len(req.payload)} bytes")
            return
        handler = self._HANDLERS.get(req.type)
        if handler is None:
            self._error(req, m.ErrorCode.UNKNOWN_TYPE, f"unknown request type 0x{req.type:02x}")
            return
        try:
            handler(self, req)
        except m.MalformedPayload as e:
            self._error(req, m.ErrorCode.MALFORMED, str(e))
        except (PowerCut, Disconnect):
            raise
        except Exception as e:  # noqa: BLE001 - a firmware bug must not take the board down
            traceback.print_exc(file=sys.stderr)
            self._error(req, m.ErrorCode.INTERNAL, f"firmware fault in {m.Msg(req.type).name}: "
                        f"{type(e).__name__}: {e}")

    # ------------------------------------------------------------------ handlers
    def _hello(self, req: Frame) -> None:
        m.Hello.decode(req.payload)
        if self.mode == m.Mode.LINE:
            self.mode, self.line, self.line_more = m.Mode.FRAMED, None, []
        b, slots = self.board, self.board.model_slots
        caps = m.Capability.INFER | m.Capability.MODEL_UPDATE | m.Capability.TELEMETRY
        if self.sensor_descs or self.engine.simulated:  # a LiteRT runner without sensors
            caps |= m.Capability.STREAM | m.Capability.LINE_MODE  # streams nothing
        if self.engine.simulated:
            caps |= m.Capability.SIMULATED
        if self.keys:
            caps |= m.Capability.SIGNED_ONLY
        if self.delta_enabled:
            caps |= m.Capability.DELTA
        active = self.flash.table.active
        serial = hashlib.sha1(f"{b.id}:{self.flash.path}".encode()).hexdigest()[:12].upper()
        u32 = lambda n: min(n, limits.U32_MAX)  # noqa: E731 - a Linux board's 4 GiB, 32 GB
        info = m.Info(m.PROTOCOL_VERSION, DEFAULT_MAX_PAYLOAD, caps, b.id, b.name,
                      self.engine.firmware, b.mcu, b.core, u32(b.clock_hz), u32(b.flash_bytes),
                      u32(b.ram_bytes),
                      slots.count, m.NO_SLOT if active is None else active, slots.slot_bytes,
                      slots.arena_bytes, len(self.sensor_descs), self.uptime_ms(), serial)
        # A lone delimiter first flushes whatever text or noise the host's parser holds.
        self._send_bytes(b"\x00")
        self._reply(req, info.encode())
        while self.logs:  # what happened before anyone was listening (boot repairs)
            self._event(m.Msg.LOG, m.Log(2, self.logs.pop(0)).encode())

    def _sensors(self, req: Frame) -> None:
        self._reply(req, m.SensorList(self.sensor_descs).encode())

    def _sensor_index(self, sensor: str | None) -> int:
        if not self.sensor_descs:
            raise ValueError(f"{self.board.name} has no sensors to stream")
        if sensor is None:
            return 0
        for d in self.sensor_descs:
            if d.id == sensor:
                return d.index
        raise ValueError(f"{self.board.name} has no sensor {sensor!r}; it has "
                         + ", ".join(d.id for d in self.sensor_descs))

    def _rate_problem(self, index: int, rate_hz: float) -> str | None:
        desc = self.sensor_descs[index]
        return limits.rate_problem(rate_hz, desc.id, desc.rate_hz, desc.rates_hz)

    def _make_stream(self, index: int, rate_hz: float, per_frame: int) -> _Stream:
        desc = self.sensor_descs[index]
        rate = rate_hz or desc.rate_hz
        sensor = self.board.sensors[index]
        source = make_source(sensor, rate_hz=rate, scenario=self.scenario, seed=self.seed,
                             replay=self.replay)
        width = len(desc.channels) * desc.dtype.size
        if not per_frame:
            per_frame = max(1, min((DEFAULT_MAX_PAYLOAD - m.SAMPLES_HEADER.size) // width,
                                   int(rate * STREAM_BLOCK_SECONDS)))
        return _Stream(desc, source, rate, per_frame, self.clock())

    def _stream_start(self, req: Frame) -> None:
        start = m.StreamStart.decode(req.payload)
        if start.sensor >= len(self.sensor_descs):
            self._error(req, m.ErrorCode.NOT_FOUND, f"no sensor {start.sensor}")
            return
        desc = self.sensor_descs[start.sensor]
        problem = self._rate_problem(start.sensor, start.rate_hz)
        if problem:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, problem)
            return
        width = len(desc.channels) * desc.dtype.size
        most = (DEFAULT_MAX_PAYLOAD - m.SAMPLES_HEADER.size) // width
        if start.samples_per_frame > most:
            self._error(req, m.ErrorCode.BAD_ARGUMENT,
                        f"samples_per_frame {start.samples_per_frame} exceeds max_payload; "
                        f"{desc.id} fits at most {most} samples in a frame (0: device chooses)")
            return
        try:
            stream = self._make_stream(start.sensor, start.rate_hz, start.samples_per_frame)
        except Exception as e:  # noqa: BLE001 - e.g. replay data missing
            self._error(req, m.ErrorCode.NOT_SUPPORTED, str(e))
            return
        self.streams[start.sensor] = stream
        self._reply(req, m.StreamStarted(start.sensor, stream.rate_hz, stream.per_frame).encode())

    def _stream_stop(self, req: Frame) -> None:
        index = m.StreamStop.decode(req.payload).sensor
        produced = dropped = 0
        for i in list(self.streams):
            if index in (i, m.ALL_SENSORS):
                s = self.streams.pop(i)
                produced += s.produced
                dropped += s.dropped
        self._reply(req, m.StreamStopped(index, produced, dropped).encode())

    def _require_model(self, req: Frame) -> bool:
        if self.runner is None:
            self._error(req, m.ErrorCode.NO_MODEL,
                        "no model is active; upload one (Device.upload_model) first")
            return False
        return True

    def _set_input(self, req: Frame) -> None:
        chunk = m.Chunk.decode(req.payload)
        if not self._require_model(req):
            return
        specs = self.runner.input_details
        if chunk.index >= len(specs):
            self._error(req, m.ErrorCode.NOT_FOUND, f"the model has {len(specs)} inputs")
            return
        nbytes = int(np.prod(specs[chunk.index].shape)) * np.dtype(specs[chunk.index].dtype).itemsize
        if chunk.offset + len(chunk.data) > nbytes:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, f"input {chunk.index} holds {nbytes} bytes")
            return
        buf = self.inputs.setdefault(chunk.index, bytearray(nbytes))
        buf[chunk.offset:chunk.offset + len(chunk.data)] = chunk.data
        self._reply(req, m.Offset(chunk.offset + len(chunk.data)).encode())

    def _infer(self, req: Frame) -> None:
        infer = m.Infer.decode(req.payload)
        if not self._require_model(req):
            return
        specs = self.runner.input_details
        arrays = []
        inline = dict(infer.inputs)
        extra = sorted(i for i in inline if i >= len(specs))
        if extra:
            self._error(req, m.ErrorCode.NOT_FOUND,
                        f"the model has {len(specs)} input(s); got input index {extra[0]}")
            return
        for i, spec in enumerate(specs):
            dtype = np.dtype(spec.dtype).newbyteorder("<")
            data = inline.get(i, self.inputs.get(i))
            need = int(np.prod(spec.shape)) * dtype.itemsize
            if data is None or len(data) != need:
                self._error(req, m.ErrorCode.BAD_ARGUMENT,
                            f"input {i} needs {need} bytes ({spec.dtype} {tuple(spec.shape)}), "
                            f"got {0 if data is None else len(data)}")
                return
            arrays.append(np.frombuffer(bytes(data), dtype=dtype).reshape(spec.shape))
        try:
            outputs = self.runner.invoke(arrays)
        except Exception as e:  # noqa: BLE001 - the interpreter's own failure
            self._error(req, m.ErrorCode.INFER_FAILED, f"inference failed: {e}")
            return
        self.inferences += 1
        self.last_latency = int(self.runner.last_latency_us)
        self.outputs = outputs
        tensors = []
        for arr, spec in zip(outputs, self.runner.output_details):
            scale, zp = spec.scale or 0.0, spec.zero_point or 0
            tensors.append(m.Tensor(m.DType.from_name(np.dtype(arr.dtype).name), tuple(arr.shape),
                                    arr.astype(arr.dtype.newbyteorder("<")).tobytes(),
                                    float(scale), int(zp)))
        flags = m.RESULT_LATENCY_ESTIMATED if self.engine.simulated else 0
        needed = self.flash.slot(self.flash.table.active).arena_bytes  # as MODEL_END said
        result = m.Result(self.last_latency, needed, flags, tuple(tensors))
        payload = result.encode()
        if len(payload) > DEFAULT_MAX_PAYLOAD:
            payload = m.Result(result.latency_us, result.arena_bytes,
                               flags | m.RESULT_OUTPUTS_DETACHED, result.outputs).encode()
        self._reply(req, payload)

    def _get_output(self, req: Frame) -> None:
        ask = m.GetOutput.decode(req.payload)
        if ask.index >= len(self.outputs):
            self._error(req, m.ErrorCode.NOT_FOUND, f"no output {ask.index} from the last inference")
            return
        data = self.outputs[ask.index].tobytes()
        piece = data[ask.offset: ask.offset + min(ask.length, DEFAULT_MAX_PAYLOAD - 8)]
        self._reply(req, m.Chunk(ask.index, ask.offset, piece).encode())

    # model transfer ----------------------------------------------------------
    def _model_begin(self, req: Frame) -> None:
        begin = m.ModelBegin.decode(req.payload)
        slots = self.board.model_slots
        size = begin.image_size if begin.delta else begin.size  # bytes that go to the slot
        if begin.delta:
            active = self.flash.table.active
            s_active = None if active is None else self.flash.slot(active)
            problem = sim_delta.begin_problem(
                begin, enabled=self.delta_enabled, active_slot=active,
                active_sha256=None if s_active is None else s_active.sha256,
                active_name="" if s_active is None else s_active.name)
            if problem:
                code, message, detail = problem
                self._error(req, code, message, detail=detail)
                return
        if size > slots.slot_bytes:
            self._error(req, m.ErrorCode.MODEL_TOO_LARGE,
                        f"model is {size:,} bytes but a model slot on {self.board.name} "
                        f"holds {slots.slot_bytes:,}; quantize it to int8 or make it smaller",
                        detail=slots.slot_bytes)
            return
        if size == 0:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, "the model is empty")
            return
        slot = self.flash.target_slot() if begin.slot == m.NO_SLOT else begin.slot
        if slot >= slots.count:
            self._error(req, m.ErrorCode.NOT_FOUND, f"no slot {slot}; this board has slots "
                        f"0..{slots.count - 1}")
            return
        if slot == self.flash.table.active:
            self._error(req, m.ErrorCode.SLOT_ACTIVE, f"slot {slot} holds the running model; "
                        "write to another slot (or let the board choose)")
            return
        try:
            resume = self.flash.begin(
                slot, size, begin.sha256.hex(), begin.name,
                replace_fallback=bool(begin.flags & m.BeginFlag.REPLACE_FALLBACK))
        except FallbackHeld as e:
            self._error(req, m.ErrorCode.SLOT_FALLBACK, str(e), detail=slot)
            return
        except FlashError as e:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, str(e))
            return
        self.transfer = (slot, size)
        if self._spawn is None and isinstance(self.engine, TflmEngine):
            prewarm()  # the interpreter loads while the image arrives (verified at MODEL_END)
        if begin.delta:  # the patch is staged in RAM: resume only what RAM still holds
            if self.delta_rx is None or not self.delta_rx.same(slot, begin):
                self.delta_rx = sim_delta.DeltaTransfer(slot, begin)
            resume = self.delta_rx.staged
        else:
            self.delta_rx = None
        self._reply(req, m.ModelBegun(slot, resume, CHUNK_MAX, TRANSFER_WINDOW).encode())

    def _model_chunk(self, req: Frame) -> None:
        chunk = m.Chunk.decode(req.payload)
        if self.transfer is None or chunk.index != self.transfer[0]:
            self._error(req, m.ErrorCode.NO_TRANSFER, "no model transfer to this slot is open; "
                        "send MODEL_BEGIN first")
            return
        if len(chunk.data) > CHUNK_MAX:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, f"chunk of {len(chunk.data)} bytes; "
                        f"MODEL_BEGIN allowed at most {CHUNK_MAX} (chunk_max)")
            return
        if self.delta_rx is not None:  # a delta: the chunk is patch bytes, staged in RAM
            staged = self.delta_rx.stage(chunk.offset, chunk.data)
            if isinstance(staged, tuple):
                self._error(req, staged[0], staged[1], detail=staged[2])
            else:
                self._reply(req, m.Offset(staged).encode())
            return
        written = self.flash.slot(chunk.index).written
        if chunk.offset < written:  # a duplicate: already stored
            self._reply(req, m.Offset(written).encode())
            return
        if chunk.offset > written:
            self._error(req, m.ErrorCode.OUT_OF_ORDER, f"expected offset {written}",
                        detail=written)
            return
        try:  # an armed power cut strikes inside (SIM_FAULTS power_cut_after)
            written = self.flash.write(chunk.index, chunk.offset, chunk.data)
        except FlashError as e:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, str(e))
            return
        self._reply(req, m.Offset(written).encode())

    def _model_end(self, req: Frame) -> None:
        if self.transfer is None:
            self._error(req, m.ErrorCode.NO_TRANSFER, "no model transfer is open")
            return
        slot, size = self.transfer
        if self.delta_rx is not None and not self._apply_delta(req, slot):
            return
        s = self.flash.slot(slot)
        if s.written != size:
            self._error(req, m.ErrorCode.VERIFY_FAILED,
                        f"received {s.written} of {size} bytes; resume the upload", detail=s.written)
            return
        image = self.flash.read(slot)
        digest = hashlib.sha256(image).hexdigest()
        self.transfer = None
        if digest != s.sha256:
            self.flash.set_state(slot, m.SlotState.INVALID)
            self._error(req, m.ErrorCode.VERIFY_FAILED,
                        "the image's SHA-256 does not match the one announced; upload it again")
            return
        checked = self._check_model(image)
        if not isinstance(checked, ProbeResult):
            self.flash.set_state(slot, m.SlotState.INVALID)
            self._error(req, *checked)
            return
        keep = {s.sha256 for s in self.flash.table.slots}  # forget images no slot holds
        self._verified = {d: r for d, r in self._verified.items() if d in keep}
        self._verified[digest] = checked
        arena = checked.arena_limit  # the smallest arena it runs in: what it needs
        self.flash.set_state(slot, m.SlotState.VERIFIED, arena)
        self._reply(req, m.ModelVerified(slot, bytes.fromhex(digest), arena).encode())

    def _apply_delta(self, req: Frame, slot: int) -> bool:
        """MODEL_END of a delta: rebuild the image from the active slot into ``slot``
        (:mod:`.delta`). False (after answering the error) if it cannot; then the slot is
        INVALID, unless the patch is incomplete (the transfer stays open to be resumed)."""
        rx = self.delta_rx
        if rx.staged != rx.size:
            self._error(req, m.ErrorCode.VERIFY_FAILED, f"received {rx.staged} of {rx.size} "
                        "delta patch bytes; resume the upload", detail=rx.staged)
            return False
        self.delta_rx = None
        active = self.flash.table.active
        base = None if active is None else self.flash.read(active)
        if base is None or hashlib.sha256(base).hexdigest() != rx.base_sha256:
            self.transfer = None
            self.flash.set_state(slot, m.SlotState.INVALID)
            self._error(req, m.ErrorCode.DELTA_BASE_MISMATCH,
                        "the active image changed since MODEL_BEGIN (a commit or rollback); "
                        "make the patch from the image that runs now, or send the full image",
                        detail=m.NO_SLOT if active is None else active)
            return False
        try:
            sim_delta.apply(rx, base, self.flash.slot(slot).written,
                            lambda offset, data: self.flash.write(slot, offset, data))
        except (sim_delta.DeltaApplyError, FlashError) as e:
            self.transfer = None
            self.flash.set_state(slot, m.SlotState.INVALID)
            self._error(req, m.ErrorCode.VERIFY_FAILED, f"{e}; the active model is unchanged; "
                        "send the full image")
            return False
        return True

    def _check_model(self, image: bytes) -> ProbeResult | tuple[m.ErrorCode, str]:
        """The engine's verdict (sim/engines.py) on the model: the successful probe (its
        ``arena_limit`` is the arena the model needs; 0 for LiteRT), else the error code and
        message. An update image is opened first: its structure, SHA-256, signature (keyed
        board), manifest (docs/protocol.md 7.6); the model checked is its payload."""
        try:
            model = open_image(image, self.keys).model
        except ImageError as e:
            return e.code, str(e)
        return self.engine.check(model)

    def _model_commit(self, req: Frame) -> None:
        commit = m.ModelCommit.decode(req.payload)
        slot, test = commit.slot, bool(commit.flags & m.CommitFlag.TEST)
        try:
            self.flash.commit(slot, test=test)
        except FlashError as e:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, str(e))
            return
        self._load_active()
        if test and self.flash.table.testing == slot:
            verdict = self.self_test(slot)
            while self.logs:  # the self-test's outcome, to the host that asked for the switch
                self._event(m.Msg.LOG, m.Log(1 if verdict else 2, self.logs.pop(0)).encode())
            if verdict is True:
                self.flash.confirm()
            elif verdict is False:
                now = self.flash.revert()
                self._load_active()
                self._error(req, m.ErrorCode.SELF_TEST_FAILED,
                            f"the self-test of the model in slot {slot} failed; reverted to "
                            + ("no model" if now is None else f"the model in slot {now}"),
                            detail=m.NO_SLOT if now is None else now)
                return
        self._reply(req, m.SlotRef(slot).encode())

    def self_test(self, slot: int) -> bool | None:
        """Decide a test switch right after it took effect (the new model is loaded in
        ``self.runner``): True confirms it, False reverts it (MODEL_COMMIT then answers
        SELF_TEST_FAILED), None leaves it on trial for the host's MODEL_CONFIRM (or the
        revert at the next reset).

        The self-test (docs/protocol.md 7.4): when the slot holds an update image whose
        manifest carries golden input/output pairs, each golden input runs through the new
        model and its outputs must equal the golden ones bit for bit (TFLite Micro on the
        host made them; the same kernels run here). No manifest, no golden pairs, or a
        runtime other than TFLite Micro (LiteRT's int8 kernels may differ from TFLM's by one
        quantization step): None. The outcome is logged (``self.logs``).
        """
        if self.runner is None:
            self.logs.append(f"self-test of slot {slot}: the model did not load")
            return False
        if not isinstance(self.engine, TflmEngine):
            return None
        try:
            opened = open_image(self.flash.read(slot), self.keys)
            raw = opened.image.manifest if opened.image is not None else None
            manifest = UpdateManifest.from_cbor(raw) if raw is not None else None
        except (ImageError, ManifestError) as e:  # it verified at MODEL_END: changed since?
            self.logs.append(f"self-test of slot {slot}: {e}")
            return False
        if manifest is None or not manifest.golden:
            return None
        result = manifest.self_test(self.runner.invoke)
        self.logs.append(f"slot {slot}: {result.summary()}")
        return result.ok

    def _model_confirm(self, req: Frame) -> None:
        try:
            slot = self.flash.confirm()
        except NotPending as e:
            self._error(req, m.ErrorCode.NOT_PENDING, str(e))
            return
        except FlashError as e:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, str(e))
            return
        self._reply(req, m.SlotRef(slot).encode())

    def _model_rollback(self, req: Frame) -> None:
        try:
            slot = self.flash.rollback()
        except FlashError as e:
            self._error(req, m.ErrorCode.NO_FALLBACK, str(e))
            return
        self._load_active()
        self._reply(req, m.SlotRef(slot).encode())

    def _slot_status(self, req: Frame) -> None:
        rows = []
        for i, s in enumerate(self.flash.table.slots):
            rows.append(m.SlotInfo(i, s.state_enum, s.size, s.written,
                                   bytes.fromhex(s.sha256) if s.sha256 else bytes(32),
                                   s.arena_bytes, s.name))
        active = self.flash.table.active
        self._reply(req, m.SlotTable(m.NO_SLOT if active is None else active, tuple(rows)).encode())

    # misc ---------------------------------------------------------------------
    def _ping(self, req: Frame) -> None:
        self._reply(req, req.payload)

    def _reset(self, req: Frame) -> None:
        self._reply(req)
        self._boot()

    def _set_mode(self, req: Frame) -> None:
        mode = m.SetMode.decode(req.payload)
        if mode.mode == m.Mode.LINE:
            if mode.sensor >= len(self.sensor_descs):
                self._error(req, m.ErrorCode.NOT_FOUND, f"no sensor {mode.sensor}")
                return
            problem = self._rate_problem(mode.sensor, mode.rate_hz)
            if problem:
                self._error(req, m.ErrorCode.BAD_ARGUMENT, problem)
                return
            self._reply(req)
            self._enter_line_mode([mode.sensor], mode.rate_hz)
        else:
            self._reply(req)

    def _enter_line_mode(self, indices: list[int], rate_hz: float) -> None:
        self.streams.clear()
        self.mode = m.Mode.LINE
        self.line = self._make_stream(indices[0], rate_hz, 1)
        self.line_more = [self._make_stream(i, self.line.rate_hz, 1) for i in indices[1:]]
        if not self.plain_sketch:  # a plain sketch prints it once the host is there
            self._print_header()

    def _print_header(self) -> None:
        header = ",".join(f"{s.desc.id}_{c}" for s in [self.line, *self.line_more]
                          for c in s.desc.channels)
        self._send_bytes(header.encode() + b"\r\n")

    def _telemetry_config(self, req: Frame) -> None:
        cfg = m.TelemetryConfig.decode(req.payload)
        problem = limits.telemetry_period_problem(cfg.period_ms)
        if problem:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, problem)
            return
        self.telemetry_period = cfg.period_ms / 1000.0
        self.next_telemetry = self.clock()
        self._reply(req)

    def _sim_scenario(self, req: Frame) -> None:
        name = m.Text.decode(req.payload).text
        available = tuple(REPLAY_SCENARIOS) if self.replay else tuple(SCENARIOS)
        if name:
            if name not in available:
                self._error(req, m.ErrorCode.BAD_ARGUMENT, f"unknown scenario {name!r}; choose "
                            "from " + ", ".join(available))
                return
            try:
                for s in self.streams.values():
                    s.source.set_scenario(name)
                for s in ([self.line, *self.line_more] if self.line else []):
                    s.source.set_scenario(name)
            except ValueError as e:
                self._error(req, m.ErrorCode.BAD_ARGUMENT, str(e))
                return
            self.scenario = name
        self._reply(req, m.ScenarioState(self.scenario, available).encode())

    def _sim_faults(self, req: Frame) -> None:
        faults = m.Faults.decode(req.payload)
        if faults.disconnect:
            raise Disconnect("disconnect requested")
        problem = (limits.fault_rate_problem("drop_rate", faults.drop_rate)
                   or limits.fault_rate_problem("flip_rate", faults.flip_rate))
        if problem:
            self._error(req, m.ErrorCode.BAD_ARGUMENT, problem)
            return
        self.faults = faults
        self.flash.arm_power_cut(image_bytes=faults.power_cut_after or None)
        self._reply(req)

    _NO_PAYLOAD = frozenset({m.Msg.SENSORS, m.Msg.MODEL_END, m.Msg.MODEL_ROLLBACK,
                             m.Msg.SLOT_STATUS, m.Msg.MODEL_CONFIRM, m.Msg.RESET})

    _HANDLERS = {
        m.Msg.HELLO: _hello, m.Msg.SENSORS: _sensors, m.Msg.STREAM_START: _stream_start,
        m.Msg.STREAM_STOP: _stream_stop, m.Msg.INFER: _infer, m.Msg.SET_INPUT: _set_input,
        m.Msg.GET_OUTPUT: _get_output, m.Msg.MODEL_BEGIN: _model_begin,
        m.Msg.MODEL_CHUNK: _model_chunk, m.Msg.MODEL_END: _model_end,
        m.Msg.MODEL_COMMIT: _model_commit, m.Msg.MODEL_ROLLBACK: _model_rollback,
        m.Msg.SLOT_STATUS: _slot_status, m.Msg.MODEL_CONFIRM: _model_confirm,
        m.Msg.PING: _ping, m.Msg.RESET: _reset,
        m.Msg.SET_MODE: _set_mode, m.Msg.TELEMETRY_CONFIG: _telemetry_config,
        m.Msg.SIM_SCENARIO: _sim_scenario, m.Msg.SIM_FAULTS: _sim_faults,
    }

    # ------------------------------------------------------------------ time
    def tick(self) -> float:
        """Produce whatever is due now. Returns seconds until something is next due."""
        now = self.clock()
        wait = 0.05
        if self.mode == m.Mode.LINE and self.line is not None:
            return self._tick_line(now)
        for index, s in list(self.streams.items()):
            due = int((now - s.started) * s.rate_hz) - s.produced - s.dropped
            while due >= s.per_frame:
                self._emit_block(index, s)
                due -= s.per_frame
            wait = min(wait, (s.per_frame - due) / s.rate_hz)
        if self.telemetry_period and now >= self.next_telemetry:
            if self._tx_backlog() <= TX_BUFFER_BYTES:  # else skipped: answers go first
                self._event(m.Msg.TELEMETRY, self._telemetry().encode())
            self.next_telemetry = now + self.telemetry_period
        if self.telemetry_period:
            wait = min(wait, max(0.0, self.next_telemetry - now))
        return max(wait, 0.0)

    def _emit_block(self, index: int, s: _Stream) -> None:
        first = s.produced + s.dropped
        raw = s.source.read(s.per_frame)
        if self._tx_backlog() > TX_BUFFER_BYTES:
            s.dropped += s.per_frame  # the UART cannot keep up: drop at the source
            return
        t_us = int((s.started - self.booted + first / s.rate_hz) * 1e6)
        payload = m.Samples(index, first, t_us, s.per_frame, len(s.desc.channels), s.desc.dtype,
                            np.ascontiguousarray(raw).astype(raw.dtype.newbyteorder("<")).tobytes()
                            ).encode()
        s.produced += s.per_frame
        self._event(m.Msg.SAMPLES, payload)

    def _tick_line(self, now: float) -> float:
        s = self.line
        due = int((now - s.started) * s.rate_hz) - s.produced - s.dropped
        if due > 0:
            parts = [s.source.read(due).astype(np.float64) * s.desc.scale]
            parts += [x.source.read(due).astype(np.float64) * x.desc.scale for x in self.line_more]
            room = TX_BUFFER_BYTES - self._tx_backlog()
            lines: list[bytes] = []
            if room > 0:
                for row in np.concatenate(parts, axis=1):
                    line = (",".join(f"{v:.{LINE_MODE_DECIMALS}f}" for v in row)
                            + "\r\n").encode()
                    room -= len(line)
                    if room < 0:
                        break  # the rest would overflow the send buffer: discarded
                    lines.append(line)
            if lines:
                self._send_bytes(b"".join(lines))
            s.produced += len(lines)
            s.dropped += due - len(lines)
        return max(0.0, (1 - (due if due < 0 else 0)) / s.rate_hz)

    def _telemetry(self) -> m.Telemetry:
        slots = self.board.model_slots
        used = self.runner.arena_bytes_used if self.runner else 0
        free = max(0, self.board.ram_bytes - slots.firmware_ram_bytes - (used or 0))
        temp = 2500 + int(random.Random(self.uptime_ms() // 1000).uniform(-50, 150))
        dropped = sum(s.dropped for s in self.streams.values())
        return m.Telemetry(self.uptime_ms(), free, min(1000, 50 + 200 * len(self.streams)), temp,
                           self.inferences, self.last_latency, self.parser.stats.bad_frames,
                           dropped)


def default_flash_path(board_id: str) -> str:
    base = os.environ.get("WORKBENCH_SIM_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "workbench", "sim")
    return os.path.join(base, f"{board_id}.flash")
