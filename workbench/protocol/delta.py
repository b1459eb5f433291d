"""The delta patch format of MODEL_BEGIN with ``BeginFlag.DELTA`` (docs/protocol.md 7.5).

A delta object is a `detools <https://pypi.org/project/detools/>`_ *sequential* patch,
compressed with heatshrink (window 2^8, lookahead 2^7: the static configuration of
detools' C library, ``src/c/heatshrink/heatshrink_config.h``), from the image in the
device's active slot to the new image. detools' C patcher applies such a patch in a
stream: it reads the base image sequentially (with seeks) and writes the new image
front to back, so the target slot is written in order, as a full upload writes it.

This module only names the format and reads the patch header (pure Python, no detools):
the host makes patches with :func:`workbench.link.delta.make_patch` and the virtual board
applies them in :mod:`workbench.sim.delta`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import WorkbenchError

PATCH_TYPE = "sequential"
COMPRESSION = "heatshrink"
HEATSHRINK_WINDOW_SZ2 = 8
HEATSHRINK_LOOKAHEAD_SZ2 = 7

_PATCH_TYPES = {0: "sequential", 1: "in-place", 2: "bsdiff", 3: "hdiffpatch"}
_COMPRESSIONS = {0: "none", 1: "lzma", 2: "crle", 3: "bz2", 4: "heatshrink", 5: "zstd",
                 6: "lz4"}


class PatchHeaderError(WorkbenchError, ValueError):
    """The bytes do not start with a detools patch header this protocol accepts."""


@dataclass(frozen=True)
class PatchHeader:
    patch_type: str
    compression: str
    to_size: int
    """Bytes of the image the patch rebuilds."""
    length: int
    """Bytes of the header (the compressed stream follows)."""


def read_patch_header(data: bytes) -> PatchHeader:
    """The header of a detools patch: byte 0 = ``0ttt cccc`` (patch type, compression),
    then ``to_size`` as detools' variable-length size (bits 0-5 of the first byte, bit 6
    the sign, bit 7 "more"; then 7 bits per byte, bit 7 "more").

    Raises :class:`PatchHeaderError` if the header is short, of another patch type or
    compression than :data:`PATCH_TYPE` and :data:`COMPRESSION`, or the size is negative.
    """
    if len(data) < 2:
        raise PatchHeaderError(f"a delta patch starts with at least 2 header bytes, "
                               f"got {len(data)}")
    ptype = _PATCH_TYPES.get((data[0] >> 4) & 0x7, f"unknown ({(data[0] >> 4) & 0x7})")
    compression = _COMPRESSIONS.get(data[0] & 0xF, f"unknown ({data[0] & 0xF})")
    if ptype != PATCH_TYPE or compression != COMPRESSION:
        raise PatchHeaderError(f"a {ptype} patch compressed with {compression}; this protocol "
                               f"takes {PATCH_TYPE} patches compressed with {COMPRESSION}")
    pos = 1
    byte = data[pos]
    if byte & 0x40:
        raise PatchHeaderError("the patch announces a negative image size")
    value, shift = byte & 0x3F, 6
    while byte & 0x80:
        pos += 1
        if pos >= len(data):
            raise PatchHeaderError("the patch header ends inside the image size")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        shift += 7
    return PatchHeader(ptype, compression, value, pos + 1)
