"""Framing layer of the device protocol: COBS + CRC-32 frames delimited by 0x00.

A frame on the wire is ``COBS(body) 0x00`` where ``body`` is::

    type:u8  flags:u8  seq:u16le  req_id:u16le  payload[0..max_payload]  crc32:u32le

The CRC is CRC-32/ISO-HDLC (the one of zlib, Ethernet and PNG) over everything
before it. COBS guarantees the encoded body holds no zero byte, so a 0x00
always ends a frame and a receiver regains sync at the next 0x00 after any
corruption. See docs/protocol.md for the full specification.

:class:`FrameParser` is fed bytes in any chunking (it holds no thread and no
port) and returns the frames that complete; every byte it drops is counted
in :class:`ParserStats`, never silently lost.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

HEADER = struct.Struct("<BBHH")
HEADER_SIZE = HEADER.size  # 6
CRC_SIZE = 4
MIN_BODY = HEADER_SIZE + CRC_SIZE
DEFAULT_MAX_PAYLOAD = 1024
"""Largest payload either side sends unless HELLO negotiates less."""
ABSOLUTE_MAX_PAYLOAD = 4096
"""No receiver accepts a larger payload whatever was negotiated."""
DELIMITER = b"\x00"

SEQ_GAP_LIMIT = 0x8000
"""A forward jump in ``seq`` below this counts as lost frames; a larger one
(a backward jump, modulo 2**16) means the peer restarted its counter."""

FLAG_RETRY = 0x01
"""Set on a request sent again after a time-out (same req_id)."""


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: remove every zero byte from ``data``.

    The result is at most ``len(data) + len(data) // 254 + 1`` bytes long and
    contains no 0x00.
    """
    out = bytearray()
    start = 0
    n = len(data)
    while True:
        stop = min(start + 254, n)
        zero = data.find(0, start, stop)
        if zero == -1:
            out.append(stop - start + 1)
            out += data[start:stop]
            if stop == n:
                return bytes(out)
            start = stop
        else:
            out.append(zero - start + 1)
            out += data[start:zero]
            start = zero + 1


def cobs_decode(data: bytes) -> bytes:
    """Invert :func:`cobs_encode`. Raises ``ValueError`` on a malformed block."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ValueError("zero byte inside a COBS frame")
        i += 1
        end = i + code - 1
        if end > n:
            raise ValueError("COBS block runs past the end of the frame")
        block = data[i:end]
        if 0 in block:
            raise ValueError("zero byte inside a COBS frame")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF)."""
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``req_id`` is 0 for unsolicited device events."""

    type: int
    seq: int
    req_id: int = 0
    payload: bytes = b""
    flags: int = 0

    def body(self) -> bytes:
        head = HEADER.pack(self.type, self.flags, self.seq & 0xFFFF, self.req_id & 0xFFFF)
        data = head + self.payload
        return data + struct.pack("<I", crc32(data))


def encode_frame(frame: Frame) -> bytes:
    """Bytes to put on the wire for ``frame``, delimiter included."""
    return cobs_encode(frame.body()) + DELIMITER


def max_encoded_size(max_payload: int) -> int:
    body = max_payload + MIN_BODY
    return body + body // 254 + 2


@dataclass
class ParserStats:
    """What a :class:`FrameParser` has seen. Every discarded byte is counted."""

    frames: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    runts: int = 0
    oversize: int = 0
    bytes_in: int = 0
    bytes_discarded: int = 0
    seq_gaps: int = 0
    """Frames the sender numbered but we never decoded (from seq jumps)."""

    @property
    def bad_frames(self) -> int:
        return self.crc_errors + self.cobs_errors + self.runts + self.oversize


@dataclass
class FrameParser:
    """Incremental frame decoder: ``feed(bytes) -> list[Frame]``.

    Between two delimiters it collects at most ``max_encoded_size(max_payload)``
    bytes; a longer run is dropped whole (counted as ``oversize``) and sync is
    regained at the next 0x00. Consecutive delimiters are idle fill and ignored.
    Sequence numbers of accepted frames are checked for gaps.
    """

    max_payload: int = DEFAULT_MAX_PAYLOAD
    stats: ParserStats = field(default_factory=ParserStats)
    _buf: bytearray = field(default_factory=bytearray, repr=False)
    _overflow: bool = field(default=False, repr=False)
    _next_seq: int | None = field(default=None, repr=False)

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        self.stats.bytes_in += len(data)
        limit = max_encoded_size(min(self.max_payload, ABSOLUTE_MAX_PAYLOAD))
        start = 0
        while True:
            end = data.find(0, start)
            chunk = data[start:] if end == -1 else data[start:end]
            if not self._overflow:
                self._buf += chunk
                if len(self._buf) > limit:
                    self.stats.oversize += 1
                    self.stats.bytes_discarded += len(self._buf)
                    self._buf.clear()
                    self._overflow = True
            else:
                self.stats.bytes_discarded += len(chunk)
            if end == -1:
                return frames
            if self._overflow:
                self.stats.bytes_discarded += 1
                self._overflow = False
            elif self._buf:
                frame = self._decode(bytes(self._buf))
                self._buf.clear()
                if frame is not None:
                    frames.append(frame)
            start = end + 1

    def reset(self) -> None:
        """Forget any partial frame and the expected sequence number."""
        self._buf.clear()
        self._overflow = False
        self._next_seq = None

    def _decode(self, encoded: bytes) -> Frame | None:
        try:
            body = cobs_decode(encoded)
        except ValueError:
            self.stats.cobs_errors += 1
            self.stats.bytes_discarded += len(encoded) + 1
            return None
        if len(body) < MIN_BODY:
            self.stats.runts += 1
            self.stats.bytes_discarded += len(encoded) + 1
            return None
        if len(body) - MIN_BODY > min(self.max_payload, ABSOLUTE_MAX_PAYLOAD):
            self.stats.oversize += 1
            self.stats.bytes_discarded += len(encoded) + 1
            return None
        (crc,) = struct.unpack_from("<I", body, len(body) - CRC_SIZE)
        if crc != crc32(body[:-CRC_SIZE]):
            self.stats.crc_errors += 1
            self.stats.bytes_discarded += len(encoded) + 1
            return None
        ftype, flags, seq, req_id = HEADER.unpack_from(body)
        if self._next_seq is not None:
            gap = (seq - self._next_seq) & 0xFFFF
            if gap < SEQ_GAP_LIMIT:  # a larger jump is a restarted peer, not a loss
                self.stats.seq_gaps += gap
        self._next_seq = (seq + 1) & 0xFFFF
        self.stats.frames += 1
        return Frame(ftype, seq, req_id, body[HEADER_SIZE:-CRC_SIZE], flags)
