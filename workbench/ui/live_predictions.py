"""Live predictions: what the board says about its own sensor stream, as it says it.

Shows a :class:`workbench.deploy.LivePredictor`: Start and Stop, the current answer (the
class and its score, or the raw output for a model without classes), one bar per class,
and a line with the windows predicted and the device's latency. It holds no logic::

    live = LivePredictor(device, model, sensors=["accel", "gyro"], length=100, rate_hz=10,
                         classes=data.classes, preprocess=convert)
    LivePredictions(live)          # starts at once (start=False: press Start)

Threads: the predictor runs in its own thread (:meth:`LivePredictor.run`); each prediction
is stored and drawn at most every ``REDRAW_PERIOD_S`` (the last one always). :meth:`stop`
sets the stop event and joins the thread; :meth:`close` stops, then closes the widgets.
"""

from __future__ import annotations

import html
import threading
import time
from collections import Counter

import ipywidgets as w

from ..deploy.live import LivePredictor, Prediction

__all__ = ["LivePredictions"]

REDRAW_PERIOD_S = 0.1
STOP_WAIT_S = 10.0


class LivePredictions(w.VBox):
    """Start/Stop, the current answer and per-class bars of a :class:`LivePredictor`."""

    def __init__(self, predictor: LivePredictor, *, start: bool = True) -> None:
        self.predictor = predictor
        self.last: Prediction | None = None
        """The newest prediction, or None."""
        self.count = 0
        self.labels: Counter[str] = Counter()
        """How often each class was the answer since Start."""
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_draw = 0.0
        self._lock = threading.Lock()
        self.start_button = w.Button(description="Start", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.answer = w.HTML()
        self.bars = w.HTML()
        self.status = w.HTML("stopped")
        super().__init__([w.HBox([self.start_button, self.stop_button]), self.answer,
                          self.bars, self.status])
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        if start:
            self.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start predicting (what Start does); does nothing when already running."""
        if self.running:
            return
        self._stop = threading.Event()
        self.count, self.labels, self.error = 0, Counter(), None
        self.status.value = "starting the sensor streams..."
        self._thread = self.predictor.run(self._on_prediction, self._stop, self._on_error)
        self.start_button.disabled, self.stop_button.disabled = True, False

    def stop(self) -> None:
        """Stop predicting and wait for the streams to stop (what Stop does)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
        self.start_button.disabled, self.stop_button.disabled = False, True
        self._draw()
        if self.error is None:
            self.status.value = f"stopped after {self.count} window(s)"

    def _on_prediction(self, p: Prediction) -> None:
        with self._lock:
            self.last = p
            self.count += 1
            if p.label is not None:
                self.labels[p.label] += 1
        now = time.monotonic()
        if now - self._last_draw >= REDRAW_PERIOD_S:
            self._last_draw = now
            self._draw()

    def _on_error(self, exc: BaseException) -> None:
        self.error = exc
        self.status.value = (f"<span style='color:#c62828'>stopped: "
                             f"{html.escape(f'{type(exc).__name__}: {exc}')}</span>")
        self.start_button.disabled, self.stop_button.disabled = False, True

    def _draw(self) -> None:
        p = self.last
        if p is None:
            return
        e = html.escape
        classes = self.predictor.classes
        if p.label is not None:
            self.answer.value = (f"<b style='font-size:1.4em'>{e(p.label)}</b> "
                                 f"({p.confidence:.2f})")
        else:
            self.answer.value = "output: " + e(", ".join(f"{v:.4g}" for v in p.scores[:8]))
        rows = []
        if classes:
            top = max(float(p.scores.max()), 1e-9)
            for name, score in zip(classes, p.scores):
                width = max(0.0, float(score)) / top * 200
                rows.append(f"<tr data-class='{e(name)}'><td>{e(name)}</td><td>"
                            f"<div style='width:{width:.0f}px;height:10px;background:#0b5cad'>"
                            f"</div></td><td>{float(score):.2f}</td></tr>")
        self.bars.value = f"<table class='wb-live'>{''.join(rows)}</table>" if rows else ""
        where = getattr(self.predictor, "where", "board")
        place = "on the board" if where == "board" else f"on this machine ({where})"
        self.status.value = (f"{self.count} window(s) predicted {place}, "
                             f"latency {p.latency_us / 1000:.2f} ms")

    def close(self) -> None:
        self.stop()
        for child in (self.start_button, self.stop_button, self.answer, self.bars, self.status):
            child.close()
        super().close()
