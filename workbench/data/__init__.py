"""The dataset store: recordings, labels, snapshots, windows and splits.

Call order: ``ds = Dataset(path)`` (opens or creates the folder), add data with
``ds.new_recording(...)`` (or ``workbench.capture``, or an importer in
``workbench.data.formats``), label it (``set_label``, ``add_region``), then
``snapshot(ds)`` to name the version, ``windows(ds, length)`` and
``split_recordings(ds)`` to feed training.

Modules: :mod:`.store` (the folder, recordings, labels; its parts :mod:`.recording_meta`,
:mod:`.recording_writer`, :mod:`.folders`, :mod:`.store_errors`), :mod:`.versioning` (snapshots and
summaries), :mod:`.windowing` (windows and splits), :mod:`.labeling`, :mod:`.segment` and
:mod:`.quality` (label tools), :mod:`.formats` (import and export). Light to import (NumPy),
so the names load eagerly.
"""

from .store import Dataset, DatasetError, DatasetWarning, Recording, RecordingMeta, RecordingWriter, Region
from .versioning import Snapshot, Summary, load_manifest, snapshot, snapshots, summarize, verify_snapshot
from .windowing import Split, Windows, split_recordings, windows

__all__ = ["Dataset", "DatasetError", "DatasetWarning", "Recording", "RecordingMeta",
           "RecordingWriter", "Region",
           "Snapshot", "Summary", "snapshot", "snapshots", "load_manifest", "verify_snapshot",
           "summarize", "Windows", "Split", "windows", "split_recordings"]
