"""Capture from the virtual board over a real pty into the dataset store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tty
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from workbench.capture import CaptureSession, capture
from workbench.data import Dataset, summarize, windows
from workbench.link import open_device


@pytest.mark.slow
def test_three_gestures_captured_and_labelled(sim_url, tmp_path):
    ds = Dataset(tmp_path / "ds")
    with open_device(sim_url()) as dev:
        for gesture in ("wave", "circle", "punch"):
            dev.scenario(gesture)
            meta = capture(dev, ds, "accel", seconds=2, label=gesture)
            assert meta.samples == 238 and meta.lost == 0 and meta.complete
            assert meta.board == "nano33ble" and meta.dtype == "int16"
            assert meta.scale == pytest.approx(dev.sensor("accel").scale)
    summary = summarize(ds)
    assert set(summary.per_label) == {"wave", "circle", "punch"}
    assert summary.per_label["wave"]["seconds"] == pytest.approx(2.0, abs=0.01)
    w = windows(ds, length=119, stride=60)
    assert w.X.shape == (6, 119, 3)  # starts 0 and 60 in each of 3 recordings of 238
    assert sorted(set(w.y)) == ["circle", "punch", "wave"]
    # the gestures really differ: mean |a| varies most for punch and wave, least for circle
    spread = {g: np.linalg.norm(w.X[w.y == g], axis=2).std() for g in ("wave", "circle", "punch")}
    assert spread["circle"] < max(spread["wave"], spread["punch"])


def test_stored_samples_equal_what_the_device_sent(sim_url, tmp_path):
    ds = Dataset(tmp_path / "ds")
    seen = []
    with open_device(sim_url()) as dev:
        session = CaptureSession(dev, ds, "gyro", label="x", seconds=1.0)
        session.on_block.append(seen.append)
        meta = session.start().wait()
    stored = ds.load(meta.id).values
    assert np.array_equal(np.concatenate(seen), stored)


def test_losses_are_counted_and_located(sim_url, tmp_path):
    ds = Dataset(tmp_path / "ds")
    with open_device(sim_url(baud=921600, drop=0.0001, seed=2), baudrate=921600) as dev:
        meta = capture(dev, ds, "mic", seconds=1.0, label="noise")
    assert meta.lost > 0 and meta.samples + meta.lost == 16000
    assert sum(n for _, n in meta.gaps) == meta.lost
    assert all(0 < at <= meta.samples for at, _ in meta.gaps)


@pytest.mark.slow
def test_line_mode_sketch_capture(sim_url, tmp_path):
    ds = Dataset(tmp_path / "ds")
    with open_device(sim_url(mode="line", sensor="gyro")) as dev:
        meta = capture(dev, ds, seconds=2.0, label="still")
    assert meta.channels == ("gyro_x", "gyro_y", "gyro_z") and meta.dtype == "float32"
    assert meta.rate_hz == pytest.approx(119, rel=0.1)
    assert meta.source == "capture:line" and meta.lost == 0
    assert meta.samples == pytest.approx(2.0 * meta.rate_hz, abs=2)


@pytest.mark.slow
def test_killing_a_capture_loses_at_most_a_second(sim_url, tmp_path):
    root = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "capture", sim_url(),
                             "--dataset", str(root), "--sensor", "accel", "--label", "walk",
                             "--scenario", "walking"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "recording" in proc.stderr.readline()
        time.sleep(3.5)
        killed_at = datetime.now().astimezone()
        proc.send_signal(signal.SIGKILL)  # no clean-up of any kind
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
    ds = Dataset(root)  # opens, and repairs what the kill left
    (meta,) = ds.recordings()
    assert meta.interrupted and any("interrupted" in p for p in ds.problems)
    started = datetime.fromisoformat(meta.started)
    recorded_for = (killed_at - started).total_seconds()
    assert recorded_for > 3
    kept = meta.samples / meta.rate_hz
    print(f"captured for {recorded_for:.2f} s, kept {kept:.2f} s after SIGKILL")
    # at most one second of what was captured is missing (plus the stream's 50 ms blocks)
    assert kept >= recorded_for - 1.0 - 0.15, (kept, recorded_for)
    assert len(ds.load(meta.id).raw) == meta.samples
    # the virtual board went away with its host process
    time.sleep(1.5)
    out = subprocess.run(["pgrep", "-f", f"--flash {tmp_path}"], capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_cli_capture(sim_url, tmp_path):
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "capture", sim_url(),
                          "--dataset", str(tmp_path / "ds"), "--sensor", "gyro",
                          "--label", "still", "--seconds", "1"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "119 samples" in res.stdout and "0 lost" in res.stdout
    assert len(Dataset(tmp_path / "ds")) == 1


def test_recorder_takes_labelled_examples(sim_url, tmp_path):
    from workbench.capture import Recorder

    rec = Recorder(tmp_path / "ds")
    assert rec.status().state == "disconnected"
    with pytest.raises(RuntimeError, match="connect"):
        rec.start("accel", "wave")
    rec.connect(sim_url())
    assert rec.is_virtual and "wave" in rec.scenarios
    blocks = []
    rec.on_block.append(blocks.append)
    rec.set_scenario("wave")
    rec.start("accel", "wave")
    with pytest.raises(RuntimeError, match="already"):
        rec.start("accel", "wave")
    time.sleep(1.0)
    assert rec.status().state == "recording" and rec.status().samples > 0
    meta = rec.stop()
    assert meta.label == "wave" and meta.samples == sum(len(b) for b in blocks)
    short = rec.record("gyro", "still", seconds=0.5)
    assert short.samples == round(0.5 * 119)
    status = rec.status()
    assert status.state == "ready" and status.takes == 2 and status.loss_ratio == 0
    rec.disconnect()
    assert rec.status().state == "disconnected"
    assert sorted(m.label for m in Dataset(tmp_path / "ds")) == ["still", "wave"]


def test_preview_shows_data_without_storing_it(sim_url, tmp_path):
    from workbench.capture import Recorder

    rec = Recorder(tmp_path / "ds")
    rec.connect(sim_url())
    seen = []
    rec.on_block.append(seen.append)
    rec.start_preview("accel")
    time.sleep(0.8)
    assert rec.previewing and sum(len(b) for b in seen) > 50
    assert np.linalg.norm(np.concatenate(seen), axis=1).mean() == pytest.approx(1.0, abs=0.1)
    rec.record("accel", "idle", seconds=0.5)  # a take ends the preview
    assert not rec.previewing
    rec.disconnect()
    assert len(Dataset(tmp_path / "ds")) == 1


FRUIT = Path(__file__).resolve().parents[1] / "workbench/data/examples/arduino-fruit-color"


def test_a_real_sketchs_output_over_a_pty(tmp_path):
    """The fruit-colour sketch's real readings, with a blank line and an error message slipped
    into each pass, printed in a loop over a real pseudo-terminal: captured as they are."""
    text = (FRUIT / "banana.csv").read_text().splitlines()
    header, rows = text[0], [r for r in text[1:] if r.strip()]
    one_pass = rows[:20] + ["", "APDS9960 read error!"] + rows[20:]
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    stop = threading.Event()

    def sketch():  # `while (!Serial);`, the header once, then loop() printing readings
        os.set_blocking(master, False)
        while True:
            try:
                os.read(master, 64)
            except BlockingIOError:
                break  # the host opened the port
            except OSError:
                time.sleep(0.02)
        time.sleep(0.1)
        os.write(master, (header + "\r\n").encode())
        while not stop.is_set():
            for line in one_pass:
                if stop.is_set():
                    return
                try:
                    os.write(master, (line + "\r\n").encode())
                except BlockingIOError:
                    pass  # nobody reads any more: what a board prints to nobody is lost
                time.sleep(0.02)

    printer = threading.Thread(target=sketch, daemon=True)
    printer.start()
    ds = Dataset(tmp_path / "ds")
    wanted = 2 * len(rows)
    try:
        with open_device(path, baudrate=9600, mode="line") as dev:
            session = CaptureSession(dev, ds, label="banana").start()
            deadline = time.monotonic() + 20
            while session.stats.samples < wanted and time.monotonic() < deadline:
                time.sleep(0.05)
            meta = session.stop()
    finally:
        stop.set()
        printer.join(timeout=5)
        os.close(master)
    assert meta.channels == ("Red", "Green", "Blue") and meta.source == "capture:line"
    assert meta.samples >= wanted and meta.lost == 0
    assert meta.extra["text_lines"] >= 1  # the error message, counted, not stored as data
    stored = ds.load(meta.id).values
    cycle = np.array([[float(v) for v in r.split(",")] for r in rows], np.float32)
    tiled = np.concatenate([cycle] * (meta.samples // len(rows) + 2))
    # the stored samples are the sketch's readings in order, none lost, none invented
    assert any(np.array_equal(stored, tiled[k:k + meta.samples]) for k in range(len(rows)))


def test_a_capture_cut_short_by_a_lost_link_says_so_and_keeps_its_samples(sim_url, tmp_path):
    """The virtual board's disconnect fault mid-capture: the error reaches the caller, the
    samples received are stored, and the metadata says how the recording ended."""
    from workbench.capture import Recorder
    from workbench.link import ConnectionLost
    from workbench.protocol import messages as m

    rec = Recorder(tmp_path / "ds")
    rec.connect(sim_url())
    seen = []
    rec.on_block.append(seen.append)
    got_some = threading.Event()
    rec.on_block.append(lambda block: got_some.set())
    session = rec.start("accel", "walk", seconds=60)
    assert got_some.wait(30)
    rec.device.inject_faults(m.Faults(disconnect=True))
    with pytest.raises(ConnectionLost):
        session.wait(timeout=60)
    with pytest.raises(ConnectionLost):
        rec.stop()
    (meta,) = Dataset(tmp_path / "ds").recordings()
    assert meta.extra["ended"].startswith("connection lost: ")
    assert meta.complete and not meta.interrupted and meta.label == "walk"
    assert 0 < meta.samples == sum(len(b) for b in seen)
    assert rec.takes == [session.meta] and "connection lost" in rec.message
    rec.disconnect()


def test_how_a_capture_ended_is_recorded(sim_url, tmp_path):
    ds = Dataset(tmp_path / "ds")
    with open_device(sim_url()) as dev:
        full = capture(dev, ds, "accel", seconds=0.5)
        session = CaptureSession(dev, ds, "accel").start()
        stopped = session.stop()
    assert full.extra["ended"] == "complete" and stopped.extra["ended"] == "stopped"
