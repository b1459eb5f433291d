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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
from ..errors import WorkbenchError

FORMAT = "workbench-dataset"
VERSION = 1
FLUSH_SECONDS = 1.0
"""A recording in progress reaches the file at least this often."""


class DatasetError(WorkbenchError):
    """A store that cannot be opened or an operation it cannot do (message says why)."""


@dataclass(frozen=True)
class Region:
    """A labelled stretch of a recording: samples ``start`` (inclusive) to ``end`` (exclusive)."""

    start: int
    end: int
    label: str

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"a region needs 0 <= start < end, got {self.start}..{self.end}")
        if not self.label:
            raise ValueError("a region needs a label")


@dataclass(frozen=True)
class RecordingMeta:
    """What is known about one recording. ``samples`` counts rows in samples.bin."""

    id: str
    sensor: str
    channels: tuple[str, ...]
    units: str
    rate_hz: float
    dtype: str
    scale: float = 1.0
    label: str | None = None
    regions: tuple[Region, ...] = ()
    device: str = ""
    board: str = ""
    started: str = ""
    source: str = "capture"
    samples: int = 0
    lost: int = 0
    gaps: tuple[tuple[int, int], ...] = ()
    """(sample index, samples missing before it) for every loss."""
    complete: bool = True
    interrupted: bool = False
    """The recording process died; every whole row that reached the file is kept."""
    extra: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.samples / self.rate_hz if self.rate_hz else 0.0

    @property
    def row_bytes(self) -> int:
        return np.dtype(self.dtype).itemsize * len(self.channels)

    def labels(self) -> set[str]:
        """Every label this recording carries (whole-recording and regions)."""
        out = {r.label for r in self.regions}
        if self.label:
            out.add(self.label)
        return out

    def to_json(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["regions"] = [asdict(r) for r in self.regions]
        d["gaps"] = [list(g) for g in self.gaps]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "RecordingMeta":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        d["regions"] = tuple(Region(**r) for r in d.get("regions", ()))
        d["gaps"] = tuple(tuple(g) for g in d.get("gaps", ()))
        known = set(cls.__dataclass_fields__)
        extra = {k: v for k, v in d.items() if k not in known}
        d = {k: v for k, v in d.items() if k in known}
        if extra:  # fields from a newer version are kept, not lost
            d["extra"] = {**d.get("extra", {}), **extra}
        return cls(**d)


@dataclass(frozen=True)
class Recording:
    """A recording's metadata and samples (``raw`` as stored, ``values`` in units)."""

    meta: RecordingMeta
    raw: np.ndarray

    @property
    def values(self) -> np.ndarray:
        if self.meta.scale == 1.0 and self.raw.dtype == np.float32:
            return self.raw
        return self.raw.astype(np.float32) * np.float32(self.meta.scale)

    @property
    def id(self) -> str:
        return self.meta.id

    def __len__(self) -> int:
        return len(self.raw)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _slug(text: str | None) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text or "unlabeled").strip("-").lower()
    return (s or "unlabeled")[:40]


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RecordingWriter:
    """Appends samples to one recording. Made by :meth:`Dataset.new_recording`.

    Call order: ``append()`` any number of times (and ``note_loss()`` where samples
    were lost), then ``close()``. Rows reach the file at least every
    :data:`FLUSH_SECONDS`; ``close()`` flushes, counts and marks the recording
    complete. Also a context manager (closing on exit, even after an error).
    """

    def __init__(self, dataset: "Dataset", meta: RecordingMeta) -> None:
        self.dataset = dataset
        self.meta = meta
        self.dir = dataset.root / "recordings" / meta.id
        self._file = open(self.dir / "samples.bin", "ab")
        self._dtype = np.dtype(meta.dtype).newbyteorder("<")
        self._samples = 0
        self._lost = 0
        self._gaps: list[tuple[int, int]] = []
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
        self.meta = replace(self.meta, samples=self._samples, lost=self._lost,
                            gaps=tuple(self._gaps), complete=complete)
        _write_json_atomic(self.dir / "meta.json", self.meta.to_json())
        self.dataset._metas[self.meta.id] = self.meta

    def close(self, **extra) -> RecordingMeta:
        """Finish the recording; ``extra`` items are added to its metadata."""
        if self.closed:
            return self.meta
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if extra:
            self.meta = replace(self.meta, extra={**self.meta.extra, **extra})
        self._save(complete=True)
        self.closed = True
        return self.meta

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Dataset:
    """A dataset store folder. ``Dataset(path)`` opens it, creating it if missing.

    Opening repairs what a crash left behind (a recording whose process died is
    kept, marked ``interrupted``, its partial last row cut off). Raises
    :class:`DatasetError` if ``path`` holds something that is not a dataset.
    """

    def __init__(self, root: str | os.PathLike, *, name: str | None = None,
                 create: bool = True) -> None:
        self.root = Path(root)
        head = self.root / "dataset.json"
        if head.exists():
            try:
                info = json.loads(head.read_text())
            except (OSError, ValueError) as e:
                raise DatasetError(f"{head} is not readable JSON ({e}); it is not a "
                                   "workbench dataset or it was damaged") from None
            if info.get("format") != FORMAT:
                raise DatasetError(f"{self.root} is not a workbench dataset "
                                   f"(format {info.get('format')!r})")
            if info.get("version", 0) > VERSION:
                raise DatasetError(f"{self.root} was written by a newer workbench (format "
                                   f"version {info['version']}); upgrade tinyml-workbench")
            self.info = info
        elif not create:
            raise DatasetError(f"no dataset at {self.root} (no dataset.json)")
        elif self.root.exists() and any(p.name != ".ipynb_checkpoints"
                                        for p in self.root.iterdir()):
            raise DatasetError(f"{self.root} exists and is not empty; choose a new folder "
                               "for a dataset")
        else:
            (self.root / "recordings").mkdir(parents=True, exist_ok=True)
            self.info = {"format": FORMAT, "version": VERSION,
                         "name": name or self.root.name, "created": _now_iso()}
            _write_json_atomic(head, self.info)
        (self.root / "recordings").mkdir(exist_ok=True)
        self.problems: list[str] = []
        """What opening found and repaired, or could not read (one line each)."""
        self._metas: dict[str, RecordingMeta] = {}
        self._scan()

    # ----------------------------------------------------------------- reading
    def _scan(self) -> None:
        self._metas.clear()
        for d in sorted((self.root / "recordings").iterdir()):
            if not d.is_dir():
                continue
            try:
                meta = self._load_meta(d)
            except DatasetError as e:
                self.problems.append(str(e))
                continue
            self._metas[meta.id] = meta

    def _load_meta(self, d: Path) -> RecordingMeta:
        path = d / "meta.json"
        try:
            meta = RecordingMeta.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise DatasetError(f"recording {d.name}: meta.json is missing; skipped") from None
        except (ValueError, TypeError, KeyError) as e:
            raise DatasetError(f"recording {d.name}: meta.json is damaged ({e}); skipped") from None
        if meta.id != d.name:
            meta = replace(meta, id=d.name)
        samples_path = d / "samples.bin"
        size = samples_path.stat().st_size if samples_path.exists() else 0
        rows, partial = divmod(size, meta.row_bytes)
        if not meta.complete or partial or rows != meta.samples:
            if partial:  # a row cut in half by the crash
                with open(samples_path, "r+b") as f:
                    f.truncate(rows * meta.row_bytes)
            was = meta.samples
            meta = replace(meta, samples=rows, complete=True, interrupted=True,
                           gaps=tuple(g for g in meta.gaps if g[0] <= rows))
            _write_json_atomic(path, meta.to_json())
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
        except KeyError:
            raise KeyError(f"no recording {rec_id!r} in {self.root}") from None

    def load(self, rec_id: str) -> Recording:
        """The recording with its samples (read from disk, memory-mapped if large)."""
        meta = self.meta(rec_id)
        path = self.root / "recordings" / rec_id / "samples.bin"
        dtype = np.dtype(meta.dtype).newbyteorder("<")
        count = meta.samples * len(meta.channels)
        raw = (np.fromfile(path, dtype=dtype, count=count) if count else np.zeros(0, dtype))
        return Recording(meta, raw.reshape(meta.samples, len(meta.channels)))

    def __getitem__(self, rec_id: str) -> Recording:
        return self.load(rec_id)

    @property
    def labels(self) -> list[str]:
        """Every label in use, sorted."""
        return sorted({lab for m in self._metas.values() for lab in m.labels()})

    # ----------------------------------------------------------------- writing
    def new_recording(self, *, sensor: str, channels: tuple[str, ...] | list[str], units: str,
                      rate_hz: float, dtype: str = "float32", scale: float = 1.0,
                      label: str | None = None, device: str = "", board: str = "",
                      source: str = "capture", started: str | None = None,
                      **extra) -> RecordingWriter:
        """Start a recording; returns its :class:`RecordingWriter`.

        Side effect: creates ``recordings/<id>/`` with ``meta.json`` (incomplete)
        and an empty ``samples.bin`` at once, so a crash right after is visible.
        """
        np.dtype(dtype)  # raises TypeError for a dtype numpy does not know
        if not channels:
            raise ValueError("a recording needs at least one channel")
        started = started or _now_iso()
        stamp = re.sub(r"[^0-9T]", "", started[:19])
        rec_id = f"{_slug(label)}-{stamp}-{secrets.token_hex(3)}"
        meta = RecordingMeta(rec_id, sensor, tuple(channels), units, float(rate_hz),
                             np.dtype(dtype).name, float(scale), label or None, (), device,
                             board, started, source, 0, 0, (), False, False, dict(extra))
        d = self.root / "recordings" / rec_id
        d.mkdir(parents=True)
        (d / "samples.bin").touch()
        _write_json_atomic(d / "meta.json", meta.to_json())
        self._metas[rec_id] = meta
        return RecordingWriter(self, meta)

    def add_recording(self, values: np.ndarray, **meta) -> RecordingMeta:
        """Store a whole recording at once (imports). Same keywords as :meth:`new_recording`."""
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[:, None]
        meta.setdefault("dtype", "float32" if values.dtype.kind == "f" else values.dtype.name)
        with self.new_recording(**meta) as w:
            w.append(values)
        return self.meta(w.meta.id)

    def _update(self, meta: RecordingMeta) -> RecordingMeta:
        _write_json_atomic(self.root / "recordings" / meta.id / "meta.json", meta.to_json())
        self._metas[meta.id] = meta
        return meta

    # ----------------------------------------------------------------- labels
    def set_label(self, rec_id: str, label: str | None) -> RecordingMeta:
        """Label a whole recording (None removes the label)."""
        return self._update(replace(self.meta(rec_id), label=label or None))

    def set_regions(self, rec_id: str, regions: list[Region] | tuple[Region, ...]) -> RecordingMeta:
        """Replace a recording's labelled regions (validated: inside it, not overlapping)."""
        meta = self.meta(rec_id)
        ordered = tuple(sorted(regions, key=lambda r: (r.start, r.end)))
        for r in ordered:
            if r.end > meta.samples:
                raise ValueError(f"region {r.start}..{r.end} runs past the end of {rec_id} "
                                 f"({meta.samples} samples)")
        for a, b in zip(ordered, ordered[1:]):
            if b.start < a.end:
                raise ValueError(f"regions {a.start}..{a.end} ({a.label}) and {b.start}..{b.end} "
                                 f"({b.label}) overlap")
        return self._update(replace(meta, regions=ordered))

    def add_region(self, rec_id: str, start: int, end: int, label: str) -> RecordingMeta:
        meta = self.meta(rec_id)
        return self.set_regions(rec_id, meta.regions + (Region(int(start), int(end), label),))

    def remove_region(self, rec_id: str, region: Region) -> RecordingMeta:
        meta = self.meta(rec_id)
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
        for meta in list(self._metas.values()):
            label = into if meta.label in labels else meta.label
            regions = tuple(replace(r, label=into) if r.label in labels else r
                            for r in meta.regions)
            if label != meta.label or regions != meta.regions:
                self._update(replace(meta, label=label, regions=regions))
                changed += 1
        return changed

    def drop(self, rec_id: str) -> Path:
        """Move a recording to ``trash/`` (nothing is deleted). Returns where it went."""
        self.meta(rec_id)
        trash = self.root / "trash"
        trash.mkdir(exist_ok=True)
        dest = trash / rec_id
        shutil.move(str(self.root / "recordings" / rec_id), dest)
        del self._metas[rec_id]
        return dest

    def restore(self, rec_id: str) -> RecordingMeta:
        """Bring a dropped recording back from ``trash/``."""
        src = self.root / "trash" / rec_id
        if not src.is_dir():
            raise KeyError(f"no dropped recording {rec_id!r}")
        shutil.move(str(src), self.root / "recordings" / rec_id)
        meta = self._load_meta(self.root / "recordings" / rec_id)
        self._metas[rec_id] = meta
        return meta

    # ----------------------------------------------------------------- hashes
    def content_hash(self, rec_id: str) -> str:
        """SHA-256 of a recording's samples file (cached by size and mtime)."""
        path = self.root / "recordings" / rec_id / "samples.bin"
        st = path.stat()
        meta = self.meta(rec_id)
        cached = meta.extra.get("_sha256")
        if cached and cached[:2] == [st.st_size, st.st_mtime_ns]:
            return cached[2]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        self._update(replace(meta, extra={**meta.extra, "_sha256": [st.st_size, st.st_mtime_ns,
                                                                    digest]}))
        return digest
