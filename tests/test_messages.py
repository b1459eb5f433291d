"""Payload codecs of the framed protocol (workbench.protocol.messages).

Every payload dataclass round-trips through encode()/decode(); every decode
fails with MalformedPayload, and nothing else, on short, long or arbitrary
input; f32 fields keep exactly the float32-rounded value.
"""

from __future__ import annotations

import dataclasses
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.protocol import messages as m
from workbench.protocol.messages import (
    RESULT_LATENCY_ESTIMATED,
    RESULT_OUTPUTS_DETACHED,
    SAMPLES_HEADER,
    Capability,
    DType,
    MalformedPayload,
    Mode,
    Reader,
    SlotState,
    Writer,
)

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

F32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]


def f32(x: float) -> float:
    """The value a float has after a trip through an IEEE-754 binary32."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


# ------------------------------------------------------------------ strategies

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
i16 = st.integers(-0x8000, 0x7FFF)
i32 = st.integers(-0x80000000, 0x7FFFFFFF)
# exactly representable in binary32 (so == holds after the trip); infinities too
f32s = st.floats(width=32, allow_nan=False)
# a str field: at most 255 UTF-8 bytes (60 code points are at most 240 bytes)
text = st.text(max_size=60)
sha = st.binary(min_size=32, max_size=32)
dtypes = st.sampled_from(list(DType))
# channel names: non-empty, no comma (the list goes on the wire joined by commas)
channel_name = st.text(st.characters(blacklist_characters=",", blacklist_categories=["Cs"]),
                       min_size=1, max_size=6)

sensor_desc = st.builds(
    m.SensorDesc, index=u8, id=text, kind=text,
    channels=st.lists(channel_name, max_size=8).map(tuple),
    units=text, dtype=dtypes, scale=f32s, rate_hz=f32s,
    rates_hz=st.lists(f32s, max_size=10).map(tuple))


@st.composite
def samples(draw):
    dtype = draw(dtypes)
    count = draw(st.integers(0, 40))
    channels = draw(st.integers(0, 6))
    data = draw(st.binary(min_size=count * channels * dtype.size,
                          max_size=count * channels * dtype.size))
    return m.Samples(draw(u8), draw(u32), draw(u32), count, channels, dtype, data)


tensor = st.builds(m.Tensor, dtype=dtypes,
                   shape=st.lists(st.integers(0, 2**32 - 1), max_size=5).map(tuple),
                   data=st.binary(max_size=64), scale=f32s, zero_point=i32)

slot_info = st.builds(m.SlotInfo, index=u8, state=st.sampled_from(list(SlotState)), size=u32,
                      written=u32, sha256=sha, arena_bytes=u32, name=text)

STRATEGIES: dict[type, st.SearchStrategy] = {
    m.Hello: st.builds(m.Hello, proto_version=u8, max_payload=u16),
    m.Info: st.builds(
        m.Info, proto_version=u8, max_payload=u16, capabilities=u32.map(Capability),
        board_id=text, board_name=text, firmware=text, mcu=text, core=text, clock_hz=u32,
        flash_bytes=u32, ram_bytes=u32, slot_count=u8, active_slot=u8, slot_bytes=u32,
        arena_bytes=u32, sensor_count=u8, uptime_ms=u32, serial_number=text),
    m.SensorList: st.lists(sensor_desc, max_size=4).map(lambda s: m.SensorList(tuple(s))),
    m.StreamStart: st.builds(m.StreamStart, sensor=u8, rate_hz=f32s, samples_per_frame=u16),
    m.StreamStarted: st.builds(m.StreamStarted, sensor=u8, rate_hz=f32s,
                               samples_per_frame=u16),
    m.StreamStop: st.builds(m.StreamStop, sensor=u8),
    m.StreamStopped: st.builds(m.StreamStopped, sensor=u8, samples_produced=u32,
                               samples_dropped=u32),
    m.Samples: samples(),
    m.Infer: st.lists(st.tuples(u8, st.binary(max_size=64)), max_size=5)
              .map(lambda x: m.Infer(tuple(x))),
    m.Result: st.builds(m.Result, latency_us=u32, arena_bytes=u32,
                        flags=st.sampled_from([0, RESULT_LATENCY_ESTIMATED,
                                               RESULT_OUTPUTS_DETACHED,
                                               RESULT_LATENCY_ESTIMATED
                                               | RESULT_OUTPUTS_DETACHED]) | u8,
                        outputs=st.lists(tensor, max_size=4).map(tuple)),
    m.Chunk: st.builds(m.Chunk, index=u8, offset=u32, data=st.binary(max_size=300)),
    m.GetOutput: st.builds(m.GetOutput, index=u8, offset=u32, length=u16),
    m.Offset: st.builds(m.Offset, offset=u32),
    m.ModelBegin: st.builds(m.ModelBegin, slot=u8, size=u32, sha256=sha, name=text,
                            flags=st.sampled_from([m.BeginFlag(0),
                                                   m.BeginFlag.REPLACE_FALLBACK]))
                  | st.builds(m.ModelBegin, slot=u8, size=u32, sha256=sha, name=text,
                              flags=st.sampled_from([m.BeginFlag.DELTA,
                                                     m.BeginFlag.DELTA
                                                     | m.BeginFlag.REPLACE_FALLBACK]),
                              image_size=u32, base_sha256=sha),
    m.ModelBegun: st.builds(m.ModelBegun, slot=u8, resume_offset=u32, chunk_max=u16,
                            window=u8),
    m.ModelVerified: st.builds(m.ModelVerified, slot=u8, sha256=sha, arena_bytes=u32),
    m.SlotRef: st.builds(m.SlotRef, slot=u8),
    m.ModelCommit: st.builds(m.ModelCommit, slot=u8,
                             flags=st.sampled_from([0, 1]).map(m.CommitFlag) | u8),
    m.SlotInfo: slot_info,
    m.SlotTable: st.builds(m.SlotTable, active=u8,
                           slots=st.lists(slot_info, max_size=4).map(tuple)),
    m.SetMode: st.builds(m.SetMode, mode=st.sampled_from(list(Mode)), sensor=u8,
                         rate_hz=f32s),
    m.TelemetryConfig: st.builds(m.TelemetryConfig, period_ms=u32),
    m.Telemetry: st.builds(m.Telemetry, uptime_ms=u32, free_ram=u32, cpu_permille=u16,
                           temperature_centi_c=i16, inferences=u32, last_latency_us=u32,
                           bad_frames_rx=u32, samples_dropped=u32),
    m.Log: st.builds(m.Log, level=u8, message=text),
    m.Error: st.builds(m.Error, code=u16, detail=u32, message=text),
    m.Text: st.builds(m.Text, text=text),
    m.ScenarioState: st.builds(m.ScenarioState, current=text,
                          available=st.lists(text, max_size=6).map(tuple)),
    m.Faults: st.builds(m.Faults, drop_rate=f32s, flip_rate=f32s, power_cut_after=u32,
                        disconnect=st.booleans()),
}

CODECS = sorted(STRATEGIES, key=lambda c: c.__name__)
"""Every codec whose ``decode`` must consume the whole payload (all but Chunk)."""
STRICT_END = [c for c in CODECS if c not in (m.Chunk, m.ModelCommit)]
"""(ModelCommit's flags byte is optional when 0: its own test below.)"""


def test_every_payload_class_is_covered():
    """A new payload dataclass in workbench.protocol must get a strategy here."""
    payload_classes = {obj for obj in vars(m).values()
                       if isinstance(obj, type) and dataclasses.is_dataclass(obj)
                       and obj.__module__.startswith("workbench.protocol.")
                       and hasattr(obj, "decode")}
    assert payload_classes == set(STRATEGIES)


def f32_rounded(value):
    """``value`` with every float in it (dataclass fields, tuples) rounded to f32."""
    if isinstance(value, float):
        return f32(value)
    if isinstance(value, tuple):
        return tuple(f32_rounded(v) for v in value)
    if isinstance(value, m.SensorDesc):  # its floats come back as the shortest decimal
        return dataclasses.replace(value, scale=m._f32_tidy(value.scale),
                                   rate_hz=m._f32_tidy(value.rate_hz),
                                   rates_hz=tuple(m._f32_tidy(r) for r in value.rates_hz))
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: f32_rounded(getattr(value, f.name))
                                             for f in dataclasses.fields(value)})
    return value


