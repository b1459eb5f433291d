"""Signed update images: one artifact, in MCUboot's image format, for every board.

An update image is made by ``imgtool`` (MCUboot's PyPI tool) through its Python API: a
32-byte header, the ``.tflite`` model as payload, a protected TLV area holding the update
manifest as CBOR (tag :data:`MANIFEST_TLV`), then the SHA-256 TLV and, when signed, the
KEYHASH and ED25519 TLVs. ``imgtool verify`` accepts it; the virtual board, the reference
firmware and a Zephyr/MCUboot board read the same bytes (docs/protocol.md 7.6; docs/deploy.md,
"Signed updates").

Call order: :func:`generate_key` once (writes a PEM as ``imgtool keygen -t ed25519`` does;
keep it secret) and give the board its public half (:meth:`SigningKey.save_public`, then
``workbench sim --key pub.pem`` or the firmware's key file); then per release
:func:`make_update_image` (builds the manifest with TFLite Micro unless given one) and
upload the bytes (:meth:`workbench.link.Device.upload_model`, or
``deploy_model(..., key=...)``). :func:`read_update_image` reads one back, and with
``keys=`` verifies its signature as a board does.

Versions: the image header's version is ``0.0.N`` for registry version N (the revision
field, which MCUboot's downgrade prevention compares; N <= 65535).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import WorkbenchError
from ..protocol.image import (
    MANIFEST_TLV,
    KeyFileError,
    MalformedImage,
    McubootImage,
    TrustedKey,
    parse_image,
    verify_signature,
)
from ..protocol.manifest import UpdateManifest
from .sources import model_bytes

__all__ = ["MANIFEST_TLV", "MAX_MANIFEST_BYTES", "SigningError", "SigningKey", "UpdateImage",
           "generate_key", "load_key", "load_public_key", "make_update_image",
           "read_update_image"]

MAX_MANIFEST_BYTES = 0xFFFF - 4 - 4
"""Largest manifest TLV value: the protected TLV area's size is a u16 (header field
``protect_tlv_size``) and holds its own 4-byte info header and the TLV's 4-byte header."""
_MAX_REVISION = 0xFFFF


