"""Spectrogram frames for the live plot: the STFT columns, and what LivePlot sends in its
spectrogram view (columns of the first channel, contiguous, a snapshot after a change)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.ui.spectrogram import stft_columns

RATE = 16000.0


def tone(freq: float, seconds: float, amplitude: float = 1.0, start: int = 0) -> np.ndarray:
    n = np.arange(start, start + int(seconds * RATE))
    return (amplitude * np.sin(2 * np.pi * freq * n / RATE)).astype(np.float32)


def test_a_tone_lights_its_bin_at_its_level():
    cols = stft_columns(tone(1000.0, 0.1), n_fft=256)
    assert cols.dtype == np.uint8 and cols.shape == ((1600 - 256) // 128 + 1, 129)
    peak = cols.argmax(axis=1)
    assert (peak == 16).all()                # 1000 Hz / (16000 / 256) = bin 16
    assert (cols[:, 16] >= 250).all()        # full scale: 0 dB, the top of (-100, 0)
    quiet = stft_columns(tone(1000.0, 0.1, amplitude=0.01), n_fft=256)
    # -40 dB maps to 255 * 60 / 100 = 153
    assert abs(int(np.median(quiet[:, 16])) - 153) <= 3
    assert cols[:, 60].max() < cols[:, 16].min() - 100   # far from the tone: near the floor


def test_short_input_gives_no_columns_and_bad_sizes_are_refused():
    assert stft_columns(np.zeros(100), n_fft=256).shape == (0, 129)
    for bad in (100, 8, 16384):
        with pytest.raises(ValueError, match="power of two"):
            stft_columns(np.zeros(1000), n_fft=bad)


pytest.importorskip("anywidget")

from recording_comm import RecordingComm  # noqa: E402
from traitlets import TraitError  # noqa: E402

from workbench.ui import LivePlot  # noqa: E402


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def make(**kw):
    rec = RecordingComm()
    clock = Clock()
    plot = LivePlot(["audio"], rate_hz=RATE, window_s=1.0, clock=clock, comm=rec,
                    timer=lambda *a: pytest.fail("no timer expected"), **kw)
    rec.published.clear()
    return plot, rec, clock


def columns(content, buffers) -> np.ndarray:
    return np.frombuffer(buffers[0], np.uint8).reshape(content["n"], content["bins"])


def test_the_traces_view_sends_no_spectrogram():
    plot, rec, _ = make()
    plot.push(tone(500.0, 0.2))
    assert rec.custom("snapshot") and not rec.custom("spec") and not rec.custom("spec_snapshot")


def test_the_spectrogram_view_sends_each_column_once_in_order():
    plot, rec, clock = make(view="spectrogram")
    signal = tone(2000.0, 0.5)
    for i in range(0, len(signal), 400):      # blocks of 25 ms, one message each
        clock.now += 1.0
        plot.push(signal[i:i + 400])
    msgs = rec.custom("spec_snapshot") + rec.custom("spec")
    assert msgs[0][0]["type"] == "spec_snapshot"
    assert all(c["type"] == "spec" for c, _ in msgs[1:])
    x = 0.0
    for c, _bufs in msgs:                     # contiguous: each starts where the last ended
        assert c["x0"] == x and c["hop"] == 128 and c["bins"] == 129
        x += c["n"] * c["hop"]
    got = np.concatenate([columns(c, b) for c, b in msgs])
    np.testing.assert_array_equal(got, stft_columns(signal, 256))   # same as all at once
    assert (got.argmax(axis=1) == 32).all()   # 2000 Hz
    assert msgs[0][0]["capacity"] >= 16000 // 128


def test_switching_to_the_spectrogram_sends_the_kept_window_and_back_sends_nothing_new():
    plot, rec, clock = make()
    plot.push(tone(1000.0, 2.0))              # more than the 1 s window
    assert not rec.custom("spec_snapshot")
    rec.from_front({"method": "update", "state": {"view": "spectrogram"}})  # the header button
    (c, bufs), = rec.custom("spec_snapshot")
    # the columns of the kept second only, on the hop grid
    assert c["x0"] >= 2 * RATE - 1 * RATE and c["x0"] % 128 == 0
    assert c["n"] == (32000 - int(c["x0"]) - 256) // 128 + 1
    assert (columns(c, bufs).argmax(axis=1) == 16).all()
    rec.published.clear()
    plot.view = "traces"
    clock.now += 1
    plot.push(tone(1000.0, 0.1, start=32000))
    assert not rec.custom("spec") and not rec.custom("spec_snapshot")


def test_a_new_view_and_a_clear_restart_the_spectrogram():
    plot, rec, clock = make(view="spectrogram")
    plot.push(tone(1000.0, 0.1))
    rec.published.clear()
    rec.from_front({"method": "custom", "content": {"type": "hello"}})
    assert [c["type"] for c, _ in rec.custom()][:1] == ["spec_snapshot"]
    plot.clear()
    rec.published.clear()
    clock.now += 1
    plot.push(tone(1000.0, 0.05))
    (c, _), = rec.custom("spec")      # the browser dropped its columns with the clear
    assert c["x0"] == 0 and c["n"] == (800 - 256) // 128 + 1


def test_spectrogram_settings_are_checked():
    plot, _, _ = make()
    with pytest.raises(TraitError, match="power of two"):
        plot.spectrogram_fft = 300
    with pytest.raises(TraitError, match="low < high"):
        plot.spectrogram_db = (0.0, -10.0)
    with pytest.raises(TraitError):
        plot.view = "waterfall"
