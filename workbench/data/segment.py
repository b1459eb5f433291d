"""Propose labelled regions automatically: find events by short-time signal energy.

The user records a stretch with several gestures (or words) in it; this module
finds where they are so that labelling is a matter of accepting or nudging the
proposals instead of dragging every region by hand. Nothing here writes to a
dataset: the result is a list of :class:`~workbench.data.store.Region` to pass to
``Dataset.set_regions`` once the user agrees.

How it works (:func:`segment_energy`):

1. **Frames.** The signal is cut into frames of ``window_s`` seconds, hopping by
   half a frame.
2. **Energy without gravity.** For every frame and channel the mean square of the
   signal *minus a baseline* is taken, summed over the channels and square-rooted:
   the RMS of the dynamic part of the signal vector, in the signal's units. The
   baseline (``baseline=``) is by default a running median of the frame means over
   3 s, so gravity, sensor offsets and slow tilts do not count as activity; for
   audio (no DC) it changes nothing.
3. **Threshold.** ``threshold=None`` derives it from the noise floor: ``floor +
   sensitivity * spread`` where ``floor`` is the median frame energy and ``spread``
   is the robust standard deviation of the frame energies (1.4826 x the median
   absolute deviation), at least 1 % of the range between floor and the 99th
   percentile (so digital silence does not make every faint sound an event). This
   assumes the recording is mostly *quiet*: events cover less than half of it.
   A number is an absolute threshold in the signal's units (e.g. 0.1 g); the
   strings ``"3x"`` (3 times the noise floor) and ``"40%"`` (40 % of the way from
   the floor to the loudest frame) are relative thresholds.
4. **Hysteresis.** An event is a run of frames above the *exit* threshold that
   contains at least one frame above the (entry) threshold; the exit threshold
   sits ``hysteresis`` of the way from the floor to the entry threshold. A signal
   hovering around the threshold therefore gives one event, not many.
5. **Clean-up.** Events separated by less than ``merge_gap_s`` are merged, events
   shorter than ``min_event_s`` dropped, the rest padded by ``pad_s`` on each side
   and clipped to the recording (padding never makes regions overlap).

The energy curve, its frame times and both thresholds come back in a
:class:`SegmentResult` so a widget can draw them; :meth:`SegmentResult.with_threshold`
re-cuts the regions for a new threshold without recomputing the energy (a slider).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.data.store import Region

__all__ = ["SegmentResult", "segment_energy", "propose_regions", "energy_curve",
           "auto_threshold", "BASELINE_AUTO_S", "SPREAD_FLOOR"]

BASELINE_AUTO_S = 1.0
"""Span (seconds) of the running median that ``baseline="auto"`` subtracts. Short
enough that a posture change (a board put down another way, gravity moving to
another axis) is followed within a second instead of counting as an event; long
enough that a gesture's own oscillation (1 Hz and faster) is not."""
SPREAD_FLOOR = 0.01
"""The automatic threshold's spread is at least this fraction of (99th percentile - floor)."""
_MAD_TO_SIGMA = 1.4826
_SAME = object()


