"""What every sensor source of the virtual board shares, synthetic or replayed.

:class:`SensorLike` (what a source needs to know about a sensor), kind names
(:func:`canonical_kind`), unit conversion (:func:`unit_factor`), the conversion of physical
values to raw samples (:func:`to_raw`) and the noise levels of the sensor models
(:data:`NOISE_RMS`). :mod:`workbench.sim.sensors` (synthetic signals) and
:mod:`workbench.sim.replay` (recorded signals) both import this module and neither imports the
other; :func:`workbench.sim.sources.make_source` picks between them.
"""
from __future__ import annotations

import math
from typing import Protocol

import numpy as np

__all__ = ["STANDARD_GRAVITY", "SensorLike", "canonical_kind", "unit_factor", "to_raw",
           "NOISE_RMS"]

STANDARD_GRAVITY = 9.80665  # m/s^2 per g


class SensorLike(Protocol):
    """What a source needs to know about a sensor (the catalog's sensor entries fit)."""

    id: str
    kind: str
    channels: tuple[str, ...]
    units: str
    rate_hz: float
    dtype: str
    scale: float


# ---------------------------------------------------------------------------------------------
# Kinds, units and raw conversion

_KIND_ALIASES = (
    ("accel", "accelerometer"), ("gyro", "gyroscope"), ("mag", "magnetometer"),
    ("mic", "microphone"), ("audio", "microphone"), ("colo", "color"), ("light", "color"),
    ("rgb", "color"), ("temp", "temperature"), ("humid", "humidity"), ("press", "pressure"),
    ("baro", "pressure"),
)


def canonical_kind(kind: str) -> str:
    """Map a catalog kind (or a short alias such as "accel") to the model's kind name."""
    k = str(kind).strip().lower()
    for prefix, name in _KIND_ALIASES:
        if k.startswith(prefix):
            return name
    return "generic"


# Models work in one unit per kind; factor converts it to the sensor's units.
_UNITS: dict[str, dict[str, float]] = {
    "accelerometer": {"g": 1.0, "mg": 1000.0, "m/s2": STANDARD_GRAVITY, "m/s^2": STANDARD_GRAVITY,
                      "m/s²": STANDARD_GRAVITY, "ms2": STANDARD_GRAVITY, "mps2": STANDARD_GRAVITY},
    "gyroscope": {"dps": 1.0, "deg/s": 1.0, "°/s": 1.0, "mdps": 1000.0,
                  "rad/s": math.pi / 180.0, "rps": math.pi / 180.0},
    "magnetometer": {"ut": 1.0, "µt": 1.0, "μt": 1.0, "nt": 1000.0, "gauss": 0.01,
                     "mgauss": 10.0, "mg": 10.0, "g": 0.01},
    "temperature": {"degc": 1.0, "c": 1.0, "°c": 1.0, "celsius": 1.0},
    "humidity": {"%rh": 1.0, "%": 1.0, "rh": 1.0, "fraction": 0.01},
    "pressure": {"hpa": 1.0, "mbar": 1.0, "kpa": 0.1, "pa": 100.0, "bar": 0.001},
}


def unit_factor(kind: str, units: str) -> float:
    """Factor from the model's unit for ``kind`` (g, dps, uT, degC, %RH, hPa) to ``units``.

    Unknown units are assumed to be the model's own (factor 1)."""
    return _UNITS.get(canonical_kind(kind), {}).get(str(units).strip().lower(), 1.0)


def to_raw(phys: np.ndarray, dtype, scale: float) -> np.ndarray:
    """Physical values (sensor units) to raw samples: divide by scale, round, clip to dtype."""
    dtype = np.dtype(dtype)
    scale = float(scale) if scale else 1.0
    raw = np.asarray(phys, dtype=np.float64) / scale
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        raw = np.rint(raw, out=raw)
        np.clip(raw, info.min, info.max, out=raw)
    return raw.astype(dtype)


# Sensor noise (canonical units): rms per axis of LSM9DS1-class MEMS, as seen on real boards

NOISE_RMS = {"accelerometer": 0.004, "gyroscope": 0.25, "magnetometer": 0.35}
"""White noise of the sensor models, rms per axis, in g, dps and uT."""
