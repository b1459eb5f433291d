"""The Edge Impulse data acquisition format (JSON or CBOR), signed or not.

Specification: https://docs.edgeimpulse.com/reference/data-acquisition-format. A message is::

    {"protected": {"ver": "v1", "alg": "HS256" | "none", "iat": <seconds since epoch>},
     "signature": "<64 hex digits>",
     "payload": {"device_name": "...", "device_type": "...", "interval_ms": 10,
                 "sensors": [{"name": "accX", "units": "m/s2"}, ...],
                 "values": [[-9.81, 0.03, 1.21], ...]}}

encoded as JSON or CBOR. **Signing** (``alg: "HS256"``), as Edge Impulse's own examples do it:
set ``signature`` to 64 ``"0"`` characters, encode the whole message, compute HMAC-SHA256 of
those bytes with the project's HMAC key (the key string's UTF-8 bytes, not hex-decoded) and put
the lowercase hex digest in ``signature``. Since the digest has the same length as the zeros,
the signed file is the signed-over bytes with the zeros replaced.

**Verifying** therefore works on the file's own bytes: the signature's 64 characters are put
back to zeros where they stand and the HMAC is recomputed, so any JSON layout (Python's
``json.dumps``, JavaScript's ``JSON.stringify``) and CBOR verify alike. If that fails for JSON,
the parsed message is also re-encoded the two usual ways (``json.dumps`` with its default
separators, and compact) with the zeros in place, for files that were reformatted after
signing. ``alg: "none"`` files carry no proof: they are accepted when no key is given, and
refused when one is (a stripped signature must not pass as valid).

Values are written in physical units (float32 values with the fewest digits that read back the
same); ``raw=True`` writes the stored integers instead (for 16-bit audio Edge Impulse expects
that, with units ``"wav"``). A recording's label is not part of the format: by Edge Impulse's
convention it is the start of the file name, ``<label>.<anything>.json``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from ...errors import WorkbenchError
from ..store import Dataset, Recording, RecordingMeta
from . import store_recording

__all__ = ["SignatureError", "to_edge_impulse", "from_edge_impulse", "export_edge_impulse",
           "import_edge_impulse", "EMPTY_SIGNATURE"]

EMPTY_SIGNATURE = "0" * 64
"""The signature field's value while the HMAC is computed (HS256 digest, hex: 64 digits)."""
DEFAULT_DEVICE_TYPE = "TINYML_WORKBENCH"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class SignatureError(WorkbenchError, ValueError):
    """The message's signature does not verify (tampered data, or the wrong HMAC key)."""


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _cbor():
    try:
        import cbor2
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("CBOR needs the 'cbor2' package: pip install 'cbor2>=5.4,<7'") from None
    return cbor2


