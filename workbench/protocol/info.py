"""Who the board is: HELLO, INFO and the sensor list (docs/protocol.md 5.1, 5.2)."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import PROTOCOL_VERSION, Capability, DType
from .wire import Declared, Field, MalformedPayload, Reader, Writer, f32_tidy


@dataclass(frozen=True)
class Hello(Declared):
    """The host's first request: its protocol version and the largest payload it accepts."""

    proto_version: int = PROTOCOL_VERSION
    max_payload: int = 1024

    WHAT = "HELLO"
    LAYOUT = (Field("proto_version", "u8"), Field("max_payload", "u16"))


@dataclass(frozen=True)
class Info(Declared):
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

    WHAT = "INFO"
    LAYOUT = (Field("proto_version", "u8"), Field("max_payload", "u16"),
              Field("capabilities", "u32", enum=Capability), Field("board_id", "str"),
              Field("board_name", "str"), Field("firmware", "str"), Field("mcu", "str"),
              Field("core", "str"), Field("clock_hz", "u32"), Field("flash_bytes", "u32"),
              Field("ram_bytes", "u32"), Field("slot_count", "u8"), Field("active_slot", "u8"),
              Field("slot_bytes", "u32"), Field("arena_bytes", "u32"),
              Field("sensor_count", "u8"), Field("uptime_ms", "u32"),
              Field("serial_number", "str"))


@dataclass(frozen=True)
class SensorDesc:
    """One sensor of the SENSORS answer. On the wire its channel names are one
    string joined by ``,`` that must split into exactly ``channel_count`` names."""

    index: int
    id: str
    kind: str
    channels: tuple[str, ...]
    units: str
    dtype: DType
    scale: float
    rate_hz: float
    rates_hz: tuple[float, ...] = ()

    DOC_ROWS = (("index", "u8"), ("id", "str"), ("kind", "str"), ("channel_count", "u8"),
                ("channels", "str"), ("units", "str"), ("dtype", "u8"), ("scale", "f32"),
                ("rate_hz", "f32"), ("rate_count", "u8"), ("rates_hz[rate_count]", "f32 each"))
    """The wire layout, as docs/protocol.md tabulates it (the codec is hand-written)."""

    def write(self, w: Writer) -> None:
        w.u8(self.index).str(self.id).str(self.kind).u8(len(self.channels))
        w.str(",".join(self.channels)).str(self.units).u8(self.dtype).f32(self.scale)
        w.f32(self.rate_hz).u8(len(self.rates_hz))
        for rate in self.rates_hz:
            w.f32(rate)

    @classmethod
    def read(cls, r: Reader) -> SensorDesc:
        index, sid, kind, nch = r.u8(), r.str(), r.str(), r.u8()
        joined = r.str()
        names = tuple(joined.split(",")) if joined else ()
        if len(names) != nch:
            raise MalformedPayload(f"SENSORS: sensor {sid!r} declares {nch} channels "
                                   f"but names {len(names)}")
        units, dtype_code, scale, rate = r.str(), r.u8(), f32_tidy(r.f32()), f32_tidy(r.f32())
        try:
            dtype = DType(dtype_code)
        except ValueError:
            raise MalformedPayload(f"SENSORS: unknown dtype code {dtype_code}") from None
        rates = tuple(f32_tidy(r.f32()) for _ in range(r.u8()))
        return cls(index, sid, kind, names, units, dtype, scale, rate, rates)


@dataclass(frozen=True)
class SensorList(Declared):
    """The answer to SENSORS: every sensor's descriptor."""

    sensors: tuple[SensorDesc, ...]

    WHAT = "SENSORS"
    LAYOUT = (Field("sensors", "list", item=SensorDesc, doc="sensor"),)
