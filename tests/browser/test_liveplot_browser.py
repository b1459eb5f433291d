"""LivePlot in a real browser: it keeps up with a 6-channel stream in JupyterLab and in Voila.

The acceptance figures of the issue are checked as measured in the page: at least
30 frames with new data drawn per second, and under 100 ms from a message's send
(in the kernel) to the frame that drew it (both clocks are this machine's). The
kernel must also receive the figures the browser reports (``plot.fps``, ``plot.lag_ms``).

The stream: 6 traces at 200 Hz in a 10 s window, i.e. 6 x 2000 points on screen (the
window is filled before the live stream starts, so every measured frame draws all of
them); at 60 frames/s each frame has about 3 new samples, so every frame has something new.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

RATE_HZ = 200.0
WINDOW_S = 10.0
CHANNELS = ["ax", "ay", "az", "gx", "gy", "gz"]
#: Acceptance figures from the issue.
MIN_FPS = 30.0
MAX_LAG_MS = 100.0
#: Seconds the plot runs before it is measured, and how long it is measured.
WARMUP_S = 2.0
MEASURE_S = 4.0

SETUP = f"""\
import threading
import time

import ipywidgets as widgets
import numpy as np
from IPython.display import display

from workbench.ui import LivePlot

RATE_HZ = {RATE_HZ}
plot = LivePlot({CHANNELS!r}, rate_hz=RATE_HZ, window_s={WINDOW_S}, units="m/s²",
                title="Synthetic IMU: 6 traces x 2000 points")
stats = widgets.HTML()


def show_stats(change=None):
    # what the kernel received from the browser, shown back in the page
    stats.value = (f'<span class="py-stats" data-fps="{{plot.fps:.1f}}" '
                   f'data-lag-ms="{{plot.lag_ms}}" data-paused="{{plot.paused}}">kernel sees '
                   f'{{plot.fps:.0f}} fps, lag {{plot.lag_ms or 0:.0f}} ms</span>')


plot.observe(show_stats, names=["fps", "lag_ms", "paused"])
"""

FEED = """\
stop = threading.Event()
FREQS = np.array([0.5, 0.8, 1.1, 1.7, 2.3, 3.1])
GAINS = 1.0 + 0.4 * np.arange(6)


def feed():
    # samples arrive as real time passes, in small blocks, like a sensor stream;
    # the first block is the last 10 s, so the window is full (2000 points) from the start
    rng = np.random.default_rng(1)
    t0, n = time.monotonic() - plot.window_s, 0
    while not stop.is_set():
        due = int((time.monotonic() - t0) * RATE_HZ)
        if due > n:
            t = np.arange(n, due)[:, None] / RATE_HZ
            block = GAINS * np.sin(2 * np.pi * FREQS * t) + 0.05 * rng.standard_normal((due - n, 6))
            plot.push(block)
            n = due
        time.sleep(0.01)  # 100 pushes/s of ~2 samples: more often than frames are drawn


