"""WAV import and export.

Import reads PCM integer WAV files (8, 16, 24 and 32 bits) with the standard library's
:mod:`wave`, and what :mod:`wave` refuses (32/64-bit IEEE float, ``WAVE_FORMAT_EXTENSIBLE``
headers, which Python before 3.12 does not read) with a small RIFF reader of its own. Mono or
any number of channels. Samples are stored as they are in the file, with ``units="FS"``
(fraction of full scale) and the scale that maps them to [-1, 1):

========================  ===============  ================
WAV samples               stored dtype     scale
========================  ===============  ================
8-bit PCM (unsigned)      int8 (x - 128)   1/128
16-bit PCM                int16            1/32768
24-bit PCM                int32            1/2**23
32-bit PCM                int32            1/2**31
32-bit float              float32          1
64-bit float              float64          1
========================  ===============  ================

A file whose data chunk is cut short (a recorder that died) keeps every whole frame and is
marked ``extra["truncated"] = True``; anything that is not a readable WAV (a sample rate of 0
included) raises a :class:`ValueError` that says why, and nothing is stored. Float files with
NaN or infinity among their samples are refused the same way.

Export is the inverse, bit-exact for every row of that table (an int16/FS recording comes back
identical). Other recordings (an accelerometer in g, say) are written as 32-bit float WAV of
their physical values, or in the ``encoding`` you ask for (values are then read as fractions
of full scale and clipped). WAV stores a whole number of samples per second: a recording at a
fractional rate is refused. Channel names, labels and lost-sample gaps are not kept by WAV.
"""

from __future__ import annotations

import os
import struct
import wave
from pathlib import Path

import numpy as np

from ..store import Dataset, Recording, RecordingMeta
from . import store_recording

__all__ = ["import_wav", "export_wav", "read_wav", "ENCODINGS"]

PCM, FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_TAG_NAMES = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM",
              0x0055: "MP3"}

#: encoding -> (format tag, bits, stored dtype, scale)
ENCODINGS = {
    "pcm8": (PCM, 8, "int8", 1 / 128),
    "pcm16": (PCM, 16, "int16", 1 / 32768),
    "pcm24": (PCM, 24, "int32", 1 / 2 ** 23),
    "pcm32": (PCM, 32, "int32", 1 / 2 ** 31),
    "float32": (FLOAT, 32, "float32", 1.0),
    "float64": (FLOAT, 64, "float64", 1.0),
}


def _encoding(tag: int, bits: int) -> str:
    for name, (t, b, _, _) in ENCODINGS.items():
        if (t, b) == (tag, bits):
            return name
    kind = _TAG_NAMES.get(tag, "PCM" if tag == PCM else "IEEE float" if tag == FLOAT
                          else f"format tag 0x{tag:04x}")
    raise ValueError(f"unsupported WAV encoding: {kind}, {bits} bits per sample (supported: "
                     "8/16/24/32-bit PCM and 32/64-bit float)")


def _decode(frames: bytes, encoding: str, channels: int) -> np.ndarray:
    """Raw WAV bytes -> stored samples, shape (frames, channels)."""
    _, bits, dtype, _ = ENCODINGS[encoding]
    width = bits // 8
    usable = len(frames) - len(frames) % (width * channels)
    buf = np.frombuffer(frames[:usable], dtype=np.uint8)
    if encoding == "pcm8":
        out = (buf.astype(np.int16) - 128).astype(np.int8)
    elif encoding == "pcm24":
        b = buf.reshape(-1, 3).astype(np.uint32)
        u = (b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)
        out = u.view(np.int32) >> 8  # arithmetic shift: sign-extends the 24-bit value
    else:
        out = buf.view(np.dtype(dtype).newbyteorder("<")).astype(dtype)
    return out.reshape(-1, channels)


