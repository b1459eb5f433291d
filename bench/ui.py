"""The Web Serial bridge in a real browser: throughput against the line rate, kernel idle and
while a cell runs, and the live plot's frames per second and lag through the bridge.

Run: ``PYTHONPATH=$PWD python bench/ui.py`` (about three minutes; needs jupyterlab, anywidget,
playwright, websockets and Debian's ``/usr/bin/chromium``). Options: ``--seconds`` per
measurement (6), ``--baud`` (115200).

Setup: a virtual nano33ble served over TCP (``python -m workbench.sim --tcp``) paces its port
at the line rate (baud / 10 bytes a second). JupyterLab in headless Chromium shows a
``WebSerial`` widget whose page has the tests' stand-in ``navigator.serial``
(``tests/browser/webserial_standin.py``: a port relaying over a WebSocket to the board), so the
bytes go board -> WebSocket -> page -> comm message -> kernel -> channel -> link. ipykernel 6:
no subshells, so a cell blocked on the board hears it through the jupyter-ui-poll pump.

Throughput: SAMPLES payload bytes a second of the microphone asked for 2.5 times what the line
carries (the line is the limit, as in ``bench/link.py``), measured in the kernel

* ``direct``: the same board opened as ``socket://`` in the kernel (the baseline, same run);
* ``idle``: through the bridge, read by a thread while no cell runs;
* ``blocked``: through the bridge, read by the cell itself (it waits on the board: pumped);
* ``busy``: a cell that does other work (``time.sleep``) while a thread streams: the bytes
  that reach the kernel during the cell (the page holds the rest, and it all arrives after:
  ``busy_lost`` counts samples missing from the stream's sequence, at a rate the line carries).

Live plot: 200 Hz of the accelerometer pushed into a ``LivePlot`` through the bridge by a
thread (kernel idle) and by the cell itself (blocked), and, as the baseline, by a thread
reading the board directly (``socket://``); frames with new data per second and
send-to-draw lag measured in the page, as ``bench/liveplot.py`` does.

Headline figures last, one per line, ``metric: value``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "browser")]

from liveplot import CHROMIUM, CHROMIUM_ARGS, LIVEPLOT_JS, Lab, percentile  # noqa: E402
from webserial_standin import FAKE_SERIAL_JS, WsRelay  # noqa: E402

CELL_TIMEOUT_MS = 60_000

SETUP = """\
import threading, time
import ipywidgets as widgets
import numpy as np
from IPython.display import display
from workbench.link import open_device, webserial
from workbench.protocol.messages import SAMPLES_HEADER
from workbench.ui import LivePlot, WebSerial

SECONDS, BAUD, TCP = {seconds}, {baud}, {tcp!r}
bridge = WebSerial("bench", baudrate=BAUD)
plot = LivePlot(["ax", "ay", "az"], rate_hz=200, window_s=5, title="accel through the bridge")
out = widgets.HTML()
display(bridge, plot, out)


def report(key, value):
    out.value += f'<span class="bench-{{key}}" data-value="{{value}}">{{key}}: {{value}}</span> '


def stream_rate(dev, seconds, factor=2.5):
    # SAMPLES payload bytes/s of the microphone at factor x the line rate; samples; lost
    with dev.stream("mic", rate_hz=factor * BAUD / 10 / 2) as s:
        s.read(timeout=10)
        t0, nbytes, first = time.perf_counter(), 0, True
        while time.perf_counter() - t0 < seconds:
            block = s.read(timeout=10)
            if first:
                t0, first = time.perf_counter(), False
                continue
            nbytes += SAMPLES_HEADER.size + block.raw.nbytes
        rate = nbytes / (time.perf_counter() - t0)
    return rate, s.stats.samples, s.stats.lost


def feed_plot(dev, seconds):
    with dev.stream("accel", rate_hz=200) as s:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            block = s.read(timeout=10)
            plot.push(block.raw.astype(np.float32))
"""

CELLS = {
    "direct": """\
direct = open_device(TCP, baudrate=BAUD)
report("direct", round(stream_rate(direct, SECONDS)[0]))
""",
    "plot_direct": """\
def run():
    feed_plot(direct, SECONDS + 4)
    direct.close()
    report("plot_direct_done", 1)
threading.Thread(target=run).start()
""",
    "open": """\
dev = bridge.open_device()
report("open", dev.info.board_id)
""",
    "blocked": """\
report("blocked", round(stream_rate(dev, SECONDS)[0]))
""",
    "busy": """\
ch = webserial.find("bench")
with dev.stream("mic", rate_hz=0.8 * BAUD / 10 / 2) as s:
    time.sleep(1)
    rx0, t0 = ch.rx_bytes, time.perf_counter()
    time.sleep(SECONDS)
    rx1, t1 = ch.rx_bytes, time.perf_counter()
while s.read(timeout=0.5) is not None:
    pass
report("busy", round((rx1 - rx0) / (t1 - t0)))
report("busy_lost", s.stats.lost)
report("busy_samples", s.stats.samples)
""",
    "idle": """\
threading.Thread(target=lambda: report("idle", round(stream_rate(dev, SECONDS)[0]))).start()
""",
    "plot_idle": """\
threading.Thread(target=lambda: (feed_plot(dev, SECONDS + 4), report("plot_idle_done", 1))).start()
""",
    "plot_blocked": """\
