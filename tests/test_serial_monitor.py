"""The serial monitor's tap on a real virtual board: it sees the frames (or text lines) both
ways while the device keeps working, sends lines only to a sketch in line mode, detaches."""

from __future__ import annotations

import time

import pytest
from conftest import wait_for

from workbench.link import InvalidSetting, open_device
from workbench.link.traffic import TrafficLog, frame_summary, message_name
from workbench.protocol import messages as m
from workbench.protocol.framing import Frame


def test_message_names_and_frame_lines():
    assert message_name(m.Msg.HELLO) == "HELLO"
    assert message_name(m.response_type(m.Msg.PING)) == "PING/resp"
    assert message_name(m.Msg.SAMPLES) == "SAMPLES" and message_name(m.Msg.ERROR) == "ERROR"
    assert message_name(0x3F) == "0x3f"
    line = frame_summary(Frame(m.Msg.PING, 7, 3, bytes(range(30))))
    assert line.startswith("PING seq=7 req=3 len=30: 00 01 02")
    assert "(+14 bytes)" in line


def test_the_tap_sees_frames_both_ways_while_the_device_streams(sim_url):
    with open_device(sim_url()) as dev:
        log = TrafficLog()
        log.attach(dev.session)
        dev.ping(b"abc")
        samples = dev.record("accel", seconds=0.5)
        assert len(samples.raw) > 0 and samples.lost == 0   # the device is not disturbed
        assert wait_for(lambda: any(e.text.startswith("SAMPLES") for e in log.entries))
        sent = [e.text for e in log.entries if e.direction == "tx"]
        got = [e.text for e in log.entries if e.direction == "rx"]
        assert any(t.startswith("PING seq=") and t.endswith("61 62 63") for t in sent)
        assert any(t.startswith("PING/resp") for t in got)
        assert any(t.startswith("STREAM_START") for t in sent)
        assert log.bytes["rx"] > 0 and log.bytes["tx"] > 0
        with pytest.raises(InvalidSetting, match="framed protocol"):
            dev.session.write_raw(b"hello\n")
        log.detach()
        before = len(log.entries)
        dev.ping()
        time.sleep(0.2)
        assert len(log.entries) == before and log.feed not in dev.session.taps


def test_a_line_mode_board_shows_its_lines_and_takes_a_sent_line(sim_url):
    with open_device(sim_url(mode="line", sensor="accel", rate="50")) as dev:
        assert dev.mode == "line"
        log = TrafficLog()
        log.attach(dev.session)
        assert wait_for(lambda: sum(e.direction == "rx" for e in log.entries) >= 5)
        line = next(e for e in log.entries if e.direction == "rx")
        assert line.kind == "text"
        values = [float(v) for v in line.text.replace(",", " ").split()]
        assert len(values) == 3   # x, y, z as the sketch prints them
        dev.session.write_raw(b"led on\r\n")
        assert [e.text for e in log.entries if e.direction == "tx"] == ["led on"]


def test_a_raising_tap_is_dropped_and_the_link_goes_on(sim_url):
    with open_device(sim_url()) as dev:
        def broken(*_):
            raise RuntimeError("display gone")

        dev.session.taps.append(broken)
        dev.ping()
        assert broken not in dev.session.taps
        assert dev.ping() >= 0


def test_the_widget_shows_the_traffic_and_sends_with_the_line_ending(sim_url):
    pytest.importorskip("ipywidgets")
    from workbench.ui.serial_monitor import SerialMonitor

    mon = SerialMonitor.open_url(sim_url(mode="line", sensor="temp", rate="7"))
    try:
        assert mon.device.mode == "line"
        assert wait_for(lambda: "data-dir='rx'" in mon.view.value)
        mon.ending.value = "Carriage return"
        mon.input.value = "ping"
        mon._send_clicked()            # what pressing Send does
        assert wait_for(lambda: "&rarr; ping" in mon.view.value)
        mon.timestamps.value = True
        assert "wb-sm-time" in mon.view.value
        mon.show_sent.value = False
        assert "data-dir='tx'" not in mon.view.value
        mon.clear()
        assert "nothing yet" in mon.view.value or "data-dir='tx'" not in mon.view.value
        dev = mon.device
    finally:
        mon.close()
    assert dev.session.closing   # it opened the port, so it closed it
