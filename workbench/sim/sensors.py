"""Sensor sources of the virtual board: the raw samples its simulated firmware streams.

A source turns a sensor description from the board catalog (any object with ``id``, ``kind``,
``channels``, ``units``, ``rate_hz``, ``dtype`` and ``scale``; see :class:`SensorLike`) into raw
samples exactly as the firmware would send them: shape ``(n, len(channels))``, the sensor's raw
dtype, ``physical value = raw * scale`` in the sensor's units, clipped to the raw type's range.

Two kinds of source, one interface (``read(n)``, ``sample_index``, ``rate_hz``,
``set_scenario(name)``):

* :class:`SensorSource` synthesises signals from a small physical model of a board worn on a
  wrist (or lying on a table), driven by a :class:`Scenario` from :data:`SCENARIOS`;
* :class:`workbench.sim.replay.ReplaySource` replays real recordings (aeon's BasicMotions).

:func:`make_source` picks one.

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
see the same motion. Sensor noise, bias and offsets are keyed by (seed, sensor), so they are
independent between sensors.

Every sample is a function of its absolute index (random numbers come in fixed blocks keyed by
block number), so ``read(100); read(100)`` gives exactly ``read(200)``, whatever the chunking.
Generation is vectorised numpy: no per-sample Python loop.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Protocol, Union

import numpy as np

__all__ = [
    "STANDARD_GRAVITY", "SensorLike", "Scenario", "SCENARIOS", "SensorSource", "make_source",
    "canonical_kind", "unit_factor", "to_raw", "REPLAYS",
]

STANDARD_GRAVITY = 9.80665  # m/s^2 per g
Vec3 = tuple[float, float, float]
_ZERO: Vec3 = (0.0, 0.0, 0.0)
TWO_PI = 2.0 * math.pi
REPLAYS = ("basicmotions",)


class SensorLike(Protocol):
    """What a source needs to know about a sensor (the catalog's sensor entries fit)."""

    id: str
    kind: str
    channels: tuple[str, ...]
    units: str
    rate_hz: float
    dtype: str
    scale: float


@dataclass(frozen=True)
class Scenario:
    """What the board is doing. Angles in degrees, accelerations in g, times in seconds.

    Body axes: x along the forearm towards the hand, z out of the board's face (up when the
    board lies face up on a table), y completing a right-handed frame.
    """

    name: str
    description: str
    cycle_hz: float = 0.0          # repetitions per second (steps, waves, punches); 0: none
    tempo_jitter: float = 0.0      # relative std of each repetition's duration
    amp_jitter: float = 0.0        # relative std of each repetition's amplitude
    posture_deg: Vec3 = _ZERO      # mean roll, pitch, yaw of the board
    swing_deg: Vec3 = _ZERO        # rotation amplitude about body x, y, z
    swing_ratio: float = 1.0       # swing frequency / cycle_hz (0.5: an arm swings once per 2 steps)
    swing_phase_deg: Vec3 = _ZERO
    lever_m: float = 0.0           # distance of the sensor from the rotation centre, along body x
    move_g: Vec3 = _ZERO           # body-frame linear acceleration amplitude at cycle_hz
    move_phase_deg: Vec3 = _ZERO
    bounce_g: float = 0.0          # vertical (world) acceleration of the body at cycle_hz
    impacts: tuple[tuple[float, float, float], ...] = ()  # (delay, sigma, g) pulses per repetition
    impact_axis: Vec3 | None = None  # body-frame direction of impacts; None: world vertical
    twists: tuple[tuple[float, float, float], ...] = ()   # (delay, sigma, degrees) roll pulses
    wander_deg: float = 0.0        # slow drift of posture
    tremor_g: float = 0.0          # hand tremor (8-12 Hz); 0 for a board lying on a table
    sound: str = "room"            # microphone: room, steps, rustle, whoosh or voice
    loudness: float = 1.0


def _scenarios(*items: Scenario) -> Mapping[str, Scenario]:
    return MappingProxyType({s.name: s for s in items})


SCENARIOS: Mapping[str, Scenario] = _scenarios(
    Scenario(
        "idle", "The board lies still on a table, face up: the accelerometer reads gravity "
        "(+1 g on z), the gyroscope only its small bias and noise, the microphone a quiet room."),
    Scenario(
        "walking", "Worn on the wrist while walking (about 1.9 steps/s): the arm swings once every "
        "two steps, each heel strike gives a small jolt and a footstep thump on the microphone.",
        cycle_hz=1.9, tempo_jitter=0.04, amp_jitter=0.12, posture_deg=(0.0, 80.0, 0.0),
        swing_deg=(4.0, 22.0, 6.0), swing_ratio=0.5, swing_phase_deg=(90.0, 0.0, 60.0),
        lever_m=0.6, bounce_g=0.22, impacts=((0.0, 0.02, 0.35),), wander_deg=5.0,
        tremor_g=0.01, sound="steps", loudness=1.0),
    Scenario(
        "running", "Worn on the wrist while running (about 2.8 steps/s): elbow bent, a larger and "
        "faster arm swing, hard foot strikes and louder footsteps.",
        cycle_hz=2.8, tempo_jitter=0.03, amp_jitter=0.12, posture_deg=(10.0, 20.0, 0.0),
        swing_deg=(8.0, 30.0, 10.0), swing_ratio=0.5, swing_phase_deg=(90.0, 0.0, 60.0),
        lever_m=0.25, bounce_g=0.9, impacts=((0.0, 0.02, 1.2),), wander_deg=4.0,
        tremor_g=0.02, sound="steps", loudness=2.5),
    Scenario(
        "wave", "Waving hello (about 3 waves/s): forearm raised, the hand swings side to side, "
        "so the motion is mostly on one axis (y in the accelerometer, z in the gyroscope).",
        cycle_hz=3.0, tempo_jitter=0.06, amp_jitter=0.15, posture_deg=(0.0, -80.0, 0.0),
        swing_deg=(5.0, 3.0, 20.0), swing_phase_deg=(90.0, 0.0, 0.0), lever_m=0.1,
        wander_deg=3.0, tremor_g=0.01, sound="rustle", loudness=0.3),
    Scenario(
        "circle", "Drawing circles in the air (about 1 per second), forearm level: x and y move "
        "a quarter of a turn apart.",
        cycle_hz=1.0, tempo_jitter=0.08, amp_jitter=0.12, swing_deg=(10.0, 0.0, 12.0),
        swing_phase_deg=(90.0, 0.0, 0.0), move_g=(0.6, 0.6, 0.0), move_phase_deg=(0.0, 90.0, 0.0),
        wander_deg=3.0, tremor_g=0.01, sound="rustle", loudness=0.3),
    Scenario(
        "punch", "Punching forward about once every 1.2 s: a sharp push along x, a harder stop, "
        "a slow pull back; the fist twists as it goes.",
        cycle_hz=1.0 / 1.2, tempo_jitter=0.12, amp_jitter=0.12,
        impacts=((0.10, 0.045, 2.0), (0.19, 0.032, -2.8), (0.45, 0.09, -0.6), (0.70, 0.09, 0.6)),
        impact_axis=(1.0, 0.0, 0.0), twists=((0.2, 0.12, 50.0),), wander_deg=3.0,
        tremor_g=0.015, sound="whoosh", loudness=1.0),
    Scenario(
        "shake", "Shaking the board vigorously (about 6 shakes/s), mostly side to side: large "
        "accelerations (some may saturate the sensor) and fast rotation.",
        cycle_hz=6.0, tempo_jitter=0.05, amp_jitter=0.15, swing_deg=(10.0, 0.0, 15.0),
        swing_phase_deg=(45.0, 0.0, 90.0), move_g=(0.25, 2.2, 0.3),
        move_phase_deg=(60.0, 0.0, 30.0), wander_deg=5.0, tremor_g=0.03, sound="rustle",
        loudness=1.5),
    Scenario(
        "speaking", "The board lies on a table next to someone speaking: bursts of voiced "
        "syllables (about 4 per second) with pauses; the motion sensors see nothing.",
        cycle_hz=4.0, tempo_jitter=0.3, amp_jitter=0.3, sound="voice"),
)

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


def _seed_words(seed: int) -> int:
    return int(seed) % (1 << 63)


_M64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _hash(*words: int) -> int:
    h = 0
    for w in words:
        h = _splitmix64(h ^ (int(w) & _M64))
    return h


_TABLE_BITS = 16
_GAUSS: np.ndarray | None = None


def _gauss_table() -> np.ndarray:
    global _GAUSS
    if _GAUSS is None:
        _GAUSS = np.random.default_rng(0x5EED).standard_normal(1 << _TABLE_BITS, dtype=np.float32)
    return _GAUSS


class NoiseStream:
    """Standard normal noise addressed by absolute sample index, in fixed blocks keyed by
    (seed, tag, block), so it does not depend on how reads are chunked.

    A block is a walk through a fixed table of 2**16 Gaussian numbers with a start and an odd
    stride hashed from its key: no value repeats within a block, the result is Gaussian and
    white, and it costs a gather instead of drawing normals (5-10x cheaper at 16 kHz)."""

    BLOCK = 4096

    def __init__(self, seed: int, tag: int, ncols: int):
        self._key = (_seed_words(seed), int(tag) & 0xFFFFFFFF)
        self._ncols = int(ncols)
        self._cache: dict[int, np.ndarray] = {}
        size = self.BLOCK * self._ncols
        self._steps = np.arange(size, dtype=np.int64) if size <= (1 << _TABLE_BITS) else None

    def _block(self, b: int) -> np.ndarray:
        blk = self._cache.get(b)
        if blk is None:
            if self._steps is not None:
                h = _hash(*self._key, 0x401E, b)
                mask = (1 << _TABLE_BITS) - 1
                start, stride = h & mask, ((h >> 24) & mask) | 1
                idx = (self._steps * stride + start) & mask
                blk = _gauss_table()[idx].reshape(self.BLOCK, self._ncols)
            else:
                rng = np.random.default_rng([*self._key, 0x401E, b])
                blk = rng.standard_normal((self.BLOCK, self._ncols), dtype=np.float32)
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            self._cache[b] = blk
        return blk

    def take(self, i0: int, n: int) -> np.ndarray:
        B = self.BLOCK
        b0, b1 = i0 // B, (i0 + n - 1) // B
        if b0 == b1:
            return self._block(b0)[i0 - b0 * B:i0 - b0 * B + n]
        parts = [self._block(b) for b in range(b0, b1 + 1)]
        off = i0 - b0 * B
        return np.concatenate(parts)[off:off + n]


# ---------------------------------------------------------------------------------------------
# One stretch of one scenario: its repetitions and kinematics

def _sincos(turns, cos: bool = True):
    """sin and cos of angles given in turns. The angle is reduced to one turn first (exact in
    long runs) and evaluated in float32 (numpy's SIMD float32 sin is ~10x faster than float64;
    1e-7 relative is far below any sensor's resolution)."""
    x = (turns - np.floor(turns)).astype(np.float32)
    x *= np.float32(TWO_PI)
    return np.sin(x), (np.cos(x) if cos else None)


def _rotate(v: np.ndarray, axis: int, ang: np.ndarray) -> np.ndarray:
    """Express vectors ``v`` (n,3) in a frame rotated by ``ang`` (rad) about ``axis``
    (i.e. apply the transposed elementary rotation)."""
    s, c = _sincos(np.asarray(ang) / TWO_PI)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = v.copy()
    out[:, i] = c * v[:, i] + s * v[:, j]
    out[:, j] = -s * v[:, i] + c * v[:, j]
    return out


def _to_body(v_world, posture_deg: Vec3, ang: np.ndarray, still: bool = False) -> np.ndarray:
    """World vector(s) in the board frame: posture R_b = Rz(yaw) Ry(pitch) Rx(roll), then the
    motion R_d = Rx(a) Ry(b) Rz(c) about body axes; returns (R_b R_d)^T v.
    ``still``: the motion angles are all zero."""
    n = ang.shape[0]
    v = np.asarray(v_world, dtype=float).reshape(1, 3)
    r, p, y = np.radians(posture_deg)
    for axis, a in ((2, y), (1, p), (0, r)):
        if a:
            v = _rotate(v, axis, np.array(a))
    v = np.repeat(v, n, axis=0)
    if still:
        return v
    return _rotate(_rotate(_rotate(v, 0, ang[:, 0]), 1, ang[:, 1]), 2, ang[:, 2])


_TREMOR_MIX = [3, 5, 0, 4, 1, 2]


class _Segment:
    """The scenario in force from sample ``start`` on, with its random repetitions."""

    BATCH = 64

    def __init__(self, scen: Scenario, start: int, rate: float, seed: int, number: int):
        self.scen, self.start = scen, start
        self.still = not (any(scen.swing_deg) or scen.twists or scen.wander_deg)  # no rotation
        self.moves = bool(any(scen.swing_deg) or any(scen.move_g) or scen.bounce_g
                          or scen.impacts or scen.twists)
        self.t0 = start / rate
        self._key = (_seed_words(seed), int(number))
        rng = np.random.default_rng([*self._key, 0x5E6])
        self.wander_f = rng.uniform(0.03, 0.25, (3, 2))
        self.wander_p = rng.random((3, 2))
        self.tremor_f = rng.uniform(8.0, 12.0, (3, 2))
        self.tremor_p = rng.random((3, 2))
        self.f0 = rng.uniform(95.0, 215.0)        # speaker's pitch
        self.starts = np.empty(0)
        self.ends = np.empty(0)
        self.amp = np.empty(0)
        self.gain = np.empty((3, 0))      # per-axis gain of each repetition
        self.rnd = np.empty((6, 0))       # uniform numbers for the sound models
        self._batches = 0

    def _grow(self) -> None:
        s = self.scen
        rng = np.random.default_rng([*self._key, 0xC7C, self._batches])
        B = self.BATCH
        d = (1.0 / s.cycle_hz) * np.clip(1.0 + s.tempo_jitter * rng.standard_normal(B), 0.6, 1.4)
        amp = np.clip(1.0 + s.amp_jitter * rng.standard_normal(B), 0.4, 1.8)
        gain = np.clip(1.0 + 0.5 * s.amp_jitter * rng.standard_normal((3, B)), 0.5, 1.5)
        rnd = rng.random((6, B))
        last = self.ends[-1] if self.ends.size else self.t0
        ends = last + np.cumsum(d)
        self.starts = np.concatenate([self.starts, np.concatenate([[last], ends[:-1]])])
        self.ends = np.concatenate([self.ends, ends])
        self.amp = np.concatenate([self.amp, amp])
        self.gain = np.concatenate([self.gain, gain], axis=1)
        self.rnd = np.concatenate([self.rnd, rnd], axis=1)
        self._batches += 1

    def cycles(self, t: np.ndarray):
        """Repetition index k and fraction of it elapsed, for sorted times t >= t0."""
        while self.ends.size < 2 or self.ends[-2] <= t[-1]:
            self._grow()
        # k = searchsorted(starts, t, "right") - 1, done by placing the few repetition starts
        # among the many (sorted) times: much cheaper than a binary search per sample
        lo = max(int(np.searchsorted(self.starts, t[0], side="right")) - 1, 0)
        hi = int(np.searchsorted(self.starts, t[-1], side="right"))
        pos = np.searchsorted(t, self.starts[lo + 1:hi], side="left")
        counts = np.diff(np.concatenate(([0], pos, [t.size])))
        k = np.repeat(np.arange(lo, hi), counts)
        frac = (t - self.starts[k]) / (self.ends[k] - self.starts[k])
        return k, frac

    def pulses(self, t, k, pulses, derivs=False):
        """Sum of Gaussian pulses (delay, sigma, height) repeated every repetition, scaled by
        its amplitude; with derivs, also the first and second time derivatives."""
        val = np.zeros_like(t)
        d1 = np.zeros_like(t) if derivs else None
        d2 = np.zeros_like(t) if derivs else None
        for off in (-1, 0, 1):
            j = np.clip(k + off, 0, self.starts.size - 1)
            ok = (k + off) >= 0
            base = t - self.starts[j]
            a = np.where(ok, self.amp[j], 0.0)
            for delay, sigma, height in pulses:
                x = (base - delay) / sigma
                g = a * height * np.exp(-0.5 * x * x)
                val += g
                if derivs:
                    d1 += -g * x / sigma
                    d2 += g * (x * x - 1.0) / (sigma * sigma)
        return (val, d1, d2) if derivs else val

    def kinematics(self, t: np.ndarray):
        """Angles (rad), body rates (rad/s), angular accelerations (rad/s^2) about body axes,
        body-frame linear acceleration (g) and world-vertical acceleration (g)."""
        s, n = self.scen, t.size
        ang, rate, acc = np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, 3))
        lin, vert = np.zeros((n, 3)), np.zeros(n)
        if s.cycle_hz > 0 and self.moves:
            k, frac = self.cycles(t)
            A = self.amp[k] * (1.0 - frac) + self.amp[k + 1] * frac
            G = (self.gain[:, k] * (1.0 - frac) + self.gain[:, k + 1] * frac).T
            phi = k + frac
            if any(s.swing_deg):
                w = TWO_PI * s.swing_ratio / (self.ends[k] - self.starts[k])
                sn, cs = _sincos(s.swing_ratio * phi[:, None] + np.asarray(s.swing_phase_deg) / 360.0)
                amp = A[:, None] * G * np.radians(s.swing_deg)
                ang += amp * sn
                rate += amp * w[:, None] * cs
                acc -= amp * (w * w)[:, None] * sn
            if any(s.move_g):
                sn, _ = _sincos(phi[:, None] + np.asarray(s.move_phase_deg) / 360.0, cos=False)
                lin += A[:, None] * G * np.asarray(s.move_g) * sn
            if s.bounce_g:
                vert += A * s.bounce_g * _sincos(frac)[1]
            if s.impacts:
                imp = self.pulses(t, k, s.impacts)
                if s.impact_axis is None:
                    vert += imp
                else:
                    lin += imp[:, None] * np.asarray(s.impact_axis)
            if s.twists:
                v, d1, d2 = self.pulses(t, k, s.twists, derivs=True)
                ang[:, 0] += np.radians(v)
                rate[:, 0] += np.radians(d1)
                acc[:, 0] += np.radians(d2)
        tt = t - self.t0
        if s.wander_deg:       # two slow sinusoids per axis (f in Hz, phase in turns)
            a = math.radians(s.wander_deg) / math.sqrt(2.0)
            sn, cs = _sincos(np.outer(tt, self.wander_f.ravel()) + self.wander_p.ravel())
            cs *= TWO_PI * self.wander_f.ravel()
            ang += a * (sn[:, 0::2] + sn[:, 1::2])
            rate += a * (cs[:, 0::2] + cs[:, 1::2])
        if s.tremor_g:         # physiological tremor, 8-12 Hz
            sn, _ = _sincos(np.outer(tt, self.tremor_f.ravel()) + self.tremor_p.ravel(), cos=False)
            a = s.tremor_g / math.sqrt(2.0)
            lin += a * (sn[:, 0::2] + sn[:, 1::2])
            # rotational tremor, about 1.5 dps per 0.01 g, from the same oscillations
            mix = sn[:, _TREMOR_MIX]
            rate += math.radians(150.0) * a * (mix[:, 0::2] + mix[:, 1::2])
        return ang, rate, acc, lin, vert