feed_plot(dev, SECONDS + 4)
report("plot_blocked_done", 1)
""",
}


def run_cell(page, index: int, attempts: int = 4) -> None:
    """Run code cell ``index`` (0-based) alone: click into it, Shift+Enter; again if its
    prompt shows it was not queued (a fresh JupyterLab sometimes drops the first run)."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    prompt = cell.locator(".jp-InputPrompt").first
    for _ in range(attempts):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function("(e) => !/^\\[\\s*\\]:?$/.test(e.textContent.trim())",
                                   arg=prompt.element_handle(), timeout=10_000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: not queued, try again
            continue
    raise RuntimeError(f"cell {index} never ran")


def value(page, key: str) -> str:
    sel = f".bench-{key}"
    page.locator(sel).first.wait_for(state="attached", timeout=CELL_TIMEOUT_MS)
    return page.locator(sel).first.get_attribute("data-value")


def plot_figures(page, seconds: float) -> dict:
    time.sleep(2)  # the stream is under way
    m = page.evaluate(LIVEPLOT_JS, int(seconds * 1000))
    lags = m["lags"] or [float("nan")]
    return {"fps": m["frames"] / m["seconds"], "lag_median": statistics.median(lags),
            "lag_p95": percentile(lags, 95)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--baud", type=int, default=115200)
    args = ap.parse_args(argv)
    import nbformat
    from playwright.sync_api import sync_playwright

    line = args.baud / 10
    res: dict[str, float] = {}
    plots: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        board = subprocess.Popen([sys.executable, "-m", "workbench.sim", "--board", "nano33ble",
                                  "--tcp", "0", "--baud", str(args.baud), "--flash",
                                  str(tmp / "b.flash")], stdout=subprocess.PIPE, text=True,
                                 env=dict(os.environ))
        host, port = board.stdout.readline().split(" ", 1)[1].strip().rsplit(":", 1)
        relay = WsRelay((host, int(port)))
        lab = Lab(tmp / "lab")
        names = list(CELLS)
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        setup = SETUP.format(seconds=args.seconds, baud=args.baud, tcp=f"socket://{host}:{port}")
        nb.cells = [nbformat.v4.new_code_cell(setup)] + [
            nbformat.v4.new_code_cell(CELLS[n]) for n in names]
        nbformat.write(nb, lab.notebooks / "bench.ipynb")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 1400})
                page.add_init_script(FAKE_SERIAL_JS % {"ws": json.dumps(relay.url),
                                                       "mode": '"relay"'})
                page.goto(f"{lab.url}/lab/tree/bench.ipynb", timeout=120_000)
                page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first \
                    .wait_for(timeout=120_000)
                run_cell(page, 0)
                try:
                    page.locator(".wb-webserial").first.wait_for(timeout=CELL_TIMEOUT_MS)
                except Exception:
                    page.screenshot(path="/tmp/webserial-bench-fail.png")
                    raise

                def cell(name: str) -> None:
                    run_cell(page, 1 + names.index(name))

                cell("direct")
                res["direct"] = float(value(page, "direct"))
                cell("plot_direct")
                plots["direct"] = plot_figures(page, args.seconds)
                value(page, "plot_direct_done")
                cell("open")
                page.locator(".wb-ws-connect").first.click()
                value(page, "open")
                cell("blocked")
                res["blocked"] = float(value(page, "blocked"))
                cell("busy")
                res["busy"] = float(value(page, "busy"))
                res["busy_lost"] = float(value(page, "busy_lost"))
                res["busy_samples"] = float(value(page, "busy_samples"))
                cell("idle")
                res["idle"] = float(value(page, "idle"))
                cell("plot_idle")
                plots["idle"] = plot_figures(page, args.seconds)
                value(page, "plot_idle_done")
                cell("plot_blocked")
                plots["blocked"] = plot_figures(page, args.seconds)
                value(page, "plot_blocked_done")
                page.screenshot(path=str(tmp / "ui.png"))
                browser.close()
        finally:
            lab.stop()
            relay.stop()
            board.terminate()
            board.wait(5)
    print(f"{args.baud} baud: line rate {line:,.0f} B/s; direct {res['direct']:,.0f} B/s; "
          f"through the bridge idle {res['idle']:,.0f}, cell blocked on the board "
          f"{res['blocked']:,.0f}, during a busy cell {res['busy']:,.0f} B/s "
          f"({res['busy_samples']:.0f} samples, {res['busy_lost']:.0f} lost)", file=sys.stderr)
    for k, p in plots.items():
        print(f"live plot {k}: {p['fps']:.1f} fps, lag median {p['lag_median']:.0f} ms, "
              f"p95 {p['lag_p95']:.0f} ms", file=sys.stderr)
    print(f"direct_fraction_of_line_rate: {res['direct'] / line:.3f}")
    for k in ("idle", "blocked", "busy"):
        print(f"bridge_{k}_fraction_of_line_rate: {res[k] / line:.3f}")
        print(f"bridge_{k}_vs_direct: {res[k] / res['direct']:.3f}")
    print(f"bridge_busy_samples_lost: {res['busy_lost']:.0f}")
    for k, p in plots.items():
        print(f"liveplot_{k}_fps: {p['fps']:.1f}")
        print(f"liveplot_{k}_lag_ms_median: {p['lag_median']:.0f}")
        print(f"liveplot_{k}_lag_ms_p95: {p['lag_p95']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