class SigningError(WorkbenchError, ValueError):
    """A key or an update image that cannot be made or read; the message says what to do."""


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key that signs update images (imgtool's key object inside).

    ``path`` is where it was read from or written (None for one made in memory).
    """

    imgtool_key: Any
    path: Path | None = None

    @property
    def public(self) -> TrustedKey:
        """The public half, as a board is provisioned with it."""
        return TrustedKey(bytes(self.imgtool_key.get_public_bytes()),
                          name=str(self.path) if self.path else "")

    @property
    def key_hash(self) -> str:
        """SHA-256 of the public key's DER, hex: what a signed image's KEYHASH TLV holds
        and what the registry records."""
        return self.public.key_hash.hex()

    @property
    def public_pem(self) -> bytes:
        """The public key as PEM (what ``imgtool getpub -e pem`` prints)."""
        return bytes(self.imgtool_key.get_public_pem())

    def save_public(self, path: str | os.PathLike) -> Path:
        """Write the public key PEM to ``path`` (for ``workbench sim --key``); returns it."""
        p = Path(path)
        p.write_bytes(self.public_pem)
        return p

    def __repr__(self) -> str:
        return f"SigningKey(ed25519 {self.key_hash[:16]}..., path={self.path})"


def generate_key(path: str | os.PathLike, *, overwrite: bool = False) -> SigningKey:
    """Make a new Ed25519 key and write it to ``path`` as an unencrypted PKCS#8 PEM, the
    file ``imgtool keygen -t ed25519 -k PATH`` writes (readable by imgtool and by
    :func:`load_key`), with mode 0600.

    Raises SigningError if ``path`` exists (a key is not overwritten unless
    ``overwrite=True``: images signed with it would no longer match any key).
    """
    from cryptography.hazmat.primitives import serialization
    from imgtool import keys

    p = Path(path)
    if p.exists() and not overwrite:
        raise SigningError(f"{p} exists; a signing key is not overwritten (boards provisioned "
                           "with it would refuse new images). Choose another path, or pass "
                           "overwrite=True")
    key = keys.Ed25519.generate()
    pem = key.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return SigningKey(key, p)


def load_key(key: SigningKey | str | os.PathLike | bytes) -> SigningKey:
    """A :class:`SigningKey` from a key, the path of a private key PEM, or PEM bytes.

    Raises SigningError: no such file, a public key (signing needs the private one), an
    encrypted key (give an unencrypted one), or a key that is not Ed25519.
    """
    if isinstance(key, SigningKey):
        return key
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from imgtool import keys

    path = None
    if isinstance(key, (bytes, bytearray)):
        pem = bytes(key)
    elif isinstance(key, (str, os.PathLike)):
        path = Path(key)
        try:
            pem = path.read_bytes()
        except OSError as e:
            raise SigningError(f"cannot read the signing key {path}: {e.strerror or e}; make "
                               "one with workbench.deploy.signing.generate_key(path)") from e
    else:
        raise SigningError(f"key= is a SigningKey, the path of a PEM, or PEM bytes, not "
                           f"{type(key).__name__}")
    where = f"{path}: " if path else ""
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise SigningError(f"{where}the key is encrypted; give an unencrypted key "
                           "(generate_key writes one)") from None
    except ValueError:
        try:
            serialization.load_pem_public_key(pem)
        except ValueError:
            raise SigningError(f"{where}not a PEM key; make one with generate_key(path) or "
                               "`imgtool keygen -t ed25519 -k key.pem`") from None
        raise SigningError(f"{where}a public key; signing needs the private key it belongs "
                           "to (the public key is what a board is provisioned with)") from None
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        raise SigningError(f"{where}a {type(private).__name__.lstrip('_')}; update images are "
                           "signed with Ed25519 keys (generate_key, or imgtool keygen -t ed25519)")
    return SigningKey(keys.Ed25519(private), path)


def load_public_key(key: SigningKey | TrustedKey | str | os.PathLike | bytes) -> TrustedKey:
    """The public key a board trusts, from a PEM file or bytes (public or private key), a
    :class:`SigningKey` or a :class:`TrustedKey`. Raises SigningError when it is not one."""
    if isinstance(key, TrustedKey):
        return key
    if isinstance(key, SigningKey):
        return key.public
    name = ""
    if isinstance(key, (str, os.PathLike)):
        name = str(key)
        try:
            key = Path(key).read_bytes()
        except OSError as e:
            raise SigningError(f"cannot read the key {name}: {e.strerror or e}") from e
    if not isinstance(key, (bytes, bytearray)):
        raise SigningError(f"a public key is a PEM path or bytes, not {type(key).__name__}")
    try:
        return TrustedKey.from_pem(bytes(key), name=name)
    except KeyFileError as e:
        raise SigningError(str(e)) from None


def _image_version(version: int) -> str:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= _MAX_REVISION:
        raise SigningError(f"version must be an int from 1 to {_MAX_REVISION} (the image "
                           f"header's revision field), got {version!r}")
    return f"0.0.{version}"


def _fit(manifest: UpdateManifest, computed: bool) -> bytes:
    """The manifest's CBOR, golden pairs dropped from the end while it is too large (only
    for a manifest computed here; a given one must fit as it is)."""
    blob = manifest.to_cbor()
    while len(blob) > MAX_MANIFEST_BYTES and computed and len(manifest.golden) > 1:
        manifest = replace(manifest, golden=manifest.golden[:-1])
        blob = manifest.to_cbor()
    if len(blob) > MAX_MANIFEST_BYTES:
        raise SigningError(
            f"the manifest of {manifest.name} is {len(blob):,} bytes of CBOR with "
            f"{len(manifest.golden)} golden pair(s); an image's protected TLV area holds at "
            f"most {MAX_MANIFEST_BYTES:,}. " + ("Make it with fewer golden pairs "
                                                "(make_manifest(..., n_golden=1))"
                                                if not computed else
                                                "Even one golden pair of this model's inputs "
                                                "and outputs does not fit"))
    return blob


def make_update_image(model: Any, *, key: SigningKey | str | os.PathLike | bytes | None = None,
                      manifest: UpdateManifest | None = None, name: str | None = None,
                      version: int | None = None, n_golden: int = 4) -> bytes:
    """The update image of ``model``, signed when ``key`` is given, made by imgtool.

    Args:
        model: ``.tflite`` bytes, the path of a ``.tflite`` file, a registry
            :class:`~workbench.deploy.ModelVersion` (its name and version are used) or a
            :class:`~workbench.optimize.Variant`.
        key: the Ed25519 private key (:func:`load_key` takes any of its forms); None
            makes an unsigned image (header, payload, manifest, SHA-256 only).
        manifest: the update manifest to carry; None computes it with
            :func:`workbench.deploy.make_manifest` (TFLite Micro child processes) with
            ``n_golden`` pairs, dropping pairs from the end while its CBOR does not fit
            the protected TLV area (:data:`MAX_MANIFEST_BYTES`).
        name: the manifest's model name (default: the model's).
        version: the manifest's version and the header's ``0.0.version`` (default: the
            manifest's, the registry version's, else 1).

    Returns the image bytes (unpadded: no slot trailer). Deterministic for the same model,
    manifest, version and key (Ed25519 signatures are).

    Raises:
        SigningError: a key that cannot sign, a version out of range or disagreeing with
            the manifest's, a manifest that does not fit.
        ManifestError: the given manifest describes other bytes.
        ModelError, ProbeError: computing the manifest, for bytes that are not a runnable
            ``.tflite``.
    """
    from .manifest import make_manifest

    data, label = model_bytes(model, verb="sign", error=SigningError)
    if hasattr(model, "read_model") and hasattr(model, "version"):  # a registry version
        name = name or model.name
        version = model.version if version is None else version
    signer = load_key(key) if key is not None else None
    if manifest is not None:
        if version is not None and version != manifest.version:
            raise SigningError(f"version={version} but the manifest is of version "
                               f"{manifest.version}: give one or make them agree")
        manifest.check(data)
        version = manifest.version
    version = 1 if version is None else version
    header_version = _image_version(version)
    computed = manifest is None
    if computed:
        manifest = make_manifest(data, name=name or label, version=version, n_golden=n_golden)
    blob = _fit(manifest, computed)
    return _imgtool_sign(data, header_version, signer, {MANIFEST_TLV: blob})


def _imgtool_sign(data: bytes, version: str, key: SigningKey | None,
                  custom_tlvs: dict[int, bytes]) -> bytes:
    """imgtool's ``Image.load`` + ``create``, as ``imgtool sign --pad-header -v VERSION
    [-k KEY] [--custom-tlv ...] model.tflite out.bin`` runs them."""
    import click
    from imgtool import image as imgtool_image
    from imgtool.version import decode_version

    with tempfile.TemporaryDirectory(prefix="workbench-sign-") as tmp:
        src = Path(tmp) / "model.bin"
        src.write_bytes(data)
        img = imgtool_image.Image(version=decode_version(version), pad_header=True)
        try:
            img.load(str(src))
            with contextlib.redirect_stdout(io.StringIO()):  # imgtool prints "sign the digest"
                img.create(key.imgtool_key if key else None, "hash", None,
                           custom_tlvs=custom_tlvs)
        except click.UsageError as e:
            raise SigningError(f"imgtool refused to make the image: {e.format_message()}") from None
    return bytes(img.payload)


@dataclass(frozen=True)
class UpdateImage:
    """An update image read back (:func:`read_update_image`).

    ``version`` is the header's ``major.minor.revision+build``; ``model`` the payload;
    ``manifest`` the parsed manifest TLV (None when the image has none); ``sha256`` the
    image's SHA-256 TLV (hex; already checked against its bytes); ``key_hashes`` the
    KEYHASH TLVs (hex; who the image says signed it); ``verified_by`` the key hash whose
    signature verified when ``keys`` were given, else None.
    """

    version: str
    header_size: int
    load_addr: int
    flags: int
    model: bytes
    manifest: UpdateManifest | None
    sha256: str
    key_hashes: tuple[str, ...]
    signed: bool
    verified_by: str | None
    image: McubootImage

    @property
    def key_hash(self) -> str | None:
        """The first KEYHASH (the signing key, for an image imgtool signed), or None."""
        return self.key_hashes[0] if self.key_hashes else None


def read_update_image(image: bytes | str | os.PathLike, *,
                      keys: list | tuple | None = None) -> UpdateImage:
    """Read an update image (bytes or a file), checking its structure, its SHA-256 and
    (given ``keys``: public keys in any form :func:`load_public_key` takes) its signature,
    as a keyed board does; the manifest must describe the payload.

    Raises :class:`workbench.protocol.image.ImageError` subclasses (a ValueError, with
    ``code`` and ``offset``): MalformedImage, TamperedImage, UnsignedImage;
    SigningError for a file that cannot be read.
    """
    from ..protocol.manifest import ManifestError

    if isinstance(image, (str, os.PathLike)):
        try:
            image = Path(image).read_bytes()
        except OSError as e:
            raise SigningError(f"cannot read the image {image}: {e.strerror or e}") from e
    parsed = parse_image(bytes(image))
    trusted = [load_public_key(k) for k in keys] if keys else []
    signer = verify_signature(parsed, trusted) if trusted else None
    manifest = None
    if parsed.manifest is not None:
        try:
            manifest = UpdateManifest.from_cbor(parsed.manifest)
            manifest.check(parsed.payload)
        except ManifestError as e:
            raise MalformedImage(f"the image's manifest TLV: {e}") from None
    h = parsed.header
    return UpdateImage(version=h.version_text, header_size=h.header_size, load_addr=h.load_addr,
                       flags=h.flags, model=parsed.payload, manifest=manifest,
                       sha256=parsed.digest.hex(),
                       key_hashes=tuple(k.hex() for k in parsed.key_hashes),
                       signed=parsed.signed,
                       verified_by=signer.key_hash.hex() if signer else None, image=parsed)