# ---------------------------------------------------------------------------------------------
# Sensor models (canonical units)

_ACCEL_NOISE_G = 0.004          # rms per axis (LSM9DS1-class MEMS, as seen on real boards)
_ACCEL_OFFSET_G = 0.01          # per-device zero-g offset std per axis
_GYRO_NOISE_DPS = 0.25
_GYRO_BIAS_DPS = 0.8            # per-device zero-rate offset std per axis
_MAG_NOISE_UT = 0.35
_MAG_HARD_IRON_UT = 12.0        # per-device hard-iron offset std per axis
_EARTH_FIELD_UT = (20.0, 0.0, -44.0)   # mid-latitude north: horizontal 20 uT, 44 uT downwards
NOISE_RMS = {"accelerometer": _ACCEL_NOISE_G, "gyroscope": _GYRO_NOISE_DPS,
             "magnetometer": _MAG_NOISE_UT}
_UP = np.array([0.0, 0.0, 1.0])


def _accel(seg: _Segment, t: np.ndarray) -> np.ndarray:
    s = seg.scen
    ang, rate, acc, lin, vert = seg.kinematics(t)
    up = _to_body(_UP, s.posture_deg, ang, seg.still)
    f = up * (1.0 + vert)[:, None] + lin
    if s.lever_m:
        L = s.lever_m / STANDARD_GRAVITY
        wx, wy, wz = rate.T
        f[:, 0] -= (wy * wy + wz * wz) * L
        f[:, 1] += (acc[:, 2] + wx * wy) * L
        f[:, 2] += (-acc[:, 1] + wx * wz) * L
    return f


