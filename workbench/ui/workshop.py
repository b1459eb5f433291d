"""The workshop: one page from a board to a deployed model, without a line of code.

:class:`Workshop` puts the existing widgets in six steps behind a stepper::

    connect -> capture -> label -> train -> compare -> flash

* **connect**: a device URL (default :func:`workbench.default_device_url`, the virtual
  board) and Connect; the board and its sensors are shown;
* **capture**: the :class:`~workbench.ui.CapturePanel` (its own device row hidden: the
  connect step is the one place to connect) and a checklist of takes per label;
* **label**: the :class:`~workbench.ui.Labeler` on the same dataset, and the checklist;
* **train**: a small zoo model (:func:`workbench.train.zoo.imu_cnn`, size ``"xs"``) on
  the labelled takes, with :class:`~workbench.ui.TrainingMonitor`'s curves;
* **compare**: :func:`workbench.optimize.make_variants` and ``measure_all`` on the
  trained model, shown in a :class:`~workbench.ui.CompareTable` for the connected board;
* **flash**: a :class:`~workbench.ui.FlashPanel` on the connected board (gates, upload
  progress, then the board's live predictions).

A step can be opened once every step before it is done; what "done" means is read from the
objects every time (a device is open; the dataset holds enough takes; enough labelled takes
of two labels or more; a trained model; a comparison table; a deployment), so the stepper
never claims more than is true. Long steps (connect, train, compare, flash) run in one
worker thread at a time behind a progress bar; their buttons are disabled meanwhile. An
error stays in its step's status line until the next action in that step.

Headless (tests, scripts), the same verbs drive it: :meth:`connect`, :meth:`train`,
:meth:`compare`, :meth:`deploy` start a job and return its thread (:meth:`wait` joins
it); takes are recorded with ``workshop.recorder.record(...)``; :meth:`refresh` re-reads
the state (a ticker thread does it every ``TICK_S`` while the widget lives); :meth:`close`
stops the ticker, the worker's device and the widgets.

Files: everything goes under ``folder`` (default :func:`workshop_folder`): the takes in
``folder/takes``, the comparison exports in ``folder/out``, deployments in
``folder/registry``.
"""

from __future__ import annotations

import html
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import ipywidgets as w

from .. import default_device_url
from ..capture import Recorder
from ..data import Dataset
from .capture_panel import CapturePanel

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .flash_panel import FlashPanel

__all__ = ["Workshop", "STEPS", "workshop_folder"]

STEPS = ("connect", "capture", "label", "train", "compare", "flash")
TITLES = {"connect": "Connect", "capture": "Capture", "label": "Label", "train": "Train",
          "compare": "Compare", "flash": "Flash"}
TICK_S = 0.5
"""How often the stepper and checklists re-read the state."""
FOLDER_ENV = "WORKBENCH_WORKSHOP_DIR"
"""The environment variable naming the workshop's folder (``workbench dashboard`` sets it)."""
_RED, _GREEN, _GREY = "#c62828", "#1a7f37", "#555"

HELP = {
    "connect": "Connect to your board. The address is filled in for the virtual board; "
               "for a real one, type its port (e.g. /dev/ttyACM0 or COM3).",
    "capture": "Record <b>at least {min_takes} takes of at least two gestures</b>. Type the "
               "gesture's name in <i>Label</i>, press <i>Record</i> and do the gesture until "
               "the take ends. On the virtual board, choose the gesture in <i>Scenario</i> "
               "first: the board's wearer does it for you.",
    "label": "Check the labels. Pick a take in <i>Recording</i> and set its label "
             "(<i>whole recording</i>), or drag over the part that shows the gesture and "
             "press a label. Takes without a label are left out of training.",
    "train": "Train a small network on your labelled takes. Each take goes whole to the "
             "training, validation or test side, so the test accuracy is measured on takes "
             "the network never saw.",
    "compare": "Convert the model for the board (float and 8-bit integer) and measure each "
               "version: size, memory, accuracy, and whether it fits the board.",
    "flash": "Choose a version, check the gates and deploy it to the board. Then do the "
             "gestures and watch the board's own predictions.",
}


def workshop_folder() -> Path:
    """The folder the workshop keeps its files in: ``$WORKBENCH_WORKSHOP_DIR``, else
    ``workshop`` in the current folder (nothing is created here)."""
    return Path(os.environ.get(FOLDER_ENV) or "workshop")


