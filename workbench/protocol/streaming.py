"""Sensor streaming: STREAM_START, STREAM_STOP and the SAMPLES event (docs/protocol.md
5.3, 5.4, 5.18)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .codes import DType
from .wire import Declared, Field, MalformedPayload


@dataclass(frozen=True)
class StreamStart(Declared):
    sensor: int
    rate_hz: float = 0.0
    """0 means the sensor's default rate."""
    samples_per_frame: int = 0
    """0 lets the device choose (it fills frames up to max_payload)."""

    WHAT = "STREAM_START"
    LAYOUT = (Field("sensor", "u8"), Field("rate_hz", "f32"), Field("samples_per_frame", "u16"))


@dataclass(frozen=True)
class StreamStarted(Declared):
    sensor: int
    rate_hz: float
    samples_per_frame: int

    WHAT = "STREAM_START response"
    LAYOUT = StreamStart.LAYOUT


@dataclass(frozen=True)
class StreamStop(Declared):
    """Stop one sensor's stream, or all of them with ``ALL_SENSORS`` (0xFF)."""

    sensor: int

    WHAT = "STREAM_STOP"
    LAYOUT = (Field("sensor", "u8"),)


@dataclass(frozen=True)
class StreamStopped(Declared):
    sensor: int
    samples_produced: int
    samples_dropped: int
    """Samples the device discarded because the link could not carry them."""

    WHAT = "STREAM_STOP response"
    LAYOUT = (Field("sensor", "u8"), Field("samples_produced", "u32"),
              Field("samples_dropped", "u32"))


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

    DOC_ROWS = (("sensor", "u8"), ("first", "u32"), ("timestamp_us", "u32"), ("count", "u16"),
                ("channels", "u8"), ("dtype", "u8"), ("data", "bytes"))
    """The wire layout, as docs/protocol.md tabulates it (the codec is hand-written:
    the data must be exactly count x channels x dtype size bytes)."""

    def encode(self) -> bytes:
        return SAMPLES_HEADER.pack(self.sensor, self.first & 0xFFFFFFFF,
                                   self.timestamp_us & 0xFFFFFFFF, self.count,
                                   self.channels, self.dtype) + self.data

    @classmethod
    def decode(cls, p: bytes) -> Samples:
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
