"""The workshop dashboard's widget, headless, against a real virtual board: each step opens
only after the one before it is done, what the stepper says is read from the objects, an
error stays until the next action, and the whole path ends with a model on the board. And
``workbench dashboard``: the command it runs, and what it refuses."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from conftest import wait_for  # noqa: E402

from workbench import cli  # noqa: E402
from workbench.lab import dashboards  # noqa: E402
from workbench.ui.workshop import STEPS, Workshop  # noqa: E402

TAKE_S = 1.5


@pytest.fixture
def workshop(tmp_path):
    ws = Workshop(tmp_path / "room", min_takes=3)
    yield ws
    ws.close()


def connect(ws: Workshop, url: str) -> None:
    ws.connect(url).join(60)
    assert ws.errors["connect"] is None, ws.errors["connect"]


def takes(ws: Workshop, scenario: str, label: str | None, n: int) -> None:
    ws.recorder.set_scenario(scenario)
    for _ in range(n):
        ws.recorder.record("accel", label, seconds=TAKE_S)




def reachable(ws: Workshop) -> list[str]:
    return [s for s in STEPS if ws.reachable(s)]


def test_steps_open_in_order_as_their_conditions_become_true(workshop, sim_url):
    ws = workshop
    assert reachable(ws) == ["connect"]
    with pytest.raises(ValueError, match="finish Connect first"):
        ws.show("capture")
    assert ws.step_buttons["capture"].disabled

    connect(ws, sim_url())
    assert reachable(ws) == ["connect", "capture"]
    assert "virtual board" in ws.board_info.value and "accel" in ws.board_info.value
    ws.show("capture")
    assert ws.recorder.previewing                    # the live view runs on the capture step

    takes(ws, "wave", "wave", 3)
    takes(ws, "idle", "idle", 2)
    ws.refresh()
    assert not ws.done("capture") and reachable(ws) == ["connect", "capture"]
    assert "1 more label" in ws.checklist.value

    takes(ws, "idle", None, 1)                       # a take nobody labelled
    ws.refresh()
    assert ws.done("capture") and not ws.done("label")
    assert "1 take(s) without a label" in ws.checklist.value
    assert ws.train_button.disabled

    ws.show("label")
    assert wait_for(lambda: not ws.recorder.previewing)   # the board's stream is left free
    unlabelled = next(m.id for m in ws.dataset.recordings() if not m.label)
    ws.labeler.open_recording(unlabelled)
    ws.labeler.label_recording("idle")               # what the labeler's menu does
    ws.refresh()
    assert ws.done("label") and "ready to train" in ws.checklist_label.value
    assert reachable(ws) == ["connect", "capture", "label", "train"]
    assert not ws.train_button.disabled
    assert ws.step_buttons["label"].icon == "check"
    assert ws.step_buttons["compare"].disabled


def test_an_error_stays_until_the_next_action_in_its_step(workshop, sim_url, tmp_path):
    ws = workshop
    ws.connect(str(tmp_path / "no-such-port")).join(60)
    error = ws.errors["connect"]
    assert error and "no-such-port" in error
    assert not ws.done("connect") and ws.progress["connect"].bar_style == "danger"
    time.sleep(3 * 0.5)                              # the ticker refreshes meanwhile
    ws.refresh()
    assert ws.errors["connect"] == error and "no-such-port" in ws.status["connect"].value
    connect(ws, sim_url())                           # the next action clears it
    assert "connected to" in ws.status["connect"].value and ws.done("connect")


def test_train_without_enough_takes_is_refused_with_what_to_do(workshop, sim_url):
    ws = workshop
    connect(ws, sim_url())
    assert ws.train() is None
    assert "record and label more takes" in ws.errors["train"]
    assert ws.compare() is None and "train a model first" in ws.errors["compare"]
    with pytest.raises(ValueError, match="compare the versions first"):
        ws.deploy()


@pytest.mark.slow
def test_from_takes_to_a_model_running_on_the_board(workshop, sim_url):
    ws = workshop
    connect(ws, sim_url())
    ws.show("capture")
    takes(ws, "wave", "wave", 3)
    takes(ws, "idle", "idle", 3)
    ws.show("label")
    ws.show("train")

    worker = ws.train()
    assert ws.busy == "train" and ws.train_button.disabled and ws.connect_button.disabled
    assert ws.train() is None                        # one job at a time
    worker.join(300)
    assert ws.errors["train"] is None, ws.errors["train"]
    assert ws.done("train") and ws.trained.record.classes == ["idle", "wave"]
    bar = ws.progress["train"]
    assert bar.value == bar.max and bar.bar_style == "success"
    assert ws.monitor is not None and ws.monitor.history["loss"]

    ws.show("compare")
    ws.compare().join(300)
    assert ws.errors["compare"] is None, ws.errors["compare"]
    assert [r["name"] for r in ws.table.rows()] == ["float32", "int8 PTQ"]
    assert ws.progress["compare"].value == ws.progress["compare"].max

    ws.compare_view.deploy("int8 PTQ")               # the row's Deploy button
    assert ws.current == "flash"
    ws.flash.wait(120)
    assert ws.flash.result is not None, ws.flash.status.value
    assert ws.done("flash")
    active = ws.recorder.device.slots()
    assert active.slots[active.active].sha256.hex() == ws.flash.chosen.sha256
    deadline = time.monotonic() + 60
    while ws.flash.live.count < 1 and ws.flash.live.error is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ws.flash.live.count >= 1 and ws.flash.live.last.label in ("idle", "wave")
    deployments = list((ws.folder / "registry").rglob("*.json"))
    assert deployments, "the deployment is recorded in the workshop's registry"

    ws.show("capture")                               # leaving the flash step stops its stream
    assert not ws.flash.live.running and wait_for(lambda: ws.recorder.previewing)

    ws.show("train")                                 # a new model: compare and flash again
    ws.train().join(300)
    assert ws.done("train") and not ws.done("compare") and not ws.done("flash")


# ------------------------------------------------------------ workbench dashboard

def test_the_dashboard_command_serves_the_notebook_with_the_offline_template(tmp_path):
    notebook = dashboards.workshop_notebook()
    cells = json.loads(notebook.read_text())["cells"]
    assert any("Workshop()" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")
    cmd = dashboards.voila_command(extra=["--port=9999", "--no-browser"])
    assert cmd[1:4] == ["-m", "voila", str(notebook)]
    assert "--template=workbench" in cmd and cmd[-2:] == ["--port=9999", "--no-browser"]
    template = dashboards.JUPYTER_DATA / "voila" / "templates" / "workbench"
    assert json.loads((template / "conf.json").read_text())["base_template"] == "lab"
    env = dashboards.voila_env(tmp_path / "room", "sim://pico",
                               base={"JUPYTER_PATH": "/elsewhere"})
    assert env["JUPYTER_PATH"].split(":") == [str(dashboards.JUPYTER_DATA), "/elsewhere"]
    assert env["WORKBENCH_WORKSHOP_DIR"] == str((tmp_path / "room").resolve())
    assert env["WORKBENCH_DEVICE"] == "sim://pico"


def test_the_dashboard_command_refuses_a_folder_it_cannot_use(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cli.main(["dashboard", "--folder", str(blocker / "room"), "--no-browser"]) == \
        cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "cannot use" in err and "--folder" in err and "Traceback" not in err
