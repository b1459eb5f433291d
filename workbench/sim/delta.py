"""The virtual board's side of delta updates (docs/protocol.md 7.5).

Call order, driven by :mod:`.firmware`: MODEL_BEGIN with ``BeginFlag.DELTA`` passes
:func:`begin_problem` (capability, patch buffer, base = the active image), the flash
slot is begun for the *rebuilt* image (size ``image_size``, SHA-256 of the new image) and
a :class:`DeltaTransfer` stages the patch: MODEL_CHUNK bytes go to RAM
(:meth:`DeltaTransfer.stage`), never to flash. At MODEL_END :func:`apply` streams the
patch over the active slot's image and writes the result into the target slot front to
back, through the firmware's flash-write function, in blocks of :data:`WRITE_BLOCK`
bytes. The firmware then verifies the rebuilt image as it verifies a full upload.

The staging buffer is RAM: :data:`PATCH_BUFFER_BYTES` at most (a head-only retrain's
patch is 1-2 % of the image); a reset or power cut loses it, so the patch is sent again
from offset 0. Image bytes already written into the target slot for the same image stay
(the slot's ``written``) and are skipped, not rewritten, when the patch is applied again.

detools is imported only when a patch is applied; without it the board does not announce
the DELTA capability (:func:`available`) and refuses DELTA with NOT_SUPPORTED.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from ..errors import WorkbenchError
from ..protocol import messages as m
from ..protocol.delta import PatchHeaderError, read_patch_header

PATCH_BUFFER_BYTES = 64 * 1024
"""Most patch bytes the virtual board stages in RAM (a bigger patch: MODEL_TOO_LARGE,
detail = this figure; the host then sends the full image)."""
WRITE_BLOCK = 4096
"""Bytes of rebuilt image per flash write (one flash sector of the reference boards)."""
INSTALL_HINT = "pip install 'tinyml-workbench[deploy]'"


def available() -> bool:
    """True if detools can be imported here (the board can apply patches)."""
    try:
        import detools  # noqa: F401
    except ImportError:
        return False
    return True


def begin_problem(begin: m.ModelBegin, *, enabled: bool, active_sha256: str | None,
                  active_name: str, active_slot: int | None
                  ) -> tuple[m.ErrorCode, str, int] | None:
    """What a delta MODEL_BEGIN must be refused with before the slot is touched, as
    (code, message, detail), or None. Checked: the board applies deltas, the patch and
    the image are not empty, the patch fits :data:`PATCH_BUFFER_BYTES`, and
    ``base_sha256`` is the active image's SHA-256."""
    if not enabled:
        why = ("this virtual board was started without delta updates (--delta off)"
               if available() else f"detools is not installed on the board's side; {INSTALL_HINT}")
        return (m.ErrorCode.NOT_SUPPORTED, f"this board does not apply delta patches: {why}; "
                "send the full image", 0)
    if begin.size == 0 or begin.image_size == 0:
        return (m.ErrorCode.BAD_ARGUMENT, "a delta needs a non-empty patch and image_size", 0)
    if begin.size > PATCH_BUFFER_BYTES:
        return (m.ErrorCode.MODEL_TOO_LARGE,
                f"the delta patch is {begin.size:,} bytes but the board stages at most "
                f"{PATCH_BUFFER_BYTES:,} in RAM; send the full image", PATCH_BUFFER_BYTES)
    if active_sha256 is None:
        return (m.ErrorCode.DELTA_BASE_MISMATCH,
                "no model is active, so there is no base to patch; send the full image",
                m.NO_SLOT)
    if begin.base_sha256.hex() != active_sha256:
        return (m.ErrorCode.DELTA_BASE_MISMATCH,
                f"the patch was made from SHA-256 {begin.base_sha256.hex()[:16]}... but "
                f"slot {active_slot} runs {active_name!r}, SHA-256 {active_sha256[:16]}...; "
                "make the patch from the active image or send the full image", active_slot)
    return None


