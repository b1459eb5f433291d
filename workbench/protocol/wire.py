"""Primitive codecs of the framed protocol, and payloads declared as a field list.

All integers are little-endian; ``str`` is a u8 length followed by that many
UTF-8 bytes; ``f32`` is IEEE-754 binary32 (docs/protocol.md section 1.3).

:class:`Writer` appends primitives to a payload, :class:`Reader` takes them
off one and raises :class:`MalformedPayload` (a ``ValueError``) when the
payload ends early, holds bytes after its layout or a string that is not UTF-8.

Most payloads are a fixed sequence of primitives. Such a payload class
declares it once, as ``LAYOUT``, a tuple of :class:`Field`, and inherits
``encode``/``decode`` from :class:`Declared`; the same declaration is what
the tests compare with the field tables of docs/protocol.md. Payloads with
a rule between fields (SAMPLES' data length, a sensor's channel names, a
RESULT's detached outputs) keep a hand-written codec beside their
declaration.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag
from typing import Any, ClassVar

import numpy as np

from ..errors import WorkbenchError

STR_MAX_BYTES = 255
"""Longest ``str`` on the wire (its length is a u8); a sender truncates longer text."""


def f32_tidy(x: float) -> float:
    """The shortest decimal that rounds to the same binary32 (0.000122, not 0.00012199999...)."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


class MalformedPayload(WorkbenchError, ValueError):
    """A payload that does not match its message layout."""


class Writer:
    """Builds a payload: ``Writer().u8(1).u16(1024).bytes()``. Each method returns the
    writer; an integer outside its type's range raises ``struct.error`` (u32 wraps)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, v: int) -> Writer:
        self.buf += struct.pack("<B", v)
        return self

    def u16(self, v: int) -> Writer:
        self.buf += struct.pack("<H", v)
        return self

    def u32(self, v: int) -> Writer:
        self.buf += struct.pack("<I", v & 0xFFFFFFFF)
        return self

    def i16(self, v: int) -> Writer:
        self.buf += struct.pack("<h", v)
        return self

    def i32(self, v: int) -> Writer:
        self.buf += struct.pack("<i", v)
        return self

    def f32(self, v: float) -> Writer:
        self.buf += struct.pack("<f", v)
        return self

    def str(self, v: str) -> Writer:
        raw = v.encode("utf-8")[:STR_MAX_BYTES]
        # never cut a UTF-8 sequence in half
        raw = raw.decode("utf-8", "ignore").encode("utf-8")
        self.buf += bytes([len(raw)]) + raw
        return self

    def raw(self, v: bytes) -> Writer:
        self.buf += v
        return self

    def bytes(self) -> bytes:
        return bytes(self.buf)


class Reader:
    """Takes primitives off ``data`` in order; ``what`` names the message in errors.
    Call :meth:`end` last: bytes left over make the payload malformed."""

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


# --------------------------------------------------------------------------- declared layouts

_SCALARS = {"u8", "u16", "u32", "i16", "i32", "f32", "str"}
TYPES = _SCALARS | {"bool", "bytes[32]", "rest", "list"}
"""Field types a :class:`Field` may have (the names docs/protocol.md uses)."""


@dataclass(frozen=True)
class Field:
    """One field of a declared payload, in wire order.

    ``type`` is one of :data:`TYPES`. ``enum`` converts a code on decode (an
    unknown code is malformed; an ``IntFlag`` keeps unknown bits). A ``list`` is
    a u8 count followed by that many ``item`` (a primitive type name, or a
    payload class with ``write``/``read``). ``doc`` is the field's name in the
    document's table when it differs from the attribute name.
    """

    name: str
    type: str
    enum: type | None = None
    item: Any = None
    doc: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")
        if (self.type == "list") != (self.item is not None):
            raise ValueError(f"field {self.name}: a list (and only a list) names its item")

    def write(self, w: Writer, value: Any) -> None:
        if self.type == "list":
            w.u8(len(value))
            for v in value:
                _write_one(w, self.item, v)
        elif self.type == "bool":
            w.u8(1 if value else 0)
        elif self.type in ("bytes[32]", "rest"):
            if self.type == "bytes[32]" and len(value) != 32:
                raise ValueError(f"{self.name} must be 32 bytes, got {len(value)}")
            w.raw(value)
        else:
            getattr(w, self.type)(int(value) if self.enum else value)

    def read(self, r: Reader) -> Any:
        if self.type == "list":
            return tuple(_read_one(r, self.item) for _ in range(r.u8()))
        if self.type == "bool":
            return bool(r.u8())
        if self.type == "bytes[32]":
            return r.raw(32)
        if self.type == "rest":
            return r.rest()
        value = getattr(r, self.type)()
        if self.enum is None or issubclass(self.enum, IntFlag):
            return value if self.enum is None else self.enum(value)
        try:
            return self.enum(value)
        except ValueError:
            raise MalformedPayload(f"{r.what}: unknown {self.name.replace('_', ' ')} "
                                   f"{value}") from None

    def doc_rows(self) -> list[tuple[str, str]]:
        """(name, type) rows of this field in the document's tables."""
        name = self.doc or self.name
        if self.type != "list":
            return [(name, "bool" if self.type == "bool" else self.type)]
        item = self.item if isinstance(self.item, str) else "see below"
        return [("count", "u8"), (f"{name}[count]", f"{item} each" if item != "see below"
                                  else item)]


def _write_one(w: Writer, item: Any, value: Any) -> None:
    if isinstance(item, str):
        getattr(w, item)(value)
    else:
        value.write(w)


def _read_one(r: Reader, item: Any) -> Any:
    return getattr(r, item)() if isinstance(item, str) else item.read(r)


class Declared:
    """Mixin for a frozen dataclass whose wire form is exactly its ``LAYOUT``.

    ``LAYOUT`` lists the dataclass's fields in wire order; ``WHAT`` names the
    message in :class:`MalformedPayload` errors. ``encode()`` returns the
    payload; ``decode(payload)`` reads it whole (bytes left over are malformed);
    ``write``/``read`` do the same inside a larger payload.
    """

    WHAT: ClassVar[str]
    LAYOUT: ClassVar[tuple[Field, ...]]

    def write(self, w: Writer) -> None:
        for f in self.LAYOUT:
            f.write(w, getattr(self, f.name))

    @classmethod
    def read(cls, r: Reader) -> Any:
        return cls(**{f.name: f.read(r) for f in cls.LAYOUT})

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> Any:
        r = Reader(p, cls.WHAT)
        out = cls.read(r)
        r.end()
        return out
