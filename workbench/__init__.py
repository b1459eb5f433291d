"""tinyml-workbench: the whole TinyML lifecycle in a notebook.

``import workbench`` is light: it imports no TensorFlow, no serial port and no
Jupyter machinery. Heavy parts load where they are used.

Start here::

    import workbench
    dev = workbench.open_device()      # the default device: $WORKBENCH_DEVICE or sim://nano33ble
    print(dev.info.board_name)
    rec = dev.record("accel", seconds=2)
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from .errors import WorkbenchError

if TYPE_CHECKING:
    from .link import Device, Timeouts

__version__ = "0.1.0"

DEFAULT_DEVICE = "sim://nano33ble"

__all__ = ["WorkbenchError", "open_device", "default_device_url", "default_board", "get_board",
           "DEFAULT_DEVICE", "__version__"]


_auto_choice: dict[str, str] = {}
_noted: set[str] = set()


def default_device_url() -> str:
    """The device lessons use: what ``$WORKBENCH_DEVICE`` asks for if it is there, else the
    virtual Nano 33 BLE Sense (:data:`DEFAULT_DEVICE`).

    ``$WORKBENCH_DEVICE`` may be a URL (used as is), a port name (used if this machine has the
    port) or ``auto`` (the first board that answers HELLO); the rules are
    :func:`workbench.link.choose.choose_device`'s. When it falls back to the virtual board it
    prints a one-line note on stderr, once per process and setting. Side effects: ``auto``
    opens serial ports once per process to find a board and remembers the answer (restart the
    kernel after plugging a board in). Unset or ``sim://...``: reads the environment only.
    """
    requested = os.environ.get("WORKBENCH_DEVICE") or ""
    if not requested or requested.startswith("sim://"):
        return requested or DEFAULT_DEVICE
    if requested in _auto_choice:
        return _auto_choice[requested]
    from .link.choose import AUTO, choose_device

    choice = choose_device(requested, DEFAULT_DEVICE)
    if requested.strip().lower() == AUTO:
        _auto_choice[requested] = choice.url
    if choice.note and requested not in _noted:
        _noted.add(requested)
        print(f"workbench: {choice.note}", file=sys.stderr)
    return choice.url


def open_device(url: str | None = None, *, baudrate: int = 115200, mode: str = "auto",
                timeouts: Timeouts | None = None) -> Device:
    """:func:`workbench.link.open_device` with the same options, and ``url`` optional.

    Without ``url`` it opens :func:`default_device_url`. For a ``webserial://`` URL in a
    notebook it first displays the Web Serial widget (the Connect button) if that channel
    has none yet, then waits for the user to connect. ``baudrate`` defaults to
    :data:`workbench.link.DEFAULT_BAUD` (115200; spelled out here so that
    ``import workbench`` stays free of pyserial). Errors and side effects are
    those of :func:`workbench.link.open_device`.
    """
    from .link import open_device as _open

    url = url or default_device_url()
    if url.startswith("webserial://"):
        _show_bridge(url)
    return _open(url, baudrate=baudrate, mode=mode, timeouts=timeouts)


def _show_bridge(url: str) -> None:
    """In a notebook, a ``webserial://`` URL whose channel has no widget yet gets one, displayed
    where the device is opened (:func:`workbench.ui.webserial.show_bridge`; in Voila it raises
    at once, saying how to open the device there). Without the Jupyter widgets installed,
    opening then says how to show one."""
    try:
        from .ui.webserial import show_bridge
    except ImportError:
        return
    show_bridge(url)


def default_board():
    """The catalog entry of the default device's board.

    For a ``sim://<board>`` URL that is the board in the URL (nothing is opened).
    Otherwise the device is opened once and asked who it is (HELLO); a device that
    does not answer (a line-mode sketch) raises :class:`workbench.link.LinkError`.
    """
    from urllib.parse import urlsplit

    url = default_device_url()
    if url.startswith("sim://"):
        return get_board(urlsplit(url).netloc or urlsplit(url).path.strip("/"))
    with open_device(url) as dev:
        return get_board(dev.hello().board_id)


def get_board(board_id: str):
    """The catalog entry of a board (``workbench boards`` lists them)."""
    from .boards import get_board as _get

    return _get(board_id)
