"""Import and export formats: real files in, the same data out, bad files refused cleanly."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

import workbench.data
from workbench.data.formats import (
    SignatureError,
    example_dataset,
    export_csv,
    export_edge_impulse,
    export_wav,
    from_edge_impulse,
    import_basicmotions,
    import_csv,
    import_edge_impulse,
    import_wav,
    to_edge_impulse,
)
from workbench.data.store import Dataset

FRUIT = Path(workbench.data.__file__).parent / "examples" / "arduino-fruit-color"  # shipped copy
ALSA = Path("/usr/share/sounds/alsa")
ALSA_FILES = sorted(ALSA.glob("*.wav")) if ALSA.is_dir() else []
HAVE_AEON = importlib.util.find_spec("aeon") is not None
HAVE_CBOR = importlib.util.find_spec("cbor2") is not None

needs_alsa = pytest.mark.skipif(not ALSA_FILES, reason="apt-get install alsa-utils")
needs_aeon = pytest.mark.skipif(not HAVE_AEON, reason="pip install aeon")
needs_cbor = pytest.mark.skipif(not HAVE_CBOR, reason="pip install cbor2")


@pytest.fixture
def ds(tmp_path) -> Dataset:
    return Dataset(tmp_path / "ds")


def unchanged(ds: Dataset, before: int) -> None:
    """Nothing half-written: same count, in memory and on disk, and no trash left behind."""
    assert len(ds) == before
    assert len(Dataset(ds.root)) == before
    assert len(list((ds.root / "recordings").iterdir())) == before
    assert not (ds.root / "trash").exists()


# ------------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize("fruit", ["apple", "banana", "orange"])
def test_real_fruit_csv_is_read_as_printed(ds, fruit):
    path = FRUIT / f"{fruit}.csv"
    lines = path.read_text().splitlines()
    assert lines[0] == "Red,Green,Blue"
    rows = [line for line in lines[1:] if line.strip()]
    expected = np.array([[float(v) for v in r.split(",")] for r in rows], dtype=np.float32)

    meta = import_csv(ds, path, label=fruit, rate_hz=10, sensor="color")
    assert meta.channels == ("Red", "Green", "Blue")
    assert meta.samples == len(rows) == len(expected)
    assert meta.label == fruit and meta.rate_hz == 10.0 and meta.source == "import:csv"
    assert meta.extra["skipped_lines"] == 0 and meta.extra["header"] == ["Red", "Green", "Blue"]
    rec = ds.load(meta.id)
    assert rec.values.dtype == np.float32
    np.testing.assert_array_equal(rec.values, expected)
    assert np.allclose(rec.values.sum(axis=1), 1.0, atol=0.01)  # colour shares add up to one


def test_unknown_rate_is_a_clear_error_and_stores_nothing(ds):
    before = len(ds)
    with pytest.raises(ValueError, match="rate_hz"):
        import_csv(ds, FRUIT / "apple.csv")
    unchanged(ds, before)


def test_stray_text_and_blank_lines_are_skipped_and_counted(ds, tmp_path):
    real = (FRUIT / "banana.csv").read_text().splitlines()
    header, rows = real[0], real[1:]
    # what a real session looks like: a failing first boot, blank lines, a cut-off line
    noisy = (["Error initializing APDS9960 sensor.", "", header] + rows[:10] + ["", "", "0.47,0.35"]
             + rows[10:20] + ["Serial port reopened", "\t"] + rows[20:])
    path = tmp_path / "banana-noisy.csv"
    path.write_bytes(("\r\n".join(noisy) + "\r\n").encode())

    meta = import_csv(ds, path, label="banana", rate_hz=10)
    assert meta.channels == ("Red", "Green", "Blue")
    assert meta.samples == len(rows)
    assert meta.extra["skipped_lines"] == 3
    assert meta.extra["blank_lines"] == 4
    assert meta.extra["skipped_text"] == ["Error initializing APDS9960 sensor.", "0.47,0.35",
                                          "Serial port reopened"]
    expected = np.array([[float(v) for v in r.split(",")] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(ds.load(meta.id).values, expected)


def test_csv_export_then_import_gives_the_same_recording(ds, tmp_path):
    meta = import_csv(ds, FRUIT / "orange.csv", label="orange", rate_hz=10)
    out = export_csv(meta, ds, tmp_path / "orange-out.csv")
    text = out.read_text().splitlines()
    assert text[0] == "timestamp,Red,Green,Blue"
    assert text[1] == "0,0.54,0.3,0.16" and text[2].startswith("100,")  # ms, shortest floats
    back = import_csv(ds, out, label="orange")
    assert back.rate_hz == 10.0 and back.channels == meta.channels
    assert back.extra["time_column"] == "timestamp" and back.lost == 0
    np.testing.assert_array_equal(ds.load(back.id).values, ds.load(meta.id).values)


def test_csv_round_trip_keeps_scaled_ints_fractional_rates_and_losses(ds, tmp_path):
    rng = np.random.default_rng(1)
    raw = rng.integers(-32768, 32767, size=(500, 3), dtype=np.int16)
    with ds.new_recording(sensor="accel", channels=("x", "y", "z"), units="g", rate_hz=119.0,
                          dtype="int16", scale=0.000122, label="wave") as w:
        w.append(raw[:200])
        w.note_loss(7)
        w.append(raw[200:])
    rec = ds.load(w.meta.id)
    path = export_csv(rec, tmp_path / "imu.csv")  # (recording, path) form
    back = import_csv(ds, path, units="g")
    assert back.rate_hz == 119.0
    assert back.lost == 7 and back.gaps == ((200, 7),)
    np.testing.assert_array_equal(ds.load(back.id).values, rec.values)


def test_time_column_from_arduino_millis(ds, tmp_path):
    # millis() stamps of a 119 Hz sensor: 8 or 9 ms apart, rounded to whole milliseconds
    t = np.floor(np.arange(300) * 1000 / 119 + 12345).astype(int)
    lines = ["millis,ax,ay"] + [f"{ti},{i * 0.01:.2f},{-i}" for i, ti in enumerate(t)]
    path = tmp_path / "imu.csv"
    path.write_text("\n".join(lines) + "\n")
    meta = import_csv(ds, path)
    assert meta.channels == ("ax", "ay")  # the time column is not a channel
    assert meta.rate_hz == pytest.approx(119, rel=1e-3)
    assert meta.extra["time_unit"] == "ms" and meta.lost == 0
    np.testing.assert_array_equal(ds.load(meta.id).values[:, 1], -np.arange(300))


def test_time_column_in_seconds_and_a_column_that_only_looks_like_time(ds, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("time,v\n" + "".join(f"{i / 50:.2f},{i}\n" for i in range(100)))
    assert import_csv(ds, path).rate_hz == 50.0  # fractional values: seconds
    path2 = tmp_path / "not-time.csv"  # named "time" but goes back: it is data
    path2.write_text("time,v\n" + "".join(f"{(i * 7) % 5},{i}\n" for i in range(20)))
    before = len(ds)
    with pytest.raises(ValueError, match="rate_hz"):
        import_csv(ds, path2)
    meta = import_csv(ds, path2, rate_hz=5)
    assert meta.channels == ("time", "v")
    with pytest.raises(ValueError, match="goes backwards"):
        import_csv(ds, path2, time_column="time")
    assert len(ds) == before + 1


def test_headerless_csv_and_bad_files(ds, tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1 2 3\n4 5 6\n")
    meta = import_csv(ds, path, rate_hz=100)
    assert meta.channels == ("ch0", "ch1", "ch2") and meta.samples == 2
    bom = tmp_path / "excel.csv"  # UTF-8 with a byte-order mark, as some editors save it
    bom.write_bytes(b"\xef\xbb\xbfRed;Green;Blue\r\n0.5;0.3;0.2\r\n")
    assert import_csv(ds, bom, rate_hz=10).channels == ("Red", "Green", "Blue")
    before = len(ds)
    empty = tmp_path / "empty.csv"
    empty.write_text("Red,Green,Blue\nError initializing APDS9960 sensor.\n\n")
    with pytest.raises(ValueError, match="no samples"):
        import_csv(ds, empty, rate_hz=10)
    with pytest.raises(ValueError, match="not a column"):
        import_csv(ds, path, time_column="millis")
    with pytest.raises(ValueError, match="positive"):
        import_csv(ds, path, rate_hz=0)
    unchanged(ds, before)


# ------------------------------------------------------------------------------------- WAV
def wave_read(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path)) as w:
        params = w.getparams()
        frames = w.readframes(params.nframes)
    return params, np.frombuffer(frames, "<i2").reshape(-1, params.nchannels)


@needs_alsa
@pytest.mark.parametrize("path", ALSA_FILES, ids=lambda p: p.name)
def test_real_alsa_wav_is_imported_as_int16_full_scale(ds, path):
    params, samples = wave_read(path)
    meta = import_wav(ds, path, label="speech")
    assert meta.rate_hz == 48000.0 == params.framerate
    assert meta.channels == ("audio",) and params.nchannels == 1
    assert meta.samples == params.nframes
    assert meta.duration_s == pytest.approx(params.nframes / params.framerate)
    assert (meta.dtype, meta.scale, meta.units) == ("int16", 1 / 32768, "FS")
    rec = ds.load(meta.id)
    np.testing.assert_array_equal(rec.raw, samples)
    assert rec.values.min() >= -1 and rec.values.max() < 1


@needs_alsa
def test_wav_export_is_bit_exact(ds, tmp_path):
    src = ALSA / "Front_Center.wav"
    meta = import_wav(ds, src)
    out = export_wav(ds.load(meta.id), tmp_path / "out.wav")
    assert out.read_bytes() == src.read_bytes()  # a plain PCM file comes back byte for byte
    back = import_wav(ds, out)
    np.testing.assert_array_equal(ds.load(back.id).raw, ds.load(meta.id).raw)
    params, samples = wave_read(out)  # and the standard library reads what we wrote
    np.testing.assert_array_equal(samples, ds.load(meta.id).raw)


@needs_alsa
def test_own_riff_reader_agrees_with_the_wave_module():
    from workbench.data.formats.wav_format import _read_riff

    for path in ALSA_FILES[:3]:
        ours = _read_riff(path.read_bytes(), path.name)
        _, samples = wave_read(path)
        assert ours["rate"] == 48000 and ours["encoding"] == "pcm16"
        np.testing.assert_array_equal(ours["raw"], samples)


@needs_alsa
def test_float_wav_written_by_scipy_is_read(ds, tmp_path):
    wavfile = pytest.importorskip("scipy.io.wavfile")
    _, samples = wave_read(ALSA / "Front_Left.wav")
    stereo = np.stack([samples[:, 0], samples[::-1, 0]], axis=1).astype(np.float32) / 32768
    wavfile.write(tmp_path / "f32.wav", 48000, stereo)  # an independent float32 writer
    meta = import_wav(ds, tmp_path / "f32.wav")
    assert meta.channels == ("left", "right") and meta.dtype == "float32"
    assert meta.extra["wav_encoding"] == "float32"
    np.testing.assert_array_equal(ds.load(meta.id).values, stereo)
    # our float export is read back by scipy unchanged, and by us
    out = export_wav(ds.load(meta.id), tmp_path / "again.wav")
    rate, data = wavfile.read(out)
    assert rate == 48000 and data.dtype == np.float32
    np.testing.assert_array_equal(data, stereo)
    again = import_wav(ds, out)
    np.testing.assert_array_equal(ds.load(again.id).raw, stereo)


@needs_alsa
@pytest.mark.parametrize("width", [1, 3, 4])
def test_8_24_32_bit_pcm_round_trip(ds, tmp_path, width):
    _, samples = wave_read(ALSA / "Rear_Left.wav")
    s = samples[:20000, 0].astype(np.int32)
    if width == 1:
        stored = (s >> 8).astype(np.int8)
        frames = (stored.astype(np.int16) + 128).astype(np.uint8).tobytes()
    elif width == 3:
        stored = s * 256 + 77
        frames = b"".join(int(v).to_bytes(3, "little", signed=True) for v in stored)
    else:
        stored = s * 65536 + 12345
        frames = stored.astype("<i4").tobytes()
    path = tmp_path / f"pcm{width * 8}.wav"
    with wave.open(str(path), "wb") as w:  # the standard library writes the test file
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(16000)
        w.writeframes(frames)
    meta = import_wav(ds, path)
    assert meta.rate_hz == 16000 and meta.scale == 2.0 ** -(width * 8 - 1)
    rec = ds.load(meta.id)
    np.testing.assert_array_equal(rec.raw[:, 0], stored)
    out = export_wav(rec, tmp_path / "out.wav")
    assert out.read_bytes() == path.read_bytes()


@needs_alsa
def test_extensible_header_and_forced_encoding(ds, tmp_path):
    _, samples = wave_read(ALSA / "Side_Left.wav")
    body = samples[:1000].tobytes()
    guid = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 48000, 96000, 2, 16, 22, 16, 4) + guid
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" \
        + struct.pack("<I", len(body)) + body
    path = tmp_path / "ext.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    meta = import_wav(ds, path)
    rec = ds.load(meta.id)
    np.testing.assert_array_equal(rec.raw, samples[:1000])
    out = export_wav(rec, tmp_path / "f.wav", encoding="float32")
    back = ds.load(import_wav(ds, out).id)
    np.testing.assert_array_equal(back.values, rec.values)


def test_bad_wav_files_are_refused_and_store_nothing(ds, tmp_path):
    before = len(ds)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    with pytest.raises(ValueError, match="not a WAV"):
        import_wav(ds, text)
    fmt = struct.pack("<HHIIHH", 0x0011, 1, 8000, 4055, 256, 4)  # IMA ADPCM
    riff = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", 4) + b"abcd")
    adpcm = tmp_path / "adpcm.wav"
    adpcm.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    with pytest.raises(ValueError, match="unsupported WAV encoding: IMA ADPCM"):
        import_wav(ds, adpcm)
    nodata = tmp_path / "nodata.wav"
    nodata.write_bytes(b"RIFF" + struct.pack("<I", 24) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
                       + struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16))
    with pytest.raises(ValueError, match="no data chunk"):
        import_wav(ds, nodata)
    unchanged(ds, before)


@needs_alsa
def test_truncated_wav_keeps_whole_frames(ds, tmp_path):
    data = (ALSA / "Noise.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:44 + 2 * 1000 + 1])  # header, 1000 frames and half of one
    meta = import_wav(ds, cut)
    assert meta.samples == 1000 and meta.extra["truncated"] is True
    _, samples = wave_read(ALSA / "Noise.wav")
    np.testing.assert_array_equal(ds.load(meta.id).raw, samples[:1000])


def test_nan_cannot_go_to_edge_impulse(ds):
    meta = ds.add_recording(np.array([[1.0], [np.nan]], np.float32), sensor="x", channels=("a",),
                            units="g", rate_hz=10)
    with pytest.raises(ValueError, match="NaN"):
        to_edge_impulse(ds.load(meta.id))


def test_fractional_rate_cannot_be_a_wav(ds, tmp_path):
    meta = ds.add_recording(np.zeros((10, 1), np.float32), sensor="x", channels=("a",),
                            units="g", rate_hz=104.17)
    with pytest.raises(ValueError, match="whole number"):
        export_wav(ds.load(meta.id), tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


# ---------------------------------------------------------------------------- Edge Impulse
# The example message of the specification (docs.edgeimpulse.com/reference/data-acquisition-
# format), signed here independently of the module, the way Edge Impulse's Python example does
# it: signature = 64 zeros, json.dumps(message), HMAC-SHA256 with the key's UTF-8 bytes, hex.
HMAC_KEY = "5c44bd5f4e14a1eb3501e9a6b6953024"
DOCS_PAYLOAD = {
    "device_name": "ac:87:a3:0a:2d:1b",
    "device_type": "DISCO-L475VG-IOT01A",
    "interval_ms": 10,
    "sensors": [{"name": "accX", "units": "m/s2"}, {"name": "accY", "units": "m/s2"},
                {"name": "accZ", "units": "m/s2"}],
    "values": [[-9.81, 0.03, 1.21], [-9.83, 0.04, 1.27], [-9.12, 0.03, 1.23],
               [-9.14, 0.01, 1.25]],
}


def reference_signed(payload=DOCS_PAYLOAD, key=HMAC_KEY, dumps=json.dumps) -> bytes:
    message = {"protected": {"ver": "v1", "alg": "HS256", "iat": 1564128599},
               "signature": "0" * 64, "payload": payload}
    sig = hmac.new(key.encode("utf-8"), dumps(message).encode("utf-8"), hashlib.sha256)
    message["signature"] = sig.hexdigest()
    return dumps(message).encode("utf-8")


def test_known_good_signed_sample_is_accepted():
    data = reference_signed()
    payload, values = from_edge_impulse(data, hmac_key=HMAC_KEY)
    assert payload["device_type"] == "DISCO-L475VG-IOT01A"
    np.testing.assert_array_equal(values, DOCS_PAYLOAD["values"])
    # JavaScript's JSON.stringify layout (no spaces), as the Node.js tools write it
    compact = reference_signed(dumps=lambda m: json.dumps(m, separators=(",", ":")))
    assert from_edge_impulse(compact, hmac_key=HMAC_KEY)[1].shape == (4, 3)
    # a file pretty-printed after signing still verifies (same content, reference encoding)
    pretty = json.dumps(json.loads(data), indent=2).encode()
    assert pretty != data and from_edge_impulse(pretty, hmac_key=HMAC_KEY)[1].shape == (4, 3)
    # the key may also be given as bytes
    assert from_edge_impulse(data, hmac_key=HMAC_KEY.encode())[1].shape == (4, 3)


def test_tampered_or_wrongly_keyed_messages_are_rejected():
    data = reference_signed()
    tampered = data.replace(b"-9.83", b"-9.84", 1)
    assert tampered != data
    with pytest.raises(SignatureError, match="does not match"):
        from_edge_impulse(tampered, hmac_key=HMAC_KEY)
    with pytest.raises(SignatureError, match="does not match"):
        from_edge_impulse(data, hmac_key="0123456789abcdef0123456789abcdef")
    with pytest.raises(SignatureError, match="no hmac_key"):
        from_edge_impulse(data)
    # unchecked reading is possible, but only when asked for
    assert from_edge_impulse(tampered, verify=False)[1][1, 0] == -9.84
    bad_sig = data.replace(json.loads(data)["signature"].encode(), b"xyz")
    with pytest.raises(SignatureError, match="64 hex"):
        from_edge_impulse(bad_sig, hmac_key=HMAC_KEY)
    assert issubclass(SignatureError, ValueError)


def test_unsigned_message_is_accepted_without_a_key():
    message = {"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
               "payload": {**DOCS_PAYLOAD, "values": [5, 6, 5, 6],
                           "sensors": [{"name": "Illumination", "units": "na"}]}}
    data = json.dumps(message).encode()
    payload, values = from_edge_impulse(data)
    assert values.shape == (4, 1) and values[:, 0].tolist() == [5, 6, 5, 6]
    # a caller who expects signed data does not get unsigned data silently (signature stripped)
    with pytest.raises(SignatureError, match="not signed"):
        from_edge_impulse(data, hmac_key=HMAC_KEY)
    assert from_edge_impulse(data, hmac_key=HMAC_KEY, verify=False)[1].shape == (4, 1)


def test_our_encoder_output_verifies_independently(ds):
    meta = import_csv(ds, FRUIT / "apple.csv", label="apple", rate_hz=10)
    data = to_edge_impulse(ds.load(meta.id), hmac_key=HMAC_KEY, device_type="NANO33BLE")
    message = json.loads(data)
    assert message["protected"]["alg"] == "HS256" and message["protected"]["ver"] == "v1"
    # recompute with hmac/hashlib and the reference encoding, not with the module
    sig = message["signature"]
    message["signature"] = "0" * 64
    assert json.dumps({**message, "signature": sig}).encode() == data  # = reference layout
    expected = hmac.new(HMAC_KEY.encode(), json.dumps(message).encode(), hashlib.sha256)
    assert sig == expected.hexdigest()
    assert message["payload"]["interval_ms"] == 100
    assert message["payload"]["sensors"][0] == {"name": "Red", "units": "N/A"}
    assert message["payload"]["values"][0] == [0.522, 0.261, 0.217]
    # and flipping one value breaks it
    with pytest.raises(SignatureError):
        from_edge_impulse(data.replace(b"0.522", b"0.523", 1), hmac_key=HMAC_KEY)
    assert from_edge_impulse(data, hmac_key=HMAC_KEY)[1].shape == (meta.samples, 3)


@needs_cbor
def test_cbor_signed_sample_and_our_cbor_verify():
    import cbor2

    message = {"protected": {"ver": "v1", "alg": "HS256", "iat": 1564128599},
               "signature": "0" * 64, "payload": DOCS_PAYLOAD}
    sig = hmac.new(HMAC_KEY.encode(), cbor2.dumps(message), hashlib.sha256).hexdigest()
    data = cbor2.dumps({**message, "signature": sig})
    payload, values = from_edge_impulse(data, hmac_key=HMAC_KEY)
    np.testing.assert_array_equal(values, DOCS_PAYLOAD["values"])
    flipped = cbor2.dumps({**message, "signature": sig,
                           "payload": {**DOCS_PAYLOAD, "values": [[-9.81, 0.03, 1.22]]
                                       + DOCS_PAYLOAD["values"][1:]}})
    with pytest.raises(SignatureError):
        from_edge_impulse(flipped, hmac_key=HMAC_KEY)
    with pytest.raises(SignatureError):
        from_edge_impulse(data, hmac_key="wrong")


@needs_cbor
@needs_aeon
@pytest.mark.parametrize("fmt", ["json", "cbor"])
def test_edge_impulse_round_trip(ds, tmp_path, fmt):
    import cbor2

    metas = import_basicmotions(ds)
    src = metas[45]
    folder = tmp_path / "export"
    folder.mkdir()
    path = export_edge_impulse(ds, src.id, folder, hmac_key=HMAC_KEY, fmt=fmt)
    assert path.name == f"{src.label}.{src.id}.{fmt}"
    decoded = json.loads(path.read_bytes()) if fmt == "json" else cbor2.loads(path.read_bytes())
    sig = decoded["signature"]
    blank = {**decoded, "signature": "0" * 64}
    encoded = json.dumps(blank).encode() if fmt == "json" else cbor2.dumps(blank)
    assert hmac.new(HMAC_KEY.encode(), encoded, hashlib.sha256).hexdigest() == sig
    back = import_edge_impulse(ds, path, hmac_key=HMAC_KEY)
    assert back.label == src.label  # from the file name
    assert back.channels == src.channels and back.rate_hz == src.rate_hz == 10.0
    assert back.extra["channel_units"] == src.extra["channel_units"]
    assert back.extra["signature"] == "verified" and back.device == "smartwatch"
    np.testing.assert_array_equal(ds.load(back.id).values, ds.load(src.id).values)


@needs_alsa
def test_edge_impulse_audio_as_raw_int16(ds, tmp_path):
    meta = import_wav(ds, ALSA / "Front_Right.wav", label="right")
    path = tmp_path / "right.01.json"
    path.write_bytes(to_edge_impulse(ds.load(meta.id), raw=True))
    message = json.loads(path.read_bytes())
    assert message["protected"]["alg"] == "none"
    assert message["payload"]["sensors"] == [{"name": "audio", "units": "wav"}]
    assert message["payload"]["interval_ms"] == pytest.approx(1000 / 48000)
    back = import_edge_impulse(ds, path)
    assert (back.label, back.dtype, back.scale, back.units) == ("right", "int16", 1 / 32768, "FS")
    assert back.rate_hz == 48000.0
    np.testing.assert_array_equal(ds.load(back.id).raw, ds.load(meta.id).raw)


def test_malformed_edge_impulse_files_are_clear_errors_and_store_nothing(ds, tmp_path):
    good = json.loads(reference_signed())

    def variant(**payload_changes) -> dict:
        m = {**good, "protected": {"ver": "v1", "alg": "none"}}
        m["payload"] = {**good["payload"], **payload_changes}
        return m

    cases = {
        "garbage.json": (b"{not json", "not valid JSON"),
        "garbage.cbor": (b"\xff\x00\x13", "neither JSON nor valid CBOR"),
        "list.json": (b"[1, 2, 3]", "expected a message object"),
        "nopayload.json": (json.dumps({"protected": {"ver": "v1", "alg": "none"},
                                       "signature": "0"}).encode(), "missing 'payload'"),
        "ver.json": (json.dumps({**variant(), "protected": {"ver": "v2", "alg": "none"}}).encode(),
                     "ver must be 'v1'"),
        "alg.json": (json.dumps({**variant(), "protected": {"ver": "v1", "alg": "RS256"}}).encode(),
                     "alg must be"),
        "ragged.json": (json.dumps(variant(values=[[1, 2, 3], [1, 2]])).encode(), "rows"),
        "strings.json": (json.dumps(variant(values=[["a", "b", "c"]])).encode(), "only numbers"),
        "nulls.json": (json.dumps(variant(values=[[None, 1, 2]])).encode(), "only numbers"),
        "width.json": (json.dumps(variant(values=[[1, 2]])).encode(), "3 numbers"),
        "empty.json": (json.dumps(variant(values=[])).encode(), "non-empty"),
        "interval.json": (json.dumps(variant(interval_ms=0)).encode(), "interval_ms"),
        "sensors.json": (json.dumps(variant(sensors=[{"units": "g"}])).encode(), "name"),
        "tampered.json": (reference_signed().replace(b"-9.12", b"-9.13"), "does not match"),
    }
    before = len(ds)
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=message) as err:
            import_edge_impulse(ds, path, hmac_key=HMAC_KEY if name == "tampered.json" else None)
        assert name in str(err.value)
    unchanged(ds, before)


def test_edge_impulse_import_of_the_docs_example(ds, tmp_path):
    path = tmp_path / "idle.s1.json"
    path.write_bytes(reference_signed())
    meta = import_edge_impulse(ds, path, hmac_key=HMAC_KEY)
    assert meta.label == "idle" and meta.rate_hz == 100.0
    assert meta.channels == ("accX", "accY", "accZ") and meta.units == "m/s2"
    assert meta.device == "ac:87:a3:0a:2d:1b" and meta.board == "DISCO-L475VG-IOT01A"
    assert meta.extra["iat"] == 1564128599
    np.testing.assert_array_equal(ds.load(meta.id).values,
                                  np.array(DOCS_PAYLOAD["values"], dtype=np.float32))
    assert import_edge_impulse(ds, path, label="other", hmac_key=HMAC_KEY).label == "other"


# ----------------------------------------------------------------------- BasicMotions
@needs_aeon
def test_basicmotions_import_matches_the_ts_files(ds):
    from workbench.data.formats import basicmotions_dir, read_ts

    metas = import_basicmotions(ds)
    assert len(metas) == len(ds) == 80
    assert sum(m.extra["split"] == "train" for m in metas) == 40
    assert sum(m.extra["split"] == "test" for m in metas) == 40
    labels = [m.label for m in metas]
    assert {lab: labels.count(lab) for lab in set(labels)} == {
        "standing": 20, "walking": 20, "running": 20, "badminton": 20}
    files = {s: read_ts(basicmotions_dir() / f"BasicMotions_{s.upper()}.ts")
             for s in ("train", "test")}
    for m in metas:
        X, y = files[m.extra["split"]]
        assert m.source == "import:aeon/BasicMotions" and m.rate_hz == 10.0
        assert m.samples == 100 and len(m.channels) == 6
        assert y[m.extra["case"]].lower() == m.label
        np.testing.assert_array_equal(ds.load(m.id).values,
                                      X[m.extra["case"]].T.astype(np.float32))
    assert metas[0].channels == ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")


@needs_aeon
def test_a_failure_halfway_leaves_nothing(tmp_path):
    class DiskFullAt41(Dataset):
        """A store whose 41st new recording fails, as a full disk would."""
        calls = 0

        def new_recording(self, **kw):
            DiskFullAt41.calls += 1
            if DiskFullAt41.calls == 41:
                raise OSError("disk full")
            return super().new_recording(**kw)

    ds = DiskFullAt41(tmp_path / "ds")
    with pytest.raises(OSError, match="disk full"):
        import_basicmotions(ds)
    assert DiskFullAt41.calls == 41
    unchanged(ds, 0)


@needs_aeon
def test_example_basicmotions(tmp_path):
    d = example_dataset("basicmotions", tmp_path / "bm")
    assert len(Dataset(tmp_path / "bm")) == 80
    assert d.labels == ["badminton", "running", "standing", "walking"]
    with pytest.raises(Exception, match="already holds"):
        example_dataset("basicmotions", tmp_path / "bm")
    with pytest.raises(ValueError, match="unknown example"):
        example_dataset("mnist", tmp_path / "x")


def test_example_fruit_color(tmp_path):
    d = example_dataset("fruit-color", tmp_path / "fruit")
    metas = {m.label: m for m in d}
    assert set(metas) == {"apple", "banana", "orange"}
    for fruit, m in metas.items():
        rows = [r for r in (FRUIT / f"{fruit}.csv").read_text().splitlines()[1:] if r.strip()]
        assert m.samples == len(rows)
        assert m.extra["rate_assumed"] is True and m.channels == ("Red", "Green", "Blue")


# ----------------------------------------------------------------------- non-finite values
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN"])
def test_csv_with_nan_or_inf_is_refused_and_stores_nothing(ds, tmp_path, bad):
    path = tmp_path / "broken.csv"
    path.write_text(f"millis,x,y\n0,1,2\n10,1,2\n20,{bad},2\n30,1,2\n")
    with pytest.raises(ValueError, match=r"broken\.csv: 1 value\(s\) are not finite.*sample 2"
                                         r".*channel 'x'"):
        import_csv(ds, path)
    unchanged(ds, 0)


def test_edge_impulse_values_with_nan_are_refused(ds, tmp_path):
    path = tmp_path / "idle.nan.json"
    payload = dict(DOCS_PAYLOAD, values=[[1.0, float("nan"), 2.0]] + DOCS_PAYLOAD["values"][1:])
    path.write_text(json.dumps({"protected": {"ver": "v1", "alg": "none"},
                                "signature": "0" * 64, "payload": payload}))
    with pytest.raises(ValueError, match="not finite"):
        import_edge_impulse(ds, path)
    unchanged(ds, 0)


@pytest.mark.parametrize("writer", ["wave", "riff"])
def test_wav_with_a_rate_of_zero_is_refused(ds, tmp_path, writer):
    path = tmp_path / "zero.wav"
    samples = np.arange(100, dtype="<i2")
    if writer == "wave":  # the header a careless writer leaves, read by the wave module
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(samples.tobytes())
        data = bytearray(path.read_bytes())
        data[24:28] = struct.pack("<I", 0)      # sample rate
        data[28:32] = struct.pack("<I", 0)      # byte rate
        path.write_bytes(bytes(data))
    else:  # a float WAV, read by our own RIFF reader
        body = samples.astype("<f4").tobytes()
        fmt = struct.pack("<HHIIHHH", 3, 1, 0, 0, 4, 32, 0)
        riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack(
            "<I", len(body)) + body
        path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    with pytest.raises(ValueError, match=r"zero\.wav.*0 (samples per second|Hz)"):
        import_wav(ds, path)
    unchanged(ds, 0)


def test_float_wav_with_nan_is_refused(ds, tmp_path):
    path = tmp_path / "nan.wav"
    rec = ds.add_recording(np.array([[0.1], [np.nan], [0.2]], np.float32), sensor="mic",
                           channels=("audio",), units="FS", rate_hz=8000.0)
    export_wav(ds.load(rec.id), path)
    ds.drop(rec.id)
    with pytest.raises(ValueError, match="not finite"):
        import_wav(ds, path)
