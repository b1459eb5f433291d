"""Live plot under a sensor stream: frames drawn per second and send-to-draw lag, in a real browser.

Run: ``python bench/liveplot.py`` (about two minutes; needs voila, jupyterlab, playwright,
plotly and Debian's ``/usr/bin/chromium``). Options: ``--seconds`` measured per widget
(10), ``--rate`` Hz (200), ``--no-plotly``, ``--no-jupyterlab``.

These figures are measured here and only here: the browser tests
(``tests/browser/test_liveplot_browser.py``) check that the plot keeps drawing and shows
the latest samples, never how fast.

Setup, the same for both widgets: a Voila dashboard whose kernel streams 6 channels of
synthetic IMU data at ``--rate`` Hz into a 10 s window (200 Hz: 6 traces x 2000 points
on screen, the window full from the start), opened in headless Chromium (software
rendering, no GPU). Each widget runs alone, in its own Voila server; LivePlot is also
measured in a notebook in JupyterLab (its output area, run with Run All Cells).

* ``LivePlot`` (workbench.ui): pushes go to the widget as they come; it sends at most
  60 binary messages a second with only the new samples; the page draws on a canvas.
* baseline: a plotly ``FigureWidget`` (6 ``Scatter`` traces) given the same window at
  the same 60 updates a second (``batch_update`` of x and y of every trace), as one
  would write a live plot with it.

Measured in the page over ``--seconds``: frames that showed a new update, per second
(``fps``), and for each update the time from its send in the kernel to the end of the
frame that drew it (``lag``; both clocks are this machine's), and for LivePlot the age of
the oldest sample a frame drew (``age``: from its push in the kernel to the frame). LivePlot's
frames come from its ``liveplot:frame`` event; plotly's from ``plotly_afterplot``, the send time
riding in ``layout.meta``. Also: updates the kernel sent per second. The machine's
load average is printed first: other processes on a 2-core machine change the figures.

Headline figures last, one per line, ``metric: value``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHANNELS = ["ax", "ay", "az", "gx", "gy", "gz"]
WINDOW_S = 10.0
UPDATES_PER_S = 60.0
WARMUP_S = 3.0
START_TIMEOUT_S = 120.0

STREAM = """\
import threading
import time

import ipywidgets as widgets
import numpy as np
from IPython.display import display

RATE_HZ = {rate}
WINDOW_S = {window}
CHANNELS = {channels!r}
FREQS = np.array([0.5, 0.8, 1.1, 1.7, 2.3, 3.1])
GAINS = 1.0 + 0.4 * np.arange(6)
stop = threading.Event()
sent = widgets.HTML()


def stream(sink):
    # samples arrive as real time passes, in small blocks; the first block fills the window
    rng = np.random.default_rng(1)
    t0, n = time.monotonic() - WINDOW_S, 0
    while not stop.is_set():
        due = int((time.monotonic() - t0) * RATE_HZ)
        if due > n:
            t = np.arange(n, due)[:, None] / RATE_HZ
            sink(GAINS * np.sin(2 * np.pi * FREQS * t) + 0.05 * rng.standard_normal((due - n, 6)))
            n = due
        time.sleep(0.004)


def report_sent(count):
    # updates sent by the kernel so far, for the benchmark to read from the page
    while not stop.is_set():
        sent.value = f'<span class="bench-sent" data-sent="{{count()}}" data-t="{{time.time()}}"></span>'
        time.sleep(0.5)
"""

LIVEPLOT = """\
from workbench.ui import LivePlot

plot = LivePlot(CHANNELS, rate_hz=RATE_HZ, window_s=WINDOW_S, units="m/s²",
                title="LivePlot: 6 traces x 2000 points", max_fps={fps})
threading.Thread(target=stream, args=(plot.push,), daemon=True).start()
threading.Thread(target=report_sent, args=(lambda: plot.messages_sent,), daemon=True).start()
display(plot, sent)
"""

PLOTLY = """\
import plotly.graph_objects as go

N = int(RATE_HZ * WINDOW_S)
ring = np.zeros((N, 6))
total = 0
lock = threading.Lock()
updates = 0


def keep(block):
    global total
    with lock:
        idx = np.arange(total, total + len(block)) % N
        ring[idx] = block
        total += len(block)


fig = go.FigureWidget(
    [go.Scatter(x=[], y=[], mode="lines", name=c, line=dict(width=1)) for c in CHANNELS],
    layout=dict(title="plotly FigureWidget: 6 traces x 2000 points", height=380,
                xaxis_title="time (s)", yaxis_title="m/s²", meta={{"sent_ms": 0}}))