threading.Thread(target=feed, daemon=True).start()
display(plot, stats)
"""

MEASURE_JS = """
(el, ms) => new Promise((resolve) => {
  const lags = [], ages = [];
  let frames = 0;
  const t0 = performance.now();
  const on = (e) => { frames++; lags.push(...e.detail.lags_ms); ages.push(...e.detail.ages_ms); };
  el.addEventListener("liveplot:frame", on);
  setTimeout(() => {
    el.removeEventListener("liveplot:frame", on);
    resolve({ frames, seconds: (performance.now() - t0) / 1000, lags, ages });
  }, ms);
})
"""


def write_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    hidden = {"jupyter": {"source_hidden": True}}  # the plot on screen without scrolling
    nb.cells = [nbformat.v4.new_markdown_cell("# LivePlot under load"),
                nbformat.v4.new_code_cell(SETUP, metadata=hidden),
                nbformat.v4.new_code_cell(FEED, metadata=hidden)]
    nbformat.write(nb, path)
    return path


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def measure(page, timeout_ms: float = 90_000) -> dict:
    """Wait for the plot to draw, let it run, then count frames and lags for MEASURE_S."""
    plot = page.locator(".wb-liveplot").first
    try:
        plot.locator("canvas").wait_for(timeout=timeout_ms)
    except Exception:  # say what the page showed instead (an error output, a dead kernel)
        shown = page.locator("body").inner_text()[-3000:]
        raise AssertionError(f"the live plot never appeared; the page shows:\n{shown}") from None
    page.wait_for_function("() => Number(document.querySelector('.wb-liveplot')?.dataset.frames) > 10",
                           timeout=timeout_ms)
    time.sleep(WARMUP_S)
    m = plot.evaluate(MEASURE_JS, int(MEASURE_S * 1000))
    assert m["lags"], "no frame with new data was drawn while measuring"
    points = int(plot.get_attribute("data-points"))
    assert points >= RATE_HZ * WINDOW_S, f"only {points} points per trace on screen"
    return {
        "fps": m["frames"] / m["seconds"],
        "lag_median": statistics.median(m["lags"]),
        "lag_p95": percentile(m["lags"], 95),
        "age_p95": percentile(m["ages"], 95),
        "messages": len(m["lags"]),
    }


def check_drawing(page, shot: Path) -> None:
    """The canvas really changes on screen, and the page's own figures agree."""
    canvas = page.locator(".wb-liveplot canvas").first
    before = canvas.screenshot()
    time.sleep(0.5)
    after = canvas.screenshot(path=str(shot))
    assert before != after, "the canvas did not change in 0.5 s"
    box = canvas.bounding_box()
    assert box and box["width"] > 400 and box["height"] >= 300, box
    el = page.locator(".wb-liveplot").first
    assert float(el.get_attribute("data-fps")) > 0
    assert "fps" in page.locator(".wb-liveplot-status").first.inner_text()


def check_kernel_sees_stats(page, timeout_ms: float = 15_000) -> None:
    """The figures the browser reports arrive in the kernel (read back through a widget)."""
    page.wait_for_function(
        "() => Number(document.querySelector('.py-stats')?.dataset.fps) >= 1", timeout=timeout_ms)
    span = page.locator(".py-stats").first
    fps = float(span.get_attribute("data-fps"))
    lag = float(span.get_attribute("data-lag-ms"))
    assert fps > 0 and 0 <= lag < 10_000


def assert_keeps_up(where: str, m: dict) -> None:
    summary = (f"{where}: {m['fps']:.1f} frames/s with new data, lag median "
               f"{m['lag_median']:.1f} ms, p95 {m['lag_p95']:.1f} ms, sample age p95 "
               f"{m['age_p95']:.1f} ms over {m['messages']} messages (machine load average "
               f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other busy processes "
               "slow the browser, the server and the kernel alike)")
    print(summary)
    assert m["fps"] >= MIN_FPS, summary
    assert m["lag_median"] < MAX_LAG_MS, summary
    assert m["lag_p95"] < MAX_LAG_MS, summary


def test_liveplot_keeps_up_in_jupyterlab(lab_server, page, tmp_path):
    write_notebook(lab_server.root / "liveplot.ipynb")
    lab_server.run_until_shown(page, "liveplot.ipynb", ".wb-liveplot canvas")
    m = measure(page)
    check_drawing(page, tmp_path / "liveplot-jupyterlab.png")
    page.screenshot(path=str(tmp_path / "jupyterlab-page.png"))
    check_kernel_sees_stats(page)
    assert_keeps_up("JupyterLab", m)


def test_liveplot_keeps_up_in_voila(voila_server, page, tmp_path):
    url = voila_server(write_notebook(tmp_path / "liveplot.ipynb"))
    page.goto(url, timeout=90_000)
    m = measure(page)
    check_drawing(page, tmp_path / "liveplot-voila.png")
    page.screenshot(path=str(tmp_path / "voila-page.png"))
    check_kernel_sees_stats(page)
    assert_keeps_up("Voila", m)


