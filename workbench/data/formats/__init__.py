"""Import and export for the dataset store (see docs/dataset-format.md).

* CSV (what sketches print, header line and all): :func:`import_csv`, :func:`export_csv`
* WAV (PCM 8/16/24/32-bit, 32/64-bit float): :func:`import_wav`, :func:`export_wav`
* Edge Impulse data acquisition format, JSON or CBOR, signed or not:
  :func:`import_edge_impulse`, :func:`export_edge_impulse`, :func:`to_edge_impulse`,
  :func:`from_edge_impulse`
* Data sets that ship inside packages: :func:`import_basicmotions`, :func:`example_dataset`

Every importer reads the whole file into memory and checks it before it writes anything, so a
bad file raises a clear :class:`ValueError` and leaves the dataset as it was.

This module is light: the format modules load on first use.
"""

from __future__ import annotations

import shutil
from importlib import import_module
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Dataset, RecordingMeta

_EXPORTS = {
    "import_csv": "csv_format", "export_csv": "csv_format",
    "import_wav": "wav_format", "export_wav": "wav_format",
    "to_edge_impulse": "edge_impulse", "from_edge_impulse": "edge_impulse",
    "import_edge_impulse": "edge_impulse", "export_edge_impulse": "edge_impulse",
    "SignatureError": "edge_impulse",
    "import_basicmotions": "aeon_datasets", "example_dataset": "aeon_datasets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


# ---------------------------------------------------------------------------- shared helpers
def store_recording(dataset: "Dataset", values: np.ndarray, *,
                    gaps: tuple[tuple[int, int], ...] | list = (), **meta) -> "RecordingMeta":
    """Write one whole, already checked recording; on any failure nothing is left behind.

    ``gaps`` are ``(sample index, samples missing before it)``, as in ``RecordingMeta.gaps``.
    ``meta`` takes the keywords of :meth:`Dataset.new_recording` (``dtype`` is required).
    """
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] != len(meta["channels"]):
        raise ValueError(f"expected rows of {len(meta['channels'])} channels, "
                         f"got shape {values.shape}")
    with transaction(dataset):
        writer = dataset.new_recording(**meta)
        try:
            start = 0
            for index, missing in sorted(gaps):
                if index > start:
                    writer.append(values[start:index])
                    start = index
                writer.note_loss(int(missing))
            writer.append(values[start:])
        finally:
            result = writer.close()
        return dataset.meta(result.id)


class transaction:
    """``with transaction(dataset):`` removes every recording added inside the block if the
    block raises (imports of several files are all or nothing)."""

    def __init__(self, dataset: "Dataset") -> None:
        self.dataset = dataset

    def __enter__(self) -> "transaction":
        self._before = {m.id for m in self.dataset.recordings()}
        self._trash_existed = (self.dataset.root / "trash").exists()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            return
        for meta in self.dataset.recordings():
            if meta.id not in self._before:
                try:
                    shutil.rmtree(self.dataset.drop(meta.id), ignore_errors=True)
                except Exception:  # pragma: no cover - best effort, the error is re-raised
                    pass
        trash = self.dataset.root / "trash"
        if not self._trash_existed and trash.is_dir() and not any(trash.iterdir()):
            trash.rmdir()
