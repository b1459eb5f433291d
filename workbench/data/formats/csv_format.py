"""CSV import and export: what sketches print, read as it is.

Import reads a file the way the line-mode reader reads a serial port
(:class:`workbench.protocol.linemode.LineParser`): numbers separated by commas, tabs, semicolons or
spaces, one sample per line; a header line right before the first sample names the channels;
blank lines and stray text (``Failed to initialize IMU!``, a line with a field missing) are
skipped and counted in the recording's ``extra`` (``skipped_lines``, ``blank_lines``).

The sample rate comes from a **time column** when there is one: a column whose header is a time
name (``timestamp``, ``time``, ``t``, ``ms``, ``millis``, ``micros``, ``time_ms``, ``t (s)``...)
and whose values never decrease. Its unit comes from the name (``ms``/``millis`` milliseconds,
``us``/``micros`` microseconds, ``s``/``sec`` seconds; ``timestamp`` alone is milliseconds, as in
Edge Impulse's CSV format; ``time``/``t`` alone are milliseconds if every value is a whole
number, as Arduino's ``millis()`` prints, else seconds). The rate is 1 / the median interval,
refined by averaging the intervals within 50 % of the median (so millisecond-rounded stamps of a
119 Hz sensor give 119 Hz, not 125); intervals longer than 1.5 times the period are recorded as
lost samples (``lost``, ``gaps``). The time column is not stored as a channel.

Without a time column the rate is unknown and ``rate_hz`` must be given: a :class:`ValueError`
says so rather than guessing.

Export writes a header (``timestamp`` then the channel names) and one line per sample: the
timestamp in milliseconds from the start (lost samples leave a gap in the stamps) and the values
in physical units, each float32 written with the fewest digits that read back to the same
float32, so ``export_csv`` then ``import_csv`` gives back equal values and rate.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ...protocol.linemode import LineParser
from ..store import Dataset, Recording, RecordingMeta
from . import store_recording

__all__ = ["import_csv", "export_csv", "read_csv"]

_TIME_WORDS = {"timestamp", "time", "t", "ms", "millis", "micros", "us", "sec", "seconds",
               "elapsed", "clock"}
_UNIT_WORDS = {"ms": "ms", "msec": "ms", "millis": "ms", "milliseconds": "ms",
               "us": "us", "usec": "us", "micros": "us", "microseconds": "us", "µs": "us",
               "s": "s", "sec": "s", "secs": "s", "seconds": "s"}
_TO_MS = {"ms": 1.0, "us": 1e-3, "s": 1e3}
MAX_SKIPPED_TEXT = 10
"""How many skipped text lines are kept verbatim in ``extra["skipped_text"]``."""


def _time_unit(name: str) -> tuple[bool, str | None]:
    """(is a time column name, its unit or None when the name does not say)."""
    tokens = [t for t in re.split(r"[\s_()\[\]/.-]+", name.strip().lower()) if t]
    if not tokens or tokens[0] not in _TIME_WORDS:
        return False, None
    if any(t not in _UNIT_WORDS and t not in _TIME_WORDS for t in tokens[1:]):
        return False, None
    for t in reversed(tokens):
        if t in _UNIT_WORDS and t not in ("time", "t"):
            return True, _UNIT_WORDS[t]
    return True, ("ms" if tokens[0] == "timestamp" else None)


def read_csv(path: str | os.PathLike) -> dict:
    """Parse a CSV file into memory: ``{"names", "rows", "skipped", "blank", "texts"}``.

    ``names`` is the header (or None), ``rows`` a float64 array (samples x columns).
    Raises ValueError if the file holds no sample at all.
    """
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # the byte-order mark some editors put first
        data = data[3:]
    parser = LineParser()
    events = parser.feed(data + b"\n", 0.0)
    rows = [e.values for e in events if e.kind == "sample"]
    texts = [e.text for e in events if e.kind == "text"]
    blank = sum(1 for line in data.replace(b"\x00", b"\n").split(b"\n")
                if not line.strip(b"\r\x00 \t"))
    if data.endswith(b"\n"):
        blank -= 1  # the empty "line" after the final newline is no line
    if not rows:
        hint = f" (first text line: {texts[0]!r})" if texts else ""
        raise ValueError(f"{path.name}: no samples found; a sample is a line of numbers "
                         f"separated by commas, tabs, semicolons or spaces{hint}")
    return {"names": parser.names, "rows": np.asarray(rows, dtype=np.float64),
            "skipped": len(texts), "blank": max(blank, 0), "texts": texts}


def _find_time_column(names, rows, time_column) -> tuple[int | None, str | None]:
    """Index of the time column and its unit (None: unit from the values)."""
    if time_column is None or time_column is False:
        return None, None
    width = rows.shape[1]
    if time_column == "auto":
        if not names:
            return None, None
        for i, name in enumerate(names):
            is_time, unit = _time_unit(name)
            if is_time and name.strip().lower() == "t" and i != 0:
                continue  # a bare "t" elsewhere is more likely a temperature
            if is_time and width > 1 and _monotonic(rows[:, i]):
                return i, unit
        return None, None
    if isinstance(time_column, int):
        index = time_column if time_column >= 0 else width + time_column
        if not 0 <= index < width:
            raise ValueError(f"time_column={time_column} but the file has {width} columns")
        unit = _time_unit(names[index])[1] if names else None
    else:
        if not names or time_column not in names:
            raise ValueError(f"time_column={time_column!r} is not a column; columns: "
                             f"{list(names) if names else 'none named (the file has no header)'}")
        index = list(names).index(time_column)
        unit = _time_unit(time_column)[1]
    if width < 2:
        raise ValueError("the time column is the only column; there is no data to import")
    if not _monotonic(rows[:, index]):
        raise ValueError(f"time column {time_column!r} goes backwards or does not advance; "
                         "pass time_column=None and rate_hz=... to import it as data")
    return index, unit


def _monotonic(t: np.ndarray) -> bool:
    if len(t) < 2 or not np.all(np.isfinite(t)):
        return False
    d = np.diff(t)
    return bool(np.all(d >= 0) and np.median(d) > 0)


def _rate_from_times(t_ms: np.ndarray) -> tuple[float, list[tuple[int, int]], float]:
    """(rate in Hz, gaps, median interval in ms) from timestamps in milliseconds."""
    d = np.diff(t_ms)
    median = float(np.median(d))
    regular = d[(d >= 0.5 * median) & (d <= 1.5 * median)]
    period = float(regular.mean()) if len(regular) else median
    rate = float(f"{1000.0 / period:.6g}")
    gaps = []
    for i in np.nonzero(d > 1.5 * period)[0]:
        missing = int(round(d[i] / period)) - 1
        if missing > 0:
            gaps.append((int(i) + 1, missing))
    return rate, gaps, median


def import_csv(dataset: Dataset, path: str | os.PathLike, *, label: str | None = None,
               rate_hz: float | None = None, sensor: str = "csv", units: str = "",
               time_column: str | int | None = "auto",
               time_unit: str | None = None, device: str = "", board: str = "",
               extra: dict | None = None) -> RecordingMeta:
    """Import one CSV file as one recording (values stored as float32, in ``units``).

    ``time_column``: ``"auto"`` (detect by header name, see the module doc), a column name or
    index, or None (no time column). ``rate_hz`` overrides the rate found from the time column
    and is required when there is none. ``time_unit`` (``"ms"``, ``"s"``, ``"us"``) overrides
    the unit guessed for the time column. Skipped lines are counted in ``extra``; items of
    the ``extra`` argument are added to it (``device`` and ``board`` go to the metadata).
    Raises ValueError for a file without samples, an unknown rate or a bad time column; the
    dataset is then unchanged.
    """
    path = Path(path)
    parsed = read_csv(path)
    names, rows = parsed["names"], parsed["rows"]
    width = rows.shape[1]
    t_index, unit = _find_time_column(names, rows, time_column)
    info: dict = {"file": path.name, "skipped_lines": parsed["skipped"],
                   "blank_lines": parsed["blank"]}
    if parsed["texts"]:
        info["skipped_text"] = parsed["texts"][:MAX_SKIPPED_TEXT]
    if names:
        info["header"] = list(names)
    gaps: list[tuple[int, int]] = []
    if t_index is not None:
        t = rows[:, t_index]
        if time_unit is not None:
            if time_unit not in _TO_MS:
                raise ValueError(f"time_unit must be one of {sorted(_TO_MS)}, not {time_unit!r}")
            unit = time_unit
        if unit is None:
            unit = "ms" if np.all(t == np.round(t)) else "s"
        found, gaps, median = _rate_from_times(t * _TO_MS[unit])
        info["time_column"] = names[t_index] if names else t_index
        info["time_unit"] = unit
        if rate_hz is None:
            rate_hz = found
            info["rate_from"] = (f"time column {info['time_column']!r}: median interval "
                                 f"{median:.6g} ms")
        else:
            info["rate_from"] = f"given (time column says {found:g} Hz)"
            gaps = []
        keep = [i for i in range(width) if i != t_index]
        rows = rows[:, keep]
        channel_names = [names[i] for i in keep] if names else [f"ch{i}" for i in range(len(keep))]
    else:
        if rate_hz is None:
            raise ValueError(
                f"{path.name}: the sample rate is unknown (no time column such as 'timestamp' "
                "or 'millis'); pass rate_hz=<samples per second the sketch printed>")
        info["rate_from"] = "given"
        channel_names = list(names) if names else [f"ch{i}" for i in range(width)]
    rate_hz = float(rate_hz)
    if not rate_hz > 0 or not np.isfinite(rate_hz):
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz}")
    if len(set(channel_names)) != len(channel_names):
        raise ValueError(f"{path.name}: the header repeats a column name: {channel_names}")
    return store_recording(dataset, rows.astype(np.float32), gaps=gaps, sensor=sensor,
                           channels=tuple(channel_names), units=units, rate_hz=rate_hz,
                           dtype="float32", scale=1.0, label=label, device=device,
                           board=board, source="import:csv", **{**info, **(extra or {})})


def _format_ms(t: np.ndarray) -> np.ndarray:
    if np.all(t == np.round(t)):
        return np.round(t).astype(np.int64).astype(str)
    out = np.char.mod("%.6f", t)
    out = np.char.rstrip(np.char.rstrip(out, "0"), ".")
    return out


def export_csv(recording: Recording | RecordingMeta | str, dataset: Dataset | str | os.PathLike
               | None = None, path: str | os.PathLike | None = None) -> Path:
    """Write a recording as CSV: ``timestamp`` (ms) then the channels, in physical units.

    ``recording`` is a :class:`Recording`, or a :class:`RecordingMeta` or id together with the
    ``dataset`` that holds it; with a Recording, ``export_csv(rec, path)`` also works.
    The file is written to a temporary name and then renamed, so it is never half written.
    Returns the path written.
    """
    if path is None and isinstance(dataset, (str, os.PathLike)):
        dataset, path = None, dataset
    if path is None:
        raise TypeError("export_csv needs a path to write to")
    if not isinstance(recording, Recording):
        if dataset is None:
            raise TypeError("pass the dataset that holds the recording, or a loaded Recording")
        rec_id = recording.id if isinstance(recording, RecordingMeta) else str(recording)
        recording = dataset.load(rec_id)
    meta = recording.meta
    values = np.asarray(recording.values, dtype=np.float32)
    index = np.arange(len(values), dtype=np.float64)
    for at, missing in meta.gaps:  # lost samples leave a gap in the stamps
        index[at:] += missing
    t_ms = index * (1000.0 / meta.rate_hz)
    columns = [_format_ms(t_ms)] + [values[:, c].astype(str) for c in range(values.shape[1])]
    lines = [",".join(["timestamp", *meta.channels])]
    if len(values):
        lines += [",".join(row) for row in zip(*columns)]
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
