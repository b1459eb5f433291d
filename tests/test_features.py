"""Feature code: normalization, augmentation, and the audio front-end checked against tf.signal."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.train import audio
from workbench.train.audio import FrontEnd, log_mel_spectrogram, mfcc
from workbench.train.features import Normalizer, add_noise, augment, scale, time_shift

ALSA_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")


def windows(n=32, T=50, C=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, T, C)) * [1.0, 5.0, 0.1] + [0.0, 9.81, -3.0]).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Normalizer
# --------------------------------------------------------------------------------------------------


def test_normalizer_fit_transform_round_trip():
    X = windows()
    norm = Normalizer().fit(X)
    Z = norm.transform(X)
    assert Z.shape == X.shape and Z.dtype == np.float32
    np.testing.assert_allclose(Z.reshape(-1, 3).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(Z.reshape(-1, 3).std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(norm.inverse_transform(Z), X, rtol=1e-5, atol=1e-5)
    # single window and single sample work through the channel axis
    np.testing.assert_array_equal(norm.transform(X[0]), Z[0])
    np.testing.assert_array_equal(norm.transform(X[0, 0]), Z[0, 0])
    assert norm.n_channels == 3 and norm.zero_variance_channels == []


def test_normalizer_saved_dict_gives_identical_outputs():
    X = windows()
    norm = Normalizer().fit(X)
    d = json.loads(json.dumps(norm.to_dict()))
    loaded = Normalizer.from_dict(d)
    X_new = windows(seed=1)
    np.testing.assert_array_equal(loaded.transform(X_new), norm.transform(X_new))
    np.testing.assert_array_equal(loaded.inverse_transform(X_new), norm.inverse_transform(X_new))
    assert loaded.to_dict() == norm.to_dict()


def test_normalizer_zero_variance_channel():
    X = windows()
    X[..., 1] = 9.81  # a constant channel (float32 9.81 is not exact: roundoff must not matter)
    norm = Normalizer().fit(X)
    assert norm.zero_variance_channels == [1]
    assert norm.std[1] == 1.0
    Z = norm.transform(X)
    assert np.all(np.isfinite(Z))
    np.testing.assert_allclose(Z[..., 1], 0, atol=1e-6)
    assert Normalizer.from_dict(norm.to_dict()).zero_variance_channels == [1]


def test_normalizer_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        Normalizer().transform(windows())
    with pytest.raises(RuntimeError, match="not fitted"):
        Normalizer().to_dict()
    with pytest.raises(ValueError, match=r"\(n, T, C\)"):
        Normalizer().fit(windows()[0])
    with pytest.raises(ValueError, match="at least one"):
        Normalizer().fit(np.zeros((0, 10, 3)))
    norm = Normalizer().fit(windows())
    with pytest.raises(ValueError, match="3 channels"):
        norm.transform(np.zeros((4, 50, 2)))
    with pytest.raises(ValueError, match="mean"):
        Normalizer.from_dict({"std": [1.0]})
    with pytest.raises(ValueError, match="std"):
        Normalizer.from_dict({"mean": [0.0], "std": [0.0]})


def test_normalizer_int8_affine_matches_normalize_then_quantize():
    X = windows()
    norm = Normalizer().fit(X)
    s, zp = 0.03, -5
    p = norm.as_int8_affine(s, zp)
    json.dumps(p)
    expected = np.clip(np.rint(norm.transform(X).astype(np.float64) / s) + zp, -128, 127)
    got = norm.quantize_int8(X, s, zp)
    assert got.dtype == np.int8
    # identical except where float32 rounding of z lands exactly on a .5 tie
    assert np.mean(got != expected) < 1e-3
    assert np.max(np.abs(got.astype(int) - expected)) <= 1


# --------------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------------


def test_augmentations_keep_shapes_and_are_seeded():
    X = windows()
    for fn in (lambda r: add_noise(X, 0.1, r),
               lambda r: scale(X, 0.8, 1.2, r),
               lambda r: scale(X, 0.8, 1.2, r, per_channel=True),
               lambda r: time_shift(X, 5, r),
               lambda r: time_shift(X, 5, r, mode="pad"),
               lambda r: time_shift(X, 5, r, mode="edge")):
        a = fn(np.random.default_rng(7))
        b = fn(np.random.default_rng(7))
        c = fn(np.random.default_rng(8))
        assert a.shape == X.shape and a.dtype == X.dtype
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_noise_std_is_measurable():
    X = np.zeros((200, 100, 3), dtype=np.float32)
    out = add_noise(X, 0.25, np.random.default_rng(0))
    assert abs(out.std() - 0.25) < 0.005
    assert abs(out.mean()) < 0.005
    per_channel = add_noise(X, [0.1, 0.5, 1.0], np.random.default_rng(0))
    np.testing.assert_allclose(per_channel.reshape(-1, 3).std(axis=0), [0.1, 0.5, 1.0], rtol=0.02)


def test_scale_factors_within_range():
    X = np.ones((500, 10, 2), dtype=np.float32)
    out = scale(X, 0.9, 1.1, np.random.default_rng(0))
    assert out.min() >= 0.9 and out.max() < 1.1
    assert np.all(out[:, :, 0] == out[:, :1, :1][..., 0])  # one factor per window
    pc = scale(X, 0.9, 1.1, np.random.default_rng(0), per_channel=True)
    assert np.all(pc == pc[:, :1, :])  # constant in time
    assert not np.all(pc[..., 0] == pc[..., 1])


def test_time_shift_wrap_equals_np_roll_and_pad_fills():
    X = np.random.default_rng(0).normal(size=(20, 30, 2))
    max_shift = 6
    out = time_shift(X, max_shift, np.random.default_rng(3), mode="wrap")
    shifts = np.random.default_rng(3).integers(-max_shift, max_shift + 1, size=20)
    assert len(set(shifts.tolist())) > 3
    for i, s in enumerate(shifts):
        np.testing.assert_array_equal(out[i], np.roll(X[i], s, axis=0))
    padded = time_shift(X, max_shift, np.random.default_rng(3), mode="pad")
    edged = time_shift(X, max_shift, np.random.default_rng(3), mode="edge")
    for i, s in enumerate(shifts):
        if s > 0:
            assert np.all(padded[i, :s] == 0) and np.array_equal(padded[i, s:], X[i, :-s])
            assert np.all(edged[i, :s] == X[i, 0])
        elif s < 0:
            assert np.all(padded[i, s:] == 0) and np.array_equal(padded[i, :s], X[i, -s:])
            assert np.all(edged[i, s:] == X[i, -1])
        else:
            assert np.array_equal(padded[i], X[i])
    with pytest.raises(ValueError, match="mode"):
        time_shift(X, 2, np.random.default_rng(0), mode="reflect")
    with pytest.raises(ValueError, match="window length"):
        time_shift(X, 30, np.random.default_rng(0), mode="pad")


def test_augment_repeats_labels_and_groups():
    X = windows(n=10)
    y = np.arange(10) % 3
    groups = np.repeat(["a", "b"], 5)
    Xa, ya, ga = augment(X, y, copies=3, rng=np.random.default_rng(1), noise=0.05,
                         scaling=(0.9, 1.1), shift=4, groups=groups)
    assert Xa.shape == (40, 50, 3) and Xa.dtype == np.float32
    np.testing.assert_array_equal(Xa[:10], X)  # originals first, untouched
    np.testing.assert_array_equal(ya, np.tile(y, 4))
    np.testing.assert_array_equal(ga, np.tile(groups, 4))
    for k in range(1, 4):
        assert not np.array_equal(Xa[10 * k:10 * (k + 1)], X)
    Xb, yb = augment(X, y, copies=3, rng=np.random.default_rng(1), noise=0.05,
                     scaling=(0.9, 1.1), shift=4)
    np.testing.assert_array_equal(Xb, Xa)
    # one-hot labels repeat along the first axis too
    onehot = np.eye(3)[y]
    _, yo = augment(X, onehot, copies=1, rng=0, noise=0.1)
    np.testing.assert_array_equal(yo, np.concatenate([onehot, onehot]))
    Xz, yz = augment(X, y, copies=0)
    np.testing.assert_array_equal(Xz, X)
    with pytest.raises(ValueError, match="at least one"):
        augment(X, y, copies=1, rng=0)
    with pytest.raises(ValueError, match="one label per window"):
        augment(X, y[:5], noise=0.1, rng=0)


# --------------------------------------------------------------------------------------------------
# Audio front-end
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tf():
    if importlib.util.find_spec("tensorflow") is None:  # not importorskip: _tf must import it first
        pytest.skip("TensorFlow not installed")
    if "tensorflow" in sys.modules:  # tf.signal does not care which Keras another test selected
        return sys.modules["tensorflow"]
    from workbench.train.tf_runtime import tf

    return tf()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Debian alsa-utils' spoken "Front center", 48 kHz int16 -> 16 kHz float32."""
    if not ALSA_WAV.exists():
        pytest.skip("alsa-utils sounds not installed")
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    sr, pcm = wavfile.read(ALSA_WAV)
    assert sr == 48000 and pcm.dtype == np.int16 and pcm.ndim == 1
    return resample_poly(pcm.astype(np.float64) / 32768.0, 1, 3).astype(np.float32)


