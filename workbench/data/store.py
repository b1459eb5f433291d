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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError

try:  # POSIX; elsewhere datasets work but two processes must not share one
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

FORMAT = "workbench-dataset"
VERSION = 1
FLUSH_SECONDS = 1.0
"""A recording in progress reaches the file at least this often."""


class DatasetError(WorkbenchError):
    """A store that cannot be opened or an operation it cannot do (message says why)."""


class DatasetWarning(UserWarning):
    """Opening a dataset skipped a recording (its metadata is wrong); see ``problems``."""


NUMERIC_KINDS = "iuf"
"""Sample dtypes a recording may have: signed and unsigned integers, floats."""


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def meta_problems(d) -> list[str]:
    """What is wrong with a parsed ``meta.json`` (empty: nothing). Checks every field a
    repair, a read or a window relies on, so that a wrong value is caught before any of
    them touches the files."""
    if not isinstance(d, dict):
        return [f"is a JSON {type(d).__name__}, not an object"]
    out = []
    for key in ("sensor", "channels", "units", "rate_hz", "dtype"):
        if key not in d:
            out.append(f"field {key!r} is missing")
    ch = d.get("channels")
    if "channels" in d and (not isinstance(ch, list) or not ch
                            or not all(isinstance(c, str) for c in ch)):
        out.append(f"field 'channels' must be a non-empty list of names, not {ch!r}")
    if "dtype" in d:
        dt = d["dtype"]
        try:
            ok = isinstance(dt, str) and np.dtype(dt).kind in NUMERIC_KINDS
        except TypeError:
            ok = False
        if not ok:
            out.append(f"field 'dtype' must name a numeric sample type (int16, float32...), "
                       f"not {dt!r}")
    if "rate_hz" in d and not (_is_number(d["rate_hz"]) and d["rate_hz"] >= 0):
        out.append(f"field 'rate_hz' must be a number >= 0, not {d['rate_hz']!r}")
    if "scale" in d and not _is_number(d["scale"]):
        out.append(f"field 'scale' must be a finite number, not {d['scale']!r}")
    for key in ("samples", "lost"):
        if key in d and not _is_count(d[key]):
            out.append(f"field {key!r} must be a whole number >= 0, not {d[key]!r}")
    for key in ("id", "sensor", "units", "device", "board", "started", "source"):
        if key in d and not isinstance(d[key], str):
            out.append(f"field {key!r} must be a string, not {d[key]!r}")
    if d.get("label") is not None and not isinstance(d["label"], str):
        out.append(f"field 'label' must be a string or null, not {d['label']!r}")
    for key in ("complete", "interrupted"):
        if key in d and not isinstance(d[key], bool):
            out.append(f"field {key!r} must be true or false, not {d[key]!r}")
    if "extra" in d and not isinstance(d["extra"], dict):
        out.append(f"field 'extra' must be an object, not {d['extra']!r}")
    gaps = d.get("gaps", [])
    if not isinstance(gaps, list) or not all(
            isinstance(g, list) and len(g) == 2 and all(_is_count(x) for x in g) for g in gaps):
        out.append(f"field 'gaps' must be a list of [index, count] pairs, not {gaps!r}")
    regions = d.get("regions", [])
    if not isinstance(regions, list):
        out.append(f"field 'regions' must be a list, not {regions!r}")
    else:
        for r in regions:
            try:
                if set(r) != {"start", "end", "label"} or not all(
                        _is_count(r[k]) for k in ("start", "end")) or not isinstance(
                        r["label"], str):
                    raise ValueError
                Region(**r)
            except (TypeError, ValueError):
                out.append(f"field 'regions' holds {r!r}; a region is "
                           '{"start": n, "end": m, "label": "..."} with 0 <= start < end')
                break
    return out


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
        """Parse a ``meta.json`` object. Raises ValueError naming the first wrong field."""
        problems = meta_problems(d)
        if problems:
            raise ValueError(problems[0])
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
    """Write ``path`` whole or not at all (a temporary file of this process, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


_RESERVED = {"", ".", ".."}


def check_name(name, what: str = "recording id") -> str:
    """``name`` if it is one plain path component (no separator, not ``.``/``..``, no NUL),
    else ValueError: names taken from callers or files never reach outside their folder."""
    if not isinstance(name, str) or name in _RESERVED or "/" in name or "\\" in name \
            or "\x00" in name or (os.altsep and os.altsep in name):
        raise DatasetError(f"{name!r} is not a valid {what}: it must be a single folder name "
                           "inside the dataset (no '/', '..' or absolute path)")
    return name


def _inside(base: Path, name: str, what: str = "recording id") -> Path:
    """``base / name``, checked to be a direct child of ``base`` once symbolic links are
    resolved (DatasetError otherwise)."""
    path = base / check_name(name, what)
    real, parent = path.resolve(), base.resolve()
    if real.parent != parent:
        raise DatasetError(f"{path} leads outside {base} (to {real}); refusing to use it")
    return path


def _flock(path: Path, *, blocking: bool = True) -> int | None:
    """An exclusive lock on a folder (flock on its descriptor). Returns the descriptor to pass
    to :func:`_unlock`, or None if ``blocking`` is False and another holds the lock. Without
    fcntl (Windows) nothing is locked and a descriptor-less token is returned."""
    if fcntl is None:  # pragma: no cover
        return -1
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        os.close(fd)  # closing the descriptor releases its lock


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
