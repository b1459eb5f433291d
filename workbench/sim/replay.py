"""Replay of real wrist recordings as virtual-board sensor sources.

BasicMotions (shipped inside the ``aeon`` package, BSD-3): four students wore a smartwatch while
Standing, Walking, Running and playing Badminton; 80 recordings (40 train + 40 test), each
6 channels x 100 samples at 10 Hz. Channels 0-2 are the accelerometer, 3-5 the gyroscope.

Units, as far as the data tell (the dataset does not document them):

* Accelerometer: **m/s^2 with gravity removed** (Android's "linear acceleration"). Standing
  recordings have a per-recording mean of about 0 on every axis and a mean ``|a|`` of about
  0.8, not 9.8 (nor 1, as it would be in g with gravity); walking reaches about 10 and running
  about 27, i.e. 1 and 2.8 g, plausible for a wrist. Replay divides by 9.80665 to get g and, by
  default (``gravity=True``), adds +1 g on z, as for a board worn face up, so that the
  samples look like an accelerometer that measures gravity (the recordings' true gravity
  direction is lost; ``gravity=False`` gives the linear acceleration alone).
* Gyroscope: **rad/s**. Standing has an rms of about 0.4, running peaks at about 13 and
  badminton at about 35 (2000 dps, a smash); in deg/s the arm swing of running (std about 5)
  would be implausibly slow. Replay multiplies by 180/pi to get dps.

Values are then converted to the sensor's units and to raw with ``sensor.scale`` (rounded,
clipped to the raw type's range), exactly as :class:`workbench.sim.sensors.SensorSource` does.

Resampling: **linear interpolation** between the 10 Hz samples (no filtering). At 10 Hz the
recorded values come out unchanged; at higher rates the signal is piecewise linear between
recorded samples; at lower rates samples are picked by interpolation without anti-alias
filtering. ``noise=True`` adds the synthetic model's sensor noise on top (off by default, so
that replayed values are the recordings').

The file is read as text (the ``.ts`` format) without importing aeon, which is slow to import.
"""
from __future__ import annotations

import importlib.util
import math
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from .sensors import (NOISE_RMS, STANDARD_GRAVITY, NoiseStream, SensorLike, canonical_kind,
                      to_raw, unit_factor)
from ..errors import WorkbenchError

__all__ = ["ReplayUnavailable", "ReplaySource", "REPLAY_SCENARIOS", "DATASET_RATE_HZ",
           "basicmotions_dir", "read_ts", "load_basicmotions"]

DATASET_RATE_HZ = 10.0
DATASET = "BasicMotions"
INSTALL_HINT = "pip install 'aeon>=1.0,<2'   (or: pip install 'tinyml-workbench[data]')"

#: Scenario name -> BasicMotions class. ``idle`` is an alias of ``standing``.
REPLAY_SCENARIOS: Mapping[str, str] = {
    "standing": "Standing", "walking": "Walking", "running": "Running",
    "badminton": "Badminton", "idle": "Standing",
}


class ReplayUnavailable(WorkbenchError, RuntimeError):
    """The recorded data set cannot be found (its package is not installed)."""


def basicmotions_dir() -> Path:
    """Directory holding BasicMotions_TRAIN.ts / _TEST.ts inside the installed aeon."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise ReplayUnavailable(
            f"Replaying {DATASET} needs the 'aeon' package, which ships the data set. "
            f"Install it with: {INSTALL_HINT}")
    for root in spec.submodule_search_locations:
        d = Path(root) / "datasets" / "data" / DATASET
        if (d / f"{DATASET}_TRAIN.ts").is_file():
            return d
    raise ReplayUnavailable(
        f"aeon is installed but {DATASET} was not found in it; reinstall with: {INSTALL_HINT}")


def read_ts(path: str | Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read an equal-length, multivariate ``.ts`` file (sktime/aeon text format) with class
    labels: returns X of shape (cases, channels, length) and the labels."""
    X, y, in_data = [], [], False
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.lower().startswith("@data"):
                    in_data = True
                continue
            *dims, label = line.split(":")
            X.append([np.array(d.split(","), dtype=float) for d in dims])
            y.append(label.strip())
    return np.asarray(X, dtype=float), tuple(y)


@lru_cache(maxsize=None)
def load_basicmotions(split: str = "all") -> tuple[np.ndarray, tuple[str, ...]]:
    """BasicMotions as (X, labels); split is "train", "test" or "all" (train then test)."""
    d = basicmotions_dir()
    parts = {"train": ("TRAIN",), "test": ("TEST",), "all": ("TRAIN", "TEST")}.get(split)
    if parts is None:
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    loaded = [read_ts(d / f"{DATASET}_{p}.ts") for p in parts]
    X = np.concatenate([x for x, _ in loaded])
    X.setflags(write=False)
    return X, tuple(lab for _, labels in loaded for lab in labels)


class ReplaySource:
    """Raw samples replayed from BasicMotions for an accelerometer or gyroscope.

    Same interface as :class:`workbench.sim.sensors.SensorSource`. The chosen class's
    recordings are concatenated (in file order, train then test; shuffled per ``seed`` with
    ``shuffle=True``), resampled from 10 Hz to ``rate_hz`` by linear interpolation, converted
    to raw and looped. ``set_scenario`` starts the new class's recordings from their
    beginning at the next sample (the sample index carries on).
    """

    def __init__(self, sensor: SensorLike, rate_hz: float | None = None,
                 scenario: str = "idle", seed: int = 0, *, split: str = "all",
                 gravity: bool = True, noise: bool = False, shuffle: bool = False):
        self.sensor = sensor
        self.kind = canonical_kind(sensor.kind)
        if self.kind not in ("accelerometer", "gyroscope"):
            raise ValueError(f"{DATASET} has only an accelerometer and a gyroscope; it cannot "
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
        pos = idx * (DATASET_RATE_HZ / self._rate)
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
        X, labels = load_basicmotions(self._split)
        rows = [i for i, lab in enumerate(labels) if lab == cls]
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
