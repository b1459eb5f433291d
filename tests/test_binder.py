"""binder/ follows repo2docker's conventions, and its start script gives the lessons a virtual board."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

BINDER = Path(__file__).resolve().parents[1] / "binder"


def test_environment_pins_python_and_brings_node():
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python=3.") for d in deps)
    assert any(d.startswith("nodejs") for d in deps)  # the extension's build hook may run npm
    assert "pip" in deps
    # repo2docker ignores runtime.txt beside an environment.yml: one place for the Python version
    assert not (BINDER / "runtime.txt").exists()


def test_post_build_installs_the_package_as_a_wheel_and_stops_on_errors():
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK)
    lines = [line.strip() for line in script.read_text().splitlines()]
    assert lines[0].startswith("#!") and "bash" in lines[0]
    assert any(line.startswith("set -e") for line in lines)
    installs = [line for line in lines if "pip install" in line and not line.startswith("#")]
    assert installs and all('".[lab]"' in line and " -e " not in line for line in installs)


def test_start_gives_the_lessons_the_virtual_board_unless_told_otherwise():
    script = BINDER / "start"
    assert os.access(script, os.X_OK)
    assert script.read_text().strip().splitlines()[-1] == 'exec "$@"'
    code = "import workbench; print(workbench.default_device_url())"
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DEVICE"}
    out = subprocess.run([str(script), sys.executable, "-c", code], capture_output=True,
                         text=True, env=env, check=True)
    assert out.stdout.strip() == "sim://nano33ble" and out.stderr == ""
    env["WORKBENCH_DEVICE"] = "sim://pico"
    out = subprocess.run([str(script), sys.executable, "-c", code], capture_output=True,
                         text=True, env=env, check=True)
    assert out.stdout.strip() == "sim://pico"
