"""The wheel carries what an installed workbench needs without a build: the example data sets
(built in, installed, loaded) and the prebuilt JupyterLab extension with its server extension
enabled (installed, then listed by jupyter and served by a JupyterLab started from it).

The wheel is built with hatchling (the project's build backend, from the ``test`` extra) from a
fresh clone of this checkout's working tree: a copy of the files git tracks or would track
(uncommitted edits included) and nothing it ignores, so the built JupyterLab extension
(``workbench/labextension``, git-ignored) is not there and the build hook builds it with npm, as
on a fresh clone. That adds 30-45 s (npm install from npm's cache, tsc, webpack; measured on
2 loaded cores); the clone, with its node_modules, is deleted once the wheel is built. The wheel
is installed with ``--no-deps`` into a fresh virtual environment. That environment sees this
interpreter's third-party packages (numpy...) through a ``.pth`` file of plain directories, so
``workbench`` itself can only come from the wheel; the check runs from a folder outside the
checkout with PYTHONPATH cleared.

One test (``@pytest.mark.browser``) opens the JupyterLab started from the installed wheel in
Debian's Chromium and finds the TinyML panel there; it is skipped when Chromium or Playwright is
missing (tests/browser/conftest.py says what to install).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("hatchling") is None
                       or importlib.util.find_spec("hatch_jupyter_builder") is None,
                       reason="hatchling and hatch-jupyter-builder (the build backend and its "
                              "hook) are not installed: pip install -e '.[test]'"),
    pytest.mark.skipif(shutil.which("npm") is None,
                       reason="npm is not installed: a fresh clone builds its JupyterLab extension "
                              "with it (apt-get install nodejs npm)"),
]


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out


def _fresh_clone(dest: Path) -> Path:
    """What a ``git clone`` of this checkout holds, with its uncommitted edits: every file git
    tracks or would track (``git ls-files --cached --others --exclude-standard``), copied to
    ``dest``; nothing git ignores (built extension, node_modules, .venv). Returns ``dest``."""
    listed = _run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                   "--exclude-standard"]).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name, follow_symlinks=False)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    clone = _fresh_clone(tmp_path_factory.mktemp("clone"))
    assert not (clone / "workbench" / "labextension").exists()
    # the build hook builds the JupyterLab extension with npm (the clone has no build of it);
    # its npm script runs this environment's `jupyter-builder`
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                 os.environ.get("PATH", "")]))
    try:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "--no-index", "--quiet", "-w", str(out), str(clone)], env=env)
    finally:
        shutil.rmtree(clone, ignore_errors=True)  # node_modules alone is some 450 MB
    wheels = list(out.glob("tinyml_workbench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_the_example_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    folder = "workbench/data/examples/arduino-fruit-color/"
    for f in ("apple.csv", "banana.csv", "orange.csv", "README.md"):
        assert folder + f in names
    shipped = (ROOT / folder / "apple.csv").read_bytes()
    assert zipfile.ZipFile(wheel).read(folder + "apple.csv") == shipped


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed (``--no-deps``) into a fresh virtual environment; returns its python."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                   ).stdout.strip()
    # Dependencies from this interpreter, as plain directories (no .pth of theirs is run, so an
    # editable install of workbench there stays invisible).
    deps = [p for p in dict.fromkeys(site.getsitepackages() + [
        p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]) if Path(p).is_dir()]
    Path(purelib, "zz_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
          "--no-index", "--quiet", str(wheel)])
    return py


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """No PYTHONPATH (workbench comes from the wheel), Jupyter's own folders in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH")}
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime")):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(tmp_path / sub)
    return env


def test_example_dataset_loads_from_an_installed_wheel(installed, tmp_path):
    py = installed
    venv = py.parent.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import workbench, pathlib, sys\n"
        "from workbench.data.formats import example_dataset\n"
        "home = pathlib.Path(workbench.__file__).resolve()\n"
        f"assert home.is_relative_to({str(venv.resolve())!r}), home\n"
        "ds = example_dataset('fruit-color', 'fruit')\n"
        "print(sorted((m.label, m.samples) for m in ds))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = _run([str(py), "-c", code], cwd=elsewhere, env=env)
    rows = {f: sum(1 for line in (ROOT / "workbench/data/examples/arduino-fruit-color"
                                  / f"{f}.csv").read_text().splitlines()[1:] if line.strip())
            for f in ("apple", "banana", "orange")}
    assert out.stdout.strip() == str(sorted(rows.items()))
    assert (elsewhere / "fruit" / "dataset.json").is_file()