def _encode(message: dict, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(message).encode("utf-8")
    if fmt == "cbor":
        return _cbor().dumps(message)
    raise ValueError(f"fmt must be 'json' or 'cbor', not {fmt!r}")


def _float_list(values: np.ndarray) -> list:
    """float32 values as Python floats with the fewest digits that read back the same."""
    return np.asarray(values, dtype=np.float32).astype(str).astype(np.float64).tolist()


def to_edge_impulse(recording: Recording, *, hmac_key: str | bytes | None = None,
                    fmt: str = "json", device_name: str | None = None,
                    device_type: str | None = None, raw: bool = False,
                    iat: int | None = None) -> bytes:
    """Encode a recording as an Edge Impulse data acquisition message.

    Signed with HMAC-SHA256 when ``hmac_key`` is given (``alg: "HS256"``), else ``alg:
    "none"``. ``device_name`` defaults to the recording's device (left out when unknown, as the
    spec asks), ``device_type`` to its board. ``iat`` defaults to now.
    """
    meta = recording.meta
    if not meta.rate_hz > 0:
        raise ValueError(f"recording {meta.id} has no sample rate; Edge Impulse needs interval_ms")
    units = list(meta.extra.get("channel_units") or [meta.units] * len(meta.channels))
    if raw:
        rows = np.asarray(recording.raw)
        values = rows.tolist() if rows.dtype.kind in "iu" else _float_list(rows)
        if meta.units == "FS" and rows.dtype == np.int16:
            units = ["wav"] * len(meta.channels)
    elif np.dtype(meta.dtype).kind in "iu" and meta.scale == 1.0:
        values = np.asarray(recording.raw).tolist()
    else:
        values = _float_list(recording.values)
    if np.dtype(meta.dtype).kind == "f" and not np.all(np.isfinite(recording.raw)):
        raise ValueError(f"recording {meta.id} holds NaN or infinite values, which the Edge "
                         "Impulse format (JSON numbers) cannot carry")
    payload: dict = {}
    name = meta.device if device_name is None else device_name
    if name:
        payload["device_name"] = name
    payload["device_type"] = device_type or meta.board or DEFAULT_DEVICE_TYPE
    interval = 1000.0 / meta.rate_hz
    payload["interval_ms"] = int(interval) if interval == int(interval) else interval
    payload["sensors"] = [{"name": c, "units": u or "N/A"} for c, u in zip(meta.channels, units)]
    payload["values"] = values
    message = {"protected": {"ver": "v1", "alg": "HS256" if hmac_key is not None else "none",
                             "iat": int(time.time()) if iat is None else int(iat)},
               "signature": EMPTY_SIGNATURE, "payload": payload}
    if hmac_key is None:
        return _encode(message, fmt)
    unsigned = _encode(message, fmt)
    message["signature"] = hmac.new(_key_bytes(hmac_key), unsigned, hashlib.sha256).hexdigest()
    signed = _encode(message, fmt)
    assert len(signed) == len(unsigned)  # only the 64 signature characters changed
    return signed


def _parse(data: bytes) -> tuple[dict, str]:
    """(message, "json" or "cbor"); ValueError if it is neither or not a message."""
    if not data:
        raise ValueError("empty file: not an Edge Impulse data acquisition message")
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            message, fmt = json.loads(data.decode("utf-8")), "json"
        except (UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"not valid JSON ({e}); expected an Edge Impulse data "
                             "acquisition message") from None
    else:
        cbor2 = _cbor()
        try:
            message, fmt = cbor2.loads(data), "cbor"
        except Exception as e:  # cbor2 raises several error types for garbage
            raise ValueError(f"neither JSON nor valid CBOR ({type(e).__name__}: {e}); expected "
                             "an Edge Impulse data acquisition message") from None
    if not isinstance(message, dict):
        raise ValueError(f"expected a message object with 'protected', 'signature' and "
                         f"'payload', got a {type(message).__name__}")
    missing = [k for k in ("protected", "signature", "payload") if k not in message]
    if missing:
        raise ValueError(f"not an Edge Impulse data acquisition message: missing "
                         f"{', '.join(repr(k) for k in missing)}")
    return message, fmt


def _verify(data: bytes, message: dict, fmt: str, key: bytes) -> bool:
    sig = message["signature"]
    if not isinstance(sig, str) or not _HEX64.fullmatch(sig):
        raise SignatureError(f"the signature must be 64 hex digits (HMAC-SHA256), got {sig!r}")
    expected = sig.lower()
    needle = sig.encode("ascii")
    zeros = EMPTY_SIGNATURE.encode("ascii")
    candidates = []
    at = data.find(needle)
    while at != -1 and len(candidates) < 8:
        candidates.append(data[:at] + zeros + data[at + 64:])
        at = data.find(needle, at + 1)
    if fmt == "json":
        blank = {**message, "signature": EMPTY_SIGNATURE}
        candidates.append(json.dumps(blank).encode("utf-8"))
        candidates.append(json.dumps(blank, separators=(",", ":")).encode("utf-8"))
    return any(hmac.compare_digest(hmac.new(key, c, hashlib.sha256).hexdigest(), expected)
               for c in candidates)


def _values(payload: dict) -> np.ndarray:
    sensors = payload.get("sensors")
    if not isinstance(sensors, list) or not sensors:
        raise ValueError("payload.sensors must be a non-empty list of {name, units}")
    for i, s in enumerate(sensors):
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"]:
            raise ValueError(f"payload.sensors[{i}] must be an object with a 'name', got {s!r}")
    interval = payload.get("interval_ms")
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
            or not np.isfinite(interval) or interval <= 0:
        raise ValueError(f"payload.interval_ms must be a positive number, got {interval!r}")
    rows = payload.get("values")
    if not isinstance(rows, list) or not rows:
        raise ValueError("payload.values must be a non-empty list of samples")
    try:
        values = np.asarray(rows)
    except ValueError:
        raise ValueError(f"payload.values rows must all have {len(sensors)} numbers (one per "
                         "sensor); some rows differ in length") from None
    if values.dtype.kind not in "iuf":
        raise ValueError(f"payload.values must hold only numbers (found {values.dtype.kind!r} "
                         f"data, e.g. strings, null or booleans)")
    if values.ndim == 1 and len(sensors) == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] != len(sensors):
        raise ValueError(f"payload.values rows must have {len(sensors)} numbers (one per "
                         f"sensor), got shape {values.shape}")
    return values


def from_edge_impulse(data: bytes, *, hmac_key: str | bytes | None = None,
                      verify: bool = True) -> tuple[dict, np.ndarray]:
    """Decode a message (JSON or CBOR, detected): returns (payload, values (samples x sensors)).

    With ``verify`` (the default) an ``HS256`` message must verify with ``hmac_key``, else
    :class:`SignatureError`; without a key it is refused too (pass ``verify=False`` to read it
    unchecked). ``alg: "none"`` messages are accepted without a key, but refused when a key is
    given (the caller expects signed data: a stripped signature must not pass). Malformed
    messages raise :class:`ValueError` saying what is wrong.
    """
    message, values = _decode(bytes(data), hmac_key, verify)
    return message["payload"], values


