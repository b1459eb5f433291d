"""The virtual board's flash seen as MCUboot image slots, for its SMP (mcumgr) personality.

:class:`McubootSlots` is the one place where the SMP server touches
:class:`~workbench.sim.flash.Flash`: it turns mcumgr's image states (``active``,
``confirmed``, ``pending``, ``permanent``) into the slot trailer records and back, and runs
an image upload through ``Flash.begin/write/set_state``. The model is MCUboot in
*direct-XIP with revert* mode: an image runs from the slot it was written to, nothing is
swapped, and a test boot reverts unless confirmed. Slot numbers are the flash's slots
(0 and 1). The mapping (docs/protocol.md, "SMP (mcumgr) personality"):

- ``active``: the slot whose model runs since the last boot (``Flash.table.active`` then);
- the next boot is read from the trailers: a test switch not yet booted
  (``table.pending``) is a TEST boot of that slot; a running test switch
  (``table.testing``) means the next boot REVERTs to ``table.fallback``; a permanent
  switch recorded for the other slot since this boot is a NORMAL boot of it;
- flags follow Zephyr's ``img_mgmt_state_read``: the running slot is ``confirmed`` unless
  it reverts at the next boot; the other slot is ``pending`` (TEST), ``pending`` and
  ``permanent`` (NORMAL boot of it) or ``confirmed`` (the REVERT target).

A slot is listed when its image is complete and verified (a BEGIN and a VERIFIED verdict
in its trailer) and its MCUboot header and SHA-256 TLV read back; an upload in progress or
a refused one is not listed, as Zephyr lists only slots whose TLVs it can read.

:func:`read_image` reads images with :func:`workbench.protocol.image.parse_image` (the reader
and verifier of the framed boards too) and reports its refusals with img_mgmt's codes; a
board provisioned with keys also verifies the signature when an upload ends
(:meth:`workbench.sim.smp_server.SmpFirmware._check_image`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum

from ..protocol.image import MalformedImage, TamperedImage, parse_image
from ..protocol.messages import SlotState
from .flash import Flash, FlashError

IMAGE_MAGIC = 0x96F3B83D
_HEADER = struct.Struct("<IIHHIIBBHII")
HEADER_BYTES = _HEADER.size  # 32
TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC = 0x6907, 0x6908
_TLV = struct.Struct("<HH")
TLV_SHA256 = 0x10
F_NON_BOOTABLE = 0x10
F_UNREADABLE = 0x04 | 0x08 | 0x200 | 0x400 | 0x800
"""Encrypted or compressed payloads: the board cannot run the model without a key/decoder."""


class ImgErr(IntEnum):
    """mcumgr's image group error codes (Zephyr's ``img_mgmt_err_code_t``) this board uses."""

    UNKNOWN = 1
    NO_IMAGE = 3
    NO_TLVS = 4
    INVALID_TLV = 5
    TLV_MULTIPLE_HASHES_FOUND = 6
    TLV_INVALID_SIZE = 7
    HASH_NOT_FOUND = 8
    NO_FREE_SLOT = 9
    FLASH_WRITE_FAILED = 12
    INVALID_SLOT = 14
    INVALID_OFFSET = 20
    INVALID_LENGTH = 21
    INVALID_IMAGE_HEADER = 22
    INVALID_IMAGE_HEADER_MAGIC = 23
    INVALID_HASH = 24
    CURRENT_VERSION_IS_NEWER = 27
    IMAGE_ALREADY_PENDING = 28
    INVALID_IMAGE_VECTOR_TABLE = 29
    INVALID_IMAGE_TOO_LARGE = 30
    INVALID_IMAGE_DATA_OVERRUN = 31
    IMAGE_SETTING_TEST_TO_ACTIVE_DENIED = 33


class ImageRefused(Exception):
    """An image operation mcumgr answers with an image group error (``rc``, ``why``)."""

    def __init__(self, rc: ImgErr, why: str) -> None:
        super().__init__(why)
        self.rc = rc


@dataclass(frozen=True)
class ImageInfo:
    version: tuple[int, int, int, int]
    flags: int
    hash: bytes
    """The SHA-256 TLV: what SMP calls the image's hash."""
    hdr_size: int
    img_size: int

    @property
    def version_text(self) -> str:
        """As Zephyr's ``img_mgmt_ver_str``: ``major.minor.revision`` and ``.build`` if set."""
        major, minor, rev, build = self.version
        return f"{major}.{minor}.{rev}" + (f".{build}" if build else "")

    def payload(self, image: bytes) -> bytes:
        return image[self.hdr_size:self.hdr_size + self.img_size]