# The lessons (workbench/lessons/ in the wheel, from notebooks/ by hatch force-include)

def _lesson_names() -> list[str]:
    return sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_wheel_holds_every_lesson(wheel):
    zf = zipfile.ZipFile(wheel)
    shipped = sorted(n.split("/")[-1] for n in zf.namelist()
                     if n.startswith("workbench/lessons/") and n.count("/") == 2)
    assert shipped == _lesson_names(), "add the new lesson to force-include in pyproject.toml"
    for name in shipped:
        assert zf.read(f"workbench/lessons/{name}") == (ROOT / "notebooks" / name).read_bytes()
    # the workshop dashboard (`workbench dashboard`) ships beside them
    dashboard = "dashboards/workshop.ipynb"
    assert zf.read(f"workbench/lessons/{dashboard}") == (ROOT / "notebooks" / dashboard).read_bytes()
    # outputs the lessons write beside themselves stay out of the wheel
    assert not [n for n in zf.namelist() if n.startswith(("notebooks/", "workbench/lessons/out"))]


def test_lessons_are_found_and_copied_from_an_installed_wheel(installed, tmp_path):
    py = installed
    venv = py.parent.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import pathlib, workbench\n"
        "from workbench.lab.lessons import lesson_dir, lessons\n"
        "home = pathlib.Path(workbench.__file__).resolve().parent\n"
        "assert lesson_dir() == home / 'lessons', lesson_dir()\n"
        "from workbench.lab.dashboards import workshop_notebook\n"
        "assert workshop_notebook() == home / 'lessons' / 'dashboards' / 'workshop.ipynb'\n"
        "print(' '.join(lesson.name for lesson in lessons()))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = _run([str(py), "-c", code], cwd=elsewhere, env=env)
    assert out.stdout.split() == _lesson_names()
    # the installed command prepares a workspace from them
    _run([str(venv / "bin" / "workbench"), "lab", "--dir", str(elsewhere / "ws"), "--prepare-only"],
         cwd=elsewhere, env=env)
    assert sorted(p.name for p in (elsewhere / "ws").glob("*.ipynb")) == _lesson_names()


LABEXT = "share/jupyter/labextensions/tinyml-workbench/"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/tinyml-workbench.json"


def test_the_wheel_holds_the_prebuilt_lab_extension_and_its_server_config(wheel):
    archive = zipfile.ZipFile(wheel)
    data = next(n for n in archive.namelist() if n.endswith(".data/data/" + LABEXT + "package.json"))
    prefix = data[: -len(LABEXT + "package.json")]
    names = set(archive.namelist())
    assert prefix + LABEXT + "install.json" in names
    assert any(re.fullmatch(re.escape(prefix + LABEXT) + r"static/remoteEntry\.[0-9a-f]+\.js", n)
               for n in names)
    package = json.loads(archive.read(prefix + LABEXT + "package.json"))
    assert package["name"] == "tinyml-workbench"
    assert package["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert json.loads(archive.read(prefix + LABEXT + "install.json"))["packageName"] == \
        "tinyml-workbench"
    config = json.loads(archive.read(prefix + SERVER_CONFIG))
    assert config == {"ServerApp": {"jpserver_extensions": {"workbench.lab": True}}}
    # the built output goes in once, as shared data, not again inside the package
    assert not any(n.startswith("workbench/labextension/") for n in names)


def test_jupyter_from_the_installed_wheel_has_the_extension_enabled(installed, tmp_path):
    py = installed
    env = _clean_env(tmp_path)
    out = _run([str(py), "-m", "jupyterlab.labextensions", "list"], env=env, cwd=tmp_path)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert re.search(r"tinyml-workbench v[0-9.]+ enabled +OK", listing), listing
    out = _run([str(py), "-m", "jupyter_server.extension.serverextension", "list"], env=env,
               cwd=tmp_path)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert re.search(r"workbench\.lab +enabled", listing) and "workbench.lab  OK" in listing, listing

    # a JupyterLab started from it serves the extension (no build step ran) and its API
    with _lab_from_the_wheel(py, tmp_path) as (base, headers):
        req = urllib.request.Request(base + "/lab", headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            page = r.read().decode()
        config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>\s*(\{.*?\})\s*</script>', page,
                                      flags=re.S).group(1))
        (ext,) = [e for e in config["federated_extensions"] if e["name"] == "tinyml-workbench"]
        with urllib.request.urlopen(urllib.request.Request(
                f"{base}/lab/extensions/tinyml-workbench/{ext['load']}", headers=headers),
                timeout=30) as r:
            assert r.status == 200 and b"tinyml-workbench" in r.read()


