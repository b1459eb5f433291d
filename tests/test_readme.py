"""The README's script runs as written, against the virtual board."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def run_block(marker: str, tmp_path: Path, extra: str = "", timeout: float = 180) -> str:
    """Run the README's python block after ``<!-- marker -->`` in ``tmp_path``; its stdout."""
    match = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert match, f"the README lost its {marker} block"
    script = tmp_path / f"{marker}.py"
    script.write_text(match.group(1) + extra)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=timeout, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
def test_readme_script_streams_and_infers(tmp_path):
    out = run_block("readme-script", tmp_path, timeout=120)
    assert "Arduino Nano 33 BLE Sense" in out
    assert re.search(r"^1190 samples x 3 axes in g, 0 lost$", out, re.M), out
    sin1 = float(re.search(r"sin\(1\) on the board: ([-\d.]+)", out).group(1))
    assert abs(sin1 - 0.841) < 0.05


@pytest.mark.slow
def test_readme_capture_script_builds_a_dataset(tmp_path):
    out = run_block("readme-capture", tmp_path,
                    "\nprint('windows', w.X.shape, 'test', len(split.test))\n")
    assert "windows (18, 119, 3) test 3" in out  # one take of each gesture tested
    assert re.search(r"^wave\s+3\s+6\.0", out, re.M), out
    assert (tmp_path / "gestures" / "dataset.json").exists()


@pytest.mark.slow
def test_readme_training_script_reaches_good_int8_accuracy(tmp_path):
    import importlib.util

    if importlib.util.find_spec("tf_keras") is None:
        pytest.skip("needs the train extra")
    # the optimize block continues from the training block, as the README says
    optimize = re.search(r"<!-- readme-optimize -->\s*```python\n(.*?)```", README.read_text(),
                         re.S).group(1)
    out = run_block("readme-train", tmp_path, "\nprint('int8 accuracy', accuracy)\n" + optimize,
                    timeout=900)
    accuracy = float(re.search(r"int8 accuracy ([\d.]+)", out).group(1))
    assert accuracy >= 0.85
    record = json.loads((tmp_path / "models" / "basicmotions.json").read_text())
    assert len(record["snapshot_id"]) == 64
    # one line per variant, smallest flash first; the hybrid model does not fit the nano
    rows = [ln for ln in out.splitlines() if re.match(r"^(float32|dynamic-range|int8 PTQ|QAT int8|"
                                                      r"pruned int8) ", ln)]
    assert len(rows) == 5, out
    assert "hybrid" in next(r for r in rows if r.startswith("dynamic-range"))
    assert next(r for r in rows if r.startswith("int8 PTQ")).endswith("fits")
    assert "<h1>Variants on Raspberry Pi Pico</h1>" in (tmp_path / "variants.html").read_text()
    assert (tmp_path / "int8-report.html").read_text().startswith("<!DOCTYPE html>")


def test_readme_names_the_two_setup_commands():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quick, re.M)
    assert commands == ["make lab", "make test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
