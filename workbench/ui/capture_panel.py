"""The capture panel: pick a device and sensor, watch it live, record labelled takes.

It drives a :class:`workbench.capture.Recorder` and shows its state; it holds no
logic of its own. Everything it does, ``panel.recorder`` does headless::

    panel = CapturePanel("my-dataset")          # connects to the default device
    display(panel)
    panel.recorder.record("accel", "wave", seconds=3)   # same as pressing Record

Layout: the device (a :class:`~workbench.ui.port_picker.PortPicker`: menu, URL, baud)
+ Connect; sensor, label, length, countdown, Record/Stop; for a virtual board, its
scenario; counters with a loss indicator; the countdown and the recording marker
("● REC 00:02.4"); the live plot (a canvas widget fed binary buffers, see
:class:`~workbench.ui.liveplot.LivePlot`); live classification of that stream
(:class:`~workbench.ui.live_classify.LiveClassify`, ``panel.classify``); the dataset's
takes, newest first, with play back, relabel, delete and undo
(:class:`~workbench.ui.takes_list.TakesList`, ``panel.takes``).

Record starts the take after the countdown (``countdown_s``, 3 s unless given; 0 starts at
once), shown big over the plot, during which the button reads Cancel. Record with an empty
label does not record: it says the take would be stored as ``unlabeled-...`` and puts the
cursor in the label box; pressing Record again records it unlabelled. A take started
from code starts as the code says, and the panel shows it the same way (marker, label,
"unlabelled").

The display follows the recorder, whoever drives it: the counters, the dot (grey when no
device is connected), Record (disabled without a device; showing Stop while any take
records, also one started from code), the virtual board's scenario and the recording take's
label. An error stays in the status line until the next
action (Connect, Record, a sensor or scenario change), instead of being replaced by the
recorder's message at the next refresh.
"""

from __future__ import annotations

import html
import math
import threading

import ipywidgets as w

from .. import default_device_url
from ..capture import Recorder
from ..data import Dataset
from ..link import LinkError
from .live_classify import LiveClassify
from .liveplot import LivePlot
from .port_picker import PortPicker
from .takes_list import TakesList

COUNTER_PERIOD_S = 0.25
"""How often the counters refresh while previewing."""
MARKER_PERIOD_S = 0.1
"""How often they (and the countdown and the REC marker) refresh during a take or a countdown."""
COUNTDOWN_S = 3.0
"""Seconds between pressing Record and the take starting (the panel's default)."""
UNLABELED_WARNING = ("This take has no label: it would be saved as \"unlabeled-...\". Type a "
                     "label (e.g. wave) and press Record, or press Record again to record it "
                     "unlabelled.")
LOSS_WARN = 0.0
"""Any loss turns the indicator amber; above LOSS_BAD, red."""
LOSS_BAD = 0.01