def check_header(first: bytes) -> None:
    """What Zephyr checks on an upload's first chunk: a whole header with MCUboot's magic."""
    if len(first) < HEADER_BYTES:
        raise ImageRefused(ImgErr.INVALID_IMAGE_HEADER, f"the first chunk holds {len(first)} "
                           f"bytes, less than the {HEADER_BYTES}-byte MCUboot image header")
    magic = _HEADER.unpack_from(first)[0]
    if magic != IMAGE_MAGIC:
        raise ImageRefused(ImgErr.INVALID_IMAGE_HEADER_MAGIC,
                           f"not an MCUboot image: magic 0x{magic:08x}, not 0x{IMAGE_MAGIC:08x} "
                           "(sign the model with `imgtool sign`)")


def read_image(image: bytes) -> ImageInfo:
    """Header, TLV areas and the SHA-256 TLV of an MCUboot image, checked against the bytes
    by :func:`workbench.protocol.image.parse_image` (the reader every virtual board uses),
    its refusals turned into img_mgmt's codes. Raises :class:`ImageRefused`."""
    check_header(image)
    flags = _HEADER.unpack_from(image)[5]
    if flags & F_UNREADABLE:
        raise ImageRefused(ImgErr.INVALID_IMAGE_HEADER, f"image flags 0x{flags:x}: encrypted or "
                           "compressed images are not supported by this board")
    try:
        parsed = parse_image(image)
    except TamperedImage as e:
        raise ImageRefused(ImgErr.INVALID_HASH, f"{e} (changed after imgtool signed it)") from None
    except MalformedImage as e:
        raise ImageRefused(ImgErr.INVALID_TLV, str(e)) from None
    h = parsed.header
    return ImageInfo(h.version, h.flags, parsed.digest, h.header_size, h.image_size)


class Boot(IntEnum):
    """The next boot, as Zephyr's ``img_mgmt_next_boot_type``."""

    NORMAL = 0
    TEST = 1
    REVERT = 2


@dataclass
class Upload:
    slot: int
    size: int
    sha: bytes
    off: int


_LISTED = {SlotState.VERIFIED.name, SlotState.ACTIVE.name, SlotState.FALLBACK.name,
           SlotState.TESTING.name, SlotState.PENDING.name}


