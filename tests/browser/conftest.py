"""Real-browser harness for the widgets: a JupyterLab server, a Voila server, headless Chromium.

Everything here is real: the servers are started as subprocesses of this Python
(``python -m jupyter lab``, ``python -m voila``) with their Jupyter directories in a
temporary folder, and Chromium is Debian's ``/usr/bin/chromium`` driven through
Playwright's sync API (never ``playwright install``: no browser is downloaded;
``WORKBENCH_CHROMIUM`` names another Chromium binary).

Fixtures:

* ``lab_server`` (module): a JupyterLab serving the folder ``lab_server.root`` at ``.url``;
  ``lab_server.open_and_run(page, "x.ipynb")`` opens a notebook and runs all its cells;
  ``lab_server.run_until_shown(page, "x.ipynb", ".selector")`` also waits for its output.
* ``notebook_server`` (module): the same for Jupyter Notebook 7 (``python -m jupyter notebook``),
  notebooks opened under ``/notebooks/``.
* ``voila_server`` (function): ``voila_server(notebook_path)`` -> the dashboard's URL.
* ``browser`` (session) and ``page`` (function, a fresh context: no cookies, no storage).
* ``shots`` (function): the folder for this test's screenshots, kept after the run as test
  artifacts: ``$WORKBENCH_ARTIFACTS/<test>/`` (default ``tests/browser/artifacts/<test>/``,
  git-ignored). A failing test leaves ``failure.png`` of its page there too.

The tests carry ``@pytest.mark.browser``; they are skipped, with the reason, when
Chromium, Playwright, JupyterLab, Voila or anywidget is missing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Seconds to wait for a server to answer after it is started.
SERVER_START_TIMEOUT_S = 90.0
#: Seconds to wait for every code cell to be queued after Run All Cells, and how often to try.
RUN_ALL_CHECK_S = 15.0
RUN_ALL_ATTEMPTS = 3
#: Seconds to wait for a server to exit after SIGTERM before it is killed.
SERVER_STOP_TIMEOUT_S = 15.0


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives a real headless Chromium (slow, seconds each)")
    _hand_back_the_conftest_name(config)


def _hand_back_the_conftest_name(config) -> None:
    """``from conftest import start_sim`` in tests/test_*.py means tests/conftest.py.

    With pytest's default (prepend) import mode every conftest.py is imported as the
    module ``conftest``, the last one loaded taking the name in sys.modules; this one is
    loaded before tests/test_*.py are imported (``browser`` sorts first), so once it is
    registered (pytest calls this hook then) it gives the name back to tests/conftest.py.
    """
    parent = Path(__file__).resolve().parents[1] / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == parent:
            sys.modules["conftest"] = plugin
            return


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    for module, pip_name in (("playwright.sync_api", "playwright"), ("jupyterlab", "jupyterlab"),
                             ("voila", "voila"), ("anywidget", "anywidget"), ("nbformat", "nbformat")):
        try:
            __import__(module)
        except ImportError:
            return f"{pip_name} is not installed (pip install {pip_name})"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"browser tests need it: {reason}")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(root: Path) -> dict[str, str]:
    """The environment for a server whose Jupyter directories all live under ``root``."""
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                     ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    env.pop("JUPYTER_PATH", None)
    # ipykernel does not forward what is written to fd 1 and 2 (native code: TensorFlow's
    # notices) to the notebook when PYTEST_CURRENT_TEST is set; a user's kernel does
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Server:
    """A server subprocess with its log file; ``stop()`` ends it and its kernels."""

    proc: subprocess.Popen
    url: str
    log: Path
    root: Path

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        # kernels run in the server's process group (started with a new session)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(5)


def start_server(args: list[str], root: Path, port: int, name: str, ready_path: str | None) -> Server:
    """Start ``python ARGS`` in its own session and wait until it answers on ``port``.

    ``ready_path``: an HTTP path that must answer 200; None waits for the TCP port only
    (Voila runs the notebook on every GET of its page, so it is not polled).
    """
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"{name}.log"
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT,
                            env=jupyter_env(root), cwd=root, start_new_session=True)
    out.close()
    server = Server(proc, f"http://127.0.0.1:{port}", log, root)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{server.log_text()}")
        try:
            if ready_path is None:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return server
            with urllib.request.urlopen(server.url + ready_path, timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not answer in {SERVER_START_TIMEOUT_S} s:\n"
                               f"{server.log_text()}")
        time.sleep(0.3)


class LabServer(Server):
    """JupyterLab, with helpers to open a notebook and run it through the UI."""

    notebook_page = "/lab/tree/"
    """Where the server opens a notebook (its path follows)."""

    def forget_workspaces(self) -> None:
        """The next page opens with no notebook of an earlier test restored."""
        for ws in (self.root.parent / "lab-workspaces").glob("*"):
            ws.unlink()

    def stop_kernels(self) -> None:
        """Shut down every running kernel (a capture panel streams until its kernel stops)."""
        kernels = json.loads(urllib.request.urlopen(f"{self.url}/api/kernels", timeout=30).read())
        xsrf = {"X-XSRFToken": "t", "Cookie": "_xsrf=t"}   # the server compares the two
        for k in kernels:
            urllib.request.urlopen(urllib.request.Request(
                f"{self.url}/api/kernels/{k['id']}", method="DELETE", headers=xsrf), timeout=30)

    def open_and_run(self, page, notebook: str, timeout_ms: float = 60_000) -> None:
        """Open ``notebook`` (relative to the server's root), wait for its kernel, then
        Run > Run All Cells from the menu bar, as a person would.

        Returns once every code cell has been queued (its prompt is ``[*]:`` or ``[n]:``). On
        a loaded machine JupyterLab sometimes drops the first menu click (the Run menu is
        not ready yet): the menu is then used again, up to RUN_ALL_ATTEMPTS times."""
        page.goto(f"{self.url}{self.notebook_page}{notebook}", timeout=timeout_ms)
        page.locator(".jp-Notebook").first.wait_for(timeout=timeout_ms)
        # the kernel indicator reads "Idle" once the kernel has started
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
            timeout=timeout_ms)
        for attempt in range(RUN_ALL_ATTEMPTS):
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            try:
                page.wait_for_function(
                    """() => {
                      const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
                      return p.length > 0 && p.every((e) => !/^\\[\\s*\\]:?$/.test(e.textContent.trim()));
                    }""", timeout=RUN_ALL_CHECK_S * 1000)
                return
            except Exception:  # playwright's TimeoutError: some cell was never queued
                page.keyboard.press("Escape")
                if attempt == RUN_ALL_ATTEMPTS - 1:
                    raise


    def run_until_shown(self, page, notebook: str, selector: str,
                        timeout_ms: float = 60_000) -> None:
        """:meth:`open_and_run`, then wait for ``selector`` (what the notebook displays).

        In a fresh environment JupyterLab sometimes shows the cells queued while the kernel
        stays idle and nothing runs (seen only on the first runs after an install); then Run
        All Cells is used once more. Fails with the cells' prompts and the kernel status if
        the output never appears."""
        self.open_and_run(page, notebook)
        for attempt in range(2):
            try:
                page.locator(selector).first.wait_for(timeout=timeout_ms)
                return
            except Exception:  # playwright's TimeoutError
                prompts = page.evaluate(
                    "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                    ".map(e => e.textContent.trim())")
                status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute(
                    "data-status")
                if attempt == 1:
                    raise AssertionError(
                        f"{selector} never appeared in {notebook}; cell prompts {prompts}, "
                        f"kernel {status}:\n{page.locator('body').inner_text()[-2000:]}"
                    ) from None
                page.keyboard.press("Escape")
                page.locator(".jp-Notebook .jp-Cell").first.click()
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """A real JupyterLab on a free port, serving a fresh temporary folder (``.root``)."""
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    # what `jupyter labextension disable` writes: no "official Jupyter news?" toast over the page
    labconfig = root / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port = free_port()
    base = start_server(
        ["-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
         f"--notebook-dir={notebooks}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        root, port, "jupyterlab", ready_path="/api/status")
    server = LabServer(base.proc, base.url, base.log, notebooks)
    yield server
    server.stop()


class NotebookServer(LabServer):
    """Jupyter Notebook 7: the same notebook view and Run menu as JupyterLab, one document
    per page under ``/notebooks/``."""

    notebook_page = "/notebooks/"


@pytest.fixture(scope="module")
def notebook_server(tmp_path_factory):
    """A real Jupyter Notebook 7 (``python -m jupyter notebook``) on a free port, serving a
    fresh temporary folder (``.root``); ``open_and_run`` and ``run_until_shown`` as for
    ``lab_server``."""
    root = tmp_path_factory.mktemp("notebook")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    labconfig = root / "config" / "labconfig"   # no news toast, as for JupyterLab
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port = free_port()
    base = start_server(
        ["-m", "jupyter", "notebook", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
         "--allow-root", f"--notebook-dir={notebooks}"],
        root, port, "notebook", ready_path="/api/status")
    server = NotebookServer(base.proc, base.url, base.log, notebooks)
    yield server
    server.stop()


@pytest.fixture
def voila_server(tmp_path):
    """``voila_server(notebook)`` starts Voila on that notebook and returns its URL."""
    servers: list[Server] = []

    def start(notebook: Path) -> str:
        port = free_port()
        server = start_server(
            ["-m", "voila", str(notebook), "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1"],
            tmp_path / f"voila{len(servers)}", port, "voila", ready_path=None)
        servers.append(server)
        return server.url + "/"

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, through Playwright (no downloaded browser)."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


ARTIFACTS = Path(os.environ.get("WORKBENCH_ARTIFACTS") or Path(__file__).parent / "artifacts")


def artifact_dir(request) -> Path:
    """``ARTIFACTS/<test name>/`` (made if missing): where a test keeps its screenshots."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
    folder = ARTIFACTS / safe
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shots(request) -> Path:
    """The folder for this test's screenshots; kept after the run (test artifacts)."""
    return artifact_dir(request)


@pytest.fixture
def page(browser, request):
    """A page in a fresh browser context (its own empty profile), closed after the test.
    The browser's console is kept and printed if the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        try:
            pg.screenshot(path=str(artifact_dir(request) / "failure.png"), full_page=True)
        except Exception:  # noqa: BLE001 - a page that is gone leaves no picture, not a second error
            pass
        if console:
            print("browser console:\n" + "\n".join(console[-60:]))
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
