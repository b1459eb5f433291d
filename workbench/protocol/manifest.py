"""The update manifest's data and wire forms: what travels with a model image.

An :class:`UpdateManifest` names a model image (name, version, size, SHA-256), says what
it needs (TFLite Micro's arena, measured on the host) and what it takes and gives (its
input and output tensors), and carries a few *golden* input/output pairs that TFLite
Micro computed on the host. A runner that loads the image runs the golden inputs and
must reproduce the golden outputs bit for bit (:meth:`UpdateManifest.self_test`).

It lives in the protocol layer because a device reads it: the virtual board finds it in
an update image's manifest TLV (:mod:`.image`, docs/protocol.md 7.6) and checks the image
against it. Two encodings of the same fields:

- :meth:`UpdateManifest.to_json` / :meth:`~UpdateManifest.from_json`: canonical JSON, for
  files and people (docs/deploy.md, "Update manifest");
- :meth:`UpdateManifest.to_cbor` / :meth:`~UpdateManifest.from_cbor`: deterministic CBOR
  (RFC 8949 core deterministic encoding), the manifest TLV of an update image; byte fields
  (``sha256``, golden tensors) are CBOR byte strings, half the size of hex. ``cbor2`` is
  imported on first use (docs/protocol.md 7.6 gives the layout for firmware).

:func:`workbench.deploy.make_manifest` builds one (it runs TFLite Micro on the host).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import WorkbenchError

__all__ = ["MANIFEST_FORMAT", "MANIFEST_FORMAT_VERSION", "GoldenPair", "ManifestError",
           "PairCheck", "SelfTestResult", "TensorSpec", "UpdateManifest"]

MANIFEST_FORMAT = "workbench-update-manifest"
MANIFEST_FORMAT_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("format", "format_version", "name", "version", "size", "sha256", "arena_bytes",
           "inputs", "outputs", "golden")
_SPEC_FIELDS = ("name", "shape", "dtype", "scale", "zero_point")


class ManifestError(WorkbenchError, ValueError):
    """An update manifest that cannot be made or read, or an image it does not describe."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: its name, static shape, numpy dtype name and the
    per-tensor quantization parameters (None when unquantized)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None

    @property
    def nbytes(self) -> int:
        """Bytes of the raw tensor."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def decode(self, hex_bytes: str) -> np.ndarray:
        """The tensor stored as hex of its raw little-endian bytes, as an array of this shape."""
        raw = bytes.fromhex(hex_bytes)
        return np.frombuffer(raw, dtype=np.dtype(self.dtype).newbyteorder("<")) \
            .astype(self.dtype).reshape(self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class GoldenPair:
    """One golden inference: hex of each input's and each output's raw little-endian bytes."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class PairCheck:
    """The outcome of one golden pair in a self-test; ``detail`` says what differed."""

    index: int
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class SelfTestResult:
    """Every golden pair's outcome; :attr:`ok` when all matched."""

    pairs: tuple[PairCheck, ...]

    @property
    def ok(self) -> bool:
        return bool(self.pairs) and all(p.ok for p in self.pairs)

    @property
    def failures(self) -> list[PairCheck]:
        return [p for p in self.pairs if not p.ok]

    def summary(self) -> str:
        if self.ok:
            return f"self-test passed: {len(self.pairs)} golden pair(s) reproduced bit for bit"
        lines = [f"self-test failed: {len(self.failures)} of {len(self.pairs)} golden pair(s)"]
        lines += [f"  pair {p.index}: {p.detail}" for p in self.failures]
        return "\n".join(lines)


def _cbor2() -> Any:
    try:
        import cbor2
    except ImportError:  # pragma: no cover - installed with the deploy extra (and imgtool)
        raise ManifestError("reading or writing an update image's manifest needs cbor2: "
                            "pip install 'tinyml-workbench[deploy]'") from None
    return cbor2


