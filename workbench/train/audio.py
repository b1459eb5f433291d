"""Audio front-end: log-mel spectrogram and MFCC, computed exactly as firmware computes them.

Pure numpy (no TensorFlow). Every step below is a formula a C implementation (e.g. with CMSIS-DSP)
can follow literally; the tests check the result against TensorFlow's ``tf.signal``.

Notation: ``sr`` sample rate (Hz), ``L`` frame length and ``S`` frame step (samples), ``N`` FFT length
(``n_fft``, a power of two for CMSIS), ``K = N/2 + 1`` spectrum bins, ``M`` mel bands (``n_mels``),
``D`` cepstral coefficients (``n_mfcc``).

1. **Samples.** int16 PCM is scaled to ``x[n] = pcm[n] / 32768``; float input is used as given
   (expected in [-1, 1)). Mono, one dimension.
2. **Frame sizes.** ``L = round(sr * frame_ms / 1000)``, ``S = round(sr * stride_ms / 1000)``
   (16 kHz, 30 ms, 20 ms: ``L = 480``, ``S = 320``). ``L <= N`` is required.
3. **Framing.** Frame ``t`` is ``x[t*S : t*S + L]``; there are ``T = 1 + floor((len(x) - L) / S)``
   frames. No centring, no padding: the trailing samples that do not fill a frame are dropped
   (``tf.signal.stft(..., pad_end=False)``). Audio shorter than ``L`` is an error.
4. **Window.** Periodic Hann, ``w[n] = 0.5 - 0.5 * cos(2*pi*n / L)`` for ``n = 0 .. L-1``
   (denominator ``L``, not ``L - 1``: the *symmetric* Hann is a different window; precompute this
   table rather than calling a library window function).
5. **Spectrum.** The windowed frame is zero-padded at the end to ``N`` samples and transformed:
   ``X[t,k] = sum_{n=0}^{L-1} w[n] * x[t*S + n] * exp(-2j*pi*k*n / N)`` for ``k = 0 .. N/2``.
   With CMSIS-DSP: ``arm_rfft_fast_f32`` (length N) packs ``Re X[0]`` and ``Re X[N/2]`` in
   ``out[0]``/``out[1]``, then ``Re, Im`` of ``k = 1 .. N/2-1``.
6. **Power.** ``P[t,k] = Re(X[t,k])^2 + Im(X[t,k])^2`` (``arm_cmplx_mag_squared_f32``); no
   division by ``N`` or by the window energy.
7. **Mel filterbank (HTK, as ``tf.signal.linear_to_mel_weight_matrix``).**
   ``mel(f) = 1127 * ln(1 + f / 700)``. Band edges are equally spaced in mel:
   ``E_j = mel(fmin) + j * (mel(fmax) - mel(fmin)) / (M + 1)`` for ``j = 0 .. M+1``.
   Bin ``k`` has frequency ``f_k = k * sr / N`` and mel ``m_k = mel(f_k)``. Weights (triangles in
   the *mel* domain, peak 1, no area normalization)::

       W[k,j] = max(0, min((m_k - E_j) / (E_{j+1} - E_j), (E_{j+2} - m_k) / (E_{j+2} - E_{j+1})))

   for ``k >= 1``, and ``W[0,j] = 0`` (the DC bin never contributes). Store it sparsely in firmware:
   each band is non-zero only on a contiguous run of bins.
8. **Log-mel.** ``logmel[t,j] = ln(sum_k P[t,k] * W[k,j] + log_offset)`` (natural log; default
   ``log_offset = 1e-6``). This is :func:`log_mel_spectrogram`, shape ``(T, M)``.
9. **MFCC.** A DCT-II over the mel axis, orthonormal by default (``scipy.fft.dct(norm="ortho")``)::

       c[t,i] = s_i * sum_{j=0}^{M-1} logmel[t,j] * cos(pi * i * (2j + 1) / (2M)),  i = 0 .. D-1
       s_0 = sqrt(1/M),  s_i = sqrt(2/M) for i >= 1            (dct_norm="ortho", default)

   ``tf.signal.mfccs_from_log_mel_spectrograms`` uses ``s_i = sqrt(2/M)`` for *every* ``i``
   (unnormalized DCT-II times ``1/sqrt(2M)``), so its ``c[0]`` is ``sqrt(2)`` times ours and all
   other coefficients are identical; ``dct_norm="tf"`` selects that convention. Keep the first ``D``
   coefficients: :func:`mfcc`, shape ``(T, D)``. In firmware, precompute the ``D x M`` matrix.

All arithmetic here is float64; outputs are float32.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "FrontEnd",
    "log_mel_spectrogram",
    "mfcc",
    "to_float_audio",
    "frame_sizes",
    "periodic_hann",
    "frames",
    "power_spectrum",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "dct_matrix",
]

DCT_NORMS = ("ortho", "tf")


# --------------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------------


def to_float_audio(audio: Any) -> np.ndarray:
    """Step 1: mono samples as float64; int16 scaled by 1/32768, floats unchanged."""
    a = np.asarray(audio)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"audio must be mono, one dimension, got shape {a.shape}")
    if a.dtype == np.int16:
        return a.astype(np.float64) / 32768.0
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError("audio contains NaN or infinite samples")
        return a
    raise TypeError(f"audio must be int16 PCM or float in [-1, 1), got dtype {a.dtype}; "
                    "convert other integer formats yourself (e.g. int32: / 2**31)")


def frame_sizes(sample_rate: float, frame_ms: float, stride_ms: float) -> tuple[int, int]:
    """Step 2: ``(L, S)`` in samples, rounded to the nearest integer."""
    L = int(round(sample_rate * frame_ms / 1000.0))
    S = int(round(sample_rate * stride_ms / 1000.0))
    if L < 1 or S < 1:
        raise ValueError(f"frame_ms and stride_ms must give at least one sample each "
                         f"(got L={L}, S={S} at {sample_rate} Hz)")
    return L, S


def periodic_hann(length: int) -> np.ndarray:
    """Step 4: ``w[n] = 0.5 - 0.5 cos(2 pi n / L)``, ``n = 0..L-1`` (as ``tf.signal.hann_window``)."""
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def frames(x: np.ndarray, frame_length: int, frame_step: int) -> np.ndarray:
    """Step 3: ``(T, L)`` frames, ``T = 1 + (len(x) - L) // S``; the remainder is dropped."""
    n = x.shape[0]
    if n < frame_length:
        raise ValueError(
            f"audio too short: {n} samples, but one frame needs {frame_length} "
            f"(frame_ms at this sample rate); pad or record longer")
    count = 1 + (n - frame_length) // frame_step
    idx = np.arange(frame_length)[None, :] + frame_step * np.arange(count)[:, None]
    return x[idx]


