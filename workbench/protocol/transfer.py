"""Model transfer and slots: MODEL_BEGIN, MODEL_END, MODEL_COMMIT, MODEL_ROLLBACK,
SLOT_STATUS and MODEL_CONFIRM (docs/protocol.md 5.8-5.14, 7.4). MODEL_CHUNK uses :mod:`.chunks`."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import BeginFlag, CommitFlag, SlotState
from .wire import Declared, Field, MalformedPayload, Reader, Writer


@dataclass(frozen=True)
class ModelBegin(Declared):
    """MODEL_BEGIN. With ``BeginFlag.DELTA`` in ``flags`` the object sent is a delta patch
    of ``size`` bytes, and two more fields follow ``flags`` on the wire: ``image_size``
    (bytes of the image the patch rebuilds) and ``base_sha256`` (SHA-256 of the image it
    was made from, which must be the device's active image). Without DELTA they are not
    sent and stay 0 and empty (docs/protocol.md 5.8, 7.5)."""

    slot: int
    size: int
    sha256: bytes
    name: str = ""
    flags: BeginFlag = BeginFlag(0)
    image_size: int = 0
    base_sha256: bytes = b""

    WHAT = "MODEL_BEGIN"
    LAYOUT = (Field("slot", "u8"), Field("size", "u32"), Field("sha256", "bytes[32]"),
              Field("name", "str"), Field("flags", "u8", enum=BeginFlag),
              Field("image_size", "u32"), Field("base_sha256", "bytes[32]"))
    _DELTA_FIELDS = 2
    """The last fields of LAYOUT, on the wire only when flags has DELTA."""

    @property
    def delta(self) -> bool:
        return bool(self.flags & BeginFlag.DELTA)

    def write(self, w: Writer) -> None:
        if not self.delta and (self.image_size or self.base_sha256):
            raise ValueError("image_size and base_sha256 travel only with BeginFlag.DELTA")
        fields = self.LAYOUT if self.delta else self.LAYOUT[: -self._DELTA_FIELDS]
        for f in fields:
            f.write(w, getattr(self, f.name))

    @classmethod
    def read(cls, r: Reader) -> ModelBegin:
        head = cls.LAYOUT[: -cls._DELTA_FIELDS]
        values = {f.name: f.read(r) for f in head}
        if values["flags"] & BeginFlag.DELTA:
            values.update({f.name: f.read(r) for f in cls.LAYOUT[-cls._DELTA_FIELDS:]})
        return cls(**values)


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
class ModelCommit(Declared):
    """MODEL_COMMIT's request. ``flags`` may be left out on the wire when 0: a 1-byte
    payload is a permanent commit (what hosts older than the flags send), and the encoder
    omits a zero flags byte so that a permanent commit also reaches firmware older than it."""

    slot: int
    flags: CommitFlag = CommitFlag(0)

    WHAT = "MODEL_COMMIT"
    LAYOUT = (Field("slot", "u8"), Field("flags", "u8", enum=CommitFlag))

    def encode(self) -> bytes:
        full = super().encode()
        return full[:1] if not self.flags else full

    @classmethod
    def decode(cls, p: bytes) -> ModelCommit:
        if len(p) == 1:
            return cls(p[0])
        if len(p) != 2:
            raise MalformedPayload(f"{cls.WHAT}: {len(p)} bytes, expected slot:u8 and "
                                   "an optional flags:u8")
        r = Reader(p, cls.WHAT)
        out = cls.read(r)
        r.end()
        return out


@dataclass(frozen=True)
class SlotRef(Declared):
    """One slot number: the reply of MODEL_COMMIT, MODEL_ROLLBACK (the active slot) and
    MODEL_CONFIRM (the confirmed slot)."""

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
