"""How the bytes of workbench/protocol/golden_vectors.json were derived.

This script does not import ``workbench``: it packs every example with
``struct`` field by field from the layouts of docs/protocol.md (section 5),
computes CRC-32 with ``zlib`` and COBS with a transcription of the reference
C encoder of section 3.2, so the expected bytes are independent of the codec
they check. It also checks its frames against the hex printed in the
document's worked example (section 3.6).

    python tests/derive_golden_vectors.py           # compare with the shipped file
    python tests/derive_golden_vectors.py --write   # rewrite it (review the diff!)

tests/test_protocol_vectors.py runs the comparison too.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "workbench" / "protocol" / "golden_vectors.json"


# ------------------------------------------------------------------ primitives (section 1.3)

def u8(v): return struct.pack("<B", v)
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def i16(v): return struct.pack("<h", v)
def i32(v): return struct.pack("<i", v)
def f32(v): return struct.pack("<f", v)


def s(text: str) -> bytes:
    raw = text.encode("utf-8")
    assert len(raw) <= 255
    return u8(len(raw)) + raw


def cobs(data: bytes) -> bytes:
    """The reference encoder of section 3.2, line by line."""
    out = bytearray(len(data) + len(data) // 254 + 1)
    code_pos, o, code = 0, 1, 1
    for i, byte in enumerate(data):
        if byte == 0:
            out[code_pos] = code
            code_pos, o, code = o, o + 1, 1
        else:
            out[o] = byte
            o += 1
            code += 1
            if code == 0xFF and i + 1 < len(data):
                out[code_pos] = code
                code_pos, o, code = o, o + 1, 1
    out[code_pos] = code
    return bytes(out[:o])


def frame(ftype: int, flags: int, seq: int, req_id: int, payload: bytes) -> dict:
    head = u8(ftype) + u8(flags) + u16(seq) + u16(req_id)
    body = head + payload + u32(zlib.crc32(head + payload))
    return {"type": ftype, "flags": flags, "seq": seq, "req_id": req_id,
            "payload_hex": hx(payload), "body_hex": hx(body), "wire_hex": hx(cobs(body) + b"\0")}


def hx(b: bytes) -> str:
    return b.hex(" ").upper()


# ------------------------------------------------------------------ example values

SHA = bytes(range(0xA0, 0xC0))  # 32 bytes, easy to spot in a dump
BASE_SHA = bytes(range(0x20, 0x40))  # the base of the delta example
ONE = f32(1.0)
SINE_OUT = f32(0.875)


def payloads() -> list[dict]:
    v = []

    def add(name, message, code, role, fields, payload: bytes, note=""):
        item = {"name": name, "message": message, "type": code, "role": role, "fields": fields,
                "payload_hex": hx(payload)}
        if note:
            item["note"] = note
        v.append(item)

    add("hello", "HELLO", 0x01, "request", {"proto_version": 1, "max_payload": 1024},
        u8(1) + u16(1024), "the host's first request (section 3.6)")
    info = {"proto_version": 1, "max_payload": 1024, "capabilities": 0x3F,
            "board_id": "nano33ble", "board_name": "Arduino Nano 33 BLE Sense",
            "firmware": "workbench-sim 1.0", "mcu": "nRF52840", "core": "Cortex-M4F",
            "clock_hz": 64_000_000, "flash_bytes": 1_048_576, "ram_bytes": 262_144,
            "slot_count": 2, "active_slot": 0xFF, "slot_bytes": 131_072, "arena_bytes": 65_536,
            "sensor_count": 1, "uptime_ms": 1234, "serial_number": "0A1B2C3D4E5F"}
    add("info", "HELLO", 0x81, "response", info,
        u8(1) + u16(1024) + u32(0x3F) + s(info["board_id"]) + s(info["board_name"])
        + s(info["firmware"]) + s(info["mcu"]) + s(info["core"]) + u32(64_000_000)
        + u32(1_048_576) + u32(262_144) + u8(2) + u8(0xFF) + u32(131_072) + u32(65_536)
        + u8(1) + u32(1234) + s("0A1B2C3D4E5F"))
    sensor = {"index": 0, "id": "accel", "kind": "accelerometer", "channels": ["x", "y", "z"],
              "units": "g", "dtype": 3, "scale": 0.0001220703125, "rate_hz": 119.0,
              "rates_hz": [59.5, 119.0, 238.0]}
    add("sensor list", "SENSORS", 0x82, "response", {"sensors": [sensor]},
        u8(1) + u8(0) + s("accel") + s("accelerometer") + u8(3) + s("x,y,z") + s("g") + u8(3)
        + f32(0.0001220703125) + f32(119.0) + u8(3) + f32(59.5) + f32(119.0) + f32(238.0))
    add("stream start", "STREAM_START", 0x03, "request",
        {"sensor": 0, "rate_hz": 119.0, "samples_per_frame": 0}, u8(0) + f32(119.0) + u16(0))
    add("stream started", "STREAM_START", 0x83, "response",
        {"sensor": 0, "rate_hz": 119.0, "samples_per_frame": 5}, u8(0) + f32(119.0) + u16(5))
    add("stream stop all", "STREAM_STOP", 0x04, "request", {"sensor": 0xFF}, u8(0xFF))
    add("stream stopped", "STREAM_STOP", 0x84, "response",
        {"sensor": 0, "samples_produced": 595, "samples_dropped": 10},
        u8(0) + u32(595) + u32(10))
    add("infer inline", "INFER", 0x05, "request",
        {"inputs": [{"index": 0, "data": hx(ONE)}]}, u8(1) + u8(0) + u32(4) + ONE,
        "one float32 input of shape (1, 1) holding 1.0")
    tensor = {"dtype": 6, "shape": [1, 1], "scale": 0.0, "zero_point": 0, "data": hx(SINE_OUT)}
    add("result", "INFER", 0x85, "response",
        {"latency_us": 1234, "arena_bytes": 1936, "flags": 1, "outputs": [tensor]},
        u32(1234) + u32(1936) + u8(1) + u8(1) + u8(6) + u8(2) + u32(1) + u32(1) + f32(0.0)
        + i32(0) + u32(4) + SINE_OUT)
    detached = {"dtype": 1, "shape": [1, 600], "scale": 0.00390625, "zero_point": -128,
                "data": ""}
    add("result detached", "INFER", 0x85, "response",
        {"latency_us": 5000, "arena_bytes": 20480, "flags": 3, "outputs": [detached]},
        u32(5000) + u32(20480) + u8(3) + u8(1) + u8(1) + u8(2) + u32(1) + u32(600)
        + f32(0.00390625) + i32(-128) + u32(0),
        "OUTPUTS_DETACHED: nbytes 0, fetch the 600 bytes with GET_OUTPUT")
    add("set input", "SET_INPUT", 0x06, "request",
        {"index": 0, "offset": 0, "data": hx(ONE)}, u8(0) + u32(0) + ONE)
    add("set input answer", "SET_INPUT", 0x86, "response", {"offset": 4}, u32(4))
    add("get output", "GET_OUTPUT", 0x07, "request", {"index": 0, "offset": 512, "length": 88},
        u8(0) + u32(512) + u16(88))
    add("get output answer", "GET_OUTPUT", 0x87, "response",
        {"index": 0, "offset": 512, "data": "01 02 03"}, u8(0) + u32(512) + b"\x01\x02\x03")
    add("model begin", "MODEL_BEGIN", 0x10, "request",
        {"slot": 0xFF, "size": 3164, "sha256": hx(SHA), "name": "sine", "flags": 1},
        u8(0xFF) + u32(3164) + SHA + s("sine") + u8(1))
    add("model begin delta", "MODEL_BEGIN", 0x10, "request",
        {"slot": 0xFF, "size": 140, "sha256": hx(SHA), "name": "sine v2", "flags": 3,
         "image_size": 3184, "base_sha256": hx(BASE_SHA)},
        u8(0xFF) + u32(140) + SHA + s("sine v2") + u8(3) + u32(3184) + BASE_SHA,
        "DELTA | REPLACE_FALLBACK: a 140-byte patch rebuilding a 3184-byte image from the "
        "active image whose SHA-256 is base_sha256 (section 7.5)")
    add("model begun", "MODEL_BEGIN", 0x90, "response",
        {"slot": 1, "resume_offset": 0, "chunk_max": 1016, "window": 4},
        u8(1) + u32(0) + u16(1016) + u8(4))
    add("model chunk", "MODEL_CHUNK", 0x11, "request",
        {"index": 1, "offset": 3048, "data": "1C 00 00 00"}, u8(1) + u32(3048) + bytes([0x1C, 0, 0, 0]))
    add("model chunk answer", "MODEL_CHUNK", 0x91, "response", {"offset": 3052}, u32(3052))
    add("model verified", "MODEL_END", 0x92, "response",
        {"slot": 1, "sha256": hx(SHA), "arena_bytes": 1936}, u8(1) + SHA + u32(1936))
    add("model commit", "MODEL_COMMIT", 0x13, "request", {"slot": 1, "flags": 0}, u8(1),
        "permanent: flags 0 is left out (the 1-byte form older hosts send)")
    add("model commit test", "MODEL_COMMIT", 0x13, "request", {"slot": 1, "flags": 1},
        u8(1) + u8(1), "a test switch: reverts at the next reset unless confirmed")
    add("model committed", "MODEL_COMMIT", 0x93, "response", {"slot": 1}, u8(1))
    add("rolled back", "MODEL_ROLLBACK", 0x94, "response", {"slot": 0}, u8(0))
    add("model confirmed", "MODEL_CONFIRM", 0x96, "response", {"slot": 1}, u8(1))
    slots = [{"index": 0, "state": 4, "size": 2960, "written": 2960, "sha256": hx(bytes(32)),
              "arena_bytes": 1936, "name": "old"},
             {"index": 1, "state": 3, "size": 3164, "written": 3164, "sha256": hx(SHA),
              "arena_bytes": 1936, "name": "sine"}]
    add("slot table", "SLOT_STATUS", 0x95, "response", {"active": 1, "slots": slots},
        u8(1) + u8(2)
        + u8(0) + u8(4) + u32(2960) + u32(2960) + bytes(32) + u32(1936) + s("old")
        + u8(1) + u8(3) + u32(3164) + u32(3164) + SHA + u32(1936) + s("sine"))
    trial = [dict(slots[0]), dict(slots[1], state=6)]
    add("slot table on trial", "SLOT_STATUS", 0x95, "response", {"active": 1, "slots": trial},
        u8(1) + u8(2)
        + u8(0) + u8(4) + u32(2960) + u32(2960) + bytes(32) + u32(1936) + s("old")
        + u8(1) + u8(6) + u32(3164) + u32(3164) + SHA + u32(1936) + s("sine"),
        "slot 1 runs a test switch (TESTING); slot 0 is the model it reverts to")
    add("set mode line", "SET_MODE", 0x22, "request", {"mode": 1, "sensor": 0, "rate_hz": 50.0},
        u8(1) + u8(0) + f32(50.0))
    add("telemetry config", "TELEMETRY_CONFIG", 0x23, "request", {"period_ms": 1000}, u32(1000))
    data = b"".join(i16(x) for x in range(-7, 8))  # 5 samples x 3 channels of int16
    add("samples", "SAMPLES", 0x40, "event",
        {"sensor": 0, "first": 5, "timestamp_us": 42016, "count": 5, "channels": 3, "dtype": 3,
         "data": hx(data)},
        u8(0) + u32(5) + u32(42016) + u16(5) + u8(3) + u8(3) + data,
        "the header of section 5.18, then values -7..7 as int16")
    add("telemetry", "TELEMETRY", 0x41, "event",
        {"uptime_ms": 60_000, "free_ram": 120_000, "cpu_permille": 250,
         "temperature_centi_c": -1250, "inferences": 42, "last_latency_us": 1234,
         "bad_frames_rx": 3, "samples_dropped": 10},
        u32(60_000) + u32(120_000) + u16(250) + i16(-1250) + u32(42) + u32(1234) + u32(3)
        + u32(10))
    add("log", "LOG", 0x42, "event",
        {"level": 2, "message": "booted the fallback model in slot 0"},
        u8(2) + s("booted the fallback model in slot 0"))
    add("error", "ERROR", 0xFF, "error",
        {"code": 2, "detail": 0, "message": "unknown request type 0x3f"},
        u16(2) + u32(0) + s("unknown request type 0x3f"))
    add("error with detail", "ERROR", 0xFF, "error",
        {"code": 11, "detail": 1016, "message": "expected offset 1016"},
        u16(11) + u32(1016) + s("expected offset 1016"))
    add("error delta base mismatch", "ERROR", 0xFF, "error",
        {"code": 24, "detail": 0, "message": "slot 0 runs 'sine'"},
        u16(24) + u32(0) + s("slot 0 runs 'sine'"))
    add("scenario request", "SIM_SCENARIO", 0x30, "request", {"text": "walking"}, s("walking"))
    add("scenario", "SIM_SCENARIO", 0xB0, "response",
        {"current": "walking", "available": ["idle", "walking", "running"]},
        s("walking") + u8(3) + s("idle") + s("walking") + s("running"))
    add("faults", "SIM_FAULTS", 0x31, "request",
        {"drop_rate": 0.0078125, "flip_rate": 0.0, "power_cut_after": 2048, "disconnect": False},
        f32(0.0078125) + f32(0.0) + u32(2048) + u8(0))
    add("utf-8 text", "LOG", 0x42, "event", {"level": 1, "message": "25 °C ✓"},
        u8(1) + s("25 °C ✓"), "str is a byte count, then UTF-8 (° is 2 bytes, ✓ is 3)")
    return v


# ------------------------------------------------------------------ frames (sections 3.6, 4.4)

DOC_WIRE = {  # as printed in docs/protocol.md section 3.6, checked below
    "hello": "02 01 01 01 02 01 02 01 06 04 73 87 BD CA 00",
    "ping": "02 20 02 02 02 03 07 68 69 89 8B 63 5A 00",
    "ping answer": "02 A0 02 02 02 03 07 68 69 53 0E 58 09 00",
    "ping retry": "04 20 01 03 02 03 07 68 69 98 53 48 37 00",
    "ping answer from the duplicate store": "02 A0 02 03 02 03 07 68 69 F6 DD 04 C2 00",
    "unknown request": "02 3F 02 04 02 04 05 88 46 E0 AF 00",
    "unknown request error": "02 FF 02 04 02 04 02 02 01 01 01 01 1F 19 75 6E 6B 6E 6F 77 6E "
                             "20 72 65 71 75 65 73 74 20 74 79 70 65 20 30 78 33 66 A1 1C E7 "
                             "BE 00",
}


def frames() -> list[dict]:
    err = u16(2) + u32(0) + s("unknown request type 0x3f")
    rows = [
        ("hello", "HELLO seq 0, req_id 1 (the worked example)", 0x01, 0, 0, 1, u8(1) + u16(1024)),
        ("ping", "PING seq 2, req_id 3, payload \"hi\"", 0x20, 0, 2, 3, b"hi"),
        ("ping answer", "its answer, device seq 2", 0xA0, 0, 2, 3, b"hi"),
        ("ping retry", "the same PING re-sent: FLAG_RETRY, seq 3", 0x20, 1, 3, 3, b"hi"),
        ("ping answer from the duplicate store", "answered again with a fresh seq 3",
         0xA0, 0, 3, 3, b"hi"),
        ("unknown request", "request type 0x3F, seq 4, req_id 4, no payload",
         0x3F, 0, 4, 4, b""),
        ("unknown request error", "ERROR UNKNOWN_TYPE, device seq 4", 0xFF, 0, 4, 4, err),
        ("samples event", "SAMPLES event (req_id 0), payload of vector \"samples\"", 0x40, 0,
         7, 0, bytes.fromhex(next(p for p in payloads() if p["name"] == "samples")
                             ["payload_hex"].replace(" ", ""))),
        ("long payload", "PING with 300 bytes 0x01..: COBS blocks of 254", 0x20, 0, 9, 9,
         bytes([1 + i % 255 for i in range(300)])),
    ]
    out = []
    for name, note, *args in rows:
        f = {"name": name, "note": note, **frame(*args)}
        if name in DOC_WIRE:
            assert f["wire_hex"] == DOC_WIRE[name], (name, f["wire_hex"])
        out.append(f)
    return out


def cobs_vectors() -> list[dict]:
    cases = [("empty", b""), ("one zero", b"\x00"), ("zero inside", b"\x11\x22\x00\x33"),
             ("254 non-zero bytes", bytes(range(1, 255))),
             ("255 non-zero bytes", bytes(range(1, 256))),
             ("zeros only", b"\x00\x00\x00"), ("trailing zero", b"\x11\x00")]
    return [{"name": n, "decoded_hex": hx(d), "encoded_hex": hx(cobs(d))} for n, d in cases]


def line_vectors() -> list[dict]:
    def sample(*v): return {"kind": "sample", "values": [float(x) for x in v]}
    def header(*n): return {"kind": "header", "names": list(n)}
    def text(t): return {"kind": "text", "text": t}
    return [
        {"name": "header then samples", "input": "Red,Green,Blue\r\n12,34,56\r\n13,35,57\r\n",
         "events": [header("Red", "Green", "Blue"), sample(12, 34, 56), sample(13, 35, 57)]},
        {"name": "any run of separators", "input": "1\t2; 3  4,,5\n",
         "events": [sample(1, 2, 3, 4, 5)]},
        {"name": "number forms", "input": "+3.,1e-3,-0.5,12\n",
         "events": [sample(3.0, 0.001, -0.5, 12.0)]},
        {"name": "text is never data", "input": "Failed to initialize IMU!\n0.5 1.5\n",
         "events": [text("Failed to initialize IMU!"), sample(0.5, 1.5)]},
        {"name": "width change is text", "input": "1,2\n3,4,5\n6,7\n",
         "events": [sample(1, 2), text("3,4,5"), sample(6, 7)]},
        {"name": "NUL ends a line", "input": "1,2\u00003,4\n",
         "events": [sample(1, 2), sample(3, 4)]},
        {"name": "header of another width is text", "input": "a,b\n1,2,3\n",
         "events": [text("a,b"), sample(1, 2, 3)]},
        {"name": "a second header replaces the first", "input": "x,y\nu,v\n1,2\n",
         "events": [text("x,y"), header("u", "v"), sample(1, 2)]},
        {"name": "blank lines and spaces", "input": "\r\n   \r\n  7 \r\n",
         "events": [sample(7)]},
        {"name": "a header after samples is text", "input": "1,2\nx,y\n",
         "events": [sample(1, 2), text("x,y")]},
        {"name": "no line break yet", "input": "1,2\n3,", "events": [sample(1, 2)]},
    ]


def derive() -> dict:
    return {
        "format": "workbench protocol golden vectors",
        "version": 1,
        "protocol_version": 1,
        "description": "Examples of docs/protocol.md as data: see its section 11 for the "
                       "meaning of each key.",
        "crc32": [{"name": "check", "input_hex": hx(b"123456789"),
                   "crc32": f"0x{zlib.crc32(b'123456789'):08X}"}],
        "cobs": cobs_vectors(),
        "payloads": payloads(),
        "frames": frames(),
        "line_mode": line_vectors(),
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    text = render(derive())
    if "--write" in sys.argv:
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT}")
    else:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("golden vectors match the derivation" if same else "golden vectors DIFFER")
        sys.exit(0 if same else 1)
