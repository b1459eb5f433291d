"""`workbench lab` (what `make lab` runs) starts JupyterLab on the user's own copy of the lessons."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("jupyterlab")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_lab_serves_the_lessons_with_the_virtual_board(tmp_path):
    port = free_port()
    workspace = tmp_path / "my lessons"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    env.pop("WORKBENCH_DEVICE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "lab", "--dir", str(workspace), "--no-browser",
         "--port", str(port),
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password="],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/contents", timeout=2) as r:
                    contents = json.load(r)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("JupyterLab did not start:\n" + proc.stdout.read()) from None
                time.sleep(0.5)
        names = {c["name"] for c in contents["content"]}
        assert "00_hello_board.ipynb" in names  # opened on the workspace, lessons copied there
        assert (workspace / "00_hello_board.ipynb").is_file()
        # and told to open lesson 00 first
        argv = open(f"/proc/{proc.pid}/cmdline", "rb").read().split(b"\0")
        assert str(workspace.resolve() / "00_hello_board.ipynb").encode() in argv
        with urllib.request.urlopen(f"{base}/lab", timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
        # the kernel the lab starts sees the virtual board as its device
        environ = open(f"/proc/{proc.pid}/environ", "rb").read().split(b"\0")
        assert b"WORKBENCH_DEVICE=sim://nano33ble" in environ
    finally:
        proc.terminate()
        proc.wait(10)