def _decode(data: bytes, hmac_key, verify: bool) -> tuple[dict, np.ndarray]:
    message, fmt = _parse(data)
    protected, payload = message["protected"], message["payload"]
    if not isinstance(protected, dict) or protected.get("ver") != "v1":
        raise ValueError(f"protected.ver must be 'v1', got {protected!r}")
    alg = protected.get("alg")
    if alg not in ("HS256", "none"):
        raise ValueError(f"protected.alg must be 'HS256' or 'none', got {alg!r}")
    if not isinstance(payload, dict):
        raise ValueError(f"payload must be an object, got {type(payload).__name__}")
    if verify and alg == "none" and hmac_key is not None:
        raise SignatureError("this message is not signed (alg 'none') but an hmac_key was "
                             "given, so signed data were expected; pass hmac_key=None to "
                             "accept unsigned data")
    if verify and alg == "HS256":
        if hmac_key is None:
            raise SignatureError("this message is signed (HS256) but no hmac_key was given; "
                                 "pass the project's HMAC key, or verify=False to read it "
                                 "without checking")
        if not _verify(data, message, fmt, _key_bytes(hmac_key)):
            raise SignatureError("signature does not match: the data were changed after "
                                 "signing, or the HMAC key is not the one they were signed with")
    return message, _values(payload)


def _label_from_name(path: Path) -> str | None:
    label = path.name.split(".", 1)[0].strip()
    return label or None


def import_edge_impulse(dataset: Dataset, path: str | os.PathLike, *, label: str | None = None,
                        hmac_key: str | bytes | None = None, verify: bool = True,
                        sensor: str = "edge-impulse") -> RecordingMeta:
    """Import one Edge Impulse JSON/CBOR file as a recording.

    ``label`` defaults to the file name's start (``idle.01.json`` -> ``idle``). Whole numbers
    are stored as integers (int16 when they fit, else int32), anything else as float32; 16-bit
    audio (units ``"wav"``) becomes int16 full-scale audio (units "FS", scale 1/32768).
    The signature is checked as in :func:`from_edge_impulse`; nothing is stored on any error.
    """
    path = Path(path)
    try:
        message, values = _decode(path.read_bytes(), hmac_key, verify)
    except ValueError as e:  # say which file
        raise type(e)(f"{path.name}: {e}") from None
    protected, payload = message["protected"], message["payload"]
    sensors = payload["sensors"]
    channels = tuple(str(s["name"]) for s in sensors)
    if len(set(channels)) != len(channels):
        raise ValueError(f"{path.name}: sensor names repeat: {list(channels)}")
    units = [str(s.get("units", "")) for s in sensors]
    scale = 1.0
    if values.dtype.kind in "iu":
        if np.all((values >= -32768) & (values <= 32767)):
            dtype = "int16"
        elif np.all((values >= -2 ** 31) & (values < 2 ** 31)):
            dtype = "int32"
        else:
            dtype = "float64"
        if dtype == "int16" and set(units) == {"wav"}:
            units, scale = ["FS"] * len(units), 1 / 32768
    else:
        dtype = "float32"
    extra: dict = {"file": path.name, "alg": protected.get("alg"),
                   "signature": ("verified" if protected.get("alg") == "HS256" and verify
                                 else "not checked" if protected.get("alg") == "HS256"
                                 else "none")}
    if protected.get("iat") is not None:
        extra["iat"] = protected["iat"]
    if len(set(units)) > 1:
        extra["channel_units"] = units
        unit_text = ", ".join(f"{c}: {u}" for c, u in zip(channels, units))
    else:
        unit_text = units[0]
    rate = float(f"{1000.0 / float(payload['interval_ms']):.10g}")
    return store_recording(dataset, values.astype(dtype), sensor=sensor, channels=channels,
                           units=unit_text, rate_hz=rate, dtype=dtype, scale=scale,
                           label=label if label is not None else _label_from_name(path),
                           device=str(payload.get("device_name") or ""),
                           board=str(payload.get("device_type") or ""),
                           source="import:edge-impulse", **extra)


def export_edge_impulse(dataset: Dataset, rec_id: str, path: str | os.PathLike, *,
                        hmac_key: str | bytes | None = None, fmt: str | None = None,
                        device_name: str | None = None, device_type: str | None = None,
                        raw: bool = False) -> Path:
    """Write recording ``rec_id`` as an Edge Impulse file; returns the path written.

    If ``path`` is a directory the file is named ``<label>.<id>.<fmt>`` (Edge Impulse reads
    the label from the name). ``fmt`` defaults to the path's suffix (``.cbor``) or JSON.
    """
    recording = dataset.load(rec_id)
    path = Path(path)
    if fmt is None:
        fmt = "cbor" if path.suffix.lower() == ".cbor" else "json"
    if path.is_dir():
        label = recording.meta.label or "unlabeled"
        path = path / f"{re.sub(r'[^A-Za-z0-9_-]+', '_', label)}.{rec_id}.{fmt}"
    data = to_edge_impulse(recording, hmac_key=hmac_key, fmt=fmt, device_name=device_name,
                           device_type=device_type, raw=raw)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
