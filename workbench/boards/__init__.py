"""Boards: the catalog of supported boards (``catalog.yaml``) and its loader.

Call order: :func:`get_board` (one board by id; an unknown id raises
:class:`UnknownBoardError`, which suggests the closest) or :func:`load_catalog` (all of
them, id -> :class:`Board`); then read the :class:`Board`'s fields (``board.sensor("accel")``,
``board.ram_bytes``...). :func:`match_usb` maps a USB VID:PID to the boards it may be.

Light to import: PyYAML and the standard library only, so names load eagerly.
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