def tone(freq=1000.0, seconds=1.0, sr=16000, amp=0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def tf_front_end(tf, x, fe: FrontEnd):
    """The same pipeline built from tf.signal, in float32 as TensorFlow runs it."""
    stft = tf.signal.stft(tf.constant(x, tf.float32), frame_length=fe.frame_length,
                          frame_step=fe.frame_step, fft_length=fe.n_fft,
                          window_fn=tf.signal.hann_window, pad_end=False)  # periodic Hann
    power = tf.math.square(tf.math.abs(stft))
    W = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=fe.n_mels, num_spectrogram_bins=fe.n_fft // 2 + 1,
        sample_rate=fe.sample_rate, lower_edge_hertz=fe.fmin, upper_edge_hertz=fe.fmax)
    log_mel = tf.math.log(tf.tensordot(power, W, 1) + fe.log_offset)
    mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10]
    return W.numpy(), log_mel.numpy(), mfccs.numpy()


def test_mel_filterbank_matches_tf(tf):
    fe = FrontEnd()
    W_tf, _, _ = tf_front_end(tf, tone(), fe)
    W = fe.mel_matrix()
    assert W.shape == W_tf.shape == (257, 40)
    np.testing.assert_allclose(W, W_tf, atol=1e-5)


@pytest.mark.parametrize("signal", ["speech", "tone"])
def test_log_mel_and_mfcc_match_tf_signal(tf, speech, signal):
    x = speech if signal == "speech" else tone(1000.0) + tone(2500.0, amp=0.1)
    fe = FrontEnd()
    _, lm_tf, mf_tf = tf_front_end(tf, x, fe)

    lm = log_mel_spectrogram(x)
    assert lm.dtype == np.float32 and lm.shape == lm_tf.shape == fe.output_shape(len(x))
    span = lm_tf.max() - lm_tf.min()
    # measured (float32 TF vs float64 numpy): max |diff| 7e-5 on the speech, 6.5e-4 on the tone
    # (in near-silent bands, where float32 FFT round-off is magnified by the log); values span ~21
    assert np.max(np.abs(lm - lm_tf)) < 1e-3 * span

    # tf.signal's DCT-II is scaled by sqrt(2/M) for every coefficient: c0 is sqrt(2) x orthonormal
    mf = mfcc(x, n_mfcc=10)
    assert mf.shape == (lm.shape[0], 10) and mf.dtype == np.float32
    tf_as_ortho = mf_tf.copy()
    tf_as_ortho[:, 0] /= np.sqrt(2.0)
    mf_span = np.max(np.abs(mf_tf))
    assert np.max(np.abs(mf - tf_as_ortho)) < 1e-3 * mf_span
    assert np.max(np.abs(mfcc(x, dct_norm="tf") - mf_tf)) < 1e-3 * mf_span


