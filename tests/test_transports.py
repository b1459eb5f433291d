"""Transports by URL: raw pyserial on a pty, TCP, loop://, errors; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import serial
from conftest import start_sim

from workbench.link import OpenError, open_device, open_port
from workbench.protocol import messages as m
from workbench.protocol.framing import FLAG_RETRY, Frame, FrameParser, encode_frame


def read_frames(port, want: int, timeout: float = 3.0) -> list[Frame]:
    parser, frames = FrameParser(), []
    port.timeout = timeout
    while len(frames) < want:
        data = port.read(1)
        if not data:
            break
        frames += parser.feed(data + port.read(port.in_waiting))
    return frames


@pytest.fixture
def pty_sim(tmp_path):
    proc, line = start_sim("--board", "nano33ble", "--pty", "--flash", str(tmp_path / "f.flash"))
    assert line.startswith("PTY /dev/")
    yield line.split(" ", 1)[1]
    proc.terminate()
    proc.wait(5)


def test_plain_pyserial_speaks_to_the_virtual_board(pty_sim):
    with serial.Serial(pty_sim, 115200, timeout=2) as port:
        port.write(encode_frame(Frame(m.Msg.HELLO, 0, 1, m.Hello().encode())))
        (reply,) = read_frames(port, 1)
    assert reply.type == m.Msg.HELLO | 0x80 and reply.req_id == 1
    info = m.Info.decode(reply.payload)
    assert info.board_id == "nano33ble" and info.proto_version == m.PROTOCOL_VERSION


def test_every_answer_has_the_next_sequence_number(pty_sim):
    """A re-sent request (same req_id, FLAG_RETRY) is answered again with a fresh seq."""
    with serial.Serial(pty_sim, 115200, timeout=2) as port:
        port.write(encode_frame(Frame(m.Msg.PING, 0, 7, b"abc")))
        port.write(encode_frame(Frame(m.Msg.PING, 1, 7, b"abc", FLAG_RETRY)))
        port.write(encode_frame(Frame(m.Msg.PING, 2, 8, b"abc")))
        a, b, c = read_frames(port, 3)
    assert (a.type, a.req_id, a.payload) == (b.type, b.req_id, b.payload)
    assert [a.seq, b.seq, c.seq] == [a.seq, a.seq + 1, a.seq + 2] and c.req_id == 8


def test_unknown_request_type_gets_a_typed_error(pty_sim):
    with serial.Serial(pty_sim, 115200, timeout=2) as port:
        port.write(encode_frame(Frame(0x3E, 0, 9, b"")))
        (reply,) = read_frames(port, 1)
    assert reply.type == m.Msg.ERROR and reply.req_id == 9
    assert m.Error.decode(reply.payload).code == m.ErrorCode.UNKNOWN_TYPE


def test_virtual_board_over_tcp(tmp_path):
    proc, line = start_sim("--board", "pico", "--tcp", "0", "--flash", str(tmp_path / "p.flash"))
    try:
        assert line.startswith("TCP 127.0.0.1:")
        url = "socket://" + line.split(" ", 1)[1]
        with open_device(url) as dev:
            assert dev.info.board_id == "pico"
        with open_device(url) as dev:  # the board accepts the next client
            assert dev.ping(b"again") >= 0
    finally:
        proc.terminate()
        proc.wait(5)


def test_loop_url_carries_frames():
    port = open_port("loop://")
    try:
        frame = Frame(m.Msg.LOG, 3, 0, m.Log(1, "hi").encode())
        port.write(encode_frame(frame))
        assert read_frames(port, 1) == [frame]
    finally:
        port.close()


@pytest.mark.parametrize("url,match", [
    ("/dev/ttyNOPE0", "plugged in"), ("sim://", "name a board"),
    ("sim://nano33ble?color=blue", "unknown option"), ("bogus://x", "Known schemes")])
def test_bad_urls_say_what_to_do(url, match):
    with pytest.raises(OpenError, match=match):
        open_device(url)


def test_unknown_board_suggests_the_right_one(sim_url):
    with pytest.raises(OpenError, match="nano33ble"):
        open_device("sim://nano33bl")


def run_cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_cli_help_lists_the_commands():
    out = run_cli("--help").stdout
    for command in ("boards", "devices", "sim", "info", "stream", "upload", "lab"):
        assert command in out


def test_cli_devices_shows_a_running_virtual_board(pty_sim):
    res = run_cli("devices", "--json")
    assert res.returncode == 0, res.stderr
    found = [d for d in json.loads(res.stdout) if d["url"] == pty_sim]
    assert len(found) == 1 and found[0]["virtual"]
    hello = found[0]["hello"]
    assert hello["board_id"] == "nano33ble" and hello["mcu"] == "nRF52840"
    assert {s["id"] for s in hello["sensors"]} >= {"accel", "gyro", "mic"}
    text = run_cli("devices").stdout
    assert "answered HELLO: Arduino Nano 33 BLE Sense" in text


def test_cli_stream_writes_csv(sim_url):
    res = run_cli("stream", sim_url("nano33ble"), "--sensor", "gyro", "--seconds", "1")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "x,y,z" and len(lines) == 1 + 119
    assert "0 lost" in res.stderr


def test_cli_upload_and_info(sim_url, tmp_path, sine_model):
    model = tmp_path / "sine.tflite"
    model.write_bytes(sine_model)
    url = sim_url("nano33ble")
    res = run_cli("upload", url, str(model))
    assert res.returncode == 0, res.stderr
    assert "3,164 bytes" in res.stdout and "active" in res.stdout
    info = run_cli("info", url).stdout
    assert "Arduino Nano 33 BLE Sense" in info and "sine.tflite" in info


def test_cli_reports_link_errors_without_a_traceback(sim_url, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"hello" * 10)
    res = run_cli("upload", sim_url("nano33ble"), str(bad))
    assert res.returncode == 1
    assert "workbench:" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("url,kwargs", [
    ("sim://nano33ble?baud=1", {}), ("sim://nano33ble?baud=fast", {}),
    ("sim://nano33ble?baud=1e12", {}), ("sim://nano33ble", {"baudrate": 0}),
    ("/dev/ttyNOPE0", {"baudrate": 1})])
def test_absurd_baud_rates_are_refused_before_anything_starts(url, kwargs):
    """``sim://...?baud=1`` used to make each HELLO wait hours; now it is refused at once."""
    from workbench.link import MIN_BAUD, InvalidSetting

    with pytest.raises(InvalidSetting, match=f"{MIN_BAUD:,}") as err:
        open_device(url, **kwargs)
    assert isinstance(err.value, ValueError)


