"""Real data sets that ship inside packages, imported into a dataset store.

:func:`import_basicmotions` brings in aeon's BasicMotions (read as text by
:mod:`workbench.sim.replay`, without importing aeon, which is slow): 80 recordings of a
smartwatch worn while Standing, Walking, Running and playing Badminton, 40 train + 40 test,
each 100 samples at 10 Hz of 6 channels: accelerometer x, y, z (m/s^2, gravity removed) then
gyroscope x, y, z (rad/s). The units are not documented by the data set; the reasoning behind
them is in :mod:`workbench.sim.replay`.

:func:`example_dataset` makes a ready-made dataset folder: ``"basicmotions"`` or
``"fruit-color"`` (the three real CSV files of ``shared/data/arduino-fruit-color``, one
recording per fruit; see the note on its rate there).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..store import Dataset, DatasetError, RecordingMeta
from . import store_recording, transaction

__all__ = ["import_basicmotions", "example_dataset", "EXAMPLES", "BASICMOTIONS_CHANNELS",
           "FRUIT_COLOR_RATE_HZ"]

SOURCE = "import:aeon/BasicMotions"
BASICMOTIONS_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
BASICMOTIONS_UNITS = ("m/s^2",) * 3 + ("rad/s",) * 3

FRUIT_COLOR_RATE_HZ = 10.0
"""Nominal rate given to the fruit-colour recordings. An assumption, not a measurement: the
``object_color_capture`` sketch prints a line whenever the APDS9960 has a new colour reading
*and* an object is close, with no delay and no time stamp, so the rows are independent
readings, not an evenly spaced series (its tutorial classifies each row on its own). The
recordings carry ``extra["rate_assumed"] = True``."""

EXAMPLES = ("basicmotions", "fruit-color")


def import_basicmotions(dataset: Dataset) -> list[RecordingMeta]:
    """Import all 80 BasicMotions recordings (train then test, in file order).

    Each: label = the class lowercased (``standing``, ``walking``, ``running``,
    ``badminton``); ``extra["split"]`` = ``"train"``/``"test"`` as in the data set and
    ``extra["case"]`` = its index in that split's file; per-channel units in
    ``extra["channel_units"]``. All or nothing: on any error no recording is left.
    Raises :class:`workbench.sim.replay.ReplayUnavailable` if aeon is not installed.
    """
    from ...sim.replay import DATASET_RATE_HZ, load_basicmotions

    splits = []
    for split in ("train", "test"):
        X, labels = load_basicmotions(split)
        if X.ndim != 3 or X.shape[1] != len(BASICMOTIONS_CHANNELS):
            raise ValueError(f"BasicMotions {split} has shape {X.shape}; expected "
                             f"(cases, {len(BASICMOTIONS_CHANNELS)}, length)")
        splits.append((split, X, labels))
    out: list[RecordingMeta] = []
    with transaction(dataset):
        for split, X, labels in splits:
            for case, (x, label) in enumerate(zip(X, labels)):
                out.append(store_recording(
                    dataset, np.ascontiguousarray(x.T, dtype=np.float32), sensor="imu",
                    channels=BASICMOTIONS_CHANNELS, units="m/s^2 (acc), rad/s (gyr)",
                    rate_hz=DATASET_RATE_HZ, dtype="float32", scale=1.0,
                    label=label.lower(), device="smartwatch", source=SOURCE, split=split,
                    case=case, dataset_class=label, channel_units=list(BASICMOTIONS_UNITS),
                    note="accelerometer without gravity (linear acceleration); units "
                         "inferred, see workbench.sim.replay"))
    return out


def fruit_color_dir() -> Path:
    """Where the fruit-colour CSV files are: ``$WORKBENCH_DATA/arduino-fruit-color``, else
    ``shared/data/arduino-fruit-color`` beside the checkout."""
    candidates = []
    if os.environ.get("WORKBENCH_DATA"):
        candidates.append(Path(os.environ["WORKBENCH_DATA"]) / "arduino-fruit-color")
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "data"
                      / "arduino-fruit-color")
    for d in candidates:
        if d.is_dir() and any(d.glob("*.csv")):
            return d
    raise FileNotFoundError("the fruit-colour data (arduino-fruit-color/*.csv) were not found; "
                            "set WORKBENCH_DATA to the folder that holds arduino-fruit-color/ "
                            f"(looked in: {', '.join(str(c) for c in candidates)})")


def import_fruit_color(dataset: Dataset, folder: str | os.PathLike | None = None
                       ) -> list[RecordingMeta]:
    """One recording per ``<fruit>.csv``, labelled with the fruit (all or nothing)."""
    from .csv_format import import_csv

    folder = Path(folder) if folder is not None else fruit_color_dir()
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv files in {folder}")
    out = []
    with transaction(dataset):
        for f in files:
            out.append(import_csv(
                dataset, f, label=f.stem.lower(), rate_hz=FRUIT_COLOR_RATE_HZ, sensor="color",
                units="ratio", time_column=None, board="nano33ble",
                extra={"rate_assumed": True,
                       "note": "each channel's share of R+G+B (APDS9960), printed by the "
                               "object_color_capture sketch; rate_hz is nominal"}))
    return out


def example_dataset(name: str, path: str | os.PathLike) -> Dataset:
    """Create a ready-made dataset folder at ``path`` (which must be new or empty).

    ``name``: ``"basicmotions"`` (80 recordings, needs aeon) or ``"fruit-color"`` (three
    recordings of Arduino colour readings). Returns the opened :class:`Dataset`.
    """
    key = name.lower().replace("_", "-")
    if key not in EXAMPLES:
        raise ValueError(f"unknown example dataset {name!r}; choose one of {', '.join(EXAMPLES)}")
    dataset = Dataset(path, name=key)
    if len(dataset):
        raise DatasetError(f"{dataset.root} already holds a dataset with {len(dataset)} "
                           "recordings; choose a new folder")
    if key == "basicmotions":
        import_basicmotions(dataset)
    else:
        import_fruit_color(dataset)
    return dataset
