"""The ``workbench`` command at its edges: bad input, Ctrl-C, closed pipes, boards that go away.

Every test runs the real command (``python -m workbench.cli``) in its own process against a
real virtual board or a real pseudo-terminal. Expected failures must end with one line on
stderr and a non-zero status, never a traceback, and lose nothing already received.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tty

import pytest
from conftest import start_sim

CLI = [sys.executable, "-m", "workbench.cli"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def one_line_error(stderr: str) -> str:
    """The single ``workbench: ...`` line a failure prints (and nothing like a traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("workbench: "), stderr
    return lines[0]


def csv_rows(text: str) -> tuple[str, list[list[float]]]:
    header, *rows = text.splitlines()
    return header, [[float(v) for v in row.split(",")] for row in rows]


# ------------------------------------------------------------------------------- bad input
def test_a_missing_model_file(sim_url, tmp_path):
    res = run_cli("upload", sim_url(), str(tmp_path / "missing.tflite"))
    assert res.returncode == 2
    assert "missing.tflite: no such file" in one_line_error(res.stderr)


def test_an_unknown_sensor(sim_url):
    res = run_cli("stream", sim_url(), "--sensor", "nose")
    assert res.returncode == 2 and res.stdout == ""
    line = one_line_error(res.stderr)
    assert "no sensor 'nose'" in line and "accel, gyro" in line


@pytest.mark.parametrize("args", [("stream", "sim://nano33bl"), ("info", "sim://nano33bl"),
                                  ("sim", "--board", "nano33bl")])
def test_an_unknown_board_suggests_the_right_one(args):
    res = run_cli(*args)
    assert res.returncode != 0
    assert "nano33ble" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("seconds", ["0", "-1", "nan"])
def test_capture_refuses_a_duration_that_is_not_positive(tmp_path, seconds):
    ds = tmp_path / "ds"
    # a URL that cannot be opened: the command must refuse before it tries
    res = run_cli("capture", "/dev/nonexistent-port", "--dataset", str(ds),
                  f"--seconds={seconds}")
    assert res.returncode == 2
    assert "--seconds must be a positive number" in one_line_error(res.stderr)
    assert not ds.exists()  # no empty recording, no dataset folder


def test_stream_refuses_a_duration_that_is_not_positive():
    res = run_cli("stream", "/dev/nonexistent-port", "--seconds=0")
    assert res.returncode == 2 and res.stdout == ""
    assert "--seconds must be a positive number" in one_line_error(res.stderr)


# ----------------------------------------------------------------------------- readable output
def test_info_names_the_capabilities(sim_url):
    res = run_cli("info", sim_url())
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if "capabilities" in ln)
    assert line.split(":", 1)[1].strip() == ("stream, infer, model update, telemetry, "
                                             "line mode, simulated, delta")


def test_report_fills_the_why_not_or_basis_column(tmp_path, sine_model):
    model = tmp_path / "sine.tflite"
    model.write_bytes(sine_model)
    res = run_cli("report", str(model), "--board", "pico", timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("board "))
    column = lines[head].index("why not / basis")
    rows = [ln for ln in lines[head + 1:] if ln[:1] in (" ", "*")]
    assert len(rows) > 5
    for row in rows:
        why = row[column:].strip()
        # the sine model fits every board: the column says what each estimate rests on
        assert "kernels" in why or "XNNPACK" in why, row
    assert any(ln.startswith("basis for pico: ") and "Cortex-M0+" in ln for ln in lines)


# ------------------------------------------------------------------------------- interruptions
def test_ctrl_c_during_an_upload_keeps_the_active_model(sim_url, tmp_path, sine_model):
    first, second = tmp_path / "first.tflite", tmp_path / "second.tflite"
    first.write_bytes(sine_model)
    second.write_bytes(sine_model)
    flash = str(tmp_path / "board.flash")
    assert run_cli("upload", sim_url(flash=flash), str(first)).returncode == 0
    # at 9600 baud the second upload takes seconds: interrupt it once it has begun
    slow = subprocess.Popen([*CLI, "upload", sim_url(flash=flash, baud=9600), str(second)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert slow.stderr.readline().startswith("uploading second.tflite")
        time.sleep(0.5)
        slow.send_signal(signal.SIGINT)
        out, err = slow.communicate(timeout=60)
    finally:
        slow.kill()
    assert slow.returncode == 130 and out == ""
    assert "upload interrupted" in one_line_error(err)
    info = run_cli("info", sim_url(flash=flash))
    active = [ln for ln in info.stdout.splitlines() if ln.startswith(" *slot")]
    assert len(active) == 1 and "first.tflite" in active[0] and "active" in active[0], info.stdout


def test_a_closed_pipe_ends_the_stream_quietly(sim_url):
    proc = subprocess.Popen([*CLI, "stream", sim_url(), "--seconds", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "x,y,z"
        assert len(proc.stdout.readline().split(",")) == 3
        proc.stdout.close()  # `| head -2`
        err = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports `yes | head`
    assert err == ""


# ----------------------------------------------------------------- boards that go away mid-stream
def test_a_board_that_goes_away_leaves_every_sample_it_sent(tmp_path):
    sim, line = start_sim("--board", "nano33ble", "--pty", "--flash", str(tmp_path / "f.flash"))
    port = line.split(" ", 1)[1]
    proc = subprocess.Popen([*CLI, "stream", port, "--sensor", "accel", "--seconds", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        received = [proc.stdout.readline() for _ in range(1 + 150)]  # header + ~1.3 s
        sim.terminate()  # the board is unplugged
        sim.wait(10)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        sim.kill()
    header, rows = csv_rows("".join(received) + rest)
    assert proc.returncode == 1
    line = one_line_error(err)
    assert header == "x,y,z" and len(rows) >= 150
    assert f"the {len(rows)} samples received before it are written" in line
    # readings of a board lying still: about 1 g, every line whole
    assert all(len(r) == 3 and 0.8 < sum(v * v for v in r) ** 0.5 < 1.2 for r in rows)


def test_a_line_mode_sketch_that_stops_leaves_every_line_it_printed():
    """A sketch prints a header and numbered readings for a few seconds, then stops: the
    CSV holds the readings in order up to the last one, and the command says it stalled."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    printed: list[str] = []
    done = threading.Event()

    def sketch():
        os.set_blocking(master, False)
        while True:  # `while (!Serial);`
            try:
                os.read(master, 64)
            except BlockingIOError:
                break
            except OSError:
                time.sleep(0.02)
        time.sleep(0.1)
        os.write(master, b"n,twice,square\r\n")
        for i in range(300):  # 3 s at 100 lines per second, then silence
            row = f"{i},{2 * i},{i * i}"
            os.write(master, (row + "\r\n").encode())
            printed.append(row)
            time.sleep(0.01)
        done.set()

    printer = threading.Thread(target=sketch, daemon=True)
    printer.start()
    try:
        res = run_cli("stream", path, "--mode", "line", "--baud", "115200", "--seconds", "60",
                      timeout=60)
    finally:
        done.wait(10)
        os.close(master)
    assert res.returncode == 1
    line = one_line_error(res.stderr)
    assert "stalled" in line
    header, rows = csv_rows(res.stdout)
    assert header == "n,twice,square"
    want = [[float(v) for v in r.split(",")] for r in printed]
    assert rows and rows == want[len(want) - len(rows):]  # the readings in order, to the last
    assert f"the {len(rows)} samples received before it are written" in line
    # the first readings are read to learn the format and rate; at most those may be missing
    assert len(rows) >= len(want) - 150
