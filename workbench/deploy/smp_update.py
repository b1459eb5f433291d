"""Update a Zephyr/MCUboot board (or the virtual board's SMP personality) with mcumgr's SMP.

:func:`smp_update` drives the PyPI client ``smpclient`` over a serial port: it checks the
image on the host (an MCUboot image made by ``imgtool sign``, with its SHA-256 TLV) before
the first byte, uploads it into the slot that does not run, marks it for a *test* boot (or
a permanent one), resets the board, and reads back the image states. With ``confirm=True``
it confirms the new image once it runs, so it never reverts; otherwise MCUboot reverts it
at the following reset unless the application (or a later ``confirm``) keeps it.

smpclient is asynchronous; :func:`smp_update` runs it in a private event loop (in a worker
thread when the caller already runs one, as a notebook does), so it is an ordinary call.
smpclient is imported on first use (the ``deploy`` extra).
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import WorkbenchError

RESET_WAIT_S = 10.0
"""How long to wait for the board to answer again after a reset."""

_IMG_TEXT = {
    3: "there is no image in that slot",
    8: "no slot holds an image with that hash",
    9: "no free slot: the slot not running is set for the next boot; reset or confirm first",
    21: "the first chunk carried no image length",
    22: "the image is shorter than an MCUboot header",
    23: "the image has no MCUboot header (sign the model with `imgtool sign`)",
    24: "the image hash was refused (missing, wrong length, or the SHA-256 TLV does not "
        "match the image)",
    27: "the running image's version is not older than this one (upgrade only)",
    28: "another image is already set for the next boot; reset or confirm first",
    29: "the image does not run on this board",
    30: "the image is larger than the board's slot",
    33: "the running image cannot be set for a test; test the other slot's image",
}


class SmpUpdateError(WorkbenchError, RuntimeError):
    """The board refused a step of the update, or did not answer. ``rc`` and ``group`` are
    the board's error code and SMP group when it answered with one (else None)."""

    def __init__(self, message: str, *, rc: int | None = None, group: int | None = None):
        super().__init__(message)
        self.rc, self.group = rc, group


class SmpPortError(WorkbenchError, FileNotFoundError):
    """The serial port does not exist (the message says which and what to check)."""


class SmpImageError(WorkbenchError, ValueError):
    """The bytes are not an MCUboot image the board would accept (checked before sending)."""


@dataclass
class SmpUpdateResult:
    """What the board reports after the update."""

    hash: bytes
    """The uploaded image's SHA-256 TLV (SMP's image hash)."""
    version: str
    images: list = field(default_factory=list)
    """The final image states (``smp.image_management.ImageState``: slot, version, hash,
    active, confirmed, pending, permanent, bootable)."""
    seconds: float = 0.0

    @property
    def running(self) -> bool:
        """The uploaded image is the active one."""
        return any(i.hash == self.hash and i.active for i in self.images)

    @property
    def confirmed(self) -> bool:
        return any(i.hash == self.hash and i.active and i.confirmed for i in self.images)


def image_hash(image: bytes) -> tuple[bytes, str]:
    """(SHA-256 TLV, version text) of an MCUboot image, read with smpclient's MCUboot
    structures. Raises :class:`SmpImageError` saying what is missing."""
    from smpclient.mcuboot import (
        IMAGE_TLV,
        IMAGE_TLV_INFO_MAGIC,
        IMAGE_TLV_PROT_INFO_MAGIC,
        ImageHeader,
        ImageInfo,
        ImageTLVInfo,
        MCUBootImageError,
    )
    try:
        header = ImageHeader.loads(image[:32])
        at = header.hdr_size + header.img_size
        if header.protect_tlv_size:
            ImageTLVInfo.loads(image[at:at + 4], IMAGE_TLV_PROT_INFO_MAGIC)
            at += header.protect_tlv_size
        info = ImageTLVInfo.loads(image[at:at + 4], IMAGE_TLV_INFO_MAGIC)
        tlvs = ImageInfo.parse_tlvs(image[at + 4:at + info.tlv_tot])
    except (MCUBootImageError, struct.error, ValueError) as e:
        raise SmpImageError(f"not an MCUboot image ({e}); make one with `imgtool sign "
                            "--header-size 0x20 --pad-header --align 4 --version X.Y.Z "
                            "--slot-size N model.tflite image.bin`") from None
    hashes = [t.value for t in tlvs if t.header.type == IMAGE_TLV.SHA256]
    if len(hashes) != 1:
        raise SmpImageError(f"the image has {len(hashes)} SHA-256 TLVs; MCUboot needs one")
    v = header.ver
    return hashes[0], f"{v.major}.{v.minor}.{v.revision}" + (f".{v.build_num}"
                                                              if v.build_num else "")


