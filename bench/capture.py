"""Highest 6-axis int16 sample rate captured with zero loss, per baud rate and mode.

6-axis int16 = the accelerometer and gyroscope of the virtual Nano 33 BLE Sense,
12 bytes of raw data per sample. "What the line rate allows" is the raw-data
ceiling: (baud/10) / 12 samples per second. For each baud rate and mode the
benchmark tries rates from 98 % of that ceiling downwards and reports the
highest at which a capture of ``--seconds`` lost nothing:

* framed: both sensors streamed at the same rate (two SAMPLES streams);
  zero loss = no gap in either stream's sample indices and nothing dropped
  at the device's source;
* line: the board printing ``ax,ay,az,gx,gy,gz`` lines (4 decimals), read as a
  hobbyist sketch; zero loss = the capture's timing-gap detector saw no
  deficit and the line count matches the elapsed time.

Run: ``python bench/capture.py`` (about 3 minutes). Headline figures last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from workbench.capture import capture
from workbench.data import Dataset
from workbench.link import open_device

BYTES_PER_SAMPLE = 12
FRACTIONS = (0.98, 0.95, 0.92, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1,
             0.05)


def framed_lossless(baud: int, rate: float, seconds: float, tmp: Path) -> bool:
    url = f"sim://nano33ble?baud={baud}&flash={tmp / 'framed.flash'}"
    with open_device(url, baudrate=baud) as dev:
        with dev.stream("accel", rate) as a, dev.stream("gyro", rate) as g:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for s in (a, g):
                    while s.read(timeout=0.005) is not None:
                        pass
        return (a.stats.lost == g.stats.lost == 0 and a.stats.device_dropped == 0
                and g.stats.device_dropped == 0 and a.stats.samples > 0)


def line_lossless(baud: int, rate: float, seconds: float, tmp: Path) -> bool:
    url = f"sim://nano33ble?baud={baud}&mode=line&sensor=accel,gyro&rate={rate:g}" \
          f"&flash={tmp / 'line.flash'}"
    ds = Dataset(tmp / f"ds-{baud}-{rate:.0f}-{time.monotonic_ns()}")
    with open_device(url, baudrate=baud) as dev:
        meta = capture(dev, ds, seconds=seconds)
    return meta.lost == 0 and abs(meta.rate_hz - rate) / rate < 0.03


def highest(check, baud: int, seconds: float, tmp: Path) -> float:
    ceiling = baud / 10 / BYTES_PER_SAMPLE
    for fraction in FRACTIONS:
        rate = round(ceiling * fraction)
        if check(baud, rate, seconds, tmp):
            return rate
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="capture length per trial")
    args = ap.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for baud in (115200, 921600):
            ceiling = baud / 10 / BYTES_PER_SAMPLE
            for mode, check in (("framed", framed_lossless), ("line", line_lossless)):
                rate = highest(check, baud, args.seconds, tmp)
                figures[(mode, baud)] = (rate, rate / ceiling)
                print(f"{mode:6s} {baud:6d} baud: {rate:7.0f} Hz 6-axis without loss, "
                      f"{rate / ceiling:.3f} of the {ceiling:.0f} Hz the line allows",
                      file=sys.stderr)
    for (mode, baud), (rate, frac) in figures.items():
        print(f"lossless_6axis_rate_{mode}_{baud}: {rate:.0f}")
        print(f"fraction_of_line_rate_{mode}_{baud}: {frac:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
