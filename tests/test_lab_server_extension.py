"""The server extension (workbench.lab) in a real Jupyter server: every route, authenticated,
under the server's base_url.

The server is ``python -m jupyter server`` started here with a token, a base_url of
``/hub/user/ada/`` (as JupyterHub serves a user's server) and the extension enabled on its
command line; its root is a temporary folder, and its virtual-board registry another.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jupyter_server")

from conftest import start_sim  # noqa: E402  (tests/conftest.py)

TOKEN = "lab-extension-test-token"
BASE = "/hub/user/ada/"
PREFIX = BASE + "tinyml-workbench/"
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, root: Path, sim_dir: Path, log: Path):
        self.proc, self.url, self.root, self.sim_dir, self.log = proc, url, root, sim_dir, log

    def request(self, method: str, path: str, body: dict | None = None, *, token: str | None = TOKEN,
                prefix: str = PREFIX) -> tuple[int, dict]:
        """(status, JSON answer) of ``method`` on ``prefix + path``."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"token {token}"
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.url + prefix + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, {"text": text.decode(errors="replace")}

    def env(self) -> dict[str, str]:
        return dict(os.environ, WORKBENCH_SIM_DIR=str(self.sim_dir))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("labext")
    root, sim_dir = base / "root", base / "sim"
    root.mkdir()
    port = free_port()
    env = dict(os.environ, WORKBENCH_SIM_DIR=str(sim_dir), PYTHONUNBUFFERED="1")
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime")):
        env[var] = str(base / sub)
    log = base / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--no-browser", f"--port={port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
             f"--ServerApp.base_url={BASE}", f"--ServerApp.root_dir={root}", "--allow-root",
             '--ServerApp.jpserver_extensions={"workbench.lab": True}'],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    srv = Server(proc, f"http://127.0.0.1:{port}", root, sim_dir, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if srv.request("GET", "boards")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "server did not answer:\n" + log.read_text()[-4000:]
        time.sleep(0.3)
    yield srv
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def board(server):
    """A virtual board started by the test (not by the server), registered where the server
    looks; stopped after the test."""
    proc, line = start_sim("--tcp", "0", "--board", "nano33ble", "--flash",
                           str(server.sim_dir / "test.flash"), env=server.env())
    assert line.startswith("TCP "), line
    yield proc, "socket://" + line.split(" ", 1)[1]
    proc.terminate()
    proc.wait(10)


ROUTES = [("GET", "devices"), ("GET", "boards"), ("POST", "virtual-boards"),
          ("DELETE", "virtual-boards/1"), ("GET", "lessons"), ("POST", "lessons/00_hello_board.ipynb"),
          ("GET", "datasets"), ("GET", "registry")]


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_route_refuses_a_request_without_the_token(server, method, path):
    status, _ = server.request(method, path, token=None)
    assert status == 403
    status, _ = server.request(method, path, token="not-the-token")
    assert status == 403
    assert not list(server.root.glob("*.ipynb"))  # nothing was copied for the refused request


def test_the_routes_live_under_the_base_url_only(server):
    status, answer = server.request("GET", "boards")
    assert status == 200
    nano = next(b for b in answer["boards"] if b["id"] == "nano33ble")
    assert nano["name"] and nano["usb"] and all(len(u) == 9 and u[4] == ":" for u in nano["usb"])
    assert server.request("GET", "boards", prefix="/tinyml-workbench/")[0] == 404


def test_a_running_virtual_board_is_listed_with_its_capabilities_and_state(server, board):
    proc, url = board
    status, answer = server.request("GET", "devices")
    assert status == 200
    (dev,) = [d for d in answer["devices"] if d["url"] == url]
    assert dev["kind"] == "virtual" and dev["pid"] == proc.pid
    caps = dev["board"]
    assert caps["id"] == "nano33ble" and caps["flash_bytes"] > 0 and caps["ram_bytes"] > 0
    assert {"accel", "gyro"} <= {s["id"] for s in caps["sensors"]}
    assert dev["state"] == {"in_use": False, "clients": 0}
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    with socket.create_connection((host, int(port))):
        deadline = time.monotonic() + 10
        while True:
            (dev,) = [d for d in server.request("GET", "devices")[1]["devices"] if d["url"] == url]
            if dev["state"]["in_use"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert dev["state"] == {"in_use": True, "clients": 1}
    proc.terminate()
    proc.wait(10)
    urls = [d["url"] for d in server.request("GET", "devices")[1]["devices"]]
    assert url not in urls


def test_start_and_stop_a_virtual_board(server):
    from workbench.link import open_device

    status, started = server.request("POST", "virtual-boards", {"board": "pico", "scenario": "walking"})
    assert status == 201, started
    assert started["board"] == "pico" and started["url"].startswith("socket://127.0.0.1:")
    try:
        listed = {d["url"]: d for d in server.request("GET", "devices")[1]["devices"]}
        assert listed[started["url"]]["board"]["id"] == "pico"
        assert listed[started["url"]]["pid"] == started["pid"]
        with open_device(started["url"]) as dev:
            assert dev.info.board_id == "pico"
    finally:
        status, stopped = server.request("DELETE", f"virtual-boards/{started['pid']}")
    assert status == 200 and stopped["stopped"]["url"] == started["url"]
    with pytest.raises(ProcessLookupError):
        os.kill(started["pid"], 0)  # ended and reaped by the server: no zombie left
    urls = [d["url"] for d in server.request("GET", "devices")[1]["devices"]]
    assert started["url"] not in urls
    assert not list((server.sim_dir / "lab").glob("*.flash"))


def test_bad_requests_to_the_virtual_boards_say_what_is_wrong(server):
    status, answer = server.request("POST", "virtual-boards", {"board": "nano33"})
    assert status == 400 and "nano33ble" in answer["message"]  # the valid ids are named
    status, answer = server.request("POST", "virtual-boards", {"board": 7})
    assert status == 400 and "'board' must be a string" in answer["message"]
    status, answer = server.request("DELETE", f"virtual-boards/{os.getpid()}")
    assert status == 404 and str(os.getpid()) in answer["message"]
    os.kill(os.getpid(), 0)  # the test's own process was not signalled


def test_lessons_are_listed_and_copied_into_the_root_once(server):
    from workbench.lab.lessons import lessons

    status, answer = server.request("GET", "lessons")
    assert status == 200
    assert [x["name"] for x in answer["lessons"]] == [x.name for x in lessons()]
    first = answer["lessons"][0]
    assert first["path"] is None and first["title"].startswith("Lesson 0")
    status, opened = server.request("POST", f"lessons/{first['name']}")
    assert status == 200 and opened == {"name": first["name"], "title": first["title"],
                                        "path": first["name"], "copied": True}
    copy = server.root / first["name"]
    assert copy.read_bytes() == lessons()[0].path.read_bytes()
    copy.write_text(copy.read_text().replace("Hello", "Hello again"))  # the student's edits
    status, again = server.request("POST", f"lessons/{first['name']}")
    assert status == 200 and again["copied"] is False
    assert "Hello again" in copy.read_text()  # never overwritten
    listed = server.request("GET", "lessons")[1]["lessons"]
    assert listed[0]["path"] == first["name"]
    status, answer = server.request("POST", "lessons/99_no_such_lesson.ipynb")
    assert status == 404 and first["name"] in answer["message"]


def test_datasets_made_in_the_root_are_listed_with_their_labels(server):
    from workbench.data import Dataset

    gestures = Dataset(server.root / "gestures")
    meta = dict(sensor="accel", channels=("x", "y", "z"), units="g", rate_hz=100.0)
    gestures.add_recording(np.zeros((200, 3), np.float32), label="wave", **meta)
    gestures.add_recording(np.zeros((100, 3), np.float32), label="wave", **meta)
    gestures.add_recording(np.zeros((100, 3), np.float32), label="idle", **meta)
    nested = Dataset(server.root / "work" / "2024" / "kws")
    nested.add_recording(np.zeros((50, 1), np.float32), **{**meta, "channels": ("a",)})
    (server.root / "not-a-dataset").mkdir()
    (server.root / "not-a-dataset" / "dataset.json").write_text('{"format": "something-else"}')
    (server.root / ".hidden").mkdir()
    Dataset(server.root / ".hidden" / "secret")
    status, answer = server.request("GET", "datasets")
    assert status == 200
    rows = {d["path"]: d for d in answer["datasets"]}
    assert set(rows) == {"gestures", "work/2024/kws"}
    assert rows["gestures"]["recordings"] == 3 and rows["gestures"]["seconds"] == pytest.approx(4.0)
    assert rows["gestures"]["labels"] == {"idle": 1, "wave": 2}
    assert rows["work/2024/kws"]["unlabelled"] == 1 and rows["work/2024/kws"]["labels"] == {}


def test_the_model_registry_under_the_root_is_listed(server):
    from workbench.deploy import ModelRegistry

    model = (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()
    reg = ModelRegistry(server.root / "out" / "lesson05" / "registry")
    v1 = reg.register(model, name="sine")
    reg.record_deployment(v1, device="sim://nano33ble")
    status, answer = server.request("GET", "registry")
    assert status == 200
    (listed,) = answer["registries"]
    assert listed["path"] == "out/lesson05/registry"
    (sine,) = listed["models"]
    assert sine["name"] == "sine"
    (version,) = sine["versions"]
    assert version["version"] == 1 and version["sha256"] == v1.sha256 and version["size"] == len(model)
    assert version["deployments"] == 1 and version["signed"] is False