def test_the_sim_handler_refuses_an_absurd_baud_too():
    with pytest.raises(OpenError, match="baud=.*not a usable baud rate"):
        open_port("sim://nano33ble?baud=3")


def test_the_slowest_accepted_baud_rate_still_works(sim_url):
    from workbench.link import MIN_BAUD

    with open_device(sim_url(baud=MIN_BAUD)) as dev:
        assert dev.info.board_id == "nano33ble"
        assert dev.ping(b"slow") > 0


def test_wire_time_allowances_have_a_ceiling():
    from workbench.link.timeouts import WIRE_ALLOWANCE_MAX, wire_time

    assert wire_time(1024, 115200) == pytest.approx(1024 * 10 / 115200)
    assert wire_time(2 * 1024 + 64, 1) == WIRE_ALLOWANCE_MAX  # not 5.9 hours


@pytest.mark.parametrize("field,value", [
    ("request", 0), ("hello", -1.0), ("verify", float("inf")), ("infer", 1e9),
    ("retries", -1), ("hello_attempts", 0), ("chunk_retries", 2.5), ("line_detect", "2")])
def test_timeouts_out_of_range_are_refused(field, value):
    from workbench.link import InvalidSetting, Timeouts

    with pytest.raises(InvalidSetting, match=f"Timeouts.{field}"):
        Timeouts(**{field: value})


def test_top_level_open_device_is_the_link_one_with_a_default_url():
    import inspect

    import workbench
    import workbench.link

    top = inspect.signature(workbench.open_device).parameters
    link = inspect.signature(workbench.link.open_device).parameters
    assert list(top) == list(link)
    assert top["url"].default is None and link["url"].default is inspect.Parameter.empty
    for name in list(link)[1:]:
        assert (top[name].kind, top[name].default) == (link[name].kind, link[name].default), name


def test_top_level_open_device_opens_the_default_device(sim_url, monkeypatch):
    import workbench

    monkeypatch.setenv("WORKBENCH_DEVICE", sim_url("pico"))
    with workbench.open_device() as dev:
        assert dev.info.board_id == "pico"


def test_find_devices_lists_a_running_virtual_board(pty_sim):
    from workbench.link import find_devices

    found = [d for d in find_devices() if d.url == pty_sim]
    assert len(found) == 1 and found[0].virtual
    assert found[0].hello.board_id == "nano33ble" and not found[0].probe_error


def test_python_m_workbench_sim_runs_the_board_without_the_cli():
    code = ("import sys, runpy; sys.argv = ['sim', '--help']\n"
            "try:\n    runpy.run_module('workbench.sim', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('CLI LOADED' if 'workbench.cli' in sys.modules else 'CLI NOT LOADED')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--board" in res.stdout and "--tcp" in res.stdout
    assert res.stdout.strip().endswith("CLI NOT LOADED")
    cli_help = run_cli("sim", "--help").stdout  # the same options, defined once
    for option in ("--board", "--baud", "--pty", "--tcp", "--mode", "--drop", "--flip"):
        assert option in cli_help
