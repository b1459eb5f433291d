"""The package itself: a light import, a version, the default device."""

from __future__ import annotations

import subprocess
import sys


def test_import_workbench_is_light():
    code = ("import sys, workbench; heavy = [m for m in ('numpy', 'serial', 'tensorflow', "
            "'tflite_micro', 'jupyterlab', 'ipywidgets', 'aeon') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_default_device_follows_the_environment(monkeypatch):
    import workbench

    monkeypatch.delenv("WORKBENCH_DEVICE", raising=False)
    assert workbench.default_device_url() == "sim://nano33ble"
    monkeypatch.setenv("WORKBENCH_DEVICE", "sim://pico?baud=921600")
    assert workbench.default_device_url() == "sim://pico?baud=921600"
    # ports and `auto`: tests/test_default_device.py


def test_version_matches_the_installed_distribution():
    from importlib.metadata import version

    import workbench

    assert version("tinyml-workbench") == workbench.__version__
