"""A raw serial monitor, like the Arduino IDE's: what a board prints, and a line to send.

It watches a connected :class:`~workbench.link.Device` through a tap on its session
(:class:`workbench.link.traffic.TrafficLog`): it sees the bytes both ways as the device
reads and writes them and never takes the port, so the capture panel (or any code) using
the device keeps working while it shows what goes over the wire. A sketch in line mode
shows its text lines; a board speaking the framed protocol shows each frame by message
name, ids, length and payload in hex.

Usage::

    mon = SerialMonitor(panel.recorder.device)      # watch a device already open
    mon = SerialMonitor.open_url("/dev/ttyACM0", 9600)   # or open a port of its own, in line mode
    display(mon)
    mon.send("led on")                                # what the Send button does

Controls: the send field and Send (with the chosen line ending; text goes only to a sketch
in line mode, see :meth:`Session.write_raw <workbench.link.session.Session.write_raw>`),
line ending, Autoscroll (off: the view stops moving so it can be read; lines are still
kept), Timestamps, Show sent (the ``tx`` direction), Clear. The view shows the newest
:data:`SHOWN_LINES` lines and is redrawn at most every :data:`REDRAW_PERIOD_S`.

:meth:`close` detaches the tap (and closes the device only if :meth:`open_url` opened it).
"""

from __future__ import annotations

import datetime
import html
import threading

import ipywidgets as w

from ..link import Device, LinkError, open_device
from ..link.traffic import Entry, TrafficLog

__all__ = ["SerialMonitor", "LINE_ENDINGS"]

LINE_ENDINGS = {"No line ending": "", "Newline": "\n", "Carriage return": "\r",
                "Both NL & CR": "\r\n"}
SHOWN_LINES = 500
REDRAW_PERIOD_S = 0.2
HEIGHT = "260px"


