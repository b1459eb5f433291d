"""Feature code for sensor windows: per-channel normalization and augmentation.

Pure numpy (no TensorFlow), so the same arithmetic is easy to restate in firmware.

Windows are arrays shaped ``(n, T, C)``: ``n`` windows of ``T`` time steps and ``C`` channels
(channels last, as Keras and the dataset store lay them out).

Normalization
-------------
:class:`Normalizer` learns one mean and one standard deviation per channel from the **training
windows only** (fitting on validation or test data leaks them into training), and maps
``z = (x - mean[c]) / std[c]``. Its parameters round-trip through :meth:`Normalizer.to_dict` /
:meth:`Normalizer.from_dict` as plain JSON, so they are saved next to the model and the device applies
exactly the same transform. :meth:`Normalizer.as_int8_affine` fuses normalization with the int8 input
quantization of a converted model into one multiply-add per channel for firmware.

Augmentation
------------
:func:`add_noise`, :func:`scale`, :func:`time_shift` and :func:`augment` make perturbed copies of
windows, drawing every random number from a ``numpy.random.Generator`` you pass in (same seed, same
result). **Augment the training split only, after splitting.** Never augment validation or test
windows: their scores must measure the model on data as the device will see it, and augmented copies
of a window that also sits (unaugmented) in another split would leak it across splits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Normalizer",
    "add_noise",
    "scale",
    "time_shift",
    "augment",
]

#: A channel whose standard deviation is at most this fraction of its |mean| (or exactly zero) is
#: treated as constant: its std is replaced by 1 so that transform() only removes the mean.
ZERO_STD_RELATIVE = 1e-10


def _as_float_array(X: Any, name: str = "X") -> np.ndarray:
    arr = np.asarray(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr


# --------------------------------------------------------------------------------------------------
# Normalizer
# --------------------------------------------------------------------------------------------------


@dataclass
class Normalizer:
    """Per-channel standardization ``z = (x - mean[c]) / std[c]`` learned from training windows.

    >>> norm = Normalizer().fit(X_train)          # X_train: (n, T, C)
    >>> Z_train, Z_val = norm.transform(X_train), norm.transform(X_val)
    >>> meta["normalizer"] = norm.to_dict()        # JSON, saved with the model

    ``std`` is the population standard deviation (``ddof=0``) over all windows and time steps.
    A constant channel (std 0) would divide by zero: its std is set to 1 instead and its index is
    recorded in ``zero_variance_channels`` (so the channel becomes ``x - mean``, i.e. all zeros on
    training data). ``transform`` accepts any array whose last axis has ``C`` channels, so single
    windows ``(T, C)`` and single samples ``(C,)`` work too. Outputs are float32.
    """

    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    zero_variance_channels: list[int] = field(default_factory=list)

    # -- fitting ---------------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        return self.mean is not None and self.std is not None

    @property
    def n_channels(self) -> int:
        self._check_fitted()
        return int(self.mean.shape[0])

    def fit(self, X: Any) -> "Normalizer":
        """Learn per-channel mean and std from training windows ``X`` shaped ``(n, T, C)``."""
        X = _as_float_array(X)
        if X.ndim != 3:
            raise ValueError(
                f"fit expects training windows shaped (n, T, C), got shape {X.shape}; "
                "for a single window use X[None]")
        if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
            raise ValueError(f"fit needs at least one window, step and channel, got shape {X.shape}")
        flat = X.reshape(-1, X.shape[-1]).astype(np.float64)
        if not np.all(np.isfinite(flat)):
            raise ValueError("fit: X contains NaN or infinite values")
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        constant = (std == 0) | (std <= ZERO_STD_RELATIVE * np.abs(mean))
        std = np.where(constant, 1.0, std)
        self.mean, self.std = mean, std
        self.zero_variance_channels = [int(i) for i in np.flatnonzero(constant)]
        return self

    def fit_transform(self, X: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    # -- applying --------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("Normalizer is not fitted: call fit(X_train) or Normalizer.from_dict(d)")

    def _check_input(self, X: Any, what: str) -> np.ndarray:
        self._check_fitted()
        X = _as_float_array(X)
        if X.ndim == 0 or X.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"{what}: expected an array whose last axis has {self.mean.shape[0]} channels "
                f"(e.g. (n, T, {self.mean.shape[0]})), got shape {X.shape}")
        return X

    def transform(self, X: Any) -> np.ndarray:
        """``(X - mean) / std`` per channel (last axis), as float32."""
        X = self._check_input(X, "transform")
        return ((X.astype(np.float64) - self.mean) / self.std).astype(np.float32)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """``Z * std + mean`` per channel (last axis), as float32."""
        Z = self._check_input(Z, "inverse_transform")
        return (Z.astype(np.float64) * self.std + self.mean).astype(np.float32)

    __call__ = transform

    # -- firmware --------------------------------------------------------------------------------

    def as_int8_affine(self, input_scale: float, input_zero_point: int) -> dict:
        """Fuse normalization with a quantized model's input quantization, for firmware.

        A converted int8 model expects ``q = round(z / input_scale) + input_zero_point`` where
        ``z`` is the normalized value. With ``z = (x - mean[c]) / std[c]`` this is one multiply-add
        per channel on the raw sensor value ``x``::

            q = clamp(round(x * mul[c] + add[c]), -128, 127)
            mul[c] = 1 / (std[c] * input_scale)
            add[c] = input_zero_point - mean[c] / (std[c] * input_scale)

        (``round`` is round-half-to-even here; ``lroundf``'s half-away-from-zero differs by one step
        only on exact ties.) Returns ``{"mul": [...], "add": [...], "formula": ...}``.
        """
        self._check_fitted()
        input_scale = float(input_scale)
        if not (input_scale > 0 and math.isfinite(input_scale)):
            raise ValueError(f"input_scale must be a positive number, got {input_scale}")
        mul = 1.0 / (self.std * input_scale)
        add = float(input_zero_point) - self.mean * mul
        return {
            "mul": [float(v) for v in mul],
            "add": [float(v) for v in add],
            "formula": "q = clamp(round(x * mul[c] + add[c]), -128, 127)",
            "input_scale": input_scale,
            "input_zero_point": int(input_zero_point),
        }

    def quantize_int8(self, X: Any, input_scale: float, input_zero_point: int) -> np.ndarray:
        """Raw windows -> int8 model input, exactly as :meth:`as_int8_affine`'s formula computes."""
        X = self._check_input(X, "quantize_int8")
        p = self.as_int8_affine(input_scale, input_zero_point)
        q = np.rint(X.astype(np.float64) * np.asarray(p["mul"]) + np.asarray(p["add"]))
        return np.clip(q, -128, 127).astype(np.int8)

    # -- saving ----------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-serialisable parameters (float64 values round-trip exactly through ``json``)."""
        self._check_fitted()
        return {
            "type": "normalizer",
            "version": 1,
            "formula": "z = (x - mean[c]) / std[c]",
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "zero_variance_channels": list(self.zero_variance_channels),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        if not isinstance(d, dict) or "mean" not in d or "std" not in d:
            raise ValueError("not a normalizer dict: expected keys 'mean' and 'std'")
        if d.get("type", "normalizer") != "normalizer":
            raise ValueError(f"not a normalizer dict: type={d.get('type')!r}")
        mean = np.asarray(d["mean"], dtype=np.float64)
        std = np.asarray(d["std"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != std.shape or mean.size == 0:
            raise ValueError(f"normalizer dict: mean and std must be equal-length lists, "
                             f"got {mean.shape} and {std.shape}")
        if not np.all(std > 0):
            raise ValueError("normalizer dict: every std must be > 0")
        return cls(mean=mean, std=std,
                   zero_variance_channels=[int(i) for i in d.get("zero_variance_channels", [])])


# --------------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------------


def _rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError("rng must be a numpy.random.Generator or an int seed "
                    "(legacy np.random.RandomState is not supported)")


def _windows(X: Any, name: str = "X", min_ndim: int = 2) -> np.ndarray:
    X = _as_float_array(X, name)
    if X.ndim < min_ndim:
        raise ValueError(f"{name} must be windows shaped (n, T, C) (or (n, T)), got shape {X.shape}")
    return X


def _out_dtype(X: np.ndarray) -> np.dtype:
    return X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float32)


def add_noise(X: Any, std: float | Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """``X`` plus independent Gaussian noise of standard deviation ``std`` on every value.

    ``std`` is a scalar or one value per channel (last axis). Output keeps a float dtype of ``X``
    (float32 for integer input).
    """
    X = _windows(X)
    std = np.asarray(std, dtype=np.float64)
    if np.any(std < 0) or not np.all(np.isfinite(std)):
        raise ValueError(f"noise std must be finite and >= 0, got {std}")
    if std.ndim > 1 or (std.ndim == 1 and std.shape[0] != X.shape[-1]):
        raise ValueError(f"std must be a scalar or one value per channel ({X.shape[-1]}), got {std.shape}")
    noise = _rng(rng).standard_normal(X.shape) * std
    return (X + noise).astype(_out_dtype(X))


def scale(X: Any, low: float, high: float, rng: np.random.Generator,
          per_channel: bool = False) -> np.ndarray:
    """Multiply each window by a factor drawn uniformly from ``[low, high)``.

    With ``per_channel=True`` each channel of each window gets its own factor (shape ``(n, 1, C)``),
    otherwise one factor per window (shape ``(n, 1, 1)``).
    """
    X = _windows(X)
    if not (0 <= low <= high) or not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"scale needs 0 <= low <= high, got low={low}, high={high}")
    shape = [X.shape[0]] + [1] * (X.ndim - 1)
    if per_channel:
        shape[-1] = X.shape[-1]
    factors = _rng(rng).uniform(low, high, size=shape)
    return (X * factors).astype(_out_dtype(X))


SHIFT_MODES = ("wrap", "pad", "edge")


def time_shift(X: Any, max_shift: int, rng: np.random.Generator, mode: str = "wrap") -> np.ndarray:
    """Shift each window along time (axis 1) by an integer ``s`` drawn from ``[-max_shift, max_shift]``.

    Positive ``s`` moves samples later (``out[t] = x[t - s]``), as ``np.roll`` does. ``mode``:
    ``"wrap"`` rotates (exactly ``np.roll(X[i], s, axis=0)``); ``"pad"`` fills the vacated steps with
    zeros (the channel mean, once normalized); ``"edge"`` repeats the first/last sample.
    Shifts are drawn as ``rng.integers(-max_shift, max_shift + 1, size=n)``.
    """
    X = _windows(X)
    if mode not in SHIFT_MODES:
        raise ValueError(f"mode must be one of {SHIFT_MODES}, got {mode!r}")
    max_shift = int(max_shift)
    T = X.shape[1]
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift >= T and mode != "wrap":
        raise ValueError(f"max_shift ({max_shift}) must be smaller than the window length ({T})")
    shifts = _rng(rng).integers(-max_shift, max_shift + 1, size=X.shape[0])
    out = np.empty(X.shape, dtype=_out_dtype(X))
    for i, s in enumerate(shifts):
        s = int(s)
        rolled = np.roll(X[i], s, axis=0)
        if mode != "wrap" and s != 0:
            if s > 0:
                rolled[:s] = 0 if mode == "pad" else X[i, :1]
            else:
                rolled[s:] = 0 if mode == "pad" else X[i, -1:]
        out[i] = rolled
    return out


def augment(X: Any, y: Any, copies: int = 1, rng: Any = None, *,
            noise: float | Sequence[float] | None = None,
            scaling: tuple[float, float] | None = None,
            shift: int | None = None,
            shift_mode: str = "wrap",
            per_channel_scaling: bool = False,
            groups: Any = None):
    """The original windows followed by ``copies`` augmented copies, with labels repeated.

    Each copy applies, in this order and each only if given: :func:`time_shift` (``shift`` = max
    shift in steps, ``shift_mode``), :func:`scale` (``scaling=(low, high)``), :func:`add_noise`
    (``noise`` = std). Returns ``(X_aug, y_aug)``, or ``(X_aug, y_aug, groups_aug)`` when ``groups``
    is given (so group-aware code still knows which recording each copy came from). Row ``k*n + i``
    is copy ``k`` (0 = original) of window ``i``.

    Training split only: never augment validation or test windows (see the module docstring).
    Pass a seeded ``np.random.Generator`` (or an int seed) for reproducible results.
    """
    X = _windows(X)
    y = np.asarray(y)
    n = X.shape[0]
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"y must have one label per window ({n}), got shape {y.shape}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim == 0 or groups.shape[0] != n:
            raise ValueError(f"groups must have one entry per window ({n}), got shape {groups.shape}")
    copies = int(copies)
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    if copies > 0 and noise is None and scaling is None and not shift:
        raise ValueError("augment: give at least one of noise=, scaling=, shift= "
                         "(otherwise the copies would be identical duplicates)")
    gen = _rng(rng)
    parts = [X.astype(_out_dtype(X))]
    for _ in range(copies):
        A = X
        if shift:
            A = time_shift(A, shift, gen, mode=shift_mode)
        if scaling is not None:
            low, high = scaling
            A = scale(A, low, high, gen, per_channel=per_channel_scaling)
        if noise is not None:
            A = add_noise(A, noise, gen)
        parts.append(np.asarray(A, dtype=_out_dtype(X)))
    X_aug = np.concatenate(parts, axis=0)
    y_aug = np.concatenate([y] * (copies + 1), axis=0)
    if groups is None:
        return X_aug, y_aug
    return X_aug, y_aug, np.concatenate([groups] * (copies + 1), axis=0)
