"""Running the active model: INFER, its RESULT, GET_OUTPUT and the tensor layout
(docs/protocol.md 5.5, 5.7). SET_INPUT uses the chunk layout of :mod:`.chunks`."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import DType
from .wire import Declared, Field, MalformedPayload, Reader, Writer

RESULT_LATENCY_ESTIMATED = 0x01
"""The latency was not measured on silicon (a virtual board's)."""
RESULT_OUTPUTS_DETACHED = 0x02
"""Outputs did not fit; fetch each with GET_OUTPUT."""


@dataclass(frozen=True)
class Tensor:
    """A tensor on the wire: dtype, shape, quantization and (maybe) its bytes."""

    dtype: DType
    shape: tuple[int, ...]
    data: bytes = b""
    scale: float = 0.0
    zero_point: int = 0

    DOC_ROWS = (("dtype", "u8"), ("ndim", "u8"), ("shape[ndim]", "u32 each"), ("scale", "f32"),
                ("zero_point", "i32"), ("nbytes", "u32"), ("data", "bytes[nbytes]"))
    """The wire layout, as docs/protocol.md tabulates it (hand-written codec: the
    data travel only when the RESULT is not detached)."""

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
    def read(cls, r: Reader) -> Tensor:
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

    DOC_ROWS = (("n_inputs", "u8"), ("input[n]", "`index:u8, length:u32, data:bytes[length]`"))
    """The wire layout, as docs/protocol.md tabulates it."""

    def encode(self) -> bytes:
        w = Writer().u8(len(self.inputs))
        for index, data in self.inputs:
            w.u8(index).u32(len(data)).raw(data)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> Infer:
        r = Reader(p, "INFER")
        inputs = []
        for _ in range(r.u8()):
            index = r.u8()
            inputs.append((index, r.raw(r.u32())))
        r.end()
        return cls(tuple(inputs))


@dataclass(frozen=True)
class Result:
    """INFER's answer. With ``RESULT_OUTPUTS_DETACHED`` in ``flags`` the outputs
    travel without their bytes (fetch them with GET_OUTPUT)."""

    latency_us: int
    arena_bytes: int
    flags: int
    outputs: tuple[Tensor, ...]

    DOC_ROWS = (("latency_us", "u32"), ("arena_bytes", "u32"), ("flags", "u8"),
                ("n_outputs", "u8"), ("tensor[n]", "see below"))
    """The wire layout, as docs/protocol.md tabulates it."""

    def encode(self) -> bytes:
        w = Writer().u32(self.latency_us).u32(self.arena_bytes).u8(self.flags)
        w.u8(len(self.outputs))
        for t in self.outputs:
            t.write(w, with_data=not self.flags & RESULT_OUTPUTS_DETACHED)
        return w.bytes()

    @classmethod
    def decode(cls, p: bytes) -> Result:
        r = Reader(p, "INFER response")
        latency, arena, flags = r.u32(), r.u32(), r.u8()
        outputs = tuple(Tensor.read(r) for _ in range(r.u8()))
        r.end()
        return cls(latency, arena, flags, outputs)


@dataclass(frozen=True)
class GetOutput(Declared):
    """Ask for ``length`` bytes of output ``index`` of the last inference from ``offset``."""

    index: int
    offset: int
    length: int

    WHAT = "GET_OUTPUT"
    LAYOUT = (Field("index", "u8"), Field("offset", "u32"), Field("length", "u16"))
