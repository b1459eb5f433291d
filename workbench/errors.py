"""The root of the workbench's error tree.

Every error the workbench raises on purpose derives from :class:`WorkbenchError`, so
``except workbench.WorkbenchError`` catches what the package means to say and lets
real bugs through. Each error also keeps the built-in base it had before the tree
existed (``ValueError`` for bad input, ``KeyError`` for an unknown name,
``TimeoutError`` for a time-out, ...), so existing ``except`` clauses keep working.

The families, each documented where it lives:

- :class:`workbench.protocol.messages.MalformedPayload` (ValueError): bytes that do not
  decode as a protocol payload.
- :class:`workbench.tflite.ModelError` (ValueError): a ``.tflite`` that cannot run.
- :class:`workbench.boards.CatalogError` (ValueError), ``UnknownBoardError`` and
  ``UnknownSensorError`` (KeyError): the board catalog.
- :class:`workbench.link.LinkError` and its children, among them every
  :class:`workbench.link.DeviceError` a board can report.
- :class:`workbench.data.DatasetError`, ``LabelingError``, ``SignatureError``
  (ValueError): datasets and their formats.
- :class:`workbench.train.UnsupportedLayerError` (ValueError),
  :class:`workbench.optimize.ModelImportError` (ValueError).

This module imports nothing, so every layer (the protocol included) may use it.
"""

from __future__ import annotations

__all__ = ["WorkbenchError"]


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose.

    The message says what is wrong and what to do about it.
    """