def _refusal(step: str, response) -> SmpUpdateError:
    err = getattr(response, "err", None)
    if err is not None:
        rc, group = int(err.rc), int(err.group)
    else:
        rc, group = int(getattr(response, "rc", -1)), None
    name = getattr(getattr(err, "rc", None), "name", None) or getattr(
        getattr(response, "rc", None), "name", str(rc))
    text = _IMG_TEXT.get(rc, "") if group == 1 else ""
    return SmpUpdateError(f"{step}: the board refused ({name}, rc {rc}"
                          + (f" in group {group}" if group is not None else "") + ")"
                          + (f": {text}" if text else ""), rc=rc, group=group)


def _run(coro):
    """Run ``coro`` to the end in a private event loop (a worker thread if one runs here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def smp_update(port: str, image: bytes, *, test: bool = True, confirm: bool = False,
               reset: bool = True, timeout_s: float = 5.0,
               progress: Callable[[int, int], None] | None = None) -> SmpUpdateResult:
    """Upload an MCUboot ``image`` to the SMP board on serial ``port`` and switch to it.

    Steps: check the image on the host; connect; upload into the slot that does not run
    (resumes where an interrupted upload of the same image stopped); mark it for a test
    boot (``test=True``) or a permanent one (``test=False``); with ``reset``, reset the
    board and wait until it answers again; with ``confirm`` (and a test boot), confirm the
    new image once it runs. ``progress(bytes_done, total)`` is called after each chunk.

    Returns the final image states. Raises :class:`SmpImageError` (not an MCUboot image,
    before anything is sent), :class:`SmpPortError` (no such port),
    :class:`SmpUpdateError` (the board refused a step, naming its error, or did not
    answer; a refused upload leaves the running image as it was).
    """
    digest, version = image_hash(image)
    if not os.path.exists(port):
        raise SmpPortError(f"no serial port {port!r}: check the cable and the port name "
                           "(a virtual board prints its PTY when started with --mode smp)")
    try:
        import smpclient  # noqa: F401
    except ImportError as e:
        raise SmpUpdateError("smp_update needs smpclient: pip install "
                             "'tinyml-workbench[deploy]'") from e
    return _run(_update(port, bytes(image), digest, version, test=test, confirm=confirm,
                        reset=reset, timeout_s=timeout_s, progress=progress))


async def _update(port, image, digest, version, *, test, confirm, reset, timeout_s,
                  progress) -> SmpUpdateResult:
    from smp.exceptions import SMPBadCRC
    from smpclient import SMPClient
    from smpclient.exceptions import SMPUploadError
    from smpclient.generics import error, success
    from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
    from smpclient.requests.os_management import ResetWrite
    from smpclient.transport.serial import SMPSerialTransport

    start = time.monotonic()
    client = SMPClient(SMPSerialTransport(), port, timeout_s=timeout_s)

    async def states(step: str):
        r = await client.request(ImageStatesRead())
        if error(r):
            raise _refusal(step, r)
        return list(r.images)

    async def write(step: str, **kw):
        r = await client.request(ImageStatesWrite(**kw))
        if error(r):
            raise _refusal(step, r)
        return list(r.images)

    try:
        await client.connect(timeout_s)
        try:
            await states("reading the image states")
        except TimeoutError:
            raise SmpUpdateError(f"no SMP answer from {port} within {timeout_s} s: is the board "
                                 "running mcumgr (SMP over this UART) at this baud rate?") from None
        try:
            async for off in client.upload(image, subsequent_timeout_s=timeout_s):
                if progress is not None:
                    progress(off, len(image))
        except SMPUploadError as e:
            cause = e.args[0] if e.args else e
            if isinstance(cause, str):
                raise SmpUpdateError(f"upload: {cause}") from None
            raise _refusal("upload", cause) from None
        await write("marking the image for the next boot", hash=digest, confirm=not test)
        images = await states("reading the image states")
        if reset:
            r = await client.request(ResetWrite())
            if not success(r):
                raise _refusal("reset", r)
            images = await _after_reset(client, states)
            if test and confirm:
                if not any(i.hash == digest and i.active for i in images):
                    raise SmpUpdateError("the board did not boot the new image after the reset "
                                         "(MCUboot refused it?); it still runs the old one")
                images = await write("confirming the new image", confirm=True)
        return SmpUpdateResult(digest, version, images, time.monotonic() - start)
    except SMPBadCRC as e:
        raise SmpUpdateError(f"corrupted answer from {port}: {e}") from None
    finally:
        await client.disconnect()


async def _after_reset(client, states):
    """Image states once the board answers again after a reset."""
    deadline = time.monotonic() + RESET_WAIT_S
    await asyncio.sleep(0.2)
    while True:
        try:
            return await states("reading the image states after the reset")
        except TimeoutError:
            if time.monotonic() > deadline:
                raise SmpUpdateError(f"the board did not answer within {RESET_WAIT_S} s of "
                                     "its reset") from None
