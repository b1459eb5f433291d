"""Sensor sources of the virtual board: the raw samples its simulated firmware streams.

A source turns a sensor description from the board catalog (any object with ``id``, ``kind``,
``channels``, ``units``, ``rate_hz``, ``dtype`` and ``scale``; see :class:`SensorLike`) into raw
samples exactly as the firmware would send them: shape ``(n, len(channels))``, the sensor's raw
dtype, ``physical value = raw * scale`` in the sensor's units, clipped to the raw type's range.

Two kinds of source, one interface (``read(n)``, ``sample_index``, ``rate_hz``,
``set_scenario(name)``):

* :class:`SensorSource` synthesises signals from a small physical model of a board worn on a
  wrist (or lying on a table), driven by a :class:`Scenario` from :data:`SCENARIOS` (defined,
  with the kinematics engine, in :mod:`workbench.sim.scenarios` and re-exported here);
* :class:`workbench.sim.replay.ReplaySource` replays real recordings (aeon's BasicMotions).

:func:`workbench.sim.sources.make_source` picks one. What both share (kinds, units, raw
conversion, noise levels) is in :mod:`workbench.sim.sensor_base`; this module does not import
the replay.

The motion model
----------------
Every scenario is a repetition (a step, a wave, a punch...) at ``cycle_hz``. Each repetition has
its own random duration (``tempo_jitter``) and amplitude (``amp_jitter``, plus a per-axis gain),
so no two windows are identical. The board has a mean posture (roll, pitch, yaw) and rotates
about its body axes (``swing_deg``); the gyroscope reads the rate of that rotation, the
accelerometer reads gravity rotated into the board frame (so ``|a|`` is 1 g at rest), plus the
lever-arm acceleration of a sensor ``lever_m`` from the rotation centre, plus the body's own
acceleration (``move_g``, vertical ``bounce_g``, impulse ``impacts``). The magnetometer reads the
Earth's field rotated the same way. Motion tables are keyed by (seed, scenario change count)
only, so the accelerometer, gyroscope and magnetometer of one board built with the same seed
see the same motion (so give all sensors of one board the same seed: their noise, bias and
offsets are keyed by (seed, sensor id and kind) and stay independent anyway).

Every sample is a function of its absolute index (random numbers come in fixed blocks keyed by
block number), so ``read(100); read(100)`` gives exactly ``read(200)``, whatever the chunking.
Generation is vectorised numpy: no per-sample Python loop.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from .scenarios import SCENARIOS, TWO_PI, NoiseStream, Scenario, Segment, seed_words, sincos, to_body
from .sensor_base import NOISE_RMS, STANDARD_GRAVITY, SensorLike, canonical_kind, to_raw, unit_factor

__all__ = [
    "STANDARD_GRAVITY", "SensorLike", "Scenario", "SCENARIOS", "SensorSource",
    "canonical_kind", "unit_factor", "to_raw", "NoiseStream", "NOISE_RMS",
]

# ---------------------------------------------------------------------------------------------
# Sensor models (canonical units)

_ACCEL_NOISE_G = NOISE_RMS["accelerometer"]
_ACCEL_OFFSET_G = 0.01          # per-device zero-g offset std per axis
_GYRO_NOISE_DPS = NOISE_RMS["gyroscope"]
_GYRO_BIAS_DPS = 0.8            # per-device zero-rate offset std per axis
_MAG_NOISE_UT = NOISE_RMS["magnetometer"]
_MAG_HARD_IRON_UT = 12.0        # per-device hard-iron offset std per axis
_EARTH_FIELD_UT = (20.0, 0.0, -44.0)   # mid-latitude north: horizontal 20 uT, 44 uT downwards
_UP = np.array([0.0, 0.0, 1.0])


def _accel(seg: Segment, t: np.ndarray) -> np.ndarray:
    s = seg.scen
    ang, rate, acc, lin, vert = seg.kinematics(t)
    up = to_body(_UP, s.posture_deg, ang, seg.still)
    f = up * (1.0 + vert)[:, None] + lin
    if s.lever_m:
        L = s.lever_m / STANDARD_GRAVITY
        wx, wy, wz = rate.T
        f[:, 0] -= (wy * wy + wz * wz) * L
        f[:, 1] += (acc[:, 2] + wx * wy) * L
        f[:, 2] += (-acc[:, 1] + wx * wz) * L
    return f


def _gyro(seg: Segment, t: np.ndarray) -> np.ndarray:
    return np.degrees(seg.kinematics(t)[1])


def _mag(seg: Segment, t: np.ndarray, heading: float) -> np.ndarray:
    ang = seg.kinematics(t)[0]
    ch, sh = math.cos(heading), math.sin(heading)
    bx, _, bz = _EARTH_FIELD_UT
    return to_body(np.array([bx * ch, bx * sh, bz]), seg.scen.posture_deg, ang, seg.still)


def _light(seg: Segment, t: np.ndarray) -> np.ndarray:
    """Relative illumination: brightest facing up, dimmer when turned away."""
    ang = seg.kinematics(t)[0]
    up = to_body(_UP, seg.scen.posture_deg, ang, seg.still)
    return 0.3 + 0.7 * np.clip(up[:, 2], 0.0, 1.0)


def _audio(seg: Segment, t: np.ndarray, rate: float, ev: np.ndarray) -> np.ndarray:
    """Scenario sound in fraction of full scale (without the room background)."""
    s = seg.scen
    out = np.zeros_like(t)
    if s.cycle_hz <= 0 or s.sound == "room":
        return out
    k, frac = seg.cycles(t)
    tau = t - seg.starts[k]
    amp = seg.amp[k] * s.loudness
    if s.sound == "steps":
        f_thump = 60.0 + 60.0 * seg.rnd[0][k]
        out += amp * (0.05 * np.exp(-tau / 0.03) * sincos(f_thump * tau, False)[0]
                      + 0.015 * np.exp(-tau / 0.004) * ev)
        out += 0.002 * amp * ev * np.abs(sincos(0.5 * (k + frac), False)[0])  # clothes rustle
    elif s.sound == "rustle":
        out += 0.02 * amp * ev * (0.2 + np.abs(sincos(frac)[1]))
    elif s.sound == "whoosh":
        out += 0.06 * ev * seg.pulses(t, k, ((0.12, 0.05, s.loudness),))
    elif s.sound == "voice":
        out += _voice(seg, t, k, frac, tau, rate, ev)
    return out


_HARMONICS = 30
_TABLE = 512        # samples per glottal period in the per-syllable wavetable


def _voice(seg, t, k, frac, tau, rate, ev):
    """Voiced syllables: a harmonic series shaped by two formants (a vowel), one pitch and
    vowel per syllable, gliding pitch, unvoiced onsets and pauses. One period of each
    syllable's waveform goes into a wavetable, read at the gliding pitch (linear interpolation),
    so the cost per sample does not depend on the number of harmonics."""
    r = seg.rnd
    out = np.zeros_like(t)
    rk = (r[0][k], r[1][k], r[2][k])
    amp = seg.amp[k]
    u = frac / (0.55 + 0.25 * rk[1])               # voiced for 55-80 % of the syllable
    speak = rk[0] > 0.2                            # about one syllable in five is a pause
    cons = speak & (tau < 0.05) & (rk[2] > 0.5)    # unvoiced consonant onset
    if cons.any():
        out[cons] += 0.03 * amp[cons] * ev[cons] * np.exp(-tau[cons] / 0.02)
    on = speak & (u < 1.0)
    if not on.any():
        return out
    ks, inv = np.unique(k[on], return_inverse=True)
    f0 = seg.f0 * (0.85 + 0.3 * r[3][ks])
    h = np.arange(1, _HARMONICS + 1)
    hf = np.outer(f0, h)
    F1, F2 = 300.0 + 500.0 * r[4][ks], 900.0 + 1400.0 * r[5][ks]
    w = (1.0 / (1.0 + ((hf - F1[:, None]) / 90.0) ** 2)
         + 0.6 / (1.0 + ((hf - F2[:, None]) / 120.0) ** 2) + 0.05) / h ** 0.5
    w[hf > 0.45 * rate] = 0.0                         # nothing above Nyquist
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-9)
    x = TWO_PI * np.arange(_TABLE) / _TABLE
    tables = w @ np.sin(np.outer(h, x))              # (syllables, _TABLE)
    tables = np.concatenate([tables, tables[:, :1]], axis=1).ravel()
    tv, f0s = tau[on], f0[inv]
    glide = f0s * (rk[2][on] - 0.5) * 0.8            # Hz per second
    cyc = f0s * tv + 0.5 * glide * tv * tv            # glottal cycles since syllable onset
    pos = (cyc - np.floor(cyc)) * _TABLE
    i = pos.astype(np.int64)
    fr = pos - i
    i += inv * (_TABLE + 1)
    wave = tables[i] * (1.0 - fr) + tables[i + 1] * fr
    out[on] += 0.25 * amp[on] * sincos(0.5 * u[on], False)[0] ** 2 * wave
    return out


_COLOR_RATIO = {"r": 0.8, "red": 0.8, "g": 1.0, "green": 1.0, "b": 0.65, "blue": 0.65,
                "c": 2.5, "clear": 2.5, "w": 2.5, "white": 2.5}
_ENV_BASE = {"temperature": (23.5, 1.0, 0.3, 0.03), "humidity": (42.0, 5.0, 1.0, 0.15),
             "pressure": (1013.25, 8.0, 0.1, 0.015)}
# (typical value, device-to-device std, slow drift amplitude, noise rms), model units.
# Unknown kinds: a quarter of full scale, drifting by 10 % of it over seconds, 0.5 % noise.
_GENERIC = (0.25, 0.02, 0.1, 0.005)


# ---------------------------------------------------------------------------------------------

class SensorSource:
    """Synthetic raw samples for one sensor of the virtual board (see the module docstring).

    ``read(n)`` returns an ``(n, channels)`` array of the sensor's raw dtype and advances
    ``sample_index``; ``set_scenario(name)`` changes what the board is doing from the next
    sample on (the time axis carries on; the old and new motion are cross-faded over
    ``CROSSFADE_S`` so no step appears in the signal). Deterministic for a given seed and
    call sequence. Microphone samples are modelled in fraction of full scale (raw = value *
    1/scale when scale < 1, e.g. 1/32768; else value * the raw type's maximum).
    """

    CROSSFADE_S = 0.25

    def __init__(self, sensor: SensorLike, rate_hz: float | None = None,
                 scenario: str | Scenario = "idle", seed: int = 0):
        self.sensor = sensor
        self._rate = float(rate_hz if rate_hz is not None else sensor.rate_hz)
        if not self._rate > 0:
            raise ValueError(f"rate_hz must be positive, got {self._rate}")
        self.kind = canonical_kind(sensor.kind)
        self._channels = tuple(sensor.channels)
        self._nch = len(self._channels)
        self._dtype = np.dtype(sensor.dtype)
        self._scale = float(sensor.scale) if sensor.scale else 1.0
        self._factor = unit_factor(self.kind, sensor.units)
        self._seed = int(seed)
        tag = zlib.crc32(f"{getattr(sensor, 'id', '')}/{self.kind}".encode())
        ncols = 1 + self._nch if self.kind == "microphone" else self._nch
        self._noise = NoiseStream(seed, tag, ncols)
        dev = np.random.default_rng([seed_words(seed), tag, 0xDE7])
        self._offset = dev.standard_normal(3)            # scaled per kind below
        self._heading = dev.uniform(0.0, TWO_PI)
        self._dev = dev.random(8)
        self._env_f = dev.uniform(1 / 900.0, 1 / 120.0, (max(self._nch, 1), 2))
        self._env_p = dev.uniform(0.0, TWO_PI, (max(self._nch, 1), 2))
        self._index = 0
        self._segments: list[Segment] = []
        self._count = 0
        self._push(self._lookup(scenario))

    # -- public interface ---------------------------------------------------------------------
    @property
    def rate_hz(self) -> float:
        return self._rate

    @property
    def sample_index(self) -> int:
        return self._index

    @property
    def scenario(self) -> str:
        return self._segments[-1].scen.name

    @property
    def scenarios(self) -> tuple[str, ...]:
        return tuple(SCENARIOS)

    def set_scenario(self, name: str | Scenario) -> None:
        scen = self._lookup(name)
        if scen != self._segments[-1].scen:
            self._push(scen)

    def read(self, n: int) -> np.ndarray:
        n = int(n)
        if n < 0:
            raise ValueError("n must be >= 0")
        if n == 0:
            return np.empty((0, self._nch), dtype=self._dtype)
        i0 = self._index
        idx = np.arange(i0, i0 + n, dtype=np.int64)
        t = idx / self._rate
        noise = self._noise.take(i0, n)
        cur = self._segments[-1]
        phys = self._model(cur, t, noise)
        if len(self._segments) > 1:
            fade = max(int(round(self.CROSSFADE_S * self._rate)), 1)
            m = idx < cur.start + fade
            if m.any():
                w = ((idx[m] - cur.start + 1) / (fade + 1))[:, None]
                prev = self._model(self._segments[-2], t[m], noise[m])
                phys[m] = (1.0 - w) * prev + w * phys[m]
        self._index += n
        return self._raw(phys)

    # -- internals ----------------------------------------------------------------------------
    @staticmethod
    def _lookup(name: str | Scenario) -> Scenario:
        if isinstance(name, Scenario):
            return name
        try:
            return SCENARIOS[str(name)]
        except KeyError:
            raise ValueError(f"unknown scenario {name!r}; valid scenarios: "
                             f"{', '.join(SCENARIOS)}") from None

    def _push(self, scen: Scenario) -> None:
        self._segments = self._segments[-1:] + [
            Segment(scen, self._index, self._rate, self._seed, self._count)]
        self._count += 1

    def _raw(self, phys: np.ndarray) -> np.ndarray:
        if self.kind == "microphone":
            fs = 1.0 / self._scale if self._scale < 1.0 else (
                np.iinfo(self._dtype).max if self._dtype.kind in "iu" else 1.0)
            return to_raw(phys * fs, self._dtype, 1.0)
        return to_raw(phys * self._factor, self._dtype, self._scale)

    def _axes(self, xyz: np.ndarray) -> np.ndarray:
        if self._nch == 3:
            return xyz
        return xyz[:, [i % 3 for i in range(self._nch)]]

    def _model(self, seg: Segment, t: np.ndarray, noise: np.ndarray) -> np.ndarray:
        kind = self.kind
        if kind == "accelerometer":
            f = _accel(seg, t) + _ACCEL_OFFSET_G * self._offset
            return self._axes(f) + _ACCEL_NOISE_G * noise
        if kind == "gyroscope":
            g = _gyro(seg, t) + _GYRO_BIAS_DPS * self._offset
            return self._axes(g) + _GYRO_NOISE_DPS * noise
        if kind == "magnetometer":
            m = _mag(seg, t, self._heading) + _MAG_HARD_IRON_UT * self._offset
            return self._axes(m) + _MAG_NOISE_UT * noise
        if kind == "microphone":
            return self._mic(seg, t, noise)
        if kind == "color":
            return self._color(seg, t, noise)
        return self._env(t, noise)

    def _mic(self, seg, t, noise):
        ev = noise[:, 0]
        sound = _audio(seg, t, self._rate, ev)
        # room: hiss plus a low rumble (ventilation, traffic), below Nyquist only
        rumble = np.zeros_like(t)
        for i in range(2):
            f = 35.0 + 40.0 * i + 20.0 * self._dev[i]
            if f < 0.45 * self._rate:
                rumble += 0.0008 * sincos(f * t + self._dev[3 + i], cos=False)[0]
        return (sound + rumble)[:, None] + 0.002 * noise[:, 1:]

    def _color(self, seg, t, noise):
        light = _light(seg, t)
        ambient = 150.0 + 450.0 * self._dev[0]
        drift = 1.0 + 0.05 * np.sin(TWO_PI * self._env_f[0, 0] * t + self._env_p[0, 0])
        ratios = np.array([_COLOR_RATIO.get(c.lower(), 1.0) for c in self._channels])
        level = (ambient * light * drift)[:, None] * ratios
        return np.maximum(level + (0.5 * np.sqrt(level) + 1.0) * noise, 0.0)

    def _env(self, t, noise):
        """Temperature, humidity, pressure: a per-device value, a drift over minutes, noise.
        Unknown kinds: the same shape relative to the raw full scale, drifting over seconds."""
        f, p = self._env_f[: self._nch], self._env_p[: self._nch]
        if self.kind in _ENV_BASE:
            typical, spread, drift, rms = _ENV_BASE[self.kind]
        else:
            full = (np.iinfo(self._dtype).max if self._dtype.kind in "iu" else 1.0) * self._scale
            typical, spread, drift, rms = (v * full for v in _GENERIC)
            f = f * 30.0
        base = typical + spread * np.resize(self._offset, self._nch)
        slow = drift * 0.5 * (np.sin(TWO_PI * t[:, None] * f[:, 0] + p[:, 0])
                              + np.sin(TWO_PI * t[:, None] * f[:, 1] + p[:, 1]))
        return base + slow + rms * noise