def update():
    global updates
    period, next_t = 1.0 / {fps}, time.monotonic()
    while not stop.is_set():
        with lock:
            n = total
            window = np.roll(ring, -(n % N), axis=0)
        t = np.arange(n - N, n) / RATE_HZ
        with fig.batch_update():
            for i, trace in enumerate(fig.data):
                trace.x = t
                trace.y = window[:, i]
            fig.layout.meta = {{"sent_ms": time.time() * 1000}}
        updates += 1
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_t = time.monotonic()


threading.Thread(target=stream, args=(keep,), daemon=True).start()
while total < N:
    time.sleep(0.01)
threading.Thread(target=update, daemon=True).start()
threading.Thread(target=report_sent, args=(lambda: updates,), daemon=True).start()
display(fig, sent)
"""

LIVEPLOT_JS = """
(ms) => new Promise((resolve) => {
  const el = document.querySelector('.wb-liveplot');
  const lags = [], ages = [];
  let frames = 0;
  const t0 = performance.now();
  const on = (e) => { frames++; lags.push(...e.detail.lags_ms); ages.push(...e.detail.ages_ms); };
  el.addEventListener('liveplot:frame', on);
  setTimeout(() => {
    el.removeEventListener('liveplot:frame', on);
    resolve({ frames, seconds: (performance.now() - t0) / 1000, lags, ages });
  }, ms);
})
"""

PLOTLY_JS = """
(ms) => new Promise((resolve) => {
  const gd = document.querySelector('.js-plotly-plot');
  const lags = [];
  const seen = new Set();
  let frames = 0;
  const t0 = performance.now();
  const on = () => {
    const sent = gd.layout && gd.layout.meta && gd.layout.meta.sent_ms;
    if (!sent || seen.has(sent)) return;  // count each update once
    seen.add(sent);
    frames++;
    lags.push(Date.now() - sent);
  };
  gd.on('plotly_afterplot', on);
  setTimeout(() => {
    gd.removeListener('plotly_afterplot', on);
    resolve({ frames, seconds: (performance.now() - t0) / 1000, lags });
  }, ms);
})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


