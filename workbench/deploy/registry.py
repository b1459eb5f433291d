"""The model registry: a version per deployable model, its lineage, and where it went.

Plain files, readable without the package (the schema is in docs/deploy.md)::

    <root>/<model>/v<N>/model.tflite        the bytes, never rewritten
    <root>/<model>/v<N>/version.json        format "workbench-model-version", format_version 1
    <root>/<model>/v<N>/deployments.jsonl   one JSON object per line, appended per deployment
    <root>/<model>/v<N>/model.signed.bin    when signed: the update image (MCUboot format,
                                            workbench.deploy.signing), its key hash in
                                            version.json's "signed_image"

Call order: ``reg = ModelRegistry(root)`` (creates nothing until the first write) →
``v = reg.register(variant, name=..., measurement=..., snapshot=..., training_record=...)`` →
(gates, upload) → ``reg.record_deployment(v, device=..., gates=..., forced=...)``.
``reg.sign(v, key)`` (or ``register(..., key=...)``) stores the version's signed update image. Read with
:meth:`~ModelRegistry.models`, :meth:`~ModelRegistry.versions`, :meth:`~ModelRegistry.get`,
:meth:`~ModelRegistry.latest`, :meth:`~ModelRegistry.deployments`, :meth:`~ModelRegistry.diff`.

Safety: a version folder is built under a temporary name and renamed into place, so it is
either complete or absent; version numbers are handed out under an exclusive lock on the
model's folder (``workbench.data``'s folder lock), so two processes registering at once get
distinct numbers, and the same bytes twice get the same version. A ``version.json`` that
does not parse is skipped and reported (:meth:`ModelRegistry.problems`, and a
:class:`RegistryWarning`), never deleted, and its number is never reused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..data.folders import _flock, _unlock, _write_json_atomic, check_name
from ..data.store_errors import DatasetError
from ..errors import WorkbenchError

__all__ = ["FORMAT", "FORMAT_VERSION", "DEPLOYMENT_FORMAT", "Deployment", "ModelRegistry",
           "ModelVersion", "RegistryError", "RegistryWarning", "UnknownModelError"]

FORMAT = "workbench-model-version"
#: version of the ``version.json`` schema (readers refuse a newer one)
FORMAT_VERSION = 1
DEPLOYMENT_FORMAT = "workbench-deployment"

_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")


class RegistryError(WorkbenchError, ValueError):
    """Bad input to the registry or a registry file that cannot be used; the message says
    which file or name and what to do."""


class UnknownModelError(RegistryError, KeyError):
    """No such model, or no such version of it (a :class:`RegistryError` and a KeyError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RegistryWarning(UserWarning):
    """A registry file was skipped (corrupt or from a newer workbench); it was left as it was."""


@dataclass(frozen=True)
class Deployment:
    """One deployment of one version to one device, as recorded (one line of
    ``deployments.jsonl``). ``gates`` is whatever the gate report serialised to (a list of
    per-gate dicts, or a dict); ``forced`` is True when a failed gate was overridden."""

    model: str
    version: int
    sha256: str
    device: str
    time: str
    gates: Any = None
    forced: bool = False
    result: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": DEPLOYMENT_FORMAT, "format_version": FORMAT_VERSION,
                "model": self.model, "version": self.version, "sha256": self.sha256,
                "device": self.device, "time": self.time, "gates": self.gates,
                "forced": self.forced, "result": self.result}


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: ``name`` v``version``, its bytes' SHA-256 and size, and its
    lineage (``snapshot``: dataset snapshot id or None; ``training_record``: ``{"path",
    "sha256"}`` or None; ``variant``: ``{"name", "kind", "notes"}``; ``measurement``:
    :meth:`workbench.optimize.Measurement.to_dict` or None). ``path`` is its folder."""

    name: str
    version: int
    sha256: str
    size: int
    created: str
    path: Path
    variant: dict[str, Any] = field(default_factory=dict)
    snapshot: str | None = None
    training_record: dict[str, Any] | None = None
    measurement: dict[str, Any] | None = None
    signature: bytes | None = None
    signed_image: dict[str, Any] | None = None
    """When signed (:meth:`ModelRegistry.sign`): ``{"file", "sha256", "size", "key_hash",
    "image_version", "signed"}`` of the update image beside the model."""

    @property
    def label(self) -> str:
        """``"kws-int8 v2"``."""
        return f"{self.name} v{self.version}"

    @property
    def model_path(self) -> Path:
        return self.path / "model.tflite"

    def read_model(self) -> bytes:
        """The model's bytes, checked against the recorded SHA-256 (RegistryError if the
        file was changed or is missing)."""
        try:
            data = self.model_path.read_bytes()
        except OSError as e:
            raise RegistryError(f"{self.label}: cannot read {self.model_path}: {e.strerror or e}") from e
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise RegistryError(f"{self.label}: {self.model_path} no longer matches its recorded "
                                f"SHA-256 {self.sha256[:12]}; it was changed after registration. "
                                "Register the file again as a new version.")
        return data

    @property
    def signed_by(self) -> str | None:
        """The key hash (hex) of the key that signed the stored update image, or None."""
        return (self.signed_image or {}).get("key_hash")

    def read_signed_image(self) -> bytes:
        """The stored update image, checked against its recorded SHA-256 (RegistryError if
        the version is not signed, or the file was changed or is missing)."""
        if not self.signed_image:
            raise RegistryError(f"{self.label} has no signed image; sign it with "
                                "ModelRegistry.sign(version, key)")
        path = self.path / str(self.signed_image["file"])
        try:
            data = path.read_bytes()
        except OSError as e:
            raise RegistryError(f"{self.label}: cannot read {path}: {e.strerror or e}") from e
        if hashlib.sha256(data).hexdigest() != self.signed_image.get("sha256"):
            raise RegistryError(f"{self.label}: {path} no longer matches its recorded SHA-256; "
                                "it was changed after signing. Sign the version again.")
        return data

    def to_dict(self) -> dict[str, Any]:
        """The ``version.json`` contents (``signature`` as base64, or None)."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name,
                "version": self.version, "sha256": self.sha256, "size": self.size,
                "created": self.created, "model_file": "model.tflite",
                "lineage": {"snapshot": self.snapshot, "training_record": self.training_record,
                            "variant": self.variant, "measurement": self.measurement},
                "signature": (base64.b64encode(self.signature).decode("ascii")
                              if self.signature is not None else None),
                "signed_image": self.signed_image}

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: Path) -> ModelVersion:
        """Read a ``version.json`` dict (RegistryError if it is not one this workbench reads)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise RegistryError(f"{path / 'version.json'}: not a {FORMAT} file")
        fv = d.get("format_version")
        if not isinstance(fv, int) or fv > FORMAT_VERSION:
            raise RegistryError(f"{path / 'version.json'}: format_version {fv!r}; this workbench "
                                f"reads up to {FORMAT_VERSION}: update the workbench")
        try:
            lin = d.get("lineage") or {}
            sig = d.get("signature")
            return cls(name=str(d["name"]), version=int(d["version"]), sha256=str(d["sha256"]),
                       size=int(d["size"]), created=str(d["created"]), path=path,
                       variant=dict(lin.get("variant") or {}), snapshot=lin.get("snapshot"),
                       training_record=lin.get("training_record"),
                       measurement=lin.get("measurement"),
                       signature=base64.b64decode(sig) if sig is not None else None,
                       signed_image=_signed_image(d.get("signed_image"), path))
        except (KeyError, TypeError, ValueError) as e:
            raise RegistryError(f"{path / 'version.json'}: missing or invalid field ({e})") from e


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _jsonable(obj: Any) -> Any:
    """Gate reports, results and measurements as plain JSON values (their ``to_dict`` if they
    have one); RegistryError for what cannot be written as JSON."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        obj = obj.to_dict()
    elif isinstance(obj, (list, tuple)):
        obj = [_jsonable(o) for o in obj]
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as e:
        raise RegistryError(f"cannot record {type(obj).__name__} in the registry: {e}; "
                            "pass a dict, a list or an object with to_dict()") from e


