"""The workshop dashboard as a participant meets it: ``workbench dashboard`` serves it with
Voila, and the test clicks through connect -> capture -> label -> train -> compare -> flash
on a virtual board, offline: every request to anything but the server is aborted and
recorded, and none may be made; the icons (Font Awesome) still render."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from workbench.data import Dataset

pytestmark = pytest.mark.browser

if importlib.util.find_spec("plotly") is None:
    pytest.skip("needs plotly", allow_module_level=True)

TIMEOUT_MS = 180_000
TAKE_SECONDS = "1.5"
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")


def harness(config):
    """tests/browser/conftest.py as pytest loaded it (start_server, free_port)."""
    here = (Path(__file__).parent / "conftest.py").resolve()
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == here:
            return plugin
    raise RuntimeError("tests/browser/conftest.py is not loaded")


@pytest.fixture
def dashboard(tmp_path, pytestconfig):
    """``workbench dashboard`` on a free port, its files in ``tmp_path/room``."""
    h = harness(pytestconfig)
    port = h.free_port()
    room = tmp_path / "room"
    server = h.start_server(
        ["-m", "workbench.cli", "dashboard", "--folder", str(room), "--device", "sim://nano33ble",
         f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1"],
        tmp_path / "server", port, "dashboard", ready_path=None)
    server.room = room
    yield server
    server.stop()


def offline(page) -> list[str]:
    """Abort every request that leaves the server; the list collects their URLs."""
    outside: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(LOCAL):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    return outside


def text(page) -> str:
    return page.locator("body").inner_text()


def wait_text(page, needle: str, timeout: float = TIMEOUT_MS) -> None:
    page.wait_for_function("(s) => document.body.innerText.includes(s)", arg=needle,
                           timeout=timeout)


def step(page, name: str) -> None:
    page.locator(f".wb-step-{name}").click()
    page.locator(f".wb-page-{name}").wait_for(state="visible", timeout=30_000)


def takes_shown(page, label: str) -> int:
    cell = page.locator(f".wb-page-capture .wb-takes tr[data-label='{label}'] td").nth(1)
    return int(cell.inner_text()) if cell.count() else 0


def record(page, scenario: str, label: str, shots: Path) -> None:
    """Choose what the virtual wearer does, type the label, press Record, wait for the take."""
    capture = page.locator(".wb-page-capture")
    capture.locator(".widget-dropdown", has_text="Scenario").locator("select") \
        .select_option(scenario)
    field = capture.get_by_placeholder("e.g. wave")
    field.fill(label)
    field.press("Enter")
    before = takes_shown(page, label)
    capture.get_by_role("button", name="Record").click()
    page.wait_for_function(
        "([l, n]) => { const c = document.querySelector("
        "`.wb-page-capture .wb-takes tr[data-label='${l}'] td:nth-child(2)`);"
        " return c && Number(c.textContent) > n; }", arg=[label, before], timeout=60_000)
    capture.get_by_role("button", name="Record").wait_for(timeout=30_000)


def test_a_participant_goes_from_a_board_to_a_deployed_model_offline(dashboard, page, shots):
    outside = offline(page)
    page.goto(dashboard.url + "/", timeout=TIMEOUT_MS)
    page.locator(".wb-workshop").wait_for(timeout=TIMEOUT_MS)
    assert "import Workshop" not in text(page), "the dashboard shows code"
    # only Connect is open; the later steps wait
    assert page.locator(".wb-step-capture").is_disabled()
    page.screenshot(path=str(shots / "1-connect.png"), full_page=True)

    # 1. connect
    page.locator(".wb-page-connect").get_by_role("button", name="Connect").click()
    wait_text(page, "connected to Arduino Nano 33 BLE Sense", 90_000)
    assert "virtual board" in text(page)

    # 2. capture: three takes of "wave", three of "idle", the last one mistyped "idel"
    step(page, "capture")
    page.locator(".wb-page-capture .wb-liveplot canvas").wait_for(timeout=60_000)
    seconds = page.locator(".wb-page-capture .widget-text", has_text="Seconds").locator("input")
    seconds.fill(TAKE_SECONDS)
    seconds.press("Enter")
    for label in ("wave", "wave", "wave", "idle", "idle", "idel"):
        record(page, "wave" if label == "wave" else "idle", label, shots)
    page.screenshot(path=str(shots / "2-capture.png"), full_page=True)
    assert takes_shown(page, "wave") == 3 and takes_shown(page, "idle") == 2
    assert "1 more label" in page.locator(".wb-page-capture .wb-checklist").inner_text()

    # 3. label: the mistyped take gets its right label in the labeler
    step(page, "label")
    picker = page.locator(".wb-page-label select.wb-labeler-picker")
    picker.wait_for(timeout=60_000)
    typo = page.evaluate("() => [...document.querySelectorAll('.wb-page-label "
                         "select.wb-labeler-picker option')].find(o => o.textContent"
                         ".includes('· idel ·')).value")
    picker.select_option(typo)
    page.wait_for_function(
        "() => document.querySelector('.wb-page-label select.wb-labeler-reclabel').value"
        " === 'idel'", timeout=30_000)
    page.locator(".wb-page-label select.wb-labeler-reclabel").select_option("idle")
    page.locator(".wb-page-label .wb-checklist", has_text="ready to train").wait_for(
        timeout=30_000)
    page.screenshot(path=str(shots / "3-label.png"), full_page=True)
    assert Dataset(dashboard.room / "takes").meta(typo).label == "idle"   # stored, not only shown

    # 4. train, with the epochs' progress bar
    step(page, "train")
    train = page.locator(".wb-page-train")
    train.locator("button", has_text="Train").click()
    train.locator(".widget-hprogress").first.wait_for(timeout=30_000)
    wait_text(page, "trained in")
    assert "test accuracy" in train.inner_text()
    page.screenshot(path=str(shots / "4-train.png"), full_page=True)

    # 5. compare float and int8 for the board
    step(page, "compare")
    page.locator(".wb-page-compare").get_by_role("button", name="Convert and measure").click()
    wait_text(page, "versions measured for nano33ble")
    row = page.locator('.wb-compare tr[data-name="int8 PTQ"]')
    row.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "5-compare.png"), full_page=True)

    # 6. flash the int8 row from its Deploy button; then the board's own predictions
    row.locator("button.wb-row-action").click()
    page.locator(".wb-page-flash").wait_for(state="visible", timeout=30_000)
    wait_text(page, "deployed int8 PTQ")
    assert "Deployment gates" in text(page)
    page.wait_for_function(
        "() => /\\d+ window\\(s\\) predicted on the board/.test(document.body.innerText)",
        timeout=TIMEOUT_MS)
    page.locator(".wb-step-flash .fa-check").wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "6-flash.png"), full_page=True)

    # offline: nothing was asked of another host, and the icons are drawn with the
    # Font Awesome the server itself served
    assert outside == [], f"requests left the server: {outside}"
    icon = page.evaluate(
        "() => { const i = document.querySelector('.wb-step-flash i.fa-check');"
        " const s = getComputedStyle(i, '::before');"
        " return [s.content, s.fontFamily, i.getBoundingClientRect().width]; }")
    assert icon[0] not in ("none", "normal", '""') and "Font Awesome" in icon[1] and icon[2] > 0
    assert page.evaluate("async () => { await document.fonts.ready;"
                         " return document.fonts.check('900 14px \"Font Awesome 5 Free\"'); }")
