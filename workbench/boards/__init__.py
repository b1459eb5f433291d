"""Boards: the catalog of supported boards (``catalog.yaml``) and its loader.

Light to import: PyYAML and the standard library only.
"""

from workbench.boards.catalog import (
    KERNELS,
    RUNTIMES,
    ActivePower,
    Board,
    CatalogError,
    CodeDensity,
    Flashing,
    ModelSlots,
    Sensor,
    UnknownBoardError,
    UnknownSensorError,
    UsbId,
    WeightMemory,
    get_board,
    load_catalog,
    match_usb,
    parse_catalog,
)

__all__ = [
    "KERNELS",
    "RUNTIMES",
    "ActivePower",
    "Board",
    "CatalogError",
    "CodeDensity",
    "Flashing",
    "ModelSlots",
    "Sensor",
    "UnknownBoardError",
    "UnknownSensorError",
    "UsbId",
    "WeightMemory",
    "get_board",
    "load_catalog",
    "match_usb",
    "parse_catalog",
]
