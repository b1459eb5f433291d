"""The virtual board's flash: model slots A and B and their metadata, in files.

Two files side by side: ``<name>.flash`` holds the slot images (slot ``i`` at
``i * slot_bytes``) and ``<name>.slots.json`` the slot table. Image bytes are
written before the table that counts them, and the table is replaced
atomically (write a temporary file, then rename), so killing the process at
any instant (a "power cut") leaves a table that never claims more bytes than
the image holds. On start the active image is re-hashed; a corrupt one is
marked invalid and the fallback slot takes over, as a bootloader would. The
fallback slot is written only when the writer says so (``replace_fallback``),
and then loses its role before any of its bytes change (docs/protocol.md 7.4).

A slot table that cannot be read, or that parses but holds values no table
this module writes could hold (an unknown state, a size beyond the slot, an
active slot that does not exist...), is moved aside to ``<name>.slots.json.bad``
(nothing is deleted) and the board starts with all slots EMPTY, as
docs/protocol.md section 7.4 promises; :attr:`Flash.load_notes` says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import WorkbenchError
from ..protocol.limits import U32_MAX
from ..protocol.messages import SlotState


class FlashError(WorkbenchError):
    """A slot operation that the flash layout forbids (message says why)."""


class FallbackHeld(FlashError):
    """A write into the fallback slot without consent to lose the fallback."""


@dataclass
class Slot:
    state: str = SlotState.EMPTY.name
    size: int = 0
    written: int = 0
    sha256: str = ""
    name: str = ""
    arena_bytes: int = 0

    @property
    def state_enum(self) -> SlotState:
        return SlotState[self.state]


@dataclass
class SlotTableData:
    slots: list[Slot] = field(default_factory=list)
    active: int | None = None
    fallback: int | None = None


class SlotTableError(WorkbenchError, ValueError):
    """A slot table file that parses but holds values it cannot hold."""


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _int(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise SlotTableError(f"{what} is {value!r}, not an integer in {low}..{high}")
    return value


def parse_slot_table(raw: object, slot_count: int, slot_bytes: int) -> SlotTableData:
    """Check a slot table read from JSON; raise :class:`SlotTableError` saying what is wrong."""
    if not isinstance(raw, dict) or not isinstance(raw.get("slots"), list):
        raise SlotTableError("not an object with a list of slots")
    if len(raw["slots"]) != slot_count:
        raise SlotTableError(f"{len(raw['slots'])} slots, the board has {slot_count}")
    unknown = set(raw) - {"slots", "active", "fallback"}
    if unknown:
        raise SlotTableError(f"unknown key(s) {', '.join(sorted(unknown))}")
    slots = []
    for i, s in enumerate(raw["slots"]):
        where = f"slot {i}"
        if not isinstance(s, dict) or set(s) != {"state", "size", "written", "sha256", "name",
                                                  "arena_bytes"}:
            raise SlotTableError(f"{where} is not an object with state, size, written, "
                                 "sha256, name and arena_bytes")
        if s["state"] not in SlotState.__members__:
            raise SlotTableError(f"{where} has unknown state {s['state']!r}")
        size = _int(s["size"], f"{where} size", 0, slot_bytes)
        _int(s["written"], f"{where} written", 0, size)
        _int(s["arena_bytes"], f"{where} arena_bytes", 0, U32_MAX)
        if not isinstance(s["sha256"], str) or not (s["sha256"] == ""
                                                    or _SHA256.fullmatch(s["sha256"])):
            raise SlotTableError(f"{where} sha256 is not 64 lowercase hex digits")
        if not isinstance(s["name"], str):
            raise SlotTableError(f"{where} name is not text")
        slots.append(Slot(**s))
    roles = {}
    for role, state in (("active", SlotState.ACTIVE), ("fallback", SlotState.FALLBACK)):
        index = raw.get(role)
        if index is not None:
            _int(index, role, 0, slot_count - 1)
            if slots[index].state != state.name:
                raise SlotTableError(f"{role} slot {index} is {slots[index].state}, "
                                     f"not {state.name}")
        roles[role] = index
        holders = [i for i, s in enumerate(slots) if s.state == state.name]
        if holders != ([] if index is None else [index]):
            raise SlotTableError(f"slot(s) {holders} are {state.name} but {role} is {index}")
    return SlotTableData(slots, roles["active"], roles["fallback"])


class Flash:
    """Model slots of one virtual board, persistent across restarts."""

    def __init__(self, path: str | os.PathLike, slot_count: int, slot_bytes: int) -> None:
        self.path = Path(path)
        self.meta_path = self.path.with_suffix(".slots.json")
        self.slot_count = slot_count
        self.slot_bytes = slot_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            with open(self.path, "wb") as f:
                f.truncate(slot_count * slot_bytes)
        self.load_notes: list[str] = []
        """What happened to an unusable slot table at start (also reported by check_boot)."""
        self.table = self._load()
        self._fd = os.open(self.path, os.O_RDWR)

    def close(self) -> None:
        os.close(self._fd)

    # ------------------------------------------------------------------ table
    def _load(self) -> SlotTableData:
        empty = SlotTableData([Slot() for _ in range(self.slot_count)])
        try:
            text = self.meta_path.read_bytes()
        except FileNotFoundError:
            return empty
        try:
            return parse_slot_table(json.loads(text), self.slot_count, self.slot_bytes)
        except ValueError as e:  # not JSON, not UTF-8, or values it cannot hold
            # Start empty, as a bootloader would with a bad CRC, but keep the file.
            bad = self._aside()
            self.load_notes.append(f"slot table {self.meta_path.name} is unusable ({e}); "
                                   f"moved it to {bad.name} and started with empty slots")
            return empty

    def _aside(self) -> Path:
        bad = self.meta_path.with_name(self.meta_path.name + ".bad")
        n = 1
        while bad.exists():
            bad = self.meta_path.with_name(f"{self.meta_path.name}.bad.{n}")
            n += 1
        os.replace(self.meta_path, bad)
        return bad

    def save(self) -> None:
        tmp = self.meta_path.with_suffix(".tmp")
        data = {"slots": [asdict(s) for s in self.table.slots], "active": self.table.active,
                "fallback": self.table.fallback}
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.meta_path)

    def slot(self, index: int) -> Slot:
        if not 0 <= index < self.slot_count:
            raise FlashError(f"no slot {index}; this board has slots 0..{self.slot_count - 1}")
        return self.table.slots[index]

    # ------------------------------------------------------------------ images
    def read(self, index: int) -> bytes:
        s = self.slot(index)
        return os.pread(self._fd, s.size, index * self.slot_bytes)

    def check_boot(self) -> list[str]:
        """Re-hash the active and fallback images; demote any that do not match.

        Returns messages describing what was repaired (empty if all was well),
        starting with :attr:`load_notes` the first time.
        """
        notes, self.load_notes = list(self.load_notes), []
        for which in ("active", "fallback"):
            index = getattr(self.table, which)
            if index is None:
                continue
            s = self.table.slots[index]
            if hashlib.sha256(self.read(index)).hexdigest() != s.sha256:
                s.state = SlotState.INVALID.name
                setattr(self.table, which, None)
                notes.append(f"{which} slot {index} failed its hash check and was invalidated")
        if self.table.active is None and self.table.fallback is not None:
            self.table.active, self.table.fallback = self.table.fallback, None
            self.table.slots[self.table.active].state = SlotState.ACTIVE.name
            notes.append(f"booted the fallback model in slot {self.table.active}")
        if notes:
            self.save()
        return notes

    def target_slot(self) -> int:
        """The slot a new image goes to: the first that is neither active nor fallback."""
        for i in range(self.slot_count):
            if i != self.table.active and i != self.table.fallback:
                return i
        # all slots hold an active or fallback image: overwrite the fallback
        return self.table.fallback if self.table.fallback is not None else 0

    def begin(self, index: int, size: int, sha256: str, name: str, *,
              replace_fallback: bool = False) -> int:
        """Start (or resume) writing an image. Returns the offset to continue from.

        The slot holding the fallback is refused (:class:`FallbackHeld`) unless
        ``replace_fallback``; with it, the slot loses its fallback role in the
        same table write that makes it RECEIVING, before any image byte changes.
        """
        s = self.slot(index)
        if index == self.table.active:
            raise FlashError(f"slot {index} holds the running model; write to another slot")
        if size > self.slot_bytes:
            raise FlashError(f"the image is {size} bytes; a slot holds {self.slot_bytes}")
        if s.state == SlotState.RECEIVING.name and s.sha256 == sha256 and s.size == size:
            return s.written
        if index == self.table.fallback:
            if not replace_fallback:
                raise FallbackHeld(
                    f"slot {index} holds the fallback model {s.name!r} (the rollback target); "
                    "writing it would lose the fallback. Check the image on the host and set "
                    "REPLACE_FALLBACK, or commit or roll back first")
            self.table.fallback = None
        self.table.slots[index] = Slot(SlotState.RECEIVING.name, size, 0, sha256, name, 0)
        self.save()
        return 0

    def write(self, index: int, offset: int, data: bytes) -> int:
        """Write image bytes at ``offset`` (must equal the bytes written so far)."""
        s = self.slot(index)
        if s.state != SlotState.RECEIVING.name:
            raise FlashError(f"slot {index} is not receiving an image")
        if offset != s.written:
            raise FlashError(f"expected offset {s.written}")
        if offset + len(data) > s.size:
            raise FlashError(f"chunk runs past the declared size {s.size}")
        os.pwrite(self._fd, data, index * self.slot_bytes + offset)
        s.written = offset + len(data)
        self.save()
        return s.written

    def set_state(self, index: int, state: SlotState, arena_bytes: int | None = None) -> None:
        s = self.slot(index)
        s.state = state.name
        if arena_bytes is not None:
            s.arena_bytes = arena_bytes
        self.save()

    def commit(self, index: int) -> None:
        s = self.slot(index)
        if index == self.table.active:
            return
        if s.state not in (SlotState.VERIFIED.name, SlotState.FALLBACK.name):
            raise FlashError(f"slot {index} is {s.state.lower()}, not a verified image")
        old = self.table.active
        if old is not None:
            self.table.slots[old].state = SlotState.FALLBACK.name
        if self.table.fallback is not None and self.table.fallback not in (old, index):
            self.table.slots[self.table.fallback].state = SlotState.VERIFIED.name
        self.table.fallback = old
        self.table.active = index
        s.state = SlotState.ACTIVE.name
        self.save()

    def rollback(self) -> int:
        fb = self.table.fallback
        if fb is None:
            raise FlashError("there is no previous model to return to")
        self.commit(fb)
        return fb
