"""Bad input from the wire and from the command line, against a real virtual board.

Each case once knocked the board over (grew it to gigabytes, wedged or deafened it,
or killed it at boot); each must now get a clear refusal and leave the board
working (docs/protocol.md section 5.21).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from workbench.boards import get_board
from workbench.link import errors as E
from workbench.link import open_device
from workbench.protocol import messages as m


def test_line_mode_at_a_billion_hertz_is_refused(sim_url):
    with open_device(sim_url()) as dev:
        with pytest.raises(E.BadArgument, match="cannot sample at 1e\\+09 Hz"):
            dev.request(m.Msg.SET_MODE, m.SetMode(m.Mode.LINE, 0, 1e9).encode())
        assert dev.hello().board_id == "nano33ble"  # still framed, still answering
        assert dev.ping(b"still here") >= 0


def test_telemetry_every_millisecond_is_refused_and_the_minimum_works(sim_url):
    with open_device(sim_url()) as dev:
        with pytest.raises(E.BadArgument, match="at least 100 ms"):
            dev.set_telemetry(1)
        dev.set_telemetry(100)
        for _ in range(5):
            dev.ping(b"x" * 200)  # answered while telemetry runs
        assert dev.telemetry is not None


def test_a_drop_rate_of_one_is_refused_and_the_board_still_hears(sim_url):
    with open_device(sim_url()) as dev:
        with pytest.raises(E.BadArgument, match="0 to 0.05"):
            dev.inject_faults(m.Faults(drop_rate=1.0))
        with pytest.raises(E.BadArgument):
            dev.inject_faults(m.Faults(flip_rate=float("nan")))
        assert dev.ping(b"hello?") >= 0


def run_sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.sim", "--pty", *args],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ),
                          check=False)


@pytest.mark.parametrize("args, message", [
    (["--baud", "0"], "baud 0 is out of range; use 1200 to 12,000,000"),
    (["--drop", "5"], "--drop 5 is out of range; use 0 to 0.05"),
    (["--flip", "-1"], "--flip -1 is out of range"),
    (["--seed", "-3"], "seed -3 is out of range"),
    (["--mode", "line", "--rate", "1e9"], "--rate: accel cannot sample at 1e+09 Hz"),
    (["--scenario", "flying"], "unknown scenario 'flying'"),
])
def test_start_options_out_of_range_exit_with_one_clear_line(tmp_path, args, message):
    done = run_sim("--flash", str(tmp_path / "b.flash"), *args)
    assert done.returncode == 2
    assert done.stdout == ""  # never announced a port
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench sim: ") and message in lines[0]


def test_a_sim_url_with_baud_zero_names_the_problem(sim_url):
    # The link refuses it before any virtual board is started.
    with pytest.raises(E.InvalidSetting, match=r"baud= '0' is not a usable baud rate.*1,200 to 12,000,000"):
        open_device(sim_url(baud=0), baudrate=115200)


BAD_TABLES = {
    "unknown state": {"slots": [{"state": "BOGUS", "size": 0, "written": 0, "sha256": "",
                                 "name": "", "arena_bytes": 0}] * 2,
                      "active": None, "fallback": None},
    "active slot out of range": {"slots": [{"state": "EMPTY", "size": 0, "written": 0,
                                            "sha256": "", "name": "", "arena_bytes": 0}] * 2,
                                 "active": 7, "fallback": None},
    "negative size": {"slots": [{"state": "RECEIVING", "size": -5, "written": 0,
                                 "sha256": "", "name": "", "arena_bytes": 0}] * 2,
                      "active": None, "fallback": None},
    "sha256 not hex": {"slots": [{"state": "VERIFIED", "size": 10, "written": 10,
                                  "sha256": "zz", "name": "", "arena_bytes": 0}] * 2,
                       "active": None, "fallback": None},
    "not an object": [1, 2, 3],
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_a_slot_table_with_bad_values_is_kept_aside_and_the_board_starts_empty(
        sim_url, tmp_path, case):
    flash = tmp_path / "bad.flash"
    meta = tmp_path / "bad.slots.json"
    text = json.dumps(BAD_TABLES[case])
    meta.write_text(text)
    with open_device(sim_url(flash=str(flash))) as dev:
        table = dev.slots()
        assert table.active == m.NO_SLOT
        assert all(s.state == m.SlotState.EMPTY for s in table.slots)
        logs = [log.message for log in dev.logs]
        assert any("moved it to bad.slots.json.bad" in t and "empty slots" in t for t in logs)
    assert (tmp_path / "bad.slots.json.bad").read_text() == text  # nothing lost


def test_an_unparsable_slot_table_is_kept_aside_too(sim_url, tmp_path):
    (tmp_path / "b.slots.json").write_bytes(b"{not json")
    (tmp_path / "b.slots.json.bad").write_text("an older bad table")
    with open_device(sim_url(flash=str(tmp_path / "b.flash"))) as dev:
        assert dev.slots().active == m.NO_SLOT
    assert (tmp_path / "b.slots.json.bad").read_text() == "an older bad table"
    assert (tmp_path / "b.slots.json.bad.1").read_bytes() == b"{not json"


def test_an_older_boards_slot_table_is_imported_into_the_trailers(sim_url, tmp_path, sine_model):
    """A flash file in the old layout (slots at i * slot_bytes) with its JSON table."""
    board = get_board("nano33ble")
    slot_bytes = board.model_slots.slot_bytes
    image = bytearray(2 * slot_bytes)
    image[slot_bytes:slot_bytes + len(sine_model)] = sine_model
    (tmp_path / "old.flash").write_bytes(bytes(image))
    sha = hashlib.sha256(sine_model).hexdigest()
    table = {"slots": [{"state": "EMPTY", "size": 0, "written": 0, "sha256": "", "name": "",
                        "arena_bytes": 0},
                       {"state": "ACTIVE", "size": len(sine_model), "written": len(sine_model),
                        "sha256": sha, "name": "kept", "arena_bytes": 1936}],
             "active": 1, "fallback": None}
    text = json.dumps(table)
    (tmp_path / "old.slots.json").write_text(text)
    with open_device(sim_url(flash=str(tmp_path / "old.flash"))) as dev:
        t = dev.slots()
        assert t.active == 1 and t.slots[1].name == "kept"
        assert t.slots[1].sha256 == bytes.fromhex(sha)
        assert any("imported the slot table old.slots.json" in log.message for log in dev.logs)
        assert dev.infer(np.array([[1.0]], np.float32)).outputs[0][0, 0] == pytest.approx(
            np.sin(1.0), abs=0.05)
    assert (tmp_path / "old.slots.json.imported").read_text() == text  # nothing lost
    assert (tmp_path / "old.flash.v0").read_bytes() == bytes(image)
    with open_device(sim_url(flash=str(tmp_path / "old.flash"))) as dev:  # once only
        assert dev.slots().active == 1
        assert not any("imported" in log.message for log in dev.logs)
