"""The range of every field a host sets, and what a device answers outside it.

A hostile or careless host must not be able to knock a board over from the
wire: each request field, and each start option of the virtual board, has a
limit declared here once. The reference device (``workbench.sim``) enforces
them with the helpers below; docs/protocol.md section 5.21 tabulates
:data:`LIMITS` (a test keeps the two identical), so firmware written from the
document enforces the same ones.

The ``*_problem`` helpers return ``None`` for an acceptable value, else a
sentence that says what is wrong and what is allowed (the message of the
BAD_ARGUMENT error, or of the virtual board's start-up error).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

MIN_RATE_HZ = 0.01
"""Slowest sample rate a host may ask for (STREAM_START, SET_MODE); 0 means the default."""
RATE_FACTOR = 10
"""A host may ask for up to this many times the sensor's highest listed rate."""
TELEMETRY_MIN_PERIOD_MS = 100
"""Shortest TELEMETRY period (0 stops telemetry). At 10 events/s a TELEMETRY stream
takes about 400 bytes/s, a third of a 9600-baud line."""
MAX_FAULT_RATE = 0.05
"""Highest byte drop or flip rate of SIM_FAULTS and ``--drop``/``--flip``. At 0.05 a
SIM_FAULTS request (about 26 bytes on the wire) and its answer (about 12) both arrive
intact about one time in seven, so a host can still clear the faults; at 1.0 nothing
arrives and the board is deaf for good."""
BAUD_MIN = 1200
"""Slowest line rate the host link and a virtual board accept: a full 1 KB request and its
answer then take about 26 s, inside the host's wire-time allowance ceiling. Slower rates are
refused, not waited for."""
BAUD_MAX = 12_000_000
"""Fastest line rate the host link and a virtual board accept (USB full speed; USB CDC
ignores the rate)."""
SEED_MAX = 0xFFFF_FFFF
"""A virtual board's ``--seed`` is 0..2**32-1."""
U32_MAX = 0xFFFF_FFFF


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def within(x: float, low: float, high: float) -> bool:
    """``low <= x <= high`` for a value that may have travelled as an f32: the bounds
    count as given or as their nearest binary32 (0.05 is 0.0500000007 on the wire)."""
    return (math.isfinite(x)
            and min(low, _f32(low)) <= x <= max(high, _f32(high)))


def max_rate_hz(rate_hz: float, rates_hz: Sequence[float] = ()) -> float:
    """The highest rate a host may ask of a sensor with default ``rate_hz`` and listed
    ``rates_hz``: ``RATE_FACTOR`` x the highest listed (the default if none is)."""
    return RATE_FACTOR * max(rates_hz or (rate_hz,))


def rate_problem(rate: float, sensor: str, rate_hz: float,
                 rates_hz: Sequence[float] = ()) -> str | None:
    """Check a requested sample rate (0 = the sensor's default ``rate_hz``)."""
    if rate == 0:
        return None
    top = max_rate_hz(rate_hz, rates_hz)
    if not within(rate, MIN_RATE_HZ, top):
        return (f"{sensor} cannot sample at {rate:g} Hz; ask for 0 (its default, "
                f"{rate_hz:g} Hz) or {MIN_RATE_HZ:g} to {top:g} Hz")
    return None


def telemetry_period_problem(period_ms: int) -> str | None:
    """Check a TELEMETRY_CONFIG period (0 stops telemetry)."""
    if period_ms == 0 or TELEMETRY_MIN_PERIOD_MS <= period_ms <= U32_MAX:
        return None
    return (f"telemetry period {period_ms} ms is too short; use 0 (off) or at least "
            f"{TELEMETRY_MIN_PERIOD_MS} ms")


def fault_rate_problem(name: str, rate: float) -> str | None:
    """Check a byte fault rate (``drop_rate``, ``flip_rate``)."""
    if within(rate, 0.0, MAX_FAULT_RATE):
        return None
    return (f"{name} {rate:g} is out of range; use 0 to {MAX_FAULT_RATE:g} (a higher rate "
            "loses nearly every frame, so the board could not be told to stop)")


def baud_problem(baud: int) -> str | None:
    """Check a virtual board's line rate."""
    if BAUD_MIN <= baud <= BAUD_MAX:
        return None
    return f"baud {baud} is out of range; use {BAUD_MIN} to {BAUD_MAX:,}"


def seed_problem(seed: int) -> str | None:
    """Check a virtual board's seed."""
    if 0 <= seed <= SEED_MAX:
        return None
    return f"seed {seed} is out of range; use 0 to {SEED_MAX}"


@dataclass(frozen=True)
class Limit:
    """One row of the limits table: where the value comes from, its range, and the
    answer when it is outside (``answer`` names an ERROR code, or says what happens)."""

    where: str
    field: str
    min: str
    max: str
    answer: str