class Voila:
    """``python -m voila NOTEBOOK`` on a free port, Jupyter directories under ``root``."""

    def __init__(self, notebook: Path, root: Path):
        self.port = free_port()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            (root / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(root / sub)
        self.log = root / "voila.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={self.port}",
                 "--Voila.ip=127.0.0.1"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("voila exited:\n" + self.log.read_text()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("voila did not start:\n" + self.log.read_text()[-3000:]) from None
                time.sleep(0.3)
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        stop_server(self.proc)


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server, then kill its process group (its kernels)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its kernel, if still there
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(5)


class Lab:
    """``python -m jupyter lab`` serving ``root`` on a free port (no token), Jupyter
    directories under ``root``; :meth:`open_and_run` opens a notebook and runs all its cells
    from the menu bar, as a person would (the same steps as tests/browser/conftest.py)."""

    RUN_ALL_ATTEMPTS = 3

    def __init__(self, root: Path):
        self.port = free_port()
        self.root = root
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                         ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")):
            (root / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(root / sub)
        env.pop("JUPYTER_PATH", None)
        labconfig = root / "config" / "labconfig"  # no "Jupyter news?" toast over the page
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(
            '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
        self.notebooks = root / "notebooks"
        self.notebooks.mkdir(parents=True, exist_ok=True)
        self.log = root / "jupyterlab.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}",
                 "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
                 "--allow-root", f"--notebook-dir={self.notebooks}",
                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("jupyter lab exited:\n" + self.log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("jupyter lab did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.3)

    def open_and_run(self, page, notebook: str) -> None:
        page.goto(f"{self.url}/lab/tree/{notebook}", timeout=START_TIMEOUT_S * 1000)
        page.locator(".jp-Notebook").first.wait_for(timeout=START_TIMEOUT_S * 1000)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
            timeout=START_TIMEOUT_S * 1000)
        for attempt in range(self.RUN_ALL_ATTEMPTS):
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            try:  # every code cell queued: its prompt is [*]: or [n]:
                page.wait_for_function(
                    """() => {
                      const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
                      return p.length > 0 && p.every((e) => !/^\\[\\s*\\]:?$/.test(e.textContent.trim()));
                    }""", timeout=15_000)
                return
            except Exception:  # playwright's TimeoutError: JupyterLab dropped the menu click
                page.keyboard.press("Escape")
                if attempt == self.RUN_ALL_ATTEMPTS - 1:
                    raise

    def stop(self) -> None:
        stop_server(self.proc)


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def measure(browser, notebook: Path, root: Path, ready_js: str, measure_js: str, seconds: float,
            shot: Path, host: str = "voila") -> dict:
    """Serve ``notebook`` (``host``: ``"voila"`` or ``"jupyterlab"``), open it in a fresh
    browser context, let it run WARMUP_S, then measure for ``seconds``."""
    if host == "jupyterlab":
        server = Lab(root)
        (server.notebooks / notebook.name).write_bytes(notebook.read_bytes())
    else:
        server = Voila(notebook, root)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    try:
        page = context.new_page()
        if host == "jupyterlab":
            server.open_and_run(page, notebook.name)
        else:
            page.goto(server.url, timeout=START_TIMEOUT_S * 1000)
        page.wait_for_function(ready_js, timeout=START_TIMEOUT_S * 1000)
        time.sleep(WARMUP_S)

        def sent_now() -> tuple[float, float]:
            span = page.locator(".bench-sent").first
            return float(span.get_attribute("data-sent")), float(span.get_attribute("data-t"))

        sent0 = sent_now()
        m = page.evaluate(measure_js, int(seconds * 1000))
        sent1 = sent_now()
        page.screenshot(path=str(shot))
    finally:
        context.close()
        server.stop()
    lags = m["lags"] or [float("nan")]
    ages = m.get("ages") or [float("nan")]
    return {"fps": m["frames"] / m["seconds"], "lag_median": statistics.median(lags),
            "lag_p95": percentile(lags, 95), "lag_max": max(lags), "frames": m["frames"],
            "age_p95": percentile(ages, 95) if "ages" in m else None,
            "sent_per_s": (sent1[0] - sent0[0]) / max(1e-9, sent1[1] - sent0[1])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured per widget")
    ap.add_argument("--rate", type=float, default=200.0, help="sample rate, Hz (200: 2000 points)")
    ap.add_argument("--no-plotly", action="store_true", help="skip the plotly baseline")
    ap.add_argument("--no-jupyterlab", action="store_true",
                    help="skip LivePlot in JupyterLab (Voila only)")
    ap.add_argument("--shots", type=Path, default=None, help="folder for the page screenshots")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    stream = STREAM.format(rate=args.rate, window=WINDOW_S, channels=CHANNELS)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
          f"(1 min) before the run")
    print(f"stream: {len(CHANNELS)} channels at {args.rate:g} Hz, {WINDOW_S:g} s window = "
          f"{int(args.rate * WINDOW_S)} samples per trace; {UPDATES_PER_S:g} updates/s at most")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-liveplot-") as tmp, sync_playwright() as pw:
        tmp = Path(tmp)
        shots = args.shots or tmp
        shots.mkdir(parents=True, exist_ok=True)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            liveplot_ready = "() => Number(document.querySelector('.wb-liveplot')?.dataset.frames) > 10"
            runs = [("liveplot", "voila", LIVEPLOT.format(fps=UPDATES_PER_S), liveplot_ready,
                     LIVEPLOT_JS)]
            if not args.no_jupyterlab:
                runs.append(("liveplot_lab", "jupyterlab", LIVEPLOT.format(fps=UPDATES_PER_S),
                             liveplot_ready, LIVEPLOT_JS))
            if not args.no_plotly:
                runs.append(("plotly", "voila", PLOTLY.format(fps=UPDATES_PER_S),
                             "() => !!document.querySelector('.js-plotly-plot .scatterlayer .trace')",
                             PLOTLY_JS))
            for name, host, cell, ready, js in runs:
                nb = write_notebook(tmp / f"{name}.ipynb", [stream, cell])
                r = measure(browser, nb, tmp / name, ready, js, args.seconds, shots / f"{name}.png",
                            host=host)
                results[name] = r
                age = "" if r["age_p95"] is None else f", sample age p95 {r['age_p95']:.0f} ms"
                print(f"{name} ({host}): {r['fps']:.1f} frames/s with a new update ({r['frames']} "
                      f"in {args.seconds:g} s), kernel sent {r['sent_per_s']:.1f}/s; lag median "
                      f"{r['lag_median']:.0f} ms, p95 {r['lag_p95']:.0f} ms, max "
                      f"{r['lag_max']:.0f} ms{age}")
        finally:
            browser.close()
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")
    for name, r in results.items():
        print(f"{name}_fps: {r['fps']:.1f}")
        print(f"{name}_lag_ms_median: {r['lag_median']:.0f}")
        print(f"{name}_lag_ms_p95: {r['lag_p95']:.0f}")
        if r["age_p95"] is not None:
            print(f"{name}_age_ms_p95: {r['age_p95']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