class SerialMonitor(w.VBox):
    """The traffic of one device, and a line to send. See the module docs."""

    def __init__(self, device: Device | None = None, *, owns_device: bool = False) -> None:
        self.device: Device | None = None
        self.traffic = TrafficLog()
        """What went over the wire (the tap), newest last."""
        self._owns = False
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self.input = w.Text(placeholder="text to send", layout=w.Layout(flex="1"))
        self.send_button = w.Button(description="Send", icon="paper-plane")
        self.ending = w.Dropdown(options=list(LINE_ENDINGS), value="Newline",
                                 layout=w.Layout(width="160px"))
        self.autoscroll = w.Checkbox(value=True, description="Autoscroll", indent=False,
                                     layout=w.Layout(width="110px"))
        self.timestamps = w.Checkbox(value=False, description="Timestamps", indent=False,
                                     layout=w.Layout(width="110px"))
        self.show_sent = w.Checkbox(value=True, description="Show sent", indent=False,
                                    layout=w.Layout(width="110px"))
        self.clear_button = w.Button(description="Clear", icon="trash")
        self.view = w.HTML()
        self.status = w.HTML()
        super().__init__([
            w.HBox([self.input, self.send_button, self.ending]),
            self.view,
            w.HBox([self.autoscroll, self.timestamps, self.show_sent, self.clear_button,
                    self.status]),
        ])
        self.add_class("wb-serial-monitor")
        self.send_button.on_click(lambda _: self._send_clicked())
        self.clear_button.on_click(lambda _: self.clear())
        for box in (self.timestamps, self.show_sent, self.autoscroll):
            box.observe(lambda _: self._draw(), names="value")
        self.traffic.on_entry.append(lambda _e: self._dirty.set())
        threading.Thread(target=self._redraw_loop, daemon=True, name="serial monitor").start()
        if device is not None:
            self.attach(device, owns_device=owns_device)
        else:
            self._draw()

    @classmethod
    def open_url(cls, url: str, baudrate: int = 115200) -> SerialMonitor:
        """Open ``url`` in line mode (no handshake is sent: a sketch sees nothing but its
        port opened) and watch it; :meth:`close` closes it. Raises the link's
        :class:`~workbench.link.OpenError` if the port cannot be opened (or is in use)."""
        return cls(open_device(url, baudrate=baudrate, mode="line"), owns_device=True)

    def attach(self, device: Device, *, owns_device: bool = False) -> None:
        """Watch ``device`` (instead of the one watched before)."""
        self.detach()
        self.device, self._owns = device, owns_device
        self.traffic.attach(device.session)
        self._draw()

    def detach(self) -> None:
        """Stop watching (closing the device if this monitor opened it)."""
        self.traffic.detach()
        dev, self.device = self.device, None
        if dev is not None and self._owns:
            dev.close()
        self._owns = False

    # ------------------------------------------------------------ actions
    def send(self, text: str) -> None:
        """Send ``text`` and the chosen line ending to the board. Raises
        :class:`~workbench.link.InvalidSetting` (a ValueError) for a board in framed mode,
        :class:`RuntimeError` when no device is attached, the link's errors otherwise."""
        if self.device is None:
            raise RuntimeError("no device: attach one (or SerialMonitor.open_url(url)) first")
        self.device.session.write_raw((text + LINE_ENDINGS[self.ending.value]).encode())

    def _send_clicked(self) -> None:
        text = self.input.value
        try:
            self.send(text)
        except (RuntimeError, ValueError, LinkError) as e:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
            return
        self.input.value = ""
        self.status.value = ""

    def clear(self) -> None:
        """Forget what was shown (what Clear does)."""
        self.traffic.clear()
        self._draw()

    # ------------------------------------------------------------ display
    def _redraw_loop(self) -> None:
        while not self._closed.is_set():
            if self._dirty.wait(0.5) and not self._closed.wait(REDRAW_PERIOD_S):
                self._dirty.clear()
                if self.autoscroll.value:
                    self._draw()

    def lines(self) -> list[Entry]:
        """The entries the view shows (newest last), after the Show sent filter."""
        entries = list(self.traffic.entries)
        if not self.show_sent.value:
            entries = [e for e in entries if e.direction == "rx"]
        return entries[-SHOWN_LINES:]

    def _draw(self) -> None:
        e = html.escape
        rows = []
        for entry in self.lines():
            stamp = ""
            if self.timestamps.value:
                t = datetime.datetime.fromtimestamp(entry.t).strftime("%H:%M:%S.%f")[:-3]
                stamp = f"<span class='wb-sm-time' style='opacity:.6'>{t} </span>"
            arrow = "&rarr;" if entry.direction == "tx" else "&larr;"
            colour = "#0b5cad" if entry.direction == "tx" else "inherit"
            rows.append(f"<div class='wb-sm-line' data-dir='{entry.direction}' "
                        f"data-kind='{entry.kind}' style='color:{colour}'>{stamp}{arrow} "
                        f"{e(entry.text)}</div>")
        # column-reverse keeps the view at its newest line without script
        direction = "column-reverse" if self.autoscroll.value else "column"
        body = "".join(rows) or "<div class='wb-sm-empty' style='opacity:.6'>nothing yet</div>"
        self.view.value = (
            f"<div class='wb-sm-view' style='height:{HEIGHT};overflow:auto;display:flex;"
            f"flex-direction:{direction};border:1px solid var(--jp-border-color2,#ccc);"
            "padding:4px;font-family:var(--jp-code-font-family,monospace);font-size:12px;"
            "line-height:1.35;"
            f"white-space:pre-wrap'><div>{body}</div></div>")
        dev = self.device
        if dev is None:
            who = "not attached"
        else:
            who = f"{e(dev.url)} ({dev.mode}), {self.traffic.bytes['rx']:,} B in, " \
                  f"{self.traffic.bytes['tx']:,} B out"
        if not self.status.value.startswith("<span style='color:#b00'>"):
            self.status.value = f"<i>{who}</i>"

    def close(self) -> None:
        self._closed.set()
        self.detach()
        super().close()
