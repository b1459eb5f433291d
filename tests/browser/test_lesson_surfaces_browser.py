"""Lesson 01 (connect and capture) as a student meets it, on each surface: Run All in
JupyterLab on the virtual board, the same lesson as a Voila page, and JupyterLab with the
board on the student's computer reached through the Web Serial bridge
(``WORKBENCH_DEVICE=webserial://board``, as on Binder).

The lesson is the packaged one, unchanged, copied into the server's folder the way
``workbench lab`` copies it into a student's workspace (:func:`workbench.lab.workspace.prepare`),
so its dataset (``gestures/``) is written beside the copy. After the lesson has run, its
capture panel must still be alive: it draws the board, and its Record button stores a take.

The bridge's board is a virtual board behind the browser's ``navigator.serial``, replaced by
the stand-in of ``webserial_standin`` (the only stand-in: the device picker cannot be driven
headless). The kernel gets ``WORKBENCH_DEVICE`` from its environment, as a Binder or
JupyterHub deployment sets it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from webserial_standin import FAKE_SERIAL_JS, relayed_board

from workbench.lab.lessons import lessons
from workbench.lab.workspace import prepare

pytestmark = pytest.mark.browser

LESSON = "01_connect_and_capture.ipynb"
GESTURES = ("wave", "circle", "punch")
RUN_TIMEOUT_MS = 300_000
FRAMES = "Number(document.querySelector('.wb-liveplot')?.dataset.frames || 0)"


def lesson_in(folder: Path) -> Path:
    """The packaged lesson 01 copied into ``folder`` as into a student's workspace."""
    ws = prepare(folder, packaged=[x for x in lessons() if x.name == LESSON])
    (copy,) = ws.lessons
    return copy


def takes(dataset: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in dataset.glob("recordings/*/meta.json")]


def check_lesson_ran(page, dataset: Path) -> None:
    """Every cell ran: the last one prints each gesture's spread; nine takes, none lost."""
    page.locator(".jp-OutputArea-output", has_text=re.compile(r"punch\s+mean \|a\|")).first.wait_for(
        timeout=RUN_TIMEOUT_MS)
    text = page.locator("body").inner_text()
    at = text.find("Traceback")
    assert at < 0, text[max(0, at - 300):at + 1500]
    assert "class balance" in text
    metas = takes(dataset)
    assert sorted(m["label"] for m in metas) == sorted(g for g in GESTURES for _ in range(3))
    assert all(m["complete"] and m["lost"] == 0 and m["samples"] > 0 for m in metas)


def check_panel_alive(page, dataset: Path, shot: Path) -> None:
    """The lesson's panel draws the board and its Record button stores a take."""
    page.locator(".wb-liveplot canvas").first.wait_for(timeout=60_000)
    now = page.evaluate(f"() => {FRAMES}")
    page.wait_for_function(f"() => {FRAMES} > {now + 3}", timeout=60_000)
    before = len(takes(dataset))
    page.get_by_placeholder("e.g. wave").first.fill("tap")
    page.get_by_role("button", name="Record").first.click()
    page.get_by_role("button", name="Stop").first.wait_for(timeout=30_000)
    page.wait_for_function("() => /REC 00:0[1-9]\\.\\d/.test(document.querySelector("
                           "'.wb-capture-rec')?.textContent || '')", timeout=30_000)
    page.get_by_role("button", name="Stop").first.click()
    page.get_by_role("button", name="Record").first.wait_for(timeout=30_000)
    page.wait_for_function("() => /last take:\\s*[1-9][\\d,]* samples/.test("
                           "document.body.innerText)", timeout=30_000)
    page.screenshot(path=str(shot), full_page=True)
    new = takes(dataset)
    assert len(new) == before + 1
    tap = [m for m in new if m["label"] == "tap"]
    assert len(tap) == 1 and tap[0]["samples"] > 0 and tap[0]["lost"] == 0


def test_lesson_01_runs_all_in_jupyterlab_and_its_panel_survives(lab_server, page, shots):
    copy = lesson_in(lab_server.root / "virtual")
    lab_server.open_and_run(page, f"virtual/{copy.name}?reset", timeout_ms=120_000)
    check_lesson_ran(page, copy.parent / "gestures")
    page.screenshot(path=str(shots / "1-after-run-all.png"))
    check_panel_alive(page, copy.parent / "gestures", shots / "2-recorded-after-run-all.png")


def test_lesson_01_in_voila_renders_its_panel_and_records(voila_server, page, shots, tmp_path):
    copy = lesson_in(tmp_path / "voila-lesson")
    (tmp_path / "voila0").mkdir(exist_ok=True)  # where the harness keeps the server's log
    # Voila shows the page once the lesson ran (nine 4 s takes)
    page.goto(voila_server(copy), timeout=RUN_TIMEOUT_MS, wait_until="commit")
    page.locator(".wb-liveplot canvas").first.wait_for(timeout=RUN_TIMEOUT_MS)
    text = page.locator("body").inner_text()
    assert "model not found" not in text and "Traceback" not in text
    assert len(takes(copy.parent / "gestures")) == 9
    page.screenshot(path=str(shots / "1-voila-page.png"), full_page=True)
    check_panel_alive(page, copy.parent / "gestures", shots / "2-voila-recorded.png")


@pytest.fixture
def webserial_kernel(lab_server):
    """``WORKBENCH_DEVICE=webserial://board`` in the environment of the kernels started during
    this test (as Binder or JupyterHub would set it), by a startup file of the server's
    IPython profile."""
    startup = lab_server.root.parent / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    script = startup / "00-workbench-device.py"
    script.write_text("import os\nos.environ['WORKBENCH_DEVICE'] = 'webserial://board'\n")
    yield
    script.unlink()


def test_lesson_01_captures_through_the_web_serial_bridge(lab_server, webserial_kernel, page,
                                                          shots, tmp_path):
    """WORKBENCH_DEVICE=webserial://board: the Connect button shows where the panel is made;
    the student connects, and the lesson goes on through the bridge: nine takes, none lost."""
    copy = lesson_in(lab_server.root / "bridge")
    with relayed_board(tmp_path / "board.flash") as board:
        page.add_init_script(FAKE_SERIAL_JS % {"ws": json.dumps(board.url), "mode": '"relay"'})
        lab_server.run_until_shown(page, f"bridge/{copy.name}?reset", ".wb-webserial",
                                   timeout_ms=120_000)
        assert "webserial://board" in page.locator(".jp-OutputArea-output").first.inner_text()
        bridge = page.locator(".wb-webserial").first
        assert "click Connect" in bridge.inner_text()
        assert page.locator(".wb-liveplot").count() == 0   # the panel waits for the port
        page.screenshot(path=str(shots / "1-connect-where-the-device-is-opened.png"))
        bridge.locator(".wb-ws-connect").click()
        page.get_by_text("connected to Arduino Nano 33 BLE Sense at webserial://board").first \
            .wait_for(timeout=120_000)
        check_lesson_ran(page, copy.parent / "gestures")
        # one bridge left, inside the panel (the one shown while the cell waited gave way)
        assert page.locator(".wb-webserial").count() == 1
        assert page.locator(".wb-webserial").first.get_attribute("data-state") == "open"
        assert int(page.locator(".wb-webserial").first.get_attribute("data-rx")) > 0
        serial = page.evaluate("() => window.__serial")
        assert serial["requests"] == 1 and serial["opened"] == 1
        page.wait_for_function(f"() => {FRAMES} > 10", timeout=60_000)
        page.screenshot(path=str(shots / "2-lesson-through-the-bridge.png"), full_page=True)
