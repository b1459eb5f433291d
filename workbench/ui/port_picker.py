"""Pick a device without typing its URL: a menu of what this machine can reach, and a baud rate.

The menu lists, from :func:`workbench.link.list_ports` (nothing is opened to list them):

* the serial ports the operating system sees, each with the catalog boards its USB VID:PID
  matches (``/dev/ttyACM0: Arduino Nano 33 BLE Sense (2341:805A)``);
* the virtual boards running on this machine (``workbench sim``), by board and pty;
* "virtual board (new)" for every catalog board: ``sim://<board>``, started on connect;
* "other URL..." which shows the text field (``socket://``, a ``sim://`` URL with options...).

Usage::

    picker = PortPicker("sim://nano33ble")
    display(picker)
    picker.url, picker.baudrate        # what to open: open_device(picker.url, baudrate=...)

``picker.text`` always holds the chosen URL: picking an entry writes its URL there, and
text typed (or set from code) selects the matching entry, or "other URL..." when none
matches. ``refresh()`` (the refresh button) lists again and keeps the choice. It holds no
logic beyond choosing; opening the port is the caller's (the capture panel's Connect).
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as w

from ..boards import load_catalog
from ..link import DEFAULT_BAUD, MAX_BAUD, MIN_BAUD, FoundDevice, list_ports

__all__ = ["PortPicker", "PortChoice", "port_choices", "BAUD_RATES", "OTHER"]

BAUD_RATES = tuple(r for r in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400,
                               460800, 921600, 1_000_000, 2_000_000, 3_000_000)
                   if MIN_BAUD <= r <= MAX_BAUD)
"""The usual rates the link accepts (its range is MIN_BAUD..MAX_BAUD)."""
OTHER = "\x00other"
"""The menu value of "other URL..." (not a URL)."""


@dataclass(frozen=True)
class PortChoice:
    """One entry of the menu: what it says, the URL it opens, and its kind
    (``"serial"``, ``"virtual"`` (running), ``"new"`` (a virtual board to start), ``"other"``)."""

    label: str
    url: str
    kind: str


def port_choices(found: list[FoundDevice] | None = None,
                 catalog: dict | None = None) -> list[PortChoice]:
    """The menu's entries, in order: serial ports, running virtual boards, a new virtual
    board per catalog board, "other URL...". ``found`` defaults to :func:`list_ports`
    (nothing opened), ``catalog`` to the packaged one."""
    found = list_ports() if found is None else found
    catalog = load_catalog() if catalog is None else catalog
    out = []
    for dev in found:
        if dev.virtual:
            out.append(PortChoice(f"{dev.url}: {dev.description}", dev.url, "virtual"))
            continue
        boards = ", ".join(b.name for b in dev.candidates)
        what = boards or dev.description or "serial port"
        usb = f" ({dev.usb})" if dev.usb else ""
        out.append(PortChoice(f"{dev.url}: {what}{usb}", dev.url, "serial"))
    for board in catalog.values():
        out.append(PortChoice(f"virtual board (new): {board.name}", f"sim://{board.id}", "new"))
    out.append(PortChoice("other URL\u2026", OTHER, "other"))
    return out


class PortPicker(w.HBox):
    """A menu of reachable devices, a refresh button, the URL field (for "other URL...")
    and a baud-rate menu. See the module docs."""

    def __init__(self, url: str = "", baudrate: int = DEFAULT_BAUD, *,
                 description: str = "Device") -> None:
        self.choices: list[PortChoice] = []
        self._syncing = False
        self.menu = w.Dropdown(description=description, options=[],
                               layout=w.Layout(width="300px"))
        self.refresh_button = w.Button(icon="refresh", tooltip="list the ports again",
                                       layout=w.Layout(width="36px"))
        self.text = w.Text(value=url, placeholder="/dev/ttyACM0, socket://host:port, sim://...",
                           continuous_update=False, layout=w.Layout(width="240px"))
        rates = BAUD_RATES if baudrate in BAUD_RATES else tuple(sorted({*BAUD_RATES, baudrate}))
        self.baud = w.Dropdown(options=[(f"{r:,} baud", r) for r in rates], value=baudrate,
                               layout=w.Layout(width="130px"))
        self.add_class("wb-port-picker")
        super().__init__([self.menu, self.refresh_button, self.text, self.baud])
        self.menu.observe(self._menu_changed, names="value")
        self.text.observe(lambda _: self._select_from_text(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.refresh()

    @property
    def url(self) -> str:
        """The URL to open (the text field's, which follows the menu)."""
        return self.text.value.strip()

    @url.setter
    def url(self, value: str) -> None:
        self.text.value = value

    @property
    def baudrate(self) -> int:
        return int(self.baud.value)

    def refresh(self) -> None:
        """List the ports and virtual boards again; the URL chosen stays chosen."""
        self.choices = port_choices()
        self._syncing = True
        try:
            self.menu.options = [(c.label, c.url) for c in self.choices]
        finally:
            self._syncing = False
        self._select_from_text()

    def _select_from_text(self) -> None:
        url = self.url
        value = url if any(c.url == url for c in self.choices if c.kind != "other") else OTHER
        self._syncing = True
        try:
            self.menu.value = value
        finally:
            self._syncing = False
        self.text.layout.display = "" if value == OTHER else "none"

    def _menu_changed(self, change) -> None:
        if self._syncing or change["new"] is None:
            return
        if change["new"] == OTHER:
            self.text.layout.display = ""
        else:
            self.text.value = change["new"]   # selects it again, hides the field
