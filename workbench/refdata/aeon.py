"""aeon's BasicMotions, found inside the installed ``aeon`` package and read as text.

Four students wore a smartwatch while Standing, Walking, Running and playing Badminton;
80 recordings (40 train + 40 test), each 6 channels x 100 samples at 10 Hz. Channels 0-2 are
the accelerometer, 3-5 the gyroscope.

Units, as far as the data tell (the data set does not document them):

* Accelerometer: **m/s^2 with gravity removed** (Android's "linear acceleration"). Standing
  recordings have a per-recording mean of about 0 on every axis and a mean ``|a|`` of about
  0.8, not 9.8 (nor 1, as it would be in g with gravity); walking reaches about 10 and running
  about 27, i.e. 1 and 2.8 g, plausible for a wrist.
* Gyroscope: **rad/s**. Standing has an rms of about 0.4, running peaks at about 13 and
  badminton at about 35 (2000 dps, a smash); in deg/s the arm swing of running (std about 5)
  would be implausibly slow.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError
from .ts_format import read_ts

__all__ = ["BASICMOTIONS", "BASICMOTIONS_CHANNELS", "BASICMOTIONS_CLASSES",
           "BASICMOTIONS_RATE_HZ", "BASICMOTIONS_UNITS", "DataUnavailable", "basicmotions_dir",
           "load_basicmotions"]

BASICMOTIONS = "BasicMotions"
BASICMOTIONS_RATE_HZ = 10.0
BASICMOTIONS_CLASSES = ("Standing", "Walking", "Running", "Badminton")
BASICMOTIONS_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
BASICMOTIONS_UNITS = ("m/s^2",) * 3 + ("rad/s",) * 3
"""Per channel; inferred from the values (see the module docstring)."""
INSTALL_HINT = "pip install 'aeon>=1.0,<2'   (or: pip install 'tinyml-workbench[data]')"


class DataUnavailable(WorkbenchError, RuntimeError):
    """A published data set cannot be found (the package that ships it is not installed)."""


def basicmotions_dir() -> Path:
    """Directory holding BasicMotions_TRAIN.ts / _TEST.ts inside the installed aeon.

    Raises :class:`DataUnavailable` (with the install command) if aeon or the files are
    missing. Does not import aeon."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable(
            f"{BASICMOTIONS} needs the 'aeon' package, which ships the data set. "
            f"Install it with: {INSTALL_HINT}")
    for root in spec.submodule_search_locations:
        d = Path(root) / "datasets" / "data" / BASICMOTIONS
        if (d / f"{BASICMOTIONS}_TRAIN.ts").is_file():
            return d
    raise DataUnavailable(
        f"aeon is installed but {BASICMOTIONS} was not found in it; reinstall with: "
        f"{INSTALL_HINT}")


@cache
def load_basicmotions(split: str = "all") -> tuple[np.ndarray, tuple[str, ...]]:
    """BasicMotions as (X, labels): X of shape (cases, 6, 100), read-only, in the data set's
    units; ``split`` is "train", "test" or "all" (train then test). Cached per split."""
    parts = {"train": ("TRAIN",), "test": ("TEST",), "all": ("TRAIN", "TEST")}.get(split)
    if parts is None:
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    d = basicmotions_dir()
    loaded = [read_ts(d / f"{BASICMOTIONS}_{p}.ts") for p in parts]
    X = np.concatenate([x for x, _ in loaded])
    X.setflags(write=False)
    return X, tuple(lab for _, labels in loaded for lab in labels)