@dataclass(frozen=True)
class SegmentResult:
    """What :func:`segment_energy` found, with everything needed to draw it.

    ``energy[i]`` is the RMS of the baseline-free signal vector over frame ``i``
    (signal units), ``times[i]`` the frame's centre in seconds; ``frame_starts[i]``
    its first sample. ``threshold`` is the entry threshold used, ``exit_threshold``
    the lower one an event must fall below to end, ``noise_floor`` the median frame
    energy. ``regions`` are in samples (end exclusive), sorted, never overlapping.
    """

    energy: np.ndarray
    times: np.ndarray
    threshold: float
    exit_threshold: float
    noise_floor: float
    regions: tuple[Region, ...]
    rate_hz: float
    n_samples: int
    frame_starts: np.ndarray
    window: int
    """Frame length in samples."""
    hop: int
    """Samples between frame starts."""
    params: dict = field(default_factory=dict, repr=False)
    """The clean-up settings used (for :meth:`with_threshold`)."""
    threshold_spec: Any = None
    """The threshold as asked for (None = automatic, a number, "Nx" or "P%")."""

    @property
    def regions_s(self) -> list[tuple[float, float, str]]:
        """The regions as (start s, end s, label)."""
        return [(r.start / self.rate_hz, r.end / self.rate_hz, r.label) for r in self.regions]

    def with_threshold(self, threshold: Any = _SAME, **changes: Any) -> "SegmentResult":
        """The same energy curve cut at another ``threshold`` (as in :func:`segment_energy`;
        omitted = the one asked for before) and/or other clean-up settings
        (``sensitivity``, ``hysteresis``, ``min_event_s``, ``merge_gap_s``, ``pad_s``,
        ``label``). Cheap: the energy is not recomputed. Raises TypeError for an
        unknown setting, ValueError as :func:`segment_energy` does."""
        unknown = set(changes) - set(self.params)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; "
                            f"known: threshold, {', '.join(sorted(self.params))}")
        params = {**self.params, **changes}
        spec = self.threshold_spec if threshold is _SAME else threshold
        return _cut(self.energy, self.times, self.frame_starts, self.window, self.hop,
                    self.rate_hz, self.n_samples, spec, **params)


