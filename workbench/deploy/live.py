"""Live predictions: the model a board runs, fed windows of that board's own sensor stream.

After a deployment, the proof that it works is the board classifying what its sensors see.
:class:`LivePredictor` streams one or more of the device's sensors, cuts windows the way the
model was trained (length and rate), applies the training's preprocessing on the host (unit
conversion, normalisation: ``preprocess``), quantizes with the model's input parameters,
and runs each window **on the device** (INFER), so what is shown is the board's own answer.

Call order::

    live = LivePredictor(device, model, sensors=["accel", "gyro"], length=100, rate_hz=10,
                         classes=data.classes, preprocess=data.normalizer.transform)
    for p in live.predictions(count=5):       # starts the streams, stops them at the end
        print(p.label, p.confidence)

Where it runs: ``where="board"`` (the default) runs each window on the device (INFER);
``where="tflite-micro"`` or ``"litert"`` runs it on this machine, in TensorFlow Lite Micro
(the board's interpreter, probed in a child process first) or LiteRT: to try a model on the
live stream before it is deployed.

Where the samples come from: by default the predictor starts the sensors' streams itself.
A sensor streams once at a time, so a program that already streams it (the capture panel's
preview) hands its samples over instead, through a :class:`BlockFeed` (``feed=``; one
sensor): ``feed.push(values)`` for every block it reads, and the predictor windows them.

Resampling: each sensor streams at the lowest rate it offers at or above ``rate_hz`` and is
resampled to ``rate_hz`` by linear interpolation. Sensors are aligned by sample count from
their start (they are started back to back). A window is predicted every ``hop`` samples
(default: the window length, no overlap).

Errors: ValueError for a sensor the board lacks, channels that do not add up to the model's
input, or a rate no sensor reaches; the link's errors (``NoModel`` when the board runs
nothing, ``ConnectionLost``) pass through; the streams are stopped in every case.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..link import Device
from ..train.export import check_runtime, dequantize_output, host_runner, quantize_input
from .sources import model_bytes

__all__ = ["LivePredictor", "Prediction", "BlockFeed"]

READ_TIMEOUT_S = 2.0
"""Longest wait for the next block of samples before saying the stream stalled."""


class BlockFeed:
    """Samples of one sensor that another part of the program streams, for a
    :class:`LivePredictor` that must not start a second stream of that sensor.

    ``push(values)`` (any thread): a block ``(n, channels)`` in the sensor's units, at
    ``rate_hz``, in order. The predictor reads them (:meth:`read`). At most ``max_blocks``
    wait: when the predictor falls behind (a slow board), the oldest are dropped
    (``dropped`` counts them) and the windows after a drop span the gap; live, the newest
    window is what matters. ``close()`` ends the predictor's loop like a lost stream.
    """

    def __init__(self, rate_hz: float, max_blocks: int = 512) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(max_blocks)
        self.closed = False

    def push(self, values: np.ndarray) -> None:
        """Queue a block for the predictor (dropped after :meth:`close`)."""
        if self.closed:
            return
        while True:
            try:
                self._queue.put_nowait(np.asarray(values, np.float32))
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def read(self, timeout: float) -> np.ndarray | None:
        """The next block, or None after ``timeout`` seconds without one."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """End the predictor's loop (at once: a waiting :meth:`read` wakes)."""
        self.closed = True
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass


@dataclass(frozen=True)
class Prediction:
    """One window's answer from the device.

    ``scores``: the model's first output, dequantized (per class for a classifier).
    ``label``: the class with the highest score (None without ``classes``); ``window``:
    the samples (length, channels) in the sensors' units; ``inputs``: what the interpreter
    was given, after ``preprocess`` and before quantization; ``end_s``: the window's end in
    seconds of the stream; ``latency_us``: what the device reported (on the host: the wall
    time of the call).
    """

    index: int
    end_s: float
    scores: np.ndarray
    label: str | None
    confidence: float
    window: np.ndarray
    inputs: np.ndarray
    latency_us: int


