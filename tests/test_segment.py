"""Automatic segmentation: events proposed as regions from short-time energy."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from workbench.data.segment import (
    SegmentResult,
    auto_threshold,
    energy_curve,
    propose_regions,
    segment_energy,
)
from workbench.data.store import Dataset, Region

RATE = 100.0
BURSTS = ((500, 580), (1300, 1400), (2200, 2260))  # samples, end exclusive
SOUNDS = Path("/usr/share/sounds/alsa")


def accel_signal(seed: int = 0, seconds: float = 30, noise: float = 0.02,
                 bursts=BURSTS, amplitudes=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Accelerometer-like (g): gravity on z, sensor noise, gesture bursts (tapered sines)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = rng.normal(0, noise, (n, 3))
    x[:, 2] += 1.0
    for (s, e), amp in zip(bursts, amplitudes):
        t = np.arange(e - s) / RATE
        env = np.ones(e - s)
        r = max(1, (e - s) // 10)
        ramp = np.sin(np.linspace(0, np.pi / 2, r)) ** 2
        env[:r], env[-r:] = ramp, ramp[::-1]
        x[s:e, 0] += amp * 0.6 * np.sin(2 * np.pi * 3 * t) * env
        x[s:e, 1] += amp * 0.4 * np.sin(2 * np.pi * 2 * t + 1) * env
        x[s:e, 2] += amp * 0.2 * np.sin(2 * np.pi * 4 * t) * env
    return x.astype(np.float32)


def iou(region: Region, truth: tuple[int, int]) -> float:
    inter = max(0, min(region.end, truth[1]) - max(region.start, truth[0]))
    union = max(region.end, truth[1]) - min(region.start, truth[0])
    return inter / union


def assert_valid(regions, n):
    for r in regions:
        assert 0 <= r.start < r.end <= n
    for a, b in zip(regions, regions[1:]):
        assert a.end <= b.start


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_gestures_found_where_they_are(seed):
    x = accel_signal(seed)
    regions = propose_regions(x, RATE, label="wave")
    assert len(regions) == 3
    assert_valid(regions, len(x))
    for region, truth in zip(regions, BURSTS):
        assert region.label == "wave"
        assert iou(region, truth) > 0.7, (region, truth)


def test_gravity_and_tilt_do_not_count():
    """A constant offset and a slow tilt (orientation change) are baseline, not events."""
    x = accel_signal(0)
    t = np.arange(len(x)) / RATE
    x[:, 0] += 0.3 * np.sin(2 * np.pi * 0.03 * t)  # slow tilt, a 33 s period
    x[:, 1] -= 0.5  # offset
    regions = propose_regions(x, RATE)
    assert len(regions) == 3
    assert all(iou(r, b) > 0.7 for r, b in zip(regions, BURSTS))


def test_threshold_is_adjustable():
    x = accel_signal(0, amplitudes=(1.0, 0.4, 1.0))  # the middle gesture is gentle
    auto = segment_energy(x, RATE)
    assert len(auto.regions) == 3

    # higher: the gentle one drops out, the others get shorter (or stay)
    peak_gentle = auto.energy[(auto.times > 13) & (auto.times < 14)].max()
    higher = segment_energy(x, RATE, threshold=peak_gentle * 1.2)
    assert higher.threshold == pytest.approx(peak_gentle * 1.2)
    assert len(higher.regions) == 2
    assert iou(higher.regions[0], BURSTS[0]) > 0.6 and iou(higher.regions[1], BURSTS[2]) > 0.6
    much_higher = auto.with_threshold(auto.energy.max() * 0.7)
    total = lambda res: sum(r.end - r.start for r in res.regions)  # noqa: E731
    assert 0 < total(much_higher) < total(higher)

    # lower (just above the noise floor): noise bumps become events too
    lower = auto.with_threshold(sensitivity=1.0)
    assert lower.threshold < auto.threshold
    assert len(lower.regions) > 3
    # relative forms
    assert auto.with_threshold("3x").threshold == pytest.approx(3 * auto.noise_floor)
    half = auto.with_threshold("50%")
    assert half.threshold == pytest.approx((auto.noise_floor + auto.energy.max()) / 2)
    # re-cutting gives the same as computing afresh
    assert auto.with_threshold(0.2).regions == segment_energy(x, RATE, threshold=0.2).regions
    # and leaving the threshold out keeps the one asked for
    assert higher.with_threshold(pad_s=0).threshold == higher.threshold


def test_pure_noise_has_no_event_with_the_automatic_threshold():
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        x = rng.normal(0, 0.02, (int(60 * RATE), 3))
        x[:, 2] += 1.0
        res = segment_energy(x, RATE)
        assert res.regions == (), (seed, res.regions)
        assert res.threshold > res.noise_floor > 0


def test_hysteresis_keeps_one_event_when_energy_hovers():
    """A gesture whose energy dips below the entry threshold mid-way stays one event."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.005, (1000, 1))
    t = np.arange(1000) / RATE
    amp = np.zeros(1000)
    amp[300:350] = amp[380:430] = 0.3 * np.sqrt(2)  # RMS 0.3
    amp[350:380] = 0.15 * np.sqrt(2)  # a lull: RMS 0.15, below the entry threshold
    x[:, 0] += amp * np.sin(2 * np.pi * 5 * t)
    res = segment_energy(x, RATE, threshold=0.2, hysteresis=0.5, merge_gap_s=0)
    assert res.exit_threshold == pytest.approx(0.1, abs=0.01)
    assert len(res.regions) == 1
    assert iou(res.regions[0], (300, 430)) > 0.8
    strict = res.with_threshold(hysteresis=1.0)  # exit = entry: the lull splits it
    assert strict.exit_threshold == strict.threshold
    assert len(strict.regions) == 2