def power_spectrum(framed: np.ndarray, n_fft: int) -> np.ndarray:
    """Steps 4-6: periodic-Hann window, zero-pad to ``n_fft``, ``|rfft|^2``; shape ``(T, n_fft/2+1)``."""
    L = framed.shape[-1]
    if L > n_fft:
        raise ValueError(f"frame length {L} exceeds n_fft {n_fft}")
    spec = np.fft.rfft(framed * periodic_hann(L), n=n_fft, axis=-1)
    return spec.real ** 2 + spec.imag ** 2


def hz_to_mel(f: Any) -> np.ndarray:
    """HTK mel scale: ``1127 ln(1 + f/700)``."""
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: Any) -> np.ndarray:
    return 700.0 * np.expm1(np.asarray(m, dtype=np.float64) / 1127.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: float, fmin: float, fmax: float) -> np.ndarray:
    """Step 7: the ``(n_fft/2 + 1, n_mels)`` weight matrix ``W`` (HTK triangles, DC row zero)."""
    if not 0.0 <= fmin < fmax <= sample_rate / 2.0:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2 ({sample_rate / 2}), "
                         f"got fmin={fmin}, fmax={fmax}")
    if n_mels < 1:
        raise ValueError(f"n_mels must be >= 1, got {n_mels}")
    n_bins = n_fft // 2 + 1
    bin_mel = hz_to_mel(np.arange(n_bins) * (sample_rate / n_fft))[:, None]
    edges = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    W = np.maximum(0.0, np.minimum(rising, falling))
    W[0, :] = 0.0
    return W


def dct_matrix(n_mfcc: int, n_mels: int, norm: str = "ortho") -> np.ndarray:
    """Step 9: the ``(n_mels, n_mfcc)`` DCT-II matrix, so ``mfcc = logmel @ dct_matrix(...)``."""
    if norm not in DCT_NORMS:
        raise ValueError(f"dct_norm must be one of {DCT_NORMS}, got {norm!r}")
    if not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"need 1 <= n_mfcc <= n_mels ({n_mels}), got {n_mfcc}")
    j = np.arange(n_mels)[:, None]
    i = np.arange(n_mfcc)[None, :]
    C = np.cos(np.pi * i * (2 * j + 1) / (2.0 * n_mels)) * math.sqrt(2.0 / n_mels)
    if norm == "ortho":
        C[:, 0] *= math.sqrt(0.5)
    return C


