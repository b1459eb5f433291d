"""Ready-made dataset folders: :func:`example_dataset`.

* ``"basicmotions"``: aeon's BasicMotions (80 recordings, needs aeon), imported by
  :func:`workbench.data.formats.aeon_datasets.import_basicmotions`.
* ``"fruit-color"``: three real CSV files of Arduino colour readings, one recording per fruit.
  The files ship inside this package (``workbench/data/examples/arduino-fruit-color/``, with a
  README saying where they come from) and are read through :mod:`importlib.resources`, so they
  load from an installed wheel as well as from a checkout.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

from ..store import Dataset, DatasetError, RecordingMeta
from . import transaction

__all__ = ["example_dataset", "import_fruit_color", "EXAMPLES", "FRUIT_COLOR_RATE_HZ",
           "FRUIT_COLOR_FILES"]

EXAMPLES = ("basicmotions", "fruit-color")
FRUIT_COLOR_FILES = ("apple.csv", "banana.csv", "orange.csv")

FRUIT_COLOR_RATE_HZ = 10.0
"""Nominal rate given to the fruit-colour recordings. An assumption, not a measurement: the
``object_color_capture`` sketch prints a line whenever the APDS9960 has a new colour reading
*and* an object is close, with no delay and no time stamp, so the rows are independent
readings, not an evenly spaced series (its tutorial classifies each row on its own). The
recordings carry ``extra["rate_assumed"] = True``."""


def _fruit_color_resources():
    return resources.files("workbench.data").joinpath("examples", "arduino-fruit-color")


def import_fruit_color(dataset: Dataset, folder: str | os.PathLike | None = None
                       ) -> list[RecordingMeta]:
    """One recording per ``<fruit>.csv``, labelled with the fruit (all or nothing).

    ``folder``: where the CSV files are; default: the copies shipped in the package. Raises
    FileNotFoundError if ``folder`` holds no .csv file."""
    from .csv_format import import_csv

    if folder is not None:
        files = sorted(Path(folder).glob("*.csv"))
        if not files:
            raise FileNotFoundError(f"no .csv files in {folder}")
        return _import_fruit_files(dataset, import_csv, files)
    shipped = _fruit_color_resources()
    # A wheel may be zipped (zipimport): copy the files out to read them as paths.
    with tempfile.TemporaryDirectory(prefix="workbench-fruit-") as tmp:
        files = []
        for name in FRUIT_COLOR_FILES:
            entry = shipped.joinpath(name)
            if not entry.is_file():
                raise FileNotFoundError(f"the package's example data {name} is missing from "
                                        f"{shipped}; reinstall tinyml-workbench")
            files.append(Path(tmp) / name)
            files[-1].write_bytes(entry.read_bytes())
        return _import_fruit_files(dataset, import_csv, files)


def _import_fruit_files(dataset: Dataset, import_csv, files: list[Path]) -> list[RecordingMeta]:
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
    recordings of Arduino colour readings, shipped with the package). Returns the opened
    :class:`Dataset`. Raises ValueError for an unknown name, :class:`DatasetError` if ``path``
    already holds recordings.
    """
    key = name.lower().replace("_", "-")
    if key not in EXAMPLES:
        raise ValueError(f"unknown example dataset {name!r}; choose one of {', '.join(EXAMPLES)}")
    dataset = Dataset(path, name=key)
    if len(dataset):
        raise DatasetError(f"{dataset.root} already holds a dataset with {len(dataset)} "
                           "recordings; choose a new folder")
    if key == "basicmotions":
        from .aeon_datasets import import_basicmotions

        import_basicmotions(dataset)
    else:
        import_fruit_color(dataset)
    return dataset