def test_merge_drop_pad_and_clip():
    # two short taps 0.1 s apart merge into one event; a lone 0.1 s blip is dropped
    bursts = ((300, 330), (340, 370), (900, 910), (2990, 3000))
    x = accel_signal(0, bursts=bursts, amplitudes=(2, 2, 2, 2))
    res = segment_energy(x, RATE, min_event_s=0.2, merge_gap_s=0.15, pad_s=0.05)
    assert len(res.regions) == 1
    r = res.regions[0]
    assert r.start <= 300 - 5 + 3 and r.end >= 370 + 5 - 3  # padded by 5 samples (+-frame)
    kept = res.with_threshold(min_event_s=0.0)  # every event, the one at the very end too
    assert len(kept.regions) == 3
    assert kept.regions[-1].end == len(x)  # clipped to the recording
    assert_valid(kept.regions, len(x))
    split = res.with_threshold(merge_gap_s=0.0, min_event_s=0.0, pad_s=0.0)
    assert len(split.regions) == 4


def test_result_exposes_the_curve_for_drawing():
    x = accel_signal(0)
    res = segment_energy(x, RATE, window_s=0.1)
    assert isinstance(res, SegmentResult)
    assert res.window == 10 and res.hop == 5
    assert res.energy.shape == res.times.shape == res.frame_starts.shape
    assert np.all(np.diff(res.times) > 0) and res.times[-1] <= len(x) / RATE
    assert res.noise_floor < res.exit_threshold < res.threshold
    assert res.regions_s[0][0] == pytest.approx(res.regions[0].start / RATE)
    # the energy is of the dynamic part only: ~ noise RMS of the 3-axis vector, not 1 g
    assert res.noise_floor < 0.1
    assert auto_threshold(res.energy, 6.0) == pytest.approx((res.threshold, res.noise_floor))
    e, t, starts, w, hop = energy_curve(x, RATE, baseline=None)
    assert np.median(e) > 0.9  # raw RMS includes gravity


