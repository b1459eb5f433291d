"""The dataset store's error and warning (kept apart so every store module can raise them)."""

from __future__ import annotations

from ..errors import WorkbenchError


class DatasetError(WorkbenchError):
    """A store that cannot be opened or an operation it cannot do (message says why)."""


class DatasetWarning(UserWarning):
    """Opening a dataset skipped a recording (its metadata is wrong); see ``problems``."""
