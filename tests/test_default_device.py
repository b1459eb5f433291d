"""The lessons' device: the board asked for when it is there, the virtual board (with a note)
when it is not. Real pseudo-terminals and real virtual boards, no stand-ins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import start_sim

import workbench
from workbench.link.choose import choose_device

FALLBACK = workbench.DEFAULT_DEVICE


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch):
    """default_device_url remembers an `auto` answer and its notes for the process: forget them."""
    monkeypatch.setattr(workbench, "_auto_choice", {})
    monkeypatch.setattr(workbench, "_noted", set())


@pytest.fixture
def pty_path():
    leader, follower = os.openpty()
    try:
        yield os.ttyname(follower)
    finally:
        os.close(follower)
        os.close(leader)


def no_usb_ports() -> bool:
    from workbench.link import list_ports

    return not any(d.usb for d in list_ports())


def test_unset_is_the_virtual_board_without_touching_serial():
    code = ("import os, sys, workbench; os.environ.pop('WORKBENCH_DEVICE', None); "
            "print(workbench.default_device_url(), 'serial' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [FALLBACK, "False"]
    assert out.stderr == ""


def test_a_url_is_used_as_given(monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_DEVICE", "socket://127.0.0.1:1")
    assert workbench.default_device_url() == "socket://127.0.0.1:1"
    assert capsys.readouterr().err == ""


def test_a_port_that_exists_is_used_even_if_silent(monkeypatch, capsys, pty_path):
    # a pseudo-terminal nobody answers on: the student asked for it, so it is theirs
    monkeypatch.setenv("WORKBENCH_DEVICE", pty_path)
    assert workbench.default_device_url() == pty_path
    assert capsys.readouterr().err == ""


def test_a_missing_port_falls_back_with_one_note(monkeypatch, capsys, tmp_path):
    missing = str(tmp_path / "ttyACM9")
    monkeypatch.setenv("WORKBENCH_DEVICE", missing)
    assert workbench.default_device_url() == FALLBACK
    assert workbench.default_device_url() == FALLBACK
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # said once, not at every call
    assert missing in err[0] and "no such port" in err[0] and FALLBACK in err[0]


def test_a_lesson_asking_for_a_missing_port_still_talks_to_a_board(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_DEVICE", str(tmp_path / "ttyUSB9"))
    with workbench.open_device() as dev:  # what lesson 00 does
        assert dev.info.board_id == "nano33ble"
    assert workbench.default_board().id == "nano33ble"  # what lessons 03 and 04 do


@pytest.mark.skipif(not no_usb_ports(), reason="this machine has USB serial ports")
def test_auto_without_a_board_falls_back_with_a_note(monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_DEVICE", "auto")
    assert workbench.default_device_url() == FALLBACK
    err = capsys.readouterr().err
    assert "WORKBENCH_DEVICE=auto" in err and "no USB serial port" in err and FALLBACK in err


@pytest.mark.slow
def test_auto_uses_a_board_that_answers(monkeypatch, tmp_path, capsys):
    proc, line = start_sim("--board", "pico", "--pty", "--flash", str(tmp_path / "p.flash"))
    try:
        assert line.startswith("PTY /dev/")
        port = line.split(" ", 1)[1]
        monkeypatch.setenv("WORKBENCH_DEVICE", "auto")
        assert workbench.default_device_url() == port  # the running board, found and asked HELLO
        assert capsys.readouterr().err == ""
        assert workbench.default_board().id == "pico"
        # remembered for the process: not probed again while a lesson may hold the port open
        with workbench.open_device() as dev:
            assert workbench.default_device_url() == port
            assert dev.info.board_id == "pico"
    finally:
        proc.terminate()
        proc.wait(10)


def test_choose_device_says_nothing_when_it_gives_what_was_asked(pty_path):
    assert choose_device(None, FALLBACK) == choose_device("", FALLBACK)
    assert choose_device(None, FALLBACK).url == FALLBACK
    assert not choose_device(pty_path, FALLBACK).fell_back
    assert choose_device("sim://pico", FALLBACK).url == "sim://pico"
