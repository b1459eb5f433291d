"""LivePlot in a real browser: it keeps drawing a 6-channel stream in JupyterLab and in Voila.

What is checked is behaviour, never speed: frames with new data keep arriving while the
kernel streams; the canvas changes while data arrives and stands still when it stops;
every message the kernel sent reaches the page (so the last samples pushed are the ones
on screen); the window holds all its points; the figures the browser reports
(``plot.fps``, ``plot.lag_ms``) reach the kernel; the pause button drives the Python
object. How fast it draws (frames per second, send-to-draw lag, sample age) is measured
by ``bench/liveplot.py``, not here: a loaded machine must not fail a test.

The stream: 6 traces at 200 Hz in a 10 s window, i.e. 6 x 2000 points on screen (the
window is filled by the first push). The kernel starts streaming once the page's view
has said hello, so every message it sends goes to that view; a "Stop feed" button in
the notebook ends the stream and flushes what is pending.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

RATE_HZ = 200.0
WINDOW_S = 10.0
CHANNELS = ["ax", "ay", "az", "gx", "gy", "gz"]
#: Frames with new data that must arrive while the kernel streams.
FRAMES_WANTED = 20
#: Generous limits for things to happen at all (liveness, not speed).
SHOW_TIMEOUT_MS = 90_000
ARRIVE_TIMEOUT_MS = 60_000

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
final = widgets.HTML()


def show_stats(change=None):
    # what the kernel received from the browser, shown back in the page
    stats.value = (f'<span class="py-stats" data-fps="{{plot.fps:.1f}}" '
                   f'data-lag-ms="{{plot.lag_ms}}" data-paused="{{plot.paused}}" '
                   f'data-sent="{{plot.messages_sent}}">kernel sees '
                   f'{{plot.fps:.0f}} fps, lag {{plot.lag_ms or 0:.0f}} ms</span>')


plot.observe(show_stats, names=["fps", "lag_ms", "paused"])
"""

FEED = """\
stop = threading.Event()
FREQS = np.array([0.5, 0.8, 1.1, 1.7, 2.3, 3.1])
GAINS = 1.0 + 0.4 * np.arange(6)


def feed():
    # wait for the page's view: its hello is answered by a snapshot (the first message)
    while plot.messages_sent == 0 and not stop.is_set():
        time.sleep(0.01)
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


def stop_feed(_button=None):
    stop.set()
    feeder.join(5)
    plot.flush()
    final.value = (f'<span class="py-final" data-sent="{plot.messages_sent}" '
                   f'data-pushed="{plot.samples_pushed}">stopped after '
                   f'{plot.samples_pushed} samples</span>')


feeder = threading.Thread(target=feed, daemon=True)
feeder.start()
stop_button = widgets.Button(description="Stop feed")
stop_button.on_click(stop_feed)
display(plot, stats, stop_button, final)
"""

COUNT_FRAMES_JS = """
(el, [n, ms]) => new Promise((resolve) => {
  const lags = [];
  let frames = 0;
  const done = () => { el.removeEventListener("liveplot:frame", on); resolve({ frames, lags }); };
  const on = (e) => { frames++; lags.push(...e.detail.lags_ms); if (frames >= n) done(); };
  el.addEventListener("liveplot:frame", on);
  setTimeout(done, ms);
})
"""

FRAMES = "Number(document.querySelector('.wb-liveplot')?.dataset.frames || 0)"


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


def wait_shown(page) -> None:
    """Wait until the plot has drawn a few frames; say what the page shows if it never does."""
    plot = page.locator(".wb-liveplot").first
    try:
        plot.locator("canvas").wait_for(timeout=SHOW_TIMEOUT_MS)
    except Exception:  # say what the page showed instead (an error output, a dead kernel)
        shown = page.locator("body").inner_text()[-3000:]
        raise AssertionError(f"the live plot never appeared; the page shows:\n{shown}") from None
    page.wait_for_function(f"() => {FRAMES} > 10", timeout=SHOW_TIMEOUT_MS)


def wait_new_frames(page, n: int = 2) -> None:
    """Wait until the plot has drawn ``n`` more frames (it reports its count periodically)."""
    now = page.evaluate(f"() => {FRAMES}")
    page.wait_for_function(f"() => {FRAMES} >= {now + n}", timeout=ARRIVE_TIMEOUT_MS)


def check_frames_keep_arriving(page) -> None:
    """While the kernel streams, frames with new data keep coming, each drawing at least one
    new message, and the window holds all its points."""
    plot = page.locator(".wb-liveplot").first
    m = plot.evaluate(COUNT_FRAMES_JS, [FRAMES_WANTED, ARRIVE_TIMEOUT_MS])
    assert m["frames"] >= FRAMES_WANTED, (
        f"only {m['frames']} frames with new data in {ARRIVE_TIMEOUT_MS / 1000:g} s")
    assert len(m["lags"]) >= m["frames"]  # every counted frame drew a new message
    points = int(plot.get_attribute("data-points"))
    assert points >= RATE_HZ * WINDOW_S, f"only {points} points per trace on screen"