LAB_TOKEN = "wheel-test"


@contextlib.contextmanager
def _lab_from_the_wheel(py: Path, tmp_path: Path):
    """A JupyterLab run by the installed wheel's python on a free port, its Jupyter folders in
    ``tmp_path`` (:func:`_clean_env`); the core application's assets are this interpreter's (the
    wheel's venv installs no jupyterlab). Yields ``(base_url, auth_headers)`` once the server
    extension answers ``/tinyml-workbench/boards`` with the catalog; stops the server (and its
    process group) on exit."""
    from jupyterlab.commands import get_app_dir

    env = _clean_env(tmp_path)
    # what `jupyter labextension disable` writes: no "official Jupyter news?" toast on the page
    labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
    labconfig.mkdir(exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "lab.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(py), "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
             f"--IdentityProvider.token={LAB_TOKEN}", f"--ServerApp.root_dir={tmp_path}",
             "--allow-root", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             f"--LabApp.app_dir={get_app_dir()}"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"token {LAB_TOKEN}"}
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                req = urllib.request.Request(base + "/tinyml-workbench/boards", headers=headers)
                with urllib.request.urlopen(req, timeout=5) as r:
                    assert any(b["id"] == "nano33ble" for b in json.load(r)["boards"])
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(0.5)
        yield base, headers
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # and any kernel it started
        proc.wait(5)


@pytest.fixture(scope="module")
def browser_harness():
    """tests/browser/conftest.py (Chromium's path and flags, why browser tests cannot run, the
    artifacts folder), loaded as a module of its own: the name ``conftest`` belongs to
    tests/conftest.py. Skips, before the wheel is built, when Chromium or Playwright is missing."""
    name = "workbench_browser_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests/browser/conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: dataclasses look their module up
        spec.loader.exec_module(module)
    harness = sys.modules[name]
    reason = harness._missing()
    if reason:
        pytest.skip(f"browser tests need it: {reason}")
    return harness


def _get(base: str, headers: dict, path: str):
    with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers),
                                timeout=30) as r:
        return json.load(r)


@pytest.mark.browser
def test_a_browser_shows_the_tinyml_panel_from_the_installed_wheel(browser_harness, installed,
                                                                   tmp_path, request):
    """Done when (issue 10): a wheel built from a fresh clone and installed with pip shows the
    TinyML panel in JupyterLab with no build step. Chromium opens the JupyterLab started from
    the wheel's environment; its left sidebar has the TinyML panel, which lists the catalog's
    boards and the packaged lessons as the server extension serves them."""
    harness = browser_harness
    from playwright.sync_api import sync_playwright

    shots = harness.artifact_dir(request)
    heading = json.loads((ROOT / "notebooks" / "00_hello_board.ipynb").read_text())["cells"][0]
    first_title = "".join(heading["source"]).splitlines()[0].lstrip("# ").strip()
    with _lab_from_the_wheel(installed, tmp_path) as (base, headers):
        boards = [b["name"] for b in _get(base, headers, "/tinyml-workbench/boards")["boards"]]
        lessons = _get(base, headers, "/tinyml-workbench/lessons")["lessons"]
        assert [lesson["name"] for lesson in lessons] == _lesson_names()

        def look() -> None:
            with sync_playwright() as pw:
                chromium = pw.chromium.launch(executable_path=harness.CHROMIUM,
                                              args=harness.CHROMIUM_ARGS)
                page = chromium.new_page(viewport={"width": 1280, "height": 900})
                try:
                    page.goto(f"{base}/lab?token={LAB_TOKEN}", timeout=120_000)
                    tab = page.locator(
                        ".jp-SideBar .lm-TabBar-tab[data-id='tinyml-workbench-panel']")
                    tab.wait_for(timeout=120_000)
                    listed = page.locator("#tinyml-workbench-panel .jp-TinyMLPanel-lesson")
                    for attempt in range(3):  # a click on a page still settling is sometimes lost
                        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
                            tab.click()
                        try:
                            listed.first.wait_for(timeout=20_000)
                            break
                        except Exception:  # playwright's TimeoutError: not shown yet
                            if attempt == 2:
                                raise
                    names = listed.evaluate_all("items => items.map(i => i.dataset.name)")
                    assert names == _lesson_names()
                    titles = listed.all_inner_texts()
                    assert titles == [lesson["title"] for lesson in lessons]
                    assert titles[0] == first_title  # e.g. "Lesson 0 · Hello, board"
                    menu = page.locator(
                        "#tinyml-workbench-panel .jp-TinyMLPanel-boardMenu option")
                    assert menu.all_inner_texts() == boards and boards
                    page.screenshot(path=str(shots / "panel-from-wheel.png"))
                except BaseException:
                    page.screenshot(path=str(shots / "failure.png"), full_page=True)
                    raise
                finally:
                    chromium.close()

        # In a full run the browser tests' session-wide Playwright (tests/browser/conftest.py)
        # is still open in this thread, and a second sync Playwright refuses to start in a
        # thread whose asyncio loop is running: this one gets a thread of its own.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(look).result()


