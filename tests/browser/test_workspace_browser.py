"""`workbench lab` in a real browser: the student's own workspace, the package's lessons pristine.

The command runs for real as a subprocess (``workbench lab --dir WS --no-browser --port P ...``;
it prepares the workspace, then execs ``jupyter lab`` in the same process), with the token and
address options of the ``lab_server`` fixture and its Jupyter folders under a temporary folder
(``jupyter_env``). Chromium opens the URL the command would have opened in a browser (what
Jupyter writes to ``jpserver-file-to-run-<pid>-open.html``), runs the first cell of lesson 00
and saves it, as a student would. The outputs land in the workspace's copy; the checkout's
``notebooks/00_hello_board.ipynb`` stays byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
LESSON = "00_hello_board.ipynb"
#: Seconds to wait for `workbench lab` to answer and write the file it would open in a browser.
START_TIMEOUT_S = 120.0
#: Seconds to wait for the cell to be queued after it is run, and how often to try.
RUN_CHECK_S = 20.0
RUN_ATTEMPTS = 3


@pytest.fixture(scope="module")
def harness(pytestconfig):
    """tests/browser/conftest.py as pytest loaded it (``import conftest`` names tests/conftest.py)."""
    here = Path(__file__).with_name("conftest.py").resolve()
    for plugin in pytestconfig.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == here:
            return plugin
    raise LookupError(f"{here} is not loaded as a pytest plugin")


def _workbench_command() -> list[str]:
    """The installed ``workbench`` command beside this python, else its module."""
    script = shutil.which("workbench", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "workbench.cli"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _open_url(runtime: Path, pid: int) -> str | None:
    """The URL Jupyter would open in a browser for the file it was given, once written."""
    try:
        text = (runtime / f"jpserver-file-to-run-{pid}-open.html").read_text()
    except OSError:
        return None
    match = re.search(r'url=([^"]+)"', text)
    return html.unescape(match.group(1)) if match else None


@dataclass
class Lab:
    server: object
    """tests/browser/conftest.py's ``Server``: ``.proc``, ``.url``, ``.log_text()``, ``.stop()``."""
    workspace: Path
    open_url: str
    """What the command would have opened in a browser."""
    runtime: Path
    """The server's Jupyter runtime folder (its ``jpserver-<pid>.json``)."""
    checkout_sha: str
    """SHA-256 of the checkout's lesson 00 before the command ran."""


@pytest.fixture
def workbench_lab(harness, tmp_path):
    """``workbench lab`` started for real on a free port; yields a :class:`Lab`.

    Stops the server and its kernels afterwards, and any virtual board still registered in
    this test's ``$WORKBENCH_SIM_DIR``."""
    workspace = tmp_path / "my-course"
    checkout_sha = _sha(ROOT / "notebooks" / LESSON)
    jupyter = tmp_path / "jupyter"
    env = harness.jupyter_env(jupyter)
    labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"   # no news toast over the page
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port = harness.free_port()
    log = jupyter / "workbench-lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*_workbench_command(), "lab", "--dir", str(workspace), "--device", "sim://nano33ble",
             "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
             "--IdentityProvider.token=", "--ServerApp.password=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
            start_new_session=True)
    server = harness.Server(proc, f"http://127.0.0.1:{port}", log, workspace)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"workbench lab exited:\n{server.log_text()}"
            url = _open_url(Path(env["JUPYTER_RUNTIME_DIR"]), proc.pid)
            try:
                if url:
                    with urllib.request.urlopen(server.url + "/api/status", timeout=2) as r:
                        if r.status == 200:
                            break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no answer in {START_TIMEOUT_S} s:\n" \
                                                f"{server.log_text()}"
            time.sleep(0.3)
        yield Lab(server, workspace, url, Path(env["JUPYTER_RUNTIME_DIR"]), checkout_sha)
    finally:
        server.stop()
        sims = os.environ.get("WORKBENCH_SIM_DIR")   # this test's own (tests/conftest.py)
        for entry in (Path(sims) / "running").glob("*.json") if sims else ():
            try:
                os.kill(json.loads(entry.read_text())["pid"], signal.SIGTERM)
            except (OSError, ValueError, KeyError):
                pass