def _as_values(recording_or_values: Any, rate_hz: float | None) -> tuple[np.ndarray, float]:
    if hasattr(recording_or_values, "values") and hasattr(recording_or_values, "meta"):
        values = recording_or_values.values
        rate = rate_hz if rate_hz is not None else recording_or_values.meta.rate_hz
    else:
        values, rate = recording_or_values, rate_hz
    if rate is None:
        raise ValueError("rate_hz is needed when passing an array (a Recording carries it)")
    rate = float(rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
    x = np.asarray(values)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"values must be (samples,) or (samples, channels), got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"values must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("values contain NaN or infinity; fill or cut them first")
    return x, rate


def _running_median(x: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import median_filter
    size = max(1, min(int(size), len(x)))
    if size % 2 == 0:
        size += 1
    return median_filter(x, size=(size, 1), mode="nearest")


def energy_curve(values: np.ndarray, rate_hz: float, *, window_s: float = 0.1,
                 baseline: str | float | None = "auto",
                 channels: Sequence[int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Short-time energy of ``values`` ((samples,) or (samples, channels)).

    ``baseline``: ``"auto"`` (running median of frame means over
    :data:`BASELINE_AUTO_S` s), a number (that span in seconds), ``"median"`` (one
    median per channel over the whole recording) or ``None``/``"none"`` (raw RMS).
    ``channels`` picks the columns to use (e.g. only the accelerometer's when
    gyroscope columns in other units sit beside them).

    Returns ``(energy, times, frame_starts, window, hop)``: energy per frame in the
    signal's units, frame centres in seconds, frame first samples, the frame length
    and hop in samples. Raises ValueError for bad shapes, rates, windows or baselines.
    """
    x, rate = _as_values(values, rate_hz)
    if channels is not None:
        x = x[:, list(channels)]
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s!r}")
    n = len(x)
    if n == 0:
        empty = np.zeros(0)
        return empty, empty, np.zeros(0, dtype=np.int64), 1, 1
    w = int(min(n, max(1, round(window_s * rate))))
    hop = max(1, w // 2)
    starts = np.arange(0, n - w + 1, hop, dtype=np.int64)
    offset = np.median(x, axis=0)
    x = x - offset  # better precision of the running sums
    c1 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    c2 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x * x, axis=0)])
    mean = (c1[starts + w] - c1[starts]) / w
    meansq = (c2[starts + w] - c2[starts]) / w
    var = np.maximum(meansq - mean * mean, 0.0)

    if baseline is None or baseline == "none":
        power = var + (mean + offset) ** 2
    else:
        if baseline == "median":
            base = np.zeros_like(mean)  # the per-channel median was already removed
        elif baseline == "auto" or (isinstance(baseline, (int, float))
                                     and not isinstance(baseline, bool)):
            span = BASELINE_AUTO_S if baseline == "auto" else float(baseline)
            if not span > 0:
                raise ValueError(f"a baseline span must be > 0 seconds, got {baseline!r}")
            base = _running_median(mean, round(span * rate / hop))
        else:
            raise ValueError(f"baseline must be 'auto', 'median', 'none', None or a span in "
                             f"seconds, got {baseline!r}")
        power = var + (mean - base) ** 2
    energy = np.sqrt(power.sum(axis=1))
    times = (starts + w / 2) / rate
    return energy, times, starts, w, hop


def auto_threshold(energy: np.ndarray, sensitivity: float = 6.0) -> tuple[float, float]:
    """The automatic threshold for an energy curve: ``(threshold, noise_floor)``.

    ``noise_floor`` is the median energy; the threshold is ``floor + sensitivity *
    spread`` (spread: 1.4826 x median absolute deviation, at least
    :data:`SPREAD_FLOOR` of the 99th percentile's height above the floor).
    Higher ``sensitivity`` = stricter = fewer, shorter events.
    """
    e = np.asarray(energy, dtype=float)
    if e.size == 0:
        return 0.0, 0.0
    floor = float(np.median(e))
    spread = _MAD_TO_SIGMA * float(np.median(np.abs(e - floor)))
    spread = max(spread, SPREAD_FLOOR * (float(np.percentile(e, 99)) - floor))
    return floor + float(sensitivity) * spread, floor


def _resolve_threshold(energy: np.ndarray, threshold: float | str | None,
                       sensitivity: float) -> tuple[float, float]:
    auto, floor = auto_threshold(energy, sensitivity)
    if threshold is None:
        return auto, floor
    if isinstance(threshold, str):
        text = threshold.strip().lower()
        try:
            if text.endswith("x"):
                return float(text[:-1]) * floor, floor
            if text.endswith("%"):
                peak = float(energy.max()) if energy.size else 0.0
                return floor + float(text[:-1]) / 100 * (peak - floor), floor
        except ValueError:
            pass
        raise ValueError(f"threshold {threshold!r} not understood: use a number (absolute, "
                         "signal units), 'Nx' (N times the noise floor) or 'P%' (P percent "
                         "of the way from the floor to the peak)")
    value = float(threshold)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    return value, floor


def _cut(energy, times, starts, w, hop, rate, n, threshold, *, sensitivity, hysteresis,
         min_event_s, merge_gap_s, pad_s, label) -> SegmentResult:
    if not 0 <= hysteresis <= 1:
        raise ValueError(f"hysteresis must be between 0 and 1, got {hysteresis!r}")
    for name, v in (("min_event_s", min_event_s), ("merge_gap_s", merge_gap_s),
                    ("pad_s", pad_s)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be >= 0 seconds, got {v!r}")
    if not label:
        raise ValueError("label must be a non-empty string")
    enter, floor = _resolve_threshold(energy, threshold, sensitivity)
    exit_ = min(enter, floor + hysteresis * (enter - floor))
    params = dict(sensitivity=sensitivity, hysteresis=hysteresis, min_event_s=min_event_s,
                  merge_gap_s=merge_gap_s, pad_s=pad_s, label=label)

    # runs of frames above the exit threshold that reach the entry threshold
    above = np.concatenate([[False], energy > exit_, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    spans = []  # sample ranges, each frame owning the hop-wide slice around its centre
    for a, b in zip(edges[::2], edges[1::2]):  # frames a .. b-1
        if energy[a:b].max() > enter:
            s = int(round(starts[a] + (w - hop) / 2))
            e = int(round(starts[b - 1] + (w + hop) / 2))
            if a == 0:
                s = 0
            if b == len(energy):
                e = n
            spans.append([max(0, s), min(n, e)])

    merged: list[list[int]] = []
    gap = merge_gap_s * rate
    for s, e in spans:
        if merged and s - merged[-1][1] < gap:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    shortest = min_event_s * rate
    kept = [(s, e) for s, e in merged if e - s >= shortest and e > s]

    pad = int(round(pad_s * rate))
    regions: list[Region] = []
    for s, e in kept:
        s, e = max(0, s - pad), min(n, e + pad)
        if regions and s <= regions[-1].end:  # padding would overlap: join them
            regions[-1] = Region(regions[-1].start, e, label)
        else:
            regions.append(Region(s, e, label))
    return SegmentResult(energy, times, float(enter), float(exit_), float(floor),
                         tuple(regions), rate, n, starts, w, hop, params, threshold)


def segment_energy(recording_or_values: Any, rate_hz: float | None = None, *,
                   threshold: float | str | None = None, sensitivity: float = 6.0,
                   hysteresis: float = 0.5, window_s: float = 0.1, min_event_s: float = 0.2,
                   merge_gap_s: float = 0.15, pad_s: float = 0.05, label: str = "event",
                   baseline: str | float | None = "auto",
                   channels: Sequence[int] | None = None) -> SegmentResult:
    """Find events by short-time energy; returns a :class:`SegmentResult`.

    Inputs: a :class:`~workbench.data.store.Recording` (its ``values`` and rate are
    used) or an array ``(samples,)`` / ``(samples, channels)`` with ``rate_hz``.
    ``threshold``: ``None`` (automatic, ``floor + sensitivity * spread``), a number
    (absolute, signal units), ``"Nx"`` (N x the noise floor) or ``"P%"`` (P % of the
    way from floor to peak). ``hysteresis`` (0..1) places the exit threshold between
    floor (0) and entry threshold (1). ``window_s``: frame length; ``min_event_s``:
    shorter events are dropped; ``merge_gap_s``: closer events are joined (speech
    needs ~0.3-0.5 s so the pause between words does not split a phrase);
    ``pad_s``: added on both sides. ``baseline`` and ``channels``: see
    :func:`energy_curve`. Every region gets ``label``.

    Raises ValueError for a missing or bad rate, bad shapes, non-finite samples or
    bad settings. An empty recording gives no regions.
    """
    x, rate = _as_values(recording_or_values, rate_hz)
    energy, times, starts, w, hop = energy_curve(x, rate, window_s=window_s,
                                                 baseline=baseline, channels=channels)
    return _cut(energy, times, starts, w, hop, rate, len(x), threshold,
                sensitivity=sensitivity, hysteresis=hysteresis, min_event_s=min_event_s,
                merge_gap_s=merge_gap_s, pad_s=pad_s, label=label)


def propose_regions(recording_or_values: Any, rate_hz: float | None = None, *,
                    threshold: float | str | None = None, window_s: float = 0.1,
                    min_event_s: float = 0.2, merge_gap_s: float = 0.15, pad_s: float = 0.05,
                    label: str = "event", baseline: str | float | None = "auto",
                    sensitivity: float = 6.0, hysteresis: float = 0.5,
                    channels: Sequence[int] | None = None) -> list[Region]:
    """Proposed regions (sample indices, end exclusive, sorted, non-overlapping).

    Same arguments as :func:`segment_energy`, which also gives the energy curve and
    thresholds. The result can go straight to ``Dataset.set_regions``.
    """
    return list(segment_energy(recording_or_values, rate_hz, threshold=threshold,
                               sensitivity=sensitivity, hysteresis=hysteresis,
                               window_s=window_s, min_event_s=min_event_s,
                               merge_gap_s=merge_gap_s, pad_s=pad_s, label=label,
                               baseline=baseline, channels=channels).regions)
