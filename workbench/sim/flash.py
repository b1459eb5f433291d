"""The virtual board's flash: model slots A and B and their metadata, in files.

Two files side by side: ``<name>.flash`` holds the slot images (slot ``i`` at
``i * slot_bytes``) and ``<name>.slots.json`` the slot table. Image bytes are
written before the table that counts them, and the table is replaced
atomically (write a temporary file, then rename), so killing the process at
any instant (a "power cut") leaves a table that never claims more bytes than
the image holds. On start the active image is re-hashed; a corrupt one is
marked invalid and the fallback slot takes over, as a bootloader would.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..protocol.messages import SlotState
from ..errors import WorkbenchError


class FlashError(WorkbenchError):
    """A slot operation that the flash layout forbids (message says why)."""


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
        self.table = self._load()
        self._fd = os.open(self.path, os.O_RDWR)

    def close(self) -> None:
        os.close(self._fd)

    # ------------------------------------------------------------------ table
    def _load(self) -> SlotTableData:
        try:
            raw = json.loads(self.meta_path.read_text())
            slots = [Slot(**s) for s in raw["slots"]]
            table = SlotTableData(slots, raw.get("active"), raw.get("fallback"))
            if len(slots) != self.slot_count:
                raise ValueError("slot count changed")
        except FileNotFoundError:
            table = SlotTableData([Slot() for _ in range(self.slot_count)])
        except (ValueError, KeyError, TypeError):
            # A table we cannot read: erase it, as a bootloader would with a bad CRC.
            table = SlotTableData([Slot() for _ in range(self.slot_count)])
        return table

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

        Returns messages describing what was repaired (empty if all was well).
        """
        notes = []
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

    def begin(self, index: int, size: int, sha256: str, name: str) -> int:
        """Start (or resume) writing an image. Returns the offset to continue from."""
        s = self.slot(index)
        if index == self.table.active:
            raise FlashError(f"slot {index} holds the running model; write to another slot")
        if size > self.slot_bytes:
            raise FlashError(f"the image is {size} bytes; a slot holds {self.slot_bytes}")
        if s.state == SlotState.RECEIVING.name and s.sha256 == sha256 and s.size == size:
            return s.written
        if index == self.table.fallback:
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
