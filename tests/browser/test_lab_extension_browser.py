"""The JupyterLab extension in a real browser: the TinyML panel, its palette commands, a lesson.

The JupyterLab of the ``lab_server`` fixture loads the extension the way a user's does: from
the environment's ``share/jupyter/labextensions/tinyml-workbench`` (what the wheel, or
``make install``, puts there) with the server extension enabled by the environment's
``etc/jupyter/jupyter_server_config.d/tinyml-workbench.json``. Virtual boards register in a
folder of this module's own (``$WORKBENCH_SIM_DIR``), so only the boards started here are
listed, and every one of them is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

pytestmark = pytest.mark.browser

PANEL_TAB = ".jp-SideBar .lm-TabBar-tab[data-id='tinyml-workbench-panel']"
PANEL = "#tinyml-workbench-panel"

#: How long to wait for JupyterLab to react to a key or a menu click before trying it again,
#: and how often (on a loaded machine a key press on a page still settling is sometimes lost).
UI_RETRY_S = 15.0
UI_ATTEMPTS = 3


@pytest.fixture(scope="module", autouse=True)
def sim_dir(tmp_path_factory):
    """A registry of virtual boards for this module; set before the lab server starts (it
    inherits it), and every board still listed there is stopped afterwards."""
    folder = tmp_path_factory.mktemp("sim")
    old = os.environ.get("WORKBENCH_SIM_DIR")
    os.environ["WORKBENCH_SIM_DIR"] = str(folder)
    yield folder
    for entry in (folder / "running").glob("*.json"):
        try:
            os.kill(json.loads(entry.read_text())["pid"], signal.SIGTERM)
        except (OSError, ValueError, KeyError):
            pass
    if old is None:
        os.environ.pop("WORKBENCH_SIM_DIR", None)
    else:
        os.environ["WORKBENCH_SIM_DIR"] = old


@pytest.fixture(autouse=True)
def _sim_dir(sim_dir, monkeypatch):
    """tests/conftest.py gives each test its own registry; here the lab server's is used."""
    monkeypatch.setenv("WORKBENCH_SIM_DIR", str(sim_dir))


def open_panel(page, lab_server):
    page.goto(f"{lab_server.url}/lab", timeout=120_000)
    tab = page.locator(PANEL_TAB)
    tab.wait_for(timeout=120_000)
    # the layout restorer may be showing it already: a click on its current tab would close it
    for attempt in range(UI_ATTEMPTS):
        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
            tab.click()
        try:
            page.locator(f"{PANEL} .jp-TinyMLPanel-devices").wait_for(timeout=UI_RETRY_S * 1000)
            break
        except Exception:  # playwright's TimeoutError: not shown yet
            if attempt == UI_ATTEMPTS - 1:
                raise
    return page.locator(PANEL)


def palette(page, label: str) -> None:
    """Run the command called ``label`` from the command palette, as a person would. The
    palette closes when it loses focus, which a page still settling sometimes takes: then
    it is opened again."""
    box = page.locator(".lm-CommandPalette-input").first
    item = page.locator(".lm-CommandPalette-item", has_text=label).first
    for attempt in range(UI_ATTEMPTS):
        try:
            if not box.is_visible():
                page.keyboard.press("Control+Shift+C")
            box.fill(label, timeout=UI_RETRY_S * 1000)
            item.click(timeout=UI_RETRY_S * 1000)
            return
        except Exception:  # playwright's TimeoutError: the palette closed, or never opened
            if attempt == UI_ATTEMPTS - 1:
                raise


def test_the_panel_lists_a_running_virtual_board(lab_server, page, shots, sim_dir):
    from conftest import start_sim

    proc, line = start_sim("--tcp", "0", "--board", "nano33ble", "--flash",
                           str(sim_dir / "listed.flash"))
    url = "socket://" + line.split(" ", 1)[1]
    try:
        panel = open_panel(page, lab_server)
        row = panel.locator(f".jp-TinyMLPanel-device[data-url='{url}']")
        row.wait_for(timeout=60_000)
        text = row.inner_text()
        assert "Arduino Nano 33 BLE Sense" in text
        assert "flash 1 MB" in text and "RAM 256 KB" in text
        assert "accel" in text and "running, free" in text
        # the lessons are listed, the Web Serial line says what this browser has
        assert panel.locator(".jp-TinyMLPanel-lesson[data-name='00_hello_board.ipynb']").count() == 1
        assert "Web Serial" in panel.locator(".jp-TinyMLPanel-webserial").inner_text()
        page.screenshot(path=str(shots / "panel.png"))
        proc.terminate()
        proc.wait(10)
        row.wait_for(state="detached", timeout=30_000)  # the interval refresh drops it
    finally:
        if proc.poll() is None:
            proc.kill()


