"""The flash panel: choose a model and a device, see the gates, deploy with one button.

It drives :func:`workbench.deploy.run_gates` and :func:`workbench.deploy.deploy_model` and
shows what they return; it holds no logic of its own. Everything it does works headless::

    panel = FlashPanel(variants, registry="registry", data=data)   # connects to the default device
    display(panel)
    # the same, without the panel:
    deploy_model(variant, open_device(url), registry="registry", data=data)

Layout: the model menu; device URL + Connect/Disconnect; Check gates, the force box (shown
only after a gate failed) and Deploy; the gate report; the progress bar with bytes sent of
the total, bytes/s and time left; one status line with the result or the error; with
``live=``, after a deployment, the board's live predictions on its own sensor stream
(:class:`~workbench.ui.LivePredictions`).

Threads: connecting, checking the gates and deploying each run in one worker thread (one at
a time; the buttons are disabled meanwhile), so the notebook stays responsive. Every update
a worker makes carries the number of the job that made it and is dropped when another job
has started since or the panel was closed, so a late update never overwrites the status.
:meth:`wait` joins the worker; :meth:`close` waits for it, then closes the device the panel
opened (a device passed in stays open: it belongs to the caller).
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w

from .. import default_device_url
from ..deploy.flashing import deploy_model
from ..deploy.gates import GateFailed, GateReport, run_gates
from ..deploy.registry import ModelRegistry, ModelVersion
from ..link import Device, open_device
from ..optimize.table import ComparisonTable

__all__ = ["FlashPanel"]

PROGRESS_PERIOD_S = 0.1
"""Least time between two progress-label updates during an upload (the last always shows)."""
CLOSE_WAIT_S = 30.0
"""How long :meth:`FlashPanel.close` waits for a running job before leaving it behind."""

_RED, _GREEN = "#c62828", "#1a7f37"


def _coloured(text: str, colour: str) -> str:
    return f"<span style='color:{colour}'>{html.escape(text)}</span>"


def _size(n: float) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _slot_name(index: int) -> str:
    return "AB"[index] if 0 <= index < 2 else str(index)


def offer_models(models: Any, variants: Sequence[Any] | None = None) -> list[tuple[str, Any, Any]]:
    """(label, model, measurement or None) for each model a panel offers: see
    :class:`FlashPanel` for what ``models`` may be and what is raised."""
    if isinstance(models, ModelRegistry):
        out = []
        for name in models.models():
            for v in reversed(models.versions(name)):
                out.append((f"{v.label} ({v.sha256[:12]}, {v.size:,} bytes)", v, None))
        if not out:
            raise ValueError(f"the registry {models.root} holds no model versions; "
                             "register one first (ModelRegistry.register)")
        return out
    if isinstance(models, ComparisonTable):
        by_name = {getattr(v, "name", None): v for v in variants or ()}
        out = [(f"{m.name} ({m.kind}, {m.model_bytes:,} bytes)", by_name[m.name], m)
               for m in models.measurements if m.name in by_name]
        if not out:
            raise ValueError("none of the table's rows has a variant to deploy: pass "
                             "variants=[...] with the Variants the table measured "
                             f"(rows: {', '.join(models.names) or 'none'})")
        return out
    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
        raise TypeError("a flash panel takes a list of Variants, a ComparisonTable with "
                        f"variants=..., or a ModelRegistry, not {type(models).__name__}")
    out = []
    for v in models:
        if not isinstance(getattr(v, "tflite", None), (bytes, bytearray)):
            raise TypeError(f"not a Variant (no .tflite bytes): {type(v).__name__}")
        out.append((f"{v.name} ({v.kind}, {len(v.tflite):,} bytes)", v, None))
    if not out:
        raise ValueError("no variants to deploy: the list is empty")
    return out


class FlashPanel(w.VBox):
    """Gate and deploy a model onto a device with one button.

    ``models``: what can be deployed: a list of :class:`workbench.optimize.Variant`; a
    :class:`~workbench.optimize.table.ComparisonTable` together with ``variants=`` (its rows
    that have a variant of the same name are offered, and each row's measurement is reused by
    the gates); or a :class:`~workbench.deploy.ModelRegistry` (every version of every model,
    newest first; deployments are then recorded in it).
    ``device``: an open :class:`workbench.link.Device` to use (the panel does not close it);
    otherwise ``url`` (default :func:`workbench.default_device_url`) is opened when
    ``connect`` is True, or when Connect is pressed.
    ``registry``: where deployments of variants are recorded (a ModelRegistry or its folder;
    None records nothing unless ``models`` is a registry).
    ``live``: how to feed the deployed model from the board's sensors, as
    :class:`workbench.deploy.LivePredictor` takes it (``sensors=``, ``length=``,
    ``rate_hz=``, ``classes=``, ``preprocess=``, ``hop=``); after each successful deploy the
    panel shows the board's live predictions (None: not shown).
    ``gate_options``: passed to :func:`run_gates` as they are (``data=``, ``reference=``,
    ``min_accuracy=``, ``latency_budget_ms=``, ``dataset=``, ...).

    Raises ValueError when there is nothing to offer (an empty list, a table none of whose
    rows has a variant) and TypeError for a ``models`` of another type.
    """

    _built = False   # True once the widgets exist; close() on a refused panel does nothing

    def __init__(self, models: Sequence[Any] | ComparisonTable | ModelRegistry,
                 device: Device | None = None, *, variants: Sequence[Any] | None = None,
                 registry: ModelRegistry | str | None = None, url: str | None = None,
                 connect: bool = True, live: dict[str, Any] | None = None,
                 **gate_options: Any) -> None:
        self.live_options = dict(live) if live is not None else None
        self.live = None
        """The :class:`~workbench.ui.LivePredictions` shown after the last deploy, or None."""
        self.registry = registry if registry is None or isinstance(registry, ModelRegistry) \
            else ModelRegistry(registry)
        if isinstance(models, ModelRegistry) and self.registry is None:
            self.registry = models
        self.gate_options = dict(gate_options)
        self._choices = offer_models(models, variants)
        self.device: Device | None = None
        self._owns_device = False
        self.report: GateReport | None = None
        """The last gate report shown (for the chosen model on the connected board), or None."""
        self.result = None
        """The last :class:`workbench.deploy.DeployResult`, or None."""
        self.error: BaseException | None = None
        """The exception of the last job that failed, or None."""
        self._report_for: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._job = 0
        self._worker: threading.Thread | None = None
        self._running: int | None = None      # the number of the job running, if any
        self._closed = False

        self.model = w.Dropdown(description="Model", layout=w.Layout(width="420px"),
                                options=[(label, i) for i, (label, _, _) in enumerate(self._choices)])
        self.url = w.Text(value=(device.url if device is not None else url) or default_device_url(),
                          description="Device", layout=w.Layout(width="360px"))
        self.connect_button = w.Button(description="Connect", icon="plug")
        self.disconnect_button = w.Button(description="Disconnect", icon="times", disabled=True)
        self.gates_button = w.Button(description="Check gates", icon="check-square-o",
                                     disabled=True)
        self.force = w.Checkbox(value=False, description="force: deploy although a gate failed",
                                indent=False, layout=w.Layout(display="none", width="auto"))
        self.deploy_button = w.Button(description="Deploy", icon="upload", button_style="primary",
                                      disabled=True)
        self.gates = w.HTML()
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Upload",
                                      layout=w.Layout(width="420px"))
        self.progress_label = w.HTML()
        self.status = w.HTML()
        self.live_box = w.VBox()
        super().__init__([
            self.model,
            w.HBox([self.url, self.connect_button, self.disconnect_button]),
            w.HBox([self.gates_button, self.deploy_button, self.force]),
            self.gates,
            w.HBox([self.progress, self.progress_label]),
            self.status,
            self.live_box,
        ])
        self.connect_button.on_click(lambda _: self.connect())
        self.disconnect_button.on_click(lambda _: self.disconnect())
        self.gates_button.on_click(lambda _: self.check_gates())
        self.deploy_button.on_click(lambda _: self.deploy())
        self.model.observe(lambda _: self._selection_changed(), names="value")
        self.force.observe(lambda _: self._buttons(), names="value")
        self._built = True

        if device is not None:
            self._attach(device, owned=False)
        elif connect:
            self.connect()
        else:
            self._set_status("not connected: press Connect")
            self._buttons()

    # ------------------------------------------------------------ what can be deployed
    def select(self, name: str) -> None:
        """Choose the model called ``name`` (a variant's or table row's name, or a registry
        label such as ``"kws v2"``). Raises KeyError naming the choices."""
        for i, (label, model, _) in enumerate(self._choices):
            label_name = model.label if isinstance(model, ModelVersion) else model.name
            if name in (label_name, label):
                self.model.value = i
                return
        raise KeyError(f"no model {name!r} in this panel; choices: "
                       + ", ".join(label for label, _, _ in self._choices))

    @property
    def chosen(self) -> Any:
        """The model chosen in the menu (a Variant or a ModelVersion), or None."""
        return None if self.model.value is None else self._choices[self.model.value][1]

    def _options_for(self, index: int) -> dict[str, Any]:
        options = dict(self.gate_options)
        measurement = self._choices[index][2]
        if measurement is not None:
            options.setdefault("measurement", measurement)
        return options

    # ------------------------------------------------------------ the device
    def connect(self) -> threading.Thread | None:
        """Open the URL in the box in the background (what Connect does); the status says
        how it went. Returns the worker (see :meth:`wait`), or None when busy."""
        url = self.url.value.strip()
        self.disconnect()

        def job(token: int) -> None:
            try:
                dev = open_device(url)
            except Exception as exc:  # noqa: BLE001 - any failure is shown, not raised
                self._fail(token, f"cannot connect to {url}: ", exc)
                return
            with self._lock:
                if token != self._job:   # closed or superseded meanwhile
                    dev.close()
                    return
            self._attach(dev, owned=True, token=token)

        return self._start(job, f"connecting to {url}...")

    def _attach(self, device: Device, *, owned: bool, token: int | None = None) -> None:
        self.device, self._owns_device = device, owned
        self._forget_report()
        if device.mode != "framed" or device.info is None:
            self._set_status(f"{device.url} is a line-mode sketch, not the workbench firmware: "
                             "it cannot take models", token=token, colour=_RED)
        else:
            info = device.info
            try:
                table = device.slots()
            except Exception as exc:  # noqa: BLE001 - shown, not raised
                running = f"its slot table could not be read ({exc})"
            else:
                active = table.slots[table.active] if table.active < len(table.slots) else None
                running = (f"slot {_slot_name(active.index)} runs {active.name or 'a model'} "
                           f"({active.sha256.hex()[:12]})") if active is not None else "no model"
            self._set_status(f"connected to {info.board_id} at {device.url}: {running}",
                             token=token)
        self.url.value = device.url
        self._buttons()

    def disconnect(self) -> None:
        """Let go of the device (closed if the panel opened it). Does nothing while a job
        runs on it (the buttons are disabled then)."""
        if self._busy() or self.device is None:
            return
        self._stop_live()
        dev, owned = self.device, self._owns_device
        self.device, self._owns_device = None, False
        self._forget_report()
        if owned:
            dev.close()
        self._set_status("not connected: press Connect")
        self._buttons()

    def _board(self) -> str | None:
        dev = self.device
        if dev is None or dev.mode != "framed" or dev.info is None:
            return None
        return dev.info.board_id

    # ------------------------------------------------------------ gates and deploy
    def check_gates(self) -> threading.Thread | None:
        """Run the gates for the chosen model on the connected device's board in the
        background (what Check gates does) and show the report. Returns the worker, or
        None when a job is running or there is no device (the status says so)."""
        if self._busy():
            return None
        index, board = self.model.value, self._board()
        if index is None or board is None:
            self._set_status("cannot check the gates: " + (
                "connect a device first" if self.device is None else
                "the device is not the workbench firmware (no board to check for)"), colour=_RED)
            return None
        model, options = self._choices[index][1], self._options_for(index)

        def job(token: int) -> None:
            try:
                blob = model.read_model() if isinstance(model, ModelVersion) else model
                report = run_gates(blob, board, **options)
            except Exception as exc:  # noqa: BLE001
                self._fail(token, "the gates could not run: ", exc)
                return
            self._show_report(token, report, (index, board))
            self._set_status(f"gates checked on {board}: "
                             + ("all passed" if report.passed else
                                f"{len(report.failed)} failed; tick force to deploy anyway"),
                             token=token, colour=_GREEN if report.passed else _RED)

        return self._start(job, f"checking the gates on {board}...")

    def deploy(self, name: str | None = None) -> threading.Thread | None:
        """Gate, upload and commit the chosen model in the background (what Deploy does),
        with the progress bar following the upload; the status says what happened. ``name``
        chooses the model first (as :meth:`select`; so ``CompareTable(table,
        on_deploy=panel.deploy)`` deploys a table row). The gate report already shown for
        this model and board is reused. A failed gate stops it unless ``force`` is ticked.
        Returns the worker, or None when it cannot start: a job is running, or there is no
        device (the status says so)."""
        if self._busy():
            return None
        if name is not None:
            self.select(name)
        index, board, dev = self.model.value, self._board(), self.device
        if index is None or board is None:
            self._set_status("cannot deploy: " + ("connect a device first" if dev is None else
                                                  "the device cannot take models"), colour=_RED)
            return None
        model, options = self._choices[index][1], self._options_for(index)
        report = self.report if self._report_for == (index, board) else None
        force = bool(self.force.value)
        registry = self.registry
        self.progress.value, self.progress.max, self.progress.bar_style = 0, 1, ""
        self.progress_label.value = ""

        def job(token: int) -> None:
            first: list[tuple[float, int]] = []    # (time, bytes) of the first acknowledgement
            last = [0.0]

            def progress(sent: int, total: int) -> None:
                now = time.monotonic()
                if not first:
                    first.append((now, sent))
                if sent < total and now - last[0] < PROGRESS_PERIOD_S:
                    return
                last[0] = now
                t0, s0 = first[0]
                # the rate between the first acknowledgement and this one (None: one so far)
                rate = (sent - s0) / (now - t0) if now > t0 and sent > s0 else None
                self._show_progress(token, sent, total, rate)

            try:
                result = deploy_model(model, dev, registry=registry, gates=report, force=force,
                                      progress=progress, **options)
            except GateFailed as exc:
                self._show_report(token, exc.report, (index, board))
                self._fail(token, "not deployed, nothing was sent: ", exc)
                return
            except Exception as exc:  # noqa: BLE001
                self._fail(token, "deploy failed: ", exc)
                with self._lock:
                    if token == self._job:
                        self.progress.bar_style = "danger"
                return
            self._show_report(token, result.gates, (index, board))
            slot = result.slot
            what = result.version.label if result.version is not None else \
                getattr(model, "name", "model")
            self._set_status(
                f"deployed {what} to slot {_slot_name(slot.index)} ({slot.state.name.lower()}): "
                f"SHA-256 {slot.sha256.hex()[:12]}, arena {slot.arena_bytes:,} bytes, "
                f"{result.upload_seconds:.1f} s" + (" (FORCED past a failed gate)"
                                                    if result.forced else ""),
                token=token, colour=_GREEN, result=result)
            self._show_live(token, model, dev)

        self._stop_live()
        return self._start(job, f"deploying to {dev.url}...")

    def _show_live(self, token: int, model: Any, dev: Device) -> None:
        """After a deploy: the board's live predictions, when ``live=`` said how."""
        if self.live_options is None:
            return
        from ..deploy.live import LivePredictor
        from .live_predictions import LivePredictions

        try:
            predictor = LivePredictor(dev, model, **self.live_options)
        except Exception as exc:  # noqa: BLE001 - shown, the deployment stands
            self._set_status(f"deployed, but live predictions cannot start: {exc}",
                             token=token, colour=_RED)
            return
        with self._lock:
            if self._closed or token != self._job:
                return
            self.live = LivePredictions(predictor)
            self.live_box.children = [w.HTML("<b>Live predictions on the board</b>"), self.live]

    def _stop_live(self) -> None:
        """Stop and remove the live predictions (before another job uses the device)."""
        live, self.live = self.live, None
        if live is not None:
            live.close()
            self.live_box.children = []

    # ------------------------------------------------------------ worker and display
    def _busy(self) -> bool:
        return self._running is not None

    def _start(self, job: Callable[[int], None], message: str) -> threading.Thread | None:
        with self._lock:
            if self._closed or self._busy():
                return None
            self._job += 1
            token = self._running = self._job
            self.error = None
            worker = self._worker = threading.Thread(target=self._run, args=(job, token),
                                                     daemon=True, name="flash panel")
        self._set_status(message, token=token, colour="#555")
        self._buttons()
        worker.start()
        return worker

    def _run(self, job: Callable[[int], None], token: int) -> None:
        try:
            job(token)
        finally:
            with self._lock:
                if self._running == token:
                    self._running = None
            if not self._closed:
                self._buttons()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running job (connect, gates or deploy); True when none runs now."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def _set_status(self, text: str, *, token: int | None = None, colour: str | None = None,
                    result: Any = None) -> None:
        with self._lock:
            if self._closed or token is not None and token != self._job:
                return        # a stale update from a job that is no longer the current one
            if result is not None:
                self.result = result
            self.status.value = _coloured(text, colour) if colour else html.escape(text)

    def _fail(self, token: int, prefix: str, exc: BaseException) -> None:
        with self._lock:
            if token == self._job:
                self.error = exc
        message = str(exc) or type(exc).__name__
        self._set_status(prefix + message, token=token, colour=_RED)

    def _show_report(self, token: int, report: GateReport, key: tuple[int, str]) -> None:
        with self._lock:
            if self._closed or token != self._job:
                return
            self.report, self._report_for = report, key
            self.gates.value = report._repr_html_()
            if report.failed:
                self.force.layout.display = ""

    def _show_progress(self, token: int, sent: int, total: int, rate: float | None) -> None:
        parts = [f"{sent:,} / {total:,} bytes"]
        if rate:
            parts.append(f"{_size(rate)}/s")
            if sent < total:
                parts.append(f"{(total - sent) / rate:.1f} s left")
        text = " &middot; ".join(parts)
        with self._lock:
            if self._closed or token != self._job:
                return
            with self.progress.hold_sync():
                self.progress.max = max(total, 1)
                self.progress.value = min(sent, total)
                if sent >= total:
                    self.progress.bar_style = "success"
            self.progress_label.value = text

    def _forget_report(self) -> None:
        self.report, self._report_for = None, None
        self.gates.value = ""
        self.force.value = False
        self.force.layout.display = "none"

    def _selection_changed(self) -> None:
        if not self._busy():
            self._forget_report()
        self._buttons()

    def _buttons(self) -> None:
        """Enable what can be done now: nothing while a job runs; gates and deploy only with
        a model and a framed device; deploy not after a failed gate unless force is ticked."""
        busy, closed = self._busy(), self._closed
        ready = not busy and not closed and self.model.value is not None \
            and self._board() is not None
        failed = self.report is not None and bool(self.report.failed) \
            and self._report_for == (self.model.value, self._board())
        self.connect_button.disabled = busy or closed
        self.disconnect_button.disabled = busy or closed or self.device is None
        self.model.disabled = busy
        self.gates_button.disabled = not ready
        self.deploy_button.disabled = not ready or (failed and not self.force.value)

    def close(self) -> None:
        """Wait for a running job (up to CLOSE_WAIT_S), close the device if the panel opened
        it, and close the widgets. Updates from a job still running afterwards are dropped."""
        if not self._built:
            return
        worker = self._worker
        if worker is not None:
            worker.join(CLOSE_WAIT_S)
        self._stop_live()
        with self._lock:
            self._closed = True
            self._job += 1
        if self._owns_device and self.device is not None:
            self.device.close()
        self.device = None
        for child in (self.model, self.url, self.connect_button, self.disconnect_button,
                      self.gates_button, self.force, self.deploy_button, self.gates,
                      self.progress, self.progress_label, self.status, self.live_box):
            child.close()
        super().close()
