"""Widgets that observe and drive the workbench's Python objects.

``import workbench.ui`` is light: anywidget, ipywidgets and the ES modules load
only when a widget class is first used::

    from workbench.ui import LivePlot     # anywidget is imported here, not before

Every widget holds no logic of its own: whatever it shows comes from a Python
object, and whatever it can do, the Python API can do headless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exports import lazy

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .capture_panel import CapturePanel
    from .compare import CompareTable
    from .flash_panel import FlashPanel
    from .fleet_panel import FleetPanel
    from .labeler import Labeler
    from .live_predictions import LivePredictions
    from .liveplot import LivePlot
    from .overview import DatasetOverview
    from .port_picker import PortPicker
    from .serial_monitor import SerialMonitor
    from .takes_list import TakesList
    from .training import TrainingMonitor
    from .webserial import WebSerial
    from .workshop import Workshop

__all__ = ["LivePlot", "CapturePanel", "Labeler", "DatasetOverview", "TrainingMonitor",
           "CompareTable", "FlashPanel", "FleetPanel", "LivePredictions", "TakesList", "Workshop",
           "WebSerial", "PortPicker", "SerialMonitor"]

# public name -> submodule that defines it
_LAZY = {
    "LivePlot": ".liveplot",
    "CapturePanel": ".capture_panel",
    "Labeler": ".labeler",
    "DatasetOverview": ".overview",
    "TrainingMonitor": ".training",
    "CompareTable": ".compare",
    "FlashPanel": ".flash_panel",
    "FleetPanel": ".fleet_panel",
    "LivePredictions": ".live_predictions",
    "TakesList": ".takes_list",
    "Workshop": ".workshop",
    "WebSerial": ".webserial",
    "PortPicker": ".port_picker",
    "SerialMonitor": ".serial_monitor",
}


__getattr__, __dir__ = lazy(__name__, _LAZY)