def test_palette_starts_a_virtual_board_and_makes_a_capture_notebook(lab_server, page, shots,
                                                                    sim_dir):
    panel = open_panel(page, lab_server)
    before = set(panel.locator(".jp-TinyMLPanel-device[data-kind='virtual']").evaluate_all(
        "rows => rows.map(r => r.dataset.url)"))
    palette(page, "Start a Virtual Board")
    selected = panel.locator(".jp-TinyMLPanel-device.jp-mod-selected[data-kind='virtual']")
    selected.wait_for(timeout=90_000)
    url = selected.get_attribute("data-url")
    assert url.startswith("socket://127.0.0.1:") and url not in before
    running = [json.loads(p.read_text()) for p in (sim_dir / "running").glob("*.json")]
    assert url in [e["url"] for e in running]  # a real board, registered by the server
    page.screenshot(path=str(shots / "started.png"))

    palette(page, "New Capture Notebook")
    plot = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .wb-liveplot").first
    plot.locator("canvas").wait_for(timeout=120_000)
    page.wait_for_function(
        "() => Number(document.querySelector('.wb-liveplot')?.dataset.frames || 0) > 5",
        timeout=60_000)
    sources = [json.loads(p.read_text()) for p in lab_server.root.glob("Untitled*.ipynb")]
    assert any(f"CapturePanel(\"captures\", url=\"{url}\")" in "".join(c["source"])
               for nb in sources for c in nb["cells"])
    page.screenshot(path=str(shots / "capture-notebook.png"))

    # the board's row says it is in use now, and its Stop button ends it
    row = panel.locator(f".jp-TinyMLPanel-device[data-url='{url}']")
    page.wait_for_function(
        f"() => document.querySelector(\"{PANEL} [data-url='{url}']\")?.innerText"
        ".includes('in use')", timeout=30_000)
    row.get_by_role("button", name="Stop").click()
    row.wait_for(state="detached", timeout=60_000)
    assert url not in [json.loads(p.read_text())["url"] for p in (sim_dir / "running").glob("*.json")]


def test_a_lesson_opened_from_the_panel_runs(lab_server, page, shots):
    panel = open_panel(page, lab_server)
    panel.locator(".jp-TinyMLPanel-lesson[data-name='00_hello_board.ipynb']").click()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="00_hello_board.ipynb")
    tab.wait_for(timeout=60_000)
    assert (lab_server.root / "00_hello_board.ipynb").is_file()  # copied into the root
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=120_000)
    for attempt in range(UI_ATTEMPTS):  # Run > Run All Cells, again if the click was lost
        notebook.locator(".jp-Cell").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(
                """() => [...document.querySelectorAll(
                      '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                    .every((e) => !/^\\[\\s*\\]:?$/.test(e.textContent.trim()))""",
                timeout=UI_RETRY_S * 1000)
            break
        except Exception:  # playwright's TimeoutError: some cell was never queued
            page.keyboard.press("Escape")
            if attempt == UI_ATTEMPTS - 1:
                raise
    # the lesson's last check prints its largest error; every cell before it ran
    notebook.locator(".jp-OutputArea-output", has_text="largest error").wait_for(timeout=240_000)
    text = notebook.inner_text()
    assert "gravity checks out" in text and "Traceback" not in text
    page.screenshot(path=str(shots / "lesson-00.png"))


# ------------------------------------------------------------------ connect, Web Serial, deploy

def notebook_output(page, text: str, timeout_ms: float = 120_000):
    """Wait until the notebook shown prints ``text``; returns its output area's text."""
    out = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
                       has_text=text).first
    out.wait_for(timeout=timeout_ms)
    return out.inner_text()


