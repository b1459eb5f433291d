"""Which device the lessons use: the board asked for when it is there, else a virtual board.

:func:`choose_device` turns what the user asked for (``$WORKBENCH_DEVICE``, read by
:func:`workbench.default_device_url`) into a URL to open, and says why when it chose the
virtual board instead::

    choice = choose_device(os.environ.get("WORKBENCH_DEVICE"), fallback="sim://nano33ble")
    if choice.note:
        print(choice.note)
    dev = open_device(choice.url)

What is asked for, and what is chosen:

- nothing: ``fallback``, silently;
- a URL (``sim://``, ``socket://``, ``webserial://`` ... anything with ``://``): that URL, unchecked;
- ``auto``: the first port that answers the workbench's HELLO, USB serial ports first (matched
  to the catalog or not), then running virtual boards (``workbench sim``); if none answers,
  ``fallback`` with a note. Probing opens each port once (an Arduino resets when opened);
- a port name (``/dev/ttyACM0``, ``COM3``): that port if the system has it, even if it will not
  answer (opening it then says what is wrong: the student asked for that board, and quietly
  teaching on a virtual one would mislead); a port the system does not have gives ``fallback``
  with a note.

Nothing is cached here; :func:`workbench.default_device_url` remembers an ``auto`` choice for the
life of the process, so a port a lesson holds open is not probed again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

AUTO = "auto"


@dataclass(frozen=True)
class Choice:
    url: str
    """The device to open."""
    note: str = ""
    """Why ``url`` is not what was asked for; empty when it is."""

    @property
    def fell_back(self) -> bool:
        return bool(self.note)


def choose_device(requested: str | None, fallback: str) -> Choice:
    """The device to open for ``requested`` (rules in the module's docstring).

    Side effects: ``auto`` opens USB serial ports and running virtual boards to ask HELLO (and
    closes them); a port name is looked up in the system's port list. Raises nothing for a
    missing board: the answer is then ``fallback`` with a note saying what was missing.
    """
    requested = (requested or "").strip()
    if not requested:
        return Choice(fallback)
    if "://" in requested:
        return Choice(requested)
    if requested.lower() == AUTO:
        return _auto(fallback)
    if _port_exists(requested):
        return Choice(requested)
    return Choice(fallback, f"WORKBENCH_DEVICE={requested}: no such port (is the board plugged in "
                            f"with a data cable? `workbench devices` lists the ports); using the "
                            f"virtual board {fallback} instead")


def _port_exists(name: str) -> bool:
    if os.path.exists(name):
        return True
    from serial.tools import list_ports

    return any(p.device == name for p in list_ports.comports())


def _auto(fallback: str) -> Choice:
    from .discovery import list_ports, probe_port

    found = list_ports()
    usb = [d for d in found if d.usb]
    virtual = [d for d in found if d.virtual]
    for dev in usb + virtual:
        if probe_port(dev).hello is not None:
            return Choice(dev.url)
    if usb:
        tried = "; ".join(f"{d.url}: {d.probe_error or 'no answer'}" for d in usb)
        why = f"no USB serial port answered the workbench handshake ({tried})"
    else:
        why = "no USB serial port found"
    return Choice(fallback, f"WORKBENCH_DEVICE=auto: {why}; using the virtual board {fallback}")
