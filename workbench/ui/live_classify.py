"""Live classification in the capture panel: the class probabilities of the latest window
of the stream being watched, as it comes in.

It composes what exists: a :class:`workbench.deploy.LivePredictor` fed the panel's own
preview through a :class:`~workbench.deploy.live.BlockFeed` (the sensor streams once; the
predictor does not start a second stream), shown by :class:`~workbench.ui.LivePredictions`.
The model runs on this machine (TensorFlow Lite Micro, the board's interpreter, or LiteRT)
or on the board (it must run that model already)::

    panel = CapturePanel("gestures")
    panel.classify.start("model.tflite", classes=["idle", "wave"])   # what Classify does

Model: the path of a ``.tflite`` file, or a registry version's label (``"gestures v2"``,
listed in the menu when ``registry=`` or ``$WORKBENCH_REGISTRY`` names a registry).
Window: ``length`` samples (default: what the model's input holds for the sensor's
channels) at the sensor's rate, a prediction every ``hop`` samples (default: a quarter of
a window, so the answer follows the stream). Classes: comma-separated, in the model's
output order (default: the dataset's labels, sorted, as training orders them).

Errors (no device, a model that does not fit the sensor, an interpreter that cannot run it)
are shown in the status line and raised by :meth:`start`. Switching the panel's sensor
stops the classification (its windows were of the other sensor).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import ipywidgets as w
import numpy as np

__all__ = ["LiveClassify", "WHERE"]

WHERE = {"this machine (TFLite Micro)": "tflite-micro", "this machine (LiteRT)": "litert",
         "the board": "board"}


class LiveClassify(w.VBox):
    """Model, classes, where to run, Classify (start with these settings, replacing a run
    before), and the live answer with its own Stop/Start. See the module docs."""

    def __init__(self, panel, *, registry=None) -> None:
        self.panel = panel
        self.registry = registry
        self.live = None
        """The :class:`~workbench.ui.LivePredictions` while classifying, else None."""
        self._feed = None
        self._push = None
        self.model = w.Combobox(description="Model", placeholder="model.tflite or 'name vN'",
                                options=self._versions(), ensure_option=False,
                                layout=w.Layout(width="360px"))
        self.classes = w.Text(description="Classes", placeholder="idle, wave (output order)",
                              layout=w.Layout(width="320px"))
        self.where = w.Dropdown(description="Run on", options=list(WHERE),
                                layout=w.Layout(width="300px"))
        self.button = w.Button(description="Classify", icon="play")
        self.status = w.HTML()
        self.box = w.Box()
        super().__init__([w.HTML("<b>Live classification</b>"),
                          w.HBox([self.model, self.classes]),
                          w.HBox([self.where, self.button, self.status]), self.box])
        self.add_class("wb-live-classify")
        self.button.on_click(lambda _: self._clicked())
        panel.sensor.observe(lambda _: self.stop(), names="value")

    def use_registry(self, registry) -> None:
        """List the versions of ``registry`` (a :class:`~workbench.deploy.ModelRegistry`) in
        the Model menu, and resolve their labels from it."""
        self.registry = registry
        self.model.options = self._versions()

    def _versions(self) -> list[str]:
        reg = self._registry()
        if reg is None:
            return []
        try:
            return [v.label for name in reg.models() for v in reg.versions(name)]
        except Exception:  # noqa: BLE001 - a broken registry only empties the menu
            return []

    def _registry(self):
        if self.registry is None:
            root = os.environ.get("WORKBENCH_REGISTRY")
            if not root or not Path(root).is_dir():
                return None
            from ..deploy import ModelRegistry

            self.registry = ModelRegistry(root)
        return self.registry

    def _resolve(self, model):
        """A registry version for its label, else the model as given (a path, bytes...)."""
        if isinstance(model, str):
            reg = self._registry()
            name, _, version = model.strip().rpartition(" v")
            if reg is not None and name and version.isdigit():
                return reg.get(name, int(version))
            return model.strip()
        return model

    @property
    def running(self) -> bool:
        return self.live is not None and self.live.running

    def _clicked(self) -> None:
        try:
            self.start(self.model.value, classes=[c.strip() for c in self.classes.value.split(",")
                                                   if c.strip()] or None,
                       where=WHERE[self.where.value])
        except Exception as e:  # noqa: BLE001 - shown where the user looks
            self.status.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"

    def start(self, model, *, classes=None, where: str = "tflite-micro",
              length: int | None = None, hop: int | None = None) -> None:
        """Classify the panel's current sensor with ``model`` (what Classify does). Raises
        RuntimeError without a connected device, ValueError for a model that does not fit
        the sensor, the interpreter's ModelError when it cannot run it."""
        from ..deploy.live import BlockFeed, LivePredictor
        from ..tflite import inspect_model
        from .live_predictions import LivePredictions

        self.stop()
        rec = self.panel.recorder
        desc = self.panel._selected_sensor()
        if rec.device is None or desc is None:
            raise RuntimeError("connect to a device first")
        model = self._resolve(model)
        if isinstance(model, str) and not model:
            raise ValueError("choose a model: the path of a .tflite file or a registry version")
        from ..deploy.sources import model_bytes

        data = model_bytes(model, verb="classify with")[0]
        want = int(np.prod(inspect_model(data).inputs[0].shape))
        channels = len(desc.channels)
        if length is None:
            if want % channels:
                raise ValueError(f"the model takes {want} values, not a whole number of "
                                 f"{desc.id} samples ({channels} channels each)")
            length = want // channels
        if classes is None:
            classes = sorted(rec.dataset.labels) or None
        rate = self.panel.plot.rate_hz if self.panel.plot is not None else desc.rate_hz
        feed = BlockFeed(rate)
        predictor = LivePredictor(rec.device, model, sensors=[desc.id], length=length,
                                  rate_hz=rate, classes=classes, where=where, feed=feed,
                                  hop=hop or max(1, length // 4))
        sensor = self.panel.sensor.value

        def push(block) -> None:
            if self.panel.sensor.value == sensor:   # the preview of this sensor only
                feed.push(block)

        self._feed, self._push = feed, push
        rec.on_block.append(push)
        self.live = LivePredictions(predictor)
        self.box.children = (self.live,)   # its Stop and Start pause and resume
        self.status.value = (f"<i>{desc.id}: windows of {length} samples on "
                             f"{'the board' if where == 'board' else 'this machine'}</i>")

    def stop(self) -> None:
        """Stop classifying (what Stop does); the last answer stays shown."""
        rec = self.panel.recorder
        if self._push is not None and self._push in rec.on_block:
            rec.on_block.remove(self._push)
        if self._feed is not None:
            self._feed.close()
        self._feed = self._push = None
        if self.live is not None:
            self.live.stop()

    def close(self) -> None:
        self.stop()
        if self.live is not None:
            self.live.close()
        super().close()
