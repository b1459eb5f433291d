"""Writing one recording while it is captured: :class:`RecordingWriter` (made by
:meth:`Dataset.new_recording <workbench.data.store.Dataset.new_recording>`).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .folders import _unlock
from .recording_meta import RecordingMeta
from .store_errors import DatasetError

if TYPE_CHECKING:
    from .store import Dataset

FLUSH_SECONDS = 1.0
"""A recording in progress reaches the file at least this often."""


class RecordingWriter:
    """Appends samples to one recording. Made by :meth:`Dataset.new_recording`.

    Call order: ``append()`` any number of times (and ``note_loss()`` where samples
    were lost), then ``close()``. Rows reach the file at least every
    :data:`FLUSH_SECONDS`; ``close()`` flushes, counts and marks the recording
    complete. Also a context manager (closing on exit, even after an error).

    While open, the writer holds a lock on the recording's folder: another
    :class:`Dataset` (in this process or another) then knows the recording is
    live and neither repairs nor drops it. Each metadata update re-reads
    ``meta.json`` under the dataset lock and changes only the writer's own fields
    (``samples``, ``lost``, ``gaps``, ``complete`` and the ``extra`` items given to
    ``close``), so a label set meanwhile by anyone is kept.
    """

    def __init__(self, dataset: "Dataset", meta: RecordingMeta, lock: int | None = None) -> None:
        self.dataset = dataset
        self.meta = meta
        self.dir = dataset.root / "recordings" / meta.id
        self._lock = lock
        self._file = open(self.dir / "samples.bin", "ab")
        self._dtype = np.dtype(meta.dtype).newbyteorder("<")
        self._samples = 0
        self._lost = 0
        self._gaps: list[tuple[int, int]] = []
        self._extra: dict = {}
        self._last_flush = time.monotonic()
        self.closed = False

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def lost(self) -> int:
        return self._lost

    def append(self, rows: np.ndarray) -> None:
        """Add rows of shape (n, channels); converted to the recording's dtype."""
        if self.closed:
            raise DatasetError(f"recording {self.meta.id} is closed")
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != len(self.meta.channels):
            raise ValueError(f"expected rows of {len(self.meta.channels)} channels, "
                             f"got shape {rows.shape}")
        self._file.write(np.ascontiguousarray(rows, dtype=self._dtype).tobytes())
        self._samples += len(rows)
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def note_loss(self, count: int) -> None:
        """``count`` samples are missing before the next appended row."""
        if count > 0:
            self._lost += count
            self._gaps.append((self._samples, count))

    def flush(self) -> None:
        """Hand buffered rows to the operating system and update the metadata."""
        self._file.flush()
        self._save(complete=False)
        self._last_flush = time.monotonic()

    def _save(self, complete: bool) -> None:
        def mine(on_disk: RecordingMeta) -> RecordingMeta:
            # structure from the writer; label, regions and extra as others left them
            return replace(self.meta, label=on_disk.label, regions=on_disk.regions,
                           extra={**on_disk.extra, **self._extra}, samples=self._samples,
                           lost=self._lost, gaps=tuple(self._gaps), complete=complete,
                           interrupted=False)

        self.meta = self.dataset._modify(self.meta.id, mine, fallback=self.meta)

    def close(self, **extra) -> RecordingMeta:
        """Finish the recording; ``extra`` items are added to its metadata."""
        if self.closed:
            return self.meta
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._extra.update(extra)
        try:
            self._save(complete=True)
        finally:
            self.closed = True
            _unlock(self._lock)
            self._lock = None
        return self.meta

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
