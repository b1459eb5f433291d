"""Shared fixtures: virtual boards behind real pseudo-terminals, the sine model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib import resources
from urllib.parse import urlencode

import pytest

# Quantization-aware training needs legacy Keras, chosen before TensorFlow is first
# imported by any test module (workbench.train sets the same default).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def pytest_addoption(parser):
    parser.addoption("--port", default=None,
                     help="run the device suite against this real board URL instead of sim://")


@pytest.fixture(autouse=True)
def _sim_dir(tmp_path, monkeypatch):
    """Keep virtual boards' flash files and registry inside the test's tmp dir."""
    monkeypatch.setenv("WORKBENCH_SIM_DIR", str(tmp_path / "sim"))


@pytest.fixture
def sim_url(tmp_path):
    """``sim_url("nano33ble", scenario="walking")`` -> a sim:// URL with its own flash file."""

    def make(board: str = "nano33ble", **opts) -> str:
        opts.setdefault("flash", str(tmp_path / f"{board}.flash"))
        return f"sim://{board}?{urlencode(opts)}"

    return make


@pytest.fixture(scope="session")
def sine_model() -> bytes:
    return (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()


def start_sim(*args: str, env=None) -> tuple[subprocess.Popen, str]:
    """Run ``python -m workbench.sim ARGS`` and return (process, announced line)."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench.sim", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or dict(os.environ))
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError("virtual board did not start: " + proc.stderr.read())
    return proc, line


def wait_for(cond, timeout: float = 10.0) -> bool:
    """Whether ``cond()`` becomes true within ``timeout`` seconds (polled every 0.05 s)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()
