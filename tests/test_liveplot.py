"""LivePlot on the Python side, without a kernel: what it sends, when, and in what shape.

The widget is given a recording comm (ipywidgets takes ``comm=`` like any trait) and a
fake clock, so every message can be checked and the pacing is deterministic.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("anywidget")

from recording_comm import RecordingComm  # noqa: E402
from traitlets import TraitError  # noqa: E402

from workbench.ui import LivePlot  # noqa: E402
from workbench.ui.liveplot import minmax_decimate  # noqa: E402


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTimers:
    """Stands in for threading.Timer: keeps what was scheduled until the test fires it."""

    def __init__(self):
        self.pending: list[FakeTimers.Timer] = []

    class Timer:
        def __init__(self, owner, delay, fn):
            self.owner, self.delay, self.fn, self.daemon = owner, delay, fn, False

        def start(self):
            self.owner.pending.append(self)

        def cancel(self):
            if self in self.owner.pending:
                self.owner.pending.remove(self)

    def __call__(self, delay, fn):
        return FakeTimers.Timer(self, delay, fn)

    def fire(self):
        due, self.pending = self.pending, []
        for t in due:
            t.fn()


@pytest.fixture
def clock():
    return FakeClock()


def make(clock, channels=("ax", "ay", "az"), rate_hz=100.0, timers=None, **kw):
    rec = RecordingComm()
    timer = {} if clock is time.monotonic else {"timer": timers or FakeTimers()}
    plot = LivePlot(list(channels), rate_hz=rate_hz, clock=clock, comm=rec, **timer, **kw)
    rec.published.clear()
    return plot, rec


def points(content: dict, buffers: list[bytes]) -> np.ndarray:
    return np.frombuffer(buffers[0], np.float32).reshape(content["n"], content["channels"])


def test_importing_workbench_ui_does_not_import_anywidget():
    code = ("import sys, workbench.ui as ui; assert 'anywidget' not in sys.modules; "
            "ui.LivePlot; assert 'anywidget' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_traits_are_synced_with_help_and_the_esm_is_the_sibling_file(clock):
    plot, _ = make(clock)
    for name in ("channels", "rate_hz", "window_s", "units", "y_range", "title", "max_points",
                 "paused", "fps", "lag_ms", "lag_ms_max"):
        trait = plot.traits()[name]
        assert trait.metadata.get("sync"), name
        assert trait.help, name
    assert "export default { render }" in plot._esm
    state = plot.get_state()
    assert state["channels"] == ["ax", "ay", "az"] and state["rate_hz"] == 100.0
    assert state["y_range"] is None and state["window_s"] == 10.0 and state["max_points"] == 2000


def test_first_push_sends_a_snapshot_then_only_new_samples(clock):
    plot, rec = make(clock)
    a = np.arange(30, dtype=np.float32).reshape(10, 3)
    plot.push(a)
    (c, bufs), = rec.custom()
    assert c["type"] == "snapshot" and c["x0"] == 0 and c["dx"] == 1 and c["n"] == 10
    assert c["bucket"] == 1 and c["capacity"] == 1000 and c["total"] == 10
    assert abs(c["sent_ms"] - time.time() * 1000) < 5000 and c["pushed_ms"] <= c["sent_ms"]
    np.testing.assert_array_equal(points(c, bufs), a)

    clock.now += 1.0
    b = np.full((4, 3), 7.5)
    plot.push(b)
    c, bufs = rec.custom()[-1]
    assert c["type"] == "data" and c["x0"] == 10 and c["n"] == 4 and c["seq"] == 1
    np.testing.assert_array_equal(points(c, bufs), b)


def test_pushes_faster_than_max_fps_are_coalesced(clock):
    plot, rec = make(clock, max_fps=50.0)
    plot.push(np.zeros((1, 3)))
    for i in range(1, 6):            # five pushes within 10 ms: held back
        clock.now += 0.002
        plot.push(np.full((1, 3), i))
    assert len(rec.custom()) == 1
    clock.now += 0.011               # 21 ms after the first send: one message with all five
    plot.push(np.full((1, 3), 6))
    assert len(rec.custom()) == 2
    c, bufs = rec.custom()[-1]
    assert c["x0"] == 1 and c["n"] == 6
    np.testing.assert_array_equal(points(c, bufs)[:, 0], [1, 2, 3, 4, 5, 6])
    plot.close()


def test_held_back_samples_go_when_the_timer_fires_and_the_rate_holds(clock):
    timers = FakeTimers()
    plot, rec = make(clock, max_fps=50.0, timers=timers)
    plot.push(np.zeros((1, 3)))
    clock.now += 0.004
    plot.push(np.ones((1, 3)))
    (timer,) = timers.pending
    assert timer.daemon and timer.delay == pytest.approx(0.016)
    clock.now += 0.019                # the timer fires 3 ms late...
    timers.fire()
    assert rec.custom()[-1][0]["x0"] == 1
    clock.now += 0.018                # ...and the next send is not pushed back by those 3 ms
    plot.push(np.ones((1, 3)))
    assert rec.custom()[-1][0]["x0"] == 2 and not timers.pending
    # a steady stream pushed every 2 ms for 1 s gives max_fps messages, no more, no fewer
    start = len(rec.custom())
    for _ in range(500):
        clock.now += 0.002
        plot.push(np.ones((1, 3)))
    assert len(rec.custom()) - start in (49, 50, 51)


def test_a_held_back_push_is_sent_by_the_timer_without_another_push():
    plot, rec = make(time.monotonic, max_fps=20.0)
    plot.push(np.zeros((2, 3)))
    plot.push(np.ones((2, 3)))       # within 50 ms of the first: deferred
    assert len(rec.custom()) == 1
    deadline = time.monotonic() + 2
    while len(rec.custom()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    c, bufs = rec.custom()[-1]
    assert c["type"] == "data" and c["x0"] == 2 and c["n"] == 2
    np.testing.assert_array_equal(points(c, bufs), np.ones((2, 3)))


def test_minmax_decimation_keeps_peaks_and_their_order():
    x = np.zeros((12, 2), np.float32)
    x[2, 0] = 9.0      # spike up in bucket 0
    x[1, 1] = -4.0     # dip before a rise in bucket 0
    x[3, 1] = 3.0
    x[7, 0] = -5.0     # dip in bucket 1
    out = minmax_decimate(x, 6)
    assert out.shape == (4, 2)
    np.testing.assert_array_equal(out[:, 0], [0, 9, 0, -5])  # 0 at 6 comes before -5 at 7
    np.testing.assert_array_equal(out[:, 1], [-4, 3, 0, 0])
    assert minmax_decimate(x, 1) is x
    assert minmax_decimate(x[:5], 6).shape == (0, 2)   # no whole bucket yet


def test_window_larger_than_max_points_is_decimated_for_display_not_storage(clock):
    # 6 traces, 1 kHz, 10 s: 10000 samples kept, 2000 points per trace sent
    plot, rec = make(clock, channels=[f"c{i}" for i in range(6)], rate_hz=1000.0, max_points=2000)
    assert plot.capacity == 10_000 and plot.bucket == 10
    rng = np.random.default_rng(0)
    data = rng.normal(size=(10_000, 6)).astype(np.float32)
    data[4321, 3] = 50.0                  # a one-sample spike
    plot.push(data)
    c, bufs = rec.custom()[-1]
    p = points(c, bufs)
    assert c["type"] == "snapshot" and c["bucket"] == 10 and c["dx"] == 5.0
    assert p.shape == (2000, 6) and c["capacity"] >= 2000
    assert p[:, 3].max() == 50.0          # the spike survives decimation
    np.testing.assert_array_equal(plot.values, data)   # storage is full resolution
    np.testing.assert_allclose(plot.times[[0, -1]], [0.0, 9.999])

    # new data: only whole buckets are sent; the remainder waits for the next message
    clock.now += 1
    plot.push(data[:25])
    c, bufs = rec.custom()[-1]
    assert c["type"] == "data" and c["x0"] == 10_000 and c["n"] == 4    # 2 buckets -> 4 points
    np.testing.assert_array_equal(points(c, bufs), minmax_decimate(data[:20], 10))
    clock.now += 1
    plot.push(data[25:30])
    c, bufs = rec.custom()[-1]
    assert c["x0"] == 10_020 and c["n"] == 2
    np.testing.assert_array_equal(points(c, bufs), minmax_decimate(data[20:30], 10))


def test_ring_keeps_the_last_window_only(clock):
    plot, _ = make(clock, channels=["v"], rate_hz=10.0, window_s=2.0)
    plot.push(np.arange(15.0))            # a 1-D block is fine for one channel
    plot.push(np.arange(15.0, 30.0)[:, None])
    assert plot.samples_pushed == 30
    np.testing.assert_array_equal(plot.values[:, 0], np.arange(10.0, 30.0))


def test_int_blocks_are_plotted_as_float32(clock):
    plot, rec = make(clock, channels=["a", "b"])
    plot.push(np.array([[1, -2], [300, 4]], dtype=np.int16))
    c, bufs = rec.custom()[-1]
    np.testing.assert_array_equal(points(c, bufs), [[1, -2], [300, 4]])


def test_push_rejects_wrong_shapes_and_types(clock):
    plot, _ = make(clock)
    with pytest.raises(ValueError, match=r"expected shape \(n, 3\)"):
        plot.push(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        plot.push(np.zeros(4))
    with pytest.raises(TypeError):
        plot.push(np.array([["a", "b", "c"]]))


@pytest.mark.parametrize("name,value", [
    ("channels", []), ("channels", ["a", "a"]), ("rate_hz", 0.0), ("rate_hz", float("nan")),
    ("window_s", -1.0), ("max_points", 4), ("y_range", (1.0, 1.0)), ("y_range", (2.0, 1.0)),
    ("max_fps", 0.0), ("window_s", 1e9),
])
def test_invalid_traits_are_refused(clock, name, value):
    plot, _ = make(clock)
    with pytest.raises(TraitError):
        setattr(plot, name, value)


def test_y_range_accepts_a_list_from_the_browser(clock):
    plot, rec = make(clock)
    rec.from_front({"method": "update", "state": {"y_range": [-2, 2]}, "buffer_paths": []})
    assert plot.y_range == (-2.0, 2.0)


def test_stats_are_read_only_in_python_but_set_by_the_browser(clock):
    plot, rec = make(clock)
    with pytest.raises(TraitError):
        plot.fps = 60.0
    rec.from_front({"method": "update", "buffer_paths": [],
                    "state": {"fps": 59.5, "lag_ms": 12.5, "lag_ms_max": 30.0}})
    assert (plot.fps, plot.lag_ms, plot.lag_ms_max) == (59.5, 12.5, 30.0)


def test_hello_from_a_new_view_gets_a_snapshot(clock):
    plot, rec = make(clock)
    plot.push(np.ones((5, 3)))
    clock.now += 1
    plot.push(np.ones((5, 3)) * 2)
    rec.from_front({"method": "custom", "content": {"type": "hello"}})
    c, bufs = rec.custom()[-1]
    assert c["type"] == "snapshot" and c["x0"] == 0 and c["n"] == 10


def test_pause_keeps_samples_and_resume_sends_a_snapshot(clock):
    plot, rec = make(clock)
    plot.push(np.ones((5, 3)))
    n = len(rec.custom())
    plot.paused = True
    clock.now += 1
    plot.push(np.ones((5, 3)))
    assert len(rec.custom()) == n and plot.samples_pushed == 10
    plot.paused = False
    c, _ = rec.custom()[-1]
    assert c["type"] == "snapshot" and c["n"] == 10


def test_clear_forgets_everything_here_and_in_the_browser(clock):
    plot, rec = make(clock)
    plot.push(np.ones((5, 3)))
    plot.clear()
    assert rec.custom()[-1][0]["type"] == "clear"
    assert plot.samples_pushed == 0 and plot.values.shape == (0, 3)
    clock.now += 1
    plot.push(np.ones((2, 3)))
    c, _ = rec.custom()[-1]
    assert c["type"] == "data" and c["x0"] == 0 and c["n"] == 2


def test_configure_changes_several_traits_in_one_update_and_resnapshots(clock):
    plot, rec = make(clock)
    plot.push(np.ones((5, 3)))
    rec.published.clear()
    plot.configure(channels=["gx", "gy"], rate_hz=50.0, units="dps")
    updates = [d for kind, d, _ in rec.published if kind == "comm_msg" and d.get("method") == "update"]
    assert len(updates) == 1
    assert {"channels", "rate_hz", "units"} <= set(updates[0]["state"])
    assert plot.samples_pushed == 0       # a new shape and time base start afresh
    c, _ = rec.custom()[-1]               # the browser is told to start afresh too
    assert c["type"] == "snapshot" and c["channels"] == 2 and c["n"] == 0
    clock.now += 1
    plot.push(np.zeros((3, 2)))
    c, _ = rec.custom()[-1]
    assert c["type"] == "data" and c["x0"] == 0 and c["n"] == 3
    with pytest.raises(TypeError):
        plot.configure(colour="red")


def test_changing_the_window_keeps_the_newest_samples(clock):
    plot, rec = make(clock, channels=["v"], rate_hz=10.0, window_s=3.0)
    plot.push(np.arange(30.0))
    plot.window_s = 1.0
    np.testing.assert_array_equal(plot.values[:, 0], np.arange(20.0, 30.0))
    plot.window_s = 5.0
    np.testing.assert_array_equal(plot.values[:, 0], np.arange(20.0, 30.0))
    clock.now += 1
    plot.push(np.array([30.0]))
    c, bufs = rec.custom()[-1]
    assert c["type"] == "snapshot" and c["x0"] == 20 and c["n"] == 11 and c["capacity"] == 50


def test_push_is_thread_safe(clock):
    import threading

    plot, rec = make(time.monotonic, channels=["v"], rate_hz=1000.0, max_fps=1000.0)
    threads = [threading.Thread(target=lambda: [plot.push(np.ones(7)) for _ in range(200)])
               for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    plot.flush()
    assert plot.samples_pushed == 4 * 200 * 7
    msgs = [c for c, _ in rec.custom()]
    assert plot.bucket == 10              # 10000 samples in the window: decimated
    sent = sum(c["n"] * c["dx"] for c in msgs)
    assert sent == 4 * 200 * 7            # every sample went out exactly once
    for a, b in zip(msgs, msgs[1:]):      # contiguous, in order
        assert b["x0"] == a["x0"] + a["n"] * a["dx"]


def test_the_es_module_parses(tmp_path):
    import shutil
    from pathlib import Path

    import workbench.ui.liveplot as module

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    js = tmp_path / "liveplot.mjs"  # .mjs: parsed as an ES module
    js.write_text(Path(module.__file__).with_name("liveplot.js").read_text())
    subprocess.run([node, "--check", str(js)], check=True)
