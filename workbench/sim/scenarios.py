"""Scenarios of the virtual board and the engine that moves it.

:data:`SCENARIOS` describes what the board is doing (lying on a table, worn on a wrist while
walking, waving...). :class:`Segment` turns one scenario, from the sample where it took effect,
into kinematics: random repetitions (each with its own duration and amplitude), orientation,
angular rate and acceleration, linear acceleration. :class:`NoiseStream` gives Gaussian noise
addressed by absolute sample index. Everything here is a pure function of (seed, index), so
sources built on it give the same samples however reads are chunked.

The sensor models that read these kinematics live in :mod:`workbench.sim.sensors`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = ["Scenario", "SCENARIOS", "Segment", "NoiseStream", "sincos", "to_body", "seed_words"]

Vec3 = tuple[float, float, float]
_ZERO: Vec3 = (0.0, 0.0, 0.0)
TWO_PI = 2.0 * math.pi


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
    swing_ratio: float = 1.0       # swing frequency / cycle_hz (0.5: arm swings once per 2 steps)
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


def seed_words(seed: int) -> int:
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
        self._key = (seed_words(seed), int(tag) & 0xFFFFFFFF)
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

def sincos(turns, cos: bool = True):
    """sin and cos of angles given in turns. The angle is reduced to one turn first (exact in
    long runs) and evaluated in float32 (numpy's SIMD float32 sin is ~10x faster than float64;
    1e-7 relative is far below any sensor's resolution)."""
    x = (turns - np.floor(turns)).astype(np.float32)
    x *= np.float32(TWO_PI)
    return np.sin(x), (np.cos(x) if cos else None)


def _rotate(v: np.ndarray, axis: int, ang: np.ndarray) -> np.ndarray:
    """Express vectors ``v`` (n,3) in a frame rotated by ``ang`` (rad) about ``axis``
    (i.e. apply the transposed elementary rotation)."""
    s, c = sincos(np.asarray(ang) / TWO_PI)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = v.copy()
    out[:, i] = c * v[:, i] + s * v[:, j]
    out[:, j] = -s * v[:, i] + c * v[:, j]
    return out


def to_body(v_world, posture_deg: Vec3, ang: np.ndarray, still: bool = False) -> np.ndarray:
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


class Segment:
    """The scenario in force from sample ``start`` on, with its random repetitions."""

    BATCH = 64

    def __init__(self, scen: Scenario, start: int, rate: float, seed: int, number: int):
        self.scen, self.start = scen, start
        self.still = not (any(scen.swing_deg) or scen.twists or scen.wander_deg)  # no rotation
        self.moves = bool(any(scen.swing_deg) or any(scen.move_g) or scen.bounce_g
                          or scen.impacts or scen.twists)
        self.t0 = start / rate
        self._key = (seed_words(seed), int(number))
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
                turns = s.swing_ratio * phi[:, None] + np.asarray(s.swing_phase_deg) / 360.0
                sn, cs = sincos(turns)
                amp = A[:, None] * G * np.radians(s.swing_deg)
                ang += amp * sn
                rate += amp * w[:, None] * cs
                acc -= amp * (w * w)[:, None] * sn
            if any(s.move_g):
                sn, _ = sincos(phi[:, None] + np.asarray(s.move_phase_deg) / 360.0, cos=False)
                lin += A[:, None] * G * np.asarray(s.move_g) * sn
            if s.bounce_g:
                vert += A * s.bounce_g * sincos(frac)[1]
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
            sn, cs = sincos(np.outer(tt, self.wander_f.ravel()) + self.wander_p.ravel())
            cs *= TWO_PI * self.wander_f.ravel()
            ang += a * (sn[:, 0::2] + sn[:, 1::2])
            rate += a * (cs[:, 0::2] + cs[:, 1::2])
        if s.tremor_g:         # physiological tremor, 8-12 Hz
            sn, _ = sincos(np.outer(tt, self.tremor_f.ravel()) + self.tremor_p.ravel(), cos=False)
            a = s.tremor_g / math.sqrt(2.0)
            lin += a * (sn[:, 0::2] + sn[:, 1::2])
            # rotational tremor, about 1.5 dps per 0.01 g, from the same oscillations
            mix = sn[:, _TREMOR_MIX]
            rate += math.radians(150.0) * a * (mix[:, 0::2] + mix[:, 1::2])
        return ang, rate, acc, lin, vert