LIMITS: tuple[Limit, ...] = (
    Limit("HELLO", "proto_version", "0", "255", "not checked; INFO says version 1"),
    Limit("HELLO", "max_payload", "0", "65535", "not used; the reference sends at most 1024"),
    Limit("STREAM_START, SET_MODE", "sensor", "0", "sensor_count − 1", "NOT_FOUND"),
    Limit("STREAM_START, SET_MODE", "rate_hz", f"0 (default) or {MIN_RATE_HZ:g}",
          f"{RATE_FACTOR} × the highest listed rate (the default if none is listed)",
          "BAD_ARGUMENT (NaN and infinities too)"),
    Limit("STREAM_START", "samples_per_frame", "0 (device chooses)",
          "(max_payload − 13) / (channels × dtype size), rounded down", "BAD_ARGUMENT"),
    Limit("STREAM_STOP", "sensor", "0", "255",
          "any: a sensor that is not streaming gets counts 0; 0xFF stops all"),
    Limit("INFER", "input index", "0", "model inputs − 1", "NOT_FOUND"),
    Limit("INFER", "input length", "the input's size", "the input's size", "BAD_ARGUMENT"),
    Limit("SET_INPUT", "index", "0", "model inputs − 1", "NOT_FOUND"),
    Limit("SET_INPUT", "offset + data length", "0", "the input's size in bytes",
          "BAD_ARGUMENT (nothing written)"),
    Limit("GET_OUTPUT", "index", "0", "outputs of the last inference − 1", "NOT_FOUND"),
    Limit("GET_OUTPUT", "offset", "0", "4294967295", "any: past the end the data are empty"),
    Limit("GET_OUTPUT", "length", "0", "65535", "any: at most max_payload − 8 bytes are sent"),
    Limit("MODEL_BEGIN", "slot", "0", "slot_count − 1, or 0xFF", "NOT_FOUND"),
    Limit("MODEL_BEGIN", "size", "1", "slot_bytes",
          "0: BAD_ARGUMENT; too large: MODEL_TOO_LARGE, detail = slot_bytes"),
    Limit("MODEL_BEGIN", "name", "0 bytes", "255 bytes", "longer names are cut by the sender"),
    Limit("MODEL_CHUNK", "data length", "0", "chunk_max (1016)", "BAD_ARGUMENT"),
    Limit("MODEL_CHUNK", "offset + data length", "0", "size (MODEL_BEGIN)", "BAD_ARGUMENT"),
    Limit("MODEL_COMMIT", "slot", "0", "slot_count − 1", "BAD_ARGUMENT"),
    Limit("PING", "payload length", "0", "max_payload", "frame dropped as oversize"),
    Limit("SET_MODE", "mode", "0", "1", "MALFORMED"),
    Limit("TELEMETRY_CONFIG", "period_ms", f"0 (stop) or {TELEMETRY_MIN_PERIOD_MS}",
          "4294967295", "BAD_ARGUMENT"),
    Limit("SIM_SCENARIO", "name", "empty (only ask)", "one of `available`", "BAD_ARGUMENT"),
    Limit("SIM_FAULTS", "drop_rate, flip_rate", "0", f"{MAX_FAULT_RATE:g}",
          "BAD_ARGUMENT (NaN too); nothing changes"),
    Limit("SIM_FAULTS", "power_cut_after", "0 (never)", "4294967295", "any"),
    Limit("`workbench sim`", "--baud", f"{BAUD_MIN}", f"{BAUD_MAX}",
          "error message, exit status 2"),
    Limit("`workbench sim`", "--drop, --flip", "0", f"{MAX_FAULT_RATE:g}",
          "error message, exit status 2"),
    Limit("`workbench sim`", "--rate", f"0 (default) or {MIN_RATE_HZ:g}",
          f"{RATE_FACTOR} × the highest listed rate of the first sensor",
          "error message, exit status 2"),
    Limit("`workbench sim`", "--seed", "0", f"{SEED_MAX}", "error message, exit status 2"),
    Limit("`workbench sim`", "--scenario, --sensor", "—", "the board's scenarios and sensors",
          "error message, exit status 2"),
)
"""Every limit, in the order docs/protocol.md section 5.21 lists them."""


def limits_markdown() -> str:
    """The table of :data:`LIMITS` as it stands in docs/protocol.md."""
    rows = ["| where | field | min | max | outside the range |", "|---|---|---|---|---|"]
    rows += [f"| {x.where} | {x.field} | {x.min} | {x.max} | {x.answer} |" for x in LIMITS]
    return "\n".join(rows) + "\n"
