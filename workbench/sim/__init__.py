"""The virtual board: the device side of the protocol, run in its own process.

Most code never imports this package: opening ``sim://nano33ble`` with
:func:`workbench.open_device` starts a board process and stops it on close, and
``workbench sim --pty`` (or ``python -m workbench.sim``) runs one that any program can open.

Call order when embedding one: :class:`SimOptions` (board, baud, mode, scenario, faults) ->
:class:`SimServer` (serves a pty or TCP socket; in its own process, as
``python -m workbench.sim`` does). Underneath, :class:`VirtualFirmware` is the protocol
logic fed bytes (no port, no thread), :class:`Flash` its model slots in a file, and
:data:`SCENARIOS` the :class:`Scenario` definitions of what the board is doing.

``import workbench.sim`` is light: each name loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exports import lazy

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .firmware import VirtualFirmware
    from .flash import Flash, FlashError
    from .scenarios import SCENARIOS, Scenario
    from .server import SimOptions, SimServer

# public name -> submodule that defines it (no submodule is named like a public name)
_LAZY = {
    "SimOptions": ".server", "SimServer": ".server",
    "VirtualFirmware": ".firmware",
    "Flash": ".flash", "FlashError": ".flash",
    "SCENARIOS": ".scenarios", "Scenario": ".scenarios",
}

__all__ = ["Flash", "FlashError", "SCENARIOS", "Scenario", "SimOptions", "SimServer",
           "VirtualFirmware"]

__getattr__, __dir__ = lazy(__name__, _LAZY)
