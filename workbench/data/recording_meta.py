"""What a recording is: its metadata (:class:`RecordingMeta`, labelled :class:`Region` s),
the checks a ``meta.json`` must pass (:func:`meta_problems`), and a recording loaded into
memory (:class:`Recording`). Pure values: nothing here touches the disk.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

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
