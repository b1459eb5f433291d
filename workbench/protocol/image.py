"""Signed update images: MCUboot's image format, read and verified as a device does.

An update image is what ``imgtool sign`` (MCUboot's PyPI tool) writes: a 32-byte header, the
payload (here a ``.tflite`` model), an optional *protected* TLV area (covered by the hash and
the signature; it carries the update manifest, :data:`MANIFEST_TLV`), then the TLV area with
the SHA-256 of everything before it and, when signed, the SHA-256 of the signing public key
(KEYHASH) and the Ed25519 signature of that SHA-256. docs/protocol.md 7.6 gives the byte
layout for firmware in C; one artifact serves the virtual board, the reference firmware and
Zephyr/MCUboot boards.

Call order on a device (the virtual board at MODEL_END, and again when it loads the active
model): :func:`is_image` (a raw model has no magic), :func:`open_image` with the board's
:class:`TrustedKey` list, which calls :func:`parse_image` (structure, then the SHA-256),
:func:`verify_signature` when the board has keys, and checks the manifest against the payload.
Every refusal is an :class:`ImageError` whose ``code`` is the protocol error to answer with
and whose message says what is wrong and at which offset:

- :class:`MalformedImage` (MODEL_INVALID): a field out of range, a TLV that does not fit, an
  unsupported feature (encryption, compression, big-endian, a hash other than SHA-256, pure
  signatures), a manifest that does not describe the payload;
- :class:`UnsignedImage` (IMAGE_UNSIGNED): a keyed board was sent a raw model, or an image
  without a signature;
- :class:`TamperedImage` (SIGNATURE_INVALID): the SHA-256 TLV does not match the bytes (they
  were changed after imgtool made the image), the signature does not verify, or the key that
  signed it is not one the board trusts.

Pure functions of bytes: no port, no file. ``cryptography`` is imported only to read a key or
check a signature.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from ..errors import WorkbenchError
from .codes import ErrorCode

__all__ = ["HEADER", "HEADER_SIZE", "IMAGE_MAGIC", "MANIFEST_TLV", "TLV_INFO_MAGIC",
           "TLV_PROT_INFO_MAGIC", "ImageError", "ImageFlag", "ImageHeader", "KeyFileError",
           "MalformedImage", "McubootImage", "OpenedImage", "TamperedImage", "Tlv", "TlvEntry",
           "TrustedKey", "UnsignedImage", "is_image", "open_image", "parse_image",
           "verify_signature"]

IMAGE_MAGIC = 0x96F3B83D
HEADER = struct.Struct("<IIHHIIBBHII")
"""magic, load_addr, hdr_size, protect_tlv_size, img_size, flags, version major, minor,
revision, build, pad: 32 bytes, little-endian."""
HEADER_SIZE = HEADER.size
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
TLV_INFO = struct.Struct("<HH")
"""A TLV area's info header (magic, total bytes including this header) and a TLV's header
(type, length): both two little-endian u16."""
MANIFEST_TLV = 0x7762
"""Tag of the protected TLV that holds the update manifest as CBOR (``"wb"``; in MCUboot's
vendor range 0x00A0-0xFFFE)."""
CUSTOM_TLV_MIN = 0x00A0
_TLV_LEN_MAX = 0xFFFF


class Tlv(IntEnum):
    """MCUboot's TLV types this reader knows (imgtool's ``TLV_VALUES``)."""

    KEYHASH = 0x01
    PUBKEY = 0x02
    SHA256 = 0x10
    SHA384 = 0x11
    SHA512 = 0x12
    RSA2048 = 0x20
    ECDSASIG = 0x22
    RSA3072 = 0x23
    ED25519 = 0x24
    SIG_PURE = 0x25
    ENCRSA2048 = 0x30
    ENCKW = 0x31
    ENCEC256 = 0x32
    ENCX25519 = 0x33
    ENCX25519_SHA512 = 0x34
    DEPENDENCY = 0x40
    SEC_CNT = 0x50
    BOOT_RECORD = 0x60
    DECOMP_SIZE = 0x70
    DECOMP_SHA = 0x71
    DECOMP_SIGNATURE = 0x72
    COMP_DEC_SIZE = 0x73
    UUID_VID = 0x74
    UUID_CID = 0x75


class ImageFlag(IntFlag):
    """Header flags (imgtool's ``IMAGE_F``)."""

    PIC = 0x01
    ENCRYPTED_AES128 = 0x04
    ENCRYPTED_AES256 = 0x08
    NON_BOOTABLE = 0x10
    RAM_LOAD = 0x20
    ROM_FIXED = 0x100
    COMPRESSED_LZMA1 = 0x200
    COMPRESSED_LZMA2 = 0x400
    COMPRESSED_ARM_THUMB = 0x800


_REFUSED_FLAGS = (ImageFlag.ENCRYPTED_AES128 | ImageFlag.ENCRYPTED_AES256
                  | ImageFlag.COMPRESSED_LZMA1 | ImageFlag.COMPRESSED_LZMA2
                  | ImageFlag.COMPRESSED_ARM_THUMB)
_SIGNATURES = frozenset({Tlv.RSA2048, Tlv.ECDSASIG, Tlv.RSA3072, Tlv.ED25519})
_UNPROTECTED_OK = frozenset({Tlv.KEYHASH, Tlv.PUBKEY, Tlv.SHA256, Tlv.SHA384, Tlv.SHA512,
                             *_SIGNATURES, Tlv.SIG_PURE, Tlv.ENCRSA2048, Tlv.ENCKW,
                             Tlv.ENCEC256, Tlv.ENCX25519, Tlv.ENCX25519_SHA512,
                             Tlv.DECOMP_SIZE, Tlv.DECOMP_SHA, Tlv.DECOMP_SIGNATURE})
"""TLVs MCUboot reads from the unprotected area; anything else there is refused, as MCUboot
does (an unprotected manifest could be swapped without breaking the signature)."""


class ImageError(WorkbenchError, ValueError):
    """An update image a device refuses. ``code`` is the protocol error to answer with,
    ``offset`` the byte the message is about (None when it is about the whole image)."""

    code: ErrorCode = ErrorCode.MODEL_INVALID

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class MalformedImage(ImageError):
    """The bytes are not a well-formed update image this reader supports (MODEL_INVALID)."""

    code = ErrorCode.MODEL_INVALID


class UnsignedImage(ImageError):
    """A board that accepts only signed images got a raw model or an unsigned image
    (IMAGE_UNSIGNED)."""

    code = ErrorCode.IMAGE_UNSIGNED


class TamperedImage(ImageError):
    """The image's SHA-256 or signature does not match its bytes, or no trusted key signed
    it (SIGNATURE_INVALID)."""

    code = ErrorCode.SIGNATURE_INVALID


class KeyFileError(WorkbenchError, ValueError):
    """A key file or PEM that is not an Ed25519 key (the message says what it is)."""


@dataclass(frozen=True)
class ImageHeader:
    """The 32-byte image header's fields."""

    load_addr: int
    header_size: int
    protected_tlv_size: int
    image_size: int
    flags: int
    version: tuple[int, int, int, int]

    @property
    def version_text(self) -> str:
        """``major.minor.revision+build``, as ``imgtool verify`` prints it."""
        return "{}.{}.{}+{}".format(*self.version)


@dataclass(frozen=True)
class TlvEntry:
    """One TLV: its type, the offset of its 4-byte header in the image, its value, and
    whether it lies in the protected area."""

    tag: int
    offset: int
    value: bytes
    protected: bool

    @property
    def label(self) -> str:
        try:
            return f"0x{self.tag:02x} ({Tlv(self.tag).name})"
        except ValueError:
            return f"0x{self.tag:04x}" + (" (manifest)" if self.tag == MANIFEST_TLV else "")


@dataclass(frozen=True)
class McubootImage:
    """A parsed image whose SHA-256 TLV matched (:func:`parse_image`).

    ``hashed_size`` bytes from the start are what the SHA-256 covers (header, payload,
    protected TLVs); ``digest`` is that SHA-256; ``manifest`` the manifest TLV's value
    (None when absent).
    """

    header: ImageHeader
    payload: bytes
    tlvs: tuple[TlvEntry, ...]
    digest: bytes
    hashed_size: int
    manifest: bytes | None

    @property
    def signed(self) -> bool:
        """True when the image carries a signature TLV (any algorithm)."""
        return any(t.tag in _SIGNATURES for t in self.tlvs if not t.protected)

    @property
    def key_hashes(self) -> tuple[bytes, ...]:
        """The KEYHASH values, in order (the keys the image says signed it)."""
        return tuple(t.value for t in self.tlvs if t.tag == Tlv.KEYHASH and not t.protected)


@dataclass(frozen=True)
class TrustedKey:
    """An Ed25519 public key a board is provisioned with: its SubjectPublicKeyInfo DER (the
    form MCUboot embeds, and whose SHA-256 imgtool writes as KEYHASH)."""

    der: bytes
    name: str = ""

    @property
    def key_hash(self) -> bytes:
        """SHA-256 of the DER: what an image's KEYHASH TLV holds for this key."""
        return hashlib.sha256(self.der).digest()

    @classmethod
    def from_pem(cls, pem: bytes, name: str = "") -> TrustedKey:
        """The public key of a PEM: a public key (``imgtool getpub -e pem``) or an
        unencrypted private key (``imgtool keygen -t ed25519``; only its public half is
        kept). Raises :class:`KeyFileError` for anything that is not an Ed25519 key."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        where = f"{name}: " if name else ""
        data = bytes(pem)
        if b"-----BEGIN" not in data:
            raise KeyFileError(f"{where}not a PEM key (no '-----BEGIN' line); make one with "
                               "`imgtool keygen -t ed25519 -k key.pem`")
        key = None
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            try:
                key = serialization.load_pem_private_key(data, password=None).public_key()
            except TypeError:
                raise KeyFileError(f"{where}the private key is encrypted; give its public "
                                   "key (`imgtool getpub -e pem -k key.pem`)") from None
            except ValueError as e:
                raise KeyFileError(f"{where}not a readable PEM key: {e}") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise KeyFileError(f"{where}a {type(key).__name__.lstrip('_')} key; this board "
                               "verifies Ed25519 signatures only (imgtool keygen -t ed25519)")
        der = key.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(der, name)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``message``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_der_public_key(self.der)
        try:
            key.verify(bytes(signature), bytes(message))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class OpenedImage:
    """What a device runs, from what it received (:func:`open_image`): ``model`` is the
    payload of an image, or the bytes themselves when they are a raw model (``image`` is
    then None). ``signed_by`` is the trusted key whose signature verified, else None."""

    model: bytes
    image: McubootImage | None = None
    signed_by: TrustedKey | None = None

    @property
    def signed(self) -> bool:
        return self.image is not None and self.image.signed


def is_image(data: bytes) -> bool:
    """True when ``data`` starts with the image magic (0x96f3b83d, little-endian). A
    ``.tflite`` never does (its first u32 is the offset of its root table)."""
    return len(data) >= 4 and struct.unpack_from("<I", data)[0] == IMAGE_MAGIC


def _walk(data: bytes, start: int, magic: int, what: str, protected: bool,
          expected_total: int | None = None) -> tuple[list[TlvEntry], int]:
    """The TLVs of the area whose info header is at ``start``, and the offset after it."""
    if start + TLV_INFO.size > len(data):
        raise MalformedImage(f"the {what} TLV info header at offset {start} is cut off: the "
                             f"image ends at {len(data)}", offset=start)
    got, total = TLV_INFO.unpack_from(data, start)
    if got != magic:
        raise MalformedImage(f"the {what} TLV info magic at offset {start} is 0x{got:04x}, "
                             f"expected 0x{magic:04x}", offset=start)
    if expected_total is not None and total != expected_total:
        raise MalformedImage(f"the protected TLV area at offset {start} says it is {total} "
                             f"bytes, the header (protect_tlv_size, offset 10) says "
                             f"{expected_total}", offset=start)
    if total < TLV_INFO.size:
        raise MalformedImage(f"the {what} TLV area at offset {start} says (size at offset "
                             f"{start + 2}) it is {total} bytes, less than its own "
                             f"{TLV_INFO.size}-byte info header",
                             offset=start + 2)
    end = start + total
    if end > len(data):
        raise MalformedImage(f"the {what} TLV area at offset {start} says (size at offset "
                             f"{start + 2}) it is {total} bytes, to offset {end}; the image "
                             f"ends at {len(data)}",
                             offset=start + 2)
    out = []
    off = start + TLV_INFO.size
    while off < end:
        if off + TLV_INFO.size > end:
            raise MalformedImage(f"a TLV header at offset {off} is cut off by the end of the "
                                 f"{what} TLV area at {end}", offset=off)
        tag, length = TLV_INFO.unpack_from(data, off)
        if off + TLV_INFO.size + length > end:
            raise MalformedImage(f"TLV 0x{tag:02x} at offset {off}: its length (offset "
                                 f"{off + 2}) is {length} bytes, to offset "
                                 f"{off + TLV_INFO.size + length}, beyond the end of the "
                                 f"{what} TLV area at {end}", offset=off + 2)
        out.append(TlvEntry(tag, off, data[off + TLV_INFO.size: off + TLV_INFO.size + length],
                            protected))
        off += TLV_INFO.size + length
    return out, end


def _header(data: bytes) -> ImageHeader:
    if len(data) < HEADER_SIZE:
        raise MalformedImage(f"{len(data)} bytes: shorter than the {HEADER_SIZE}-byte image "
                             "header", offset=0)
    (magic, load, hdr, ptlv, size, flags, major, minor, rev, build, _pad) = \
        HEADER.unpack_from(data)
    if magic != IMAGE_MAGIC:
        if struct.unpack_from(">I", data)[0] == IMAGE_MAGIC:
            raise MalformedImage("a big-endian image (imgtool --endian big); this reader and "
                                 "the boards it serves take little-endian images", offset=0)
        raise MalformedImage(f"not an MCUboot image: the magic at offset 0 is 0x{magic:08x}, "
                             f"expected 0x{IMAGE_MAGIC:08x}", offset=0)
    if hdr < HEADER_SIZE:
        raise MalformedImage(f"hdr_size at offset 8 is {hdr}, less than the {HEADER_SIZE}-byte "
                             "header", offset=8)
    if flags & _REFUSED_FLAGS:
        names = ", ".join(f.name for f in ImageFlag if f & _REFUSED_FLAGS & flags)
        raise MalformedImage(f"flags at offset 16 are 0x{flags:08x} ({names}): encrypted and "
                             "compressed images are not supported; sign without --encrypt and "
                             "--compression", offset=16)
    if size == 0:
        raise MalformedImage("img_size at offset 12 is 0: the image has no payload", offset=12)
    if hdr + size > len(data):
        raise MalformedImage(f"img_size at offset 12 says {size} payload bytes from offset "
                             f"{hdr} (to {hdr + size}), the image is {len(data)} bytes",
                             offset=12)
    return ImageHeader(load, hdr, ptlv, size, flags, (major, minor, rev, build))


def parse_image(data: bytes) -> McubootImage:
    """Parse an update image and check its SHA-256 TLV, as MCUboot does before any
    signature: the SHA-256 of ``data[:header + payload + protected TLVs]`` must equal the
    SHA-256 TLV.

    Raises:
        MalformedImage: any field out of range or unsupported (the message names the field
            and its offset): no magic, hdr_size < 32, a payload or TLV area beyond the end,
            wrong TLV info magics, protect_tlv_size disagreeing with the protected area, a
            TLV that overruns its area, bytes after the TLV area (send the image without
            ``--pad``), a custom or manifest TLV outside the protected area, a SHA-256, key
            or signature TLV inside it, no SHA-256 TLV or two, a hash other than SHA-256,
            a pure signature, encryption, compression, two manifest TLVs.
        TamperedImage: the SHA-256 TLV does not match the bytes it covers.
    """
    data = bytes(data)
    header = _header(data)
    body_end = header.header_size + header.image_size
    tlvs: list[TlvEntry] = []
    if header.protected_tlv_size:
        prot, unprot_start = _walk(data, body_end, TLV_PROT_INFO_MAGIC, "protected", True,
                                   header.protected_tlv_size)
        tlvs += prot
    else:
        unprot_start = body_end
        if (body_end + 2 <= len(data)
                and struct.unpack_from("<H", data, body_end)[0] == TLV_PROT_INFO_MAGIC):
            raise MalformedImage(f"a protected TLV area starts at offset {body_end} but the "
                                 "header's protect_tlv_size (offset 10) is 0", offset=10)
    unprot, end = _walk(data, unprot_start, TLV_INFO_MAGIC, "unprotected", False)
    tlvs += unprot
    if end != len(data):
        raise MalformedImage(f"{len(data) - end} bytes follow the TLV area, which ends at offset "
                             f"{end}: send the image as imgtool wrote it without --pad "
                             "(the slot trailer is the board's business)", offset=end)
    _check_placement(tlvs)
    hashes = [t for t in unprot if t.tag == Tlv.SHA256]
    if not hashes:
        other = [t for t in unprot if t.tag in (Tlv.SHA384, Tlv.SHA512)]
        if other:
            raise MalformedImage(f"the image is hashed with {Tlv(other[0].tag).name} (TLV at "
                                 f"offset {other[0].offset}); this board checks SHA-256 only: "
                                 "sign without --sha", offset=other[0].offset)
        raise MalformedImage(f"the TLV area at offset {unprot_start} has no SHA-256 TLV (0x10)",
                             offset=unprot_start)
    if len(hashes) > 1:
        raise MalformedImage(f"two SHA-256 TLVs, at offsets {hashes[0].offset} and "
                             f"{hashes[1].offset}", offset=hashes[1].offset)
    sha = hashes[0]
    if len(sha.value) != 32:
        raise MalformedImage(f"the SHA-256 TLV at offset {sha.offset} holds {len(sha.value)} "
                             "bytes, expected 32", offset=sha.offset + 2)
    digest = hashlib.sha256(data[:unprot_start]).digest()
    if digest != sha.value:
        raise TamperedImage(f"the image's SHA-256 TLV (offset {sha.offset}) is "
                            f"{sha.value.hex()[:16]}..., its header, payload and protected TLVs "
                            f"(bytes 0-{unprot_start - 1}) hash to {digest.hex()[:16]}...: "
                            "the image was changed after it was made", offset=sha.offset)
    manifests = [t for t in tlvs if t.tag == MANIFEST_TLV]
    if len(manifests) > 1:
        raise MalformedImage(f"two manifest TLVs (0x{MANIFEST_TLV:04x}), at offsets "
                             f"{manifests[0].offset} and {manifests[1].offset}",
                             offset=manifests[1].offset)
    return McubootImage(header, data[header.header_size:body_end], tuple(tlvs), digest,
                        unprot_start, manifests[0].value if manifests else None)


def _check_placement(tlvs: list[TlvEntry]) -> None:
    for t in tlvs:
        if t.tag == Tlv.SIG_PURE:
            raise MalformedImage(f"a pure signature (SIG_PURE TLV at offset {t.offset}); this "
                                 "board verifies the Ed25519 signature of the SHA-256: sign "
                                 "without --pure", offset=t.offset)
        if t.tag in (Tlv.ENCRSA2048, Tlv.ENCKW, Tlv.ENCEC256, Tlv.ENCX25519,
                     Tlv.ENCX25519_SHA512):
            raise MalformedImage(f"an encryption key TLV {t.label} at offset {t.offset}: "
                                 "encrypted images are not supported", offset=t.offset)
        if t.protected and t.tag in _UNPROTECTED_OK:
            raise MalformedImage(f"TLV {t.label} at offset {t.offset} is in the protected area; "
                                 "MCUboot reads it from the unprotected TLV area only",
                                 offset=t.offset)
        if not t.protected and t.tag not in _UNPROTECTED_OK:
            raise MalformedImage(f"TLV {t.label} at offset {t.offset} is outside the protected "
                                 "area, so no hash or signature covers it; MCUboot refuses such "
                                 "an image (imgtool puts custom TLVs in the protected area)",
                                 offset=t.offset)


def verify_signature(image: McubootImage, keys: Sequence[TrustedKey]) -> TrustedKey:
    """The trusted key whose Ed25519 signature of the image's SHA-256 verifies.

    MCUboot's rule: each signature TLV belongs to the KEYHASH (or PUBKEY) TLV before it;
    the image is accepted when one signature by a trusted key verifies.

    Raises:
        UnsignedImage: the image has no signature TLV.
        TamperedImage: no signature by a trusted key verifies (a bad signature, a key the
            board does not trust, a signature without a key TLV before it, or an algorithm
            other than Ed25519); the message says which.
        MalformedImage: a KEYHASH that is not 32 bytes or an Ed25519 signature not 64.
        ValueError: ``keys`` is empty (a board without keys does not verify signatures).
    """
    if not keys:
        raise ValueError("verify_signature needs the trusted keys; a board without keys "
                         "checks only the SHA-256")
    by_hash = {k.key_hash: k for k in keys}
    current: TrustedKey | None = None
    named: bytes | None = None
    problems: list[str] = []
    for t in image.tlvs:
        if t.protected:
            continue
        if t.tag == Tlv.KEYHASH:
            if len(t.value) != 32:
                raise MalformedImage(f"the KEYHASH TLV at offset {t.offset} holds "
                                     f"{len(t.value)} bytes, expected 32", offset=t.offset + 2)
            named, current = t.value, by_hash.get(t.value)
        elif t.tag == Tlv.PUBKEY:
            named = hashlib.sha256(t.value).digest()
            current = next((k for k in keys if k.der == t.value), None)
        elif t.tag == Tlv.ED25519:
            if len(t.value) != 64:
                raise MalformedImage(f"the Ed25519 signature TLV at offset {t.offset} holds "
                                     f"{len(t.value)} bytes, expected 64", offset=t.offset + 2)
            if named is None:
                problems.append(f"the signature at offset {t.offset} has no KEYHASH TLV before it")
            elif current is None:
                problems.append(f"signed by key {named.hex()[:16]}..., which this board does "
                                "not trust")
            elif current.verify(t.value, image.digest):
                return current
            else:
                problems.append(f"the Ed25519 signature at offset {t.offset} by key "
                                f"{named.hex()[:16]}... does not verify: the image was changed "
                                "after it was signed, or the signature was replaced")
            named = current = None
        elif t.tag in _SIGNATURES:
            problems.append(f"a {Tlv(t.tag).name} signature at offset {t.offset}; this board "
                            "verifies Ed25519 only (imgtool keygen -t ed25519)")
            named = current = None
    if not problems:
        raise UnsignedImage("the image has no signature; this board accepts only images "
                            "signed by a key it was provisioned with")
    trusted = ", ".join(k.key_hash.hex()[:16] + "..." for k in keys)
    raise TamperedImage("; ".join(problems) + f" (trusted keys: {trusted})")


def open_image(data: bytes, keys: Sequence[TrustedKey] | None = None) -> OpenedImage:
    """What a board runs from the bytes it received, or the reason it refuses them.

    ``keys`` None or empty (an unkeyed board): a raw model is returned as it is; an image
    must parse and match its SHA-256 (signatures are not checked). With keys (a
    SIGNED_ONLY board): a raw model raises :class:`UnsignedImage`, and an image must carry
    a signature by one of them. Either way an image's manifest TLV, if any, must parse and
    describe the payload (size and SHA-256), else :class:`MalformedImage`.

    Raises :class:`ImageError` subclasses (see :func:`parse_image` and
    :func:`verify_signature`); ``code`` is the protocol error to answer with.
    """
    data = bytes(data)
    if not is_image(data):
        if keys:
            raise UnsignedImage(f"a raw {len(data):,}-byte model without an image header; this "
                                "board accepts only update images signed by a key it was "
                                "provisioned with (sign it with workbench.deploy.signing)",
                                offset=0)
        return OpenedImage(data)
    image = parse_image(data)
    signer = verify_signature(image, keys) if keys else None
    if image.manifest is not None:
        from .manifest import ManifestError, UpdateManifest

        where = next(t.offset for t in image.tlvs if t.tag == MANIFEST_TLV)
        try:
            UpdateManifest.from_cbor(image.manifest).check(image.payload)
        except ManifestError as e:
            raise MalformedImage(f"the manifest TLV at offset {where}: {e}", offset=where) from None
    return OpenedImage(image.payload, image, signer)
