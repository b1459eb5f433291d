"""A live plot that keeps up with a sensor stream.

``LivePlot`` is a canvas widget fed binary buffers. Python keeps the last
``window_s`` seconds of samples at full resolution (the display never
decimates what is stored) and sends the browser only what is new, at most
``max_fps`` messages a second, min/max-decimated per pixel bucket when the
window holds more samples than ``max_points`` (so a one-sample spike is never
lost). The browser keeps its own ring of points and redraws on
``requestAnimationFrame`` when something new arrived, then reports how many
frames it drew per second and how long a message took from send to screen.

Usage::

    from workbench.ui import LivePlot

    plot = LivePlot(["ax", "ay", "az"], rate_hz=119, units="g", title="accelerometer")
    display(plot)
    for block in stream:             # any thread; blocks of shape (n, 3)
        plot.push(block)             # values in physical units (scale raw counts first)
    plot.fps, plot.lag_ms            # what the browser reports back, about twice a second

Values are taken as they are, in physical units: scale raw ADC counts before
``push`` (e.g. ``plot.push(raw * rec.scale)``). Integer blocks are converted to
float32 for display.

Messages (kernel -> browser, ``type`` first; see :class:`DataMessage`):

* ``data``: the points after the last message; one buffer, float32, row-major
  ``(n, channels)``. Point ``i`` is at sample index ``x0 + i * dx``, i.e. at
  ``(x0 + i * dx) / rate_hz`` seconds since the start (or the last clear).
  Decimated points come two per bucket of ``bucket`` samples (the bucket's
  minimum and maximum, in the order they occurred), so ``dx = bucket / 2``.
  Only whole buckets are sent; the rest waits for the next message, which
  delays the newest samples by at most ``bucket / rate_hz`` seconds
  (``2 * window_s / max_points``: 10 ms with the defaults).
* ``snapshot``: the same layout, for the whole window; the browser drops what
  it had. Sent when a view appears, after a configuration change, on resume.
* ``clear``: forget all points.
* ``spec`` / ``spec_snapshot`` (only while ``view == "spectrogram"``): spectrogram columns
  of the first channel (see :mod:`workbench.ui.spectrogram`), one buffer of uint8
  ``(n, bins)``; column ``i`` covers samples ``x0 + i * hop ...`` (``n_fft`` of them). A
  snapshot holds every column of the kept window and replaces what the browser had.

Browser -> kernel: ``{"type": "hello"}`` when a view is rendered (answered
with a snapshot, even while paused).

Views (``view``): ``"traces"`` (lines, one per channel) or ``"spectrogram"`` (a scrolling
spectrogram of the first channel, computed here with numpy, for audio: the capture panel
chooses it for a microphone). The button in the plot's header switches between them; the
traces keep being sent in either view, so switching back is immediate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypedDict

import anywidget
import numpy as np
import traitlets as t

from .spectrogram import DEFAULT_DB_RANGE, DEFAULT_FFT, check_fft, stft_columns

__all__ = ["LivePlot", "minmax_decimate", "DataMessage", "ClearMessage"]

#: Default ceiling on messages per second to the browser (pushes in between are coalesced).
DEFAULT_MAX_FPS = 60.0
#: Largest window the plot keeps in memory, in samples (per channel).
MAX_WINDOW_SAMPLES = 10_000_000
#: Smallest ``max_points`` (per trace, across the window).
MIN_POINTS = 16


class DataMessage(TypedDict):
    """A ``data`` or ``snapshot`` message; its one buffer holds ``n * channels`` float32."""

    type: Literal["data", "snapshot"]
    seq: int            # 0, 1, 2, ... per widget, across types
    x0: float           # sample index of the first point
    dx: float           # samples between consecutive points (1, or bucket / 2)
    n: int              # points in the buffer
    channels: int       # values per point
    bucket: int         # samples per min/max bucket (1: not decimated)
    capacity: int       # points the browser must keep to hold the whole window
    total: int          # samples pushed since the start (or the last clear)
    sent_ms: float      # wall-clock time of the send, ms since the epoch (time.time() * 1000)
    pushed_ms: float    # wall-clock time of the earliest push whose samples are in this message


class SpectrogramMessage(TypedDict):
    """A ``spec`` or ``spec_snapshot`` message; its one buffer holds ``n * bins`` uint8."""

    type: Literal["spec", "spec_snapshot"]
    seq: int
    x0: float           # sample index where the first column starts
    hop: int            # samples between columns
    n_fft: int          # samples per column
    n: int              # columns in the buffer
    bins: int           # values per column (n_fft // 2 + 1), 0 Hz first
    capacity: int       # columns the browser must keep to hold the whole window
    sent_ms: float


class ClearMessage(TypedDict):
    type: Literal["clear"]
    seq: int


def minmax_decimate(block: np.ndarray, bucket: int) -> np.ndarray:
    """Reduce ``(k * bucket, c)`` samples to ``(2 * k, c)`` points: each bucket's min and max.

    The two points of a bucket keep the order in which the extremes occurred, so
    a rising edge stays rising. Trailing samples that do not fill a bucket are
    ignored (the caller keeps them for later). ``bucket == 1`` returns the input.
    """
    if bucket < 1:
        raise ValueError(f"bucket must be >= 1, got {bucket}")
    if bucket == 1:
        return block
    k = len(block) // bucket
    c = block.shape[1]
    b = block[: k * bucket].reshape(k, bucket, c)
    imin = b.argmin(axis=1)
    imax = b.argmax(axis=1)
    vmin = np.take_along_axis(b, imin[:, None, :], axis=1)[:, 0, :]
    vmax = np.take_along_axis(b, imax[:, None, :], axis=1)[:, 0, :]
    min_first = imin <= imax
    out = np.empty((2 * k, c), dtype=block.dtype)
    out[0::2] = np.where(min_first, vmin, vmax)
    out[1::2] = np.where(min_first, vmax, vmin)
    return out


class LivePlot(anywidget.AnyWidget):
    """A scrolling plot of a multi-channel sensor stream (see the module docs).

    ``push`` may be called from any thread. The widget holds no logic beyond
    display: what it shows is what Python pushed.
    """

    _esm = Path(__file__).with_name("liveplot.js")

    channels = t.List(t.Unicode(), help="Names of the traces, one per column of a pushed "
                      "block.").tag(sync=True)
    rate_hz = t.Float(help="Sample rate of the stream in Hz; sets the time axis.").tag(sync=True)
    window_s = t.Float(10.0, help="Seconds of history shown (and kept at full "
                       "resolution).").tag(sync=True)
    units = t.Unicode("", help="Physical units of the values, shown on the y axis.").tag(sync=True)
    y_range = t.Tuple(t.Float(), t.Float(), default_value=None, allow_none=True,
                      help="Fixed (low, high) of the y axis; None autoscales (with hysteresis)."
                      ).tag(sync=True)
    title = t.Unicode("", help="Title shown above the plot.").tag(sync=True)
    max_points = t.Int(2000, help="Points per trace across the window; more samples are "
                       "min/max-decimated for display.").tag(sync=True)
    paused = t.Bool(False, help="Freeze the display; pushes are still kept.").tag(sync=True)
    view = t.Enum(("traces", "spectrogram"), "traces", help="What is drawn: a line per channel, "
                  "or a scrolling spectrogram of the first channel.").tag(sync=True)
    spectrogram_fft = t.Int(DEFAULT_FFT, help="Samples per spectrogram column (a power of "
                            "two); columns overlap by half.").tag(sync=True)
    spectrogram_db = t.Tuple(t.Float(), t.Float(), default_value=DEFAULT_DB_RANGE,
                             help="(low, high) dB of the spectrogram's colour scale (0 dB: a "
                             "full-scale sine).").tag(sync=True)
    max_fps = t.Float(DEFAULT_MAX_FPS, help="Most messages per second sent to the browser; "
                      "pushes in between are coalesced.")

    fps = t.Float(0.0, read_only=True, help="Frames with new data the browser drew per second "
                  "(reported about twice a second).").tag(sync=True)
    lag_ms = t.Float(None, allow_none=True, read_only=True,
                     help="Median ms from a message's send to its draw, over the last report "
                     "interval that drew something (None before the first frame).").tag(sync=True)
    lag_ms_max = t.Float(None, allow_none=True, read_only=True,
                         help="Largest send-to-draw ms over that same interval.").tag(sync=True)

    def __init__(self, channels: Sequence[str], rate_hz: float, window_s: float = 10.0,
                 units: str = "", y_range: tuple[float, float] | None = None, title: str = "",
                 max_points: int = 2000, *, max_fps: float = DEFAULT_MAX_FPS,
                 clock: Callable[[], float] = time.monotonic,
                 timer: Callable[[float, Callable[[], None]], threading.Timer] = threading.Timer,
                 **kwargs) -> None:
        """``clock`` (seconds, monotonic) paces the sends and ``timer(delay, fn)`` (a
        :class:`threading.Timer` by default) sends what was held back; tests pass fakes."""
        self._lock = threading.RLock()
        self._clock = clock
        self._make_timer = timer
        self._timer: threading.Timer | None = None
        self._seq = 0
        self._ring = np.zeros((0, 0), np.float32)
        self._total = 0            # samples pushed since the start or the last clear
        self._first = 0            # sample index of the oldest sample kept (after a rebuild)
        self._sent = 0             # sample index up to which the browser has been sent data
        self._next_send = -math.inf  # clock time from which the next message may go
        self._pending_since_ms: float | None = None
        self._last_push_ms = 0.0
        self._need_snapshot = True
        self._spec_next = 0        # sample index where the next spectrogram column starts
        self._need_spec_snapshot = True
        self._ready = False        # observers rebuild buffers only after __init__
        super().__init__(channels=list(channels), rate_hz=float(rate_hz), window_s=float(window_s),
                         units=units, y_range=y_range, title=title, max_points=int(max_points),
                         max_fps=float(max_fps), **kwargs)
        self._ready = True
        self._rebuild(keep=False)
        self.on_msg(self._on_front_msg)

    # -- validation ------------------------------------------------------------------------
    @t.validate("channels")
    def _check_channels(self, proposal):
        names = list(proposal["value"])
        if not names:
            raise t.TraitError("channels: give at least one channel name")
        if len(set(names)) != len(names):
            raise t.TraitError(f"channels: names must be unique, got {names}")
        return names

    @t.validate("rate_hz", "window_s", "max_fps")
    def _check_positive(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        if not (math.isfinite(value) and value > 0):
            raise t.TraitError(f"{name} must be a positive number, got {value}")
        if name in ("rate_hz", "window_s"):
            other = self.window_s if name == "rate_hz" else self.rate_hz
            if value * other > MAX_WINDOW_SAMPLES:
                raise t.TraitError(f"window_s * rate_hz must be <= {MAX_WINDOW_SAMPLES:,} samples "
                                   f"(the window is kept in memory), got {value * other:,.0f}")
        return value

    @t.validate("max_points")
    def _check_points(self, proposal):
        value = proposal["value"]
        if value < MIN_POINTS:
            raise t.TraitError(f"max_points must be >= {MIN_POINTS}, got {value}")
        return value

    @t.validate("y_range")
    def _check_y_range(self, proposal):
        value = proposal["value"]
        if value is None:
            return None
        lo, hi = value
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise t.TraitError(f"y_range must be (low, high) with low < high, got {value}")
        return (float(lo), float(hi))

    @t.validate("fps", "lag_ms", "lag_ms_max")
    def _check_stat(self, proposal):
        value = proposal["value"]
        return None if value is None else max(0.0, float(value))

    # -- geometry --------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Samples per channel kept: ``ceil(window_s * rate_hz)``."""
        return max(1, math.ceil(self.window_s * self.rate_hz - 1e-9))

    @property
    def bucket(self) -> int:
        """Samples per min/max bucket sent to the browser (1 = every sample is sent)."""
        cap = self.capacity
        if cap <= self.max_points:
            return 1
        return math.ceil(cap / (self.max_points // 2))

    @property
    def samples_pushed(self) -> int:
        """Samples pushed since the start (or the last :meth:`clear`)."""
        return self._total

    @property
    def messages_sent(self) -> int:
        """Messages sent to the browser so far (data, snapshots and clears)."""
        return self._seq

    @property
    def values(self) -> np.ndarray:
        """The kept window at full resolution, oldest first: a float32 copy ``(n, channels)``."""
        with self._lock:
            return self._read(self._oldest(), self._total)

    @property
    def times(self) -> np.ndarray:
        """Times in seconds of the rows of :attr:`values`."""
        with self._lock:
            return np.arange(self._oldest(), self._total) / self.rate_hz

    # -- configuration changes ---------------------------------------------------------------
    @t.observe("channels", "rate_hz")
    def _on_shape_change(self, change):
        if self._ready:
            self._rebuild(keep=False)

    @t.observe("window_s", "max_points")
    def _on_window_change(self, change):
        if self._ready:
            self._rebuild(keep=True)

    @t.observe("paused")
    def _on_paused(self, change):
        if self._ready and not change["new"]:
            with self._lock:
                self._need_snapshot = self._need_spec_snapshot = True
                self.flush()

    @t.observe("view", "spectrogram_fft", "spectrogram_db")
    def _on_view_change(self, change):
        if self._ready:
            with self._lock:
                self._need_spec_snapshot = True
                self.flush()

    @t.validate("spectrogram_fft")
    def _check_fft(self, proposal):
        try:
            return check_fft(proposal["value"])
        except ValueError as e:
            raise t.TraitError(str(e)) from None

    @t.validate("spectrogram_db")
    def _check_db(self, proposal):
        lo, hi = proposal["value"]
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise t.TraitError(f"spectrogram_db must be (low, high) with low < high, "
                               f"got {proposal['value']}")
        return (float(lo), float(hi))

    def configure(self, **changes) -> None:
        """Change several traits at once (e.g. a new sensor: ``channels`` and ``rate_hz``),
        synced to the browser in one message, with one snapshot after."""
        unknown = set(changes) - set(self.trait_names(sync=True)) - {"max_fps"}
        if unknown:
            raise TypeError(f"configure() got unknown traits {sorted(unknown)}")
        with self._lock, self.hold_sync():
            for name, value in changes.items():
                setattr(self, name, value)
        self.flush()

    def _rebuild(self, keep: bool) -> None:
        with self._lock:
            nch, cap = len(self.channels), self.capacity
            if keep and self._ring.shape[1:] == (nch,) and len(self._ring):
                start = max(self._oldest(), self._total - cap)
                kept = self._read(start, self._total)
                self._ring = np.zeros((cap, nch), np.float32)
                self._write_at(start, kept)
                self._first = start
            else:
                self._ring = np.zeros((cap, nch), np.float32)
                self._total = self._sent = self._first = self._spec_next = 0
            self._need_snapshot = self._need_spec_snapshot = True

    # -- the stream ------------------------------------------------------------------------
    def push(self, block: np.ndarray) -> None:
        """Append ``block`` (shape ``(n, channels)``, numbers in physical units; a 1-D array
        is accepted for a single channel). Thread-safe; sends at most ``max_fps`` per second."""
        a = np.asarray(block)
        nch = len(self.channels)
        if a.ndim == 1 and nch == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[1] != nch:
            raise ValueError(f"push: expected shape (n, {nch}) for channels {self.channels}, "
                             f"got {a.shape}")
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
            raise TypeError(f"push: expected real numbers, got dtype {a.dtype}")
        if len(a) == 0:
            return
        a = a.astype(np.float32, copy=False)
        with self._lock:
            self._last_push_ms = time.time() * 1000.0
            if self._pending_since_ms is None:
                self._pending_since_ms = self._last_push_ms
            self._write_at(self._total, a[-len(self._ring):])
            self._total += len(a)
            self._maybe_send()

    def flush(self) -> None:
        """Send what is pending now, ignoring ``max_fps`` (no-op while paused)."""
        with self._lock:
            self._cancel_timer()
            if not self.paused:
                self._send_pending()

    def clear(self) -> None:
        """Forget every sample, here and in the browser; time restarts at 0."""
        with self._lock:
            self._cancel_timer()
            self._ring[:] = 0
            self._total = self._sent = self._first = self._spec_next = 0
            self._pending_since_ms = None
            self._need_snapshot = self._need_spec_snapshot = False
            msg: ClearMessage = {"type": "clear", "seq": self._next_seq()}
            self.send(msg)

    def close(self) -> None:
        with self._lock:
            self._cancel_timer()
        super().close()

    # -- internals -------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1

    def _oldest(self) -> int:
        """Sample index of the oldest sample still kept."""
        return max(self._first, self._total - len(self._ring))

    def _write_at(self, start: int, a: np.ndarray) -> None:
        """Write rows ``a`` at absolute sample indices ``start...`` into the ring."""
        cap = len(self._ring)
        i = start % cap
        first = min(len(a), cap - i)
        self._ring[i:i + first] = a[:first]
        if first < len(a):
            self._ring[: len(a) - first] = a[first:]

    def _read(self, start: int, end: int) -> np.ndarray:
        """Rows for absolute sample indices [start, end); they must still be in the ring."""
        cap = len(self._ring)
        n = end - start
        if n <= 0:
            return np.zeros((0, self._ring.shape[1]), np.float32)
        i = start % cap
        if i + n <= cap:
            return self._ring[i:i + n].copy()
        return np.concatenate([self._ring[i:], self._ring[: n - (cap - i)]])

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _maybe_send(self) -> None:
        if self.paused:
            return
        wait = self._next_send - self._clock()
        if wait <= 0:
            self._cancel_timer()
            self._send_pending()
        elif self._timer is None:  # coalesce: one deferred send picks up everything pending
            self._timer = self._make_timer(wait, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._maybe_send()

    def _send_spectrogram(self) -> None:
        """Send the spectrogram columns that are whole now (all of the window after a change)."""
        n_fft = self.spectrogram_fft
        hop = n_fft // 2
        oldest, total = self._oldest(), self._total
        snapshot = self._need_spec_snapshot or self._spec_next < oldest
        start = -(-oldest // hop) * hop if snapshot else self._spec_next
        count = max(0, (total - start - n_fft) // hop + 1)
        if count == 0 and not snapshot:
            return
        bins = n_fft // 2 + 1
        if count:
            first = self._read(start, start + (count - 1) * hop + n_fft)[:, 0]
            cols = stft_columns(first, n_fft, hop, self.spectrogram_db)
        else:
            cols = np.zeros((0, bins), np.uint8)
        msg: SpectrogramMessage = {
            "type": "spec_snapshot" if snapshot else "spec", "seq": self._next_seq(),
            "x0": float(start), "hop": hop, "n_fft": n_fft, "n": len(cols), "bins": bins,
            "capacity": -(-self.capacity // hop) + 1, "sent_ms": time.time() * 1000.0}
        self.send(msg, buffers=[np.ascontiguousarray(cols).tobytes()])
        self._spec_next = start + count * hop
        self._need_spec_snapshot = False

    def _send_pending(self) -> None:
        if self.view == "spectrogram":
            self._send_spectrogram()
        bucket, total = self.bucket, self._total
        oldest = self._oldest()
        end = total if bucket == 1 else (total // bucket) * bucket
        if self._need_snapshot or self._sent < oldest:
            kind = "snapshot"
            start = -(-oldest // bucket) * bucket  # first whole bucket still kept
        else:
            kind = "data"
            start = self._sent
        if end <= start and kind == "data":
            return  # nothing whole to send yet; the next push will bring more
        start = min(start, end)
        points = minmax_decimate(self._read(start, end), bucket)
        cap_points = self.capacity if bucket == 1 else 2 * (-(-self.capacity // bucket) + 1)
        now_ms = time.time() * 1000.0
        msg: DataMessage = {
            "type": kind, "seq": self._next_seq(), "x0": float(start),
            "dx": 1.0 if bucket == 1 else bucket / 2.0, "n": len(points),
            "channels": points.shape[1], "bucket": bucket, "capacity": cap_points,
            "total": total, "sent_ms": now_ms,
            "pushed_ms": self._pending_since_ms if self._pending_since_ms is not None else now_ms,
        }
        self.send(msg, buffers=[np.ascontiguousarray(points, np.float32).tobytes()])
        self._sent = end
        self._need_snapshot = False
        # pace on a grid of 1/max_fps: a deferred send that fired a little late (timer latency)
        # does not delay the next one too, so the rate stays at max_fps; after a pause in the
        # stream, or a forced send, the grid restarts from now
        now, period = self._clock(), 1.0 / self.max_fps
        late = now - self._next_send
        self._next_send = (self._next_send if 0 <= late < period else now) + period
        # samples left in a partial bucket came with the latest push at the earliest
        self._pending_since_ms = None if end == total else self._last_push_ms

    def _on_front_msg(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "hello":
            with self._lock:  # a new view gets the window, paused or not
                self._cancel_timer()
                self._need_snapshot = self._need_spec_snapshot = True
                self._send_pending()
