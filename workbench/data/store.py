"""The dataset store: a folder any user can read, and that survives crashes.

Layout (see docs/dataset-format.md)::

    <root>/dataset.json                      what this folder is (format, version, name)
    <root>/recordings/<id>/meta.json         everything about one recording (JSON)
    <root>/recordings/<id>/samples.bin       raw samples: rows of ``channels`` x ``dtype``, little-endian
    <root>/snapshots/<sha256>.json           frozen manifests naming exact contents
    <root>/trash/<id>/                       dropped recordings (nothing is ever deleted)

Samples are appended while recording and flushed to the operating system at
least once a second; ``meta.json`` is replaced atomically. If the recording
process dies, the store still opens: the recording keeps every whole row that
reached the file and is marked ``interrupted``.

Several processes may use one dataset at once (a capture and a labeling notebook on one
folder): metadata changes are read-modify-write under a lock on the dataset folder, so
nothing one process wrote is overwritten by another, and a recording being written holds a
lock on its own folder, so another process that opens the dataset leaves it alone instead of
repairing it. Every name that becomes a path (a recording id from a caller or a folder) is
checked to stay inside the dataset. A ``meta.json`` whose values are wrong is reported in
``Dataset.problems`` and its recording skipped, its files untouched.

This module holds :class:`Dataset`; its parts live beside it and are re-exported here:
:mod:`.recording_meta` (what a recording is, and the checks on ``meta.json``),
:mod:`.recording_writer` (appending samples while recording), :mod:`.folders` (atomic
writes, names kept inside the dataset, folder locks) and :mod:`.store_errors`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .folders import _flock, _inside, _unlock, _write_json_atomic, check_name
from .recording_meta import NUMERIC_KINDS, Recording, RecordingMeta, Region, _is_number, meta_problems
from .recording_writer import FLUSH_SECONDS, RecordingWriter
from .store_errors import DatasetError, DatasetWarning

__all__ = ["Dataset", "DatasetError", "DatasetWarning", "FORMAT", "VERSION", "FLUSH_SECONDS",
           "NUMERIC_KINDS", "Recording", "RecordingMeta", "RecordingWriter", "Region",
           "check_name", "meta_problems"]

FORMAT = "workbench-dataset"
VERSION = 1


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _slug(text: str | None) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text or "unlabeled").strip("-").lower()
    return (s or "unlabeled")[:40]



_IGNORED_IN_NEW_FOLDER = {".ipynb_checkpoints"}


class Dataset:
    """A dataset store folder. ``Dataset(path)`` opens it, creating it if missing.

    Opening repairs what a crash left behind (a recording whose process died is
    kept, marked ``interrupted``, its partial last row cut off); a recording that
    another process is still writing is left alone. A recording whose
    ``meta.json`` is unreadable or holds wrong values is skipped, untouched, and
    reported in ``problems`` (with a :class:`DatasetWarning`). Raises
    :class:`DatasetError` if ``path`` holds something that is not a dataset.
    Several processes may open and change one dataset at once (see the module
    docstring); creating one new dataset from several processes at once is safe.
    """

    def __init__(self, root: str | os.PathLike, *, name: str | None = None,
                 create: bool = True) -> None:
        self.root = Path(root)
        self.problems: list[str] = []
        """What opening found and repaired, or could not read (one line each)."""
        self._metas: dict[str, RecordingMeta] = {}
        self._mutex = threading.RLock()
        self._lock_fd: int | None = None
        self._lock_depth = 0
        head = self.root / "dataset.json"
        if not head.exists():
            if not create:
                raise DatasetError(f"no dataset at {self.root} (no dataset.json)")
            self._create(head, name)
        try:
            info = json.loads(head.read_text())
        except (OSError, ValueError) as e:
            raise DatasetError(f"{head} is not readable JSON ({e}); it is not a "
                               "workbench dataset or it was damaged") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            what = info.get("format") if isinstance(info, dict) else info
            raise DatasetError(f"{self.root} is not a workbench dataset (format {what!r})")
        if not isinstance(info.get("version", 0), int) or info.get("version", 0) > VERSION:
            raise DatasetError(f"{self.root} was written by a newer workbench (format "
                               f"version {info['version']}); upgrade tinyml-workbench")
        self.info = info
        (self.root / "recordings").mkdir(exist_ok=True)
        self._scan()

    def _create(self, head: Path, name: str | None) -> None:
        """Make a new dataset at ``self.root``, or find that another process just did."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise DatasetError(f"{self.root} is a file, not a folder; choose a folder for a "
                               "dataset") from None
        with self._locked():
            if head.exists():  # another process created it while we waited
                return
            if any(p.name not in _IGNORED_IN_NEW_FOLDER for p in self.root.iterdir()):
                raise DatasetError(f"{self.root} exists and is not empty; choose a new folder "
                                   "for a dataset")
            (self.root / "recordings").mkdir(exist_ok=True)
            _write_json_atomic(head, {"format": FORMAT, "version": VERSION,
                                      "name": name or self.root.name, "created": _now_iso()})

    @contextmanager
    def _locked(self):
        """Hold the dataset lock (re-entrant in this object; a flock on the dataset folder
        across objects and processes). Every metadata read-modify-write runs inside it."""
        with self._mutex:
            if self._lock_depth == 0:
                self._lock_fd = _flock(self.root)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    _unlock(self._lock_fd)
                    self._lock_fd = None

    # ----------------------------------------------------------------- reading
    def _scan(self) -> None:
        self._metas.clear()
        skipped = []
        with self._locked():
            for d in sorted((self.root / "recordings").iterdir()):
                if not d.is_dir() or d.name.startswith("."):
                    continue
                try:
                    _inside(self.root / "recordings", d.name)
                    meta = self._load_meta(d)
                except DatasetError as e:
                    self.problems.append(str(e))
                    skipped.append(d.name)
                    continue
                self._metas[meta.id] = meta
        if skipped:
            warnings.warn(f"{self.root}: skipped {len(skipped)} recording(s) whose metadata "
                          f"is wrong ({', '.join(skipped)}); their files were left as they "
                          "are; see Dataset.problems", DatasetWarning, stacklevel=3)

    def _read_meta(self, d: Path) -> RecordingMeta:
        """``d/meta.json``, checked, with the folder's name as id. Changes nothing.
        Raises DatasetError saying what is wrong."""
        path = d / "meta.json"
        try:
            meta = RecordingMeta.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise DatasetError(f"recording {d.name}: meta.json is missing; skipped") from None
        except (ValueError, TypeError, KeyError) as e:
            raise DatasetError(f"recording {d.name}: meta.json is damaged ({e}); skipped, "
                               "its files left untouched") from None
        return meta if meta.id == d.name else replace(meta, id=d.name)

    def _load_meta(self, d: Path) -> RecordingMeta:
        """Read a recording's metadata and repair what a dead writer left (call with the
        dataset lock held). A recording whose writer is alive is returned as it is."""
        meta = self._read_meta(d)  # validated before anything is repaired
        samples_path = d / "samples.bin"
        size = samples_path.stat().st_size if samples_path.exists() else 0
        rows, partial = divmod(size, meta.row_bytes)
        if meta.complete and not partial and rows == meta.samples:
            return meta
        writer = _flock(d, blocking=False)
        if writer is None:  # a live process is writing it: not ours to repair
            return meta
        try:
            meta = self._read_meta(d)  # as the writer left it
            size = samples_path.stat().st_size if samples_path.exists() else 0
            rows, partial = divmod(size, meta.row_bytes)
            if meta.complete and not partial and rows == meta.samples:
                return meta
            if partial:  # a row cut in half by the crash
                with open(samples_path, "r+b") as f:
                    f.truncate(rows * meta.row_bytes)
            was = meta.samples
            meta = replace(meta, samples=rows, complete=True, interrupted=True,
                           gaps=tuple(g for g in meta.gaps if g[0] <= rows))
            _write_json_atomic(d / "meta.json", meta.to_json())
        finally:
            _unlock(writer)
        self.problems.append(f"recording {meta.id} was interrupted: kept {rows} samples "
                             f"({rows / meta.rate_hz:.1f} s; metadata said {was})"
                             if meta.rate_hz else f"recording {meta.id} was interrupted")
        return meta

    def refresh(self) -> list[str]:
        """Re-read the folder (changes made by another program or Dataset object).

        Returns the problems found (also kept in ``problems``)."""
        self.problems = []
        self._scan()
        return self.problems

    def __len__(self) -> int:
        return len(self._metas)

    def __iter__(self) -> Iterator[RecordingMeta]:
        return iter(self.recordings())

    def __contains__(self, rec_id: str) -> bool:
        return rec_id in self._metas

    def recordings(self, label: str | None = None) -> list[RecordingMeta]:
        """Recordings in start order (optionally only those carrying ``label``)."""
        metas = sorted(self._metas.values(), key=lambda m: (m.started, m.id))
        return [m for m in metas if label is None or label in m.labels()]

    def meta(self, rec_id: str) -> RecordingMeta:
        try:
            return self._metas[rec_id]
        except (KeyError, TypeError):
            raise KeyError(f"no recording {rec_id!r} in {self.root}") from None

    def _dir(self, rec_id: str) -> Path:
        """The folder of recording ``rec_id``, checked to be inside ``recordings/``."""
        return _inside(self.root / "recordings", rec_id)

    def load(self, rec_id: str) -> Recording:
        """The recording with its samples (read from disk, memory-mapped if large)."""
        meta = self.meta(rec_id)
        path = self._dir(rec_id) / "samples.bin"
        dtype = np.dtype(meta.dtype).newbyteorder("<")
        count = meta.samples * len(meta.channels)
        raw = (np.fromfile(path, dtype=dtype, count=count) if count else np.zeros(0, dtype))
        if raw.size < count:
            rows = raw.size // len(meta.channels)
            raise DatasetError(f"recording {rec_id}: samples.bin holds {rows} rows, its "
                               f"metadata says {meta.samples}; refresh() the dataset")
        return Recording(meta, raw.reshape(meta.samples, len(meta.channels)))

    def __getitem__(self, rec_id: str) -> Recording:
        return self.load(rec_id)

    @property
    def labels(self) -> list[str]:
        """Every label in use, sorted."""
        return sorted({lab for m in self._metas.values() for lab in m.labels()})

    def is_live(self, rec_id: str) -> bool:
        """Whether a writer (this process or another) has recording ``rec_id`` open."""
        fd = _flock(self._dir(rec_id), blocking=False)
        _unlock(fd)
        return fd is None

    # ----------------------------------------------------------------- writing
    def new_recording(self, *, sensor: str, channels: tuple[str, ...] | list[str], units: str,
                      rate_hz: float, dtype: str = "float32", scale: float = 1.0,
                      label: str | None = None, device: str = "", board: str = "",
                      source: str = "capture", started: str | None = None,
                      **extra) -> RecordingWriter:
        """Start a recording; returns its :class:`RecordingWriter`.

        Side effect: creates ``recordings/<id>/`` with ``meta.json`` (incomplete)
        and an empty ``samples.bin`` at once, so a crash right after is visible.
        Raises ValueError for no channels, a non-numeric dtype or a rate that is
        not a number >= 0.
        """
        if np.dtype(dtype).kind not in NUMERIC_KINDS:  # TypeError for an unknown name
            raise ValueError(f"dtype must be a numeric sample type (int16, float32...), "
                             f"not {dtype!r}")
        if not channels:
            raise ValueError("a recording needs at least one channel")
        if not (_is_number(float(rate_hz)) and float(rate_hz) >= 0):
            raise ValueError(f"rate_hz must be a number >= 0, got {rate_hz!r}")
        started = started or _now_iso()
        stamp = re.sub(r"[^0-9T]", "", started[:19])
        rec_id = f"{_slug(label)}-{stamp}-{secrets.token_hex(3)}"
        meta = RecordingMeta(rec_id, sensor, tuple(channels), units, float(rate_hz),
                             np.dtype(dtype).name, float(scale), label or None, (), device,
                             board, started, source, 0, 0, (), False, False, dict(extra))
        problems = meta_problems(meta.to_json())
        if problems:
            raise ValueError(f"cannot store this recording: {problems[0]}")
        with self._locked():
            d = self._dir(rec_id)
            d.mkdir(parents=True)
            lock = _flock(d)  # held by the writer until it closes
            try:
                (d / "samples.bin").touch()
                _write_json_atomic(d / "meta.json", meta.to_json())
                writer = RecordingWriter(self, meta, lock)
            except BaseException:
                _unlock(lock)
                raise
            self._metas[rec_id] = meta
        return writer

    def add_recording(self, values: np.ndarray, **meta) -> RecordingMeta:
        """Store a whole recording at once (imports). Same keywords as :meth:`new_recording`."""
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[:, None]
        meta.setdefault("dtype", "float32" if values.dtype.kind == "f" else values.dtype.name)
        with self.new_recording(**meta) as w:
            w.append(values)
        return self.meta(w.meta.id)

    def _modify(self, rec_id: str, change: Callable[[RecordingMeta], RecordingMeta], *,
                fallback: RecordingMeta | None = None) -> RecordingMeta:
        """Read-modify-write one ``meta.json`` under the dataset lock: ``change`` gets the
        metadata as it is on disk now (whoever wrote it last) and returns the new one.
        ``fallback`` stands in for an unreadable file (a writer's own recording)."""
        with self._locked():
            d = self._dir(rec_id)
            try:
                current = self._read_meta(d)
            except DatasetError:
                if fallback is None or not d.is_dir():
                    if not d.is_dir():
                        self._metas.pop(rec_id, None)
                        raise KeyError(f"no recording {rec_id!r} in {self.root}") from None
                    raise
                current = fallback
            new = change(current)
            _write_json_atomic(d / "meta.json", new.to_json())
            self._metas[rec_id] = new
        return new

    # ----------------------------------------------------------------- labels
    def set_label(self, rec_id: str, label: str | None) -> RecordingMeta:
        """Label a whole recording (None removes the label)."""
        self.meta(rec_id)
        return self._modify(rec_id, lambda m: replace(m, label=label or None))

    def set_regions(self, rec_id: str, regions: list[Region] | tuple[Region, ...]) -> RecordingMeta:
        """Replace a recording's labelled regions (validated: inside it, not overlapping)."""
        self.meta(rec_id)
        ordered = tuple(sorted(regions, key=lambda r: (r.start, r.end)))

        def change(meta: RecordingMeta) -> RecordingMeta:
            for r in ordered:
                if r.end > meta.samples:
                    raise ValueError(f"region {r.start}..{r.end} runs past the end of {rec_id} "
                                     f"({meta.samples} samples)")
            for a, b in zip(ordered, ordered[1:]):
                if b.start < a.end:
                    raise ValueError(f"regions {a.start}..{a.end} ({a.label}) and "
                                     f"{b.start}..{b.end} ({b.label}) overlap")
            return replace(meta, regions=ordered)

        return self._modify(rec_id, change)

    def add_region(self, rec_id: str, start: int, end: int, label: str) -> RecordingMeta:
        region = Region(int(start), int(end), label)
        self.meta(rec_id)
        with self._locked():
            meta = self._read_meta(self._dir(rec_id))  # as it is on disk now
            return self.set_regions(rec_id, meta.regions + (region,))

    def remove_region(self, rec_id: str, region: Region) -> RecordingMeta:
        self.meta(rec_id)
        with self._locked():
            meta = self._read_meta(self._dir(rec_id))  # as it is on disk now
            if region not in meta.regions:
                raise KeyError(f"{rec_id} has no region {region}")
            return self.set_regions(rec_id, tuple(r for r in meta.regions if r != region))

    def relabel(self, old: str, new: str) -> int:
        """Rename a label everywhere (recordings and regions). Returns recordings changed."""
        return self.merge_labels([old], new)

    def merge_labels(self, labels: list[str], into: str) -> int:
        """Give every recording and region labelled one of ``labels`` the label ``into``."""
        if not into:
            raise ValueError("the new label must not be empty")
        changed = 0

        def change(meta: RecordingMeta) -> RecordingMeta:
            label = into if meta.label in labels else meta.label
            regions = tuple(replace(r, label=into) if r.label in labels else r
                            for r in meta.regions)
            return replace(meta, label=label, regions=regions)

        with self._locked():
            for meta in list(self._metas.values()):
                if meta.label in labels or any(r.label in labels for r in meta.regions):
                    self._modify(meta.id, change)
                    changed += 1
        return changed

    def drop(self, rec_id: str) -> Path:
        """Move a recording to ``trash/`` (nothing is deleted). Returns where it went.

        Raises DatasetError while a writer has it open (stop the capture first) or if
        ``trash/`` already holds a recording of that id."""
        self.meta(rec_id)
        with self._locked():
            src = self._dir(rec_id)
            trash = self.root / "trash"
            trash.mkdir(exist_ok=True)
            dest = _inside(trash, rec_id)
            if dest.exists():
                raise DatasetError(f"trash/ already holds a recording {rec_id!r}; restore or "
                                   "move it first")
            if self.is_live(rec_id):
                raise DatasetError(f"recording {rec_id} is being recorded; stop the capture "
                                   "before dropping it")
            shutil.move(str(src), dest)
            del self._metas[rec_id]
        return dest

    def restore(self, rec_id: str) -> RecordingMeta:
        """Bring a dropped recording back from ``trash/``.

        Raises KeyError if there is no such dropped recording, DatasetError for a name that
        is not a recording id (a path), a recording of that id already present, or a
        dropped recording whose metadata is wrong (it then stays in ``trash/``)."""
        check_name(rec_id)
        with self._locked():
            src = _inside(self.root / "trash", rec_id)
            if not src.is_dir():
                raise KeyError(f"no dropped recording {rec_id!r}")
            dest = self._dir(rec_id)
            if dest.exists():
                raise DatasetError(f"a recording {rec_id!r} is already in the dataset; drop "
                                   "or rename it before restoring the other")
            meta = self._read_meta(src)  # wrong metadata: refused, left in trash
            shutil.move(str(src), dest)
            meta = self._load_meta(dest)
            self._metas[rec_id] = meta
        return meta

    # ----------------------------------------------------------------- hashes
    def content_hash(self, rec_id: str) -> str:
        """SHA-256 of a recording's samples file (cached by size and mtime)."""
        meta = self.meta(rec_id)
        path = self._dir(rec_id) / "samples.bin"
        st = path.stat()
        cached = meta.extra.get("_sha256")
        if cached and cached[:2] == [st.st_size, st.st_mtime_ns]:
            return cached[2]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        entry = [st.st_size, st.st_mtime_ns, digest]
        self._modify(rec_id, lambda m: replace(m, extra={**m.extra, "_sha256": entry}))
        return digest
