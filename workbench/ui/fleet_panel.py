"""The fleet panel: one model onto several devices, and each device's state as it goes.

It drives :func:`workbench.deploy.update_fleet` and shows what it reports; it holds no
logic of its own. Everything it does works headless::

    panel = FleetPanel(variants, urls=["sim://nano33ble?flash=a.flash",
                                       "sim://nano33ble?flash=b.flash"], registry="registry")
    display(panel)
    # the same, without the panel:
    update_fleet(variant, [open_device(u) for u in urls], registry="registry")

Layout: the model menu (as in :class:`~workbench.ui.FlashPanel`); the device URLs, one per
line, and Connect; Update all; one row per device (URL, board, what it ran, its state, a
bar with the bytes sent, and what happened); one status line.

Threads: connecting and updating run in one worker thread at a time (the buttons are
disabled meanwhile). The rows are redrawn from the worker at most every
``REDRAW_PERIOD_S`` and once at the end. :meth:`wait` joins the worker; :meth:`close`
waits for it, then closes the devices the panel opened.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from ..deploy.fleet import DeviceUpdate, update_fleet
from ..deploy.registry import ModelRegistry
from ..link import Device, open_device
from .flash_panel import offer_models

__all__ = ["FleetPanel"]

REDRAW_PERIOD_S = 0.1
"""Least time between two redraws of the device rows during an update."""
CLOSE_WAIT_S = 30.0

_COLOURS = {"done": "#1a7f37", "up to date": "#1a7f37", "refused": "#c62828",
            "failed": "#c62828", "sending": "#0b5cad"}

_CSS = """<style>
.wb-fleet td, .wb-fleet th { padding: 2px 8px; text-align: left; vertical-align: middle; }
.wb-fleet progress { width: 120px; }
</style>"""


class FleetPanel(w.VBox):
    """Update several devices with one model and watch each one's state.

    ``models`` and ``variants``: what can be deployed, as :class:`~workbench.ui.FlashPanel`
    takes them (a list of Variants, a ComparisonTable with ``variants=``, a ModelRegistry).
    ``devices``: open :class:`workbench.link.Device` objects (left open on close), or
    ``urls`` to open (when ``connect`` is True, else when Connect is pressed).
    ``registry`` and ``gate_options``: as :func:`workbench.deploy.update_fleet` takes them.
    """

    _built = False

    def __init__(self, models: Any, devices: Sequence[Device] = (), *,
                 urls: Sequence[str] = (), variants: Sequence[Any] | None = None,
                 registry: ModelRegistry | str | None = None, connect: bool = True,
                 force: bool = False, **gate_options: Any) -> None:
        self.registry = registry if registry is None or isinstance(registry, ModelRegistry) \
            else ModelRegistry(registry)
        if isinstance(models, ModelRegistry) and self.registry is None:
            self.registry = models
        self._choices = offer_models(models, variants)
        self.gate_options = dict(gate_options)
        self.force = force
        self.devices: list[Device] = list(devices)
        self._owned: list[Device] = []
        self.updates: list[DeviceUpdate] = [DeviceUpdate(url=d.url) for d in self.devices]
        """The rows shown: one :class:`DeviceUpdate` per device (the last update's, or
        the connection's outcome)."""
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False
        self._last_draw = 0.0

        self.model = w.Dropdown(description="Model", layout=w.Layout(width="420px"),
                                options=[(label, i) for i, (label, _, _) in enumerate(self._choices)])
        self.urls = w.Textarea(value="\n".join(list(urls) or [d.url for d in self.devices]),
                               description="Devices", placeholder="one URL per line",
                               layout=w.Layout(width="420px", height="80px"))
        self.connect_button = w.Button(description="Connect", icon="plug")
        self.update_button = w.Button(description="Update all", icon="upload",
                                      button_style="primary")
        self.table = w.HTML()
        self.status = w.HTML()
        super().__init__([self.model, w.HBox([self.urls, self.connect_button]),
                          self.update_button, self.table, self.status])
        self.connect_button.on_click(lambda _: self.connect())
        self.update_button.on_click(lambda _: self.update())
        self._built = True
        self._draw(force=True)
        if urls and connect and not self.devices:
            self.connect()
        self._buttons()

    # ------------------------------------------------------------ actions
    def connect(self) -> threading.Thread | None:
        """Open every URL in the box (what Connect does), in the background; a URL that
        cannot be opened is a failed row. Devices the panel opened before are closed."""
        urls = [u.strip() for u in self.urls.value.splitlines() if u.strip()]
        if not urls:
            self._status("no device URLs: write one per line", "#c62828")
            return None

        def job() -> None:
            self._close_owned()
            devices, rows = [], []
            for url in urls:
                row = DeviceUpdate(url=url, state="checking")
                try:
                    dev = open_device(url)
                except Exception as exc:  # noqa: BLE001 - shown in the row
                    row.state, row.message = "failed", f"cannot connect: {exc}"
                    rows.append(row)
                    continue
                with self._lock:
                    self._owned.append(dev)
                if dev.mode != "framed" or dev.info is None:
                    row.state = "failed"
                    row.message = "a line-mode sketch, not the workbench firmware: it cannot " \
                                  "take models"
                else:
                    row.state, row.board = "waiting", dev.info.board_id
                    devices.append(dev)
                rows.append(row)
            with self._lock:
                self.devices, self.updates = devices, rows
            ok = sum(r.state == "waiting" for r in rows)
            self._draw(force=True)
            self._status(f"connected to {ok} of {len(urls)} device(s)",
                         "#1a7f37" if ok == len(urls) else "#c62828")

        return self._start(job, f"connecting to {len(urls)} device(s)...")

    def update(self) -> threading.Thread | None:
        """Gate the chosen model once per board type and update every connected device
        (what Update all does), in the background; each row follows its device."""
        if not self.devices:
            self._status("no devices connected: press Connect", "#c62828")
            return None
        index = self.model.value
        if index is None:
            return None
        _, model, measurement = self._choices[index]
        options = dict(self.gate_options)
        if measurement is not None:
            options.setdefault("measurement", measurement)
        devices = list(self.devices)

        def job() -> None:
            with self._lock:
                self.updates = [DeviceUpdate(url=d.url) for d in devices]

            def on_change(i: int, row: DeviceUpdate) -> None:
                with self._lock:
                    self.updates[i] = row
                self._draw()

            try:
                rows = update_fleet(model, devices, registry=self.registry, force=self.force,
                                    on_change=on_change, **options)
            except Exception as exc:  # noqa: BLE001 - shown, not raised
                self._status(f"the update could not start: {exc}", "#c62828")
                return
            with self._lock:
                self.updates = rows
            self._draw(force=True)
            counts = {s: sum(r.state == s for r in rows) for s in
                      ("done", "up to date", "refused", "failed")}
            text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            bad = counts["refused"] + counts["failed"]
            self._status(f"fleet update finished: {text}", "#c62828" if bad else "#1a7f37")

        return self._start(job, f"updating {len(devices)} device(s)...")

    # ------------------------------------------------------------ worker and display
    def _start(self, job, message: str) -> threading.Thread | None:
        with self._lock:
            if self._closed or (self._worker is not None and self._worker.is_alive()):
                return None
            worker = self._worker = threading.Thread(target=self._run, args=(job,),
                                                     daemon=True, name="fleet panel")
        self._status(message, "#555")
        worker.start()
        self._buttons()
        return worker

    def _run(self, job) -> None:
        try:
            job()
        finally:
            with self._lock:
                self._worker = None
            if not self._closed:
                self._buttons()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running job; True when none runs now."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def _buttons(self) -> None:
        busy = self._worker is not None
        self.connect_button.disabled = busy or self._closed
        self.update_button.disabled = busy or self._closed or not self.devices
        self.model.disabled = busy

    def _status(self, text: str, colour: str) -> None:
        if not self._closed:
            self.status.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    def rows_html(self) -> str:
        """The device rows as an HTML table (what the panel shows)."""
        e = html.escape
        with self._lock:
            rows = list(self.updates)
        out = [_CSS, "<table class='wb-fleet'><thead><tr><th>device</th><th>board</th>"
               "<th>ran</th><th>state</th><th>sent</th><th></th></tr></thead><tbody>"]
        for r in rows:
            colour = _COLOURS.get(r.state, "#555")
            total = max(r.total, 1)
            bar = (f"<progress max='{total}' value='{min(r.sent, total)}'></progress> "
                   f"{r.sent:,} / {r.total:,} B") if r.state in ("sending", "done") else ""
            out.append(f"<tr data-url='{e(r.url)}' data-state='{e(r.state)}'>"
                       f"<td><code>{e(r.url)}</code></td><td>{e(r.board or '–')}</td>"
                       f"<td>{e(r.running or '–')}</td>"
                       f"<td style='color:{colour}'>{e(r.state)}</td><td>{bar}</td>"
                       f"<td>{e(r.message)}</td></tr>")
        out.append("</tbody></table>")
        return "".join(out)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._closed or (not force and now - self._last_draw < REDRAW_PERIOD_S):
            return
        self._last_draw = now
        self.table.value = self.rows_html()

    def _close_owned(self) -> None:
        with self._lock:
            owned, self._owned = self._owned, []
        for dev in owned:
            dev.close()

    def close(self) -> None:
        """Wait for a running job (up to CLOSE_WAIT_S), close the devices the panel opened,
        and close the widgets."""
        if not self._built:
            return
        self.wait(CLOSE_WAIT_S)
        self._closed = True
        self._close_owned()
        for child in (self.model, self.urls, self.connect_button, self.update_button,
                      self.table, self.status):
            child.close()
        super().close()