def _hex_pair(pair: Any, i: int) -> Any:
    """A CBOR golden pair with its byte strings as hex (the JSON form), for :func:`_parse`."""
    if not isinstance(pair, dict):
        return pair
    out = dict(pair)
    for key in ("inputs", "outputs"):
        values = pair.get(key)
        if isinstance(values, list):
            for k, v in enumerate(values):
                if not isinstance(v, bytes):
                    raise ManifestError(f"golden[{i}].{key}[{k}] must be a byte string in "
                                        f"CBOR, got {type(v).__name__}")
            out[key] = [v.hex() for v in values]
    return out


def _le_bytes(arr: np.ndarray) -> bytes:
    a = np.ascontiguousarray(arr)
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


@dataclass(frozen=True)
class UpdateManifest:
    """What travels with a model image; see the module docstring and docs/deploy.md.

    Build one with :func:`make_manifest`, read one with :meth:`from_json`. ``format`` and
    ``format_version`` identify the JSON layout; ``arena_bytes`` is TFLite Micro's
    needed arena (:attr:`workbench.tflite.ArenaFit.needed_bytes`).
    """

    name: str
    version: int
    size: int
    sha256: str
    arena_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    golden: tuple[GoldenPair, ...]
    format: str = MANIFEST_FORMAT
    format_version: int = MANIFEST_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "format_version": self.format_version,
                "name": self.name, "version": self.version, "size": self.size,
                "sha256": self.sha256, "arena_bytes": self.arena_bytes,
                "inputs": [s.to_dict() for s in self.inputs],
                "outputs": [s.to_dict() for s in self.outputs],
                "golden": [{"inputs": list(g.inputs), "outputs": list(g.outputs)}
                           for g in self.golden]}

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces, UTF-8): equal manifests give equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> UpdateManifest:
        """Read and validate a manifest written by :meth:`to_json`.

        Raises:
            ManifestError: not JSON, another format or a newer format version, a missing
                or unknown field, a field of the wrong type, a SHA-256 that is not 64
                lower-case hex digits, golden data that is not hex or whose size does not
                match its tensor spec. The message names the field.
        """
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise ManifestError(f"the update manifest is not JSON: {e}") from None
        return _parse(doc)

    def to_cbor(self) -> bytes:
        """Deterministic CBOR of the same fields (the manifest TLV of an update image).

        A map with the JSON field names, in RFC 8949 core deterministic order; ``sha256``
        is a 32-byte byte string and each golden tensor a byte string of its raw
        little-endian bytes (the JSON form holds hex). Equal manifests give equal bytes.
        """
        d = self.to_dict()
        d["sha256"] = bytes.fromhex(self.sha256)
        d["golden"] = [{"inputs": [bytes.fromhex(h) for h in g.inputs],
                        "outputs": [bytes.fromhex(h) for h in g.outputs]} for g in self.golden]
        return _cbor2().dumps(d, canonical=True)

    @classmethod
    def from_cbor(cls, data: bytes) -> UpdateManifest:
        """Read and validate a manifest written by :meth:`to_cbor`.

        Raises:
            ManifestError: not CBOR, trailing bytes, ``sha256`` not a 32-byte byte string,
                a golden tensor that is not a byte string, and everything
                :meth:`from_json` refuses (the message names the field).
        """
        cbor2 = _cbor2()
        try:
            doc = cbor2.loads(bytes(data))
        except (cbor2.CBORDecodeError, ValueError, TypeError) as e:
            raise ManifestError(f"the update manifest is not CBOR: {e}") from None
        if not isinstance(doc, dict):
            raise ManifestError(f"the update manifest must be a CBOR map, got "
                                f"{type(doc).__name__}")
        doc = dict(doc)
        sha = doc.get("sha256")
        if not isinstance(sha, bytes) or len(sha) != 32:
            raise ManifestError(f"sha256 must be a 32-byte byte string in CBOR, got {sha!r:.80}")
        doc["sha256"] = sha.hex()
        golden = doc.get("golden")
        if isinstance(golden, list):
            doc["golden"] = [_hex_pair(g, i) for i, g in enumerate(golden)]
        return _parse(doc)

    def check(self, model_bytes: bytes) -> None:
        """Verify that ``model_bytes`` is the image this manifest describes (size, then
        SHA-256). Raises :class:`ManifestError` saying which differs; returns None."""
        data = bytes(model_bytes)
        if len(data) != self.size:
            raise ManifestError(f"the image is {len(data)} bytes, the manifest of {self.name} "
                                f"v{self.version} says {self.size}: it is another or a "
                                "truncated image")
        sha = hashlib.sha256(data).hexdigest()
        if sha != self.sha256:
            raise ManifestError(f"the image's SHA-256 is {sha}, the manifest of {self.name} "
                                f"v{self.version} says {self.sha256}: the image is corrupted "
                                "or another model")

    def golden_inputs(self, index: int) -> list[np.ndarray]:
        """The inputs of golden pair ``index`` as arrays (each of its spec's shape and dtype)."""
        return [s.decode(h) for s, h in zip(self.inputs, self.golden[index].inputs)]

    def golden_outputs(self, index: int) -> list[np.ndarray]:
        """The expected outputs of golden pair ``index`` as arrays."""
        return [s.decode(h) for s, h in zip(self.outputs, self.golden[index].outputs)]

    def self_test(self, run: Callable[[list[np.ndarray]], Sequence[np.ndarray]]) -> SelfTestResult:
        """Run every golden pair through ``run`` and compare the outputs bit for bit.

        ``run(inputs)`` takes one array per model input (in order) and returns one array per
        output, e.g. ``TflmRunner(...).invoke`` or ``lambda xs: dev.infer(*xs).outputs``.
        Outputs must have the spec's dtype and element count and the golden raw bytes
        (int8 and float alike: the same TFLM kernels run everywhere). A ``run`` that raises
        ValueError, RuntimeError or a WorkbenchError (wrong shapes, failed invoke, a device
        error) fails that pair with the error as its detail; other exceptions propagate.

        Returns a :class:`SelfTestResult`; nothing raises for a mismatch.
        """
        checks = []
        for i in range(len(self.golden)):
            checks.append(PairCheck(i, *self._run_pair(run, i)))
        return SelfTestResult(tuple(checks))

    def _run_pair(self, run: Callable, i: int) -> tuple[bool, str]:
        try:
            got = list(run(self.golden_inputs(i)))
        except (ValueError, RuntimeError, WorkbenchError) as e:
            return False, f"the runner raised {type(e).__name__}: {e}"
        if len(got) != len(self.outputs):
            return False, f"{len(got)} output(s), the model has {len(self.outputs)}"
        expected = self.golden_outputs(i)
        for k, (spec, arr, want) in enumerate(zip(self.outputs, got, expected)):
            a = np.asarray(arr)
            if a.dtype != np.dtype(spec.dtype):
                return False, f"output {k} ('{spec.name}') is {a.dtype.name}, expected {spec.dtype}"
            if a.size != want.size:
                return False, (f"output {k} ('{spec.name}') has {a.size} values, expected "
                               f"{want.size}")
            if _le_bytes(a) != _le_bytes(want):
                diff = np.abs(a.reshape(-1).astype(np.float64) - want.reshape(-1).astype(np.float64))
                return False, (f"output {k} ('{spec.name}') differs in "
                               f"{int(np.count_nonzero(a.reshape(-1) != want.reshape(-1)))} of "
                               f"{a.size} value(s), largest difference {float(np.nanmax(diff)):g}")
        return True, ""


