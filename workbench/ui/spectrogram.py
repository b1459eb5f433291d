"""Spectrogram columns for the live plot: a short-time Fourier transform, in dB, as bytes.

Computed on the host with numpy (a 16 kHz microphone is ~125 columns of 129 bins a second
at the defaults: a few hundred microseconds of numpy per message) and sent to the browser
as one byte per bin, which keeps the messages small (16 kB/s) and the browser's work to
copying pixels.

Column ``k`` covers samples ``[k * hop, k * hop + n_fft)`` of the stream (Hann window);
bin ``j`` is frequency ``j * rate / n_fft``. Values are dB relative to a full-scale sine
(a sine of amplitude 1 in the pushed units reads 0 dB), mapped linearly from
``db_range = (low, high)`` to 0..255 and clipped.
"""

from __future__ import annotations

import numpy as np

__all__ = ["stft_columns", "DEFAULT_FFT", "DEFAULT_DB_RANGE"]

DEFAULT_FFT = 256
"""Samples per column (16 ms at 16 kHz: 62.5 Hz bins)."""
DEFAULT_DB_RANGE = (-100.0, 0.0)


def check_fft(n_fft: int) -> int:
    """``n_fft`` if it is a power of two from 16 to 8192, else ValueError saying so."""
    if not (isinstance(n_fft, (int, np.integer)) and 16 <= n_fft <= 8192
            and n_fft & (n_fft - 1) == 0):
        raise ValueError(f"spectrogram n_fft must be a power of two from 16 to 8192, got {n_fft!r}")
    return int(n_fft)


def stft_columns(samples: np.ndarray, n_fft: int = DEFAULT_FFT, hop: int | None = None,
                 db_range: tuple[float, float] = DEFAULT_DB_RANGE) -> np.ndarray:
    """The columns of every whole window in ``samples`` (1-D, one channel): uint8 of shape
    ``(columns, n_fft // 2 + 1)``, ``columns = (len - n_fft) // hop + 1`` (0 if shorter).
    ``hop`` defaults to ``n_fft // 2``. NaN samples count as 0."""
    n_fft = check_fft(n_fft)
    hop = hop or n_fft // 2
    x = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1))
    bins = n_fft // 2 + 1
    if len(x) < n_fft:
        return np.zeros((0, bins), np.uint8)
    count = (len(x) - n_fft) // hop + 1
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:count]
    window = np.hanning(n_fft).astype(np.float32)
    mag = np.abs(np.fft.rfft(frames * window, axis=1)) * (2.0 / window.sum())
    db = 20.0 * np.log10(np.maximum(mag, 1e-12))
    lo, hi = db_range
    scaled = (db - lo) * (255.0 / (hi - lo))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)