class CapturePanel(w.VBox):
    """A capture screen for one dataset. ``url=None`` uses the default device;
    ``connect=False`` leaves connecting to the user."""

    def __init__(self, dataset: Dataset | str, url: str | None = None, *,
                 recorder: Recorder | None = None, connect: bool = True,
                 window_s: float = 10.0, countdown_s: float = COUNTDOWN_S) -> None:
        self.recorder = recorder or Recorder(dataset)
        self.window_s = window_s
        self.plot: LivePlot | None = None
        self.port = PortPicker(url or default_device_url())
        self.url = self.port.text
        """The URL Connect opens (the port picker's field, following its menu)."""
        self.connect_button = w.Button(description="Connect", icon="plug")
        self.sensor = w.Dropdown(description="Sensor", options=[], layout=w.Layout(width="320px"))
        self.label = w.Combobox(description="Label", placeholder="e.g. wave",
                                options=tuple(self.recorder.dataset.labels), ensure_option=False,
                                layout=w.Layout(width="220px"))
        self.seconds = w.BoundedFloatText(value=0, min=0, max=3600, step=1,
                                          description="Seconds",
                                          tooltip="0 records until you press Stop",
                                          layout=w.Layout(width="160px"))
        self.countdown = w.BoundedFloatText(value=countdown_s, min=0, max=60, step=1,
                                            description="Countdown",
                                            tooltip="seconds between Record and the take",
                                            layout=w.Layout(width="160px"))
        self.marker = w.HTML(layout=w.Layout(min_height="30px"))
        """The countdown, big, and the recording marker ("● REC 00:02.4")."""
        self._shown_busy = False
        """Whether the button last showed a take (or a countdown) under way."""
        self._unlabeled_ok = False
        """Record was pressed once with no label (the warning is shown): the next press records."""
        self.record_button = w.ToggleButton(description="Record", icon="circle",
                                            button_style="danger", disabled=True)
        self.scenario = w.Dropdown(description="Scenario", options=[],
                                   layout=w.Layout(width="220px", display="none"))
        self.status = w.HTML()
        self.counters = w.HTML()
        self.plot_box = w.Box(layout=w.Layout(width="100%", max_width="960px"))
        self.takes = TakesList(self.recorder)
        self._ticker: threading.Event | None = None
        self._error: str | None = None
        """The last action's error, shown until the next action."""
        self._syncing = False
        self._transition = threading.RLock()
        """Held while a click or a refresh changes Record/Stop, so the two never cross."""
        super().__init__([
            w.HBox([self.port, self.connect_button]),
            w.HBox([self.sensor, self.scenario]),
            w.HBox([self.label, self.seconds, self.countdown, self.record_button]),
            w.HBox([self.counters, self.status]),
            self.marker,
            self.plot_box,
            self.takes,
        ])
        self.classify = LiveClassify(self)
        """Live classification of the stream watched (model, classes, Classify)."""
        self.children += (self.classify,)
        self.connect_button.on_click(lambda _: self.connect())
        self.sensor.observe(lambda ch: self._sensor_changed(), names="value")
        self.scenario.observe(self._scenario_changed, names="value")
        self.record_button.observe(self._record_toggled, names="value")
        self.label.observe(self._label_changed, names="value")
        self.recorder.on_block.append(self._push)
        self._refresh()
        self._start_ticker()   # the display follows the recorder, also one driven from code
        if connect and self.recorder.device is None:
            self.connect()

    # ------------------------------------------------------------ actions
    def _fail(self, error: BaseException | str) -> None:
        self._error = str(error)
        self._refresh()

    def connect(self) -> None:
        """Connect to the URL in the box (what the Connect button does). A ``webserial://``
        URL puts its Web Serial bar at the top of the panel and connects when the user has
        opened a port there (see :func:`workbench.ui.webserial.connect_through`)."""
        self._error = None
        url = self.url.value.strip()
        if url.startswith("webserial://"):
            from .webserial import CONNECT_FIRST, connect_through

            if not connect_through(url, self._connect_now, self):
                self.recorder.message = CONNECT_FIRST
                self._refresh()
            return
        self._connect_now()

    def _connect_now(self) -> None:
        self._error = None
        try:
            self.recorder.connect(self.url.value.strip(), baudrate=self.port.baudrate)
        except LinkError as e:
            self._fail(e)
            return
        rec = self.recorder
        self.scenario.options = rec.scenarios
        if rec.is_virtual:
            self.scenario.value = rec.device.scenario().current
        self.scenario.layout.display = "" if rec.is_virtual else "none"
        self.record_button.disabled = not rec.sensors
        options = [(f"{s.id} ({s.kind}, {s.rate_hz:g} Hz)", s.id) for s in rec.sensors]
        if options:
            # the value is set with the options, so the sensor observer runs once, here
            self.sensor.options = options
            if self.sensor.value != options[0][1]:
                self.sensor.value = options[0][1]
            else:
                self._sensor_changed()

    @property
    def error(self) -> str | None:
        """The error shown in the status line (the last action's), or None."""
        return self._error

    def _selected_sensor(self):
        rec = self.recorder
        if not rec.sensors:
            return None
        return next((s for s in rec.sensors if s.id == self.sensor.value), rec.sensors[0])

    def _sensor_changed(self) -> None:
        self._error = None
        desc = self._selected_sensor()
        if desc is None or self.recorder.session and self.recorder.session.running:
            return
        rate = desc.rate_hz or self.recorder.device.line_rate_hz or 1.0
        title = f"{desc.id} ({desc.kind})"
        # the old sensor's preview stops (its thread joined) before the plot changes: else its
        # last blocks land in the new plot, at the new sensor's rate (stale data, jumped axis)
        self.recorder.stop_preview()
        plot = self.plot
        if plot is None or plot.title != title or plot.rate_hz != rate:
            if plot is not None:
                plot.close()
            self.plot = LivePlot(list(desc.channels), rate_hz=rate, window_s=self.window_s,
                                 units=desc.units, title=title,
                                 view="spectrogram" if desc.kind == "microphone" else "traces",
                                 layout=w.Layout(width="100%"))
            self.plot_box.children = (self.plot,)
        self.recorder.start_preview(desc.id if self.recorder.device.mode == "framed" else 0)
        self._start_ticker()
        self._refresh()

    def _label_changed(self, change) -> None:
        self._unlabeled_ok = False   # a new label: the unlabelled warning no longer applies
        if self._error == UNLABELED_WARNING and change["new"].strip():
            self._error = None
            self._refresh()

    def _scenario_changed(self, change) -> None:
        if change["new"] and not self._syncing:
            self._error = None
            try:
                self.recorder.set_scenario(change["new"])
            except (ValueError, LinkError) as e:
                self._fail(e)

    def _record_toggled(self, change) -> None:
        if self._syncing:   # the display following the recorder, not a click
            return
        with self._transition:
            rec = self.recorder
            if change["new"]:
                self._error = None
                desc = self._selected_sensor()
                seconds = self.seconds.value or None
                label = self.label.value.strip() or None
                try:
                    if desc is None or rec.device is None:
                        raise RuntimeError("connect to a device first")
                    if label is None and not self._unlabeled_ok:
                        self._unlabeled_ok = True     # asked once: the next press records
                        self._set_button(False)
                        self._fail(UNLABELED_WARNING)
                        self.label.focus()
                        return
                    self._unlabeled_ok = False
                    sensor = desc.id if rec.device.mode == "framed" else 0
                    if self.countdown.value > 0:
                        rec.start_after(self.countdown.value, sensor, label, seconds=seconds)
                    else:
                        rec.start(sensor, label, seconds=seconds)
                except (RuntimeError, LinkError) as e:
                    self._set_button(False)
                    self._fail(e)
                    return
                # a timed take ends by itself: the next refresh sees it and returns to the preview
                self._set_button(True)
                self._refresh()
            else:
                if rec.cancel_countdown():
                    pass
                elif rec.session is not None and rec.session.running:
                    try:
                        rec.stop()
                    except LinkError as e:   # what it stored is kept; say how it ended
                        self._fail(e)
                self._after_take()

    def _after_take(self) -> None:
        self._show_button(False)
        self.label.options = tuple(self.recorder.dataset.labels)
        if self.recorder.device is not None:
            self._sensor_changed()  # back to preview
        self._refresh()

    def _push(self, block) -> None:
        plot = self.plot
        if plot is not None:
            plot.push(block)

    # ------------------------------------------------------------ display
    def _start_ticker(self) -> None:
        if self._ticker is not None:
            return
        stop = self._ticker = threading.Event()

        def tick() -> None:
            while not stop.wait(MARKER_PERIOD_S if self.record_button.value
                                else COUNTER_PERIOD_S):
                self._refresh()

        threading.Thread(target=tick, daemon=True, name="capture panel counters").start()

    def _set_button(self, recording: bool) -> None:
        """Show Record, Cancel (a countdown) or Stop without starting or stopping anything."""
        self._syncing = True
        try:
            self.record_button.value = recording
        finally:
            self._syncing = False
        self._show_button(recording)

    def _show_button(self, recording: bool) -> None:
        self._shown_busy = recording
        self.record_button.description, self.record_button.icon = \
            (("Cancel", "times") if self.recorder.counting_down else ("Stop", "stop")) \
            if recording else ("Record", "circle")

    def _show_marker(self, st) -> None:
        """The countdown, big, or "● REC 00:02.4" with the take's label, or nothing."""
        label = html.escape(st.label) if st.label else None
        unlabeled = ("<span style='color:#b36b00'>no label: it will be saved as "
                     "<i>unlabeled-...</i></span>")
        if st.state == "countdown":
            self.marker.value = (
                "<div class='wb-capture-countdown' style='display:flex;align-items:center;"
                "gap:16px'><span class='wb-capture-countdown-n' style='font-size:64px;"
                f"font-weight:700;line-height:1;color:#c00'>{math.ceil(st.countdown_s - 1e-9)}"
                f"</span><span>get ready: {'<b>' + label + '</b>' if label else unlabeled} "
                "starts recording</span></div>")
        elif st.state == "recording":
            m, s = divmod(st.seconds, 60)
            self.marker.value = (
                "<span class='wb-capture-rec' style='color:#d00;font-weight:700;"
                f"font-size:1.6em;font-variant-numeric:tabular-nums'>&#9679; REC "
                f"{int(m):02d}:{s:04.1f}</span> &nbsp; {'<b>' + label + '</b>' if label else unlabeled}")
        else:
            self.marker.value = ""

    def _refresh(self) -> None:
        rec = self.recorder
        st = rec.status()
        if st.state == "disconnected":
            colour = "#999"
        else:
            colour = "#2a2" if st.loss_ratio <= LOSS_WARN else (
                "#d80" if st.loss_ratio <= LOSS_BAD else "#c00")
        dot = f"<span style='color:{colour};font-size:1.3em'>&#9679;</span>"
        what = {"recording": "recording", "ready": "last take", "disconnected": "not connected",
                "countdown": "last take"}
        self.counters.value = (
            f"{dot} <b>{what[st.state]}</b>: {st.samples:,} samples, {st.seconds:.1f} s, "
            f"<b>{st.lost:,} lost</b> ({st.loss_ratio:.1%}) &middot; {st.takes} takes")
        error = self._error or st.error
        self.status.value = (f"<span style='color:#b00'>{html.escape(error)}</span>"
                             if error else f"<i>{html.escape(st.message)}</i>")
        self._show_marker(st)
        recording, ended = st.state in ("recording", "countdown"), False
        with self._transition:   # the ticker thread and the widgets' thread both refresh
            # follow the recorder when *it* changed since the button was last set, so a click
            # whose handler waits for this lock is not undone here first
            if self._shown_busy != recording:
                self._set_button(recording)   # a take started or ended elsewhere (code, timer)
                ended = not recording
            elif recording and self.record_button.value:
                self._show_button(True)       # Cancel becomes Stop when the countdown ends
        self.record_button.disabled = st.state == "disconnected" or not rec.sensors
        self._syncing = True    # the scenario and the take's label, as the recorder has them
        try:
            if rec.scenario and rec.scenario in self.scenario.options \
                    and self.scenario.value != rec.scenario:
                self.scenario.value = rec.scenario
            label = st.label if recording else None
            if label and self.label.value != label:
                self.label.value = label
        finally:
            self._syncing = False
        if ended:
            self._after_take()   # back to the preview, labels updated
        if self.takes.revision != rec.revision:
            self.takes.refresh()   # a take stored, relabelled, deleted or brought back

    def close(self) -> None:
        self.classify.close()
        if self._ticker is not None:
            self._ticker.set()
        if self._push in self.recorder.on_block:
            self.recorder.on_block.remove(self._push)
        self.recorder.disconnect()
        self.takes.close()
        super().close()