def _encode(raw: np.ndarray, encoding: str) -> bytes:
    if encoding == "pcm8":
        return (raw.astype(np.int16) + 128).astype(np.uint8).tobytes()
    if encoding == "pcm24":
        u = raw.astype("<i4").reshape(-1).view(np.uint8).reshape(-1, 4)
        return np.ascontiguousarray(u[:, :3]).tobytes()
    dtype = np.dtype(ENCODINGS[encoding][2]).newbyteorder("<")
    return np.ascontiguousarray(raw, dtype=dtype).tobytes()


def _read_with_wave(path: Path) -> dict:
    with wave.open(str(path), "rb") as w:
        channels, width, rate, nframes = (w.getnchannels(), w.getsampwidth(),
                                          w.getframerate(), w.getnframes())
        frames = w.readframes(nframes)
    encoding = _encoding(PCM, width * 8)
    raw = _decode(frames, encoding, channels)
    return {"raw": raw, "rate": rate, "channels": channels, "encoding": encoding,
            "truncated": len(raw) < nframes, "reader": "wave"}


def _read_riff(data: bytes, name: str) -> dict:
    """Our own RIFF/WAVE reader (float and WAVE_FORMAT_EXTENSIBLE files)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        what = ("an RF64 (large) WAV, which is not supported" if data[:4] == b"RF64"
                else "a big-endian RIFX WAV, which is not supported" if data[:4] == b"RIFX"
                else "not a WAV file (it does not start with RIFF....WAVE)")
        raise ValueError(f"{name}: {what}")
    fmt = None
    pcm = None
    truncated = False
    valid_bits = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + size > len(data):
                raise ValueError(f"{name}: the WAV format chunk is damaged ({size} bytes)")
            tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == EXTENSIBLE:
                if size < 40:
                    raise ValueError(f"{name}: WAVE_FORMAT_EXTENSIBLE header is too short")
                valid_bits = struct.unpack_from("<H", data, body + 18)[0]
                guid = data[body + 24:body + 40]
                if guid[2:] != _GUID_TAIL:
                    raise ValueError(f"{name}: unsupported WAV sub-format {guid.hex()}")
                tag = int.from_bytes(guid[:2], "little")
            fmt = (tag, channels, rate, block, bits)
        elif cid == b"data":
            end = body + size
            if size == 0xFFFFFFFF:
                end = len(data)  # a streaming writer that never filled in the size
            elif end > len(data):
                truncated, end = True, len(data)
            pcm = data[body:end]
        pos = body + size + (size & 1)
    if fmt is None:
        raise ValueError(f"{name}: not a usable WAV file (no format chunk)")
    if pcm is None:
        raise ValueError(f"{name}: not a usable WAV file (no data chunk)")
    tag, channels, rate, block, bits = fmt
    if channels < 1 or rate < 1:
        raise ValueError(f"{name}: WAV header says {channels} channels at {rate} Hz")
    encoding = _encoding(tag, bits)
    if len(pcm) % (bits // 8 * channels):
        truncated = True
    out = {"raw": _decode(pcm, encoding, channels), "rate": rate, "channels": channels,
           "encoding": encoding, "truncated": truncated, "reader": "riff"}
    if valid_bits and valid_bits != bits:
        out["valid_bits"] = valid_bits
    return out


def read_wav(path: str | os.PathLike) -> dict:
    """Read a WAV file into memory: ``{"raw", "rate", "channels", "encoding", "truncated",
    "reader"}`` (``raw`` as in the table above, shape (frames, channels))."""
    path = Path(path)
    try:
        return _read_with_wave(path)
    except (wave.Error, EOFError, ValueError, struct.error):
        # float, extensible, damaged or not a WAV at all: our reader says what it is
        return _read_riff(path.read_bytes(), path.name)


def _channel_names(n: int) -> tuple[str, ...]:
    if n == 1:
        return ("audio",)
    if n == 2:
        return ("left", "right")
    return tuple(f"ch{i}" for i in range(n))


def import_wav(dataset: Dataset, path: str | os.PathLike, *, label: str | None = None,
               sensor: str = "mic") -> RecordingMeta:
    """Import a WAV file as one recording (samples as stored in the file, units "FS")."""
    path = Path(path)
    wav = read_wav(path)
    raw = wav["raw"]
    if not wav["rate"] >= 1:
        raise ValueError(f"{path.name}: the WAV header says {wav['rate']} samples per second; "
                         "a WAV needs a rate of at least 1 Hz (the file is damaged or was "
                         "written without one; nothing was stored)")
    if len(raw) == 0:
        raise ValueError(f"{path.name}: the WAV file holds no samples")
    _, bits, dtype, scale = ENCODINGS[wav["encoding"]]
    extra = {"file": path.name, "wav_encoding": wav["encoding"], "wav_bits": bits}
    if wav["truncated"]:
        extra["truncated"] = True
    if "valid_bits" in wav:
        extra["wav_valid_bits"] = wav["valid_bits"]
    return store_recording(dataset, raw, sensor=sensor, channels=_channel_names(wav["channels"]),
                           units="FS", rate_hz=float(wav["rate"]), dtype=dtype, scale=scale,
                           label=label, source="import:wav", **extra)


def _wav_bytes(raw: np.ndarray, encoding: str, rate: int) -> bytes:
    tag, bits, _, _ = ENCODINGS[encoding]
    channels = raw.shape[1]
    block = channels * bits // 8
    body = _encode(raw, encoding)
    if tag == FLOAT:  # non-PCM: 18-byte format chunk and a fact chunk, as the spec asks
        fmt = struct.pack("<HHIIHHH", tag, channels, rate, rate * block, block, bits, 0)
        chunks = [(b"fmt ", fmt), (b"fact", struct.pack("<I", len(raw))), (b"data", body)]
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
        chunks = [(b"fmt ", fmt), (b"data", body)]
    out = bytearray(b"WAVE")
    for cid, payload in chunks:
        out += cid + struct.pack("<I", len(payload)) + payload
        if len(payload) % 2:
            out += b"\x00"
    if len(out) + 8 > 0xFFFFFFFF:
        raise ValueError("recording too large for a WAV file (over 4 GiB)")
    return b"RIFF" + struct.pack("<I", len(out)) + bytes(out)


def export_wav(recording: Recording, path: str | os.PathLike, *,
               encoding: str | None = None) -> Path:
    """Write a recording as WAV; returns the path. See the module doc for the encodings.

    ``encoding`` (one of :data:`ENCODINGS`) forces an encoding: the values (in full-scale
    units) are then converted and clipped. The file is written to a temporary name and renamed.
    """
    meta = recording.meta
    rate = int(round(meta.rate_hz))
    if rate < 1 or abs(rate - meta.rate_hz) > 1e-6 * meta.rate_hz:
        raise ValueError(f"WAV stores a whole number of samples per second; this recording is "
                         f"at {meta.rate_hz:g} Hz (resample it first)")
    native = next((name for name, (_, _, dtype, scale) in ENCODINGS.items()
                   if np.dtype(meta.dtype) == np.dtype(dtype) and meta.scale == scale), None)
    if encoding is None:
        if native == "pcm24" and np.any((recording.raw < -2 ** 23) | (recording.raw >= 2 ** 23)):
            native = None  # int32 that does not fit 24 bits
        encoding = native or "float32"
        raw = recording.raw if native else np.asarray(recording.values, dtype=np.float32)
    elif encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {sorted(ENCODINGS)}, not {encoding!r}")
    elif encoding == native:
        raw = recording.raw
    else:
        _, _, dtype, scale = ENCODINGS[encoding]
        values = np.asarray(recording.values, dtype=np.float64)
        if np.dtype(dtype).kind == "f":
            raw = values.astype(dtype)
        else:
            info = np.iinfo(dtype)
            top = 2 ** (ENCODINGS[encoding][1] - 1)
            raw = np.clip(np.round(values / scale), -top, top - 1).astype(info.dtype)
    data = _wav_bytes(np.asarray(raw).reshape(len(raw), -1), encoding, rate)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
