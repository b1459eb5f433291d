"""Signed update images: made by imgtool, read and verified as a board does.

Real imgtool (its Python API inside make_update_image, its CLI as a subprocess), real
cryptography, real TFLite Micro for the manifest. The board-side behaviour is in
test_signed_board.py.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.deploy import ModelRegistry, make_manifest
from workbench.deploy.signing import (
    SigningError,
    generate_key,
    load_key,
    load_public_key,
    make_update_image,
    read_update_image,
)
from workbench.protocol import messages as m
from workbench.protocol.image import (
    MANIFEST_TLV,
    KeyFileError,
    MalformedImage,
    TamperedImage,
    Tlv,
    TrustedKey,
    UnsignedImage,
    is_image,
    open_image,
    parse_image,
)
from workbench.protocol.manifest import ManifestError, UpdateManifest

IMGTOOL = str(Path(sys.executable).parent / "imgtool")


def imgtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([IMGTOOL, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    a, b = generate_key(d / "a.pem"), generate_key(d / "b.pem")
    return {"a": a.path, "b": b.path, "a_pub": a.save_public(d / "a.pub.pem"),
            "b_pub": b.save_public(d / "b.pub.pem")}


@pytest.fixture(scope="module")
def manifest(sine_model) -> UpdateManifest:
    return make_manifest(sine_model, name="sine", version=3)


@pytest.fixture(scope="module")
def signed(sine_model, manifest, keys) -> bytes:
    return make_update_image(sine_model, key=keys["a"], manifest=manifest)


def trusted(*paths: Path) -> list[TrustedKey]:
    return [TrustedKey.from_pem(p.read_bytes(), name=str(p)) for p in paths]


def tlv(image: bytes, tag: int):
    return next(t for t in parse_image(image).tlvs if t.tag == tag)


def poke(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def flip(data: bytes, offset: int) -> bytes:
    return poke(data, offset, bytes([data[offset] ^ 0x01]))


def rehash(data: bytes) -> bytes:
    """Recompute the SHA-256 TLV, as someone who changed the bytes but has no key would."""
    cut = _hashed_size(data)
    sha_at = _tlv_offset(data, cut, Tlv.SHA256)
    return poke(data, sha_at + 4, hashlib.sha256(data[:cut]).digest())


def _hashed_size(data: bytes) -> int:
    _, _, hdr, ptlv, size = struct.unpack_from("<IIHHI", data)
    return hdr + size + ptlv


def _tlv_offset(data: bytes, start: int, tag: int) -> int:
    _, total = struct.unpack_from("<HH", data, start)
    off = start + 4
    while off < start + total:
        t, n = struct.unpack_from("<HH", data, off)
        if t == tag:
            return off
        off += 4 + n
    raise AssertionError(f"no TLV 0x{tag:x}")


# ------------------------------------------------------------------------- making and reading


def test_an_image_round_trips_with_its_manifest_and_signer(signed, sine_model, manifest, keys):
    img = read_update_image(signed, keys=[keys["a_pub"]])
    assert img.model == sine_model
    assert img.manifest == manifest
    assert img.version == "0.0.3+0" and img.header_size == 32
    assert img.signed and img.key_hash == load_key(keys["a"]).key_hash == img.verified_by
    assert img.sha256 == hashlib.sha256(signed[:img.image.hashed_size]).hexdigest()
    assert is_image(signed) and not is_image(sine_model)
    # the layout: header, payload, protected manifest, then SHA-256, KEYHASH, ED25519
    assert signed[32:32 + len(sine_model)] == sine_model
    assert [(t.tag, t.protected) for t in img.image.tlvs] == [
        (MANIFEST_TLV, True), (Tlv.SHA256, False), (Tlv.KEYHASH, False), (Tlv.ED25519, False)]
    assert UpdateManifest.from_cbor(tlv(signed, MANIFEST_TLV).value) == manifest


def test_the_same_inputs_make_the_same_image(signed, sine_model, manifest, keys):
    assert make_update_image(sine_model, key=keys["a"], manifest=manifest) == signed


def test_an_unsigned_image_carries_the_hash_and_manifest_only(sine_model, manifest):
    image = make_update_image(sine_model, manifest=manifest)
    img = read_update_image(image)
    assert not img.signed and img.key_hashes == () and img.verified_by is None
    assert img.model == sine_model and img.manifest == manifest
    with pytest.raises(UnsignedImage):
        read_update_image(image, keys=[TrustedKey.from_pem(load_key_pem())])


def load_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_computed_manifest_takes_the_registry_version(sine_model, keys, tmp_path):
    v = ModelRegistry(tmp_path / "reg").register(sine_model, name="sine")
    img = read_update_image(make_update_image(v, key=keys["a"]))
    assert img.version == "0.0.1+0"
    assert img.manifest.name == "sine" and img.manifest.version == 1
    assert len(img.manifest.golden) == 4
    assert img.manifest.self_test(lambda xs: _tflm(sine_model, img.manifest, xs)).ok


def _tflm(model, manifest, xs):
    from workbench.tflite import TflmRunner

    return TflmRunner(model, manifest.arena_bytes).invoke(xs)


def test_bad_arguments_are_refused_with_the_fix(sine_model, manifest, keys, tmp_path):
    with pytest.raises(SigningError, match="version must be an int from 1 to 65535"):
        make_update_image(sine_model, manifest=None, version=70000)
    with pytest.raises(SigningError, match="version=4 but the manifest is of version 3"):
        make_update_image(sine_model, manifest=manifest, version=4)
    with pytest.raises(ManifestError, match="another or a truncated image"):
        make_update_image(sine_model + b"\x00", manifest=manifest)
    with pytest.raises(SigningError, match="a public key; signing needs the private key"):
        make_update_image(sine_model, key=keys["a_pub"], manifest=manifest)
    with pytest.raises(SigningError, match="cannot read the signing key"):
        load_key(tmp_path / "missing.pem")
    with pytest.raises(SigningError, match="is not overwritten"):
        generate_key(keys["a"])


def test_only_ed25519_keys_are_accepted(tmp_path):
    assert imgtool("keygen", "-t", "ecdsa-p256", "-k", str(tmp_path / "ec.pem")).returncode == 0
    with pytest.raises(SigningError, match="signed with Ed25519 keys"):
        load_key(tmp_path / "ec.pem")
    with pytest.raises(KeyFileError, match="verifies Ed25519 signatures only"):
        TrustedKey.from_pem((tmp_path / "ec.pem").read_bytes())
    with pytest.raises(KeyFileError, match="not a PEM key"):
        TrustedKey.from_pem(b"hello")
    with pytest.raises(SigningError, match="not a readable PEM key"):
        load_public_key(b"-----BEGIN nonsense-----")


def test_a_manifest_too_large_for_the_tlv_area(sine_model, manifest):
    """Golden pairs of a 20 KB input: four do not fit the 64 KB protected area, three do."""
    from dataclasses import replace

    from workbench.deploy import signing
    from workbench.protocol.manifest import GoldenPair, TensorSpec

    wide = TensorSpec("x", (1, 5000), "float32", None, None)
    pair = GoldenPair(("00" * 20000,), manifest.golden[0].outputs)
    big = replace(manifest, inputs=(wide,), golden=(pair,) * 4)
    with pytest.raises(SigningError, match=r"n_golden=1"):
        make_update_image(sine_model, manifest=big)
    kept = UpdateManifest.from_cbor(signing._fit(big, computed=True))  # what a computed one keeps
    assert len(kept.golden) == 3
    with pytest.raises(SigningError, match="Even one golden pair"):
        signing._fit(replace(big, golden=(GoldenPair(("00" * 70000,),
                                                     pair.outputs),)), computed=True)


# ------------------------------------------------------------------- imgtool, both directions


def test_imgtool_verify_accepts_what_make_update_image_writes(signed, keys, tmp_path):
    path = tmp_path / "sine.signed.bin"
    path.write_bytes(signed)
    for key in (keys["a"], keys["a_pub"]):
        out = imgtool("verify", "-k", str(key), str(path))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Image was correctly validated" in out.stdout and "0.0.3+0" in out.stdout
    out = imgtool("verify", "-k", str(keys["b"]), str(path))  # another key: refused
    assert out.returncode == 1 and "No signature found for the given key" in out.stdout
    path.write_bytes(flip(signed, 40))
    out = imgtool("verify", "-k", str(keys["a"]), str(path))
    assert out.returncode == 1 and "invalid hash" in out.stdout


def test_the_reader_accepts_what_the_imgtool_cli_signs(sine_model, manifest, tmp_path):
    key, pub = tmp_path / "cli.pem", tmp_path / "cli.pub.pem"
    (tmp_path / "sine.tflite").write_bytes(sine_model)
    (tmp_path / "manifest.cbor").write_bytes(manifest.to_cbor())
    for args in (["keygen", "-t", "ed25519", "-k", str(key)],
                 ["getpub", "-e", "pem", "-k", str(key), "-o", str(pub)],
                 ["sign", "-k", str(key), "--pad-header", "-H", "32", "-S", "0x40000", "-v", "1.2.3+4",
                  "--custom-tlv-file", hex(MANIFEST_TLV), str(tmp_path / "manifest.cbor"),
                  str(tmp_path / "sine.tflite"), str(tmp_path / "with.bin")],
                 ["sign", "-k", str(key), "--pad-header", "-H", "32", "-S", "0x40000", "-v", "2.0.0",
                  str(tmp_path / "sine.tflite"), str(tmp_path / "plain.bin")],
                 ["sign", "--pad-header", "-H", "32", "-S", "0x40000", "-v", "2.0.0",
                  str(tmp_path / "sine.tflite"), str(tmp_path / "unsigned.bin")]):
        out = imgtool(*args)
        assert out.returncode == 0, out.stdout + out.stderr
    board_keys = trusted(pub)
    with_manifest = (tmp_path / "with.bin").read_bytes()
    opened = open_image(with_manifest, board_keys)
    assert opened.model == sine_model and opened.signed_by == board_keys[0]
    assert opened.image.header.version_text == "1.2.3+4"
    assert read_update_image(with_manifest).manifest == manifest
    plain = open_image((tmp_path / "plain.bin").read_bytes(), board_keys)  # no manifest: fine
    assert plain.model == sine_model and plain.image.manifest is None
    unsigned = (tmp_path / "unsigned.bin").read_bytes()
    assert open_image(unsigned).model == sine_model
    with pytest.raises(UnsignedImage):
        open_image(unsigned, board_keys)


# --------------------------------------------------------------------------- what is refused


def _strip_signature(data: bytes) -> bytes:
    cut = parse_image(data).hashed_size
    sha = tlv(data, Tlv.SHA256)
    area = struct.pack("<HH", Tlv.SHA256, 32) + sha.value
    return data[:cut] + struct.pack("<HH", 0x6907, 4 + len(area)) + area


TAMPERED = {
    # what was changed -> (how, exception, words in the message)
    "payload": (lambda d, k: flip(d, 32 + 100), TamperedImage, "SHA-256 TLV"),
    "manifest": (lambda d, k: flip(d, tlv(d, MANIFEST_TLV).offset + 20), TamperedImage,
                 "changed after it was made"),
    "header version": (lambda d, k: flip(d, 20), TamperedImage, "SHA-256 TLV"),
    "SHA-256 TLV": (lambda d, k: flip(d, tlv(d, Tlv.SHA256).offset + 4), TamperedImage,
                    "hash to"),
    "payload, hash recomputed": (lambda d, k: rehash(flip(d, 32 + 100)), TamperedImage,
                                 "does not verify"),
    "signature": (lambda d, k: flip(d, tlv(d, Tlv.ED25519).offset + 10), TamperedImage,
                  "does not verify"),
    "key hash": (lambda d, k: flip(d, tlv(d, Tlv.KEYHASH).offset + 4), TamperedImage,
                 "does not trust"),
    "signed by another key": (lambda d, k: make_update_image(
        parse_image(d).payload, key=k["b"], manifest=UpdateManifest.from_cbor(
            parse_image(d).manifest)), TamperedImage, "does not trust"),
    "signature stripped": (lambda d, k: _strip_signature(d), UnsignedImage, "no signature"),
}


@pytest.mark.parametrize("what", TAMPERED)
def test_a_keyed_reader_refuses_every_tampering(what, signed, keys):
    change, error, says = TAMPERED[what]
    bad = change(signed, keys)
    with pytest.raises(error, match=says) as err:
        open_image(bad, trusted(keys["a_pub"]))
    assert err.value.code == (m.ErrorCode.IMAGE_UNSIGNED if error is UnsignedImage
                              else m.ErrorCode.SIGNATURE_INVALID)


def test_an_unkeyed_reader_checks_the_hash_and_ignores_signatures(signed, keys, sine_model):
    with pytest.raises(TamperedImage):
        open_image(flip(signed, 32 + 100))
    assert open_image(flip(signed, tlv(signed, Tlv.ED25519).offset + 10)).model == sine_model
    assert open_image(sine_model).model == sine_model  # a raw model is a model
    with pytest.raises(UnsignedImage, match="raw 3,164-byte model"):
        open_image(sine_model, trusted(keys["a_pub"]))


def test_any_provisioned_key_will_do(signed, keys):
    assert open_image(signed, trusted(keys["b_pub"], keys["a_pub"])).signed_by.name.endswith(
        "a.pub.pem")


def _unprotected(data: bytes, extra: bytes) -> bytes:
    cut = parse_image(data).hashed_size
    _, total = struct.unpack_from("<HH", data, cut)
    body = data[cut + 4:cut + total] + extra
    return data[:cut] + struct.pack("<HH", 0x6907, 4 + len(body)) + body


def _malformed(signed: bytes) -> dict:
    p = parse_image(signed)
    end = 32 + p.header.image_size
    cut = p.hashed_size
    man = tlv(signed, MANIFEST_TLV)
    sha = tlv(signed, Tlv.SHA256)
    return {
        "short": (signed[:20], 0, "shorter than the 32-byte image header"),
        "magic": (poke(signed, 0, b"\0\0\0\0"), 0, "not an MCUboot image"),
        "big-endian": (poke(signed, 0, struct.pack(">I", 0x96F3B83D)), 0, "big-endian"),
        "hdr_size": (poke(signed, 8, struct.pack("<H", 16)), 8, "hdr_size at offset 8 is 16"),
        "img_size": (poke(signed, 12, struct.pack("<I", len(signed))), 12,
                     "img_size at offset 12"),
        "no payload": (poke(signed, 12, struct.pack("<I", 0)), 12, "no payload"),
        "encrypted": (poke(signed, 16, struct.pack("<I", 4)), 16, "ENCRYPTED_AES128"),
        "protected magic": (poke(signed, end, struct.pack("<H", 0x6907)), end,
                            "protected TLV info magic"),
        "protect_tlv_size": (poke(signed, 10, struct.pack("<H", cut - end + 4)), end,
                             "protect_tlv_size"),
        "TLV overrun": (poke(signed, man.offset + 2, struct.pack("<H", 0xFFF0)),
                        man.offset + 2, "beyond the end of the protected TLV area"),
        "unprotected magic": (poke(signed, cut, b"\0\0"), cut,
                              "unprotected TLV info magic at offset"),
        "unprotected size": (poke(signed, cut + 2, struct.pack("<H", 0xFFF0)), cut + 2,
                             "the image ends at"),
        "trailing bytes": (signed + b"\xff" * 16, len(signed), "without --pad"),
        "other hash": (poke(signed, sha.offset, struct.pack("<H", Tlv.SHA512)), sha.offset,
                       "SHA512"),
        "unprotected manifest": (_unprotected(signed, struct.pack("<HH", MANIFEST_TLV, 2) +
                                              b"hi"), len(signed), "outside the protected"),
        "pure signature": (_unprotected(signed, struct.pack("<HH", Tlv.SIG_PURE, 1) + b"\1"),
                           len(signed), "--pure"),
    }


def test_every_malformed_field_is_named_with_its_offset(signed):
    for what, (data, offset, says) in _malformed(signed).items():
        with pytest.raises(MalformedImage, match=says) as err:
            parse_image(data)  # (open_image takes bytes without the magic for a raw model)
        assert err.value.offset == offset, what
        assert err.value.code == m.ErrorCode.MODEL_INVALID
        assert f"offset {offset}" in str(err.value) or offset == 0, (what, str(err.value))


def test_a_manifest_of_another_model_is_refused(sine_model, manifest, tmp_path):
    from dataclasses import replace

    (tmp_path / "m.cbor").write_bytes(replace(manifest, sha256="0" * 64).to_cbor())
    (tmp_path / "s.tflite").write_bytes(sine_model)
    out = imgtool("sign", "--pad-header", "-H", "32", "-S", "0x40000", "-v", "1.0.0", "--custom-tlv-file",
                  hex(MANIFEST_TLV), str(tmp_path / "m.cbor"), str(tmp_path / "s.tflite"),
                  str(tmp_path / "bad.bin"))
    assert out.returncode == 0, out.stderr
    with pytest.raises(MalformedImage, match="the manifest TLV at offset .*corrupted or another"):
        open_image((tmp_path / "bad.bin").read_bytes())


def test_the_manifest_cbor_round_trips_and_refuses_junk(manifest):
    blob = manifest.to_cbor()
    assert UpdateManifest.from_cbor(blob) == manifest
    assert len(blob) < len(manifest.to_json())
    with pytest.raises(ManifestError, match="not CBOR"):
        UpdateManifest.from_cbor(b"\xff\xff")
    import cbor2

    doc = cbor2.loads(blob)
    with pytest.raises(ManifestError, match="32-byte byte string"):
        UpdateManifest.from_cbor(cbor2.dumps({**doc, "sha256": manifest.sha256}))
    doc["golden"][0]["inputs"] = ["00"]
    with pytest.raises(ManifestError, match=r"golden\[0\].inputs\[0\] must be a byte string"):
        UpdateManifest.from_cbor(cbor2.dumps(doc))
