"""Model transfer and slots: MODEL_BEGIN, MODEL_END, MODEL_COMMIT, MODEL_ROLLBACK and
SLOT_STATUS (docs/protocol.md 5.8-5.13, 7.4). MODEL_CHUNK uses :mod:`.chunks`."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import BeginFlag, SlotState
from .wire import Declared, Field


@dataclass(frozen=True)
class ModelBegin(Declared):
    slot: int
    size: int
    sha256: bytes
    name: str = ""
    flags: BeginFlag = BeginFlag(0)

    WHAT = "MODEL_BEGIN"
    LAYOUT = (Field("slot", "u8"), Field("size", "u32"), Field("sha256", "bytes[32]"),
              Field("name", "str"), Field("flags", "u8", enum=BeginFlag))


@dataclass(frozen=True)
class ModelBegun(Declared):
    slot: int
    resume_offset: int
    chunk_max: int
    window: int

    WHAT = "MODEL_BEGIN response"
    LAYOUT = (Field("slot", "u8"), Field("resume_offset", "u32"), Field("chunk_max", "u16"),
              Field("window", "u8"))


@dataclass(frozen=True)
class ModelVerified(Declared):
    slot: int
    sha256: bytes
    arena_bytes: int

    WHAT = "MODEL_END response"
    LAYOUT = (Field("slot", "u8"), Field("sha256", "bytes[32]"), Field("arena_bytes", "u32"))


@dataclass(frozen=True)
class SlotRef(Declared):
    """One slot number: MODEL_COMMIT's request, COMMIT/ROLLBACK's reply (active slot)."""

    slot: int

    WHAT = "slot"
    LAYOUT = (Field("slot", "u8"),)


@dataclass(frozen=True)
class SlotInfo(Declared):
    index: int
    state: SlotState
    size: int
    written: int
    sha256: bytes
    arena_bytes: int
    name: str

    WHAT = "SLOT_STATUS slot"
    LAYOUT = (Field("index", "u8"), Field("state", "u8", enum=SlotState), Field("size", "u32"),
              Field("written", "u32"), Field("sha256", "bytes[32]"),
              Field("arena_bytes", "u32"), Field("name", "str"))


@dataclass(frozen=True)
class SlotTable(Declared):
    active: int
    slots: tuple[SlotInfo, ...]

    WHAT = "SLOT_STATUS response"
    LAYOUT = (Field("active", "u8"), Field("slots", "list", item=SlotInfo, doc="slot"))
