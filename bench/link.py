"""Framed-mode payload throughput as a fraction of the line rate.

The line rate of a UART at B baud with 8N1 framing is B/10 bytes per second;
the virtual board paces its port at exactly that, both ways. Two directions:

* device -> host: the microphone streamed at a rate the link cannot carry
  (so the link, not the sensor, is the limit); payload = SAMPLES frame
  payloads (block header + samples) received per second in the steady state;
* host -> device: a model upload (MODEL_CHUNK payloads acknowledged per
  second, windowed), using sine_float.tflite padded with an unused buffer to
  the size of a realistic keyword-spotting model.

Run: ``python bench/link.py`` (about a minute). Headline figures last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from workbench.link import open_device
from workbench.protocol.messages import SAMPLES_HEADER


def padded_model(size: int) -> bytes:
    """sine_float.tflite plus one unused constant buffer, ``size`` bytes in all (about)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    raw = (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(raw, 0))
    pad = schema.BufferT()
    pad.data = bytes((i * 7) & 0xFF for i in range(max(0, size - len(raw) - 64)))
    model.buffers.append(pad)
    b = flatbuffers.Builder(size + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def upload_rate(url: str, baud: int, model: bytes) -> float:
    marks: list[tuple[float, int]] = []
    with open_device(url, baudrate=baud) as dev:
        dev.upload_model(model, name="bench", commit=False,
                         progress=lambda acked, total: marks.append((time.perf_counter(), acked)))
    (t0, a0), (t1, a1) = marks[0], marks[-1]
    return (a1 - a0) / (t1 - t0)


def stream_rate(url: str, baud: int, seconds: float) -> tuple[float, int, int]:
    """Payload bytes/s of SAMPLES frames, plus samples received and lost (dropped at source)."""
    with open_device(url, baudrate=baud) as dev:
        rate = 2.5 * baud / 10 / 2  # int16 mono: 2.5x what the link can carry
        with dev.stream("mic", rate_hz=rate) as s:
            s.read(timeout=5)  # skip start-up
            t0, nbytes, first = time.perf_counter(), 0, True
            while time.perf_counter() - t0 < seconds:
                block = s.read(timeout=5)
                if first:  # measure between block arrivals
                    t0, first = time.perf_counter(), False
                    continue
                nbytes += SAMPLES_HEADER.size + block.raw.nbytes
            t1 = time.perf_counter()
        return nbytes / (t1 - t0), s.stats.samples, s.stats.lost


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="streaming time per baud rate")
    ap.add_argument("--model-kb", type=int, default=48, help="size of the uploaded model")
    args = ap.parse_args()
    model = padded_model(args.model_kb * 1024)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for baud in (115200, 921600):
            line = baud / 10
            url = f"sim://nano33ble?baud={baud}&flash={Path(tmp) / f'{baud}.flash'}"
            up = upload_rate(url, baud, model)
            down, samples, lost = stream_rate(url, baud, args.seconds)
            results[baud] = (up / line, down / line)
            print(f"{baud} baud: line rate {line:,.0f} B/s; upload {up:,.0f} B/s "
                  f"({up / line:.3f}); stream {down:,.0f} B/s ({down / line:.3f}); "
                  f"{samples} samples received, {lost} dropped at the source", file=sys.stderr)
    for baud, (up, down) in results.items():
        print(f"upload_fraction_of_line_rate_{baud}: {up:.3f}")
        print(f"stream_fraction_of_line_rate_{baud}: {down:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
