"""Boards: the catalog of supported boards (``catalog.yaml``) and its loader.

Light to import: PyYAML and the standard library only.
"""

from workbench.boards.catalog import (
    Board,
    CatalogError,
    Flashing,
    ModelSlots,
    Sensor,
    UnknownBoardError,
    UnknownSensorError,
    UsbId,
    get_board,
    load_catalog,
    match_usb,
    parse_catalog,
)

__all__ = [
    "Board",
    "CatalogError",
    "Flashing",
    "ModelSlots",
    "Sensor",
    "UnknownBoardError",
    "UnknownSensorError",
    "UsbId",
    "get_board",
    "load_catalog",
    "match_usb",
    "parse_catalog",
]