# -- validation -----------------------------------------------------------------------------------

def _int(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ManifestError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _keys(obj: Any, fields: Sequence[str], where: str) -> dict:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where} must be a JSON object, got {type(obj).__name__}")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise ManifestError(f"{where} lacks the field(s) {', '.join(missing)}")
    unknown = sorted(set(obj) - set(fields))
    if unknown:
        raise ManifestError(f"{where} has unknown field(s) {', '.join(unknown)}: written by a "
                            "newer workbench, or edited by hand")
    return obj


def _parse_spec(obj: Any, where: str) -> TensorSpec:
    d = _keys(obj, _SPEC_FIELDS, where)
    if not isinstance(d["name"], str):
        raise ManifestError(f"{where}.name must be a string, got {d['name']!r}")
    if not isinstance(d["shape"], list):
        raise ManifestError(f"{where}.shape must be a list of integers, got {d['shape']!r}")
    shape = tuple(_int(n, f"{where}.shape[{i}]", 0) for i, n in enumerate(d["shape"]))
    try:
        ok_dtype = isinstance(d["dtype"], str) and np.dtype(d["dtype"]).kind in "fiub"
    except TypeError:
        ok_dtype = False
    if not ok_dtype:
        raise ManifestError(f"{where}.dtype must be a numpy dtype name such as 'int8' or "
                            f"'float32', got {d['dtype']!r}")
    scale = d["scale"]
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise ManifestError(f"{where}.scale must be a number or null, got {scale!r}")
    zp = d["zero_point"]
    if zp is not None and (isinstance(zp, bool) or not isinstance(zp, int)):
        raise ManifestError(f"{where}.zero_point must be an integer or null, got {zp!r}")
    return TensorSpec(d["name"], shape, d["dtype"], None if scale is None else float(scale), zp)