def _check_model_name(name: Any) -> str:
    try:
        check_name(name, "model name")
    except DatasetError as e:
        raise RegistryError(str(e).replace("inside the dataset", "inside the registry")) from e
    if name.startswith("."):
        raise RegistryError(f"{name!r} is not a valid model name: it must not start with '.' "
                            "(hidden names are the registry's temporary files)")
    return name


class ModelRegistry:
    """The registry folder at ``root`` (created on the first write).

    Every method that writes takes the model folder's lock; readers take no lock (what they
    read is always whole: files are replaced or appended in one write).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._problems: dict[Path, str] = {}

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # -- reading ----------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Names of the registered models, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith("."))

    def _model_dir(self, name: str, *, must_exist: bool = True) -> Path:
        path = self.root / _check_model_name(name)
        if path.exists() and path.resolve().parent != self.root.resolve():
            raise RegistryError(f"{path} leads outside {self.root}; refusing to use it")
        if must_exist and not path.is_dir():
            known = ", ".join(self.models()) or "none yet"
            raise UnknownModelError(f"no model {name!r} in the registry {self.root} "
                                    f"(registered: {known})")
        return path

    def _numbers(self, model_dir: Path) -> list[int]:
        """Every version number in use (readable or not), sorted."""
        out = []
        for p in model_dir.iterdir():
            m = _VERSION_DIR.match(p.name)
            if m and p.is_dir():
                out.append(int(m.group(1)))
        return sorted(out)

    def _load(self, folder: Path) -> ModelVersion | None:
        """The version in ``folder``, or None (the problem recorded and warned about)."""
        try:
            v = ModelVersion.from_dict(json.loads((folder / "version.json").read_text()), folder)
            if v.version != int(folder.name[1:]):
                raise RegistryError(f"{folder / 'version.json'} says version {v.version} "
                                    f"but lies in {folder.name}")
        except (OSError, ValueError) as e:  # JSONDecodeError and RegistryError are ValueErrors
            reason = str(e) if isinstance(e, RegistryError) else \
                f"{folder / 'version.json'}: unreadable ({e})"
            if self._problems.get(folder) != reason:
                warnings.warn(f"skipped {folder}: {reason} (left as it is)", RegistryWarning,
                              stacklevel=3)
            self._problems[folder] = reason
            return None
        self._problems.pop(folder, None)
        return v

    def problems(self, name: str | None = None) -> dict[Path, str]:
        """Version folders that were skipped because they cannot be read, folder -> why,
        for one model or (``name=None``) all of them. Reads every version to find them."""
        names = [name] if name is not None else self.models()
        for n in names:
            self.versions(n)
        prefix = [self.root / n for n in names]
        return {p: r for p, r in self._problems.items() if p.parent in prefix}

    def versions(self, name: str) -> list[ModelVersion]:
        """Every readable version of ``name``, oldest first (UnknownModelError if there is no
        such model; unreadable ones are skipped with a :class:`RegistryWarning`)."""
        d = self._model_dir(name)
        out = []
        for n in self._numbers(d):
            v = self._load(d / f"v{n}")
            if v is not None:
                out.append(v)
        return out

    def get(self, name: str, version: int | str) -> ModelVersion:
        """Version ``version`` of ``name`` (an int, ``"3"``, ``"v3"`` or ``"latest"``).

        Raises UnknownModelError (a KeyError) for an unknown model or version, RegistryError
        if that version's ``version.json`` cannot be read.
        """
        if isinstance(version, str) and version.strip().lower() == "latest":
            return self.latest(name)
        n = _parse_version(version)
        d = self._model_dir(name)
        folder = d / f"v{n}"
        if not folder.is_dir():
            have = ", ".join(f"v{k}" for k in self._numbers(d)) or "none"
            raise UnknownModelError(f"{name!r} has no version {n} (versions: {have})")
        v = self._load(folder)
        if v is None:
            raise RegistryError(f"{name} v{n} cannot be read: {self._problems[folder]}")
        return v

    def latest(self, name: str) -> ModelVersion:
        """The newest readable version of ``name`` (UnknownModelError if it has none)."""
        vs = self.versions(name)
        if not vs:
            raise UnknownModelError(f"{name!r} has no readable version in {self.root}")
        return vs[-1]

    def find(self, sha256: str) -> ModelVersion | None:
        """The first version (any model) whose bytes have this SHA-256, or None."""
        for name in self.models():
            for v in self.versions(name):
                if v.sha256 == sha256:
                    return v
        return None

    # -- writing ----------------------------------------------------------------------------

    def register(self, model: Any, *, name: str | None = None, measurement: Any = None,
                 snapshot: Any = None, training_record: str | os.PathLike | None = None,
                 signature: bytes | None = None, kind: str | None = None,
                 key: Any = None) -> ModelVersion:
        """Register a deployable model and return its version.

        ``model`` is a :class:`workbench.optimize.Variant` (its name and kind are recorded;
        ``name`` defaults to the variant's), ``.tflite`` bytes, or a path to a ``.tflite``
        file. ``measurement`` is a :class:`workbench.optimize.Measurement` (or its
        ``to_dict()``), which must be of these bytes. ``snapshot`` is a
        :class:`workbench.data.Snapshot` or its id; ``training_record`` the path of a
        training record's JSON (its SHA-256 is recorded, and its ``snapshot_id`` is used
        when ``snapshot`` is not given). ``signature`` is kept as given. ``key`` (a
        :class:`workbench.deploy.signing.SigningKey` or its PEM path) also signs the
        version: :meth:`sign` runs after registration (and on an already registered one).

        Idempotent: if ``name`` already has a version with the same bytes, that version is
        returned unchanged (nothing is written). Otherwise the next number is taken under
        the model folder's lock and the version folder appears whole (temporary folder,
        then rename).

        Raises:
            RegistryError: an invalid name, bytes that are not a ``.tflite`` model, a
                measurement of other bytes, a snapshot that disagrees with the training
                record, an unreadable training record.
        """
        if key is not None:
            v = self.register(model, name=name, measurement=measurement, snapshot=snapshot,
                              training_record=training_record, signature=signature, kind=kind)
            return self.sign(v, key)
        data, variant = _model_bytes(model, kind)
        if name is None:
            if not variant.get("name"):
                raise RegistryError("register(bytes) needs name=: the model's name in the registry")
            name = variant["name"]
        _check_model_name(name)
        sha = hashlib.sha256(data).hexdigest()
        meas = _measurement(measurement, sha)
        record = _training_record(training_record)
        snap = _snapshot_id(snapshot, record)

        self.root.mkdir(parents=True, exist_ok=True)
        d = self._model_dir(name, must_exist=False)
        d.mkdir(exist_ok=True)
        fd = _flock(d)
        try:
            for v in self.versions(name):
                if v.sha256 == sha:
                    return v
            numbers = self._numbers(d)
            n = (numbers[-1] if numbers else 0) + 1
            v = ModelVersion(name=name, version=n, sha256=sha, size=len(data), created=_now(),
                             path=d / f"v{n}", variant=variant, snapshot=snap,
                             training_record=record and {"path": record[0], "sha256": record[1]},
                             measurement=meas, signature=signature)
            tmp = d / f".v{n}.{os.getpid()}-{secrets.token_hex(3)}.tmp"
            tmp.mkdir()
            try:
                with open(tmp / "model.tflite", "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                _write_json_atomic(tmp / "version.json", v.to_dict())
                os.rename(tmp, v.path)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            return v
        finally:
            _unlock(fd)

    def sign(self, version: ModelVersion, key: Any, *, manifest: Any = None) -> ModelVersion:
        """Store ``version``'s signed update image and record who signed it; returns the
        version as now recorded.

        The image is :func:`workbench.deploy.signing.make_update_image` of the version's
        bytes with ``key`` (a ``SigningKey``, or a private key PEM path or bytes), header
        version ``0.0.N``, and ``manifest`` (default: computed with TFLite Micro). It is
        written as ``model.signed.bin`` (temporary file, fsync, rename) and
        ``version.json`` gains ``signed_image`` (file, SHA-256, size, key hash, image
        version, time) and ``signature`` (the Ed25519 signature), replaced atomically,
        under the model folder's lock. Idempotent: a version already signed by this key
        (its image intact) is returned unchanged; signing with another key replaces the
        image.

        Raises UnknownModelError for a version not in this registry, RegistryError if its
        model file changed, SigningError for a key that cannot sign.
        """
        from ..protocol.image import Tlv
        from .signing import load_key, make_update_image, read_update_image

        signer = load_key(key)
        current = self.get(version.name, version.version)
        if current.signed_by == signer.key_hash:
            try:
                current.read_signed_image()
                return current
            except RegistryError:
                pass  # damaged or missing: sign again
        image = make_update_image(current, key=signer, manifest=manifest)
        read = read_update_image(image, keys=[signer])
        sig = next(t.value for t in read.image.tlvs if t.tag == Tlv.ED25519)
        fd = _flock(current.path.parent)
        try:
            tmp = current.path / f".model.signed.bin.{os.getpid()}-{secrets.token_hex(3)}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(image)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, current.path / "model.signed.bin")
            finally:
                tmp.unlink(missing_ok=True)
            info = {"file": "model.signed.bin", "sha256": hashlib.sha256(image).hexdigest(),
                    "size": len(image), "key_hash": signer.key_hash,
                    "image_version": read.version, "signed": _now()}
            signed = replace(current, signed_image=info, signature=sig)
            _write_json_atomic(current.path / "version.json", signed.to_dict())
        finally:
            _unlock(fd)
        return signed

    def record_deployment(self, version: ModelVersion, *, device: str, gates: Any = None,
                          forced: bool = False, result: Any = None,
                          time: str | None = None) -> Deployment:
        """Append a deployment of ``version`` to ``device`` to its ``deployments.jsonl``.

        ``gates`` is the gate report (an object with ``to_dict()``, a list of such, or plain
        JSON); ``forced`` says that a failed gate was overridden; ``result`` what the device
        reported (JSON or ``to_dict()``). Call it after the upload, whatever its outcome:
        the result says how it ended. One ``write`` of one line under the model folder's
        lock, then fsync.

        Raises UnknownModelError if the version is not (or no longer) in this registry,
        RegistryError for values that cannot be written as JSON or an empty device.
        """
        if not isinstance(device, str) or not device.strip():
            raise RegistryError("record_deployment needs device=: the device's URL or name")
        current = self.get(version.name, version.version)
        if current.sha256 != version.sha256:
            raise RegistryError(f"{version.label} in {self.root} has other bytes "
                                f"({current.sha256[:12]}, not {version.sha256[:12]})")
        dep = Deployment(model=version.name, version=version.version, sha256=version.sha256,
                         device=device, time=time or _now(), gates=_jsonable(gates),
                         forced=bool(forced), result=_jsonable(result))
        line = (json.dumps(dep.to_dict(), separators=(",", ":")) + "\n").encode()
        fd = _flock(current.path.parent)
        try:
            out = os.open(current.path / "deployments.jsonl",
                          os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(out, line)
                os.fsync(out)
            finally:
                os.close(out)
        finally:
            _unlock(fd)
        return dep

    def deployments(self, name: str, version: int | str | None = None) -> list[Deployment]:
        """Deployments of ``name`` (or of one version), oldest first. A line that does not
        parse (a torn write) is skipped with a :class:`RegistryWarning`."""
        vs = [self.get(name, version)] if version is not None else self.versions(name)
        out = []
        for v in vs:
            path = v.path / "deployments.jsonl"
            if not path.exists():
                continue
            for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    if d.get("format") != DEPLOYMENT_FORMAT:
                        raise ValueError("not a deployment record")
                    out.append(Deployment(model=d["model"], version=int(d["version"]),
                                          sha256=d["sha256"], device=d["device"], time=d["time"],
                                          gates=d.get("gates"), forced=bool(d.get("forced")),
                                          result=d.get("result")))
                except (ValueError, KeyError, TypeError, AttributeError) as e:
                    warnings.warn(f"skipped line {i} of {path}: {e}", RegistryWarning,
                                  stacklevel=2)
        return sorted(out, key=lambda d: d.time)

    # -- comparing --------------------------------------------------------------------------

    def diff(self, a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
        """What differs from ``a`` to ``b``: a dict with ``a``/``b`` (labels), ``changed``
        (field -> [a's, b's] for size, sha256, accuracy, agreement, arena_bytes, params,
        macs, the variant's name and kind, snapshot, training record), ``ops`` (``added``,
        ``removed``) and ``tensors`` (``added``, ``removed``, ``changed``: name -> what
        changed: shape, dtype, quantization, stored bytes), from both graphs
        (:func:`workbench.tflite.inspect_model`; reads both model files, verified)."""
        from ..tflite import inspect_model

        ma, mb = a.measurement or {}, b.measurement or {}
        pairs = {"size": (a.size, b.size), "sha256": (a.sha256, b.sha256),
                 "variant.name": (a.variant.get("name"), b.variant.get("name")),
                 "variant.kind": (a.variant.get("kind"), b.variant.get("kind")),
                 "snapshot": (a.snapshot, b.snapshot),
                 "training_record.sha256": ((a.training_record or {}).get("sha256"),
                                            (b.training_record or {}).get("sha256"))}
        for k in ("accuracy", "agreement", "arena_bytes", "params", "macs"):
            pairs[k] = (ma.get(k), mb.get(k))
        changed = {k: list(v) for k, v in pairs.items() if v[0] != v[1]}
        da, db = a.read_model(), b.read_model()
        ia, ib = inspect_model(da), inspect_model(db)
        ops = {"added": [o for o in ib.ops if o not in ia.ops],
               "removed": [o for o in ia.ops if o not in ib.ops]}
        ta, tb = _tensors(ia, da), _tensors(ib, db)
        tensors = {"added": [n for n in tb if n not in ta],
                   "removed": [n for n in ta if n not in tb], "changed": {}}
        for n in ta:
            if n in tb and ta[n] != tb[n]:
                tensors["changed"][n] = {k: [ta[n][k], tb[n][k]] for k in ta[n]
                                         if ta[n][k] != tb[n][k]}
        return {"a": a.label, "b": b.label, "changed": changed, "ops": ops, "tensors": tensors}


def _tensors(info, data: bytes) -> dict[str, dict[str, Any]]:
    """Tensor name -> shape, dtype, quantization, stored bytes and the SHA-256 of its stored
    data (short; None for a tensor computed at run time), for a model already inspected."""
    g = info.graph
    if g is None:
        return {}
    digests = _buffer_digests(data)
    return {t.name: {"shape": list(t.shape), "dtype": t.dtype,
                     "quantization": [t.scale, t.zero_point],
                     "stored_bytes": g.constant_bytes(t),
                     "data_sha256": digests.get(t.buffer) if t.buffer else None}
            for t in g.tensors}


def _buffer_digests(data: bytes) -> dict[int, str]:
    """Buffer index -> SHA-256 (16 hex digits) of its bytes, for the non-empty buffers of a
    model that :func:`workbench.tflite.inspect_model` has already bounds-checked."""
    from ..tflite.schema import schema

    model = schema().Model.GetRootAs(data, 0)
    out = {}
    for j in range(model.BuffersLength()):
        b = model.Buffers(j)
        off, size = int(b.Offset()), int(b.Size())
        if b.DataLength():
            raw = b.DataAsNumpy().tobytes()
        elif off > 1:
            raw = data[off:off + size]
        else:
            continue
        out[j] = hashlib.sha256(raw).hexdigest()[:16]
    return out


def _signed_image(value: Any, path: Path) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not {"file", "sha256", "key_hash"} <= set(value) \
            or "/" in str(value["file"]) or str(value["file"]).startswith("."):
        raise RegistryError(f"{path / 'version.json'}: signed_image must name a file in the "
                            "version folder with its sha256 and key_hash")
    return dict(value)


def _parse_version(version: int | str) -> int:
    s = str(version).strip().lower()
    s = s[1:] if s.startswith("v") else s
    if not s.isdigit() or int(s) < 1 or isinstance(version, bool):
        raise RegistryError(f"{version!r} is not a version: use a number such as 3, 'v3' "
                            "or 'latest'")
    return int(s)


def _model_bytes(model: Any, kind: str | None) -> tuple[bytes, dict[str, Any]]:
    """(bytes, variant lineage) from a Variant, bytes or a path; checks it is a model."""
    from ..tflite import ModelError, inspect_model

    if hasattr(model, "tflite") and hasattr(model, "kind"):
        data = bytes(model.tflite)
        variant = {"name": str(model.name), "kind": kind or str(model.kind),
                   "notes": list(getattr(model, "notes", []) or [])}
    elif isinstance(model, (bytes, bytearray, memoryview)):
        data, variant = bytes(model), {"name": None, "kind": kind or "imported", "notes": []}
    elif isinstance(model, (str, os.PathLike)):
        try:
            data = Path(model).read_bytes()
        except OSError as e:
            raise RegistryError(f"cannot read the model {model}: {e.strerror or e}") from e
        variant = {"name": None, "kind": kind or "imported", "notes": [f"from {Path(model).name}"]}
    else:
        raise RegistryError(f"cannot register a {type(model).__name__}: pass a Variant, "
                            ".tflite bytes or the path of a .tflite file")
    try:
        inspect_model(data)
    except ModelError as e:
        raise RegistryError(f"not a usable .tflite model: {e}") from e
    return data, variant


def _measurement(measurement: Any, sha: str) -> dict[str, Any] | None:
    if measurement is None:
        return None
    d = _jsonable(measurement)
    if not isinstance(d, dict):
        raise RegistryError("measurement= must be a Measurement or its to_dict()")
    if d.get("sha256") not in (None, sha):
        raise RegistryError(f"the measurement is of other bytes (SHA-256 {str(d['sha256'])[:12]}, "
                            f"the model's is {sha[:12]}): measure this model, or register the "
                            "one that was measured")
    return d


def _training_record(path: str | os.PathLike | None) -> tuple[str, str, dict] | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise RegistryError("training_record= is the path of the record's JSON (TrainResult.save "
                            "writes it beside the model)")
    p = Path(path)
    try:
        raw = p.read_bytes()
        content = json.loads(raw)
    except OSError as e:
        raise RegistryError(f"cannot read the training record {p}: {e.strerror or e}") from e
    except ValueError as e:
        raise RegistryError(f"the training record {p} is not JSON: {e}") from e
    return str(p.resolve()), hashlib.sha256(raw).hexdigest(), content


def _snapshot_id(snapshot: Any, record: tuple[str, str, dict] | None) -> str | None:
    sid = getattr(snapshot, "id", snapshot)
    if sid is not None and not isinstance(sid, str):
        raise RegistryError("snapshot= is a workbench.data.Snapshot or its id (a SHA-256)")
    rec_sid = record[2].get("snapshot_id") if record and isinstance(record[2], dict) else None
    if sid is not None and rec_sid is not None and sid != rec_sid:
        raise RegistryError(f"the training record {record[0]} was trained on snapshot "
                            f"{rec_sid[:12]}, not {sid[:12]}: pass the record of this training")
    return sid if sid is not None else rec_sid