def test_works_on_a_stored_recording(tmp_path):
    ds = Dataset(tmp_path / "ds")
    x = accel_signal(1)
    raw = np.round(x / 0.001).astype(np.int16)  # stored as int16 milli-g
    meta = ds.add_recording(raw, sensor="accel", channels=("x", "y", "z"), units="g",
                            rate_hz=RATE, dtype="int16", scale=0.001)
    rec = ds.load(meta.id)
    regions = propose_regions(rec, label="punch")
    assert len(regions) == 3
    ds.set_regions(meta.id, regions)  # the proposals are valid regions for the store
    assert ds.meta(meta.id).regions == tuple(regions)


def test_bad_inputs_are_refused():
    x = accel_signal(0)
    with pytest.raises(ValueError, match="rate_hz"):
        propose_regions(x)
    with pytest.raises(ValueError, match="threshold"):
        propose_regions(x, RATE, threshold="loud")
    with pytest.raises(ValueError, match="threshold"):
        propose_regions(x, RATE, threshold=-1)
    with pytest.raises(ValueError, match="NaN"):
        propose_regions(np.full((100, 3), np.nan), RATE)
    with pytest.raises(ValueError, match="shape"):
        propose_regions(np.zeros((10, 3, 2)), RATE)
    with pytest.raises(ValueError, match="baseline"):
        propose_regions(x, RATE, baseline="mean-ish")
    with pytest.raises(TypeError, match="unknown"):
        segment_energy(x, RATE).with_threshold(colour="red")
    assert propose_regions(np.zeros((0, 3)), RATE) == []
    assert propose_regions(np.zeros(50), RATE) == []  # digital silence: nothing


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        data = data.reshape(-1, w.getnchannels())[:, 0]
    return data.astype(np.float32) / 32768, rate


@pytest.mark.skipif(not (SOUNDS / "Front_Center.wav").exists(),
                    reason="Debian alsa-utils sounds not installed (apt-get install alsa-utils)")
@pytest.mark.parametrize("name", ["Front_Center.wav", "Rear_Right.wav"])
@pytest.mark.parametrize("dither", [0.0, 3e-4])
def test_spoken_phrase_is_found_in_silence(name, dither):
    speech, rate = read_wav(SOUNDS / name)
    before, after = int(1.5 * rate), int(2.5 * rate)
    audio = np.concatenate([np.zeros(before, np.float32), speech, np.zeros(after, np.float32)])
    if dither:  # a quiet room instead of digital silence
        audio = audio + np.random.default_rng(0).normal(0, dither, len(audio)).astype(np.float32)
    # where the phrase really is: first and last sample louder than 1 % of full scale
    loud = np.flatnonzero(np.abs(speech) > 0.01)
    truth = (before + loud[0], before + loud[-1] + 1)

    regions = propose_regions(audio, rate, merge_gap_s=0.4, label="speech")
    assert len(regions) == 1, regions
    assert iou(regions[0], truth) > 0.8, (regions[0], truth)
    assert abs(regions[0].start - truth[0]) < 0.15 * rate

    # the default merge gap may split the words apart, but it finds only speech
    words = propose_regions(audio, rate)
    assert 1 <= len(words) <= 3
    assert all(truth[0] - 0.15 * rate <= r.start and r.end <= truth[1] + 0.15 * rate
               for r in words)


def test_a_posture_change_between_gestures_is_not_an_event():
    """Gravity moves from z to x between two bursts (the board put down another way)."""
    from workbench.data.segment import propose_regions

    rate = 100.0
    rng = np.random.default_rng(4)
    t = np.arange(int(12 * rate)) / rate
    x = np.zeros((len(t), 3))
    x[:, 2] = np.where(t < 6, 1.0, 0.0)
    x[:, 0] = np.where(t < 6, 0.0, 1.0)
    for start in (2.0, 8.0):  # two 1.5 s waves at 3 Hz
        on = (t >= start) & (t < start + 1.5)
        x[on, 1] += 0.8 * np.sin(2 * np.pi * 3 * t[on])
    x += rng.normal(0, 0.01, x.shape)
    regions = propose_regions(x, rate)
    assert len(regions) == 2
    for r, start in zip(regions, (2.0, 8.0)):
        assert abs(r.start / rate - start) < 0.3 and abs(r.end / rate - start - 1.5) < 0.3
