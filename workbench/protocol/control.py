"""Board control and device events: SET_MODE, TELEMETRY_CONFIG, the TELEMETRY and LOG
events, and the ERROR frame (docs/protocol.md 4.3, 5.16-5.20, 6)."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import Mode
from .wire import Declared, Field


@dataclass(frozen=True)
class SetMode(Declared):
    mode: Mode
    sensor: int = 0
    rate_hz: float = 0.0

    WHAT = "SET_MODE"
    LAYOUT = (Field("mode", "u8", enum=Mode), Field("sensor", "u8"), Field("rate_hz", "f32"))


@dataclass(frozen=True)
class TelemetryConfig(Declared):
    period_ms: int
    """0 stops telemetry."""

    WHAT = "TELEMETRY_CONFIG"
    LAYOUT = (Field("period_ms", "u32"),)


@dataclass(frozen=True)
class Telemetry(Declared):
    uptime_ms: int
    free_ram: int
    cpu_permille: int
    temperature_centi_c: int
    inferences: int
    last_latency_us: int
    bad_frames_rx: int
    samples_dropped: int

    WHAT = "TELEMETRY"
    LAYOUT = (Field("uptime_ms", "u32"), Field("free_ram", "u32"), Field("cpu_permille", "u16"),
              Field("temperature_centi_c", "i16"), Field("inferences", "u32"),
              Field("last_latency_us", "u32"), Field("bad_frames_rx", "u32"),
              Field("samples_dropped", "u32"))


@dataclass(frozen=True)
class Log(Declared):
    level: int
    """0 debug, 1 info, 2 warning, 3 error."""
    message: str

    WHAT = "LOG"
    LAYOUT = (Field("level", "u8"), Field("message", "str"))


@dataclass(frozen=True)
class Error(Declared):
    code: int
    detail: int
    message: str

    WHAT = "ERROR"
    LAYOUT = (Field("code", "u16"), Field("detail", "u32"), Field("message", "str"))