def test_workbench_lab_runs_lesson_00_from_the_workspace_copy(workbench_lab, page, shots):
    checkout = ROOT / "notebooks" / LESSON
    pristine = workbench_lab.checkout_sha
    server, workspace, url = workbench_lab.server, workbench_lab.workspace, workbench_lab.open_url
    mine = workspace / LESSON

    # the command prepared the workspace, said where it is and where to start, and serves it
    said = server.log_text()
    assert f"Your workspace: {workspace.resolve()}" in said and f"Start with {LESSON}" in said
    assert _sha(mine) == pristine  # a copy, not yet run
    info = json.loads((workbench_lab.runtime / f"jpserver-{server.proc.pid}.json").read_text())
    assert Path(info["root_dir"]).resolve() == workspace.resolve()
    assert url == f"{server.url}/lab/tree/{LESSON}", url

    page.goto(url, timeout=120_000)
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first
    notebook.wait_for(timeout=120_000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=120_000)
    # the document shown is the workspace's copy: its tab names it, relative to the server's
    # root (the workspace), and the file browser lists the workspace's own files
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    assert tab.inner_text().strip() == LESSON
    page.wait_for_function(  # its caption, set once the document's context is ready
        "(path) => (document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current')"
        "?.title || '').includes('Path: ' + path)", arg=LESSON, timeout=60_000)
    listing = page.locator(".jp-DirListing-item .jp-DirListing-itemText")
    listing.filter(has_text="README.md").first.wait_for(timeout=60_000)
    shown = set(listing.all_inner_texts())
    assert {p.name for p in workspace.iterdir() if not p.name.startswith(".")} <= shown
    page.screenshot(path=str(shots / "opened.png"))

    # run the first code cell (connects to the virtual board), then save, as a student would
    cell = notebook.locator(".jp-CodeCell").first
    prompt = cell.locator(".jp-InputPrompt").element_handle()
    for attempt in range(RUN_ATTEMPTS):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")   # run it, stay on it
        try:  # queued ([*]) or run ([1]) at once; on a fresh install the first run is sometimes
            # dropped while the kernel reads idle (see conftest's run_until_shown): run it again
            page.wait_for_function("(e) => /^\\[(\\*|\\d+)\\]/.test(e.textContent.trim())",
                                   arg=prompt, timeout=RUN_CHECK_S * 1000)
            break
        except Exception:  # playwright's TimeoutError: never queued
            if attempt == RUN_ATTEMPTS - 1:
                raise
    page.wait_for_function("(e) => /^\\[\\d+\\]/.test(e.textContent.trim())", arg=prompt,
                           timeout=120_000)
    printed = "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts()).strip()
    assert printed
    saved = None
    for _ in range(3):  # a key press on a page still settling is sometimes lost
        notebook.click(position={"x": 5, "y": 5})
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            code = [c for c in json.loads(mine.read_text())["cells"] if c["cell_type"] == "code"]
            if code[0]["outputs"]:
                saved = code[0]
                break
            time.sleep(0.5)
        if saved:
            break
    assert saved is not None, f"{mine} never got the cell's outputs"
    assert [(o["output_type"], o.get("name")) for o in saved["outputs"]] == \
        [("stream", "stdout")], saved["outputs"]   # it ran: printed, no error
    text = "".join("".join(o.get("text", "")) for o in saved["outputs"]).strip()
    assert text.split() == printed.split()   # what the page showed, word for word
    page.screenshot(path=str(shots / "ran-and-saved.png"))

    # the package's lesson in the checkout is untouched
    assert _sha(checkout) == pristine
    assert _sha(mine) != pristine
