"""Message set of the framed protocol: type codes, error codes and payload codecs.

This module is the single source of truth for payload layouts; docs/protocol.md
describes the same layouts for firmware authors. All integers are little-endian;
``str`` is a u8 length followed by that many UTF-8 bytes; ``f32`` is IEEE-754
binary32.

Every payload type is a frozen dataclass with ``encode() -> bytes`` and
``decode(payload) -> instance``; ``decode`` raises :class:`MalformedPayload`
(a ``ValueError``) on a short, long or inconsistent payload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

import numpy as np
from ..errors import WorkbenchError

PROTOCOL_VERSION = 1
RESPONSE_BIT = 0x80


class Msg(IntEnum):
    """Frame types. Requests are 0x01-0x3F, their responses ``type | 0x80``;
    device events (``req_id`` 0) are 0x40-0x7F; ERROR answers any request."""

    HELLO = 0x01
    SENSORS = 0x02
    STREAM_START = 0x03
    STREAM_STOP = 0x04
    INFER = 0x05
    SET_INPUT = 0x06
    GET_OUTPUT = 0x07
    MODEL_BEGIN = 0x10
    MODEL_CHUNK = 0x11
    MODEL_END = 0x12
    MODEL_COMMIT = 0x13
    MODEL_ROLLBACK = 0x14
    SLOT_STATUS = 0x15
    PING = 0x20
    RESET = 0x21
    SET_MODE = 0x22
    TELEMETRY_CONFIG = 0x23
    SIM_SCENARIO = 0x30
    SIM_FAULTS = 0x31
    # device events
    SAMPLES = 0x40
    TELEMETRY = 0x41
    LOG = 0x42
    # responses that are not request | 0x80
    ERROR = 0xFF


def response_type(request: int) -> int:
    return request | RESPONSE_BIT


def is_event(ftype: int) -> bool:
    return 0x40 <= ftype <= 0x7F


class ErrorCode(IntEnum):
    """Typed errors carried by an ERROR frame. The host maps each to an exception."""

    MALFORMED = 1
    UNKNOWN_TYPE = 2
    BAD_ARGUMENT = 3
    BUSY = 4
    NOT_FOUND = 5
    NO_MODEL = 6
    MODEL_TOO_LARGE = 7
    ARENA_TOO_SMALL = 8
    UNSUPPORTED_OP = 9
    MODEL_INVALID = 10
    OUT_OF_ORDER = 11
    VERIFY_FAILED = 12
    NO_FALLBACK = 13
    SLOT_ACTIVE = 14
    INFER_FAILED = 15
    NOT_SUPPORTED = 16
    NO_TRANSFER = 17
    INTERNAL = 18


class Capability(IntFlag):
    STREAM = 1 << 0
    INFER = 1 << 1
    MODEL_UPDATE = 1 << 2
    TELEMETRY = 1 << 3
    LINE_MODE = 1 << 4
    SIMULATED = 1 << 5
    """A virtual board: SIM_SCENARIO and SIM_FAULTS are available."""


class DType(IntEnum):
    """Element types of samples and tensors (codes shared by SAMPLES and INFER)."""

    INT8 = 1
    UINT8 = 2
    INT16 = 3
    UINT16 = 4
    INT32 = 5
    FLOAT32 = 6

    @property
    def numpy(self) -> str:
        return {1: "<i1", 2: "<u1", 3: "<i2", 4: "<u2", 5: "<i4", 6: "<f4"}[self.value]

    @property
    def size(self) -> int:
        return {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4}[self.value]

    @classmethod
    def from_name(cls, name: str) -> "DType":
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unsupported element type {name!r}; use one of "
                             + ", ".join(m.name.lower() for m in cls)) from None


class SlotState(IntEnum):
    EMPTY = 0
    RECEIVING = 1
    VERIFIED = 2
    ACTIVE = 3
    FALLBACK = 4
    INVALID = 5


class Mode(IntEnum):
    FRAMED = 0
    LINE = 1


NO_SLOT = 0xFF
ALL_SENSORS = 0xFF


def _f32_tidy(x: float) -> float:
    """The shortest decimal that rounds to the same binary32 (0.000122, not 0.00012199999...)."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