def _parse_tensors(value: Any, specs: tuple[TensorSpec, ...], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) != len(specs):
        raise ManifestError(f"{where} must be a list of {len(specs)} hex string(s), one per "
                            f"tensor spec, got {value!r:.80}")
    for k, (h, spec) in enumerate(zip(value, specs)):
        try:
            raw = binascii.unhexlify(h) if isinstance(h, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None:
            raise ManifestError(f"{where}[{k}] is not hex of the tensor's bytes: {h!r:.40}")
        if len(raw) != spec.nbytes:
            raise ManifestError(f"{where}[{k}] holds {len(raw)} bytes, but '{spec.name}' "
                                f"({spec.dtype} {list(spec.shape)}) is {spec.nbytes} bytes")
    return tuple(value)


def _parse(doc: Any) -> UpdateManifest:
    if not isinstance(doc, dict):
        raise ManifestError(f"the update manifest must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"not an update manifest: format is {doc.get('format')!r}, expected "
                            f"{MANIFEST_FORMAT!r}")
    fv = doc.get("format_version")
    if fv != MANIFEST_FORMAT_VERSION:
        raise ManifestError(f"update manifest format_version {fv!r} is not supported (this "
                            f"workbench reads version {MANIFEST_FORMAT_VERSION}); a newer "
                            "version needs a newer workbench")
    d = _keys(doc, _FIELDS, "the update manifest")
    if not isinstance(d["name"], str) or not d["name"].strip():
        raise ManifestError(f"name must be a non-empty string, got {d['name']!r}")
    version = _int(d["version"], "version", 1)
    size = _int(d["size"], "size", 1)
    arena = _int(d["arena_bytes"], "arena_bytes", 1)
    if not isinstance(d["sha256"], str) or not _SHA256.fullmatch(d["sha256"]):
        raise ManifestError(f"sha256 must be 64 lower-case hex digits, got {d['sha256']!r:.80}")
    specs = {}
    for key in ("inputs", "outputs"):
        if not isinstance(d[key], list) or not d[key]:
            raise ManifestError(f"{key} must be a non-empty list of tensor specs")
        specs[key] = tuple(_parse_spec(s, f"{key}[{i}]") for i, s in enumerate(d[key]))
    if not isinstance(d["golden"], list) or not d["golden"]:
        raise ManifestError("golden must be a non-empty list of input/output pairs")
    golden = []
    for i, g in enumerate(d["golden"]):
        pair = _keys(g, ("inputs", "outputs"), f"golden[{i}]")
        golden.append(GoldenPair(_parse_tensors(pair["inputs"], specs["inputs"],
                                                f"golden[{i}].inputs"),
                                 _parse_tensors(pair["outputs"], specs["outputs"],
                                                f"golden[{i}].outputs")))
    return UpdateManifest(name=d["name"], version=version, size=size, sha256=d["sha256"],
                          arena_bytes=arena, inputs=specs["inputs"], outputs=specs["outputs"],
                          golden=tuple(golden))
