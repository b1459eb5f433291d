"""The virtual board's flash: model slots whose state lives in write-once trailer records.

One file, ``<name>.flash``, holds ``slot_count`` slot areas of ``slot_bytes + trailer_bytes``
each (slot ``i`` at ``i * area_bytes``): the image first, then the slot's **trailer**, as in
MCUboot's image trailer. Erased flash reads 0xFF. A trailer holds write-once records, each
with a tag and a CRC-32, so a record cut short by a power cut is recognisable and ignored:

- BEGIN (image size, SHA-256, name): written when an upload starts, after the trailer and
  the image area it needs were erased;
- progress marks, one byte per :data:`PROGRESS_UNIT` bytes of image stored (the resume point);
- VERDICT (verified, with the arena it needs; or rejected), at MODEL_END;
- a status log of 16-byte records: SWITCH (sequence number, TEST or permanent), BOOTED (a
  test image has run once), CONFIRMED (the test image is kept), REVERTED.

Nothing else is persisted: which slot runs, which is the fallback and which is on trial is
derived from the images and trailers (:meth:`Flash.check_boot`, the boot decision of
docs/protocol.md 7.4), so no separate table can disagree with them.

Every change to the file goes through one primitive (:meth:`Flash._op`: program bytes, or
erase a region), which counts the operations (:attr:`Flash.writes`) and can cut the power at
operation N, optionally tearing it (only a prefix of its bytes lands), raising
:class:`PowerCut`. Programming ANDs the new bytes into the old ones, as NOR flash does, so
a write over bytes that were not erased shows up as corruption rather than passing unseen.

A file from an older virtual board (images at ``i * slot_bytes`` and a JSON slot table in
``<name>.slots.json``) is converted once when opened: the table is imported into trailers,
the old file is kept as ``<name>.flash.v0`` and the table renamed ``<name>.slots.json.imported``.
A table that cannot be used is moved aside to ``<name>.slots.json.bad`` and the board starts
with empty slots; :attr:`Flash.load_notes` says what happened (nothing is deleted).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError
from ..protocol.limits import U32_MAX
from ..protocol.messages import SlotState

SECTOR_BYTES = 4096
"""Erase unit: trailers are whole sectors; an upload erases the sectors its image needs."""
PROGRESS_UNIT = 1024
"""Image bytes per progress mark: an interrupted upload resumes at a multiple of this."""
ERASED = 0xFF
MARK = 0x00
NAME_MAX = 255

BEGIN_TAG = b"BEGN"
VERDICT_TAG = b"VRDT"
LOG_TAG = b"SLOG"
BEGIN_AT, BEGIN_BYTES = 0, 300
VERDICT_AT, VERDICT_BYTES = 304, 16
MARKS_AT = 320
LOG_RECORD_BYTES = 16
LOG_MIN_RECORDS = 64

VERIFIED, REJECTED = 1, 2
"""VERDICT record values."""
SWITCH, BOOTED, CONFIRMED, REVERTED = 1, 2, 3, 4
"""Status log record kinds."""
TEST = 0x01
"""SWITCH flag: a test switch (reverts at the next reset unless confirmed)."""
KIND_NAMES = {SWITCH: "SWITCH", BOOTED: "BOOTED", CONFIRMED: "CONFIRMED", REVERTED: "REVERTED"}

_BEGIN = struct.Struct("<4sI32sB255s")   # + crc32
_VERDICT = struct.Struct("<4sB3xI")       # + crc32
_LOG = struct.Struct("<4sBBHI")           # + crc32


class FlashError(WorkbenchError):
    """A slot operation that the flash layout forbids (message says why)."""


class FallbackHeld(FlashError):
    """A write into the fallback slot without consent to lose the fallback."""


class NotPending(FlashError):
    """A confirm (or revert) with no test switch on trial."""


class PowerCut(Exception):
    """The power was cut (an injected fault): the board stops at once, without clean-up."""


def trailer_bytes(slot_bytes: int) -> int:
    """Size of one slot's trailer: the records, one mark per PROGRESS_UNIT, and at least
    LOG_MIN_RECORDS log records, rounded up to whole sectors."""
    marks = -(-slot_bytes // PROGRESS_UNIT)
    log_at = MARKS_AT + -(-marks // 16) * 16
    need = log_at + LOG_MIN_RECORDS * LOG_RECORD_BYTES
    return -(-need // SECTOR_BYTES) * SECTOR_BYTES


def _crc(body: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(body))


def encode_begin(size: int, sha256: bytes, name: str) -> bytes:
    raw = name.encode("utf-8")[:NAME_MAX].decode("utf-8", "ignore").encode("utf-8")
    body = _BEGIN.pack(BEGIN_TAG, size, sha256, len(raw), raw.ljust(NAME_MAX, b"\0"))
    return body + _crc(body)


def encode_verdict(verdict: int, arena_bytes: int) -> bytes:
    body = _VERDICT.pack(VERDICT_TAG, verdict, arena_bytes)
    return body + _crc(body)


def encode_log(kind: int, flags: int, seq: int) -> bytes:
    body = _LOG.pack(LOG_TAG, kind, flags, 0, seq)
    return body + _crc(body)


def _checked(raw: bytes) -> bytes | None:
    """The record body if its CRC matches, else None."""
    body, crc = raw[:-4], raw[-4:]
    return body if _crc(body) == crc else None


@dataclass(frozen=True)
class LogRecord:
    kind: int
    flags: int
    seq: int

    def __str__(self) -> str:
        test = " TEST" if self.kind == SWITCH and self.flags & TEST else ""
        return f"{KIND_NAMES.get(self.kind, self.kind)}{test} #{self.seq}"


@dataclass
class Trailer:
    """One slot's trailer as parsed from flash (records that fail their CRC are left out
    and described in ``damaged``)."""

    begin: tuple[int, str, str] | None = None
    """(size, SHA-256 hex, name) of the image being or having been written."""
    verdict: tuple[int, int] | None = None
    """(VERIFIED or REJECTED, arena_bytes)."""
    marks: int = 0
    """Progress marks set, counted from the first (a gap ends the count)."""
    log: list[LogRecord] = field(default_factory=list)
    log_used: int = 0
    """Log entries that are not erased: the next record goes to this index."""
    log_capacity: int = 0
    damaged: list[str] = field(default_factory=list)
    erased: bool = True
    stray: list[str] = field(default_factory=list)
    """Bytes that no record of the format explains (marks after a gap, non-mark bytes)."""

    def progress(self) -> int:
        """Image bytes the marks vouch for (0 without a BEGIN)."""
        if self.begin is None:
            return 0
        return min(self.begin[0], self.marks * PROGRESS_UNIT)

    def latest_switch(self) -> LogRecord | None:
        switches = [r for r in self.log if r.kind == SWITCH]
        return max(switches, key=lambda r: r.seq) if switches else None

    def has(self, kind: int, seq: int) -> bool:
        return any(r.kind == kind and r.seq == seq for r in self.log)


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
    """The derived view of the slots (never stored: rebuilt from the trailers)."""

    slots: list[Slot] = field(default_factory=list)
    active: int | None = None
    fallback: int | None = None
    testing: int | None = None
    """The active slot when it runs a test switch (reverts at the next reset unless confirmed)."""
    pending: int | None = None
    """A slot with a test switch recorded that has not booted yet (it runs at the next boot)."""


# ------------------------------------------------------------------ legacy JSON slot table

class SlotTableError(WorkbenchError, ValueError):
    """A legacy slot table file that parses but holds values it cannot hold."""


_SHA256 = re.compile(r"[0-9a-f]{64}")
_LEGACY_STATES = ("EMPTY", "RECEIVING", "VERIFIED", "ACTIVE", "FALLBACK", "INVALID")


def _int(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise SlotTableError(f"{what} is {value!r}, not an integer in {low}..{high}")
    return value


def parse_slot_table(raw: object, slot_count: int, slot_bytes: int) -> SlotTableData:
    """Check a legacy slot table read from JSON; raise :class:`SlotTableError` saying what
    is wrong. (Older virtual boards kept their slot state in ``<name>.slots.json``.)"""
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
        if s["state"] not in _LEGACY_STATES:
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
    for role, state in (("active", "ACTIVE"), ("fallback", "FALLBACK")):
        index = raw.get(role)
        if index is not None:
            _int(index, role, 0, slot_count - 1)
            if slots[index].state != state:
                raise SlotTableError(f"{role} slot {index} is {slots[index].state}, not {state}")
        roles[role] = index
        holders = [i for i, s in enumerate(slots) if s.state == state]
        if holders != ([] if index is None else [index]):
            raise SlotTableError(f"slot(s) {holders} are {state} but {role} is {index}")
    return SlotTableData(slots, roles["active"], roles["fallback"])


def _aside(path: Path, suffix: str) -> Path:
    """Rename ``path`` to ``path + suffix`` (or ``.1``, ``.2``... if taken); return the new path."""
    target = path.with_name(path.name + suffix)
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}{suffix}.{n}")
        n += 1
    os.replace(path, target)
    return target


# ------------------------------------------------------------------ the flash

class Flash:
    """Model slots of one virtual board, persistent across restarts and power cuts.

    Call order: construct (parses the trailers; converts an older board's files once) ->
    :meth:`check_boot` (the boot decision; the firmware calls it at start and at RESET) ->
    :meth:`begin` / :meth:`write` / :meth:`set_state` (an upload) -> :meth:`commit`
    (``test=True`` for a test switch) -> :meth:`confirm` or :meth:`revert` /
    :meth:`rollback`. :attr:`table` is the derived view after each step. Each change is
    persisted before the method returns; a :class:`PowerCut` leaves whatever the
    operations that completed (and the landed prefix of a torn one) wrote.
    """

    def __init__(self, path: str | os.PathLike, slot_count: int, slot_bytes: int) -> None:
        self.path = Path(path)
        self.meta_path = self.path.with_suffix(".slots.json")
        self.slot_count = slot_count
        self.slot_bytes = slot_bytes
        self.trailer_bytes = trailer_bytes(slot_bytes)
        self.area_bytes = slot_bytes + self.trailer_bytes
        marks = -(-slot_bytes // PROGRESS_UNIT)
        self.log_at = MARKS_AT + -(-marks // 16) * 16
        self.log_capacity = (self.trailer_bytes - self.log_at) // LOG_RECORD_BYTES
        self.load_notes: list[str] = []
        """What happened at open (a converted or unusable older file); check_boot reports it."""
        self.writes = 0
        """Flash operations (programs and erases) done through this object."""
        self.cut_at: int | None = None
        self.tear = 0.0
        self.image_budget: int | None = None
        self.dead = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_file()
        self._fd = os.open(self.path, os.O_RDWR)
        self._written: dict[int, int] = {}
        """Exact bytes stored by the upload open since this boot (RAM, like the firmware's)."""
        self._bad_hash: set[int] = set()
        self._reverted: set[tuple[int, int]] = set()
        self._trailers = [self._parse(i) for i in range(slot_count)]
        self.table = SlotTableData()
        self._derive()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ------------------------------------------------------------------ faults
    def arm_power_cut(self, at_write: int | None = None, *, tear: float = 0.0,
                      image_bytes: int | None = None) -> None:
        """Cut the power at flash operation number ``at_write`` (counted in :attr:`writes`
        from 0): the operations before it complete, that one lands only its first
        ``int(len * tear)`` bytes, and :class:`PowerCut` is raised. ``image_bytes``: cut
        once that many more image bytes were programmed by :meth:`write` (SIM_FAULTS'
        ``power_cut_after``; exactly those bytes land). None disarms either."""
        if not 0.0 <= tear < 1.0:
            raise ValueError(f"tear is the fraction of the cut write that lands, 0 <= tear < 1; "
                             f"got {tear}")
        self.cut_at, self.tear, self.image_budget = at_write, tear, image_bytes

    # ------------------------------------------------------------------ the one primitive
    def _op(self, addr: int, data: bytes | None, length: int = 0, *, image: bool = False) -> None:
        """Program ``data`` at ``addr`` (ANDed into the old bytes, as NOR flash does), or
        with ``data=None`` erase ``length`` bytes to 0xFF. Counts the operation and applies
        an armed power cut."""
        if self.dead:
            raise PowerCut("the board has no power")
        n = len(data) if data is not None else length
        land, cut = n, None
        if self.cut_at is not None and self.writes >= self.cut_at:
            land = int(n * self.tear)
            cut = f"power cut at flash write {self.writes}" + (
                f" (torn: {land} of {n} bytes landed)" if land else "")
        elif image and self.image_budget is not None:
            if n >= self.image_budget:
                land, cut = self.image_budget, f"power cut after {self.image_budget} more image bytes"
            else:
                self.image_budget -= n
        if land:
            if data is None:
                os.pwrite(self._fd, b"\xff" * land, addr)
            else:
                old = np.frombuffer(os.pread(self._fd, land, addr), np.uint8)
                new = np.frombuffer(data[:land], np.uint8)
                os.pwrite(self._fd, (old & new).tobytes(), addr)
        if cut:
            self.dead = True
            raise PowerCut(cut)
        self.writes += 1

    def _program(self, addr: int, data: bytes, *, image: bool = False) -> None:
        self._op(addr, data, image=image)

    def _erase(self, addr: int, length: int) -> None:
        self._op(addr, None, length)

    # ------------------------------------------------------------------ layout
    def area(self, index: int) -> int:
        """File offset of slot ``index``'s area (its image; the trailer is at + slot_bytes)."""
        return index * self.area_bytes

    def _trailer_at(self, index: int) -> int:
        return self.area(index) + self.slot_bytes

    def _open_file(self) -> None:
        size_now = self.path.stat().st_size if self.path.exists() else None
        size = self.slot_count * self.area_bytes
        legacy = self.slot_count * self.slot_bytes
        if size_now == size:
            if self.meta_path.exists():  # converted before, the table was not yet renamed
                moved = _aside(self.meta_path, ".imported")
                self.load_notes.append(f"{self.meta_path.name} was already imported into the "
                                       f"slot trailers; renamed it to {moved.name}")
            return
        if size_now == legacy or (size_now is None and self.meta_path.exists()):
            self._convert_legacy(size_now is not None)
            return
        if size_now is not None:
            moved = _aside(self.path, ".bad")
            self.load_notes.append(f"{self.path.name} is {size_now:,} bytes, not the "
                                   f"{size:,} of this board's slots; moved it to {moved.name} "
                                   "and started with empty slots")
        self._create(self.path)

    def _create(self, path: Path) -> None:
        with open(path, "wb") as f:
            block = b"\xff" * (1 << 20)
            left = self.slot_count * self.area_bytes
            while left:
                f.write(block[:min(left, len(block))])
                left -= min(left, len(block))

    def _convert_legacy(self, had_file: bool) -> None:
        """One-time conversion of an older board's file and JSON table (see module doc)."""
        table = None
        if self.meta_path.exists():
            try:
                table = parse_slot_table(json.loads(self.meta_path.read_bytes()),
                                         self.slot_count, self.slot_bytes)
            except ValueError as e:  # not JSON, not UTF-8, or values it cannot hold
                bad = _aside(self.meta_path, ".bad")
                self.load_notes.append(f"slot table {self.meta_path.name} is unusable ({e}); "
                                       f"moved it to {bad.name} and started with empty slots")
        tmp = self.path.with_name(self.path.name + ".tmp")
        self._create(tmp)
        old = self.path.read_bytes() if had_file else b""
        with open(tmp, "r+b") as f:
            seq = 0
            roles = [] if table is None else [table.fallback, table.active]
            for i, s in enumerate(table.slots if table else []):
                if s.state == "EMPTY" or not s.sha256:
                    continue
                base, trailer = self.area(i), self.area(i) + self.slot_bytes
                f.seek(base)
                f.write(old[i * self.slot_bytes: i * self.slot_bytes + s.written])
                f.seek(trailer + BEGIN_AT)
                f.write(encode_begin(s.size, bytes.fromhex(s.sha256), s.name))
                done = s.written // PROGRESS_UNIT if s.written < s.size else \
                    -(-s.size // PROGRESS_UNIT)
                f.seek(trailer + MARKS_AT)
                f.write(bytes([MARK]) * done)
                if s.state != "RECEIVING":
                    f.seek(trailer + VERDICT_AT)
                    f.write(encode_verdict(REJECTED, 0) if s.state == "INVALID"
                            else encode_verdict(VERIFIED, s.arena_bytes))
            for i in roles:
                if i is not None:
                    seq += 1
                    f.seek(self.area(i) + self.slot_bytes + self.log_at)
                    f.write(encode_log(SWITCH, 0, seq))
            f.flush()
            os.fsync(f.fileno())
        kept = ""
        if had_file:
            v0 = self.path.with_name(self.path.name + ".v0")
            if not v0.exists():
                shutil.copyfile(self.path, v0)
            kept = f" (the old file is kept as {v0.name})"
        os.replace(tmp, self.path)
        if self.meta_path.exists():
            moved = _aside(self.meta_path, ".imported")
            self.load_notes.append(f"imported the slot table {self.meta_path.name} into the "
                                   f"slot trailers and renamed it to {moved.name}{kept}")
        elif had_file:
            self.load_notes.append(f"converted {self.path.name} to the trailer layout{kept}")

    # ------------------------------------------------------------------ parsing
    def _parse(self, index: int) -> Trailer:
        raw = os.pread(self._fd, self.trailer_bytes, self._trailer_at(index))
        t = Trailer(log_capacity=self.log_capacity, erased=raw == b"\xff" * len(raw))
        if t.erased:
            return t
        rec = raw[BEGIN_AT:BEGIN_AT + BEGIN_BYTES]
        body = _checked(rec)
        if body is not None and body[:4] == BEGIN_TAG:
            _, size, sha, n, name = _BEGIN.unpack(body)
            if 0 < size <= self.slot_bytes and n <= NAME_MAX:
                t.begin = (size, sha.hex(), name[:n].decode("utf-8", "replace"))
            else:
                t.damaged.append(f"BEGIN record holds impossible values (size {size})")
        elif rec != b"\xff" * BEGIN_BYTES:
            t.damaged.append("BEGIN record is torn or damaged")
        rec = raw[VERDICT_AT:VERDICT_AT + VERDICT_BYTES]
        body = _checked(rec)
        if body is not None and body[:4] == VERDICT_TAG and body[4] in (VERIFIED, REJECTED):
            _, verdict, arena = _VERDICT.unpack(body)
            t.verdict = (verdict, arena)
        elif rec != b"\xff" * VERDICT_BYTES:
            t.damaged.append("VERDICT record is torn or damaged")
        marks = raw[MARKS_AT:self.log_at]
        n = 0
        while n < len(marks) and marks[n] == MARK:
            n += 1
        t.marks = n
        if any(b not in (MARK, ERASED) for b in marks) or MARK in marks[n:]:
            t.stray.append("progress map holds bytes after a gap or other than 0x00/0xFF")
        for j in range(self.log_capacity):
            at = self.log_at + j * LOG_RECORD_BYTES
            rec = raw[at:at + LOG_RECORD_BYTES]
            if rec == b"\xff" * LOG_RECORD_BYTES:
                continue
            t.log_used = j + 1
            body = _checked(rec)
            if body is None or body[:4] != LOG_TAG or body[4] not in KIND_NAMES:
                t.damaged.append(f"status record {j} is torn or damaged")
                continue
            _, kind, flags, _, seq = _LOG.unpack(body)
            t.log.append(LogRecord(kind, flags, seq))
        return t

    def trailer(self, index: int) -> Trailer:
        """Slot ``index``'s trailer as last read from flash."""
        self.slot(index)
        return self._trailers[index]

    def audit(self) -> list[str]:
        """Inconsistencies between the trailers' records (empty when they agree): records
        in an order no sequence of operations of this module writes. Torn records are not
        inconsistencies (they are ignored; see ``Trailer.damaged``)."""
        problems: list[str] = []
        seqs: dict[int, int] = {}
        for i, t in enumerate(self._trailers):
            where = f"slot {i}"
            problems += [f"{where}: {s}" for s in t.stray]
            if t.begin is None:  # leftovers of a torn erase or BEGIN are ignored, not wrong
                continue
            size = t.begin[0]
            if t.marks > -(-size // PROGRESS_UNIT):
                problems.append(f"{where}: {t.marks} progress marks for {size} bytes")
            if t.verdict and t.progress() < size:
                problems.append(f"{where}: a verdict for an image stored up to {t.progress()}")
            if t.log and (t.verdict is None or t.verdict[0] != VERIFIED):
                problems.append(f"{where}: status records for an image that is not verified")
            last = 0
            switches: dict[int, LogRecord] = {}
            for r in t.log:
                if r.kind == SWITCH:
                    if r.seq <= last:
                        problems.append(f"{where}: switch #{r.seq} after #{last}")
                    if r.seq in seqs:
                        problems.append(f"{where}: switch #{r.seq} also in slot {seqs[r.seq]}")
                    last, seqs[r.seq], switches[r.seq] = r.seq, i, r
                    continue
                sw = switches.get(r.seq)
                if sw is None or not sw.flags & TEST:
                    problems.append(f"{where}: {r} refers to no earlier test switch")
                elif t.log.count(r) > 1:
                    problems.append(f"{where}: {r} recorded twice")
            for seq in switches:
                if t.has(CONFIRMED, seq) and t.has(REVERTED, seq):
                    problems.append(f"{where}: switch #{seq} both confirmed and reverted")
                if (t.has(CONFIRMED, seq) or t.has(REVERTED, seq)) and not t.has(BOOTED, seq):
                    problems.append(f"{where}: switch #{seq} settled before it booted")
        return problems

    # ------------------------------------------------------------------ the derived view
    def _refresh(self, index: int) -> None:
        self._trailers[index] = self._parse(index)

    def _hash_ok(self, index: int) -> bool:
        t = self._trailers[index]
        if index in self._bad_hash:
            return False
        image = os.pread(self._fd, t.begin[0], self.area(index))
        if hashlib.sha256(image).hexdigest() != t.begin[1]:
            self._bad_hash.add(index)
            return False
        return True

    def _derive(self, boot: bool = False) -> list[str]:
        """Rebuild :attr:`table` from the trailers. With ``boot``, make the boot decision:
        hash-check the slots it picks, run a pending test once (BOOTED) and revert a test
        that already ran unconfirmed (REVERTED). Returns notes of what it repaired."""
        notes: list[str] = []
        slots: list[Slot] = []
        ranked: list[tuple[int, int]] = []
        for i, t in enumerate(self._trailers):
            if t.begin is None:
                slots.append(Slot(SlotState.EMPTY.name if t.erased and not t.damaged
                                  else SlotState.INVALID.name))
                continue
            size, sha, name = t.begin
            s = Slot(SlotState.RECEIVING.name, size, self._written.get(i, t.progress()), sha, name)
            if t.verdict is not None:
                s.written = size
                if t.verdict[0] == REJECTED or i in self._bad_hash:
                    s.state = SlotState.INVALID.name
                else:
                    s.state, s.arena_bytes = SlotState.VERIFIED.name, t.verdict[1]
                    sw = t.latest_switch()
                    if sw is not None:
                        ranked.append((sw.seq, i))
            slots.append(s)
        ranked.sort(reverse=True)
        active = fallback = testing = pending = None
        skipped_bad = False
        for rank, (seq, i) in enumerate(ranked):
            t = self._trailers[i]
            sw = t.latest_switch()
            committed = not sw.flags & TEST or t.has(CONFIRMED, seq)
            on_trial = (rank == 0 and not committed and not t.has(REVERTED, seq)
                        and (i, seq) not in self._reverted)
            if not (committed or on_trial):
                continue  # a test that was reverted or superseded: just a verified image
            if boot and not self._hash_ok(i):
                slots[i].state = SlotState.INVALID.name
                notes.append(f"slot {i} failed its hash check (the image does not match the "
                             "SHA-256 in its trailer) and was invalidated")
                skipped_bad = skipped_bad or active is None
                continue
            if active is None:
                if committed:
                    active = i
                elif not t.has(BOOTED, seq):
                    if not boot:
                        pending = i
                        continue
                    try:
                        self._append(i, BOOTED, 0, seq, derive=False)
                    except FlashError as e:  # cannot record the trial: do not start it
                        self._reverted.add((i, seq))
                        notes.append(f"did not run the test switch #{seq} of slot {i}: {e}")
                        continue
                    active = testing = i
                    notes.append(f"slot {i} runs its test switch #{seq} once; it reverts "
                                 "at the next reset unless confirmed (MODEL_CONFIRM)")
                elif boot:
                    self._reverted.add((i, seq))
                    notes.append(f"reverted the unconfirmed test switch #{seq} of slot {i}")
                    try:
                        self._append(i, REVERTED, 0, seq, derive=False)
                    except FlashError as e:  # the log is full: the decision is the same
                        notes.append(str(e))
                else:
                    active = testing = i
                continue
            if committed:
                fallback = i
                break
        if boot and skipped_bad and active is not None:
            notes.append(f"booted the fallback model in slot {active}")
        for i, role in ((active, SlotState.TESTING if testing is not None else SlotState.ACTIVE),
                        (fallback, SlotState.FALLBACK), (pending, SlotState.PENDING)):
            if i is not None:
                slots[i].state = role.name
        self.table = SlotTableData(slots, active, fallback, testing, pending)
        return notes

    def slot(self, index: int) -> Slot:
        if not 0 <= index < self.slot_count:
            raise FlashError(f"no slot {index}; this board has slots 0..{self.slot_count - 1}")
        return self.table.slots[index]

    # ------------------------------------------------------------------ boot
    def check_boot(self) -> list[str]:
        """The boot decision (docs/protocol.md 7.4): re-read every trailer, hash-check the
        slots it picks, run a pending test once, revert an unconfirmed one, and rebuild
        :attr:`table`. RAM state (an open upload's exact byte count) is forgotten, as at a
        reset. May write BOOTED or REVERTED records (so may raise :class:`PowerCut`).

        Returns notes of what happened (empty if all was well), starting with
        :attr:`load_notes` the first time and any torn records found.
        """
        notes, self.load_notes = list(self.load_notes), []
        self._written.clear()
        self._bad_hash.clear()
        self._reverted.clear()
        self._trailers = [self._parse(i) for i in range(self.slot_count)]
        for i, t in enumerate(self._trailers):
            notes += [f"slot {i}: {d} (ignored)" for d in t.damaged]
        return notes + self._derive(boot=True)

    # ------------------------------------------------------------------ images
    def read(self, index: int) -> bytes:
        s = self.slot(index)
        return os.pread(self._fd, s.size, self.area(index))

    def target_slot(self) -> int:
        """The slot a new image goes to: the first that is neither active, fallback nor
        pending a test; else the fallback (which then needs consent to be replaced)."""
        t = self.table
        for i in range(self.slot_count):
            if i not in (t.active, t.fallback, t.pending):
                return i
        for i in (t.pending, t.fallback):
            if i is not None:
                return i
        return 0

    def erase(self, index: int) -> None:
        """Erase slot ``index`` (trailer first, then its image area): it becomes EMPTY, as
        mcumgr's image erase leaves a slot. Two flash operations; a cut between them leaves
        an erased trailer (an EMPTY slot) over stale image bytes, which nothing reads.
        Raises :class:`FlashError` for the running slot (the board cannot erase the model
        it runs) or a slot that does not exist."""
        self.slot(index)
        if index == self.table.active:
            raise FlashError(f"slot {index} holds the running model; it cannot be erased")
        self._erase(self._trailer_at(index), self.trailer_bytes)
        self._erase(self.area(index), self.slot_bytes)
        self._refresh(index)
        self._derive()

    def begin(self, index: int, size: int, sha256: str, name: str, *,
              replace_fallback: bool = False) -> int:
        """Start (or resume) writing an image. Returns the offset to continue from.

        Resume: a slot RECEIVING the same size and SHA-256 continues at the bytes its
        progress marks vouch for (or, within one boot, the exact bytes stored); nothing is
        written. Otherwise three flash operations: erase the trailer (the slot loses its
        records and roles first), erase the image sectors the new image needs, program
        BEGIN. The slot holding the fallback is refused (:class:`FallbackHeld`) unless
        ``replace_fallback``.
        """
        s = self.slot(index)
        if index == self.table.active:
            raise FlashError(f"slot {index} holds the running model; write to another slot")
        if size > self.slot_bytes:
            raise FlashError(f"the image is {size} bytes; a slot holds {self.slot_bytes}")
        if (s.state == SlotState.RECEIVING.name and s.sha256 == sha256 and s.size == size
                and not self._trailers[index].damaged):  # a torn record: start afresh
            self._written[index] = s.written
            return s.written
        if index == self.table.fallback and not replace_fallback:
            raise FallbackHeld(
                f"slot {index} holds the fallback model {s.name!r} (the rollback target); "
                "writing it would lose the fallback. Check the image on the host and set "
                "REPLACE_FALLBACK, or commit or roll back first")
        self._written.pop(index, None)  # RAM memos about the old image go with it
        self._bad_hash.discard(index)
        self._reverted = {(i, q) for i, q in self._reverted if i != index}
        try:
            self._erase(self._trailer_at(index), self.trailer_bytes)
            self._erase(self.area(index), -(-size // SECTOR_BYTES) * SECTOR_BYTES)
            self._program(self._trailer_at(index) + BEGIN_AT,
                          encode_begin(size, bytes.fromhex(sha256), name))
        finally:
            self._refresh(index)
            self._derive()
        self._written[index] = 0
        return 0

    def write(self, index: int, offset: int, data: bytes) -> int:
        """Program image bytes at ``offset`` (must equal the bytes written so far), then the
        progress marks of every PROGRESS_UNIT it completed (one more operation, if any).
        Returns the bytes now stored."""
        s = self.slot(index)
        if s.state != SlotState.RECEIVING.name:
            raise FlashError(f"slot {index} is not receiving an image")
        if offset != s.written:
            raise FlashError(f"expected offset {s.written}")
        if offset + len(data) > s.size:
            raise FlashError(f"chunk runs past the declared size {s.size}")
        t = self._trailers[index]
        try:
            self._program(self.area(index) + offset, data, image=True)
            written = offset + len(data)
            self._written[index] = s.written = written
            done = -(-s.size // PROGRESS_UNIT) if written == s.size else written // PROGRESS_UNIT
            if done > t.marks:
                self._program(self._trailer_at(index) + MARKS_AT + t.marks,
                              bytes([MARK]) * (done - t.marks))
        finally:
            self._refresh(index)
        return written

    def set_state(self, index: int, state: SlotState, arena_bytes: int | None = None) -> None:
        """Record MODEL_END's verdict: VERIFIED (with ``arena_bytes``) or INVALID. One
        operation; the verdict is write-once (a new upload erases it)."""
        s = self.slot(index)
        if state not in (SlotState.VERIFIED, SlotState.INVALID):
            raise FlashError(f"a slot becomes {state.name} by the boot decision or a switch, "
                             "not by set_state")
        t = self._trailers[index]
        if t.begin is None or t.verdict is not None:
            raise FlashError(f"slot {index} is {s.state.lower()}; its verdict was recorded "
                             "already or it holds no image")
        record = (encode_verdict(VERIFIED, arena_bytes or 0) if state == SlotState.VERIFIED
                  else encode_verdict(REJECTED, 0))
        try:
            self._program(self._trailer_at(index) + VERDICT_AT, record)
        finally:
            self._refresh(index)
            self._written.pop(index, None)
            self._derive()

    # ------------------------------------------------------------------ switches
    def _next_seq(self) -> int:
        return 1 + max((r.seq for t in self._trailers for r in t.log), default=0)

    def _append(self, index: int, kind: int, flags: int, seq: int, *, derive: bool = True) -> None:
        t = self._trailers[index]
        if t.log_used >= t.log_capacity:
            raise FlashError(f"the status log of slot {index} is full ({t.log_capacity} "
                             "records since its image was written); upload the image again")
        try:
            self._program(self._trailer_at(index) + self.log_at + t.log_used * LOG_RECORD_BYTES,
                          encode_log(kind, flags, seq))
        finally:
            self._refresh(index)
            if derive:
                self._derive()

    def commit(self, index: int, *, test: bool = False, now: bool = True) -> None:
        """Switch to a verified slot: append SWITCH (next sequence number, TEST or
        permanent). A test switch that runs ``now`` (MODEL_COMMIT) also appends BOOTED;
        with ``now=False`` it waits for the next boot (PENDING), as MCUboot's ``test``.
        Committing the active slot permanently while it is on trial confirms it;
        otherwise committing the active slot changes nothing."""
        s = self.slot(index)
        if index == self.table.active:
            if index == self.table.testing and not test:
                self.confirm()
            return
        if s.state not in (SlotState.VERIFIED.name, SlotState.FALLBACK.name,
                           SlotState.PENDING.name):
            raise FlashError(f"slot {index} is {s.state.lower()}, not a verified image")
        t = self._trailers[index]
        need = 3 if test else 1  # a test switch keeps room for BOOTED and its settlement
        if t.log_used + need > t.log_capacity:
            raise FlashError(f"the status log of slot {index} is full ({t.log_capacity} "
                             "records since its image was written); upload the image again")
        seq = self._next_seq()
        self._append(index, SWITCH, TEST if test else 0, seq, derive=not (test and now))
        if test and now:
            self._append(index, BOOTED, 0, seq)

    def confirm(self) -> int:
        """Keep the test image that runs (append CONFIRMED); it no longer reverts. Returns
        the slot. Raises :class:`NotPending` when no test switch is on trial."""
        i = self.table.testing
        if i is None:
            raise NotPending("no test switch is waiting for confirmation"
                             + (f"; slot {self.table.active} runs permanently"
                                if self.table.active is not None else ""))
        self._append(i, CONFIRMED, 0, self._trailers[i].latest_switch().seq)
        return i

    def revert(self) -> int | None:
        """Give up the test image that runs (append REVERTED): the previous model runs
        again. Returns the slot now active (None if there was no previous model). Raises
        :class:`NotPending` without a trial."""
        i = self.table.testing
        if i is None:
            raise NotPending("no test switch is on trial; nothing to revert")
        self._append(i, REVERTED, 0, self._trailers[i].latest_switch().seq)
        return self.table.active

    def rollback(self) -> int:
        """Return to the previous model: during a test switch, revert it; otherwise switch
        permanently to the fallback. Returns the slot now active."""
        if self.table.testing is not None and self.table.fallback is not None:
            return self.revert()
        fb = self.table.fallback
        if fb is None:
            raise FlashError("there is no previous model to return to")
        self.commit(fb)
        return fb