# --------------------------------------------------------------------------------------------------
# The front-end
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrontEnd:
    """The front-end's parameters; calling it computes the features.

    ``n_mfcc=None`` gives the log-mel spectrogram ``(T, n_mels)``; an integer gives MFCCs
    ``(T, n_mfcc)``. ``to_dict()`` is plain JSON, saved with the model so firmware (and later
    retraining) computes the same features.
    """

    sample_rate: int = 16000
    frame_ms: float = 30.0
    stride_ms: float = 20.0
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 4000.0
    log_offset: float = 1e-6
    n_mfcc: int | None = None
    dct_norm: str = "ortho"

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0, got {self.sample_rate}")
        if self.n_fft < 2 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two (CMSIS rfft), got {self.n_fft}")
        L, _ = frame_sizes(self.sample_rate, self.frame_ms, self.stride_ms)
        if L > self.n_fft:
            raise ValueError(f"frame of {L} samples ({self.frame_ms} ms) exceeds n_fft={self.n_fft}")
        if not self.log_offset > 0:
            raise ValueError(f"log_offset must be > 0, got {self.log_offset}")
        mel_filterbank(self.n_mels, self.n_fft, self.sample_rate, self.fmin, self.fmax)  # validates
        if self.n_mfcc is not None:
            dct_matrix(self.n_mfcc, self.n_mels, self.dct_norm)  # validates

    @property
    def frame_length(self) -> int:
        return frame_sizes(self.sample_rate, self.frame_ms, self.stride_ms)[0]

    @property
    def frame_step(self) -> int:
        return frame_sizes(self.sample_rate, self.frame_ms, self.stride_ms)[1]

    def n_frames(self, n_samples: int) -> int:
        """``T`` for ``n_samples`` of audio (0 if shorter than one frame)."""
        if n_samples < self.frame_length:
            return 0
        return 1 + (n_samples - self.frame_length) // self.frame_step

    def output_shape(self, n_samples: int) -> tuple[int, int]:
        return (self.n_frames(n_samples), self.n_mfcc if self.n_mfcc is not None else self.n_mels)

    def mel_matrix(self) -> np.ndarray:
        return mel_filterbank(self.n_mels, self.n_fft, self.sample_rate, self.fmin, self.fmax)

    def log_mel(self, audio: Any) -> np.ndarray:
        x = to_float_audio(audio)
        P = power_spectrum(frames(x, self.frame_length, self.frame_step), self.n_fft)
        return np.log(P @ self.mel_matrix() + self.log_offset)

    def __call__(self, audio: Any) -> np.ndarray:
        logmel = self.log_mel(audio)
        if self.n_mfcc is None:
            return logmel.astype(np.float32)
        return (logmel @ dct_matrix(self.n_mfcc, self.n_mels, self.dct_norm)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"type": "audio_frontend", "version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "FrontEnd":
        if d.get("type", "audio_frontend") != "audio_frontend":
            raise ValueError(f"not an audio front-end dict: type={d.get('type')!r}")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names - {"type", "version"}
        if unknown:
            raise ValueError(f"unknown audio front-end parameters: {sorted(unknown)}")
        return cls(**{k: v for k, v in d.items() if k in names})


def log_mel_spectrogram(audio: Any, sample_rate: int = 16000, frame_ms: float = 30.0,
                        stride_ms: float = 20.0, n_fft: int = 512, n_mels: int = 40,
                        fmin: float = 20.0, fmax: float = 4000.0,
                        log_offset: float = 1e-6) -> np.ndarray:
    """Log-mel spectrogram ``(frames, n_mels)`` float32 (steps 1-8 of the module docstring)."""
    return FrontEnd(sample_rate, frame_ms, stride_ms, n_fft, n_mels, fmin, fmax, log_offset)(audio)


def mfcc(audio: Any, sample_rate: int = 16000, frame_ms: float = 30.0, stride_ms: float = 20.0,
         n_fft: int = 512, n_mels: int = 40, fmin: float = 20.0, fmax: float = 4000.0,
         log_offset: float = 1e-6, n_mfcc: int = 10, dct_norm: str = "ortho") -> np.ndarray:
    """MFCCs ``(frames, n_mfcc)`` float32: orthonormal DCT-II of the log-mel spectrogram (step 9).

    ``dct_norm="tf"`` matches ``tf.signal.mfccs_from_log_mel_spectrograms`` (``c[0]`` larger by
    ``sqrt(2)``).
    """
    return FrontEnd(sample_rate, frame_ms, stride_ms, n_fft, n_mels, fmin, fmax, log_offset,
                    n_mfcc, dct_norm)(audio)