def test_mfcc_ortho_is_scipy_dct():
    from scipy.fft import dct

    x = tone(700.0) + tone(3100.0, amp=0.05)
    lm = log_mel_spectrogram(x).astype(np.float64)
    expected = dct(lm, type=2, norm="ortho", axis=-1)[:, :10]
    np.testing.assert_allclose(mfcc(x), expected, rtol=1e-5, atol=1e-4)


def test_1khz_tone_peaks_in_its_mel_band():
    fe = FrontEnd()
    lm = fe(tone(1000.0))
    edges_hz = audio.mel_to_hz(np.linspace(audio.hz_to_mel(fe.fmin), audio.hz_to_mel(fe.fmax),
                                           fe.n_mels + 2))
    # the band whose triangle is highest at 1 kHz: the one whose centre is nearest in mel
    expected = int(np.argmin(np.abs(audio.hz_to_mel(edges_hz[1:-1]) - audio.hz_to_mel(1000.0))))
    assert edges_hz[expected] < 1000.0 < edges_hz[expected + 2]
    assert np.all(np.argmax(lm, axis=1) == expected)


def test_int16_input_scaled_and_shapes():
    x = tone(440.0, seconds=0.5)
    pcm = np.round(x * 32767).astype(np.int16)
    np.testing.assert_allclose(log_mel_spectrogram(pcm),
                               log_mel_spectrogram(pcm.astype(np.float32) / 32768), atol=1e-5)
    fe = FrontEnd()
    assert (fe.frame_length, fe.frame_step) == (480, 320)
    assert log_mel_spectrogram(x).shape == (1 + (8000 - 480) // 320, 40) == fe.output_shape(8000)
    assert log_mel_spectrogram(np.zeros(480, np.float32)).shape == (1, 40)
    assert np.allclose(log_mel_spectrogram(np.zeros(480, np.float32)), np.log(1e-6))


def test_audio_errors():
    with pytest.raises(ValueError, match="too short"):
        log_mel_spectrogram(np.zeros(479, np.float32))
    with pytest.raises(ValueError, match="too short"):
        mfcc(np.zeros(0, np.int16))
    with pytest.raises(ValueError, match="mono"):
        log_mel_spectrogram(np.zeros((2, 16000), np.float32))
    with pytest.raises(TypeError, match="int16"):
        log_mel_spectrogram(np.zeros(16000, np.int32))
    with pytest.raises(ValueError, match="fmax"):
        FrontEnd(fmax=9000)
    with pytest.raises(ValueError, match="n_fft"):
        FrontEnd(frame_ms=40)  # 640 samples > 512
    with pytest.raises(ValueError, match="n_mfcc"):
        FrontEnd(n_mfcc=41)


def test_front_end_dict_round_trip():
    fe = FrontEnd(n_mfcc=13, n_mels=32, fmax=7600.0)
    d = json.loads(json.dumps(fe.to_dict()))
    again = FrontEnd.from_dict(d)
    assert again == fe
    x = tone(1234.0)
    np.testing.assert_array_equal(again(x), fe(x))
    assert fe(x).shape == (fe.n_frames(len(x)), 13)
    with pytest.raises(ValueError, match="unknown"):
        FrontEnd.from_dict({**d, "hop": 3})