def test_pause_button_drives_the_python_object(voila_server, page, tmp_path):
    """The widget's button sets ``plot.paused`` in the kernel; the canvas then stands still."""
    url = voila_server(write_notebook(tmp_path / "liveplot.ipynb"))
    page.goto(url, timeout=90_000)
    page.wait_for_function("() => Number(document.querySelector('.wb-liveplot')?.dataset.frames) > 5",
                           timeout=90_000)
    button = page.locator(".wb-liveplot-pause").first
    assert button.inner_text() == "Pause"
    button.click()
    page.wait_for_function("() => document.querySelector('.wb-liveplot-pause').textContent === 'Resume'")
    # the kernel has it (read back through a widget it updates) and stops sending
    page.wait_for_function("() => document.querySelector('.py-stats')?.dataset.paused === 'True'",
                           timeout=15_000)
    time.sleep(0.5)
    canvas = page.locator(".wb-liveplot canvas").first
    frozen = canvas.screenshot()
    time.sleep(0.7)
    assert canvas.screenshot() == frozen, "the canvas kept moving while paused"
    button.click()
    page.wait_for_function("() => document.querySelector('.py-stats')?.dataset.paused === 'False'",
                           timeout=15_000)
    time.sleep(0.5)
    assert canvas.screenshot() != frozen, "the canvas did not resume"


FRONTEND_JS = """
async () => {
  const mod = await import("http://wb.test/liveplot.js");
  const state = { channels: ["a", "b", "c"], rate_hz: 100, window_s: 10, units: "g", y_range: null,
                  title: "alone", max_points: 2000, paused: false, fps: 0, lag_ms: null, lag_ms_max: null };
  const handlers = {};
  const sent = [];
  let saves = 0;
  const model = {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); },
    on: (ev, f) => { (handlers[ev] ||= []).push(f); },
    off: (ev, f) => { handlers[ev] = (handlers[ev] || []).filter((g) => g !== f); },
    send: (m) => sent.push(m),
    save_changes: () => { saves++; },
  };
  const el = document.getElementById("w");
  const cleanup = mod.default.render({ model, el });
  const deliver = (msg, buffers) => (handlers["msg:custom"] || []).forEach((f) => f(msg, buffers));
  const header = (type, x0, n) => ({ type, seq: 0, x0, dx: 1, n, channels: 3, bucket: 1,
                                     capacity: 1000, total: x0 + n, sent_ms: Date.now(), pushed_ms: Date.now() });
  // a snapshot of 600 samples, then data in a buffer that starts at an odd byte offset
  const snap = new Float32Array(600 * 3).map((_, i) => Math.sin(i / 30) * (1 + (i % 3)));
  deliver(header("snapshot", 0, 600), [new DataView(snap.buffer)]);
  const raw = new ArrayBuffer(2 + 10 * 3 * 4);
  new Float32Array(raw.slice(2)).fill(0);
  const odd = new Uint8Array(raw, 2);
  odd.set(new Uint8Array(new Float32Array(30).fill(5).buffer));
  deliver(header("data", 600, 10), [new DataView(raw, 2, 120)]);
  await new Promise((r) => setTimeout(r, 1200));
  const before = { frames: Number(el.dataset.frames), points: Number(el.dataset.points),
                   fps: state.fps, saves, hello: sent[0], lag: state.lag_ms,
                   pixels: el.querySelector("canvas").toDataURL().length };
  cleanup();
  const left = Object.values(handlers).reduce((n, fs) => n + fs.length, 0);
  return { ...before, left, children: el.children.length };
}
"""


def test_the_front_end_alone_draws_reports_and_cleans_up(page):
    """liveplot.js in a bare page with a stand-in model: no Jupyter, just the ES module."""
    js = Path(__file__).parents[2] / "workbench" / "ui" / "liveplot.js"
    page.route("http://wb.test/liveplot.js",
               lambda route: route.fulfill(body=js.read_text(), content_type="text/javascript"))
    page.route("http://wb.test/", lambda route: route.fulfill(
        body="<html><body><div id='w' style='width:800px'></div></body></html>",
        content_type="text/html"))
    page.goto("http://wb.test/")
    r = page.evaluate(FRONTEND_JS)
    assert r["hello"] == {"type": "hello"}       # asks Python for a snapshot
    assert r["points"] == 610 and r["frames"] >= 1
    assert r["saves"] >= 2 and r["lag"] is not None and r["lag"] >= 0
    assert r["pixels"] > 5000                     # something was drawn
    assert r["left"] == 0 and r["children"] == 0  # cleanup: no listeners, no DOM left