def _gyro(seg: _Segment, t: np.ndarray) -> np.ndarray:
    return np.degrees(seg.kinematics(t)[1])


def _mag(seg: _Segment, t: np.ndarray, heading: float) -> np.ndarray:
    ang = seg.kinematics(t)[0]
    ch, sh = math.cos(heading), math.sin(heading)
    bx, _, bz = _EARTH_FIELD_UT
    return _to_body(np.array([bx * ch, bx * sh, bz]), seg.scen.posture_deg, ang, seg.still)


def _light(seg: _Segment, t: np.ndarray) -> np.ndarray:
    """Relative illumination: brightest facing up, dimmer when turned away."""
    ang = seg.kinematics(t)[0]
    up = _to_body(_UP, seg.scen.posture_deg, ang, seg.still)
    return 0.3 + 0.7 * np.clip(up[:, 2], 0.0, 1.0)


def _audio(seg: _Segment, t: np.ndarray, rate: float, ev: np.ndarray) -> np.ndarray:
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
        out += amp * (0.05 * np.exp(-tau / 0.03) * _sincos(f_thump * tau, False)[0]
                      + 0.015 * np.exp(-tau / 0.004) * ev)
        out += 0.002 * amp * ev * np.abs(_sincos(0.5 * (k + frac), False)[0])  # clothes rustle
    elif s.sound == "rustle":
        out += 0.02 * amp * ev * (0.2 + np.abs(_sincos(frac)[1]))
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
    out[on] += 0.25 * amp[on] * _sincos(0.5 * u[on], False)[0] ** 2 * wave
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
                 scenario: Union[str, Scenario] = "idle", seed: int = 0):
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
        dev = np.random.default_rng([_seed_words(seed), tag, 0xDE7])
        self._offset = dev.standard_normal(3)            # scaled per kind below
        self._heading = dev.uniform(0.0, TWO_PI)
        self._dev = dev.random(8)
        self._env_f = dev.uniform(1 / 900.0, 1 / 120.0, (max(self._nch, 1), 2))
        self._env_p = dev.uniform(0.0, TWO_PI, (max(self._nch, 1), 2))
        self._index = 0
        self._segments: list[_Segment] = []
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

    def set_scenario(self, name: Union[str, Scenario]) -> None:
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
    def _lookup(name: Union[str, Scenario]) -> Scenario:
        if isinstance(name, Scenario):
            return name
        try:
            return SCENARIOS[str(name)]
        except KeyError:
            raise ValueError(f"unknown scenario {name!r}; valid scenarios: "
                             f"{', '.join(SCENARIOS)}") from None

    def _push(self, scen: Scenario) -> None:
        self._segments = self._segments[-1:] + [
            _Segment(scen, self._index, self._rate, self._seed, self._count)]
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

    def _model(self, seg: _Segment, t: np.ndarray, noise: np.ndarray) -> np.ndarray:
        kind, nch = self.kind, self._nch
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
                rumble += 0.0008 * _sincos(f * t + self._dev[3 + i], cos=False)[0]
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


def make_source(sensor: SensorLike, rate_hz: float | None = None,
                scenario: Union[str, Scenario] = "idle", seed: int = 0,
                replay: str | None = None):
    """A source for ``sensor``: synthetic (:class:`SensorSource`) by default, or a replay of
    recorded data with ``replay="basicmotions"`` (:class:`workbench.sim.replay.ReplaySource`,
    accelerometers and gyroscopes only; needs aeon)."""
    if replay is None:
        return SensorSource(sensor, rate_hz=rate_hz, scenario=scenario, seed=seed)
    if str(replay).lower() == "basicmotions":
        from .replay import ReplaySource
        return ReplaySource(sensor, rate_hz=rate_hz, scenario=scenario, seed=seed)
    raise ValueError(f"unknown replay {replay!r}; available: {', '.join(REPLAYS)}")


def __getattr__(name: str):  # lazy re-exports, so importing this module stays light
    if name in ("ReplaySource", "ReplayUnavailable"):
        from . import replay
        return getattr(replay, name)
    raise AttributeError(name)
