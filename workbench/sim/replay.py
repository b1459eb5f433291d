"""Replay of real wrist recordings as virtual-board sensor sources.

BasicMotions (shipped inside the ``aeon`` package, BSD-3; read by
:func:`workbench.refdata.load_basicmotions`, where the data set and the reasoning behind its
units are described): a smartwatch's accelerometer in m/s^2 with gravity removed and its
gyroscope in rad/s, 10 Hz. Replay divides the accelerometer by 9.80665 to get g and, by
default (``gravity=True``), adds +1 g on z, as for a board worn face up, so that the samples
look like an accelerometer that measures gravity (the recordings' true gravity direction is
lost; ``gravity=False`` gives the linear acceleration alone); it multiplies the gyroscope by
180/pi to get dps.

Values are then converted to the sensor's units and to raw with ``sensor.scale`` (rounded,
clipped to the raw type's range), exactly as :class:`workbench.sim.sensors.SensorSource` does
(both use :mod:`workbench.sim.sensor_base`).

Resampling: **linear interpolation** between the 10 Hz samples (no filtering). At 10 Hz the
recorded values come out unchanged; at higher rates the signal is piecewise linear between
recorded samples; at lower rates samples are picked by interpolation without anti-alias
filtering. ``noise=True`` adds the synthetic model's sensor noise on top (off by default, so
that replayed values are the recordings').

The recordings can also be passed in (``recordings=(X, labels)``, as
:func:`~workbench.refdata.load_basicmotions` returns them), e.g. a subset or another split.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

import numpy as np

from ..refdata import BASICMOTIONS, BASICMOTIONS_RATE_HZ, load_basicmotions
from .scenarios import NoiseStream
from .sensor_base import NOISE_RMS, STANDARD_GRAVITY, SensorLike, canonical_kind, to_raw, unit_factor

__all__ = ["ReplaySource", "REPLAY_SCENARIOS"]

#: Scenario name -> BasicMotions class. ``idle`` is an alias of ``standing``.
REPLAY_SCENARIOS: Mapping[str, str] = {
    "standing": "Standing", "walking": "Walking", "running": "Running",
    "badminton": "Badminton", "idle": "Standing",
}


class ReplaySource:
    """Raw samples replayed from BasicMotions for an accelerometer or gyroscope.

    Same interface as :class:`workbench.sim.sensors.SensorSource`. The chosen class's
    recordings are concatenated (in file order, train then test; shuffled per ``seed`` with
    ``shuffle=True``), resampled from 10 Hz to ``rate_hz`` by linear interpolation, converted
    to raw and looped. ``set_scenario`` starts the new class's recordings from their
    beginning at the next sample (the sample index carries on).

    ``recordings``: ``(X, labels)`` as :func:`workbench.refdata.load_basicmotions` returns
    them (X of shape (cases, 6, length) in the data set's units); default: read ``split`` of
    BasicMotions from aeon. Raises :class:`workbench.refdata.DataUnavailable` at
    construction if aeon is missing, ValueError for a sensor that is neither an
    accelerometer nor a gyroscope or a scenario without recordings.
    """

    def __init__(self, sensor: SensorLike, rate_hz: float | None = None,
                 scenario: str = "idle", seed: int = 0, *, split: str = "all",
                 gravity: bool = True, noise: bool = False, shuffle: bool = False,
                 recordings: tuple[np.ndarray, tuple[str, ...]] | None = None):
        self.sensor = sensor
        self.kind = canonical_kind(sensor.kind)
        if self.kind not in ("accelerometer", "gyroscope"):
            raise ValueError(f"{BASICMOTIONS} has only an accelerometer and a gyroscope; it cannot "
                             f"replay sensor {getattr(sensor, 'id', '?')!r} ({sensor.kind})")
        self._rate = float(rate_hz if rate_hz is not None else sensor.rate_hz)
        if not self._rate > 0:
            raise ValueError(f"rate_hz must be positive, got {self._rate}")
        self._nch = len(tuple(sensor.channels))
        self._dtype = np.dtype(sensor.dtype)
        self._scale = float(sensor.scale) if sensor.scale else 1.0
        self._factor = unit_factor(self.kind, sensor.units)
        self._seed, self._split = int(seed), split
        self._gravity, self._shuffle = bool(gravity), bool(shuffle)
        self._noise = None
        if noise:
            tag = zlib.crc32(f"{getattr(sensor, 'id', '')}/{self.kind}/replay".encode())
            self._noise = NoiseStream(seed, tag, self._nch)
        self._recordings = recordings
        self._streams: dict[str, np.ndarray] = {}
        self._index = 0
        self._start = 0
        self._class = self._lookup(scenario)
        self._name = str(scenario)
        self._stream(self._class)          # fail early if the data are missing

    @property
    def rate_hz(self) -> float:
        return self._rate

    @property
    def sample_index(self) -> int:
        return self._index

    @property
    def scenario(self) -> str:
        return self._name

    @property
    def scenarios(self) -> tuple[str, ...]:
        return tuple(REPLAY_SCENARIOS)

    def set_scenario(self, name: str) -> None:
        cls = self._lookup(name)
        self._name = str(name)
        if cls != self._class:
            self._class, self._start = cls, self._index
            self._stream(cls)

    def read(self, n: int) -> np.ndarray:
        n = int(n)
        if n < 0:
            raise ValueError("n must be >= 0")
        src = self._stream(self._class)
        L = src.shape[0]
        idx = np.arange(self._index, self._index + n, dtype=np.int64) - self._start
        pos = idx * (BASICMOTIONS_RATE_HZ / self._rate)
        i = np.floor(pos)
        f = (pos - i)[:, None]
        i = i.astype(np.int64) % L
        a, b = src[i], src[(i + 1) % L]
        phys = a + (b - a) * f
        if self._noise is not None and n:
            phys = phys + NOISE_RMS[self.kind] * self._factor * self._noise.take(self._index, n)
        self._index += n
        return to_raw(phys, self._dtype, self._scale)

    # -- internals ----------------------------------------------------------------------------
    @staticmethod
    def _lookup(name: str) -> str:
        try:
            return REPLAY_SCENARIOS[str(name).lower()]
        except KeyError:
            raise ValueError(f"unknown replay scenario {name!r}; valid scenarios: "
                             f"{', '.join(REPLAY_SCENARIOS)}") from None

    def _stream(self, cls: str) -> np.ndarray:
        """The class's recordings, concatenated, in the sensor's physical units: (L, nch)."""
        s = self._streams.get(cls)
        if s is not None:
            return s
        X, labels = (self._recordings if self._recordings is not None
                     else load_basicmotions(self._split))
        rows = [i for i, lab in enumerate(labels) if lab == cls]
        if not rows:
            raise ValueError(f"the recordings given hold no {cls!r} case to replay")
        if self._shuffle:
            rng = np.random.default_rng([self._seed % (1 << 63), zlib.crc32(cls.encode())])
            rows = list(rng.permutation(rows))
        half = slice(0, 3) if self.kind == "accelerometer" else slice(3, 6)
        data = np.concatenate([X[r, half, :].T for r in rows])        # (L, 3), dataset units
        if self.kind == "accelerometer":
            data = data / STANDARD_GRAVITY
            if self._gravity:
                data = data + np.array([0.0, 0.0, 1.0])
        else:
            data = data * (180.0 / math.pi)
        s = data[:, [c % 3 for c in range(self._nch)]] * self._factor
        self._streams[cls] = s
        return s
