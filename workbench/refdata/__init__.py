"""Published data sets that ship inside other packages, read into numpy arrays.

A leaf of the package (it imports only :mod:`workbench.errors` and numpy): the virtual
board replays these arrays as sensor signals (:mod:`workbench.sim.replay`) and the data layer
imports them into a dataset store (:func:`workbench.data.formats.import_basicmotions`), so
both read the same files the same way without the simulator and the store knowing of each
other. Nothing here writes anything.

* :func:`read_ts`: the sktime/aeon ``.ts`` text format (equal-length, labelled).
* :func:`load_basicmotions`: aeon's BasicMotions, located inside the installed ``aeon``
  package and read as text, without importing aeon (which is slow to import).
"""

from .aeon import (
                   BASICMOTIONS,
                   BASICMOTIONS_CHANNELS,
                   BASICMOTIONS_CLASSES,
                   BASICMOTIONS_RATE_HZ,
                   BASICMOTIONS_UNITS,
                   DataUnavailable,
                   basicmotions_dir,
                   load_basicmotions,
)
from .ts_format import read_ts

__all__ = ["BASICMOTIONS", "BASICMOTIONS_CHANNELS", "BASICMOTIONS_CLASSES",
           "BASICMOTIONS_RATE_HZ", "BASICMOTIONS_UNITS", "DataUnavailable", "basicmotions_dir",
           "load_basicmotions", "read_ts"]