def _coloured(text: str, colour: str) -> str:
    return f"<span style='color:{colour}'>{html.escape(text)}</span>"


class Workshop(w.VBox):
    """Connect, capture, label, train, compare and flash on one board, in one widget.

    ``folder``: where the takes, exports and registry go (default :func:`workshop_folder`).
    ``url``: the device (default :func:`workbench.default_device_url`); it is opened when
    ``connect`` is True, else when Connect is pressed. ``sensor``: the sensor the workshop
    records and trains on (the board's first sensor if it has no such sensor).
    ``min_takes``: labelled takes each label needs (3: one each for training, validation
    and test). ``take_seconds``: the capture panel's take length. ``window_s``: the
    length of a training window; ``epochs``: the most epochs a training runs (early
    stopping may end it sooner). ``techniques``: the variants compared
    (:data:`workbench.optimize.TECHNIQUES`).
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None, url: str | None = None, *,
                 connect: bool = False, sensor: str = "accel", min_takes: int = 3,
                 take_seconds: float = 2.0, window_s: float = 0.5, epochs: int = 30,
                 techniques: tuple[str, ...] = ("float", "int8")) -> None:
        if min_takes < 1:
            raise ValueError(f"min_takes must be at least 1, got {min_takes}")
        if window_s <= 0 or epochs < 1:
            raise ValueError("window_s must be positive and epochs at least 1")
        self.folder = Path(folder) if folder is not None else workshop_folder()
        self.dataset = Dataset(self.folder / "takes")
        self.preferred_sensor = sensor
        self.min_takes = min_takes
        self.window_s = window_s
        self.techniques = tuple(techniques)
        self.recorder = Recorder(self.dataset)
        self.data = None
        """The :class:`workbench.train.fit.TrainingData` of the last training, or None."""
        self.trained = None
        """The last :class:`workbench.train.fit.TrainResult`, or None."""
        self.variants: list = []
        self.table = None
        """The :class:`workbench.optimize.ComparisonTable` of the last comparison, or None."""
        self.monitor = None
        self.labeler = None
        self.compare_view = None
        self.flash = None
        """The :class:`~workbench.ui.FlashPanel` of the flash step (built on first visit)."""
        self.errors: dict[str, str | None] = dict.fromkeys(STEPS)
        """Each step's error, shown until the next action in that step."""
        self.current = "connect"
        self._lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._busy: str | None = None
        self._closed = False
        self._trained_on: tuple | None = None

        # ---- stepper
        self.step_buttons = {s: w.Button(description=f"{i}. {TITLES[s]}",
                                         layout=w.Layout(width="130px"))
                             for i, s in enumerate(STEPS, start=1)}
        for s, b in self.step_buttons.items():
            b.add_class(f"wb-step-{s}")
            b.on_click(lambda _, s=s: self.show(s))
        self.stepper = w.HBox(list(self.step_buttons.values()))
        self.stepper.add_class("wb-stepper")

        # ---- per step: help, content, progress, status
        self.progress = {s: w.IntProgress(value=0, min=0, max=1, description="",
                                          layout=w.Layout(width="420px", display="none"))
                         for s in STEPS}
        self.status = {s: w.HTML() for s in STEPS}

        # connect
        self.url = w.Text(value=url or default_device_url(), description="Device",
                          layout=w.Layout(width="420px"))
        self.connect_button = w.Button(description="Connect", icon="plug", button_style="primary")
        self.connect_button.on_click(lambda _: self.connect())
        self.board_info = w.HTML()

        # capture
        self.capture = CapturePanel(self.dataset, self.url.value, recorder=self.recorder,
                                    connect=False)
        self.capture.seconds.value = take_seconds
        for widget in (self.capture.url, self.capture.connect_button):
            widget.layout.display = "none"      # the connect step is the one place to connect
        self.checklist = w.HTML()
        self.checklist_label = w.HTML()
        self.label_box = w.VBox()

        # train
        self.epochs = w.BoundedIntText(value=epochs, min=1, max=500, description="Epochs",
                                       layout=w.Layout(width="180px"))
        self.train_button = w.Button(description="Train", icon="play", button_style="primary")
        self.train_button.on_click(lambda _: self.train())
        self.train_box = w.VBox()

        # compare
        self.compare_button = w.Button(description="Convert and measure", icon="balance-scale",
                                       button_style="primary", layout=w.Layout(width="220px"))
        self.compare_button.on_click(lambda _: self.compare())
        self.compare_box = w.VBox()

        # flash
        self.flash_box = w.VBox()

        contents = {
            "connect": [w.HBox([self.url, self.connect_button]), self.board_info],
            "capture": [self.capture, self.checklist],
            "label": [self.label_box, self.checklist_label],
            "train": [w.HBox([self.epochs, self.train_button]), self.train_box],
            "compare": [self.compare_button, self.compare_box],
            "flash": [self.flash_box],
        }
        self.pages: dict[str, w.VBox] = {}
        for i, s in enumerate(STEPS, start=1):
            text = HELP[s].format(min_takes=min_takes)
            page = w.VBox([w.HTML(f"<h3>Step {i} of {len(STEPS)}: {TITLES[s]}</h3><p>{text}</p>"),
                           *contents[s], self.progress[s], self.status[s]])
            page.add_class(f"wb-page-{s}")
            page.layout.display = "none"
            self.pages[s] = page
        super().__init__([self.stepper, *self.pages.values()])
        self.add_class("wb-workshop")
        self.show("connect")
        self._ticker = threading.Event()
        threading.Thread(target=self._tick, daemon=True, name="workshop state").start()
        if connect:
            self.connect()

    # ------------------------------------------------------------ state
    @property
    def sensor(self) -> str | None:
        """The sensor recorded and trained on (None when not connected)."""
        ids = [s.id for s in self.recorder.sensors]
        if not ids:
            return None
        return self.preferred_sensor if self.preferred_sensor in ids else ids[0]

    def takes(self) -> tuple[Counter, int]:
        """(labelled takes per label, takes without any label) of the workshop's sensor in
        the dataset (all sensors when not connected)."""
        sensor = self.sensor
        per_label: Counter = Counter()
        unlabelled = 0
        for meta in self.dataset.recordings():
            if sensor is not None and meta.sensor != sensor:
                continue
            labels = {r.label for r in meta.regions} if meta.regions else (
                {meta.label} if meta.label else set())
            if not labels:
                unlabelled += 1
            for label in labels:
                per_label[label] += 1
        return per_label, unlabelled

    def done(self, step: str) -> bool:
        """Whether ``step`` is done, read from the objects now."""
        if step == "connect":
            return self.recorder.device is not None
        if step == "capture":
            per_label, unlabelled = self.takes()
            return sum(per_label.values()) + unlabelled >= 2 * self.min_takes
        if step == "label":
            per_label, _ = self.takes()
            return sum(1 for n in per_label.values() if n >= self.min_takes) >= 2
        if step == "train":
            return self.trained is not None
        if step == "compare":
            return self.table is not None
        if step == "flash":
            return self.flash is not None and self.flash.result is not None
        raise KeyError(f"no step {step!r}; steps: {', '.join(STEPS)}")

    def reachable(self, step: str) -> bool:
        """A step can be opened when every step before it is done."""
        return all(self.done(s) for s in STEPS[:STEPS.index(step)])

    # ------------------------------------------------------------ navigation
    def show(self, step: str) -> None:
        """Open ``step`` (what its stepper button does). Raises KeyError for an unknown step
        and ValueError for one whose previous steps are not done (the status says which)."""
        if step not in STEPS:
            raise KeyError(f"no step {step!r}; steps: {', '.join(STEPS)}")
        missing = [s for s in STEPS[:STEPS.index(step)] if not self.done(s)]
        if missing:
            raise ValueError(f"finish {TITLES[missing[0]]} first")
        leaving, self.current = self.current, step
        if leaving == "capture" and step != "capture":
            self.recorder.stop_preview()        # the board's stream is free for other steps
        if leaving == "flash" and step != "flash" and self.flash is not None \
                and self.flash.live is not None:
            self.flash.live.stop()
        for s, page in self.pages.items():
            page.layout.display = "" if s == step else "none"
        if step == "capture":
            self._resume_preview()
        elif step == "label":
            self._show_labeler()
        elif step == "flash":
            self._show_flash()
        self.refresh()

    def _resume_preview(self) -> None:
        rec = self.recorder
        busy = rec.session is not None and rec.session.running
        if rec.device is not None and rec.device.mode == "framed" and not rec.previewing \
                and not busy and self.capture.sensor.value:
            try:
                rec.start_preview(self.capture.sensor.value)
            except Exception as exc:  # noqa: BLE001 - shown, the step stays usable
                self._set_error("capture", f"the live view cannot start: {exc}")

    def _show_labeler(self) -> None:
        from .labeler import Labeler

        if self.labeler is None:
            self.labeler = Labeler(self.dataset)
            self.label_box.children = (self.labeler,)
        else:
            self.labeler.refresh()

    # ------------------------------------------------------------ jobs
    def _start(self, step: str, job: Callable[[], None], message: str,
               steps: int = 1) -> threading.Thread | None:
        with self._lock:
            if self._closed or self._busy is not None:
                if self._busy is not None:
                    self.status[step].value = _coloured(
                        f"wait: {TITLES[self._busy].lower()} is still running", _GREY)
                return None
            self._busy = step
            self.errors[step] = None
        bar = self.progress[step]
        bar.bar_style, bar.max, bar.value = "info", max(1, steps), 0
        bar.layout.display = ""
        self.status[step].value = _coloured(message, _GREY)
        self._buttons()

        def run() -> None:
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - every failure is shown, not raised
                self._set_error(step, f"{type(exc).__name__}: {exc}" if not str(exc)
                                else str(exc))
                bar.bar_style = "danger"
            else:
                bar.value, bar.bar_style = bar.max, "success"
            finally:
                with self._lock:
                    self._busy = None
                if not self._closed:
                    self.refresh()

        worker = self._worker = threading.Thread(target=run, daemon=True,
                                                 name=f"workshop {step}")
        worker.start()
        return worker

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running job; True when none runs now."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    @property
    def busy(self) -> str | None:
        """The step whose job is running, or None."""
        return self._busy

    def _set_error(self, step: str, text: str) -> None:
        self.errors[step] = text
        self.status[step].value = _coloured(text, _RED)

    def _say(self, step: str, text: str, colour: str = _GREY) -> None:
        self.status[step].value = _coloured(text, colour)

    # ------------------------------------------------------------ connect
    def connect(self, url: str | None = None) -> threading.Thread | None:
        """Connect to ``url`` (default: the box's) in the background (what Connect does).
        Later steps' results stay; the flash step is rebuilt for the new device."""
        if url is not None:
            self.url.value = url
        target = self.url.value.strip()

        def job() -> None:
            self.capture.url.value = target
            self.capture.connect()
            self.progress["connect"].value = 1
            if self.recorder.device is None:
                raise ConnectionError(self.capture.error or f"cannot connect to {target}")
            sensor = self.sensor
            if sensor is not None and self.capture.sensor.value != sensor \
                    and sensor in [v for _, v in self.capture.sensor.options]:
                self.capture.sensor.value = sensor
            if self.current != "capture":
                self.recorder.stop_preview()
            self._drop_flash()
            dev = self.recorder.device
            info = dev.info
            who = f"{info.board_name} ({info.board_id})" if info else "a line-mode sketch"
            virtual = " &middot; a <b>virtual board</b>" if self.recorder.is_virtual else ""
            sensors = ", ".join(f"{s.id} ({s.rate_hz:g} Hz)" for s in self.recorder.sensors)
            self.board_info.value = (f"<b>{html.escape(who)}</b> at {html.escape(dev.url)}"
                                     f"{virtual}<br>sensors: {html.escape(sensors)}")
            self._say("connect", f"connected to {who}: go on to Capture", _GREEN)

        return self._start("connect", job, f"connecting to {target}...", steps=2)

    # ------------------------------------------------------------ train
    def train(self) -> threading.Thread | None:
        """Train a small model on the labelled takes in the background (what Train does)."""
        if not self.reachable("train"):
            self._set_error("train", "record and label more takes first (steps 2 and 3)")
            return None
        epochs = int(self.epochs.value)
        sensor = self.sensor
        rate = next((s.rate_hz for s in self.recorder.sensors if s.id == sensor), None)
        signature = self._data_signature()

        def job() -> None:
            bar = self.progress["train"]
            from ..deploy.gates import DEFAULT_MIN_ACCURACY
            from ..train.fit import TrainConfig, TrainingData, train
            from ..train.zoo import imu_cnn
            from .training import TrainingMonitor

            bar.value = 1
            self._say("train", "cutting the takes into windows...")
            length = max(8, round(self.window_s * (rate or 100.0)))
            data = TrainingData.from_dataset(self.dataset, length=length,
                                             stride=max(1, length // 2), sensor=sensor)
            if not len(data.X_test):
                raise ValueError("no test windows: record more takes of each label "
                                 f"(at least {self.min_takes})")
            bar.value = 2
            monitor = TrainingMonitor(classes=data.classes, epochs=epochs, title="your model")
            monitor.progress.observe(lambda ch: setattr(bar, "value", 2 + ch["new"]),
                                     names="value")
            self.monitor = monitor
            self.train_box.children = (monitor,)
            self._say("train", f"training on {len(data.X_train)} windows of {length} samples "
                               f"({', '.join(data.classes)})...")
            result = train(lambda: imu_cnn(data.input_shape, data.n_classes, "xs"), data,
                           TrainConfig(epochs=epochs, patience=10, batch_size=16),
                           callbacks=[monitor.callback()])
            monitor.show_result(result.record)
            self.data, self.trained, self._trained_on = data, result, signature
            self.table, self.variants = None, []      # a new model: compare again
            self.compare_box.children = ()
            self._drop_flash()
            test = result.record.metrics["test"]
            said = (f"trained in {result.record.seconds:.0f} s: test accuracy "
                    f"{test['accuracy']:.0%} on {test['n']} windows of takes it never saw.")
            if test["accuracy"] < DEFAULT_MIN_ACCURACY:
                self._say("train", f"{said} The flash step asks for {DEFAULT_MIN_ACCURACY:.0%}: "
                                   "record more (or longer) takes in step 2 and train again.",
                          "#b26a00")
            else:
                self._say("train", f"{said} Go on to Compare.", _GREEN)

        return self._start("train", job, "loading TensorFlow...", steps=epochs + 3)

    def _data_signature(self) -> tuple:
        return tuple((m.id, m.label, tuple(m.regions)) for m in self.dataset.recordings())

    # ------------------------------------------------------------ compare
    def compare(self) -> threading.Thread | None:
        """Make and measure the variants in the background (what Convert and measure does)."""
        if self.trained is None or self.data is None:
            self._set_error("compare", "train a model first (step 4)")
            return None
        model, data = self.trained.model, self.data
        device = self.recorder.device
        board = device.info.board_id if device is not None and device.info else "nano33ble"

        def job() -> None:
            from ..optimize import ComparisonTable, make_variants, measure_all
            from .compare import CompareTable

            bar = self.progress["compare"]

            def tick(line: str) -> None:
                bar.value = min(bar.max, bar.value + 1)
                self._say("compare", line)

            variants = make_variants(model, data, techniques=self.techniques, progress=tick)
            measured = measure_all(variants, data, progress=tick)
            table = ComparisonTable(measured, board, reference="float32")
            self.variants, self.table = variants, table
            self.compare_view = CompareTable(table, folder=self.folder / "out",
                                             on_deploy=self._deploy_row)
            self.compare_box.children = (self.compare_view,)
            self._drop_flash()
            front = table.pareto("flash_bytes")
            best = f" The best trade-off: {', '.join(front)}." if front else ""
            self._say("compare", f"{len(measured)} versions measured for {board}.{best} "
                                 "Deploy one from its row, or go on to Flash.", _GREEN)

        return self._start("compare", job, "converting the model...",
                           steps=2 * len(self.techniques))

    def _deploy_row(self, name: str) -> None:
        """A comparison row's Deploy button: open the flash step on that row and deploy."""
        self.show("flash")
        self.deploy(name)

    # ------------------------------------------------------------ flash
    def _drop_flash(self) -> None:
        panel, self.flash = self.flash, None
        if panel is not None:
            self.flash_box.children = ()
            if panel.live is not None:
                panel.live.stop()
            panel.close()

    def _show_flash(self) -> FlashPanel | None:
        """Build the flash panel for the current table and device (once for each pair)."""
        if self.flash is not None:
            return self.flash
        from .flash_panel import FlashPanel

        data, device = self.data, self.recorder.device
        self.recorder.stop_preview()
        live = dict(sensors=[self.sensor], length=data.window["length"],
                    rate_hz=data.window["rate_hz"], hop=max(1, data.window["length"] // 2),
                    classes=data.classes, preprocess=data.normalizer.transform)
        try:
            self.flash = FlashPanel(self.table, device, variants=self.variants,
                                    registry=self.folder / "registry", data=data,
                                    dataset=self.dataset, live=live)
        except Exception as exc:  # noqa: BLE001 - shown in the step
            self._set_error("flash", f"cannot offer the models: {exc}")
            return None
        for widget in (self.flash.url, self.flash.connect_button, self.flash.disconnect_button):
            widget.layout.display = "none"      # the board is the one connected in step 1
        front = [n for n in self.table.pareto("flash_bytes") if self.table.verdicts[n].fits]
        if front:
            self.flash.select(front[0])
        self.flash_box.children = (self.flash,)
        return self.flash

    def deploy(self, name: str | None = None) -> threading.Thread | None:
        """Gate and deploy the variant ``name`` (default: the one chosen in the flash panel)
        to the connected board; returns the flash panel's worker. The flash step must be
        reachable (ValueError otherwise)."""
        if not self.reachable("flash"):
            raise ValueError("compare the versions first (step 5)")
        panel = self._show_flash()
        if panel is None:
            return None
        self.errors["flash"] = None
        self.status["flash"].value = ""
        if name is not None:
            panel.select(name)
        return panel.deploy()

    # ------------------------------------------------------------ display
    def _checklist(self) -> str:
        per_label, unlabelled = self.takes()
        sensor = self.sensor or "any sensor"
        rows = []
        for label, n in sorted(per_label.items()):
            ok = n >= self.min_takes
            mark = "&#10004;" if ok else f"{n}/{self.min_takes}"
            rows.append(f"<tr data-label='{html.escape(label)}'><td>{html.escape(label)}</td>"
                        f"<td style='text-align:right'>{n}</td>"
                        f"<td style='color:{_GREEN if ok else _GREY}'>{mark}</td></tr>")
        ready = sum(1 for n in per_label.values() if n >= self.min_takes)
        need = max(0, 2 - ready)
        summary = ("ready to train" if not need else
                   f"{need} more label{'s' if need > 1 else ''} with {self.min_takes} takes each "
                   "to go")
        note = (f"<br><span style='color:#b26a00'>{unlabelled} take(s) without a label: "
                "label them in step 3, or they are left out</span>" if unlabelled else "")
        table = (f"<table class='wb-takes'><tr><th>label</th><th>takes</th><th></th></tr>"
                 f"{''.join(rows)}</table>" if rows else "<i>no labelled takes yet</i>")
        return (f"<div class='wb-checklist'><b>Takes of {html.escape(sensor)}</b> in "
                f"{html.escape(str(self.dataset.root))}: {table}<b>{summary}</b>{note}</div>")

    def _buttons(self) -> None:
        busy = self._busy is not None
        self.connect_button.disabled = busy
        self.train_button.disabled = busy or not self.reachable("train")
        self.compare_button.disabled = busy or self.trained is None
        self.epochs.disabled = busy

    def refresh(self) -> None:
        """Re-read the state: the stepper, the checklists, the buttons (the ticker calls
        this every TICK_S)."""
        if self._closed:
            return
        rec = self.recorder
        if self.current != "capture" and rec.previewing:
            # the capture panel returns to its live view when a take ends, also one that
            # ends after the participant moved on: the board's stream is left free
            rec.stop_preview()
        done = {s: self.done(s) for s in STEPS}
        for i, s in enumerate(STEPS):
            b = self.step_buttons[s]
            b.disabled = not all(done[p] for p in STEPS[:i])
            b.icon = "check" if done[s] else ""
            b.button_style = "primary" if s == self.current else ("success" if done[s] else "")
        checklist = self._checklist()
        if self.current in ("capture", "label"):
            self.checklist.value = checklist
            self.checklist_label.value = checklist
        if self.trained is not None and self._trained_on is not None and \
                self.current == "train" and self._data_signature() != self._trained_on \
                and self._busy != "train" and not self.errors["train"]:
            self._say("train", "the takes changed since this model was trained: train again "
                               "to use them", "#b26a00")
        self._buttons()

    def _tick(self) -> None:
        while not self._ticker.wait(TICK_S):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a refresh that fails once is tried again
                pass

    def close(self) -> None:
        """Stop the ticker, wait for a running job, close the flash panel, the capture panel
        (which closes the device) and the widgets."""
        self._ticker.set()
        self.wait(60)
        self._closed = True
        self._drop_flash()
        self.capture.close()
        for widget in (self.labeler, self.monitor, self.compare_view):
            if widget is not None:
                widget.close()
        super().close()
