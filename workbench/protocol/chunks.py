"""Pieces of a larger object and their acknowledgement: the chunk layout shared by
SET_INPUT, the GET_OUTPUT reply and MODEL_CHUNK, and the u32 offset that answers
SET_INPUT and MODEL_CHUNK (docs/protocol.md 5.6, 5.7, 5.9)."""

from __future__ import annotations

from dataclasses import dataclass

from .wire import Declared, Field


@dataclass(frozen=True)
class Chunk(Declared):
    """A piece of a larger object at ``offset``: SET_INPUT, MODEL_CHUNK, GET_OUTPUT reply.
    ``index`` is the input, output or slot; ``data`` is the rest of the payload."""

    index: int
    offset: int
    data: bytes

    WHAT = "chunk"
    LAYOUT = (Field("index", "u8"), Field("offset", "u32"), Field("data", "rest"))


@dataclass(frozen=True)
class Offset(Declared):
    """A single u32 offset: the reply to SET_INPUT and MODEL_CHUNK (next expected)."""

    offset: int

    WHAT = "offset"
    LAYOUT = (Field("offset", "u32", doc="next_offset"),)
