"""The README's script runs as written, against the virtual board."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_script_streams_and_infers(tmp_path):
    text = README.read_text()
    match = re.search(r"<!-- readme-script -->\s*```python\n(.*?)```", text, re.S)
    assert match, "the README lost its script block"
    script = tmp_path / "readme.py"
    script.write_text(match.group(1))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "Arduino Nano 33 BLE Sense" in out
    assert re.search(r"^1190 samples x 3 axes in g, 0 lost$", out, re.M), out
    sin1 = float(re.search(r"sin\(1\) on the board: ([-\d.]+)", out).group(1))
    assert abs(sin1 - 0.841) < 0.05


def test_readme_capture_script_builds_a_dataset(tmp_path):
    match = re.search(r"<!-- readme-capture -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert match, "the README lost its capture block"
    script = tmp_path / "capture.py"
    script.write_text(match.group(1) + "\nprint('windows', w.X.shape, 'test', len(split.test))\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "windows (18, 119, 3) test 3" in res.stdout  # one take of each gesture tested
    assert re.search(r"^wave\s+3\s+6\.0", res.stdout, re.M), res.stdout
    assert (tmp_path / "gestures" / "dataset.json").exists()


def test_readme_training_script_reaches_good_int8_accuracy(tmp_path):
    import importlib.util

    if importlib.util.find_spec("tf_keras") is None:
        pytest.skip("needs the train extra")
    match = re.search(r"<!-- readme-train -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert match, "the README lost its training block"
    script = tmp_path / "train.py"
    script.write_text(match.group(1) + "\nprint('int8 accuracy', accuracy)\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    accuracy = float(re.search(r"int8 accuracy ([\d.]+)", res.stdout).group(1))
    assert accuracy >= 0.85
    record = json.loads((tmp_path / "models" / "basicmotions.json").read_text())
    assert len(record["snapshot_id"]) == 64


def test_readme_names_the_two_setup_commands():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quick, re.M)
    assert commands == ["make lab", "make test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