class MalformedPayload(WorkbenchError, ValueError):
    """A payload that does not match its message layout."""


class Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, v: int) -> "Writer":
        self.buf += struct.pack("<B", v)
        return self

    def u16(self, v: int) -> "Writer":
        self.buf += struct.pack("<H", v)
        return self

    def u32(self, v: int) -> "Writer":
        self.buf += struct.pack("<I", v & 0xFFFFFFFF)
        return self

    def i16(self, v: int) -> "Writer":
        self.buf += struct.pack("<h", v)
        return self

    def i32(self, v: int) -> "Writer":
        self.buf += struct.pack("<i", v)
        return self

    def f32(self, v: float) -> "Writer":
        self.buf += struct.pack("<f", v)
        return self

    def str(self, v: str) -> "Writer":
        raw = v.encode("utf-8")[:255]
        # never cut a UTF-8 sequence in half
        raw = raw.decode("utf-8", "ignore").encode("utf-8")
        self.buf += bytes([len(raw)]) + raw
        return self

    def raw(self, v: bytes) -> "Writer":
        self.buf += v
        return self

    def bytes(self) -> bytes:
        return bytes(self.buf)


class Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedPayload(f"{self.what}: payload ends early "
                                   f"({len(self.data)} bytes, needed {self.pos + n})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self._take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self._take(4))[0]

    def i16(self) -> int:
        return struct.unpack("<h", self._take(2))[0]

    def i32(self) -> int:
        return struct.unpack("<i", self._take(4))[0]

    def f32(self) -> float:
        return struct.unpack("<f", self._take(4))[0]

    def str(self) -> str:
        n = self.u8()
        try:
            return self._take(n).decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedPayload(f"{self.what}: string is not UTF-8 ({e})") from None

    def raw(self, n: int) -> bytes:
        return self._take(n)

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def end(self) -> None:
        if self.pos != len(self.data):
            raise MalformedPayload(f"{self.what}: {len(self.data) - self.pos} unexpected "
                                   "bytes after the payload")


# --------------------------------------------------------------------------- payloads


@dataclass(frozen=True)
class Hello:
    proto_version: int = PROTOCOL_VERSION
    max_payload: int = 1024

    def encode(self) -> bytes:
        return Writer().u8(self.proto_version).u16(self.max_payload).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Hello":
        r = Reader(p, "HELLO")
        out = cls(r.u8(), r.u16())
        r.end()
        return out


@dataclass(frozen=True)
class Info:
    """The device's answer to HELLO: who it is and what it can hold."""

    proto_version: int
    max_payload: int
    capabilities: Capability
    board_id: str
    board_name: str
    firmware: str
    mcu: str
    core: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    slot_count: int
    active_slot: int
    slot_bytes: int
    arena_bytes: int
    sensor_count: int
    uptime_ms: int
    serial_number: str

    def encode(self) -> bytes:
        w = Writer().u8(self.proto_version).u16(self.max_payload).u32(int(self.capabilities))
        for s in (self.board_id, self.board_name, self.firmware, self.mcu, self.core):
            w.str(s)
        w.u32(self.clock_hz).u32(self.flash_bytes).u32(self.ram_bytes)
        w.u8(self.slot_count).u8(self.active_slot).u32(self.slot_bytes).u32(self.arena_bytes)
        w.u8(self.sensor_count).u32(self.uptime_ms).str(self.serial_number)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Info":
        r = Reader(p, "INFO")
        version, max_payload, caps = r.u8(), r.u16(), Capability(r.u32())
        strs = [r.str() for _ in range(5)]
        clock, flash, ram = r.u32(), r.u32(), r.u32()
        count, active, slot_bytes, arena = r.u8(), r.u8(), r.u32(), r.u32()
        sensors, uptime, serial = r.u8(), r.u32(), r.str()
        r.end()
        return cls(version, max_payload, caps, *strs, clock, flash, ram, count, active,
                   slot_bytes, arena, sensors, uptime, serial)


@dataclass(frozen=True)
class SensorDesc:
    index: int
    id: str
    kind: str
    channels: tuple[str, ...]
    units: str
    dtype: DType
    scale: float
    rate_hz: float
    rates_hz: tuple[float, ...] = ()

    def write(self, w: Writer) -> None:
        w.u8(self.index).str(self.id).str(self.kind).u8(len(self.channels))
        w.str(",".join(self.channels)).str(self.units).u8(self.dtype).f32(self.scale)
        w.f32(self.rate_hz).u8(len(self.rates_hz))
        for rate in self.rates_hz:
            w.f32(rate)

    @classmethod
    def read(cls, r: Reader) -> "SensorDesc":
        index, sid, kind, nch = r.u8(), r.str(), r.str(), r.u8()
        joined = r.str()
        names = tuple(joined.split(",")) if joined else ()
        if len(names) != nch:
            raise MalformedPayload(f"SENSORS: sensor {sid!r} declares {nch} channels "
                                   f"but names {len(names)}")
        units, dtype_code, scale, rate = r.str(), r.u8(), _f32_tidy(r.f32()), _f32_tidy(r.f32())
        try:
            dtype = DType(dtype_code)
        except ValueError:
            raise MalformedPayload(f"SENSORS: unknown dtype code {dtype_code}") from None
        rates = tuple(_f32_tidy(r.f32()) for _ in range(r.u8()))
        return cls(index, sid, kind, names, units, dtype, scale, rate, rates)


@dataclass(frozen=True)
class SensorList:
    sensors: tuple[SensorDesc, ...]

    def encode(self) -> bytes:
        w = Writer().u8(len(self.sensors))
        for s in self.sensors:
            s.write(w)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> "SensorList":
        r = Reader(p, "SENSORS")
        out = cls(tuple(SensorDesc.read(r) for _ in range(r.u8())))
        r.end()
        return out


@dataclass(frozen=True)
class StreamStart:
    sensor: int
    rate_hz: float = 0.0
    """0 means the sensor's default rate."""
    samples_per_frame: int = 0
    """0 lets the device choose (it fills frames up to max_payload)."""

    def encode(self) -> bytes:
        return Writer().u8(self.sensor).f32(self.rate_hz).u16(self.samples_per_frame).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "StreamStart":
        r = Reader(p, "STREAM_START")
        out = cls(r.u8(), r.f32(), r.u16())
        r.end()
        return out


@dataclass(frozen=True)
class StreamStarted:
    sensor: int
    rate_hz: float
    samples_per_frame: int

    def encode(self) -> bytes:
        return Writer().u8(self.sensor).f32(self.rate_hz).u16(self.samples_per_frame).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "StreamStarted":
        r = Reader(p, "STREAM_START response")
        out = cls(r.u8(), r.f32(), r.u16())
        r.end()
        return out


@dataclass(frozen=True)
class StreamStopped:
    sensor: int
    samples_produced: int
    samples_dropped: int
    """Samples the device discarded because the link could not carry them."""

    def encode(self) -> bytes:
        return Writer().u8(self.sensor).u32(self.samples_produced).u32(self.samples_dropped).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "StreamStopped":
        r = Reader(p, "STREAM_STOP response")
        out = cls(r.u8(), r.u32(), r.u32())
        r.end()
        return out


SAMPLES_HEADER = struct.Struct("<BIIHBB")


@dataclass(frozen=True)
class Samples:
    """A block of consecutive samples. ``first`` is the index of the first sample
    since STREAM_START, so a gap between blocks is an exact count of lost samples."""

    sensor: int
    first: int
    timestamp_us: int
    count: int
    channels: int
    dtype: DType
    data: bytes

    def encode(self) -> bytes:
        return SAMPLES_HEADER.pack(self.sensor, self.first & 0xFFFFFFFF,
                                   self.timestamp_us & 0xFFFFFFFF, self.count,
                                   self.channels, self.dtype) + self.data

    @classmethod
    def decode(cls, p: bytes) -> "Samples":
        if len(p) < SAMPLES_HEADER.size:
            raise MalformedPayload("SAMPLES: payload shorter than its header")
        sensor, first, ts, count, channels, code = SAMPLES_HEADER.unpack_from(p)
        try:
            dtype = DType(code)
        except ValueError:
            raise MalformedPayload(f"SAMPLES: unknown dtype code {code}") from None
        data = p[SAMPLES_HEADER.size:]
        if len(data) != count * channels * dtype.size:
            raise MalformedPayload(f"SAMPLES: {count} samples x {channels} channels of "
                                   f"{dtype.name.lower()} need {count * channels * dtype.size} "
                                   f"bytes, got {len(data)}")
        return cls(sensor, first, ts, count, channels, dtype, data)


@dataclass(frozen=True)
class Tensor:
    """A tensor on the wire: dtype, shape, quantization and (maybe) its bytes."""

    dtype: DType
    shape: tuple[int, ...]
    data: bytes = b""
    scale: float = 0.0
    zero_point: int = 0

    @property
    def nbytes(self) -> int:
        n = self.dtype.size
        for d in self.shape:
            n *= d
        return n

    def write(self, w: Writer, with_data: bool = True) -> None:
        w.u8(self.dtype).u8(len(self.shape))
        for d in self.shape:
            w.u32(d)
        w.f32(self.scale).i32(self.zero_point)
        w.u32(len(self.data) if with_data else 0)
        if with_data:
            w.raw(self.data)

    @classmethod
    def read(cls, r: Reader) -> "Tensor":
        code, ndim = r.u8(), r.u8()
        try:
            dtype = DType(code)
        except ValueError:
            raise MalformedPayload(f"{r.what}: unknown dtype code {code}") from None
        shape = tuple(r.u32() for _ in range(ndim))
        scale, zp, n = r.f32(), r.i32(), r.u32()
        return cls(dtype, shape, r.raw(n), scale, zp)


@dataclass(frozen=True)
class Infer:
    """Run the active model. Inline inputs (index, bytes) or, if none, the inputs
    written beforehand with SET_INPUT."""

    inputs: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        w = Writer().u8(len(self.inputs))
        for index, data in self.inputs:
            w.u8(index).u32(len(data)).raw(data)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Infer":
        r = Reader(p, "INFER")
        inputs = []
        for _ in range(r.u8()):
            index = r.u8()
            inputs.append((index, r.raw(r.u32())))
        r.end()
        return cls(tuple(inputs))


RESULT_LATENCY_ESTIMATED = 0x01
"""The latency was not measured on silicon (a virtual board's)."""
RESULT_OUTPUTS_DETACHED = 0x02
"""Outputs did not fit; fetch each with GET_OUTPUT."""


@dataclass(frozen=True)
class Result:
    latency_us: int
    arena_bytes: int
    flags: int
    outputs: tuple[Tensor, ...]

    def encode(self) -> bytes:
        w = Writer().u32(self.latency_us).u32(self.arena_bytes).u8(self.flags)
        w.u8(len(self.outputs))
        for t in self.outputs:
            t.write(w, with_data=not self.flags & RESULT_OUTPUTS_DETACHED)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Result":
        r = Reader(p, "INFER response")
        latency, arena, flags = r.u32(), r.u32(), r.u8()
        outputs = tuple(Tensor.read(r) for _ in range(r.u8()))
        r.end()
        return cls(latency, arena, flags, outputs)


@dataclass(frozen=True)
class Chunk:
    """A piece of a larger object at ``offset``: SET_INPUT, MODEL_CHUNK, GET_OUTPUT reply."""

    index: int
    offset: int
    data: bytes

    def encode(self) -> bytes:
        return Writer().u8(self.index).u32(self.offset).raw(self.data).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Chunk":
        r = Reader(p, "chunk")
        return cls(r.u8(), r.u32(), r.rest())


@dataclass(frozen=True)
class GetOutput:
    index: int
    offset: int
    length: int

    def encode(self) -> bytes:
        return Writer().u8(self.index).u32(self.offset).u16(self.length).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "GetOutput":
        r = Reader(p, "GET_OUTPUT")
        out = cls(r.u8(), r.u32(), r.u16())
        r.end()
        return out


@dataclass(frozen=True)
class Offset:
    """A single u32 offset: the reply to SET_INPUT and MODEL_CHUNK (next expected)."""

    offset: int

    def encode(self) -> bytes:
        return Writer().u32(self.offset).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Offset":
        r = Reader(p, "offset")
        out = cls(r.u32())
        r.end()
        return out


@dataclass(frozen=True)
class ModelBegin:
    slot: int
    size: int
    sha256: bytes
    name: str = ""

    def encode(self) -> bytes:
        return Writer().u8(self.slot).u32(self.size).raw(self.sha256).str(self.name).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "ModelBegin":
        r = Reader(p, "MODEL_BEGIN")
        out = cls(r.u8(), r.u32(), r.raw(32), r.str())
        r.end()
        return out


@dataclass(frozen=True)
class ModelBegun:
    slot: int
    resume_offset: int
    chunk_max: int
    window: int

    def encode(self) -> bytes:
        return (Writer().u8(self.slot).u32(self.resume_offset).u16(self.chunk_max)
                .u8(self.window).bytes())

    @classmethod
    def decode(cls, p: bytes) -> "ModelBegun":
        r = Reader(p, "MODEL_BEGIN response")
        out = cls(r.u8(), r.u32(), r.u16(), r.u8())
        r.end()
        return out


@dataclass(frozen=True)
class ModelVerified:
    slot: int
    sha256: bytes
    arena_bytes: int

    def encode(self) -> bytes:
        return Writer().u8(self.slot).raw(self.sha256).u32(self.arena_bytes).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "ModelVerified":
        r = Reader(p, "MODEL_END response")
        out = cls(r.u8(), r.raw(32), r.u32())
        r.end()
        return out


@dataclass(frozen=True)
class SlotRef:
    """One slot number: MODEL_COMMIT's request, COMMIT/ROLLBACK's reply (active slot)."""

    slot: int

    def encode(self) -> bytes:
        return Writer().u8(self.slot).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "SlotRef":
        r = Reader(p, "slot")
        out = cls(r.u8())
        r.end()
        return out


@dataclass(frozen=True)
class SlotInfo:
    index: int
    state: SlotState
    size: int
    written: int
    sha256: bytes
    arena_bytes: int
    name: str

    def write(self, w: Writer) -> None:
        w.u8(self.index).u8(self.state).u32(self.size).u32(self.written).raw(self.sha256)
        w.u32(self.arena_bytes).str(self.name)

    @classmethod
    def read(cls, r: Reader) -> "SlotInfo":
        index, state = r.u8(), r.u8()
        try:
            state = SlotState(state)
        except ValueError:
            raise MalformedPayload(f"SLOT_STATUS: unknown slot state {state}") from None
        return cls(index, state, r.u32(), r.u32(), r.raw(32), r.u32(), r.str())


@dataclass(frozen=True)
class SlotTable:
    active: int
    slots: tuple[SlotInfo, ...]

    def encode(self) -> bytes:
        w = Writer().u8(self.active).u8(len(self.slots))
        for s in self.slots:
            s.write(w)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> "SlotTable":
        r = Reader(p, "SLOT_STATUS response")
        active = r.u8()
        out = cls(active, tuple(SlotInfo.read(r) for _ in range(r.u8())))
        r.end()
        return out


@dataclass(frozen=True)
class SetMode:
    mode: Mode
    sensor: int = 0
    rate_hz: float = 0.0

    def encode(self) -> bytes:
        return Writer().u8(self.mode).u8(self.sensor).f32(self.rate_hz).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "SetMode":
        r = Reader(p, "SET_MODE")
        mode, sensor, rate = r.u8(), r.u8(), r.f32()
        r.end()
        try:
            return cls(Mode(mode), sensor, rate)
        except ValueError:
            raise MalformedPayload(f"SET_MODE: unknown mode {mode}") from None


@dataclass(frozen=True)
class TelemetryConfig:
    period_ms: int

    def encode(self) -> bytes:
        return Writer().u32(self.period_ms).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "TelemetryConfig":
        r = Reader(p, "TELEMETRY_CONFIG")
        out = cls(r.u32())
        r.end()
        return out


@dataclass(frozen=True)
class Telemetry:
    uptime_ms: int
    free_ram: int
    cpu_permille: int
    temperature_centi_c: int
    inferences: int
    last_latency_us: int
    bad_frames_rx: int
    samples_dropped: int

    def encode(self) -> bytes:
        return (Writer().u32(self.uptime_ms).u32(self.free_ram).u16(self.cpu_permille)
                .i16(self.temperature_centi_c).u32(self.inferences).u32(self.last_latency_us)
                .u32(self.bad_frames_rx).u32(self.samples_dropped).bytes())

    @classmethod
    def decode(cls, p: bytes) -> "Telemetry":
        r = Reader(p, "TELEMETRY")
        out = cls(r.u32(), r.u32(), r.u16(), r.i16(), r.u32(), r.u32(), r.u32(), r.u32())
        r.end()
        return out


@dataclass(frozen=True)
class Log:
    level: int
    """0 debug, 1 info, 2 warning, 3 error."""
    message: str

    def encode(self) -> bytes:
        return Writer().u8(self.level).str(self.message).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Log":
        r = Reader(p, "LOG")
        out = cls(r.u8(), r.str())
        r.end()
        return out


@dataclass(frozen=True)
class Error:
    code: int
    detail: int
    message: str

    def encode(self) -> bytes:
        return Writer().u16(self.code).u32(self.detail).str(self.message).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Error":
        r = Reader(p, "ERROR")
        out = cls(r.u16(), r.u32(), r.str())
        r.end()
        return out


@dataclass(frozen=True)
class Text:
    """A single string (SIM_SCENARIO request)."""

    text: str

    def encode(self) -> bytes:
        return Writer().str(self.text).bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Text":
        r = Reader(p, "text")
        out = cls(r.str())
        r.end()
        return out


@dataclass(frozen=True)
class Scenario:
    """SIM_SCENARIO reply: the scenario now running and all that are available."""

    current: str
    available: tuple[str, ...] = field(default_factory=tuple)

    def encode(self) -> bytes:
        w = Writer().str(self.current).u8(len(self.available))
        for name in self.available:
            w.str(name)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> "Scenario":
        r = Reader(p, "SIM_SCENARIO response")
        current = r.str()
        out = cls(current, tuple(r.str() for _ in range(r.u8())))
        r.end()
        return out


@dataclass(frozen=True)
class Faults:
    """SIM_FAULTS: fault injection on a virtual board (rates are per byte sent)."""

    drop_rate: float = 0.0
    flip_rate: float = 0.0
    power_cut_after: int = 0
    """Cut power after this many more model-update bytes are received (0 = never)."""
    disconnect: bool = False

    def encode(self) -> bytes:
        return (Writer().f32(self.drop_rate).f32(self.flip_rate).u32(self.power_cut_after)
                .u8(int(self.disconnect)).bytes())

    @classmethod
    def decode(cls, p: bytes) -> "Faults":
        r = Reader(p, "SIM_FAULTS")
        out = cls(r.f32(), r.f32(), r.u32(), bool(r.u8()))
        r.end()
        return out