class LivePredictor:
    """Windows of a device's sensors, predicted on the device. See the module docstring.

    ``model``: the model the device runs (its bytes, a Variant, a registry version or a
    path): only its input and output tensors are read, to quantize and dequantize.
    ``sensors``: sensor names on the board, their channels concatenated in this order.
    ``length`` and ``rate_hz``: the window the model takes (samples, Hz).
    ``preprocess``: ``window (length, channels) float32 in the sensors' units -> array``
    shaped as the model's input without the batch dimension (e.g. a unit conversion, then
    the training's ``Normalizer.transform``).
    ``where``: ``"board"``, ``"tflite-micro"`` or ``"litert"`` (module docs); a host
    interpreter is built here (ModelError if it cannot run the model).
    ``feed``: a :class:`BlockFeed` of the one sensor named, instead of starting its stream.
    """

    def __init__(self, device: Device, model: Any, *, sensors: Sequence[str], length: int,
                 rate_hz: float, classes: Sequence[str] | None = None,
                 preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
                 hop: int | None = None, where: str = "board",
                 feed: BlockFeed | None = None) -> None:
        from ..tflite import inspect_model

        data = model_bytes(model, verb="predict live with")[0]
        info = inspect_model(data)
        if where != "board":
            try:
                check_runtime(where)
            except ValueError:
                raise ValueError(f"where must be 'board', 'tflite-micro' or 'litert', "
                                 f"got {where!r}") from None
        if feed is not None and len(sensors) != 1:
            raise ValueError(f"a feed carries one sensor; name that one, not {list(sensors)}")
        self.input, self.output = info.inputs[0], info.outputs[0]
        self.device = device
        if device.info is None and device.mode != "line":   # a sketch has no HELLO to ask
            device.hello()
        if not sensors:
            raise ValueError("name at least one sensor to stream")
        self.descs = [device.sensor(s) for s in sensors]
        self.length, self.rate_hz = int(length), float(rate_hz)
        self.hop = int(hop or length)
        if self.length < 1 or self.hop < 1 or self.rate_hz <= 0:
            raise ValueError("length, hop and rate_hz must be positive")
        self.classes = list(classes) if classes is not None else None
        self.preprocess = preprocess
        self.feed = feed
        self.stream_rates = ([feed.rate_hz] if feed is not None
                             else [self._stream_rate(d) for d in self.descs])
        if feed is not None and feed.rate_hz < self.rate_hz - 1e-9:
            raise ValueError(f"the feed brings {self.descs[0].id} at {feed.rate_hz:g} Hz; "
                             f"the model wants {self.rate_hz:g} Hz")
        channels = sum(len(d.channels) for d in self.descs)
        want = int(np.prod(self.input.shape))
        if self.length * channels != want and preprocess is None:
            raise ValueError(f"{self.length} samples x {channels} channels of "
                             f"{', '.join(d.id for d in self.descs)} is {self.length * channels} "
                             f"values; the model's input {self.input.shape} takes {want}. "
                             "Pass preprocess= to turn one into the other")
        self.where = where
        self._host = None if where == "board" else host_runner(data, where)

    def _stream_rate(self, desc) -> float:
        rates = sorted(r for r in (desc.rates_hz or (desc.rate_hz,)) if r >= self.rate_hz - 1e-9)
        if not rates:
            raise ValueError(f"{desc.id} streams at most {max(desc.rates_hz or (desc.rate_hz,))}"
                             f" Hz; the model wants {self.rate_hz} Hz")
        return float(rates[0])

    # ------------------------------------------------------------ the pieces
    def _resample(self, values: np.ndarray, rate: float, n_out: int) -> np.ndarray:
        """``n_out`` samples at ``rate_hz`` from ``values`` sampled at ``rate``."""
        if rate == self.rate_hz:
            return values[:n_out]
        t_out = np.arange(n_out) / self.rate_hz
        t_in = np.arange(len(values)) / rate
        return np.stack([np.interp(t_out, t_in, values[:, c]) for c in range(values.shape[1])],
                        axis=1).astype(np.float32)

    def predict_window(self, window: np.ndarray, index: int = 0, end_s: float = 0.0) -> Prediction:
        """Run one window (length, channels, in the sensors' units) on the device."""
        x = self.preprocess(window) if self.preprocess is not None else window
        x = np.asarray(x, dtype=np.float32)
        q = quantize_input(x.reshape(self.input.shape), self.input)
        if self._host is not None:
            t0 = time.perf_counter()
            out = np.asarray(self._host(q))
            latency_us = int((time.perf_counter() - t0) * 1e6)
        else:
            result = self.device.infer(q)
            out, latency_us = result.outputs[0], result.latency_us
        scores = dequantize_output(out.reshape(self.output.shape), self.output).reshape(-1)
        best = int(np.argmax(scores)) if scores.size else 0
        label = self.classes[best] if self.classes and best < len(self.classes) else None
        return Prediction(index, end_s, scores, label, float(scores[best]) if scores.size else 0.0,
                          np.asarray(window, np.float32), x, latency_us)

    # ------------------------------------------------------------ the loop
    def predictions(self, count: int | None = None,
                    stop: threading.Event | None = None) -> Iterator[Prediction]:
        """Stream, window and predict until ``count`` predictions were made or ``stop`` is
        set. Starts the sensors' streams on the first ``next()`` and stops them when the
        iteration ends (also on an error or when the generator is closed)."""
        feed = self.feed
        streams = [] if feed is not None else [
            self.device.stream(d.id, r) for d, r in zip(self.descs, self.stream_rates)]
        buffers = [np.zeros((0, len(d.channels)), np.float32) for d in self.descs]
        made, consumed = 0, 0       # windows predicted; output samples dropped from the front
        try:
            for s in streams:
                s.__enter__()
            while (count is None or made < count) and not (stop is not None and stop.is_set()):
                for i, d in enumerate(self.descs):
                    if feed is not None:
                        values = feed.read(timeout=READ_TIMEOUT_S)
                        if feed.closed:
                            return
                    else:
                        block = streams[i].read(timeout=READ_TIMEOUT_S)
                        values = None if block is None else \
                            block.raw.astype(np.float32) * np.float32(d.scale)
                    if values is None:
                        if stop is not None and stop.is_set():
                            return
                        raise TimeoutError(f"no samples from {d.id} for {READ_TIMEOUT_S} s: "
                                           "is the board streaming?")
                    buffers[i] = np.concatenate([buffers[i], values])
                # output samples available from every sensor
                have = min(int(len(b) * self.rate_hz / r) for b, r in
                           zip(buffers, self.stream_rates))
                while have >= self.length and (count is None or made < count):
                    parts = [self._resample(b, r, self.length)
                             for b, r in zip(buffers, self.stream_rates)]
                    window = np.concatenate(parts, axis=1)
                    end_s = (consumed + self.length) / self.rate_hz
                    yield self.predict_window(window, made, end_s)
                    made += 1
                    consumed += self.hop
                    for i, r in enumerate(self.stream_rates):   # drop one hop of input samples
                        buffers[i] = buffers[i][int(round(self.hop * r / self.rate_hz)):]
                    have -= self.hop
        finally:
            for s in streams:
                try:
                    s.stop()
                except Exception:  # noqa: BLE001 - the link may be gone; nothing to stop then
                    pass

    def run(self, on_prediction: Callable[[Prediction], None], stop: threading.Event,
            on_error: Callable[[BaseException], None] | None = None) -> threading.Thread:
        """Predict in a background thread until ``stop`` is set, calling ``on_prediction``
        for each (from that thread); an error ends the loop and goes to ``on_error``."""
        def loop() -> None:
            try:
                for p in self.predictions(stop=stop):
                    on_prediction(p)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if on_error is not None:
                    on_error(exc)

        thread = threading.Thread(target=loop, daemon=True, name="live predictions")
        thread.start()
        return thread