class McubootSlots:
    """Two flash slots as MCUboot sees them (see the module docstring).

    Call order: :meth:`boot` (or ``Flash.check_boot`` then :meth:`booted`), at start and
    at every reset -> :meth:`states` any time -> :meth:`upload_chunk` repeatedly (an
    upload; on the last chunk it calls :meth:`finish` with the caller's check) ->
    :meth:`set_state` (test or confirm) -> :meth:`boot` again. :meth:`erase` clears a slot
    not in use. Every flash change goes through :class:`Flash` (counted, persisted,
    subject to injected power cuts).
    """

    def __init__(self, flash: Flash) -> None:
        if flash.slot_count != 2:
            raise ValueError(f"the SMP personality needs a board with two model slots; this "
                             f"one has {flash.slot_count}")
        self.flash = flash
        self.running: int | None = None
        self.upload: Upload | None = None
        self._info: dict[tuple[int, str], ImageInfo | None] = {}

    # ------------------------------------------------------------------ reading
    def boot(self) -> list[str]:
        """MCUboot's boot decision (the flash's), then :meth:`booted`. Returns its notes."""
        notes = self.flash.check_boot()
        self.booted()
        return notes

    def booted(self) -> None:
        """After ``Flash.check_boot``: the active slot runs; an upload in RAM is forgotten
        (its progress marks in flash remain, so a new first chunk resumes there)."""
        self.running = self.flash.table.active
        self.upload = None

    def info(self, slot: int) -> ImageInfo | None:
        """The image in ``slot`` if it is listed (complete, verified, readable)."""
        s = self.flash.slot(slot)
        if s.state not in _LISTED:
            return None
        key = (slot, s.sha256)
        if key not in self._info:
            try:
                self._info[key] = read_image(self.flash.read(slot))
            except ImageRefused:
                self._info[key] = None
        return self._info[key]

    def image(self, slot: int) -> bytes:
        return self.flash.read(slot)

    def other(self) -> int:
        return 1 if self.running == 0 else 0 if self.running == 1 else self.flash.target_slot()

    def next_boot(self) -> tuple[int | None, Boot]:
        t = self.flash.table
        if t.pending is not None:
            return t.pending, Boot.TEST
        if t.testing is not None and t.testing == self.running:
            return t.fallback, Boot.REVERT
        return (t.active if t.active is not None else self.running), Boot.NORMAL

    def states(self) -> list[dict]:
        """The ``images`` list of mcumgr's image state read, slot 0 first."""
        nbs, kind = self.next_boot()
        rows = []
        for slot in (0, 1):
            info = self.info(slot)
            if info is None:
                continue
            row = {"slot": slot, "version": info.version_text, "hash": info.hash}
            flags = {"bootable": not info.flags & F_NON_BOOTABLE}
            if slot == self.running:
                flags["active"] = True
                flags["confirmed"] = kind != Boot.REVERT
            elif nbs == slot and nbs != self.running:
                if kind == Boot.NORMAL:
                    flags["pending"] = flags["permanent"] = True
                elif kind == Boot.TEST:
                    flags["pending"] = True
                else:
                    flags["confirmed"] = True
            row.update({k: v for k, v in flags.items() if v})  # Zephyr's frugal list
            rows.append(row)
        return rows

    def find(self, digest: bytes) -> int:
        for slot in (0, 1):
            info = self.info(slot)
            if info is not None and info.hash == digest:
                return slot
        raise ImageRefused(ImgErr.HASH_NOT_FOUND, f"no slot holds an image with hash "
                           f"{digest.hex()}")

    def in_use(self, slot: int) -> bool:
        """Zephyr's ``img_mgmt_slot_in_use``: running, or the slot the next boot goes to."""
        nbs, kind = self.next_boot()
        if slot == self.running:
            return True
        return slot == nbs and (kind != Boot.NORMAL or nbs != self.running)

    # ------------------------------------------------------------------ state write
    def set_state(self, digest: bytes | None, confirm: bool) -> None:
        """mcumgr's image state write (Zephyr's ``img_mgmt_set_next_boot_slot``): a test of
        the slot with ``digest``, or a confirm of it (of the running image without one)."""
        if digest is None:
            if not confirm:
                raise ImageRefused(ImgErr.INVALID_HASH, "a test needs the image's hash")
            if self.running is None:
                raise ImageRefused(ImgErr.NO_IMAGE, "no image runs; there is nothing to confirm")
            slot = self.running
        else:
            if len(digest) != 32:
                raise ImageRefused(ImgErr.INVALID_HASH, f"a hash of {len(digest)} bytes; "
                                   "images are named by their 32-byte SHA-256 TLV")
            slot = self.find(digest)
        nbs, kind = self.next_boot()
        if not confirm and slot == self.running:
            raise ImageRefused(ImgErr.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED,
                               f"slot {slot} runs already; test the other slot's image")
        pending = ImageRefused(ImgErr.IMAGE_ALREADY_PENDING, f"slot {nbs} is already set for "
                               "the next boot; reset (or confirm the running image) first")
        if kind == Boot.TEST:
            if not confirm and slot == nbs:
                return
            raise pending
        if kind == Boot.NORMAL:
            if confirm and slot == nbs:
                return
            if (slot == self.running and self.running != nbs) or (not confirm and slot == nbs):
                raise pending
        if kind == Boot.REVERT:
            if confirm and slot == nbs:
                return
            if not confirm:
                raise pending
        try:
            if slot == self.running:
                self.flash.confirm()
            else:
                self.flash.commit(slot, test=not confirm, now=False)
        except FlashError as e:
            raise ImageRefused(ImgErr.FLASH_WRITE_FAILED, str(e)) from e

    # ------------------------------------------------------------------ upload
    def upload_chunk(self, off: int, data: bytes, size: int | None, sha: bytes | None,
                     image: int, upgrade: bool, check) -> tuple[int, bool | None]:
        """One ``img upload`` request, as Zephyr's ``img_mgmt_upload``. Returns the offset to
        answer and, on the last chunk, whether the stored bytes match ``sha``. ``check``
        (the stored image -> None, or raises :class:`ImageRefused`) decides whether a
        complete image may run; a refused image leaves the slot marked INVALID."""
        if off == 0:
            check_header(data)
            if size is None:
                raise ImageRefused(ImgErr.INVALID_LENGTH, "the first chunk needs `len`")
            if sha is None or len(sha) != 32:
                raise ImageRefused(ImgErr.INVALID_HASH, "this board needs `sha`, the image's "
                                   "full SHA-256, in the first chunk (its slot trailer records "
                                   "it before the first byte); smpclient sends it by default")
            if self.upload is not None and self.upload.sha == sha:
                return self.upload.off, None  # resume: answer where it stands
            if image != 0:
                raise ImageRefused(ImgErr.INVALID_SLOT, f"image {image}: this board has one "
                                   "updatable image (image 0)")
            slot = self.other()
            if self.in_use(slot):
                raise ImageRefused(ImgErr.NO_FREE_SLOT, f"slot {slot} is set for the next boot "
                                   "or runs; reset or confirm first")
            if size > self.flash.slot_bytes:
                raise ImageRefused(ImgErr.INVALID_IMAGE_TOO_LARGE, f"the image is {size:,} "
                                   f"bytes; a slot holds {self.flash.slot_bytes:,}")
            if upgrade and self.running is not None:
                new = struct.unpack_from("<BBHI", data, 20)
                now = self.info(self.running)
                if now is not None and now.version[:3] >= new[:3]:
                    raise ImageRefused(ImgErr.CURRENT_VERSION_IS_NEWER,
                                       f"version {'.'.join(map(str, new[:3]))} is not newer "
                                       f"than the running {now.version_text}")
            self.upload = None
            try:
                start = self.flash.begin(slot, size, sha.hex(), "mcuboot image",
                                         replace_fallback=True)
            except FlashError as e:
                raise ImageRefused(ImgErr.UNKNOWN, str(e)) from e
            self.upload = Upload(slot, size, sha, start)
            if start:
                return start, None  # resumed from the trailer's progress marks
        elif self.upload is None or off != self.upload.off:
            return (0 if self.upload is None else self.upload.off), None
        up = self.upload
        if off + len(data) > up.size:
            self.upload = None
            raise ImageRefused(ImgErr.INVALID_IMAGE_DATA_OVERRUN,
                               f"{off} + {len(data)} bytes run past the image's {up.size}")
        if data:
            try:
                up.off = self.flash.write(up.slot, off, data)
            except FlashError as e:
                self.upload = None
                raise ImageRefused(ImgErr.FLASH_WRITE_FAILED, str(e)) from e
        if up.off < up.size:
            return up.off, None
        self.upload = None
        return up.off, self.finish(up, check)

    def finish(self, up: Upload, check) -> bool:
        stored = self.flash.read(up.slot)
        if hashlib.sha256(stored).digest() != up.sha:
            self.flash.set_state(up.slot, SlotState.INVALID)
            return False
        try:
            arena = check(stored)
        except ImageRefused:
            self.flash.set_state(up.slot, SlotState.INVALID)
            raise
        self.flash.set_state(up.slot, SlotState.VERIFIED, arena)
        return True

    # ------------------------------------------------------------------ erase
    def erase(self, slot: int | None) -> None:
        """mcumgr's image erase (default: the slot not running)."""
        slot = self.other() if slot is None else slot
        if slot not in (0, 1):
            raise ImageRefused(ImgErr.INVALID_SLOT, f"no slot {slot}; this board has 0 and 1")
        if self.info(slot) is not None and self.in_use(slot):
            raise ImageRefused(ImgErr.NO_FREE_SLOT, f"slot {slot} runs or is set for the next "
                               "boot; it cannot be erased")
        self.upload = None
        try:
            self.flash.erase(slot)
        except FlashError as e:
            raise ImageRefused(ImgErr.UNKNOWN, str(e)) from e
