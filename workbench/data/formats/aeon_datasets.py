"""aeon's BasicMotions imported into a dataset store.

The files are located and parsed by :mod:`workbench.refdata` (read as text, without importing
aeon, which is slow): 80 recordings of a smartwatch worn while Standing, Walking, Running and
playing Badminton, 40 train + 40 test, each 100 samples at 10 Hz of 6 channels: accelerometer
x, y, z (m/s^2, gravity removed) then gyroscope x, y, z (rad/s). The units are not documented
by the data set; the reasoning behind them is in :mod:`workbench.refdata.aeon`. The virtual
board replays the same arrays (:mod:`workbench.sim.replay`).
"""

from __future__ import annotations

import numpy as np

from ...refdata import BASICMOTIONS_CHANNELS, BASICMOTIONS_RATE_HZ, BASICMOTIONS_UNITS, load_basicmotions
from ..store import Dataset, RecordingMeta
from . import store_recording, transaction

__all__ = ["import_basicmotions", "BASICMOTIONS_CHANNELS"]

SOURCE = "import:aeon/BasicMotions"


def import_basicmotions(dataset: Dataset) -> list[RecordingMeta]:
    """Import all 80 BasicMotions recordings (train then test, in file order).

    Each: label = the class lowercased (``standing``, ``walking``, ``running``,
    ``badminton``); ``extra["split"]`` = ``"train"``/``"test"`` as in the data set and
    ``extra["case"]`` = its index in that split's file; per-channel units in
    ``extra["channel_units"]``. All or nothing: on any error no recording is left.
    Raises :class:`workbench.refdata.DataUnavailable` if aeon is not installed.
    """
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
                    rate_hz=BASICMOTIONS_RATE_HZ, dtype="float32", scale=1.0,
                    label=label.lower(), device="smartwatch", source=SOURCE, split=split,
                    case=case, dataset_class=label, channel_units=list(BASICMOTIONS_UNITS),
                    note="accelerometer without gravity (linear acceleration); units "
                         "inferred, see workbench.refdata.aeon"))
    return out
