"""`workbench report`: a model file in, a per-board table and an HTML report out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_report_command_lists_every_board_and_writes_the_report(tmp_path, sine_model):
    model = tmp_path / "sine.tflite"
    model.write_bytes(sine_model)
    out = tmp_path / "sine.html"
    res = run("report", str(model), "--board", "pico", "-o", str(out))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("sine.tflite: ") and "arena" in lines[0]
    # one row per catalog board, the chosen one marked
    from workbench.boards import load_catalog

    ids = list(load_catalog())
    rows = [ln for ln in lines if ln[:1] in (" ", "*") and ln[1:].split(" ")[0] in ids]
    assert [r[1:].split(" ")[0] for r in rows] == ids
    assert any(r.startswith("*pico ") for r in rows)
    # the float sine model on the Pico (no FPU): the report says so
    assert "no floating-point unit" in res.stdout
    assert out.read_text().startswith("<!DOCTYPE html>")
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["board"]["id"] == "pico" and data["proxy"]["macs"] > 0


@pytest.mark.slow
def test_report_command_json_and_errors(tmp_path, sine_model):
    model = tmp_path / "sine.tflite"
    model.write_bytes(sine_model)
    res = run("report", str(model), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["board"]["id"] == "nano33ble"

    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"TFL3" + b"\x00" * 40)
    res = run("report", str(bad))
    assert res.returncode == 2 and "workbench:" in res.stderr and "Traceback" not in res.stderr
    res = run("report", str(model), "--board", "no-such-board")
    assert res.returncode == 2 and "unknown board" in res.stderr
    res = run("report", str(tmp_path / "missing.tflite"))
    assert res.returncode == 2 and "missing.tflite" in res.stderr