# The `workbench` Voila template (shared data): Voila's lab template without CDN links

VOILA_TEMPLATE = "share/jupyter/voila/templates/workbench/"
TEMPLATE_SOURCE = ROOT / "workbench" / "lab" / "jupyter_data" / "voila" / "templates" / "workbench"


def test_the_wheel_holds_the_voila_template_as_shared_data(wheel):
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    files = sorted(p.name for p in TEMPLATE_SOURCE.iterdir())
    assert files == ["conf.json", "index.html.j2"]
    for name in files:
        (entry,) = [n for n in names if n.endswith(".data/data/" + VOILA_TEMPLATE + name)]
        assert archive.read(entry) == (TEMPLATE_SOURCE / name).read_bytes()   # one source


def _voila_without_the_template(tmp_path: Path) -> Path:
    """A Jupyter data folder with this interpreter's Voila and nbconvert data (the ``lab``
    and ``base`` templates the workbench template extends, Voila's widget bundles) but not
    any ``workbench`` template: the installed wheel's venv has no Voila of its own."""
    share = Path(sys.prefix, "share", "jupyter")
    data = tmp_path / "voila-data"
    for entry in share.iterdir():
        if entry.name in ("voila", "nbconvert"):
            for sub in entry.iterdir():
                if sub.name == "templates":
                    for template in sub.iterdir():
                        if template.name != "workbench":
                            (data / entry.name / "templates").mkdir(parents=True, exist_ok=True)
                            (data / entry.name / "templates" / template.name).symlink_to(template)
                else:
                    (data / entry.name).mkdir(parents=True, exist_ok=True)
                    (data / entry.name / sub.name).symlink_to(sub)
        else:
            data.mkdir(exist_ok=True)
            (data / entry.name).symlink_to(entry)
    return data


def test_voila_from_the_installed_wheel_serves_a_notebook_offline(installed, tmp_path):
    """`voila --template=workbench any.ipynb` works from an installed package: the page
    renders the notebook and links nothing outside the server."""
    import nbformat

    py = installed
    venv = py.parent.parent
    assert (venv / VOILA_TEMPLATE / "index.html.j2").is_file()
    env = _clean_env(tmp_path)
    env["JUPYTER_PATH"] = str(_voila_without_the_template(tmp_path))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("print('served by', 6 * 7)")]
    nbformat.write(nb, tmp_path / "any.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "voila.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(py), "-m", "voila", "any.ipynb", "--template=workbench", "--no-browser",
             f"--port={port}", "--Voila.ip=127.0.0.1"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as r:
                    status, page = r.status, r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(0.5)
        assert status == 200 and "served by 42" in page, log.read_text()[-4000:]
        # the lab template's Font Awesome links to a CDN are gone; its own copy is served
        links = re.findall(r"<link[^>]*>", page)
        assert not [link for link in links if "://" in link and "stylesheet" in link], links
        assert "cdn.jsdelivr.net" not in page
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_binders_post_build_checks_pass_on_the_installed_wheel(installed, tmp_path):
    """What binder/postBuild checks after its `pip install` (lessons, Voila template, both
    extensions enabled) holds for the wheel; tests/test_binder.py shows it fails without."""
    env = _clean_env(tmp_path)
    env["PATH"] = os.pathsep.join([str(installed.parent), env.get("PATH", "")])
    out = subprocess.run(["bash", str(ROOT / "binder" / "postBuild"), "--check"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    venv = installed.parent.parent
    assert f"Voila template in {venv}" in out.stdout
    assert "JupyterLab extension and server extension enabled" in out.stdout