class DeltaTransfer:
    """One open delta transfer: which slot, what patch, and the patch bytes staged so far."""

    def __init__(self, slot: int, begin: m.ModelBegin) -> None:
        self.slot = slot
        self.key = (slot, begin.size, begin.sha256, begin.image_size, begin.base_sha256)
        self.size = begin.size
        self.image_size = begin.image_size
        self.base_sha256 = begin.base_sha256.hex()
        self.patch = bytearray()

    def same(self, slot: int, begin: m.ModelBegin) -> bool:
        """True if ``begin`` announces this very transfer again (a resume)."""
        return self.key == (slot, begin.size, begin.sha256, begin.image_size, begin.base_sha256)

    @property
    def staged(self) -> int:
        return len(self.patch)

    def stage(self, offset: int, data: bytes) -> tuple[m.ErrorCode, str, int] | int:
        """Add a chunk at ``offset``; returns the bytes staged, or (code, message, detail)
        with the rules of MODEL_CHUNK (a duplicate is acknowledged, a gap is OUT_OF_ORDER)."""
        if offset < self.staged:
            return self.staged
        if offset > self.staged:
            return m.ErrorCode.OUT_OF_ORDER, f"expected offset {self.staged}", self.staged
        if offset + len(data) > self.size:
            return (m.ErrorCode.BAD_ARGUMENT, f"chunk runs past the announced patch size "
                    f"{self.size}", 0)
        self.patch += data
        return self.staged


class DeltaApplyError(WorkbenchError, ValueError):
    """The patch could not be applied (message says why); the slot is to be invalidated."""


class _SlotWriter(io.RawIOBase):
    """detools' output: image bytes at increasing offsets, written in WRITE_BLOCK pieces
    through ``write_flash(offset, data)``, the first ``skip`` bytes not written again."""

    def __init__(self, write_flash: Callable[[int, bytes], object], size: int, skip: int):
        self._write_flash = write_flash
        self.size = size
        self.skip = skip
        self.pos = 0
        self.pending = bytearray()
        self.pending_at = skip
        self.raised: BaseException | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        if self.pos + len(data) > self.size:
            raise DeltaApplyError(f"the patch rebuilds more than the announced "
                                  f"{self.size:,}-byte image")
        start = max(0, self.skip - self.pos)
        self.pos += len(data)
        self.pending += data[start:]
        while len(self.pending) >= WRITE_BLOCK:
            self._flush(WRITE_BLOCK)
        return len(data)

    def _flush(self, n: int) -> None:
        piece, self.pending = bytes(self.pending[:n]), self.pending[n:]
        try:
            self._write_flash(self.pending_at, piece)
        except BaseException as e:  # a flash error or an injected power cut: not the patch's
            self.raised = e
            raise
        self.pending_at += len(piece)

    def finish(self) -> None:
        if self.pending:
            self._flush(len(self.pending))


def apply(transfer: DeltaTransfer, base: bytes, written: int,
          write_flash: Callable[[int, bytes], object]) -> None:
    """Rebuild the new image from ``base`` (the active slot's bytes) and the staged patch,
    writing it with ``write_flash(offset, data)`` from offset ``written`` on (bytes before
    it are already in the slot).

    Raises :class:`DeltaApplyError` if the patch header is not a sequential heatshrink
    detools patch of ``image_size`` bytes, the patch is corrupt, or it rebuilds another
    size. An exception raised by ``write_flash`` (a flash error, a power cut) propagates
    unchanged. Raises ``ImportError`` without detools (the board then never announced DELTA).
    """
    import detools

    patch = bytes(transfer.patch)
    try:
        header = read_patch_header(patch)
    except PatchHeaderError as e:
        raise DeltaApplyError(f"the delta patch is not usable: {e}") from None
    if header.to_size != transfer.image_size:
        raise DeltaApplyError(f"the delta patch rebuilds {header.to_size:,} bytes but "
                              f"MODEL_BEGIN announced image_size {transfer.image_size:,}")
    out = _SlotWriter(write_flash, transfer.image_size, written)
    try:
        size = detools.apply_patch(io.BytesIO(base), io.BytesIO(patch), out)
        out.finish()
    except BaseException as e:
        if e is out.raised:
            raise
        if isinstance(e, DeltaApplyError):
            raise
        if not isinstance(e, Exception):
            raise
        raise DeltaApplyError(f"the delta patch is corrupt: {type(e).__name__}: {e}") from None
    if size != transfer.image_size or out.pos != transfer.image_size:
        raise DeltaApplyError(f"the delta patch rebuilt {out.pos:,} of "
                              f"{transfer.image_size:,} bytes")