def check_drawing(page, shot: Path) -> None:
    """The canvas really changes on screen while data arrives, and the page reports it."""
    canvas = page.locator(".wb-liveplot canvas").first
    before = canvas.screenshot()
    wait_new_frames(page)
    after = canvas.screenshot(path=str(shot))
    assert before != after, "the canvas did not change across new frames"
    box = canvas.bounding_box()
    assert box and box["width"] > 400 and box["height"] >= 300, box
    el = page.locator(".wb-liveplot").first
    assert float(el.get_attribute("data-fps")) > 0
    assert "fps" in page.locator(".wb-liveplot-status").first.inner_text()


def check_kernel_sees_stats(page) -> None:
    """The figures the browser reports arrive in the kernel (read back through a widget)."""
    page.wait_for_function(
        "() => Number(document.querySelector('.py-stats')?.dataset.fps) > 0",
        timeout=ARRIVE_TIMEOUT_MS)
    span = page.locator(".py-stats").first
    assert float(span.get_attribute("data-fps")) > 0
    assert float(span.get_attribute("data-lag-ms")) >= 0


def check_latest_samples_shown(page) -> None:
    """Stop the stream: every message the kernel sent (the last one carries the last samples
    pushed) reaches the page, and the canvas then stands still."""
    page.get_by_role("button", name="Stop feed").click()
    page.locator(".py-final").first.wait_for(timeout=ARRIVE_TIMEOUT_MS)
    final = page.locator(".py-final").first
    sent = int(final.get_attribute("data-sent"))
    pushed = int(final.get_attribute("data-pushed"))
    assert pushed >= RATE_HZ * WINDOW_S and sent > 1
    # the page reports the messages it received with its other figures, periodically
    try:
        page.wait_for_function(
            f"() => Number(document.querySelector('.wb-liveplot')?.dataset.messages) >= {sent}",
            timeout=ARRIVE_TIMEOUT_MS)
    except Exception:  # playwright's TimeoutError: say how many arrived
        got = page.locator(".wb-liveplot").first.get_attribute("data-messages")
        raise AssertionError(f"the kernel sent {sent} messages, the page received {got}") \
            from None
    assert int(page.locator(".wb-liveplot").first.get_attribute("data-messages")) == sent
    canvas = page.locator(".wb-liveplot canvas").first
    still = canvas.screenshot()
    page.wait_for_timeout(1000)
    assert canvas.screenshot() == still, "the canvas kept changing after the stream stopped"


def test_liveplot_keeps_drawing_in_jupyterlab(lab_server, page, shots, tmp_path):
    write_notebook(lab_server.root / "liveplot.ipynb")
    lab_server.run_until_shown(page, "liveplot.ipynb", ".wb-liveplot canvas")
    wait_shown(page)
    check_frames_keep_arriving(page)
    check_drawing(page, shots / "liveplot-jupyterlab.png")
    page.screenshot(path=str(shots / "jupyterlab-page.png"))
    check_kernel_sees_stats(page)
    check_latest_samples_shown(page)


def test_liveplot_keeps_drawing_in_voila(voila_server, page, shots, tmp_path):
    url = voila_server(write_notebook(tmp_path / "liveplot.ipynb"))
    page.goto(url, timeout=SHOW_TIMEOUT_MS)
    wait_shown(page)
    check_frames_keep_arriving(page)
    check_drawing(page, shots / "liveplot-voila.png")
    page.screenshot(path=str(shots / "voila-page.png"))
    check_kernel_sees_stats(page)
    check_latest_samples_shown(page)


def test_pause_button_drives_the_python_object(voila_server, page, shots, tmp_path):
    """The widget's button sets ``plot.paused`` in the kernel; the canvas then stands still."""
    url = voila_server(write_notebook(tmp_path / "liveplot.ipynb"))
    page.goto(url, timeout=SHOW_TIMEOUT_MS)
    page.wait_for_function(f"() => {FRAMES} > 5", timeout=SHOW_TIMEOUT_MS)
    button = page.locator(".wb-liveplot-pause").first
    assert button.inner_text() == "Pause"
    button.click()
    page.wait_for_function("() => document.querySelector('.wb-liveplot-pause').textContent === 'Resume'")
    # the kernel has it (read back through a widget it updates) and stops sending
    page.wait_for_function("() => document.querySelector('.py-stats')?.dataset.paused === 'True'",
                           timeout=15_000)
    # the messages the kernel sent before it paused have all arrived (and are drawn)
    sent = int(page.locator(".py-stats").first.get_attribute("data-sent"))
    page.wait_for_function(
        f"() => Number(document.querySelector('.wb-liveplot')?.dataset.messages) >= {sent}",
        timeout=ARRIVE_TIMEOUT_MS)
    page.wait_for_timeout(300)
    canvas = page.locator(".wb-liveplot canvas").first
    frozen = canvas.screenshot()
    page.wait_for_timeout(700)
    assert canvas.screenshot() == frozen, "the canvas kept moving while paused"
    button.click()
    page.wait_for_function("() => document.querySelector('.py-stats')?.dataset.paused === 'False'",
                           timeout=15_000)
    wait_new_frames(page)
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
                                     capacity: 1000, total: x0 + n, sent_ms: Date.now(),
                                     pushed_ms: Date.now() });
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


def test_the_front_end_alone_draws_reports_and_cleans_up(page, shots):
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
