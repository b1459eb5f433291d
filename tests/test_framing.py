"""Framing layer: COBS, CRC-32, Frame encoding and the incremental FrameParser.

Property-based (hypothesis) where a property can be stated; the guarantees
asserted are the ones the code and its docstrings actually give:

* COBS is a bijection from bytes to zero-free bytes, with bounded overhead.
* CRC-32 detects every error of up to 3 bits and every burst of up to 32 bits
  *in the body* (before COBS); an error on the wire (after COBS) is detected
  with probability 1 - 2**-32 only, but no test here may ever see it accepted.
* The parser never raises, returns exactly the frames it counts, and accounts
  for every byte it is fed: accepted, idle fill (0x00 between frames) or
  ``bytes_discarded``.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.protocol.framing import (
    ABSOLUTE_MAX_PAYLOAD,
    DEFAULT_MAX_PAYLOAD,
    DELIMITER,
    HEADER_SIZE,
    MIN_BODY,
    Frame,
    FrameParser,
    ParserStats,
    cobs_decode,
    cobs_encode,
    crc32,
    encode_frame,
    max_encoded_size,
)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
HEAVY = settings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------ strategies / helpers

def _runs(max_run: int = 600, max_runs: int = 6) -> st.SearchStrategy[bytes]:
    """Concatenated runs of one byte value: long zero-free runs hit COBS's
    254-byte block limit, zero runs its empty blocks."""
    return st.lists(st.tuples(st.integers(0, 255), st.integers(1, max_run)),
                    max_size=max_runs).map(lambda rs: b"".join(bytes([v]) * n for v, n in rs))


SPECIAL_DATA = [
    b"",
    b"\x00",
    b"\x00" * 2,
    b"\x00" * 300,
    b"\x01",
    b"\x01" * 253,
    b"\x01" * 254,
    b"\x01" * 255,
    b"\x01" * 508,
    b"\x01" * 509,
    b"\xff" * 254 + b"\x00",
    b"\x00" + b"\xff" * 254,
    b"\x01" * 254 + b"\x00" + b"\x01" * 254,
    b"\x00" + b"\x01" * 253 + b"\x00",
    bytes(range(256)) * 3,
]

cobs_data = st.one_of(st.binary(max_size=2000), _runs(), st.sampled_from(SPECIAL_DATA))


def payloads(max_payload: int = DEFAULT_MAX_PAYLOAD) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=max_payload),
                     _runs(max_run=max_payload).map(lambda b: b[:max_payload]))


def frames(max_payload: int = DEFAULT_MAX_PAYLOAD) -> st.SearchStrategy[Frame]:
    return st.builds(Frame,
                     type=st.integers(0, 255),
                     seq=st.integers(0, 0xFFFF),
                     req_id=st.integers(0, 0xFFFF),
                     payload=payloads(max_payload),
                     flags=st.integers(0, 255))


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """Split ``data`` at ``points`` (any order, duplicates give empty chunks)."""
    bounds = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def draw_chunks(draw, data: bytes) -> list[bytes]:
    points = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return cut(data, points)


def feed_all(parser: FrameParser, chunks) -> list[Frame]:
    out: list[Frame] = []
    for c in chunks:
        out += parser.feed(c)
    return out


def same_content(a: Frame, b: Frame) -> bool:
    return (a.type, a.seq, a.req_id, a.flags, a.payload) == (b.type, b.seq, b.req_id,
                                                             b.flags, b.payload)


def nonzero_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(1, 256) for _ in range(n))


# ------------------------------------------------------------------ COBS

@pytest.mark.parametrize("data", SPECIAL_DATA, ids=lambda d: f"len{len(d)}")
def test_cobs_round_trip_edge_cases(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(data) + 1 <= len(enc) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(enc) == data


def test_cobs_known_vectors():
    # the examples of Cheshire & Baker's paper / Wikipedia's table
    assert cobs_encode(b"") == b"\x01"
    assert cobs_encode(b"\x00") == b"\x01\x01"
    assert cobs_encode(b"\x00\x00") == b"\x01\x01\x01"
    assert cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert cobs_encode(b"\x11\x22\x33\x44") == b"\x05\x11\x22\x33\x44"
    assert cobs_encode(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"
    block = bytes(range(1, 255))  # 254 non-zero bytes
    assert cobs_encode(block) == b"\xff" + block
    assert cobs_encode(b"\x00" + block) == b"\x01\xff" + block
    assert cobs_encode(bytes(range(1, 256))) == b"\xff" + block + b"\x02\xff"


@SETTINGS
@given(cobs_data)
def test_cobs_round_trip(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1  # the documented bound
    assert len(enc) >= len(data) + 1
    assert cobs_decode(enc) == data


@SETTINGS
@given(st.binary(max_size=600))
def test_cobs_decode_never_raises_anything_but_value_error(data):
    try:
        out = cobs_decode(data)
    except ValueError:
        return
    assert isinstance(out, bytes)


@SETTINGS
@given(cobs_data)
def test_cobs_decode_rejects_embedded_zero(data):
    enc = bytearray(cobs_encode(data))
    enc[len(enc) // 2] = 0
    with pytest.raises(ValueError):
        cobs_decode(bytes(enc))


def test_cobs_decode_rejects_block_past_end():
    with pytest.raises(ValueError):
        cobs_decode(b"\x05\x11\x22")


# ------------------------------------------------------------------ CRC and frame layout

def test_crc32_check_value():
    assert crc32(b"123456789") == 0xCBF43926
    assert crc32(b"") == 0


def test_frame_body_layout():
    f = Frame(type=0x85, seq=0x1234, req_id=0xBEEF, payload=b"\x00\x01", flags=0x01)
    body = f.body()
    assert body[:HEADER_SIZE] == bytes([0x85, 0x01, 0x34, 0x12, 0xEF, 0xBE])
    assert body[HEADER_SIZE:-4] == b"\x00\x01"
    assert struct.unpack("<I", body[-4:])[0] == crc32(body[:-4])
    wire = encode_frame(f)
    assert wire.endswith(DELIMITER) and 0 not in wire[:-1]
    assert cobs_decode(wire[:-1]) == body


@SETTINGS
@given(frames())
def test_encoded_frame_fits_the_parser_limit(frame):
    wire = encode_frame(frame)
    assert 0 not in wire[:-1] and wire[-1] == 0
    assert len(wire) <= max_encoded_size(len(frame.payload))
    assert len(wire) <= max_encoded_size(DEFAULT_MAX_PAYLOAD)


# ------------------------------------------------------------------ parser: round trip

@SETTINGS
@given(frame=frames(), data=st.data())
def test_frame_round_trip_in_any_chunking(frame, data):
    wire = encode_frame(frame)
    parser = FrameParser()
    got = feed_all(parser, draw_chunks(data.draw, wire))
    assert got == [frame]
    s = parser.stats
    assert s.frames == 1 and s.bad_frames == 0
    assert s.bytes_in == len(wire) and s.bytes_discarded == 0


@HEAVY
@given(fs=st.lists(frames(max_payload=300), min_size=1, max_size=8),
       idle=st.lists(st.integers(0, 3), min_size=9, max_size=9), data=st.data())
def test_stream_of_frames_with_idle_fill(fs, idle, data):
    wire = b"".join(DELIMITER * idle[i] + encode_frame(f) for i, f in enumerate(fs))
    wire += DELIMITER * idle[-1]
    parser = FrameParser()
    assert feed_all(parser, draw_chunks(data.draw, wire)) == fs
    assert parser.stats.frames == len(fs)
    assert parser.stats.bad_frames == 0
    assert parser.stats.bytes_discarded == 0  # idle fill is not a discarded byte


@pytest.mark.parametrize("max_payload", [0, 1, 64, 253, 254, 255, DEFAULT_MAX_PAYLOAD])
@pytest.mark.parametrize("fill", [b"\x00", b"\x01", b"\xa5\x00\x5a"])
def test_max_payload_boundary(max_payload, fill):
    def payload(n):
        return (fill * (n // len(fill) + 1))[:n]

    ok = Frame(1, 0, 0, payload(max_payload))
    big = Frame(1, 1, 0, payload(max_payload + 1))
    after = Frame(2, 2, 0, b"next"[:max_payload])
    parser = FrameParser(max_payload=max_payload)
    assert parser.feed(encode_frame(ok)) == [ok]
    assert parser.feed(encode_frame(big)) == []
    assert parser.stats.oversize == 1
    assert parser.stats.bytes_discarded == len(encode_frame(big))
    assert parser.feed(encode_frame(after)) == [after]


@pytest.mark.parametrize("n,fill", [(ABSOLUTE_MAX_PAYLOAD + 1, b"\x01"),
                                    (ABSOLUTE_MAX_PAYLOAD + 1, b"\x00"),
                                    (ABSOLUTE_MAX_PAYLOAD + 17, b"\x00")])
def test_absolute_max_payload_is_enforced(n, fill):
    parser = FrameParser(max_payload=2 * ABSOLUTE_MAX_PAYLOAD)
    assert parser.feed(encode_frame(Frame(1, 0, 0, fill * n))) == []
    assert parser.stats.oversize == 1


def test_absolute_max_payload_itself_is_accepted():
    parser = FrameParser(max_payload=2 * ABSOLUTE_MAX_PAYLOAD)
    f = Frame(1, 0, 0, b"\x01" * ABSOLUTE_MAX_PAYLOAD)
    assert parser.feed(encode_frame(f)) == [f]


# ------------------------------------------------------------------ parser: robustness

def _segments(stream: bytes) -> tuple[list[bytes], int]:
    """Non-empty 0x00-terminated segments of a stream that ends with 0x00,
    and the number of idle delimiters (those that end an empty segment)."""
    assert stream.endswith(DELIMITER)
    parts = stream.split(DELIMITER)[:-1]
    return [p for p in parts if p], sum(1 for p in parts if not p)


garbage = st.one_of(st.binary(max_size=400), _runs(max_run=1500, max_runs=3),
                    st.lists(st.sampled_from([0, 1, 2, 0xFF, 0xFE]), max_size=300).map(bytes))


@SETTINGS
@given(pieces=st.lists(st.one_of(garbage, frames(max_payload=200)), max_size=6),
       data=st.data())
def test_parser_never_raises_and_accounts_for_every_byte(pieces, data):
    """Garbage and valid frames, concatenated with no guaranteed delimiter
    between them, fed in any chunking."""
    sent = {encode_frame(p) for p in pieces if isinstance(p, Frame)}
    stream = b"".join(encode_frame(p) if isinstance(p, Frame) else p for p in pieces)
    parser = FrameParser()
    got: list[Frame] = []
    fed = 0
    for chunk in draw_chunks(data.draw, stream):
        got += parser.feed(chunk)
        fed += len(chunk)
        assert parser.stats.bytes_in == fed
        assert parser.stats.frames == len(got)
    # flush whatever is pending with one delimiter
    got += parser.feed(DELIMITER)
    s = parser.stats
    total = stream + DELIMITER
    segments, idle = _segments(total)
    assert s.bytes_in == len(total)
    assert s.frames == len(got)
    # every non-empty segment is either a frame or exactly one counted rejection
    assert s.frames + s.bad_frames == len(segments)
    # every byte: accepted frame bytes, idle fill, or counted as discarded
    accepted = sum(len(encode_frame(f)) for f in got)
    assert accepted + idle + s.bytes_discarded == s.bytes_in
    # the frames accepted are exactly the segments that are an intact encoded
    # frame (garbage merged into a frame spoils it), in stream order
    intact = [seg + DELIMITER for seg in segments if seg + DELIMITER in sent]
    assert [encode_frame(f) for f in got] == intact


@SETTINGS
@given(stream=st.binary(max_size=3000), data=st.data())
def test_random_bytes_never_raise(stream, data):
    parser = FrameParser(max_payload=data.draw(st.sampled_from([0, 16, 256, 1024, 8192])))
    got = feed_all(parser, draw_chunks(data.draw, stream))
    got += parser.feed(DELIMITER)
    s = parser.stats
    assert s.bytes_in == len(stream) + 1
    assert s.frames == len(got)
    segments, idle = _segments(stream + DELIMITER)
    assert s.frames + s.bad_frames == len(segments)
    assert s.bytes_discarded + idle + sum(len(encode_frame(f)) for f in got) == s.bytes_in


# ------------------------------------------------------------------ parser: corruption

def _flip(wire: bytes, bit_positions) -> bytes:
    out = bytearray(wire)
    for b in bit_positions:
        out[b // 8] ^= 1 << (b % 8)
    return bytes(out)


def _check_rejected_or_identical(frame: Frame, corrupted: bytes, follower: Frame):
    parser = FrameParser()
    got = parser.feed(corrupted)
    for f in got:
        assert same_content(f, frame), f"corruption accepted as {f!r}"
    if not got:
        s = parser.stats
        assert s.crc_errors + s.cobs_errors + s.runts + s.oversize > 0
        assert s.bytes_discarded > 0
    # and the link is still in sync for the next frame
    assert parser.feed(encode_frame(follower)) == [follower]


FOLLOWER = Frame(0x40, 1, 0, b"after")


@SETTINGS
@given(frame=frames(max_payload=300), data=st.data())
def test_wire_burst_corruption_never_accepted(frame, data):
    wire = encode_frame(frame)
    nbits = (len(wire) - 1) * 8  # never the trailing delimiter
    length = data.draw(st.integers(1, 32), label="burst length")
    start = data.draw(st.integers(0, nbits - length), label="burst start")
    inner = data.draw(st.integers(0, (1 << length) - 1))
    pattern = inner | 1 | (1 << (length - 1))  # a burst: first and last bit flipped
    bits = [start + i for i in range(length) if pattern >> i & 1]
    _check_rejected_or_identical(frame, _flip(wire, bits), FOLLOWER)


@SETTINGS
@given(frame=frames(max_payload=300), data=st.data())
def test_wire_scattered_bit_flips_never_accepted(frame, data):
    wire = encode_frame(frame)
    nbits = (len(wire) - 1) * 8
    bits = data.draw(st.sets(st.integers(0, nbits - 1), min_size=1, max_size=8))
    _check_rejected_or_identical(frame, _flip(wire, bits), FOLLOWER)


@SETTINGS
@given(frame=frames(max_payload=300), data=st.data())
def test_wire_dropped_bytes_never_accepted(frame, data):
    wire = encode_frame(frame)
    drop = data.draw(st.sets(st.integers(0, len(wire) - 2), min_size=1, max_size=3))
    corrupted = bytes(b for i, b in enumerate(wire) if i not in drop)
    _check_rejected_or_identical(frame, corrupted, FOLLOWER)


@SETTINGS
@given(frame=frames(max_payload=300), data=st.data())
def test_body_errors_up_to_3_bits_always_detected_by_crc(frame, data):
    """The hard guarantee: CRC-32 has Hamming distance 4 at these lengths, so any
    1-3 flipped bits of the body (header, payload or CRC) are a CRC error."""
    body = frame.body()
    bits = data.draw(st.sets(st.integers(0, len(body) * 8 - 1), min_size=1, max_size=3))
    parser = FrameParser()
    assert parser.feed(cobs_encode(_flip(body, bits)) + DELIMITER) == []
    assert parser.stats.crc_errors == 1 and parser.stats.frames == 0


@SETTINGS
@given(frame=frames(max_payload=300), data=st.data())
def test_body_bursts_up_to_32_bits_always_detected_by_crc(frame, data):
    body = frame.body()
    length = data.draw(st.integers(1, 32))
    start = data.draw(st.integers(0, len(body) * 8 - length))
    pattern = data.draw(st.integers(0, (1 << length) - 1)) | 1 | (1 << (length - 1))
    bits = [start + i for i in range(length) if pattern >> i & 1]
    parser = FrameParser()
    assert parser.feed(cobs_encode(_flip(body, bits)) + DELIMITER) == []
    assert parser.stats.crc_errors == 1


def test_runt_and_cobs_error_are_counted():
    parser = FrameParser()
    assert parser.feed(cobs_encode(b"\x01" * (MIN_BODY - 1)) + DELIMITER) == []
    assert parser.stats.runts == 1
    assert parser.feed(b"\x05\x01" + DELIMITER) == []  # block runs past the end
    assert parser.stats.cobs_errors == 1
    assert parser.stats.bytes_discarded == (MIN_BODY + 1) + 3


# ------------------------------------------------------------------ parser: resync

@SETTINGS
@given(junk=garbage, frame=frames(max_payload=200), data=st.data())
def test_sync_regained_after_garbage_and_delimiter(junk, frame, data):
    stream = junk + DELIMITER + encode_frame(frame)
    parser = FrameParser()
    got = feed_all(parser, draw_chunks(data.draw, stream))
    assert got and got[-1] == frame
    assert parser.stats.frames == len(got)


@SETTINGS
@given(junk=garbage.filter(lambda g: not g.endswith(DELIMITER)),
       first=frames(max_payload=200), second=frames(max_payload=200), data=st.data())
def test_garbage_without_delimiter_costs_at_most_one_frame(junk, first, second, data):
    stream = junk + encode_frame(first) + encode_frame(second)
    parser = FrameParser()
    got = feed_all(parser, draw_chunks(data.draw, stream))
    assert got[-1] == second
    assert got[:-1] in ([], [first])
    if junk and got[:-1] == []:
        assert parser.stats.bad_frames >= 1


@SETTINGS
@given(extra=st.integers(1, 700), seed=st.integers(0, 2**32), data=st.data(),
       max_payload=st.sampled_from([0, 32, 300, DEFAULT_MAX_PAYLOAD]))
def test_oversize_run_is_discarded_and_counted(extra, seed, data, max_payload):
    limit = max_encoded_size(max_payload)
    run = nonzero_bytes(random.Random(seed), limit + extra)
    frame = Frame(0x40, 7, 0, b"\x00ok\x00"[: max_payload])
    stream = run + DELIMITER + encode_frame(frame)
    parser = FrameParser(max_payload=max_payload)
    got = feed_all(parser, draw_chunks(data.draw, stream))
    assert got == [frame]
    s = parser.stats
    assert s.oversize == 1
    assert s.bytes_discarded == len(run) + 1
    assert s.bad_frames == 1


def test_oversize_run_without_delimiter_merges_with_next_frame():
    limit = max_encoded_size(DEFAULT_MAX_PAYLOAD)
    run = nonzero_bytes(random.Random(1), limit + 10)
    a, b = Frame(1, 0, 0, b"a"), Frame(1, 1, 0, b"b")
    parser = FrameParser()
    assert feed_all(parser, [run, encode_frame(a), encode_frame(b)]) == [b]
    assert parser.stats.oversize == 1
    assert parser.stats.bytes_discarded == len(run) + len(encode_frame(a))


def test_reset_drops_partial_frame_and_sequence():
    parser = FrameParser()
    f = Frame(1, 10, 0, b"x")
    parser.feed(encode_frame(f))
    parser.feed(encode_frame(Frame(1, 11, 0, b"y"))[:5])
    parser.reset()
    g = Frame(1, 20, 0, b"z")
    assert parser.feed(encode_frame(g)) == [g]  # the partial bytes were forgotten
    assert parser.stats.seq_gaps == 0  # and so was the expected seq


# ------------------------------------------------------------------ sequence accounting

def _feed_seqs(seqs) -> ParserStats:
    parser = FrameParser()
    for s in seqs:
        assert parser.feed(encode_frame(Frame(0x40, s, 0, b""))) != []
    return parser.stats


def test_seq_gaps_counted():
    assert _feed_seqs([0, 1, 2, 5, 6]).seq_gaps == 2


def test_seq_restart_is_not_a_gap():
    assert _feed_seqs([0, 1, 2, 3, 0, 1]).seq_gaps == 0
    assert _feed_seqs([100, 101, 7, 8]).seq_gaps == 0
    assert _feed_seqs([5, 5]).seq_gaps == 0  # a repeated frame is not a loss


def test_seq_wrap_around_is_not_a_gap():
    assert _feed_seqs([65534, 65535, 0, 1]).seq_gaps == 0
    assert _feed_seqs([65535, 1]).seq_gaps == 1
    assert _feed_seqs([65530, 2]).seq_gaps == 7


def test_first_frame_sets_the_baseline():
    assert _feed_seqs([1234]).seq_gaps == 0
    assert _feed_seqs([1234, 1236]).seq_gaps == 1


@HEAVY
@given(n=st.integers(1, 80), seed=st.integers(0, 2**32),
       p=st.sampled_from([0.0, 0.001, 0.005, 0.02, 0.05]),
       base=st.integers(0, 0xFFFF), data=st.data())
def test_loss_accounting_under_random_byte_drops(n, seed, p, base, data):
    rng = random.Random(seed)
    sent = [Frame(0x40, (base + i) & 0xFFFF, 0, rng.randbytes(rng.randrange(0, 48)))
            for i in range(n)]
    wire = b"".join(encode_frame(f) for f in sent)
    damaged = bytes(b for b in wire if rng.random() >= p)
    parser = FrameParser()
    got = feed_all(parser, draw_chunks(data.draw, damaged))
    by_seq = {f.seq: i for i, f in enumerate(sent)}
    idx = [by_seq[f.seq] for f in got]
    for f, i in zip(got, idx):
        assert f == sent[i]  # every decoded frame is one that was sent, intact
    assert idx == sorted(set(idx))  # once each, in order
    s = parser.stats
    assert s.frames == len(got)
    assert len(got) + s.seq_gaps <= n
    if got:
        # every frame between the first and the last decoded one is either
        # decoded or counted lost; only losses before the first and after the
        # last decoded frame cannot be seen
        assert len(got) + s.seq_gaps == idx[-1] - idx[0] + 1
    if p == 0.0:
        assert got == sent and s.seq_gaps == 0


@HEAVY
@given(n=st.integers(0, 80), seed=st.integers(0, 2**32),
       p=st.sampled_from([0.001, 0.01, 0.05]), data=st.data())
def test_loss_accounting_is_exact_between_intact_frames(n, seed, p, data):
    """Frames 1..n go through a lossy link, frames 0 and n+1 intact: then every
    one of the n+2 frames is either decoded or counted in seq_gaps."""
    rng = random.Random(seed)
    sent = [Frame(0x40, i, 0, rng.randbytes(rng.randrange(0, 48))) for i in range(n + 2)]
    damaged = bytes(b for b in b"".join(encode_frame(f) for f in sent[1:-1])
                    if rng.random() >= p)
    stream = encode_frame(sent[0]) + damaged + DELIMITER + encode_frame(sent[-1])
    parser = FrameParser()
    got = feed_all(parser, draw_chunks(data.draw, stream))
    assert got[0] == sent[0] and got[-1] == sent[-1]
    assert all(f == sent[f.seq] for f in got)
    assert len(got) + parser.stats.seq_gaps == n + 2
    if len(got) < n + 2:
        assert parser.stats.bad_frames >= 1