def notebook_sources(lab_server) -> list[str]:
    """The code of every new notebook the commands made in the server's root."""
    return ["".join(c["source"]) for p in lab_server.root.glob("Untitled*.ipynb")
            for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code"]


def hello_line(board_id: str) -> str:
    """The line a connect notebook prints for a board of the catalog (from its HELLO)."""
    from workbench.boards import get_board

    b = get_board(board_id)
    return f"{b.name}: {b.mcu} ({b.core}) at {b.clock_hz / 1e6:g} MHz"


@pytest.fixture
def relayed_board(tmp_path):
    """A virtual board behind a WebSocket relay: what the stand-in Web Serial port reaches."""
    from conftest import start_sim
    from webserial_standin import WsRelay

    proc, line = start_sim("--tcp", "0", "--board", "nano33ble", "--flash",
                           str(tmp_path / "relayed.flash"))
    host, port = line.split(" ", 1)[1].rsplit(":", 1)
    relay = WsRelay((host, int(port)))
    yield relay
    relay.stop()
    proc.terminate()
    proc.wait(10)


def test_a_granted_web_serial_port_is_listed_and_connect_opens_it(lab_server, page, shots,
                                                                  relayed_board):
    from webserial_standin import FAKE_SERIAL_JS

    page.add_init_script(FAKE_SERIAL_JS % {"ws": json.dumps(relayed_board.url),
                                           "mode": '"relay"'})
    # the port was granted to this page on an earlier visit: getPorts() lists it
    page.add_init_script("navigator.serial.requestPort();")
    panel = open_panel(page, lab_server)
    row = panel.locator(".jp-TinyMLPanel-device[data-kind='webserial']")
    row.wait_for(timeout=60_000)
    text = row.inner_text()
    assert "Arduino Nano 33 BLE Sense" in text and "USB 2341:805A" in text
    assert "catalog: nano33ble" in text and "granted in this browser" in text
    page.screenshot(path=str(shots / "1-granted-port.png"))

    row.get_by_role("button", name="Connect").click()
    widget = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .wb-webserial").first
    widget.wait_for(timeout=120_000)
    # the bridge reopened the granted port by itself, and the next cell's HELLO came through it
    out = notebook_output(page, hello_line("nano33ble"), timeout_ms=240_000)
    assert "accel" in out
    page.wait_for_function(
        "() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .wb-webserial')"
        "?.dataset.state === 'open'", timeout=30_000)
    assert page.evaluate("() => window.__serial.requests") == 1   # nobody was asked again
    assert int(widget.get_attribute("data-rx")) > 0
    sources = notebook_sources(lab_server)
    assert any('WebSerial("nano33ble", boards=["nano33ble"])' in s for s in sources)
    assert any("bridge.open_device()" in s for s in sources)
    page.screenshot(path=str(shots / "2-connected.png"))


def test_palette_connects_a_listed_virtual_board(lab_server, page, shots, sim_dir):
    from conftest import start_sim
    from webserial_standin import FAKE_SERIAL_JS

    # a browser with Web Serial but no port granted yet: the palette offers it beside the board
    page.add_init_script(FAKE_SERIAL_JS % {"ws": '""', "mode": '"relay"'})
    proc, line = start_sim("--tcp", "0", "--board", "pico", "--flash",
                           str(sim_dir / "connect.flash"))
    url = "socket://" + line.split(" ", 1)[1]
    try:
        panel = open_panel(page, lab_server)
        panel.locator(f".jp-TinyMLPanel-device[data-url='{url}']").wait_for(timeout=60_000)
        palette(page, "Connect a Board")
        menu = page.locator(".jp-Dialog select")
        menu.wait_for(timeout=30_000)
        options = menu.locator("option").all_inner_texts()
        assert any("Web Serial" in o for o in options), options
        [choice] = [o for o in options if o.endswith(url)]
        menu.select_option(label=choice)
        page.screenshot(path=str(shots / "1-menu.png"))
        page.locator(".jp-Dialog .jp-mod-accept").click()
        out = notebook_output(page, hello_line("pico"))
        assert "channel(s)" in out   # its sensors, from the HELLO
        assert any(f'workbench.open_device("{url}")' in s for s in notebook_sources(lab_server))
        page.screenshot(path=str(shots / "2-connected.png"))
    finally:
        proc.terminate()
        proc.wait(10)


def test_palette_deploys_the_model_selected_in_the_panel(lab_server, page, shots, sim_dir):
    from importlib import resources

    from conftest import start_sim

    from workbench.deploy import ModelRegistry

    sine = (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()
    registry = ModelRegistry(lab_server.root / "models" / "registry")
    version = registry.register(sine, name="sine")
    proc, line = start_sim("--tcp", "0", "--board", "nano33ble", "--flash",
                           str(sim_dir / "deploy.flash"))
    url = "socket://" + line.split(" ", 1)[1]
    try:
        panel = open_panel(page, lab_server)
        panel.locator(f".jp-TinyMLPanel-device[data-url='{url}'] .jp-TinyMLPanel-url").click()
        panel.locator(f".jp-TinyMLPanel-device.jp-mod-selected[data-url='{url}']").wait_for(
            timeout=30_000)
        model = panel.locator(f".jp-TinyMLPanel-model[data-label='{version.label}']")
        model.click()
        panel.locator(f".jp-TinyMLPanel-model.jp-mod-selected[data-label='{version.label}']"
                      ).wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "1-selected.png"))
        palette(page, "Deploy the Selected Model")
        page.wait_for_function(
            "(label) => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')"
            "?.innerText.includes('deployed ' + label)", arg=version.label, timeout=240_000)
        text = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").inner_text()
        assert f"SHA-256 {version.sha256[:12]}" in text
        assert f"{len(sine):,} / {len(sine):,} bytes" in text
        assert "Deployment gates" in text and "Traceback" not in text
        page.screenshot(path=str(shots / "2-deployed.png"))
        [deployment] = registry.deployments("sine")   # recorded, on that board
        assert deployment.device.startswith(url) and deployment.result["ok"] is True
        assert any(f'FlashPanel(registry, url="{url}", connect=False)' in s
                   for s in notebook_sources(lab_server))
        # the panel shows the deployment once it reads the registry again
        panel.get_by_role("button", name="Refresh").click()
        page.wait_for_function(
            f"() => document.querySelector(\"{PANEL} [data-label='{version.label}']\")"
            "?.innerText.includes('1 deployment(s)')", timeout=30_000)
    finally:
        proc.terminate()
        proc.wait(10)