def expected_after_trip(obj):
    """What decode(encode(obj)) must give: floats rounded to f32, and outputs of
    a Result flagged detached travel without their bytes."""
    if isinstance(obj, m.Result) and obj.flags & RESULT_OUTPUTS_DETACHED:
        obj = dataclasses.replace(
            obj, outputs=tuple(dataclasses.replace(t, data=b"") for t in obj.outputs))
    return f32_rounded(obj)


# ------------------------------------------------------------------ round trip

@pytest.mark.parametrize("cls", CODECS, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_round_trip(cls, data):
    obj = data.draw(STRATEGIES[cls])
    payload = obj.encode()
    assert isinstance(payload, bytes)
    back = cls.decode(payload)
    assert type(back) is cls
    assert back == expected_after_trip(obj)
    assert back.encode() == expected_after_trip(obj).encode()


REPRESENTATIVE = [
    m.Hello(),
    m.Hello(1, 256),
    m.Info(1, 1024, Capability.STREAM | Capability.INFER | Capability.SIMULATED,
           "nano33ble", "Arduino Nano 33 BLE Sense", "wb-fw 0.1.0", "nRF52840", "cortex-m4f",
           64_000_000, 1 << 20, 256 << 10, 2, 0, 400_000, 100_000, 3, 12_345, "SIM-0001"),
    m.SensorList((m.SensorDesc(0, "imu", "accelerometer", ("x", "y", "z"), "g", DType.INT16,
                               1 / 4096, 100.0, (50.0, 100.0, 200.0)),
                  m.SensorDesc(1, "mic", "microphone", ("pcm",), "", DType.INT16, 1.0,
                               16000.0),
                  m.SensorDesc(2, "none", "", (), "", DType.FLOAT32, 0.0, 0.0))),
    m.SensorList(()),
    m.StreamStart(0),
    m.StreamStart(2, 50.0, 32),
    m.StreamStarted(2, 50.0, 32),
    m.StreamStopped(2, 1000, 3),
    m.Samples(0, 12, 34_000, 2, 3, DType.INT16, bytes(range(12))),
    m.Samples(0, 0, 0, 0, 3, DType.FLOAT32, b""),
    m.Infer(),
    m.Infer(((0, b"\x01\x02\x03"), (1, b""))),
    m.Result(1234, 5000, RESULT_LATENCY_ESTIMATED,
             (m.Tensor(DType.INT8, (1, 4), b"\x01\x02\x03\x04", 0.00390625, -128),
              m.Tensor(DType.FLOAT32, (1,), b"\x00\x00\x80\x3f"))),
    m.Result(1234, 5000, RESULT_OUTPUTS_DETACHED,
             (m.Tensor(DType.INT8, (1, 4), b"\x01\x02\x03\x04", 0.00390625, -128),)),
    m.Result(0, 0, 0, ()),
    m.Chunk(0, 0, b""),
    m.Chunk(1, 4096, b"\x00" * 200),
    m.GetOutput(0, 128, 512),
    m.Offset(0xFFFFFFFF),
    m.ModelBegin(1, 20_000, bytes(range(32)), "sine.tflite"),
    m.ModelBegin(0, 1, b"\xff" * 32),
    m.ModelBegin(m.NO_SLOT, 140, bytes(range(32)), "v2", m.BeginFlag.DELTA, 3184, b"\x01" * 32),
    m.ModelBegun(1, 4096, 1000, 4),
    m.ModelVerified(1, bytes(range(32)), 2048),
    m.SlotRef(m.NO_SLOT),
    m.ModelCommit(1),
    m.ModelCommit(0, m.CommitFlag.TEST),
    m.StreamStop(m.ALL_SENSORS),
    m.SlotInfo(1, SlotState.RECEIVING, 3164, 1016, bytes(range(32)), 0, "sine"),
    m.SlotTable(0, (m.SlotInfo(0, SlotState.ACTIVE, 100, 100, bytes(32), 2048, "a"),
                    m.SlotInfo(1, SlotState.EMPTY, 0, 0, b"\x00" * 32, 0, ""))),
    m.SetMode(Mode.LINE, 1, 100.0),
    m.SetMode(Mode.FRAMED),
    m.TelemetryConfig(1000),
    m.Telemetry(1, 2, 3, -2750, 5, 6, 7, 8),
    m.Log(2, "low battery"),
    m.Error(m.ErrorCode.MODEL_TOO_LARGE, 123_456, "model needs 300 KiB, slot holds 256 KiB"),
    m.Text("walking"),
    m.ScenarioState("idle", ("idle", "walking", "running")),
    m.ScenarioState(""),
    m.Faults(),
    m.Faults(0.25, 0.001, 4096, True),
    m.Log(0, "héllo ✓ 😀"),
]


def test_representative_table_covers_every_codec():
    assert {type(o) for o in REPRESENTATIVE} == set(STRATEGIES)


@pytest.mark.parametrize("obj", REPRESENTATIVE, ids=lambda o: type(o).__name__)
def test_round_trip_representative(obj):
    back = type(obj).decode(obj.encode())
    assert back == expected_after_trip(obj)
    assert back.encode() == obj.encode()


def test_result_detached_outputs_carry_no_bytes():
    t = m.Tensor(DType.UINT8, (2, 2), b"\x01\x02\x03\x04", 0.5, 3)
    inline = m.Result(10, 20, 0, (t,)).encode()
    detached = m.Result(10, 20, RESULT_OUTPUTS_DETACHED, (t,)).encode()
    assert len(inline) - len(detached) == 4
    back = m.Result.decode(detached)
    assert back.flags & RESULT_OUTPUTS_DETACHED
    assert back.outputs[0].data == b"" and back.outputs[0].shape == (2, 2)
    assert back.outputs[0].nbytes == 4  # still says how much to fetch with GET_OUTPUT
    assert m.Result.decode(inline).outputs == (t,)


@pytest.mark.parametrize("value", [0.1, 1 / 3, 2.0 ** -140, 1e-45, 3.4e38, -123.456789,
                                   F32_MAX, math.inf, -math.inf])
def test_f32_fields_keep_the_float32_rounded_value(value):
    rounded = f32(value)
    assert m.StreamStart.decode(m.StreamStart(1, value, 2).encode()).rate_hz == rounded
    assert m.SetMode.decode(m.SetMode(Mode.LINE, 0, value).encode()).rate_hz == rounded
    back = m.Faults.decode(m.Faults(value, -value, 0, False).encode())
    assert (back.drop_rate, back.flip_rate) == (rounded, -rounded)
    desc = m.SensorDesc(0, "s", "k", ("a",), "u", DType.INT8, value, value, (value,))
    got = m.SensorList.decode(m.SensorList((desc,)).encode()).sensors[0]
    # sensor floats read back as the shortest decimal of the same binary32 (0.000122)
    assert (f32(got.scale), f32(got.rate_hz), f32(got.rates_hz[0])) == (rounded,) * 3
    assert len(repr(got.scale)) <= len(repr(rounded))
    tensor = m.Tensor(DType.INT8, (1,), b"\x00", value, 0)
    assert m.Result.decode(m.Result(0, 0, 0, (tensor,)).encode()).outputs[0].scale == rounded


@SETTINGS
@given(st.floats(min_value=-F32_MAX, max_value=F32_MAX, allow_nan=False))
def test_f32_rounding_of_any_double(value):
    assert m.StreamStarted.decode(m.StreamStarted(0, value, 0).encode()).rate_hz == f32(value)


def test_f32_nan_survives():
    assert math.isnan(m.StreamStart.decode(m.StreamStart(0, math.nan).encode()).rate_hz)


# ------------------------------------------------------------------ malformed input

def check_decodes_or_raises_malformed(cls, payload: bytes):
    """decode() may return an instance or raise MalformedPayload, nothing else."""
    try:
        out = cls.decode(payload)
    except MalformedPayload:
        return None
    assert type(out) is cls
    return out


@pytest.mark.parametrize("cls", CODECS, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_every_truncation_is_malformed(cls, data):
    payload = data.draw(STRATEGIES[cls]).encode()
    # Chunk's data is "the rest": only a cut inside its 5-byte header is detectable
    # ModelCommit's flags byte is optional: the 1-byte form is a permanent commit
    shortest_valid = {m.Chunk: 5, m.ModelCommit: 1}.get(cls, len(payload))
    for n in range(min(shortest_valid, len(payload))):
        with pytest.raises(MalformedPayload):
            cls.decode(payload[:n])


@pytest.mark.parametrize("cls", STRICT_END, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_trailing_bytes_are_malformed(cls, data):
    payload = data.draw(STRATEGIES[cls]).encode()
    extra = data.draw(st.binary(min_size=1, max_size=8))
    with pytest.raises(MalformedPayload):
        cls.decode(payload + extra)


def test_model_commit_flags_are_optional_and_nothing_follows_them():
    assert m.ModelCommit.decode(b"\x01") == m.ModelCommit(1, m.CommitFlag(0))  # older hosts
    assert m.ModelCommit(1).encode() == b"\x01"  # reaches firmware older than the flags
    assert m.ModelCommit.decode(b"\x01\x01").flags == m.CommitFlag.TEST
    for bad in (b"", b"\x01\x01\x00"):
        with pytest.raises(MalformedPayload, match="MODEL_COMMIT"):
            m.ModelCommit.decode(bad)


def test_chunk_takes_trailing_bytes_as_data():
    assert m.Chunk.decode(m.Chunk(1, 2, b"ab").encode() + b"c") == m.Chunk(1, 2, b"abc")


@pytest.mark.parametrize("cls", CODECS, ids=lambda c: c.__name__)
@SETTINGS
@given(payload=st.binary(max_size=200))
def test_random_bytes_only_raise_malformed(cls, payload):
    check_decodes_or_raises_malformed(cls, payload)


@pytest.mark.parametrize("cls", CODECS, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_mutated_encodings_only_raise_malformed(cls, data):
    """Random bytes rarely get past the first length field; mutating a valid
    encoding reaches the deeper checks (UTF-8, dtype and state codes, counts)."""
    payload = bytearray(data.draw(STRATEGIES[cls]).encode())
    if not payload:
        return
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.sampled_from([0x00, 0x01, 0x07, 0x2C, 0x80, 0xC3, 0xFF])
                               | u8)
    check_decodes_or_raises_malformed(cls, bytes(payload))


@pytest.mark.parametrize("cls, payload", [
    (m.SensorList, b"\x01" + b"\x00\x00\x00\x00\x00\x00" + b"\x07" + bytes(12)),  # dtype 7
    (m.SensorList, b"\x01\x00\x00\x00\x02\x01a\x00\x01" + bytes(9)),  # 2 channels, 1 name
    (m.Samples, SAMPLES_HEADER.pack(0, 0, 0, 0, 0, 0)),  # dtype 0
    (m.Samples, SAMPLES_HEADER.pack(0, 0, 0, 0, 0, 7)),
    (m.Result, bytes(9) + b"\x01" + b"\x09\x00" + bytes(12)),  # tensor dtype 9
    (m.SlotTable, b"\x00\x01" + b"\x00\x08" + bytes(45)),  # slot state 8
    (m.SetMode, b"\x02\x00" + bytes(4)),  # mode 2
    (m.Log, b"\x00\x02\xc3\x28"),  # invalid UTF-8
    (m.Text, b"\x01\xff"),
    (m.Error, bytes(6) + b"\x03\xed\xa0\x80"),  # an encoded surrogate is not UTF-8
    (m.Info, bytes(7) + b"\x01\x80" + bytes(100)),
    (m.ScenarioState, b"\x00\x01\x02\xe2\x82"),  # truncated sequence inside the string
    (m.Infer, b"\x01\x00\x05\x00\x00\x00abc"),  # input longer than the payload
    (m.Result, bytes(9) + b"\x01\x01\x00" + bytes(8) + b"\x10\x00\x00\x00"),  # data short
])
def test_specific_malformations(cls, payload):
    with pytest.raises(MalformedPayload):
        cls.decode(payload)


def test_model_begin_carries_the_delta_fields_only_with_the_delta_flag():
    plain = m.ModelBegin(1, 3164, bytes(32), "sine", m.BeginFlag.REPLACE_FALLBACK)
    delta = m.ModelBegin(1, 140, bytes(32), "sine", m.BeginFlag.DELTA, 3164, b"\x07" * 32)
    assert len(delta.encode()) == len(plain.encode()) + 4 + 32
    with pytest.raises(MalformedPayload, match="ends early"):  # DELTA set, fields missing
        m.ModelBegin.decode(plain.encode()[:-1] + bytes([m.BeginFlag.DELTA]))
    with pytest.raises(ValueError, match="only with BeginFlag.DELTA"):
        m.ModelBegin(1, 3164, bytes(32), "sine", image_size=3164).encode()


def test_malformed_payload_is_a_value_error():
    assert issubclass(MalformedPayload, ValueError)


# ------------------------------------------------------------------ Samples length check

@SETTINGS
@given(data=st.data())
def test_samples_rejects_inconsistent_data_length(data):
    dtype = data.draw(dtypes)
    count = data.draw(st.integers(0, 50))
    channels = data.draw(st.integers(0, 8))
    need = count * channels * dtype.size
    length = data.draw(st.integers(0, need + 20).filter(lambda n: n != need))
    payload = SAMPLES_HEADER.pack(1, 2, 3, count, channels, dtype) + bytes(length)
    with pytest.raises(MalformedPayload):
        m.Samples.decode(payload)
    ok = SAMPLES_HEADER.pack(1, 2, 3, count, channels, dtype) + bytes(need)
    assert m.Samples.decode(ok).data == bytes(need)


def test_samples_length_examples():
    good = m.Samples(0, 0, 0, 4, 3, DType.INT16, bytes(24))
    assert m.Samples.decode(good.encode()) == good
    for bad_len in (0, 12, 23, 25, 48):
        with pytest.raises(MalformedPayload):
            m.Samples.decode(SAMPLES_HEADER.pack(0, 0, 0, 4, 3, DType.INT16) + bytes(bad_len))


# ------------------------------------------------------------------ Writer / Reader

@pytest.mark.parametrize("s, expected_len", [
    ("a" * 255, 255),
    ("a" * 256, 255),
    ("a" * 1000, 255),
    ("é" * 200, 254),          # 2-byte sequences: 255 would split the 128th
    ("€" * 100, 255),          # 3-byte sequences: 85 fit exactly
    ("a" + "€" * 100, 253),    # 255 would split the 85th euro sign
    ("😀" * 70, 252),          # 4-byte sequences: 63 fit, 3 bytes of the 64th dropped
    ("aa" + "😀" * 70, 254),
    ("", 0),
])
def test_writer_str_truncates_on_a_character_boundary(s, expected_len):
    raw = Writer().str(s).bytes()
    assert raw[0] == expected_len == len(raw) - 1
    text_back = raw[1:].decode("utf-8")  # strict: no half sequence
    assert s.startswith(text_back)
    assert Reader(raw, "t").str() == text_back


@SETTINGS
@given(st.text(max_size=400))
def test_writer_str_property(s):
    encoded = s.encode("utf-8")
    raw = Writer().str(s).bytes()
    n = raw[0]
    assert n == len(raw) - 1 <= 255
    body = raw[1:]
    assert encoded.startswith(body)
    assert s.startswith(body.decode("utf-8"))
    if len(encoded) <= 255:
        assert body == encoded
    else:
        assert n >= 252  # at most 3 bytes of a 4-byte sequence are dropped
    r = Reader(raw, "t")
    assert r.str() == body.decode("utf-8")
    r.end()


def test_writer_reader_primitives():
    w = (Writer().u8(0xAB).u16(0xBEEF).u32(0xDEADBEEF).u32(-1).i16(-2).i32(-3).f32(1.5)
         .str("hi").raw(b"\x00\x01"))
    payload = w.bytes()
    assert payload == (b"\xab\xef\xbe\xef\xbe\xad\xde\xff\xff\xff\xff\xfe\xff"
                       b"\xfd\xff\xff\xff\x00\x00\xc0\x3f\x02hi\x00\x01")
    r = Reader(payload, "prim")
    assert (r.u8(), r.u16(), r.u32(), r.u32(), r.i16(), r.i32(), r.f32(), r.str()) == (
        0xAB, 0xBEEF, 0xDEADBEEF, 0xFFFFFFFF, -2, -3, 1.5, "hi")
    assert r.raw(1) == b"\x00"
    with pytest.raises(MalformedPayload):
        r.end()
    assert r.rest() == b"\x01"
    r.end()
    with pytest.raises(MalformedPayload):
        r.u8()


def test_reader_errors_name_the_message():
    with pytest.raises(MalformedPayload, match="HELLO"):
        m.Hello.decode(b"\x01")
    with pytest.raises(MalformedPayload, match="HELLO"):
        m.Hello.decode(b"\x01\x00\x04\x00")
