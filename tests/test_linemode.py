"""Line mode: sketches that print numbers, read as they are."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from workbench.link import open_device
from workbench.protocol.linemode import LineParser, RateEstimator, parse_numbers

# real sketch output, shipped inside the package (workbench/data/examples/)
FRUIT = Path(str(resources.files("workbench.data") / "examples" / "arduino-fruit-color"))


def feed_all(parser: LineParser, data: bytes, chunk: int, t0: float = 0.0, dt: float = 0.01):
    events = []
    for i in range(0, len(data), chunk):
        events += parser.feed(data[i:i + chunk], t0 + i * dt)
    return events


@pytest.mark.parametrize("fruit", ["apple", "banana", "orange"])
def test_real_sketch_output_is_read_with_its_header(fruit):
    data = (FRUIT / f"{fruit}.csv").read_bytes()
    rows = [line for line in data.decode().splitlines()[1:] if line.strip()]
    parser = LineParser()
    events = feed_all(parser, data, chunk=7)
    header = [e for e in events if e.kind == "header"]
    samples = [e for e in events if e.kind == "sample"]
    assert [h.names for h in header] == [("Red", "Green", "Blue")]
    assert len(samples) == len(rows)
    first = tuple(float(x) for x in rows[0].split(","))
    assert samples[0].values == first
    # the colour shares of a reading add up to one
    assert np.allclose([sum(s.values) for s in samples], 1.0, atol=0.01)


def test_stray_text_blank_lines_and_separators():
    text = (b"IMU ready\r\n\r\nax\tay\taz\r\n0.1\t0.2\t0.98\r\n"
            b"Failed to read sensor!\r\n0.1 0.2 0.97\r\n0.1;0.2;0.99\r\n1,2\r\n\r\n")
    parser = LineParser()
    events = feed_all(parser, text, chunk=3)
    kinds = [e.kind for e in events]
    assert kinds == ["text", "header", "sample", "text", "sample", "sample", "text"]
    assert events[1].names == ("ax", "ay", "az")
    assert [e.text for e in events if e.kind == "text"] == [
        "IMU ready", "Failed to read sensor!", "1,2"]
    assert parser.text_lines == 3 and parser.samples == 3


def test_text_before_a_header_stays_text():
    parser = LineParser()
    events = parser.feed(b"Starting...\nhello world\n1,2,3\n", 0.0)
    assert [e.kind for e in events] == ["text", "text", "sample"]
    assert parser.names is None and parser.width == 3


def test_overlong_line_is_cut_and_reported():
    parser = LineParser()
    events = parser.feed(b"x" * 10000 + b"\n1,2\n", 0.0)
    assert any(e.kind == "text" for e in events)
    assert events[-1].kind == "sample" and events[-1].values == (1.0, 2.0)


@pytest.mark.parametrize("line,expected", [
    ("1,2,3", (1.0, 2.0, 3.0)), ("  -1.5e3\t+2 ", (-1500.0, 2.0)), ("a,1", None), ("", None),
    ("nan,1", (float("nan"), 1.0))])
def test_parse_numbers(line, expected):
    got = parse_numbers(line)
    if expected is None:
        assert got is None
    else:
        assert got is not None and np.allclose(got, expected, equal_nan=True)


def test_rate_estimator_sees_through_bursts():
    est = RateEstimator()
    rate = 119.0
    for i in range(600):
        # lines arrive in USB packets of 8, up to 60 ms late
        burst_end = (i // 8 + 1) * 8 / rate
        est.add(burst_end + 0.001 * (i % 8))
    assert est.rate_hz == pytest.approx(rate, rel=0.02)


@pytest.mark.slow
def test_virtual_board_as_a_plain_sketch(sim_url):
    """A board printing CSV is recognised with mode='auto', rate detected, samples read."""
    with open_device(sim_url(mode="line", sensor="accel")) as dev:
        assert dev.mode == "line"
        assert dev.sensors[0].channels == ("accel_x", "accel_y", "accel_z")
        rec = dev.record(seconds=1.5)
        assert dev.line_rate_hz == pytest.approx(119, rel=0.1)
    assert rec.raw.shape[1] == 3 and len(rec.raw) == pytest.approx(1.5 * rec.rate_hz, abs=2)
    assert np.linalg.norm(rec.values, axis=1).mean() == pytest.approx(1.0, abs=0.1)


def test_firmware_line_mode_and_back(sim_url):
    with open_device(sim_url()) as dev:
        dev.enter_line_mode("gyro")
        assert dev.mode == "line"
        assert dev.sensors[0].channels == ("gyro_x", "gyro_y", "gyro_z")
        assert len(dev.record(seconds=0.5).raw) > 0
        info = dev.hello()  # HELLO brings the firmware back to framed mode
        assert dev.mode == "framed" and info.board_id == "nano33ble"
        assert dev.record("accel", 0.5).lost == 0


def test_plain_sketch_ignores_the_handshake(sim_url):
    from workbench.link import LinkTimeout

    with pytest.raises(LinkTimeout):
        open_device(sim_url(mode="line"), mode="framed")


class PtySketch:
    """A sketch on a real pseudo-terminal: waits for the host (``while (!Serial);``), prints
    a header and ``rows`` at ``rate_hz``, then stays silent, or unplugs (closes the port) once
    ``unplug`` is set."""

    def __init__(self, rows, header="ax,ay,az", rate_hz=100.0):
        import os
        import threading
        import tty

        self.rows, self.header, self.period = rows, header, 1.0 / rate_hz
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)
        self.unplug = threading.Event()
        self.printed = threading.Event()
        self._closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import os
        import time

        os.set_blocking(self.master, False)
        while True:  # EIO while no program has the port open
            try:
                os.read(self.master, 64)
            except BlockingIOError:
                break
            except OSError:
                time.sleep(0.01)
        time.sleep(0.05)
        os.write(self.master, (self.header + "\r\n").encode())
        for row in self.rows:
            os.write(self.master, (",".join(f"{v:g}" for v in row) + "\r\n").encode())
            time.sleep(self.period)
        self.printed.set()
        if self.unplug.wait(30):
            self.close()

    def close(self):
        import os

        if not self._closed:
            self._closed = True
            os.close(self.master)


def _rows(n):
    return [(i, -0.5 * i, 1000 + i) for i in range(n)]


@pytest.mark.parametrize("mode", ["line", "auto"])
def test_lines_read_while_learning_the_format_reach_the_first_stream(mode):
    """The sketch prints 40 lines and falls silent; the host spends them learning the
    format and rate (and, in auto mode, trying HELLO first). All 40 reach the stream."""
    rows = _rows(40)
    sketch = PtySketch(rows)
    try:
        with open_device(sketch.path, mode=mode) as dev:
            assert dev.mode == "line" and dev.sensors[0].channels == ("ax", "ay", "az")
            assert sketch.printed.wait(10)
            got = []
            with dev.stream() as s:
                while sum(len(b) for b in got) < len(rows):
                    block = s.read(timeout=3)
                    assert block is not None, f"only {sum(len(b) for b in got)} samples arrived"
                    got.append(block.raw)
            assert s.stats.lost == 0
            # the second stream gets only what arrives from then on (nothing: the sketch is silent)
            with dev.stream() as again:
                assert again.read(timeout=0.3) is None
    finally:
        sketch.close()
    assert np.array_equal(np.concatenate(got), np.asarray(rows, np.float32))


def test_a_sketch_unplugged_mid_record_keeps_what_it_printed():
    from workbench.link import ConnectionLost

    rows = _rows(30)
    sketch = PtySketch(rows)
    try:
        with open_device(sketch.path, mode="line") as dev:
            assert sketch.printed.wait(10)
            sketch.unplug.set()
            with pytest.raises(ConnectionLost) as err:
                dev.record(seconds=60)
    finally:
        sketch.close()
    rec = err.value.recording
    assert rec is not None and rec.channels == ("ax", "ay", "az") and rec.lost == 0
    assert np.array_equal(rec.raw, np.asarray(rows, np.float32))


def test_virtual_sketch_recording_starts_with_the_first_line(sim_url):
    """The virtual board's line mode: the first stream starts with the lines read while
    identifying the sketch, so its first block arrived before ``open_device`` returned."""
    import time

    from workbench.link.linemode import LINE_DETECT_SAMPLES

    with open_device(sim_url(mode="line", sensor="accel")) as dev:
        opened = time.monotonic()
        with dev.stream() as s:
            first = s.read(timeout=3)
            second = s.read(timeout=3)
    assert len(first.raw) >= LINE_DETECT_SAMPLES
    assert first.timestamp_us / 1e6 < opened
    assert second.first == first.first + len(first.raw) and s.stats.lost == 0
