"""Line mode: sketches that print numbers, read as they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.link import open_device
from workbench.protocol.linemode import LineParser, RateEstimator, parse_numbers

FRUIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "arduino-fruit-color"


def feed_all(parser: LineParser, data: bytes, chunk: int, t0: float = 0.0, dt: float = 0.01):
    events = []
    for i in range(0, len(data), chunk):
        events += parser.feed(data[i:i + chunk], t0 + i * dt)
    return events


@pytest.mark.skipif(not FRUIT.is_dir(), reason="shared/data not beside the checkout")
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
